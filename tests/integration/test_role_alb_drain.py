"""The alb_drain role: check mode, converge, idempotence, release through the timeline lookup."""

from __future__ import annotations

import re

import pytest

from tests.integration.containment_helpers import recorded_containments, role

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
    # the plan stays in alb_drain_result after the role (the release task, skipped, must not overwrite it)
    assert "alb_drain_result: changed=True msg=check mode: would deregister 1 target(s)" in run.stdout, run.stdout


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


def test_a_target_drained_by_two_incidents(aws, run_playbook, tmp_path):
    """The first release keeps the target drained while the second incident claims it; the last registers it."""
    before = targets(aws)

    def run_as(incident, **variables):
        return role(
            run_playbook,
            "alb_drain",
            timeline=tmp_path / incident / "timeline.jsonl",
            env={"FIREBREAK_INCIDENT_ID": incident},
            **ZONE_A,
            **variables,
        )

    for incident in ("INC-A", "INC-B"):
        run = run_as(incident)
        assert run.returncode == 0, run.output
        assert targets(aws) == ["10.20.2.10:8000"]
    assert recorded_containments(tmp_path / "INC-B" / "timeline.jsonl", "alb_drain"), "INC-B records its claim"

    release_a = run_as("INC-A", alb_drain_state="released")
    assert release_a.returncode == 0, release_a.output
    assert targets(aws) == ["10.20.2.10:8000"], "INC-B still claims the drained target"
    assert "kept 10.20.1.10:8000 for INC-B" in release_a.stdout

    release_b = run_as("INC-B", alb_drain_state="released")
    assert release_b.returncode == 0, release_b.output
    assert targets(aws) == before, "the last claimant's release registers the target INC-A drained"


def test_a_deleted_target_group_is_gone_and_the_release_goes_on(aws, run_playbook, tmp_path):
    """Two target groups drained by one incident; one is deleted; the release reports it gone, restores the other."""
    elbv2 = aws.client("elbv2")
    main_arn = aws.manifest["aws"]["ecs"]["target_group_arn"]
    vpc = elbv2.describe_target_groups(TargetGroupArns=[main_arn])["TargetGroups"][0]["VpcId"]
    spare = elbv2.create_target_group(Name="spare-gone-tg", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")
    spare_arn = spare["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(
        TargetGroupArn=spare_arn, Targets=[{"Id": "10.20.1.10", "Port": 80}, {"Id": "10.20.2.10", "Port": 80}]
    )
    before = targets(aws)
    timeline = tmp_path / "INC-G" / "timeline.jsonl"
    groups = {"alb_drain_target_groups": ["shop-api-tg", "spare-gone-tg"], "alb_drain_availability_zone": "us-east-1a"}
    env = {"FIREBREAK_INCIDENT_ID": "INC-G"}
    run = role(run_playbook, "alb_drain", timeline=timeline, env=env, **groups)
    assert run.returncode == 0, run.output
    assert targets(aws) == ["10.20.2.10:8000"]
    elbv2.delete_target_group(TargetGroupArn=spare_arn)

    released = role(run_playbook, "alb_drain", timeline=timeline, env=env, alb_drain_state="released", **groups)
    assert released.returncode == 0, released.output
    assert "gone (recorded as released)" in released.stdout and "spare-gone-tg" in released.stdout
    assert targets(aws) == before
