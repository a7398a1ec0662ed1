"""Seals: truncating the tail or rewriting the whole chain of a sealed timeline fails the report,
naming the seal; an untouched timeline passes.  The seal is stored in the sandbox's evidence bucket,
which has S3 Object Lock (moto)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils import timeline as tl  # noqa: E402

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
    """A timeline with a few runs, sealed into the evidence bucket; returns (timeline, bucket, seal)."""
    bucket = aws.manifest["aws"]["s3"]["evidence_bucket"]
    timeline = tmp_path / "incident" / "timeline.jsonl"
    for n in range(2):
        run = run_playbook(PLAYBOOKS / "marker.yml", {"timeline_marker": str(tmp_path / f"m{n}")}, timeline=timeline)
        assert run.returncode == 0, run.output
    run = run_playbook(SEAL, {"incident_seal_bucket": bucket, "incident_seal_retention_days": 2}, timeline=timeline)
    assert run.returncode == 0, run.output
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
    timeline, bucket, _seal = sealed
    run = _report(run_playbook, timeline, incident_seal_bucket=bucket)
    assert run.returncode == 0, run.output
    report = (timeline.parent / "report.md").read_text()
    assert "**Seals**: 2 checked" in report  # the stored one and the one the timeline recorded


def test_a_cut_tail_fails_naming_the_seal(sealed, run_playbook):
    timeline, bucket, seal = sealed
    lines = timeline.read_bytes().splitlines(keepends=True)
    timeline.write_bytes(b"".join(lines[: seal["seq"] - 2]))  # the chain left still verifies by itself
    assert len(tl.verify_timeline(timeline)) == seal["seq"] - 2
    run = _report(run_playbook, timeline, incident_seal_bucket=bucket)
    assert run.returncode != 0
    assert f"seal s3://{bucket}/firebreak/seals/" in run.output
    assert f"the timeline has only {seal['seq'] - 2} records, the seal covers {seal['seq']}" in run.output


def test_a_rewritten_chain_fails_naming_the_seal(sealed, run_playbook):
    timeline, bucket, seal = sealed
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
    run = _report(run_playbook, timeline, incident_seal_bucket=bucket)
    assert run.returncode != 0
    assert f"at seq {seal['seq']} has hash" in run.output and "the chain was rewritten" in run.output


def test_a_seal_line_from_the_run_output_is_checked_without_a_bucket(sealed, run_playbook):
    timeline, _bucket, seal = sealed
    line = "SEAL " + json.dumps(seal)
    lines = timeline.read_bytes().splitlines(keepends=True)
    timeline.write_bytes(b"".join(lines[: seal["seq"] - 1]))
    run = _report(run_playbook, timeline, incident_seals=[line])
    assert run.returncode != 0 and "seal seals[0]" in run.output, run.output
