"""ec2_instance_reboot against the sandbox: stuck GPU workers rebooted once, bounded; an instance refresh (answered by
the fault proxy) replaces the group's instances, and one in progress is reported, not doubled."""

from __future__ import annotations

import pytest

from tests.integration.containment_helpers import JSON_OUTPUT, calls, last_seq, result_of

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/workers/ec2_instance_reboot.yml"
GROUP = "gpu-worker"


def group_instances(aws) -> list[str]:
    g = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    return sorted(i["InstanceId"] for i in g["Instances"])


def tags(aws, instance_id) -> dict:
    found = aws.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return {t["Key"]: t["Value"] for t in found.get("Tags") or []}


def make_stuck(aws, stuck: str, count: int | None = 1) -> None:
    """moto always reports status checks ok: the fault proxy answers DescribeInstanceStatus with ``stuck`` impaired,
    for the next ``count`` reads (None: for ever), as EC2 documents the answer."""
    items = [
        {
            "instanceId": iid,
            "availabilityZone": "us-east-1a",
            "instanceState": {"code": 16, "name": "running"},
            "instanceStatus": {"status": "impaired" if iid == stuck else "ok"},
            "systemStatus": {"status": "ok"},
        }
        for iid in group_instances(aws)
    ]
    aws.proxy.add_rule(
        {
            "service": "ec2",
            "action": "DescribeInstanceStatus",
            "fault": "canned",
            "count": count,
            "body": {"instanceStatusSet": items},
            "description": f"{stuck} fails its instance status check",
        }
    )


def reboot(run_playbook, check=False, diff=False, **args):
    run = run_playbook(PLAYBOOK, extra_vars={"step_args": args}, check=check, diff=diff, env=JSON_OUTPUT)
    return run, result_of(run)


def test_check_mode_reboots_nothing(aws, run_playbook):
    stuck = group_instances(aws)[0]
    make_stuck(aws, stuck)
    since = last_seq(aws)
    run, result = reboot(run_playbook, check=True, diff=True, auto_scaling_group=GROUP, console_output=True)
    assert run.returncode == 0, run.output
    assert (
        result["changed"] is True and result["rebooted"] == [stuck] and result["diff"]["after"]["rebooted"] == [stuck]
    )
    assert "RebootInstances" not in calls(aws, "ec2", since) and "CreateTags" not in calls(aws, "ec2", since)
    assert "firebreak:rebooted-by" not in tags(aws, stuck)


def test_the_stuck_worker_is_rebooted_once_with_evidence_first(aws, run_playbook):
    stuck = group_instances(aws)[1]
    make_stuck(aws, stuck)
    since = last_seq(aws)
    run, result = reboot(run_playbook, auto_scaling_group=GROUP, console_output=True)
    assert run.returncode == 0, run.output
    assert result["rebooted"] == [stuck] and result["changed"] is True
    ec2_calls = calls(aws, "ec2", since)
    # evidence (status checks, console output) before the reboot, the record after it
    assert (
        ec2_calls.index("DescribeInstanceStatus")
        < ec2_calls.index("GetConsoleOutput")
        < ec2_calls.index("RebootInstances")
        < ec2_calls.index("CreateTags")
    )
    assert ec2_calls.count("RebootInstances") == 1
    before = {e["instance_id"]: e for e in result["before"]["instances"]}
    assert before[stuck]["instance_status"] == "impaired" and "Linux version" in before[stuck]["console_output"]
    after = {e["instance_id"]: e for e in result["after"]["instances"]}
    assert after[stuck]["instance_status"] == "ok" and after[stuck]["state"] == "running"
    recorded = tags(aws, stuck)
    assert recorded["firebreak:rebooted-by"].startswith("INC-TEST-") and recorded["firebreak:rebooted-at"]
    others = [i for i in group_instances(aws) if i != stuck]
    assert all("firebreak:rebooted-by" not in tags(aws, i) for i in others)

    # the worker still reads stuck: a re-run within the window does not reboot it again
    make_stuck(aws, stuck, count=None)
    since = last_seq(aws)
    run, again = reboot(run_playbook, auto_scaling_group=GROUP)
    assert run.returncode == 0, run.output
    assert again["changed"] is False and again["rebooted"] == []
    assert "already rebooted by" in again["not_rebooted"][stuck]
    assert "RebootInstances" not in calls(aws, "ec2", since)


def test_more_workers_than_the_bound_are_refused(aws, run_playbook):
    since = last_seq(aws)
    run, result = reboot(run_playbook, auto_scaling_group=GROUP, health_filter="all")
    assert run.returncode != 0
    assert "refusing to reboot 3 instances of gpu-worker" in result["msg"] and "max_instances 2" in result["msg"]
    assert "RebootInstances" not in calls(aws, "ec2", since)
    run, result = reboot(run_playbook, auto_scaling_group=GROUP, health_filter="all", max_instances=3, wait=False)
    assert run.returncode == 0 and sorted(result["rebooted"]) == group_instances(aws), result
    assert all(tags(aws, i)["firebreak:rebooted-by"] for i in group_instances(aws))


def test_an_unknown_instance_is_named(aws, run_playbook):
    since = last_seq(aws)  # the proxy log keeps earlier tests' calls across a reset
    run, result = reboot(run_playbook, instance_ids=["i-0123456789abcdef0"])
    assert run.returncode != 0 and "i-0123456789abcdef0" in result["msg"], result
    assert "RebootInstances" not in calls(aws, "ec2", since)


def test_instance_refresh_replaces_the_workers_and_is_not_repeated(aws, run_playbook):
    old = group_instances(aws)
    run, result = reboot(run_playbook, auto_scaling_group=GROUP, method="instance_refresh", min_healthy_percentage=50)
    assert run.returncode == 0, run.output
    assert result["refresh"]["status"] == "Successful" and result["refresh"]["min_healthy_percentage"] == 50
    new = group_instances(aws)
    assert len(new) == 3 and not set(new) & set(old)
    since = last_seq(aws)
    run, again = reboot(run_playbook, auto_scaling_group=GROUP, method="instance_refresh")
    assert run.returncode == 0 and again["changed"] is False, again
    assert "already refreshed" in again["msg"] and "StartInstanceRefresh" not in calls(aws, "autoscaling", since)
    assert group_instances(aws) == new


def test_a_refresh_in_progress_is_reported_not_doubled(aws, run_playbook):
    aws.proxy.instance_refresh_seconds = 3600
    running = aws.client("autoscaling").start_instance_refresh(AutoScalingGroupName=GROUP)["InstanceRefreshId"]
    since = last_seq(aws)
    run, result = reboot(run_playbook, check=True, auto_scaling_group=GROUP, method="instance_refresh")
    assert run.returncode == 0 and result["changed"] is False, result
    run, result = reboot(run_playbook, auto_scaling_group=GROUP, method="instance_refresh")
    assert run.returncode == 0 and result["changed"] is False, result
    assert result["refresh"]["instance_refresh_id"] == running and result["refresh"]["status"] == "InProgress"
    assert "already in progress" in result["msg"]
    assert "StartInstanceRefresh" not in calls(aws, "autoscaling", since)


def test_the_fault_proxy_answers_instance_refresh_as_aws_documents(aws):
    client = aws.client("autoscaling")
    aws.proxy.instance_refresh_seconds = 3600
    first = client.start_instance_refresh(AutoScalingGroupName=GROUP, Preferences={"MinHealthyPercentage": 80})
    with pytest.raises(client.exceptions.InstanceRefreshInProgressFault):
        client.start_instance_refresh(AutoScalingGroupName=GROUP)
    (listed,) = client.describe_instance_refreshes(AutoScalingGroupName=GROUP)["InstanceRefreshes"]
    assert listed["InstanceRefreshId"] == first["InstanceRefreshId"] and listed["Status"] == "InProgress"
    assert listed["Preferences"]["MinHealthyPercentage"] == 80 and listed["InstancesToUpdate"] == 3
    assert client.cancel_instance_refresh(AutoScalingGroupName=GROUP)["InstanceRefreshId"] == first["InstanceRefreshId"]
    assert (
        client.describe_instance_refreshes(AutoScalingGroupName=GROUP)["InstanceRefreshes"][0]["Status"] == "Cancelled"
    )
    with pytest.raises(client.exceptions.ActiveInstanceRefreshNotFoundFault):
        client.cancel_instance_refresh(AutoScalingGroupName=GROUP)
    with pytest.raises(client.exceptions.ClientError, match="AutoScalingGroup name not found"):
        client.start_instance_refresh(AutoScalingGroupName="no-such-group")
    with pytest.raises(client.exceptions.ClientError, match="MinHealthyPercentage must be between 0 and 100"):
        client.start_instance_refresh(AutoScalingGroupName=GROUP, Preferences={"MinHealthyPercentage": 101})
    aws.proxy.reset()  # a reset forgets the refreshes
    assert client.describe_instance_refreshes(AutoScalingGroupName=GROUP)["InstanceRefreshes"] == []
