"""elbv2_target_drain against the sandbox: targets deregistered (given, or by zone), exact release."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/alb_drain/drain.yml"
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
INCIDENT = "INC-DRAIN-1"
MUTATING = {"DeregisterTargets", "RegisterTargets", "AddTags", "RemoveTags"}


def result_of(run, task="Drain") -> dict:
    data = json.loads(run.stdout[run.stdout.index("{") :])
    for play in data["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                return entry["hosts"]["localhost"]
    raise AssertionError(f"task {task!r} not in the output:\n{run.output[-3000:]}")


def drain(run_playbook, check=False, diff=False, **options):
    options.setdefault("incident_id", INCIDENT)
    run = run_playbook(
        PLAYBOOK, extra_vars={f"drain_{k}": v for k, v in options.items()}, check=check, diff=diff, env=JSON_OUTPUT
    )
    return run, result_of(run)


def targets(aws, arn) -> list[str]:
    health = aws.client("elbv2").describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    return sorted(
        f"{d['Target']['Id']}:{d['Target']['Port']}"
        for d in health
        if d["TargetHealth"]["State"] not in ("unused", "draining")
    )


def ip_group(aws) -> str:
    return aws.manifest["aws"]["ecs"]["target_group_arn"]


def instance_group(aws) -> str:
    return aws.manifest["aws"]["evidence"]["target_group_arn"]


def mutating(aws) -> list[str]:
    return [e["action"] for e in aws.proxy.log() if e["action"] in MUTATING]


def test_check_mode_changes_nothing(aws, run_playbook):
    before = targets(aws, ip_group(aws))
    aws.proxy.clear_log()
    run, result = drain(
        run_playbook, check=True, diff=True, target_groups=["shop-api-tg"], availability_zone="us-east-1a"
    )
    assert run.returncode == 0, run.output
    assert result["changed"] is True and "would deregister 1 target(s)" in result["msg"]
    assert result["diff"]["after"][ip_group(aws)] == [{"id": "10.20.2.10", "port": 8000}]
    assert targets(aws, ip_group(aws)) == before
    assert not mutating(aws)


def test_drain_a_zone_then_rerun_then_release_exactly_those(aws, run_playbook):
    arn = ip_group(aws)
    run, result = drain(run_playbook, target_groups=[arn], availability_zone="us-east-1a")
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert targets(aws, arn) == ["10.20.2.10:8000"], "only the us-east-1a target (10.20.1.10) leaves"
    entry = result["containment"][0]
    assert entry["changed"]["deregistered"] == [{"id": "10.20.1.10", "port": 8000}]
    assert entry["resource"] == arn and entry["incident_id"] == INCIDENT
    tags = aws.client("elbv2").describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"]
    assert {"Key": "firebreak:incident", "Value": INCIDENT} in tags

    run, again = drain(run_playbook, target_groups=[arn], availability_zone="us-east-1a")
    assert run.returncode == 0, run.output
    assert again["changed"] is False and again["containment"] == []

    # meanwhile another target is registered by hand (port 9000): the release must not touch it
    aws.client("elbv2").register_targets(TargetGroupArn=arn, Targets=[{"Id": "10.20.1.11", "Port": 9000}])
    run, released = drain(run_playbook, target_groups=[arn], state="released", containments=[entry])
    assert run.returncode == 0, run.output
    assert released["changed"] is True
    assert targets(aws, arn) == ["10.20.1.10:8000", "10.20.1.11:9000", "10.20.2.10:8000"]
    assert released["release"][0]["releases"] == [entry["id"]]
    tags = aws.client("elbv2").describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"]
    assert not any(t["Key"] == "firebreak:incident" for t in tags)


def test_release_leaves_a_target_registered_again_meanwhile(aws, run_playbook):
    arn = instance_group(aws)
    iid = aws.manifest["aws"]["evidence"]["instance_id"]
    run, result = drain(run_playbook, target_groups=["web-instances-tg"], targets=[{"id": iid}])
    assert run.returncode == 0, run.output
    assert f"{iid}:8080" not in targets(aws, arn)
    aws.client("elbv2").register_targets(TargetGroupArn=arn, Targets=[{"Id": iid, "Port": 8080}])
    aws.proxy.clear_log()
    run, released = drain(run_playbook, target_groups=[arn], state="released", containments=result["containment"])
    assert run.returncode == 0, run.output
    assert released["changed"] is False
    assert released["release"][0]["left_alone"]["targets"][0]["id"] == iid
    assert "RegisterTargets" not in mutating(aws)


def test_instance_targets_by_zone(aws, run_playbook):
    arn = instance_group(aws)
    run, result = drain(run_playbook, target_groups=[arn], availability_zone="us-east-1b")
    assert run.returncode == 0, run.output
    assert result["containment"][0]["changed"]["deregistered"][0]["port"] == 8080
    assert targets(aws, arn) == [f"{aws.manifest['aws']['evidence']['instance_id']}:8080"]


@first_case_in_make_test
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"target_groups": ["no-such-tg"]}, "target group 'no-such-tg' does not exist"),
        ({"target_groups": ["bad name!"]}, "'bad name!' is neither a target group ARN nor a target group name"),
        ({"availability_zone": "moon-1"}, "'moon-1' is not an Availability Zone name"),
        ({"targets": [{"port": 80}]}, "has no id"),
        ({"targets": [{"id": "10.20.1.10", "port": 70000}]}, "port 70000 of '10.20.1.10' is not between 1 and 65535"),
        ({"targets": [{"id": "10.20.1.10"}, {"id": "10.20.2.10"}]}, "would leave target group 'shop-api-tg' with no"),
        ({"targets": []}, "give targets or availability_zone"),
    ],
    ids=["unknown-tg", "bad-tg", "bad-zone", "no-id", "bad-port", "empties-group", "nothing"],
)
def test_bad_input_fails_naming_the_value_and_changes_nothing(aws, run_playbook, options, expected):
    options.setdefault("target_groups", ["shop-api-tg"])
    options.setdefault("targets", ["10.20.1.10"])
    before = targets(aws, ip_group(aws))
    aws.proxy.clear_log()
    run, result = drain(run_playbook, **options)
    assert run.returncode != 0
    assert expected in result["msg"], result["msg"]
    assert targets(aws, ip_group(aws)) == before
    assert not mutating(aws)


@pytest.mark.proof
def test_permanent_5xx_fails_fast_naming_the_call_and_the_code(aws, run_playbook):
    rule = aws.proxy.add_rule(
        {
            "service": "elasticloadbalancing",
            "action": "DeregisterTargets",
            "fault": "error",
            "status": 503,
            "code": "ServiceUnavailable",
        }
    )
    started = time.monotonic()
    run, result = drain(run_playbook, target_groups=["shop-api-tg"], targets=["10.20.1.10"], retry_budget=8)
    assert run.returncode != 0
    assert time.monotonic() - started < 60
    assert "DeregisterTargets failed" in result["msg"] and "ServiceUnavailable" in result["msg"], result["msg"]
    aws.proxy.remove_rule(rule)
    assert targets(aws, ip_group(aws)) == ["10.20.1.10:8000", "10.20.2.10:8000"]


def test_release_with_a_deleted_target_group_reports_it_gone_and_releases_the_other(aws, run_playbook):
    arn = instance_group(aws)
    iid = aws.manifest["aws"]["evidence"]["instance_id"]
    elbv2 = aws.client("elbv2")
    vpc = elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]["VpcId"]
    doomed = elbv2.create_target_group(Name="doomed-tg", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="instance")
    doomed_arn = doomed["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=doomed_arn, Targets=[{"Id": iid, "Port": 8080}])
    run, result = drain(run_playbook, target_groups=[arn, doomed_arn], targets=[{"id": iid}], allow_empty=True)
    assert run.returncode == 0, run.output
    assert len(result["containment"]) == 2
    elbv2.delete_target_group(TargetGroupArn=doomed_arn)

    run, released = drain(
        run_playbook, target_groups=[arn, doomed_arn], state="released", containments=result["containment"]
    )
    assert run.returncode == 0, run.output
    assert released["gone"] == [doomed_arn]
    assert f"{iid}:8080" in targets(aws, arn), "the other target group is released"
    assert sorted(r.get("gone", False) for r in released["release"]) == [False, True]
