"""rds_snapshot_restore against the sandbox: the restore and its instances are read back from moto, the source
is compared before and after, and the snapshot chosen is held to what DescribeDB(Cluster)Snapshots lists.

moto takes an automated snapshot of every cluster and instance it creates (the seed's ``rds:<id>-<time>``), so
the seeded sources each have one; the tests add manual ones to hold the choice of the latest."""

from __future__ import annotations

import datetime
import time

import pytest

from tests.integration.proof import first_case_in_make_test
from tests.integration.rds_helpers import JSON_OUTPUT, assert_documented, mutating_calls, rds_state, result_of

pytestmark = pytest.mark.integration

MODULE = "tests/integration/playbooks/rds/snapshot_restore.yml"


def restore(run_playbook, check=False, diff=False, **options):
    extra = {f"rds_{key}": value for key, value in options.items()}
    run = run_playbook(MODULE, extra_vars=extra, check=check, diff=diff, env=JSON_OUTPUT)
    return run, result_of(run, "Restore")


def cluster(aws, ident):
    found = aws.client("rds").describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [ident]}])
    return (found.get("DBClusters") or [None])[0]


def instance(aws, ident):
    found = aws.client("rds").describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": [ident]}])
    return (found.get("DBInstances") or [None])[0]


def tags_of(found):
    return {t["Key"]: t["Value"] for t in found.get("TagList") or []}


def test_check_mode_changes_nothing(aws, run_playbook):
    before = rds_state(aws)
    aws.proxy.clear_log()
    run, result = restore(run_playbook, check=True, diff=True, source="orders-db", incident_id="INC-8")
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["predicted"] is True
    assert result["snapshot"]["source"] == "orders-db" and result["snapshot"]["chosen"] == "latest"
    assert result["actions"][0].startswith("restore cluster orders-db-snap from snapshot rds:orders-db-")
    assert result["after"]["members"] == ["orders-db-snap-1", "orders-db-snap-2"]
    assert result["gate_kind"] == "data_restore" and "data_loss_window" in result
    assert mutating_calls(aws) == []
    assert rds_state(aws) == before


def test_cluster_restore_from_the_latest_snapshot_then_rerun_is_no_change(aws, run_playbook):
    rds = aws.client("rds")
    time.sleep(1.1)  # a manual snapshot newer than the seed's automated one (listing times have second resolution)
    rds.create_db_cluster_snapshot(DBClusterIdentifier="orders-db", DBClusterSnapshotIdentifier="orders-db-manual")
    source_before = rds_state(aws)
    run, result = restore(run_playbook, source="orders-db", incident_id="INC-8")
    assert run.returncode == 0, run.output
    assert result["snapshot"]["id"] == "orders-db-manual" and result["snapshot"]["type"] == "manual"
    restored = cluster(aws, "orders-db-snap")
    assert restored["Status"] == "available"
    members = {m["DBInstanceIdentifier"]: m["IsClusterWriter"] for m in restored["DBClusterMembers"]}
    assert members == {"orders-db-snap-1": True, "orders-db-snap-2": False}
    assert restored["DBSubnetGroup"] == "orders-db-subnets"
    source = cluster(aws, "orders-db")
    assert [g["VpcSecurityGroupId"] for g in restored["VpcSecurityGroups"]] == [
        g["VpcSecurityGroupId"] for g in source["VpcSecurityGroups"]
    ]
    tags = tags_of(restored)
    assert tags["firebreak:restored-from"] == "orders-db"
    assert tags["firebreak:restored-from-snapshot"] == "orders-db-manual"
    assert tags["firebreak:incident"] == "INC-8"
    assert instance(aws, "orders-db-snap-1")["DBInstanceClass"] == "db.r6g.large"
    assert result["endpoints"]["writer"] == restored["Endpoint"]
    window = result["data_loss_window"]
    assert 0 <= window["seconds"] < 600 and window["snapshot_time"] == result["snapshot"]["created"]
    after = rds_state(aws)
    assert after["clusters"]["orders-db"] == source_before["clusters"]["orders-db"]
    assert_documented(result, "rds_snapshot_restore")

    # a newer snapshot taken meanwhile does not make a re-run restore again: the restore is ours
    time.sleep(1.1)
    rds.create_db_cluster_snapshot(DBClusterIdentifier="orders-db", DBClusterSnapshotIdentifier="orders-db-later")
    aws.proxy.clear_log()
    again, second = restore(run_playbook, source="orders-db", incident_id="INC-8")
    assert again.returncode == 0, again.output
    assert second["changed"] is False and second["snapshot"]["id"] == "orders-db-manual"
    assert mutating_calls(aws) == []


def test_a_half_done_cluster_restore_gets_its_missing_instances(aws, run_playbook):
    run, _ = restore(run_playbook, source="orders-db", incident_id="INC-8", instances=False)
    assert run.returncode == 0, run.output
    assert cluster(aws, "orders-db-snap")["DBClusterMembers"] == []
    again, second = restore(run_playbook, source="orders-db", incident_id="INC-8")
    assert again.returncode == 0, again.output
    assert second["changed"] is True and [i["action"] for i in second["instances"]] == ["created", "created"]
    assert len(cluster(aws, "orders-db-snap")["DBClusterMembers"]) == 2


def test_instance_restore_from_a_given_snapshot_of_a_source_that_is_gone(aws, run_playbook):
    rds = aws.client("rds")
    db_group = aws.manifest["aws"]["network"]["security_groups"]["db"]
    rds.create_db_snapshot(DBInstanceIdentifier="reports-db", DBSnapshotIdentifier="reports-db-final")
    rds.delete_db_instance(DBInstanceIdentifier="reports-db", SkipFinalSnapshot=True)
    options = {
        "kind": "instance",
        "snapshot": "reports-db-final",
        "target": "reports-db-snap",
        "subnet_group": "orders-db-subnets",
        "security_groups": [db_group],
        "incident_id": "INC-8",
    }
    run, result = restore(run_playbook, **options)
    assert run.returncode == 0, run.output
    assert result["source"] == dict(result["source"], id="reports-db", exists=False)
    assert result["copied"]["how"]["subnet_group"] == "given"
    restored = instance(aws, "reports-db-snap")
    assert restored["DBInstanceStatus"] == "available"
    assert restored["DBSubnetGroup"]["DBSubnetGroupName"] == "orders-db-subnets"
    assert [g["VpcSecurityGroupId"] for g in restored["VpcSecurityGroups"]] == [db_group]
    assert tags_of(restored)["firebreak:restored-from-snapshot"] == "reports-db-final"
    assert result["endpoints"]["address"] == restored["Endpoint"]["Address"]
    assert_documented(result, "rds_snapshot_restore")

    aws.proxy.clear_log()
    again, second = restore(run_playbook, **options)
    assert again.returncode == 0 and second["changed"] is False, again.output
    assert mutating_calls(aws) == []


def _stranger(aws):
    aws.client("rds").create_db_instance(
        DBInstanceIdentifier="orders-db-snap", Engine="postgres", DBInstanceClass="db.t3.micro", AllocatedStorage=20
    )
    return {"kind": "instance", "source": "reports-db", "target": "orders-db-snap"}


def _other_snapshot(aws):
    aws.client("rds").create_db_cluster_snapshot(DBClusterIdentifier="graph-db", DBClusterSnapshotIdentifier="graph-x")
    return {"source": "orders-db", "snapshot": "graph-x"}


@first_case_in_make_test
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"source": "no-such-db"}, "no available automated or manual snapshot of 'no-such-db'"),
        ({"source": "orders-db", "snapshot_type": "manual"}, "no available manual snapshot of 'orders-db'"),
        ({"snapshot": "no-such-snap"}, "DB cluster snapshot 'no-such-snap' not found"),
        ({"source": "orders-db", "target": "orders-db"}, "must differ from the source"),
        ({"source": "orders-db", "target": "graph-db"}, "target cluster identifier 'graph-db' already exists"),
        ({"kind": "instance", "source": "orders-db-1", "target": "x-db"}, "cluster member: restore its cluster"),
        (_stranger, "target instance identifier 'orders-db-snap' already exists"),
        (_other_snapshot, "snapshot 'graph-x' is a snapshot of 'graph-db', not of source 'orders-db'"),
        ({"target": "x-db"}, "give source"),
        ({"source": "orders-db", "instance_class": "large"}, "instance_class: 'large' is not a DB instance class"),
    ],
)
def test_bad_input_fails_naming_the_value_and_changes_nothing(aws, run_playbook, options, message):
    options = options(aws) if callable(options) else options
    before = rds_state(aws)
    aws.proxy.clear_log()
    run, result = restore(run_playbook, incident_id="INC-8", **options)
    assert run.returncode != 0
    assert message in result["msg"], result["msg"]
    assert result["changed"] is False
    assert mutating_calls(aws) == []
    assert rds_state(aws) == before


def test_the_data_loss_window_is_now_minus_the_snapshot_time(aws, run_playbook):
    run, result = restore(run_playbook, check=True, source="orders-db")
    assert run.returncode == 0, run.output
    taken = datetime.datetime.fromisoformat(result["data_loss_window"]["snapshot_time"].replace("Z", "+00:00"))
    now = datetime.datetime.fromisoformat(result["data_loss_window"]["now"].replace("Z", "+00:00"))
    assert result["data_loss_window"]["seconds"] == int((now - taken).total_seconds())
    assert "are not in the restore" in result["msg"]
