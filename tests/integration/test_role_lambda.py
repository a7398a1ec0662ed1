"""The Lambda roles: converge, idempotence, check mode, against the sandbox."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.integration

ALIAS_ROLE = "tests/integration/playbooks/lambda/role_alias_rollback.yml"
RECAP = re.compile(
    r"^localhost\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)",
    re.M,
)


def recap(run) -> dict:
    match = RECAP.search(run.stdout)
    assert match, f"no PLAY RECAP for localhost in the output:\n{run.output[-3000:]}"
    return {key: int(value) for key, value in match.groupdict().items()}


def alias_version(aws) -> str:
    return aws.client("lambda").get_alias(FunctionName="thumbnailer", Name="live")["FunctionVersion"]


def function_tags(aws) -> dict:
    return aws.client("lambda").list_tags(Resource=aws.manifest["aws"]["lambda"]["function_arn"])["Tags"]


def test_alias_rollback_check_mode_changes_nothing(aws, run_playbook):
    run = run_playbook(ALIAS_ROLE, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert recap(run)["changed"] == 1 and recap(run)["failed"] == 0
    assert alias_version(aws) == "2"
    assert "firebreak:alias-rollback:live" not in function_tags(aws)


def test_alias_rollback_converge_then_idempotence(aws, run_playbook):
    first = run_playbook(ALIAS_ROLE)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1
    assert alias_version(aws) == "1"
    assert function_tags(aws)["firebreak:incident"].startswith("INC-TEST-")

    second = run_playbook(ALIAS_ROLE)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0 and recap(second)["failed"] == 0
    assert alias_version(aws) == "1", "the idempotence run must not roll back further"
