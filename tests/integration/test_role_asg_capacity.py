"""The asg_capacity role against the sandbox: converge, re-run, check mode, restore from the incident's timeline."""

from __future__ import annotations

import pytest

from tests.integration.containment_helpers import recap, recorded_containments, role
from tests.integration.test_autoscaling_capacity import SEEDED, in_service, sizes

pytestmark = pytest.mark.integration


def test_check_mode_changes_nothing(aws, run_playbook):
    run = role(
        run_playbook, "asg_capacity", check=True, diff=True, asg_capacity_name="gpu-worker", asg_capacity_desired=5
    )
    assert run.returncode == 0, run.output
    assert recap(run)["changed"] == 1  # what it would do
    assert sizes(aws) == SEEDED and in_service(aws) == 3


def test_converge_rerun_and_restore_from_the_timeline(aws, run_playbook, tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    variables = {"asg_capacity_name": "gpu-worker", "asg_capacity_desired": 8, "asg_capacity_raise_max": True}
    first = role(run_playbook, "asg_capacity", timeline=timeline, **variables)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1
    assert sizes(aws) == {"min_size": 1, "desired_capacity": 8, "max_size": 8} and in_service(aws) == 8
    (entry,) = recorded_containments(timeline, "asg_capacity")
    assert entry["changed"]["capacity"]["from"] == SEEDED

    again = role(run_playbook, "asg_capacity", timeline=timeline, **variables)
    assert again.returncode == 0, again.output
    assert recap(again)["changed"] == 0
    assert len(recorded_containments(timeline, "asg_capacity")) == 1

    check = role(run_playbook, "asg_capacity", check=True, timeline=timeline, **variables)
    assert check.returncode == 0 and recap(check)["changed"] == 0, check.output

    # restored: the role reads the entry from the timeline (lookup firebreak.runbooks.containments)
    restore = {"asg_capacity_name": "gpu-worker", "asg_capacity_state": "restored"}
    preview = role(run_playbook, "asg_capacity", check=True, timeline=timeline, **restore)
    assert preview.returncode == 0, preview.output
    assert sizes(aws)["desired_capacity"] == 8
    restored = role(run_playbook, "asg_capacity", timeline=timeline, **restore)
    assert restored.returncode == 0, restored.output
    assert recap(restored)["changed"] == 1
    assert sizes(aws) == SEEDED and in_service(aws) == 3
    done = role(run_playbook, "asg_capacity", timeline=timeline, **restore)
    assert done.returncode == 0 and recap(done)["changed"] == 0, "the restore is recorded: nothing is left to restore"


def test_a_desired_capacity_above_the_maximum_stops_the_role_naming_it(aws, run_playbook):
    run = role(run_playbook, "asg_capacity", asg_capacity_name="gpu-worker", asg_capacity_desired=9)
    assert run.returncode != 0
    assert "desired_capacity 9 is above the group's maximum 6" in run.stdout
    assert sizes(aws) == SEEDED


def test_the_role_fails_when_the_group_keeps_its_old_sizes(aws, run_playbook):
    # Auto Scaling acknowledges the update (a canned answer) but the group keeps its sizes: the read-back fails it.
    aws.proxy.add_rule({"service": "autoscaling", "action": "UpdateAutoScalingGroup", "fault": "canned", "body": {}})
    run = role(run_playbook, "asg_capacity", asg_capacity_name="gpu-worker", asg_capacity_desired=5)
    assert run.returncode != 0
    assert "reads back {'desired_capacity': 3}" in run.stdout
    assert sizes(aws) == SEEDED


def test_released_is_restored_for_a_generic_release(aws, run_playbook, tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    scaled = role(
        run_playbook, "asg_capacity", timeline=timeline, asg_capacity_name="gpu-worker", asg_capacity_desired=4
    )
    assert scaled.returncode == 0 and sizes(aws)["desired_capacity"] == 4, scaled.output
    released = role(
        run_playbook, "asg_capacity", timeline=timeline, asg_capacity_name="gpu-worker", asg_capacity_state="released"
    )
    assert released.returncode == 0, released.output
    assert recap(released)["changed"] == 1 and sizes(aws) == SEEDED
