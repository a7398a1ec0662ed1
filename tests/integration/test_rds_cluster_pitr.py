"""rds_cluster_pitr against the sandbox: the restored cluster and its instances are read back from moto,
and the source is compared before/after (it must never change).

moto accepts any restore time, so these tests prove the module refuses bad times itself.
"""

from __future__ import annotations

import datetime

import pytest

from tests.integration.proof import first_case_in_make_test
from tests.integration.rds_helpers import JSON_OUTPUT, assert_documented, mutating_calls, rds_state, result_of

pytestmark = pytest.mark.integration

MODULE = "tests/integration/playbooks/rds/cluster_pitr.yml"


def restore(run_playbook, check=False, diff=False, env=None, **options):
    extra = {f"rds_{key}": value for key, value in options.items()}
    run = run_playbook(MODULE, extra_vars=extra, check=check, diff=diff, env={**JSON_OUTPUT, **(env or {})})
    return run, result_of(run, "Restore")


def cluster(aws, ident):
    found = aws.client("rds").describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [ident]}])
    return (found.get("DBClusters") or [None])[0]


def instances_of(aws, ident):
    found = aws.client("rds").describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [ident]}])
    return {i["DBInstanceIdentifier"]: i for i in found["DBInstances"]}


def source_state(aws, ident="orders-db"):
    state = rds_state(aws)
    members = {m for m, _w in state["clusters"][ident]["members"]}
    return {"cluster": state["clusters"][ident], "instances": {i: state["instances"][i] for i in sorted(members)}}


def a_restorable_time(aws, ident="orders-db", offset="+01:00"):
    """A time inside the source's window, written with a UTC offset (as an operator in CET would)."""
    found = cluster(aws, ident)
    when = found["EarliestRestorableTime"] + (found["LatestRestorableTime"] - found["EarliestRestorableTime"]) / 2
    hours = int(offset[1:3]) * (1 if offset[0] == "+" else -1)
    local = when.astimezone(datetime.timezone(datetime.timedelta(hours=hours)))
    return local.isoformat(timespec="microseconds"), when.astimezone(datetime.UTC)


def test_check_mode_reports_the_plan_and_changes_nothing(aws, run_playbook):
    before = rds_state(aws)
    aws.proxy.clear_log()
    run, result = restore(run_playbook, check=True, diff=True, incident_id="INC-9")
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert result["actions"][0].startswith("restore cluster orders-db-restored from orders-db to latest")
    assert [i["id"] for i in result["instances"]] == ["orders-db-restored-1", "orders-db-restored-2"]
    assert [i["action"] for i in result["instances"]] == ["create", "create"]
    assert result["instances"][0]["writer"] is True and result["instances"][0]["source"] == "orders-db-1"
    assert result["diff"]["after"]["instances"] == ["orders-db-restored-1", "orders-db-restored-2"]
    assert mutating_calls(aws) == []
    assert rds_state(aws) == before


def test_restore_to_a_time_with_an_offset_creates_cluster_and_instances_and_leaves_the_source(aws, run_playbook):
    source_before = source_state(aws)
    text, when_utc = a_restorable_time(aws)
    run, result = restore(run_playbook, restore_time=text, incident_id="INC-9", tags={"purpose": "verify"})
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert result["restore_time"].startswith(when_utc.strftime("%Y-%m-%dT%H:%M:%S"))
    assert result["use_latest"] is False

    restored = cluster(aws, "orders-db-restored")
    seed = aws.manifest["aws"]
    assert restored["DBSubnetGroup"] == seed["aurora"]["subnet_group"]
    assert [g["VpcSecurityGroupId"] for g in restored["VpcSecurityGroups"]] == [
        seed["network"]["security_groups"]["db"]
    ]
    tags = {t["Key"]: t["Value"] for t in restored["TagList"]}
    assert tags["firebreak:restored-from"] == "orders-db"
    assert tags["firebreak:incident"] == "INC-9" and tags["purpose"] == "verify"
    assert tags["firebreak:sandbox"] == "true"  # copied from the source
    members = {m["DBInstanceIdentifier"]: m["IsClusterWriter"] for m in restored["DBClusterMembers"]}
    assert members == {"orders-db-restored-1": True, "orders-db-restored-2": False}
    made = instances_of(aws, "orders-db-restored")
    source_instances = instances_of(aws, "orders-db")
    for new, old in (("orders-db-restored-1", "orders-db-1"), ("orders-db-restored-2", "orders-db-2")):
        assert made[new]["DBInstanceClass"] == source_instances[old]["DBInstanceClass"]
        assert made[new]["AvailabilityZone"] == source_instances[old]["AvailabilityZone"]
        assert made[new]["DBInstanceStatus"] == "available"
    assert result["endpoints"]["writer"] == restored["Endpoint"]
    assert set(result["endpoints"]["instances"]) == {"orders-db-restored-1", "orders-db-restored-2"}
    assert source_state(aws) == source_before
    assert_documented(result, "rds_cluster_pitr")

    # the re-run: same source, target and time: our own complete restore, no change
    aws.proxy.clear_log()
    again, second = restore(run_playbook, restore_time=text, incident_id="INC-9", tags={"purpose": "verify"})
    assert again.returncode == 0, again.output
    assert second["changed"] is False and "no change" in second["msg"]
    assert mutating_calls(aws) == []


def test_a_rerun_after_a_partial_failure_finishes_the_job(aws, run_playbook):
    source_before = source_state(aws)
    rule = aws.proxy.add_rule({"service": "rds", "action": "CreateDBInstance", "fault": "error"})
    run, result = restore(run_playbook, incident_id="INC-9", retry_budget=1)
    assert run.returncode != 0
    assert "CreateDBInstance" in result["msg"] and "InternalFailure" in result["msg"]
    assert result["changed"] is True  # the cluster was restored before the failure
    assert cluster(aws, "orders-db-restored")["DBClusterMembers"] == []

    aws.proxy.remove_rule(rule)
    again, second = restore(run_playbook, incident_id="INC-9")
    assert again.returncode == 0, again.output
    assert second["changed"] is True
    assert [i["action"] for i in second["instances"]] == ["created", "created"]
    assert "restore cluster" not in " ".join(second["actions"])
    members = {
        m["DBInstanceIdentifier"]: m["IsClusterWriter"] for m in cluster(aws, "orders-db-restored")["DBClusterMembers"]
    }
    assert members == {"orders-db-restored-1": True, "orders-db-restored-2": False}
    assert source_state(aws) == source_before


def test_neptune_cluster_restores_to_the_latest_time(aws, run_playbook):
    run, result = restore(run_playbook, source="graph-db", target="graph-db-restored", incident_id="INC-9")
    assert run.returncode == 0, run.output
    assert result["use_latest"] is True and result["restore_time"] is None
    restored = cluster(aws, "graph-db-restored")
    assert restored["Engine"] == "neptune"
    assert sorted(m["DBInstanceIdentifier"] for m in restored["DBClusterMembers"]) == [
        "graph-db-restored-1",
        "graph-db-restored-2",
    ]


def _future(aws):
    return (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).isoformat()


def _before_earliest(aws):
    return (cluster(aws, "orders-db")["EarliestRestorableTime"] - datetime.timedelta(days=1)).isoformat()


@first_case_in_make_test
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"source": "no-such-db"}, "DB cluster 'no-such-db' not found"),
        ({"restore_time": _future}, "is in the future"),
        ({"restore_time": _before_earliest}, "is before the earliest restorable time of DB cluster 'orders-db'"),
        ({"restore_time": "yesterday at noon"}, "unparseable time 'yesterday at noon'"),
        (
            {"target": "graph-db"},
            "target cluster identifier 'graph-db' already exists and it is not a restore of orders-db",
        ),
        ({"target": "orders-db"}, "target 'orders-db' must differ from the source"),
        ({"target": "Bad_Name"}, "target: 'Bad_Name' is not a valid DB identifier"),
        ({"cutover": True, "cutover_confirm": "yes"}, "set cutover_confirm to 'orders-db' to confirm (got 'yes')"),
    ],
)
def test_bad_input_fails_naming_the_value_and_changes_nothing(aws, run_playbook, options, message):
    options = {k: (v(aws) if callable(v) else v) for k, v in options.items()}
    before = rds_state(aws)
    aws.proxy.clear_log()
    run, result = restore(run_playbook, incident_id="INC-9", **options)
    assert run.returncode != 0
    assert message in result["msg"], result["msg"]
    assert result["changed"] is False
    assert mutating_calls(aws) == []
    assert rds_state(aws) == before


def test_an_earlier_restore_for_another_incident_is_not_ours(aws, run_playbook):
    run, _result = restore(run_playbook, incident_id="INC-1", instances=False)
    assert run.returncode == 0, run.output
    before = rds_state(aws)
    again, result = restore(run_playbook, incident_id="INC-2")
    assert again.returncode != 0
    assert "was restored for incident 'INC-1', not 'INC-2'" in result["msg"]
    assert rds_state(aws) == before


def test_cutover_renames_the_source_away_and_the_restore_into_its_place(aws, run_playbook):
    options = {"incident_id": "INC 42", "cutover": True, "cutover_confirm": "orders-db"}
    run, result = restore(run_playbook, **options)
    assert run.returncode == 0, run.output
    assert result["cutover"] == {
        "source": "orders-db",
        "replaced": "orders-db-replaced-inc-42",
        "restored": "orders-db-restored",
        "done": True,
    }
    now_source = {t["Key"]: t["Value"] for t in cluster(aws, "orders-db")["TagList"]}
    assert now_source["firebreak:restored-from"] == "orders-db"
    replaced = {t["Key"]: t["Value"] for t in cluster(aws, "orders-db-replaced-inc-42")["TagList"]}
    assert "firebreak:restored-from" not in replaced and replaced["firebreak:sandbox"] == "true"
    assert cluster(aws, "orders-db-restored") is None
    # moto loses a renamed cluster's members (docs/steps/pitr_restore.md): identifiers and tags only here.

    aws.proxy.clear_log()
    again, second = restore(run_playbook, **options)
    assert again.returncode == 0, again.output
    assert second["changed"] is False and "already is our restore" in second["msg"]
    assert_documented(second, "rds_cluster_pitr")
    assert mutating_calls(aws) == []


@pytest.mark.proof
def test_permanent_5xx_on_the_restore_call_fails_naming_it(aws, run_playbook):
    aws.proxy.add_rule({"service": "rds", "action": "RestoreDBClusterToPointInTime", "fault": "error"})
    before = rds_state(aws)
    run, result = restore(run_playbook, incident_id="INC-9", retry_budget=2)
    assert run.returncode != 0
    assert "RestoreDBClusterToPointInTime failed" in result["msg"] and "InternalFailure" in result["msg"]
    assert result["changed"] is False
    assert rds_state(aws) == before


# -- identifiers (issue 21): RDS folds them to lower case; the ones the step derives must be valid too ---


def test_the_sandbox_folds_rds_identifiers_to_lower_case_as_rds_does(aws):
    """The upper-case tests below reproduce AWS only because moto, like RDS, stores identifiers in lower
    case and matches them case-insensitively (checked here so that a moto upgrade cannot hide it)."""
    rds = aws.client("rds")
    made = rds.restore_db_cluster_to_point_in_time(
        DBClusterIdentifier="CASE-DB", SourceDBClusterIdentifier="ORDERS-DB", UseLatestRestorableTime=True
    )["DBCluster"]
    assert made["DBClusterIdentifier"] == "case-db"
    engine = made["Engine"]
    rds.create_db_instance(
        DBInstanceIdentifier="CASE-DB-1", DBClusterIdentifier="Case-Db", Engine=engine, DBInstanceClass="db.r6g.large"
    )
    found = rds.describe_db_clusters(DBClusterIdentifier="CASE-db")["DBClusters"]
    assert [(c["DBClusterIdentifier"], [m["DBInstanceIdentifier"] for m in c["DBClusterMembers"]]) for c in found] == [
        ("case-db", ["case-db-1"])
    ]
    listed = rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": ["CASE-DB"]}])["DBInstances"]
    assert [i["DBInstanceIdentifier"] for i in listed] == ["case-db-1"]


def test_an_upper_case_target_is_restored_under_the_identifiers_rds_gives_it(aws, run_playbook):
    # Before the fix: the cluster and both instances were made, then the wait never saw "ORDERS-DB-RST-1"
    # (RDS answers "orders-db-rst-1") and timed out; the re-run refused the instances as "outside" the target.
    before = rds_state(aws)
    run, result = restore(
        run_playbook, source="ORDERS-DB", target="ORDERS-DB-RST", incident_id="INC-9", wait_timeout=10
    )
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert result["source"]["id"] == "orders-db" and result["target"]["id"] == "orders-db-rst"
    assert [(i["id"], i["action"]) for i in result["instances"]] == [
        ("orders-db-rst-1", "created"),
        ("orders-db-rst-2", "created"),
    ]
    after = rds_state(aws)
    assert set(after["clusters"]) - set(before["clusters"]) == {"orders-db-rst"}
    assert set(after["instances"]) - set(before["instances"]) == {"orders-db-rst-1", "orders-db-rst-2"}
    assert after["clusters"]["orders-db-rst"]["members"] == [("orders-db-rst-1", True), ("orders-db-rst-2", False)]
    assert {k: v for k, v in after["clusters"].items() if k != "orders-db-rst"} == before["clusters"]
    assert dict(after["clusters"]["orders-db-rst"]["tags"])["firebreak:restored-from"] == "orders-db"

    aws.proxy.clear_log()
    again, second = restore(run_playbook, source="Orders-Db", target="orders-DB-rst", incident_id="INC-9")
    assert again.returncode == 0, again.output
    assert second["changed"] is False and "no change" in second["msg"], second["msg"]
    assert mutating_calls(aws) == []
    assert rds_state(aws) == after


@pytest.mark.parametrize("length", [62, 63])
def test_a_target_too_long_for_its_instance_identifiers_is_refused_before_any_change(aws, run_playbook, length):
    # Before the fix: the cluster was restored, then CreateDBInstance failed ("<target>-" for 62
    # characters; writer and reader both "<target>" for 63), leaving a cluster without instances.
    target = ("orders-db-restored-" + "x" * 63)[:length]
    before = rds_state(aws)
    aws.proxy.clear_log()
    run, result = restore(run_playbook, target=target, incident_id="INC-9")
    assert run.returncode != 0
    assert f"'{target}-1'" in result["msg"] and "choose a target of at most 61 characters" in result["msg"]
    assert result["changed"] is False
    assert mutating_calls(aws) == []
    assert rds_state(aws) == before
