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
