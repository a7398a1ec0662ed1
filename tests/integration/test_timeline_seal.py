"""Seals: truncating the tail or rewriting the whole chain of a sealed timeline fails the report,
naming the seal; an untouched timeline passes.  The seal is stored in the sandbox's evidence bucket,
which has S3 Object Lock (moto): the one the sandbox inventory names in ``firebreak_evidence_bucket``,
so ``incident_seal.yml`` and ``incident_report.yml`` find it without being told."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from sandbox.drills import service_down

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.record import timeline as tl  # noqa: E402

pytestmark = pytest.mark.integration

PLAYBOOKS = REPO / "tests" / "integration" / "playbooks" / "timeline"
SEAL = REPO / "playbooks" / "incident_seal.yml"
REPORT = REPO / "playbooks" / "incident_report.yml"


def _seal_line(run):
    for line in run.stdout.splitlines():
        if line.startswith("SEAL {"):  # printed as it is, ready to copy
            return line
    raise AssertionError(run.output)


@pytest.fixture
def sealed(aws, run_playbook, tmp_path):
    """A timeline with a few runs, sealed into the evidence bucket; returns (timeline, bucket, seal).

    No bucket is passed: the seal goes to the inventory's ``firebreak_evidence_bucket``."""
    bucket = aws.manifest["aws"]["s3"]["evidence_bucket"]
    timeline = tmp_path / "incident" / "timeline.jsonl"
    for n in range(2):
        run = run_playbook(PLAYBOOKS / "marker.yml", {"timeline_marker": str(tmp_path / f"m{n}")}, timeline=timeline)
        assert run.returncode == 0, run.output
    run = run_playbook(SEAL, {"firebreak_seal_retention_days": 2}, timeline=timeline)
    assert run.returncode == 0, run.output
    assert f"stored at s3://{bucket}/firebreak/seals/" in run.stdout, run.output
    return timeline, bucket, json.loads(_seal_line(run)[5:])


def _report(run_playbook, timeline, **extra):
    return run_playbook(REPORT, {"incident_timeline": str(timeline), **extra}, timeline=timeline)


def test_the_seal_is_stored_under_object_lock(sealed, aws):
    timeline, bucket, seal = sealed
    records = tl.verify_timeline(timeline)
    assert records[seal["seq"] - 1]["hash"] == seal["hash"]
    s3 = aws.client("s3")
    listing = s3.list_object_versions(Bucket=bucket, Prefix=f"firebreak/seals/{seal['incident_id']}/")
    (version,) = listing["Versions"]
    head = s3.head_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    stored = json.loads(s3.get_object(Bucket=bucket, Key=version["Key"])["Body"].read())
    assert stored["hash"] == seal["hash"] and stored["seq"] == seal["seq"]
    # the responder cannot remove it: deleting the locked version is refused
    with pytest.raises(Exception, match="AccessDenied"):
        s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])


def test_an_untouched_sealed_timeline_passes(sealed, run_playbook):
    timeline, _bucket, _seal = sealed
    run = _report(run_playbook, timeline)
    assert run.returncode == 0, run.output
    report = (timeline.parent / "report.md").read_text()
    assert "**Seals**: 2 checked" in report  # the stored one and the one the timeline recorded


def test_a_cut_tail_fails_naming_the_seal(sealed, run_playbook):
    timeline, bucket, seal = sealed
    lines = timeline.read_bytes().splitlines(keepends=True)
    timeline.write_bytes(b"".join(lines[: seal["seq"] - 2]))  # the chain left still verifies by itself
    assert len(tl.verify_timeline(timeline)) == seal["seq"] - 2
    run = _report(run_playbook, timeline)  # the README's command, nothing else
    assert run.returncode != 0
    assert f"seal s3://{bucket}/firebreak/seals/" in run.output
    assert f"the timeline has only {seal['seq'] - 2} records, the seal covers {seal['seq']}" in run.output


def test_a_rewritten_chain_fails_naming_the_seal(sealed, run_playbook):
    timeline, _bucket, seal = sealed
    records = tl.verify_timeline(timeline)
    # rewrite history: change the first record and recompute every hash, so the chain verifies by itself
    prev = tl.ZERO_HASH
    out = []
    for rec in records[: seal["seq"]]:
        rec = dict(rec, prev_hash=prev)
        if rec["seq"] == 1:
            rec["msg"] = "nothing happened here"
        rec["hash"] = tl.record_hash(rec)
        prev = rec["hash"]
        out.append(tl.canonical_json(rec) + "\n")
    timeline.write_text("".join(out))
    assert len(tl.verify_timeline(timeline)) == seal["seq"]
    run = _report(run_playbook, timeline)
    assert run.returncode != 0
    assert f"at seq {seal['seq']} has hash" in run.output and "the chain was rewritten" in run.output


def test_a_seal_line_from_the_run_output_is_checked_without_a_bucket(sealed, run_playbook):
    timeline, _bucket, seal = sealed
    line = "SEAL " + json.dumps(seal)
    lines = timeline.read_bytes().splitlines(keepends=True)
    timeline.write_bytes(b"".join(lines[: seal["seq"] - 1]))
    run = _report(run_playbook, timeline, incident_seals=[line], firebreak_evidence_bucket="")
    assert run.returncode != 0 and "seal seals[0]" in run.output, run.output
    assert "s3://" not in run.output  # no bucket was read


def test_the_deprecated_incident_seal_bucket_still_names_the_bucket(sealed, run_playbook):
    timeline, bucket, seal = sealed
    lines = timeline.read_bytes().splitlines(keepends=True)
    timeline.write_bytes(b"".join(lines[: seal["seq"] - 2]))
    run = _report(run_playbook, timeline, incident_seal_bucket=bucket, firebreak_evidence_bucket="")
    assert run.returncode != 0
    assert f"seal s3://{bucket}/firebreak/seals/" in run.output
    assert "incident_seal_bucket is deprecated" in run.output


def test_a_scenario_seal_is_found_by_the_report(aws, run_playbook, tmp_path):
    """A scenario seals into firebreak_evidence_bucket; the README's report command alone reads it there."""
    bucket = aws.manifest["aws"]["s3"]["evidence_bucket"]
    timeline = tmp_path / "incident" / "timeline.jsonl"
    service_down.inject(aws)  # the scenario acts only on a service that is down
    run = run_playbook(REPO / "playbooks" / "service_down.yml", timeline=timeline)
    assert run.returncode == 0, run.output
    records = tl.verify_timeline(timeline)
    sealed_at = [r for r in records if isinstance((r.get("details") or {}).get("seal"), dict)]
    (seal_record,) = sealed_at
    assert seal_record["details"]["stored"]["uri"].startswith(f"s3://{bucket}/")
    # cut below the sealed head: the seal the timeline recorded goes with the tail, the stored one stays
    seal = seal_record["details"]["seal"]
    timeline.write_bytes(b"".join(timeline.read_bytes().splitlines(keepends=True)[: seal["seq"] - 1]))
    run = _report(run_playbook, timeline)
    assert run.returncode != 0, run.output
    assert f"seal s3://{bucket}/firebreak/seals/" in run.output
    assert "records were removed after it was sealed" in run.output


def test_a_sandbox_inventory_never_reads_seals_from_real_aws(sealed, run_playbook):
    """Sandbox not running (no endpoint): the report refuses to read the evidence bucket from real AWS, saying
    how to report without stored seals; with the bucket emptied it reports, saying no stored seal was read."""
    timeline, bucket, _seal = sealed
    run = _report(run_playbook, timeline, firebreak_aws_endpoint_url="")
    assert run.returncode != 0
    assert f'evidence bucket "{bucket}"' in run.output and "firebreak_evidence_bucket=''" in run.output, run.output
    run = _report(run_playbook, timeline, firebreak_aws_endpoint_url="", firebreak_evidence_bucket="")
    assert run.returncode == 0, run.output
    assert "**Seals**: 1 checked" in (timeline.parent / "report.md").read_text()  # the one the timeline recorded


def test_an_invalid_evidence_bucket_name_is_named_before_any_call(sealed, run_playbook, aws):
    timeline, _bucket, _seal = sealed
    aws.proxy.clear_log()
    run = _report(run_playbook, timeline, firebreak_evidence_bucket="s3://firebreak-sandbox-evidence")
    assert run.returncode != 0
    assert "seal_bucket: 's3://firebreak-sandbox-evidence' is not a valid S3 bucket name" in run.output, run.output
    assert "connection error" not in run.output
    run = run_playbook(SEAL, {"firebreak_evidence_bucket": "Evidence_Bucket"}, timeline=timeline)
    assert run.returncode != 0
    assert "bucket: 'Evidence_Bucket' is not a valid S3 bucket name: characters 'BE_' are not allowed" in run.output
    assert [e for e in aws.proxy.log() if e["service"] == "s3"] == []
