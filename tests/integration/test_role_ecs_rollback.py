"""The ecs_rollback role: converge, idempotence, check mode (the molecule-style sequence), against the sandbox."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/ecs/role.yml"
RECAP = re.compile(
    r"^localhost\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)",
    re.M,
)


def recap(run) -> dict:
    match = RECAP.search(run.stdout)
    assert match, f"no PLAY RECAP for localhost in the output:\n{run.output[-3000:]}"
    return {key: int(value) for key, value in match.groupdict().items()}


def running(aws) -> str:
    service = aws.client("ecs").describe_services(cluster="shop", services=["shop-api"])["services"][0]
    return service["taskDefinition"].rsplit("/", 1)[-1]


def test_check_mode_changes_nothing(aws, run_playbook):
    run = run_playbook(PLAYBOOK, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert recap(run)["failed"] == 0
    assert "shop-api:2" in run.stdout, "check mode should show the revision it would roll back to"
    assert running(aws) == "shop-api:3"
    tags = aws.client("ecs").list_tags_for_resource(resourceArn=aws.manifest["aws"]["ecs"]["service_arn"])["tags"]
    assert tags == []


def test_converge_then_idempotence(aws, run_playbook):
    first = run_playbook(PLAYBOOK)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    assert running(aws) == "shop-api:2"

    second = run_playbook(PLAYBOOK)
    assert second.returncode == 0, second.output
    assert recap(second) | {"ok": 0, "skipped": 0} == {
        "ok": 0,
        "changed": 0,
        "unreachable": 0,
        "failed": 0,
        "skipped": 0,
    }, second.stdout
    assert running(aws) == "shop-api:2", "the idempotence run must not roll back to N-2"


def test_role_rejects_a_bad_target_before_changing_anything(aws, run_playbook):
    run = run_playbook(PLAYBOOK, extra_vars={"ecs_rollback_task_definition": "shop-api:99"})
    assert run.returncode != 0
    assert "task definition 'shop-api:99' does not exist" in run.stdout
    assert running(aws) == "shop-api:3"


def test_role_argument_spec_rejects_a_wrong_type(aws, run_playbook):
    run = run_playbook(PLAYBOOK, extra_vars={"ecs_rollback_wait_timeout": "soon"})
    assert run.returncode != 0
    assert "ecs_rollback_wait_timeout" in run.stdout
    assert running(aws) == "shop-api:3"
