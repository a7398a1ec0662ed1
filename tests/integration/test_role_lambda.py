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


LIMITS_ROLE = "tests/integration/playbooks/lambda/role_limits.yml"


def limits(aws) -> tuple[int, int]:
    found = aws.client("lambda").get_function_configuration(FunctionName="thumbnailer")
    return found["MemorySize"], found["Timeout"]


def test_limits_raise_check_mode_then_converge_then_idempotence(aws, run_playbook):
    raise_vars = {"lambda_limits_raise_memory_size": 1024, "lambda_limits_raise_timeout": 60}
    check = run_playbook(LIMITS_ROLE, extra_vars=raise_vars, check=True)
    assert check.returncode == 0, check.output
    assert limits(aws) == (128, 3)

    first = run_playbook(LIMITS_ROLE, extra_vars=raise_vars)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1
    assert limits(aws) == (1024, 60)

    second = run_playbook(LIMITS_ROLE, extra_vars=raise_vars)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0 and recap(second)["failed"] == 0
    assert limits(aws) == (1024, 60)

    previous = {"memory_size": {"old": 128, "new": 1024}, "timeout": {"old": 3, "new": 60}}
    restore = run_playbook(
        LIMITS_ROLE, extra_vars={"lambda_limits_raise_state": "restored", "lambda_limits_raise_previous": previous}
    )
    assert restore.returncode == 0, restore.output
    assert limits(aws) == (128, 3)
