"""autoscaling_capacity against the sandbox: the GPU worker group's sizes read back from moto."""

from __future__ import annotations

import pytest

from tests.integration.containment_helpers import JSON_OUTPUT, result_of, timeline_records

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/workers/autoscaling_capacity.yml"
GROUP = "gpu-worker"
SEEDED = {"min_size": 1, "desired_capacity": 3, "max_size": 6}


def sizes(aws, group=GROUP) -> dict:
    found = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    g = found["AutoScalingGroups"][0]
    return {"min_size": g["MinSize"], "desired_capacity": g["DesiredCapacity"], "max_size": g["MaxSize"]}


def in_service(aws, group=GROUP) -> int:
    g = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
    return sum(1 for i in g["Instances"] if i["LifecycleState"] == "InService")


def capacity(run_playbook, check=False, diff=False, timeline=None, **args):
    run = run_playbook(
        PLAYBOOK,
        extra_vars={"step_args": {"name": GROUP, **args}},
        check=check,
        diff=diff,
        env=JSON_OUTPUT,
        timeline=timeline,
    )
    return run, result_of(run)


def test_the_seed_has_the_gpu_workers(aws):
    assert sizes(aws) == SEEDED and in_service(aws) == 3
    workers = aws.manifest["aws"]["workers"]
    assert workers["asg_name"] == GROUP and len(workers["instance_ids"]) == 3
    reservations = aws.client("ec2").describe_instances(Filters=[{"Name": "tag:Name", "Values": ["gpu-worker"]}])
    assert (
        sorted(i["InstanceId"] for r in reservations["Reservations"] for i in r["Instances"]) == workers["instance_ids"]
    )


def test_check_mode_changes_nothing(aws, run_playbook):
    run, result = capacity(run_playbook, check=True, diff=True, desired_capacity=8, raise_max=True)
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["predicted"] is True
    assert result["diff"]["after"] == {"min_size": 1, "desired_capacity": 8, "max_size": 8}
    assert sizes(aws) == SEEDED and in_service(aws) == 3


def test_above_the_maximum_is_refused_and_nothing_changes(aws, run_playbook):
    run, result = capacity(run_playbook, desired_capacity=8)
    assert run.returncode != 0
    assert "desired_capacity 8 is above the group's maximum 6" in result["msg"] and "raise_max" in result["msg"]
    assert "aws_operation" not in result and result["changed"] is False
    assert sizes(aws) == SEEDED


def test_scale_records_the_old_sizes_rerun_is_a_no_op_and_restore_puts_them_back(aws, run_playbook, tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    run, result = capacity(run_playbook, timeline=timeline, desired_capacity=8, raise_max=True)
    assert run.returncode == 0, run.output
    assert sizes(aws) == {"min_size": 1, "desired_capacity": 8, "max_size": 8} and in_service(aws) == 8
    assert result["after"]["in_service"] == 8 and result["before"]["desired_capacity"] == 3
    (recorded,) = result["containment"]
    assert recorded["changed"]["capacity"]["from"] == SEEDED and result["step_kind"] == "mitigation"

    run, again = capacity(run_playbook, timeline=timeline, desired_capacity=8, raise_max=True)
    assert run.returncode == 0 and again["changed"] is False and again["containment"] == [], again

    # the timeline kept the entry: the restore reads it back
    entries = [
        e
        for rec in timeline_records(timeline)
        if rec.get("event") == "task_changed"
        for e in (rec.get("details") or {}).get("containment") or []
    ]
    assert [e["id"] for e in entries] == [recorded["id"]]
    run, restored = capacity(run_playbook, timeline=timeline, state="restored", containments=entries)
    assert run.returncode == 0, run.output
    assert sizes(aws) == SEEDED and in_service(aws) == 3
    assert restored["release"][0]["releases"] == [recorded["id"]]


def test_a_group_changed_meanwhile_is_left_alone(aws, run_playbook):
    run, result = capacity(run_playbook, desired_capacity=5)
    assert run.returncode == 0, run.output
    aws.client("autoscaling").update_auto_scaling_group(AutoScalingGroupName=GROUP, DesiredCapacity=4)
    run, restored = capacity(run_playbook, state="restored", containments=result["containment"])
    assert run.returncode == 0, run.output
    assert restored["changed"] is False and restored["release"] == []
    assert restored["left_alone"]["current"]["desired_capacity"] == 4
    assert sizes(aws) == {"min_size": 1, "desired_capacity": 4, "max_size": 6}
    run, forced = capacity(run_playbook, state="restored", containments=result["containment"], force=True)
    assert run.returncode == 0 and forced["changed"] is True, forced
    assert sizes(aws) == SEEDED


def test_an_unknown_group_fails_naming_it(aws, run_playbook):
    run = run_playbook(
        PLAYBOOK, extra_vars={"step_args": {"name": "no-such-group", "desired_capacity": 2}}, env=JSON_OUTPUT
    )
    assert run.returncode != 0
    assert "no Auto Scaling group named 'no-such-group'" in result_of(run)["msg"]
