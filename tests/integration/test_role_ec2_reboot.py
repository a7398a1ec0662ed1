"""The ec2_reboot role against the sandbox: converge, re-run (no second reboot), check mode."""

from __future__ import annotations

import pytest

from tests.integration.containment_helpers import calls, last_seq, recap, role
from tests.integration.test_ec2_instance_reboot import group_instances, make_stuck, tags

pytestmark = pytest.mark.integration


def test_check_converge_and_rerun(aws, run_playbook, tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    stuck = group_instances(aws)[2]
    make_stuck(aws, stuck, count=None)  # the status check reads impaired until the reboot below clears it
    variables = {"ec2_reboot_asg": "gpu-worker"}

    since = last_seq(aws)
    check = role(run_playbook, "ec2_reboot", check=True, timeline=timeline, **variables)
    assert check.returncode == 0, check.output
    assert "RebootInstances" not in calls(aws, "ec2", since)
    assert "firebreak:rebooted-by" not in tags(aws, stuck)

    aws.proxy.reset()  # the stuck answer served its purpose for the check run; the converge sees it once
    make_stuck(aws, stuck, count=1)
    since = last_seq(aws)
    first = role(run_playbook, "ec2_reboot", timeline=timeline, **variables)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1
    assert calls(aws, "ec2", since).count("RebootInstances") == 1
    assert tags(aws, stuck)["firebreak:rebooted-by"].startswith("INC-TEST-")

    make_stuck(aws, stuck, count=None)  # still stuck: the re-run must not reboot it again within the window
    since = last_seq(aws)
    again = role(run_playbook, "ec2_reboot", timeline=timeline, **variables)
    assert again.returncode == 0, again.output
    assert recap(again)["changed"] == 0
    assert "RebootInstances" not in calls(aws, "ec2", since)


def test_instance_refresh_converge_rerun_and_check(aws, run_playbook, tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    variables = {"ec2_reboot_asg": "gpu-worker", "ec2_reboot_method": "instance_refresh"}
    old = group_instances(aws)
    check = role(run_playbook, "ec2_reboot", check=True, timeline=timeline, **variables)
    assert check.returncode == 0 and group_instances(aws) == old, check.output
    first = role(run_playbook, "ec2_reboot", timeline=timeline, **variables)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1 and not set(group_instances(aws)) & set(old)
    new = group_instances(aws)
    again = role(run_playbook, "ec2_reboot", timeline=timeline, **variables)
    assert again.returncode == 0 and recap(again)["changed"] == 0, again.output
    assert group_instances(aws) == new


def test_the_role_fails_when_the_worker_stays_impaired(aws, run_playbook):
    stuck = group_instances(aws)[0]
    make_stuck(aws, stuck, count=None)  # the reboot does not help: the check keeps failing
    run = role(run_playbook, "ec2_reboot", ec2_reboot_asg="gpu-worker", ec2_reboot_wait_timeout=3)
    assert run.returncode != 0
    assert f"rebooted {stuck} of gpu-worker but they do not pass their status checks after 3s" in run.stdout
    assert tags(aws, stuck)["firebreak:rebooted-by"].startswith("INC-TEST-")  # the reboot itself was recorded
