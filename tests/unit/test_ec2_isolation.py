"""EC2 isolation and evidence: decisions without AWS (the roles' contract is tests/unit/test_role_contract.py)."""

from __future__ import annotations

import re
import sys

import pytest
import yaml

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import ec2_isolation as iso
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import evidence as ev
from ansible_collections.firebreak.runbooks.plugins.modules import ec2_instance_isolate

Q = "sg-00000000000000000"
APP, MGMT = "sg-0aaaaaaaaaaaaaaaa", "sg-0bbbbbbbbbbbbbbbb"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-tg/0123456789abcdef"


def eni(eni_id, *groups, index=0):
    return {
        "NetworkInterfaceId": eni_id,
        "Groups": [{"GroupId": g} for g in groups],
        "Attachment": {"DeviceIndex": index},
    }


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["i-0123456789abcdef0", "i-01234567"])
def test_instance_ids_accepted(value):
    assert iso.validate_instance_id(f" {value} ") == value


@pytest.mark.parametrize("value", ["", "web-1", "i-123", "i-0123456789ABCDEF0", "sg-0123456789abcdef0", None])
def test_bad_instance_ids_are_named(value):
    with pytest.raises(iso.IsolationInputError, match=re.escape(repr(value))):
        iso.validate_instance_id(value)


def test_bad_group_and_target_group_are_named():
    with pytest.raises(iso.IsolationInputError, match="quarantine_group_id: 'sg-xyz'"):
        iso.validate_group_id("sg-xyz", "quarantine_group_id")
    assert iso.validate_target_group_arn(TG) == TG
    with pytest.raises(iso.IsolationInputError, match="not a target group ARN"):
        iso.validate_target_group_arn("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/1")


@pytest.mark.parametrize("name", ["ab", "Evidence", "a..b", "-evidence", "192.168.1.1", "x" * 64])
def test_bad_bucket_names(name):
    with pytest.raises(ev.EvidenceInputError, match="not a valid S3 bucket name"):
        ev.validate_bucket_name(name, "evidence_bucket")


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("s3://evidence", "characters '/:' are not allowed"),
        ("Evidence_1", "characters 'E_' are not allowed"),
        ("ab", "2 characters, AWS allows 3 to 63"),
        ("-evidence", "must begin and end with a lowercase letter or a digit"),
        ("a..b", "two adjacent periods"),
        ("192.168.1.1", "formatted as an IP address"),
        ("xn--evidence", "the prefix 'xn--' is reserved"),
        ("evidence-s3alias", "the suffix '-s3alias' is reserved"),
    ],
)
def test_bad_bucket_names_say_which_rule(name, rule):
    assert rule in ev.bucket_name_problem(name)
    with pytest.raises(ev.EvidenceInputError, match=f"^evidence_bucket: {re.escape(repr(name))} is not a valid S3"):
        ev.validate_bucket_name(name, "evidence_bucket")


def test_good_bucket_names():
    for name in ("firebreak-sandbox-evidence", "a.b-c", "abc", "x" * 63):
        assert ev.bucket_name_problem(name) is None


# -- isolation plan --------------------------------------------------------------------------------


def test_every_interface_not_only_in_quarantine_moves_with_its_own_groups():
    plan = iso.plan_isolation([eni("eni-1", APP), eni("eni-2", MGMT, APP, index=1), eni("eni-3", Q, index=2)], Q)
    assert plan == {"move": {"eni-1": [APP], "eni-2": sorted([APP, MGMT])}, "already": ["eni-3"]}


def test_an_interface_in_quarantine_and_another_group_still_moves():
    assert iso.plan_isolation([eni("eni-1", Q, APP)], Q)["move"] == {"eni-1": sorted([APP, Q])}


def test_extra_groups_cannot_defeat_the_quarantine_group_they_are_replaced():
    """Issue 21 finding 4, the EC2 side: security groups only allow and add up, so an allow-all group left beside
    the quarantine group would defeat it, as an allow-all NetworkPolicy does. The step never adds the quarantine
    group: it sets each interface's groups to the quarantine group alone, so an interface already holding the
    quarantine group and an allow-all one is not taken as isolated; it moves, both groups recorded and restored.
    (Network ACLs cannot defeat it either: traffic must pass both the subnet's ACL and the interface's groups.)"""
    allow_all = "sg-0cccccccccccccccc"
    plan = iso.plan_isolation([eni("eni-1", Q, allow_all), eni("eni-2", Q, index=1)], Q)
    assert plan == {"move": {"eni-1": sorted([Q, allow_all])}, "already": ["eni-2"]}
    changed = {"quarantine_group_id": Q, "groups": plan["move"]}
    actions = iso.decide_release(changed, {"instance_exists": True, "enis": {"eni-1": [Q]}})
    assert actions["groups"] == {"eni-1": sorted([Q, allow_all])}


def test_quarantine_and_untrack_group_rules():
    assert iso.rules_of({"IpPermissions": [], "IpPermissionsEgress": []}) == []
    allow_all = {
        "IpPermissions": [iso.ALL_TRAFFIC_V4],
        "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    }
    assert iso.is_allow_all(allow_all)
    assert not iso.is_allow_all({"IpPermissions": [iso.ALL_TRAFFIC_V4], "IpPermissionsEgress": []})
    tcp_only = {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    assert not iso.is_allow_all({"IpPermissions": [tcp_only], "IpPermissionsEgress": [tcp_only]})


def test_protection_and_tag_plans_record_previous_values():
    assert iso.plan_protection({"disableApiTermination": True, "disableApiStop": False}) == {"disableApiStop": False}
    assert iso.plan_protection({"disableApiTermination": True, "disableApiStop": True}) == {}
    assert iso.plan_tags({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "4"}) == {
        "b": {"previous": "2", "value": "3"},
        "c": {"previous": None, "value": "4"},
    }


def test_snapshot_plan_skips_volumes_already_snapshotted_for_the_incident():
    existing = [
        {"VolumeId": "vol-1", "SnapshotId": "snap-1", "State": "completed"},
        {"VolumeId": "vol-2", "SnapshotId": "snap-2", "State": "error"},
        {"VolumeId": "vol-9", "SnapshotId": "snap-9", "State": "completed"},
    ]
    assert iso.plan_snapshots(["vol-1", "vol-2"], existing) == (["vol-2"], {"vol-1": "snap-1"})


def test_instance_targets_by_id_or_address_skipping_unused_and_draining():
    health = {
        TG: [
            {"Target": {"Id": "i-1", "Port": 80}, "TargetHealth": {"State": "healthy"}},
            {
                "Target": {"Id": "10.0.0.5", "Port": 8080, "AvailabilityZone": "us-east-1a"},
                "TargetHealth": {"State": "unhealthy"},
            },
            {"Target": {"Id": "i-1", "Port": 81}, "TargetHealth": {"State": "draining"}},
            {"Target": {"Id": "i-2", "Port": 80}, "TargetHealth": {"State": "healthy"}},
        ]
    }
    assert iso.instance_targets(health, "i-1", ["10.0.0.5"]) == [
        {"target_group_arn": TG, "id": "i-1", "port": 80},
        {"target_group_arn": TG, "id": "10.0.0.5", "port": 8080, "availability_zone": "us-east-1a"},
    ]


# -- release decisions -----------------------------------------------------------------------------

CHANGED = {
    "groups": {"eni-1": [APP], "eni-2": [APP, MGMT], "eni-3": [APP], "eni-4": [APP]},
    "quarantine_group_id": Q,
    "protection": {"disableApiTermination": False, "disableApiStop": False},
    "tags": {"firebreak:incident": {"previous": None, "value": "INC-1"}, "owner": {"previous": "bob", "value": "sec"}},
    "target_groups": [{"target_group_arn": TG, "id": "i-1", "port": 80}],
    "auto_scaling_group": {"name": "web", "decremented": False},
}


def test_release_undoes_only_what_is_still_as_contained():
    now = {
        "instance_exists": True,
        "enis": {"eni-1": [Q], "eni-2": [MGMT], "eni-3": [APP]},  # eni-4 deleted meanwhile
        "protection": {"disableApiTermination": True, "disableApiStop": False},  # stop flag turned off by hand
        "tags": {"firebreak:incident": "INC-1", "owner": "alice"},  # owner retagged by hand
        "registered": {(TG, "i-1", 80): False},
        "in_asg": None,
    }
    actions = iso.decide_release(CHANGED, now)
    assert actions["groups"] == {"eni-1": [APP]}
    assert actions["left_alone"]["groups"]["eni-2"]["groups_now"] == [MGMT]
    assert "no longer exists" in actions["left_alone"]["groups"]["eni-4"]["reason"]
    assert actions["restored"]["already"]["groups"] == {"eni-3": [APP]}
    assert actions["protection"] == {"disableApiTermination": False}
    assert actions["restored"]["already"]["protection"] == {"disableApiStop": False}
    assert actions["tags_delete"] == ["firebreak:incident"] and actions["tags_set"] == {}
    assert actions["left_alone"]["tags"]["owner"]["now"] == "alice"
    assert actions["register"] == CHANGED["target_groups"]
    assert (
        actions["attach_asg"] is None and "desired capacity" in actions["not_restored"]["auto_scaling_group"]["reason"]
    )


def test_release_leaves_targets_registered_again_and_asg_attached_alone():
    now = {
        "instance_exists": True,
        "enis": {},
        "protection": {"disableApiTermination": True, "disableApiStop": True},
        "tags": {},
        "registered": {(TG, "i-1", 80): True},
        "in_asg": "other",
    }
    changed = dict(CHANGED, auto_scaling_group={"name": "web", "decremented": True}, tags={})
    actions = iso.decide_release(changed, now)
    assert actions["register"] == [] and actions["left_alone"]["target_groups"][0]["id"] == "i-1"
    assert actions["attach_asg"] is None and actions["left_alone"]["auto_scaling_group"]["now"] == "other"
    now["in_asg"] = None
    assert iso.decide_release(changed, now)["attach_asg"] == "web"


def test_release_of_a_terminated_instance_restores_nothing_on_it():
    actions = iso.decide_release(CHANGED, {"instance_exists": False, "enis": {}})
    assert actions["protection"] == {} and actions["register"] == []
    assert set(actions["left_alone"]) >= {"groups", "protection", "tags", "target_groups", "auto_scaling_group"}


# -- evidence copy plan ----------------------------------------------------------------------------


def test_evidence_keys_and_copy_plan():
    assert ev.normalize_prefix("/logs") == "logs/" and ev.normalize_prefix("") == ""
    assert ev.evidence_key("incidents/INC-1/logs", "trail", "AWSLogs/a.gz") == "incidents/INC-1/logs/trail/AWSLogs/a.gz"
    sources = [
        {"key": "a", "dest_key": "e/a", "size": 3, "etag": '"x"'},
        {"key": "b", "dest_key": "e/b", "size": 3, "etag": '"y"'},
        {"key": "c", "dest_key": "e/c", "size": 3, "etag": '"z"'},
    ]
    existing = {
        "e/a": {"size": 3, "sha256": "aa", "source_etag": "x"},  # same: already copied
        "e/b": {"size": 3, "sha256": "bb", "source_etag": "old"},  # source changed since: copy again
    }
    to_copy, already = ev.plan_copies(sources, existing)
    assert [s["key"] for s in to_copy] == ["b", "c"]
    assert already == [dict(sources[0], sha256="aa")]
    assert ev.sha256_b64("00" * 32) == "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


# -- module wiring ---------------------------------------------------------------------------------


def _doc(module) -> dict:
    return yaml.safe_load(module.DOCUMENTATION)


def test_isolate_argument_spec_mirrors_documentation():
    documented = _doc(ec2_instance_isolate)["options"]
    spec = ec2_instance_isolate.ARGUMENT_SPEC
    assert set(spec) == set(documented) | {
        "retry_budget",
        "incident_id",
        "claims_bucket",
        "claims_dir",
        "state",
        "containments",
    }  # doc fragments
    for name, option in documented.items():
        assert spec[name]["type"] == option["type"], name
        assert spec[name].get("default") == option.get("default"), name


# -- waiting after the isolation (moto completes snapshots and deregisters at once) ----------------


class FakeEC2:
    def __init__(self, states):
        self.states, self.calls = list(states), 0

    def describe_snapshots(self, SnapshotIds):
        state = self.states[min(self.calls, len(self.states) - 1)]
        self.calls += 1
        return {"Snapshots": [{"SnapshotId": s, "State": state} for s in SnapshotIds]}


def test_wait_settled_waits_for_pending_snapshots_and_never_raises_on_timeout():
    from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import Caller

    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    ec2 = FakeEC2(["pending", "pending", "completed"])
    assert iso.wait_settled(ec2, None, Caller(5), ["snap-1"], [], 60, sleep=sleep, clock=lambda: now[0]) == {}
    assert ec2.calls == 3
    ec2 = FakeEC2(["pending"])
    pending = iso.wait_settled(ec2, None, Caller(5), ["snap-1"], [], 10, sleep=sleep, clock=lambda: now[0])
    assert pending == {"snapshots": ["snap-1"]}
