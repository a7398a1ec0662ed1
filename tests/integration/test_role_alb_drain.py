"""The alb_drain role: check mode, converge, idempotence, release through the timeline lookup."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/alb_drain/role.yml"
RECAP = re.compile(
    r"^localhost\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)",
    re.M,
)
ZONE_A = {"alb_drain_target_groups": ["shop-api-tg"], "alb_drain_availability_zone": "us-east-1a"}


def recap(run) -> dict:
    match = RECAP.search(run.stdout)
    assert match, f"no PLAY RECAP for localhost in the output:\n{run.output[-3000:]}"
    return {key: int(value) for key, value in match.groupdict().items()}


def targets(aws) -> list[str]:
    arn = aws.manifest["aws"]["ecs"]["target_group_arn"]
    health = aws.client("elbv2").describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    return sorted(
        f"{d['Target']['Id']}:{d['Target']['Port']}" for d in health if d["TargetHealth"]["State"] != "unused"
    )


def test_check_mode_changes_nothing(aws, run_playbook):
    before = targets(aws)
    run = run_playbook(PLAYBOOK, extra_vars=ZONE_A, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert recap(run)["failed"] == 0
    assert targets(aws) == before


def test_converge_idempotence_and_release_from_the_timeline(aws, run_playbook):
    before = targets(aws)
    first = run_playbook(PLAYBOOK, extra_vars=ZONE_A)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    assert targets(aws) == ["10.20.2.10:8000"]

    second = run_playbook(PLAYBOOK, extra_vars=ZONE_A)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0, second.stdout

    released = run_playbook(PLAYBOOK, extra_vars=dict(ZONE_A, alb_drain_state="released"))
    assert released.returncode == 0, released.output
    assert recap(released)["changed"] == 1, released.stdout
    assert targets(aws) == before

    again = run_playbook(PLAYBOOK, extra_vars=dict(ZONE_A, alb_drain_state="released"))
    assert again.returncode == 0, again.output
    assert recap(again)["changed"] == 0, again.stdout


def test_role_refuses_to_empty_a_target_group(aws, run_playbook):
    before = targets(aws)
    extra = {
        "alb_drain_target_groups": ["shop-api-tg"],
        "alb_drain_targets": [{"id": "10.20.1.10"}, {"id": "10.20.2.10"}],
    }
    run = run_playbook(PLAYBOOK, extra_vars=extra)
    assert run.returncode != 0
    assert "would leave target group 'shop-api-tg' with no registered target" in run.stdout
    assert targets(aws) == before
