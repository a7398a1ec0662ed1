"""The evidence_capture role: check mode, converge, idempotence, bad input."""

from __future__ import annotations

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
    assert recap(first)["changed"] == 1, first.stdout
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
