"""rds_instance_scale and rds_snapshot_restore: the pure decisions, and the module flows against an in-memory
RDS double for what moto cannot show (a class change that goes through ``modifying`` and a pending class, a
read-back that differs from the plan, an orderable-class list filtered by class as AWS does)."""

from __future__ import annotations

import copy
import datetime

import pytest

from tests.unit.test_rds_modules import FakeModule, FakeRDS, mutating, seeded

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import rds as rdsu  # isort: skip
from ansible_collections.firebreak.runbooks.plugins.modules import rds_instance_scale  # isort: skip

UTC = datetime.UTC
NOW = datetime.datetime.now(UTC)


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(rdsu, "FIRST_POLL_DELAY", 0.0)
    monkeypatch.setattr(rdsu, "POLL_DELAY", 0.0)


# -- decisions ----------------------------------------------------------------------------------------------


def test_scale_records_the_current_class_or_the_one_already_recorded():
    first = rdsu.decide_class_scale("db.t3.medium", "db.t3.large", None)
    assert (first["action"], first["from"], first["changed"]) == ("modify", "db.t3.medium", True)
    record = {"from": "db.t3.medium", "to": "db.t3.large", "at": "x"}
    second = rdsu.decide_class_scale("db.t3.large", "db.t3.xlarge", record)
    assert (second["action"], second["from"]) == ("modify", "db.t3.medium")


def test_scale_to_the_current_class_is_no_change_and_a_pending_change_is_waited_for():
    assert rdsu.decide_class_scale("db.t3.large", "db.t3.large", None)["action"] == "none"
    pending = rdsu.decide_class_scale("db.t3.medium", "db.t3.large", None, pending="db.t3.large")
    assert pending["action"] == "wait" and pending["changed"] is False
    # a pending change to another class: ask again for ours
    other = rdsu.decide_class_scale("db.t3.medium", "db.t3.large", None, pending="db.m5.large")
    assert other["action"] == "modify"


@pytest.mark.parametrize(
    ("current", "pending", "action", "left_alone"),
    [
        ("db.t3.large", None, "modify", False),
        ("db.t3.medium", None, "forget", False),
        ("db.m5.large", None, "none", True),
        ("db.t3.large", "db.t3.medium", "wait", False),
        ("db.t3.large", "db.m5.large", "none", True),
    ],
)
def test_restore(current, pending, action, left_alone):
    record = {"from": "db.t3.medium", "to": "db.t3.large", "at": "x"}
    decision = rdsu.decide_class_restore(current, record, pending)
    assert decision["action"] == action
    assert bool(decision["left_alone"]) is left_alone


def test_restore_without_a_record_is_no_change():
    assert rdsu.decide_class_restore("db.t3.large", None)["action"] == "none"


def test_class_verdict():
    listed = [{"DBInstanceClass": "db.r5.large"}, {"DBInstanceClass": "db.r5.xlarge"}]
    assert rdsu.class_verdict("db.r5.xlarge", listed, None)["verdict"] == "valid"
    # moto ignores the class filter: other classes answered mean the wanted one is not offered
    assert rdsu.class_verdict("db.m1.small", listed, None) == {
        "verdict": "invalid",
        "known_classes": ["db.r5.large", "db.r5.xlarge"],
    }
    # AWS filters: nothing for the class, but the engine version has classes
    assert rdsu.class_verdict("db.m1.small", [], listed)["verdict"] == "invalid"
    assert rdsu.class_verdict("db.m1.small", [], [])["verdict"] == "unknown"


@pytest.mark.parametrize("value", ["t3.large", "db.", "db.T3 large", "", None, "db.r6g.large;x"])
def test_a_value_that_is_not_a_class_is_refused_naming_it(value):
    with pytest.raises(rdsu.RDSInputError, match="is not a DB instance class"):
        rdsu.validate_instance_class(value)


def test_classes_are_folded_to_lower_case():
    assert rdsu.validate_instance_class(" DB.R6G.XLarge ") == "db.r6g.xlarge"
    assert rdsu.validate_instance_class("db.serverless") == "db.serverless"


def test_the_disruption_names_what_happens():
    rds = seeded()
    cluster = rds.describe_db_clusters(DBClusterIdentifier="orders-db")["DBClusters"][0]
    writer = rds.instances["orders-db-1"]
    assert "writer of DB cluster orders-db" in rdsu.scale_disruption(writer, cluster)
    assert "reader of DB cluster orders-db" in rdsu.scale_disruption(rds.instances["orders-db-2"], cluster)
    assert "Multi-AZ" in rdsu.scale_disruption(rds.instances["reports-db"], None)
    assert "single-AZ" in rdsu.scale_disruption(dict(rds.instances["reports-db"], MultiAZ=False), None)


# -- the scale module against a double -------------------------------------------------------------------------


class ScalingRDS(FakeRDS):
    """ModifyDBInstance goes through ``modifying`` with a pending class for ``polls`` reads, as AWS does;
    DescribeOrderableDBInstanceOptions filters by class, as AWS does."""

    def __init__(self, polls=2, takes=True, orderable=None):
        super().__init__()
        self.polls, self.takes, self.orderable = polls, takes, orderable or []

    def modify_db_instance(self, **kw):
        self.calls.append(("modify_db_instance", kw))
        inst = self.instances[kw["DBInstanceIdentifier"]]
        if self.takes:
            inst["_target"], inst["_polls"] = kw["DBInstanceClass"], self.polls
        return {}

    def describe_db_instances(self, DBInstanceIdentifier=None, Filters=None, Marker=None):
        inst = self.instances.get(DBInstanceIdentifier or "")
        if inst is not None and inst.get("_target"):
            if inst["_polls"] > 0:
                inst["_polls"] -= 1
                inst["DBInstanceStatus"] = "modifying"
                inst["PendingModifiedValues"] = {"DBInstanceClass": inst["_target"]}
            else:
                inst.update(DBInstanceStatus="available", DBInstanceClass=inst.pop("_target"), PendingModifiedValues={})
        return super().describe_db_instances(DBInstanceIdentifier, Filters, Marker)

    def describe_orderable_db_instance_options(self, Engine, EngineVersion=None, DBInstanceClass=None, **kw):
        self.calls.append(("describe_orderable_db_instance_options", DBInstanceClass))
        found = [o for o in self.orderable if DBInstanceClass in (None, o["DBInstanceClass"])]
        return {"OrderableDBInstanceOptions": copy.deepcopy(found)}

    def remove_tags_from_resource(self, **kw):
        self.calls.append(("remove_tags_from_resource", kw))
        return {}


def scaling(**kw):
    rds = ScalingRDS(**kw)
    rds.clusters, rds.instances = seeded().clusters, seeded().instances
    for inst in rds.instances.values():
        inst.setdefault("EngineVersion", "15.4")
        inst.setdefault("Engine", "aurora-postgresql")
    return rds


def run_scale(rds, check_mode=False, **params):
    module = FakeModule(rds_instance_scale.ARGUMENT_SPEC, rds, check_mode=check_mode, **params)
    module.params.setdefault("incident_id", None)
    return rds_instance_scale.run(module, {})


def test_the_scale_waits_through_modifying_and_reads_the_class_back():
    rds = scaling(polls=2)
    result = run_scale(rds, instance="reports-db", instance_class="db.r6g.xlarge", incident_id="INC-9")
    modify = next(kw for name, kw in rds.calls if name == "modify_db_instance")
    asked = {"DBInstanceIdentifier": "reports-db", "DBInstanceClass": "db.r6g.xlarge", "ApplyImmediately": True}
    assert modify == asked
    assert result["after"]["instance_class"] == "db.r6g.xlarge" and result["after"]["status"] == "available"
    tags = next(kw for name, kw in rds.calls if name == "add_tags_to_resource")["Tags"]
    assert {"Key": "firebreak:scaled-from-class", "Value": "db.r6g.large"} in tags
    assert result["changed"] is True and result["scale"]["recorded"] is True


def test_after_is_what_the_api_says_not_the_plan():
    rds = scaling(takes=False)  # accepts the call, keeps the class
    result = run_scale(rds, instance="reports-db", instance_class="db.r6g.xlarge", wait=False)
    assert result["after"]["instance_class"] == "db.r6g.large"


def test_a_wait_that_never_ends_fails_naming_the_class_it_saw():
    rds = scaling(polls=10_000)
    with pytest.raises(rdsu.RDSWaitTimeout, match=r"pending db\.r6g\.xlarge"):
        run_scale(rds, instance="reports-db", instance_class="db.r6g.xlarge", wait_timeout=0)


def test_a_pending_change_to_the_class_is_waited_for_not_made_again():
    rds = scaling(polls=1)
    rds.instances["reports-db"].update(_target="db.r6g.xlarge", _polls=1)
    result = run_scale(rds, instance="reports-db", instance_class="db.r6g.xlarge")
    assert "modify_db_instance" not in mutating(rds)
    assert result["changed"] is False and result["after"]["instance_class"] == "db.r6g.xlarge"


def test_the_orderable_list_refuses_a_class_filtered_out_as_aws_does():
    rds = scaling(orderable=[{"DBInstanceClass": "db.r6g.large"}, {"DBInstanceClass": "db.r6g.xlarge"}])
    with pytest.raises(rdsu.RDSInputError, match=r"'db\.m1\.small' is not offered for aurora-postgresql 15\.4"):
        run_scale(rds, instance="orders-db-1", instance_class="db.m1.small")
    assert mutating(rds) == []
    result = run_scale(rds, instance="orders-db-1", instance_class="db.r6g.xlarge")
    assert result["class_check"]["verdict"] == "valid" and result["instance"]["role"] == "writer"


def test_check_mode_predicts_and_makes_no_mutating_call():
    rds = scaling()
    result = run_scale(rds, check_mode=True, instance="orders-db-2", instance_class="db.r6g.xlarge")
    assert result["changed"] is True and result["after"]["instance_class"] == "db.r6g.xlarge"
    assert "disruptive" in result["msg"] and result["instance"]["role"] == "reader"
    assert mutating(rds) == []
    assert rds.instances["orders-db-2"]["DBInstanceClass"] == "db.r6g.large"


def test_an_instance_that_is_not_available_is_refused():
    rds = scaling()
    rds.instances["reports-db"]["DBInstanceStatus"] = "storage-full"
    with pytest.raises(rdsu.RDSInputError, match="is storage-full, not available"):
        run_scale(rds, instance="reports-db", instance_class="db.r6g.xlarge")
    assert mutating(rds) == []


def test_restore_puts_the_recorded_class_back_and_removes_the_record():
    rds = scaling(polls=0)
    rds.instances["reports-db"].update(
        DBInstanceClass="db.r6g.xlarge",
        TagList=[
            {"Key": "firebreak:scaled-from-class", "Value": "db.r6g.large"},
            {"Key": "firebreak:scaled-to-class", "Value": "db.r6g.xlarge"},
        ],
    )
    result = run_scale(rds, instance="reports-db", state="restored")
    assert result["after"]["instance_class"] == "db.r6g.large"
    removed = next(kw for name, kw in rds.calls if name == "remove_tags_from_resource")
    assert set(removed["TagKeys"]) == set(rdsu.CLASS_SCALE_TAGS)


# -- snapshot restore: decisions ------------------------------------------------------------------------------


def snap(ident, minutes_ago, kind="automated", status="available", source="orders-db"):
    return {
        "id": ident,
        "arn": f"arn:{ident}",
        "source": source,
        "type": kind,
        "status": status,
        "engine": "aurora-postgresql",
        "engine_version": "15.4",
        "created": NOW - datetime.timedelta(minutes=minutes_ago),
        "encrypted": False,
    }


def test_the_latest_available_snapshot_of_the_type_is_chosen():
    found = [snap("a", 60), snap("b", 10, kind="manual"), snap("c", 5, status="creating"), snap("d", 30)]
    assert rdsu.choose_snapshot(found, "orders-db")["id"] == "b"
    assert rdsu.choose_snapshot(found, "orders-db", "automated")["id"] == "d"
    with pytest.raises(rdsu.RDSInputError, match=r"no available manual snapshot of 'x' .*a \(automated, available\)"):
        rdsu.choose_snapshot([snap("a", 60)], "x", "manual")


def test_the_data_loss_window_is_now_minus_the_snapshot_time():
    window = rdsu.data_loss_window(NOW - datetime.timedelta(hours=10, minutes=30), NOW)
    assert window["seconds"] == 37800 and "10h 30m 00s before now" in window["text"]


def test_snapshot_fields_are_the_same_for_both_kinds():
    cluster = {
        "DBClusterSnapshotIdentifier": "c1",
        "DBClusterIdentifier": "Orders-DB",
        "SnapshotType": "manual",
        "Status": "available",
        "SnapshotCreateTime": NOW,
        "StorageEncrypted": True,
    }
    fields = rdsu.snapshot_fields(cluster, "cluster")
    assert (fields["id"], fields["source"], fields["encrypted"]) == ("c1", "orders-db", True)
    instance = {"DBSnapshotIdentifier": "i1", "DBInstanceIdentifier": "reports-db", "Encrypted": False}
    assert rdsu.snapshot_fields(instance, "instance")["source"] == "reports-db"


@pytest.mark.parametrize(
    ("tags", "asked", "message"),
    [
        ({}, None, "it is not a restore of orders-db"),
        ({rdsu.TAG_RESTORED_FROM: "orders-db", "firebreak:incident": "INC-1"}, None, "not from a snapshot"),
        (
            {rdsu.TAG_RESTORED_FROM: "orders-db", "firebreak:incident": "INC-2", rdsu.TAG_RESTORED_FROM_SNAPSHOT: "s1"},
            None,
            "restored for incident 'INC-2'",
        ),
        (
            {rdsu.TAG_RESTORED_FROM: "orders-db", "firebreak:incident": "INC-1", rdsu.TAG_RESTORED_FROM_SNAPSHOT: "s1"},
            "s2",
            "restore of snapshot 's1', not 's2'",
        ),
    ],
)
def test_an_existing_target_that_is_not_our_restore_is_refused(tags, asked, message):
    with pytest.raises(rdsu.RDSInputError, match=message):
        rdsu.check_snapshot_target("cluster", "orders-db-snap", tags, "orders-db", "INC-1", asked)


def test_our_restore_is_accepted_and_names_its_snapshot():
    tags = {rdsu.TAG_RESTORED_FROM: "orders-db", "firebreak:incident": "INC-1", rdsu.TAG_RESTORED_FROM_SNAPSHOT: "s1"}
    assert rdsu.check_snapshot_target("cluster", "t", tags, "orders-db", "INC-1", None) == "s1"
    assert rdsu.check_snapshot_target("cluster", "t", tags, "orders-db", "INC-1", "s1") == "s1"


def test_settings_come_from_the_given_options_then_the_source():
    source = {
        "DBSubnetGroup": {"DBSubnetGroupName": "src-subnets"},
        "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-src"}],
        "DBParameterGroups": [{"DBParameterGroupName": "src-pg"}],
        "DBInstanceClass": "db.t3.medium",
        "MultiAZ": True,
    }
    given = {"subnet_group": None, "security_groups": ["sg-given"], "parameter_group": None, "instance_class": None}
    out = rdsu.restored_settings(source, "instance", given)
    assert out["subnet_group"] == "src-subnets" and out["security_groups"] == ["sg-given"]
    assert out["how"] == {
        "subnet_group": "source",
        "security_groups": "given",
        "parameter_group": "source",
        "instance_class": "source",
    }
    gone = rdsu.restored_settings(None, "cluster", given)
    assert gone["subnet_group"] is None and gone["how"]["subnet_group"] == "snapshot default"


# -- snapshot restore: the module against a double ----------------------------------------------------------


class SnapshotRDS(FakeRDS):
    """Cluster snapshots and a restored cluster that stays ``creating`` for ``polls`` reads, as AWS does."""

    def __init__(self, polls=2):
        super().__init__()
        self.snapshots, self.polls, self.status_at_create = [], polls, []

    def describe_db_cluster_snapshots(self, DBClusterIdentifier=None, DBClusterSnapshotIdentifier=None, Marker=None):
        self.calls.append(("describe_db_cluster_snapshots", DBClusterIdentifier or DBClusterSnapshotIdentifier))
        found = [
            s
            for s in self.snapshots
            if DBClusterIdentifier in (None, s["DBClusterIdentifier"])
            and DBClusterSnapshotIdentifier in (None, s["DBClusterSnapshotIdentifier"])
        ]
        return {"DBClusterSnapshots": copy.deepcopy(found)}

    def restore_db_cluster_from_snapshot(self, **kw):
        self.calls.append(("restore_db_cluster_from_snapshot", kw))
        self.clusters[kw["DBClusterIdentifier"]] = {
            "DBClusterIdentifier": kw["DBClusterIdentifier"],
            "DBClusterArn": f"arn:aws:rds:us-east-1:1:cluster:{kw['DBClusterIdentifier']}",
            "Engine": kw["Engine"],
            "Status": "creating",
            "TagList": kw["Tags"],
            "_writer": None,
            "_polls": self.polls,
        }
        return {}

    def create_db_instance(self, **kw):
        self.status_at_create.append(self.clusters[kw["DBClusterIdentifier"]]["Status"])
        return super().create_db_instance(**kw)

    def describe_db_clusters(self, DBClusterIdentifier):
        cluster = self.clusters.get(DBClusterIdentifier)
        if cluster is not None and cluster.get("_polls") is not None:
            if cluster["_polls"] <= 0:
                cluster["Status"] = "available"
            cluster["_polls"] -= 1
        return super().describe_db_clusters(DBClusterIdentifier)


def snapshot_rds(polls=2):
    rds = SnapshotRDS(polls)
    base = seeded()
    rds.clusters, rds.instances = base.clusters, base.instances
    for ident, minutes in (("rds:orders-db-old", 120), ("orders-db-manual", 30)):
        rds.snapshots.append(
            {
                "DBClusterSnapshotIdentifier": ident,
                "DBClusterIdentifier": "orders-db",
                "SnapshotType": "manual" if "manual" in ident else "automated",
                "Status": "available",
                "Engine": "aurora-postgresql",
                "SnapshotCreateTime": NOW - datetime.timedelta(minutes=minutes),
            }
        )
    return rds


def run_restore(rds, check_mode=False, **params):
    from ansible_collections.firebreak.runbooks.plugins.modules import rds_snapshot_restore

    module = FakeModule(rds_snapshot_restore.ARGUMENT_SPEC, rds, check_mode=check_mode, **params)
    module.params.setdefault("incident_id", None)
    return rds_snapshot_restore.run(module, {})


def test_the_cluster_is_waited_for_before_its_instances_and_custom_groups_are_passed():
    rds = snapshot_rds(polls=2)
    result = run_restore(rds, source="orders-db", target="orders-new", incident_id="INC-3")
    restore = next(kw for name, kw in rds.calls if name == "restore_db_cluster_from_snapshot")
    assert restore["SnapshotIdentifier"] == "orders-db-manual" and restore["Engine"] == "aurora-postgresql"
    assert restore["DBClusterParameterGroupName"] == "orders-cluster-pg"
    assert restore["DBSubnetGroupName"] == "orders-subnets" and restore["VpcSecurityGroupIds"] == ["sg-1"]
    assert rds.status_at_create == ["available", "available"]  # the restored cluster was waited for
    creates = [kw for name, kw in rds.calls if name == "create_db_instance"]
    assert [c["DBInstanceIdentifier"] for c in creates] == ["orders-new-1", "orders-new-2"]
    assert creates[0]["DBParameterGroupName"] == "orders-pg"
    assert result["snapshot"]["id"] == "orders-db-manual" and result["data_loss_window"]["seconds"] >= 1800
    assert result["after"]["members"] == ["orders-new-1", "orders-new-2"]


def test_check_mode_makes_no_mutating_call():
    rds = snapshot_rds()
    result = run_restore(rds, check_mode=True, source="orders-db", target="orders-new")
    assert mutating(rds) == [] and result["changed"] is True
    assert [i["action"] for i in result["instances"]] == ["create", "create"]


def test_a_cluster_whose_source_is_gone_needs_a_class_and_gets_instance_count_instances():
    rds = snapshot_rds(polls=0)
    del rds.clusters["orders-db"]
    for ident in ("orders-db-1", "orders-db-2"):
        del rds.instances[ident]
    with pytest.raises(rdsu.RDSInputError, match="give instance_class"):
        run_restore(rds, source="orders-db", target="orders-new")
    assert mutating(rds) == []
    result = run_restore(rds, source="orders-db", target="orders-new", instance_class="db.r6g.large", instance_count=2)
    creates = [kw for name, kw in rds.calls if name == "create_db_instance"]
    assert [(c["DBInstanceIdentifier"], c["DBInstanceClass"]) for c in creates] == [
        ("orders-new-1", "db.r6g.large"),
        ("orders-new-2", "db.r6g.large"),
    ]
    assert result["source"]["exists"] is False
