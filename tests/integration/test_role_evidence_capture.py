"""The evidence_capture role: check mode, converge, idempotence, bad input."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/evidence_capture/role.yml"
RECAP = re.compile(
    r"^localhost\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)",
    re.M,
)


def recap(run) -> dict:
    match = RECAP.search(run.stdout)
    assert match, f"no PLAY RECAP for localhost in the output:\n{run.output[-3000:]}"
    return {key: int(value) for key, value in match.groupdict().items()}


def role_vars(aws) -> dict:
    seed = aws.manifest["aws"]["evidence"]
    return {
        "evidence_capture_bucket": aws.manifest["aws"]["s3"]["evidence_bucket"],
        "evidence_capture_sources": [
            {"bucket": seed["log_bucket"], "prefix": seed["cloudtrail_prefix"]},
            {"bucket": seed["log_bucket"], "prefix": seed["access_log_prefix"]},
        ],
    }


def evidence(aws) -> list[str]:
    bucket = aws.manifest["aws"]["s3"]["evidence_bucket"]
    return sorted(o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=bucket).get("Contents", []))


def test_check_mode_copies_nothing(aws, run_playbook):
    run = run_playbook(PLAYBOOK, extra_vars=role_vars(aws), check=True, diff=True)
    assert run.returncode == 0, run.output
    assert recap(run)["failed"] == 0
    assert evidence(aws) == []


def test_converge_then_idempotence(aws, run_playbook):
    seed = aws.manifest["aws"]["evidence"]
    first = run_playbook(PLAYBOOK, extra_vars=role_vars(aws))
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 2, first.stdout  # one copy per source
    copies = [k for k in evidence(aws) if "/_manifests/" not in k]
    assert sorted(k.split(f"/s3/{seed['log_bucket']}/", 1)[1] for k in copies) == sorted(seed["log_objects"])
    assert f"{len(seed['log_objects'])} object(s) preserved" in first.stdout

    second = run_playbook(PLAYBOOK, extra_vars=role_vars(aws))
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0, second.stdout


def test_role_rejects_a_source_without_bucket(aws, run_playbook):
    extra = dict(role_vars(aws), evidence_capture_sources=[{"prefix": "AWSLogs/"}])
    run = run_playbook(PLAYBOOK, extra_vars=extra)
    assert run.returncode != 0
    assert "evidence_capture_sources must list" in run.stdout
    assert evidence(aws) == []


def test_a_failed_copy_stops_and_the_override_goes_on(aws, run_playbook):
    """A permanent 500 on the evidence PutObject: the role stops, naming the call, the code and the object, and says
    how to proceed; with evidence_capture_optional_reason it goes on and records why (docs/frame.md)."""
    bucket = aws.manifest["aws"]["s3"]["evidence_bucket"]
    aws.proxy.add_rule({"service": "s3", "method": "PUT", "path": f"^/{bucket}/incidents/", "fault": "error"})
    extra = dict(role_vars(aws), evidence_capture_retry_budget=3, evidence_capture_protects="the quarantine")
    stopped = run_playbook(PLAYBOOK, extra_vars=extra)
    assert stopped.returncode != 0
    text = " ".join(stopped.stdout.split())
    said = f"Evidence not preserved: PutObject answered InternalError for s3://{bucket}/incidents/"
    assert said in text, text[-3000:]
    assert "So the quarantine was not started; nothing was changed." in text
    assert "-e evidence_optional_reason=" in text and "Active compromise and containment cannot wait?" in text
    done = [json.loads(line) for line in stopped.timeline.read_text().splitlines()]
    [step] = [r for r in done if r["event"] == "task_failed" and (r.get("details") or {}).get("aws_operation")]
    assert (step["details"]["aws_operation"], step["details"]["aws_error_code"]) == ("PutObject", "InternalError")
    assert step["details"]["resource"].startswith(f"s3://{bucket}/incidents/")
    assert recap(stopped)["failed"] == 1  # stopped at the first source: the second is not tried
    assert evidence(aws) == []

    extra["evidence_capture_optional_reason"] = "containment cannot wait"
    going = run_playbook(PLAYBOOK, extra_vars=extra, timeline=stopped.timeline.with_name("override.jsonl"))
    assert going.returncode == 0, going.output[-3000:]
    notes = [
        r["msg"]
        for r in map(json.loads, going.timeline.read_text().splitlines())
        if r["event"] == "note" and "evidence_optional_reason" in (r.get("msg") or "")
    ]
    assert len(notes) == 2 and all("containment cannot wait" in n and "PutObject" in n for n in notes), notes
    assert "NOT preserved (evidence_optional_reason)" in going.stdout
    assert evidence(aws) == []
