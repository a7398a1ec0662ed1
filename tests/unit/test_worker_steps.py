"""asg_capacity and ec2_reboot: the pure decisions (module_utils/aws/autoscaling.py, ec2_reboot.py) and the modules'
flows against fake clients, without AWS."""

from __future__ import annotations

import datetime
import sys

import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

import botocore.exceptions
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import autoscaling as asg
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import ec2_reboot as rb
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime import step
from ansible_collections.firebreak.runbooks.plugins.modules import autoscaling_capacity, ec2_instance_reboot

NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)
SIZES = {"min_size": 1, "desired_capacity": 3, "max_size": 6}


# -- decide_capacity ---------------------------------------------------------------------------------------------


def test_scale_within_the_maximum_changes_only_the_desired_capacity():
    decision = asg.decide_capacity(SIZES, desired=5)
    assert decision["to"] == {"min_size": 1, "desired_capacity": 5, "max_size": 6}
    assert decision["changes"] == {"desired_capacity": {"old": 3, "new": 5}}


def test_above_the_maximum_is_refused_naming_both_unless_raise_max():
    with pytest.raises(
        asg.AutoScalingInputError, match=r"desired_capacity 8 is above the group's maximum 6.*raise_max"
    ):
        asg.decide_capacity(SIZES, desired=8)
    decision = asg.decide_capacity(SIZES, desired=8, raise_max=True)
    assert decision["to"]["max_size"] == 8 and decision["changes"]["max_size"] == {"old": 6, "new": 8}
    # a given maximum is used as it is
    assert asg.decide_capacity(SIZES, desired=8, max_size=10)["to"]["max_size"] == 10
    with pytest.raises(asg.AutoScalingInputError, match="above the given max_size 7"):
        asg.decide_capacity(SIZES, desired=8, max_size=7)


def test_below_the_minimum_needs_a_lower_minimum():
    with pytest.raises(asg.AutoScalingInputError, match="below the group minimum 1: give min_size 0"):
        asg.decide_capacity(SIZES, desired=0)
    assert asg.decide_capacity(SIZES, desired=0, min_size=0)["to"] == {
        "min_size": 0,
        "desired_capacity": 0,
        "max_size": 6,
    }


def test_the_same_sizes_are_no_change_and_bad_sizes_are_named():
    assert asg.decide_capacity(SIZES, desired=3)["changes"] == {}
    with pytest.raises(asg.AutoScalingInputError, match="desired_capacity must be >= 0, got -2"):
        asg.decide_capacity(SIZES, desired=-2)
    with pytest.raises(asg.AutoScalingInputError, match="desired_capacity is required"):
        asg.decide_capacity(SIZES)


# -- decide_restore ----------------------------------------------------------------------------------------------


def entry(frm, to, seq, group="gpu-worker"):
    return {
        "id": f"e{seq}",
        "seq": seq,
        "step": "asg_capacity",
        "resource": f"arn:{group}",
        "group_name": group,
        "changed": {"capacity": {"from": frm, "to": to}},
    }


SCALED = {"min_size": 1, "desired_capacity": 5, "max_size": 6}
SCALED_AGAIN = {"min_size": 1, "desired_capacity": 8, "max_size": 8}


def test_restore_goes_back_to_the_first_scales_sizes_when_the_group_has_the_last_ones():
    entries = asg.entries_for(
        [entry(SCALED, SCALED_AGAIN, 9), entry(SIZES, SCALED, 4), entry(SIZES, SCALED, 5, group="other")],
        "gpu-worker",
        "arn:gpu-worker",
    )
    assert [e["id"] for e in entries] == ["e4", "e9"]  # oldest first, other groups left out
    decision = asg.decide_restore(SCALED_AGAIN, entries)
    assert decision["action"] == "restore" and decision["to"] == SIZES
    assert decision["changes"] == {"desired_capacity": {"old": 8, "new": 3}, "max_size": {"old": 8, "new": 6}}


def test_a_group_changed_meanwhile_is_left_alone_unless_forced():
    entries = [entry(SIZES, SCALED, 1)]
    changed = dict(SCALED, desired_capacity=4)
    decision = asg.decide_restore(changed, entries)
    assert decision["action"] == "drift" and decision["changes"] == {}
    assert decision["left_alone"] == {"current": changed, "scaled_to": SCALED, "recorded": SIZES}
    assert "someone changed it meanwhile" in decision["reason"]
    forced = asg.decide_restore(changed, entries, force=True)
    assert forced["action"] == "restore" and forced["to"] == SIZES


def test_a_group_already_back_only_releases_and_nothing_recorded_is_nothing_to_do():
    assert asg.decide_restore(SIZES, [entry(SIZES, SCALED, 1)])["action"] == "release"
    assert asg.decide_restore(SIZES, [])["action"] == "none"
    with pytest.raises(asg.AutoScalingInputError, match="has no capacity from/to"):
        asg.entries_for([{"id": "x", "step": "asg_capacity", "resource": "arn:g", "changed": {}}], "g", "arn:g")


def test_active_refresh_and_refresh_record():
    refreshes = [{"InstanceRefreshId": "r2", "Status": "Successful"}, {"InstanceRefreshId": "r1", "Status": "Failed"}]
    assert asg.active_refresh(refreshes) is None
    assert (
        asg.active_refresh([{"InstanceRefreshId": "r3", "Status": "InProgress"}, *refreshes])["InstanceRefreshId"]
        == "r3"
    )
    tags = [
        {"Key": "firebreak:refreshed-by", "Value": "INC-1"},
        {"Key": "firebreak:refresh-id", "Value": "r2"},
        {"Key": "firebreak:refreshed-at", "Value": "2026-12-06T11:50:00Z"},
    ]
    assert asg.refresh_record(tags) == {"incident_id": "INC-1", "refresh_id": "r2", "at": "2026-12-06T11:50:00Z"}
    assert asg.refresh_record([{"Key": "Name", "Value": "gpu-worker"}]) is None


# -- ec2_reboot decisions ----------------------------------------------------------------------------------------


def evidence(iid, state="running", instance="ok", system="ok", health="Healthy", rebooted=None):
    return {
        "instance_id": iid,
        "state": state,
        "instance_status": instance,
        "system_status": system,
        "asg_health": health,
        "rebooted": rebooted,
    }


def test_only_stuck_running_workers_of_a_group_are_selected():
    items = [
        evidence("i-1", instance="impaired"),
        evidence("i-2"),
        evidence("i-3", health="Unhealthy"),
        evidence("i-4", state="stopped", instance="impaired"),
        evidence("i-5", system="impaired"),
    ]
    reboot, skipped = rb.select_targets(items, False, "impaired", "INC-1", 1800, False, NOW)
    assert reboot == ["i-1", "i-3", "i-5"]
    assert skipped == {"i-2": "healthy (status checks ok, Auto Scaling Healthy)", "i-4": "not running (state stopped)"}
    everyone, _ = rb.select_targets(items, False, "all", "INC-1", 1800, False, NOW)
    assert everyone == ["i-1", "i-2", "i-3", "i-5"]
    named, _ = rb.select_targets(items, True, "impaired", "INC-1", 1800, False, NOW)
    assert named == ["i-1", "i-2", "i-3", "i-5"]  # the filter does not apply to instances named by the caller


def test_an_instance_rebooted_by_this_incident_within_the_window_is_not_rebooted_again():
    recent = {"incident_id": "INC-1", "at": "2026-12-06T11:50:00Z"}
    old = {"incident_id": "INC-1", "at": "2026-12-06T10:00:00Z"}
    other = {"incident_id": "INC-2", "at": "2026-12-06T11:59:00Z"}
    items = [
        evidence("i-1", instance="impaired", rebooted=recent),
        evidence("i-2", instance="impaired", rebooted=old),
        evidence("i-3", instance="impaired", rebooted=other),
    ]
    reboot, skipped = rb.select_targets(items, False, "impaired", "INC-1", 1800, False, NOW)
    assert reboot == ["i-2", "i-3"] and "already rebooted by INC-1" in skipped["i-1"]
    forced, _ = rb.select_targets(items, False, "impaired", "INC-1", 1800, True, NOW)
    assert forced == ["i-1", "i-2", "i-3"]
    assert not rb.recently({"incident_id": "INC-1", "at": "garbage"}, "INC-1", 1800, NOW)


def test_console_tail_decodes_base64_and_keeps_the_end():
    import base64

    text = "boot\n" * 2000
    assert rb.console_tail(base64.b64encode(text.encode()).decode()) == text[-4096:]
    assert rb.console_tail("Linux version 2.6 plain text") == "Linux version 2.6 plain text"
    assert rb.console_tail(None) == ""


# -- the modules against fakes ------------------------------------------------------------------------------------


class FakeModule:
    def __init__(self, spec, check_mode=False, **params):
        self.params = {name: opt.get("default") for name, opt in spec.items()}
        self.params.update(retry_budget=0, incident_id="INC-1", **params)
        self.check_mode = check_mode
        self._diff = True
        self.warnings = []

    def warn(self, msg):
        self.warnings.append(msg)


class FakeAutoScaling:
    """A group that takes updates; ``stale`` makes it keep answering the old sizes (an update that did not take)."""

    meta = type("Meta", (), {"method_to_api_mapping": {}})()

    def __init__(self, stale=False):
        self.group = {
            "AutoScalingGroupName": "gpu-worker",
            "AutoScalingGroupARN": "arn:gpu-worker",
            "MinSize": 1,
            "DesiredCapacity": 3,
            "MaxSize": 6,
            "Instances": [
                {"InstanceId": f"i-{n}", "LifecycleState": "InService", "HealthStatus": "Healthy"} for n in range(3)
            ],
            "Tags": [],
        }
        self.stale = stale
        self.updates = []

    def describe_auto_scaling_groups(self, AutoScalingGroupNames):
        return {"AutoScalingGroups": [dict(self.group)] if AutoScalingGroupNames == ["gpu-worker"] else []}

    def update_auto_scaling_group(self, AutoScalingGroupName, **sizes):
        self.updates.append(sizes)
        if not self.stale:
            self.group.update(sizes)
            n = self.group["DesiredCapacity"]
            self.group["Instances"] = [
                {"InstanceId": f"i-{k}", "LifecycleState": "InService", "HealthStatus": "Healthy"} for k in range(n)
            ]


def run_capacity(client, check_mode=False, **params):
    module = FakeModule(autoscaling_capacity.ARGUMENT_SPEC, check_mode=check_mode, name="gpu-worker", **params)
    module.client = lambda service, **kw: client
    return autoscaling_capacity.run(module, {})


def test_scale_records_the_old_sizes_and_reads_back(monkeypatch):
    client = FakeAutoScaling()
    result = run_capacity(client, desired_capacity=5, wait=False)
    assert client.updates == [{"DesiredCapacity": 5}]
    assert result["after"]["desired_capacity"] == 5 and result["changed"] is True
    (recorded,) = result["containment"]
    assert recorded["step"] == "asg_capacity" and recorded["resource"] == "arn:gpu-worker"
    assert recorded["changed"]["capacity"] == {"from": SIZES, "to": dict(SIZES, desired_capacity=5)}


def test_check_mode_makes_no_update_and_predicts():
    client = FakeAutoScaling()
    result = run_capacity(client, check_mode=True, desired_capacity=8, raise_max=True)
    assert client.updates == [] and result["changed"] is True and result["containment"] == []
    assert result["diff"]["after"] == {"min_size": 1, "desired_capacity": 8, "max_size": 8}


def test_after_is_what_the_group_reads_back_not_the_plan():
    client = FakeAutoScaling(stale=True)  # takes the update but keeps answering desired 3
    with pytest.raises(asg.AutoScalingStateError, match=r"reads back \{'desired_capacity': 3\}") as failed:
        run_capacity(client, desired_capacity=5, wait=False)
    assert failed.value.fail_result()["after"]["desired_capacity"] == 3
    assert failed.value.fail_result()["changed"] is True  # the update was sent: the failure says so


def test_an_unknown_group_is_named_and_a_restore_of_a_deleted_group_releases_its_entries():
    with pytest.raises(asg.AutoScalingInputError, match="no Auto Scaling group named 'nope'"):
        module = FakeModule(autoscaling_capacity.ARGUMENT_SPEC, name="nope", desired_capacity=2)
        module.client = lambda service, **kw: FakeAutoScaling()
        autoscaling_capacity.run(module, {})
    module = FakeModule(
        autoscaling_capacity.ARGUMENT_SPEC,
        name="nope",
        state="restored",
        containments=[entry(SIZES, SCALED, 1, group="nope")],
    )
    module.client = lambda service, **kw: FakeAutoScaling()
    result = autoscaling_capacity.run(module, {})
    assert result["gone"] == ["nope"] and result["release"][0]["releases"] == ["e1"] and result["release"][0]["gone"]


class FakeEC2:
    meta = type("Meta", (), {"method_to_api_mapping": {}})()

    def __init__(self, impaired=()):
        self.impaired = set(impaired)
        self.rebooted, self.tagged = [], []

    def describe_instances(self, InstanceIds):
        return {
            "Reservations": [
                {"Instances": [{"InstanceId": i, "State": {"Name": "running"}, "Tags": []} for i in InstanceIds]}
            ]
        }

    def describe_instance_status(self, InstanceIds, IncludeAllInstances):
        return {
            "InstanceStatuses": [
                {
                    "InstanceId": i,
                    "InstanceStatus": {"Status": "impaired" if i in self.impaired else "ok"},
                    "SystemStatus": {"Status": "ok"},
                }
                for i in InstanceIds
            ]
        }

    def reboot_instances(self, InstanceIds):
        self.rebooted.append(list(InstanceIds))
        self.impaired -= set(InstanceIds)

    def create_tags(self, Resources, Tags):
        self.tagged.append((list(Resources), {t["Key"]: t["Value"] for t in Tags}))

    def get_console_output(self, InstanceId):
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": "UnsupportedOperation", "Message": "no console"}, "ResponseMetadata": {}},
            "GetConsoleOutput",
        )


def run_reboot(ec2, autoscaling=None, check_mode=False, **params):
    module = FakeModule(ec2_instance_reboot.ARGUMENT_SPEC, check_mode=check_mode, **params)
    module.client = lambda service, **kw: ec2 if service == "ec2" else autoscaling
    return module, ec2_instance_reboot.run(module, {})


def test_reboot_takes_the_stuck_worker_tags_it_and_waits(monkeypatch):
    ec2 = FakeEC2(impaired={"i-1"})
    module, result = run_reboot(ec2, FakeAutoScaling(), auto_scaling_group="gpu-worker", console_output=True)
    assert ec2.rebooted == [["i-1"]] and result["rebooted"] == ["i-1"]
    ((ids, tags),) = ec2.tagged
    assert ids == ["i-1"] and tags["firebreak:rebooted-by"] == "INC-1" and tags["firebreak:incident"] == "INC-1"
    assert set(result["not_rebooted"]) == {"i-0", "i-2"}
    before = {e["instance_id"]: e for e in result["before"]["instances"]}
    assert before["i-1"]["instance_status"] == "impaired" and before["i-1"]["console_output"] is None
    assert any("console output of i-1 not captured" in w for w in module.warnings)
    after = {e["instance_id"]: e for e in result["after"]["instances"]}
    assert after["i-1"]["instance_status"] == "ok"


def test_more_targets_than_the_bound_are_refused_and_nothing_is_rebooted():
    ec2 = FakeEC2()
    with pytest.raises(rb.RebootInputError, match=r"refusing to reboot 3 instances of gpu-worker .* max_instances 2"):
        run_reboot(ec2, FakeAutoScaling(), auto_scaling_group="gpu-worker", health_filter="all")
    assert ec2.rebooted == []


def test_reboot_check_mode_and_bad_input():
    ec2 = FakeEC2(impaired={"i-0"})
    _, result = run_reboot(ec2, FakeAutoScaling(), check_mode=True, auto_scaling_group="gpu-worker")
    assert ec2.rebooted == [] and ec2.tagged == [] and result["changed"] is True and result["rebooted"] == ["i-0"]
    for params, message in (
        ({}, "give instance_ids or auto_scaling_group"),
        ({"instance_ids": ["web-1"]}, r"\['web-1'\] are not EC2 instance ids"),
        ({"method": "instance_refresh", "instance_ids": ["i-1"]}, "needs auto_scaling_group"),
        ({"instance_ids": ["i-1"], "min_healthy_percentage": 120}, "min_healthy_percentage must be between 0 and 100"),
    ):
        with pytest.raises(rb.RebootInputError, match=message):
            run_reboot(FakeEC2(), FakeAutoScaling(), **params)


def test_the_runner_keeps_the_contract_for_a_refused_reboot():
    class Recorder:
        check_mode = False

        def fail_json(self, **result):
            raise SystemExit(result)

        def exit_json(self, **result):
            raise SystemExit(result)

    def refuse(module, result):
        result.update(changed=False, before={"instances": []})
        raise rb.RebootInputError("refusing to reboot 3 instances", changed=False)

    with pytest.raises(SystemExit) as ended:
        step.run_step(Recorder(), refuse, "mitigation")
    assert ended.value.args[0]["msg"] == "refusing to reboot 3 instances"
    assert ended.value.args[0]["containment"] == [] and ended.value.args[0]["step_kind"] == "mitigation"


def test_the_waits_are_bounded():
    clock = iter(range(0, 1000, 5)).__next__
    client = FakeAutoScaling(stale=True)
    client.group["Instances"] = client.group["Instances"][:1]  # 1 of 3 InService, for ever
    caller = step.Caller(0)
    with pytest.raises(asg.AutoScalingWaitTimeout, match="1 of 3 instances InService and Healthy after 20s") as late:
        asg.wait_in_service(caller, client, "gpu-worker", 20, sleep=lambda s: None, clock=clock)
    assert late.value.fail_result()["after"]["in_service"] == 1

    class Refreshing:
        meta = FakeAutoScaling.meta

        def describe_instance_refreshes(self, AutoScalingGroupName):
            return {"InstanceRefreshes": [{"InstanceRefreshId": "r1", "Status": "InProgress"}]}

    clock = iter(range(0, 1000, 5)).__next__
    last = asg.wait_refresh(caller, Refreshing(), "gpu-worker", "r1", 20, sleep=lambda s: None, clock=clock)
    assert last["Status"] == "InProgress"  # the module then fails naming the status
