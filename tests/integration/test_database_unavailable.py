"""The database_unavailable scenario end to end on the incident frame: the drill's cluster failover (with --check
and a re-run in the same test), the instance failover, the backend restart on connection exhaustion, the snapshot
restore of a complete failure (confirmed by a failure event the fault proxy answers as RDS would: moto records
none and keeps every database available), the production gate and bad input."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from sandbox.drills import database_unavailable as drill
from tests.integration.scenario_helpers import lifecycle, mutating_calls, records

pytestmark = [pytest.mark.integration, pytest.mark.drill]

MUTATING = {
    "FailoverDBCluster",
    "RebootDBInstance",
    "RestoreDBClusterFromSnapshot",
    "RestoreDBInstanceFromDBSnapshot",
    "CreateDBInstance",
    "UpdateService",
    "AddTagsToResource",
}


def extra_vars(context: dict) -> dict:
    return {key: value for key, value in context.items() if not key.startswith("_")}


def rds_state(aws) -> dict:
    rds = aws.client("rds")
    clusters = {
        c["DBClusterIdentifier"]: (
            c["Status"],
            sorted((m["DBInstanceIdentifier"], m["IsClusterWriter"]) for m in c["DBClusterMembers"]),
        )
        for c in rds.describe_db_clusters()["DBClusters"]
    }
    instances = {
        i["DBInstanceIdentifier"]: (
            i["DBInstanceStatus"],
            i.get("AvailabilityZone"),
            i.get("SecondaryAvailabilityZone"),
        )
        for i in rds.describe_db_instances()["DBInstances"]
    }
    service = aws.client("ecs").describe_services(cluster="shop", services=["shop-api"])["services"][0]
    return {"clusters": clusters, "instances": instances, "shop-api": [d["id"] for d in service["deployments"]]}


def failure_event(aws, source: str, source_type: str = "db-cluster") -> None:
    """RDS as it reports a failed writer: one DescribeEvents answer with a failure event (moto records none)."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    body = (
        "<DescribeEventsResponse><DescribeEventsResult><Events><Event>"
        f"<SourceIdentifier>{source}</SourceIdentifier><SourceType>{source_type}</SourceType>"
        "<Message>The writer instance is unavailable: the database engine failed</Message>"
        "<EventCategories><EventCategory>failure</EventCategory></EventCategories>"
        f"<Date>{now}</Date></Event></Events></DescribeEventsResult>"
        "<ResponseMetadata><RequestId>canned</RequestId></ResponseMetadata></DescribeEventsResponse>"
    )
    aws.proxy.add_rule({"service": "rds", "action": "DescribeEvents", "fault": "canned", "body": body, "count": 1})


def test_check_then_failover_records_and_reports_and_a_rerun_changes_nothing(aws, run_playbook):
    context = drill.inject(aws)
    before = rds_state(aws)
    aws.proxy.clear_log()
    dry = run_playbook(drill.PLAYBOOK, extra_vars=extra_vars(context), check=True, diff=True)
    assert dry.returncode == 0, dry.output[-4000:]
    assert "DRY RUN, nothing changed." in dry.stdout
    assert rds_state(aws) == before and mutating_calls(aws, MUTATING) == []
    assert all(e["_check_mode"] for e in lifecycle(dry)), "a dry run's lifecycle must not count as real"

    run = run_playbook(drill.PLAYBOOK, extra_vars=extra_vars(context))
    assert run.returncode == 0, run.output[-4000:]
    assert drill.verify(aws, context)
    out = " ".join(run.stdout.split())
    assert "left for a person:" in out and "forced:" in out

    recs = records(run)
    assert [e["event"] for e in lifecycle(run, real=True)][:1] == ["declared"]
    assert lifecycle(run, "resolved", real=True)
    [failover] = [
        r for r in recs if r.get("action") == "firebreak.runbooks.rds_cluster_failover" and not r.get("check_mode")
    ]
    assert failover["event"] == "task_changed"
    assert failover["details"]["before"]["writer"] == "orders-db-1"
    assert failover["details"]["after"]["writer"] == "orders-db-2"
    notes = [r["msg"] for r in recs if r["event"] == "note"]
    assert any("forced by the operator" in n and "refuses connections" in n for n in notes), notes
    assert any(n.startswith("Gate database-unavailable-failover") for n in notes), notes
    report = json.loads(run.timeline.with_name("report.json").read_text())
    assert (report["severity"], report["status"], report["resolved"]) == ("P1", "resolved", True)

    state = rds_state(aws)
    aws.proxy.clear_log()
    again = run_playbook(drill.PLAYBOOK, extra_vars=extra_vars(context))
    assert again.returncode == 0, again.output[-4000:]
    assert rds_state(aws) == state and mutating_calls(aws, MUTATING) == []


def test_production_without_an_approval_stops_before_the_failover_saying_how_to_confirm(aws, run_playbook):
    context = drill.inject(aws)
    extra = {
        k: v
        for k, v in extra_vars(context).items()
        if k not in ("firebreak_gate_approvals", "incident_gate_allow_unpinned")
    }
    before = rds_state(aws)
    aws.proxy.clear_log()
    run = run_playbook(drill.PLAYBOOK, extra_vars={**extra, "firebreak_environment": "production"})
    assert run.returncode != 0
    out = " ".join(run.stdout.split())
    assert "gate database-unavailable-failover not confirmed" in out and "nothing was changed" in out, out[-3000:]
    assert "firebreak_gate_approvals" in out
    assert rds_state(aws) == before and mutating_calls(aws, MUTATING) == []

    digest = re.search(r'"database-unavailable-failover": "([0-9a-f]{12})"', run.stdout).group(1)
    approval = {
        "firebreak_gate_approvals": {"database-unavailable-failover": digest},
        "firebreak_gate_approver": "alice",
    }
    approved = run_playbook(drill.PLAYBOOK, extra_vars={**extra, "firebreak_environment": "production", **approval})
    assert approved.returncode == 0, approved.output[-4000:]
    drill.verify(aws, context)


def test_a_complete_failure_restores_the_latest_snapshot_into_a_new_cluster(aws, run_playbook):
    """The last resort, proven: RDS reports the writer failed (a failure event, which confirms the symptom without a
    force), the user picks cause=lost, the data_restore gate is confirmed, and the new cluster exists, restored from
    the latest snapshot, while the failed source is left alone."""
    rds = aws.client("rds")
    # a manual snapshot taken after the seed's automated one: the latest, so the choice of "latest" can be seen
    rds.create_db_cluster_snapshot(DBClusterIdentifier="orders-db", DBClusterSnapshotIdentifier="orders-db-nightly")
    snapshots = rds.describe_db_cluster_snapshots(DBClusterIdentifier="orders-db")["DBClusterSnapshots"]
    latest = max(snapshots, key=lambda s: s["SnapshotCreateTime"])["DBClusterSnapshotIdentifier"]
    assert len(snapshots) >= 2 and latest == "orders-db-nightly", snapshots
    failure_event(aws, "orders-db")
    before = rds_state(aws)
    aws.proxy.clear_log()
    extra = {
        "database_unavailable_kind": "cluster",
        "database_unavailable_cause": "lost",
        "database_unavailable_cluster": "orders-db",
        "database_unavailable_restore_target": "orders-db-restored",
        "firebreak_gate_approvals": {"database-unavailable-lost": "yes"},
        "incident_gate_allow_unpinned": True,
    }
    run = run_playbook(drill.PLAYBOOK, extra_vars=extra)
    assert run.returncode == 0, run.output[-4000:]

    restored = rds.describe_db_clusters(DBClusterIdentifier="orders-db-restored")["DBClusters"][0]
    tags = {t["Key"]: t["Value"] for t in restored.get("TagList") or []}
    assert restored["Status"] == "available" and restored["Engine"] == "aurora-postgresql"
    assert tags["firebreak:restored-from"] == "orders-db", tags
    assert tags["firebreak:restored-from-snapshot"] == latest, tags
    assert [m for m in restored["DBClusterMembers"] if m["IsClusterWriter"]], restored["DBClusterMembers"]
    calls = [e["action"] for e in aws.proxy.log()]
    assert "RestoreDBClusterFromSnapshot" in calls and "FailoverDBCluster" not in calls, calls
    after = rds_state(aws)
    assert after["clusters"]["orders-db"] == before["clusters"]["orders-db"], "the failed source must be left alone"

    recs = records(run)
    [restore] = [
        r for r in recs if r.get("action") == "firebreak.runbooks.rds_snapshot_restore" and not r.get("check_mode")
    ]
    assert restore["event"] == "task_changed" and restore["details"]["after"], restore
    notes = [r["msg"] for r in recs if r["event"] == "note"]
    assert any(n.startswith("Gate database-unavailable-lost") for n in notes), notes
    assert not any("forced by the operator" in n for n in notes), "the failure event confirms it: no force"
    assert lifecycle(run, "resolved", real=True)
    out = " ".join(run.stdout.split())
    assert "point the applications at orders-db-restored" in out, out[-3000:]
    report = json.loads(run.timeline.with_name("report.json").read_text())
    assert report["resolved"] is True


def test_an_available_database_is_refused_and_bad_input_stops_before_any_call(aws, run_playbook):
    context = drill.inject(aws)
    extra = {k: v for k, v in extra_vars(context).items() if not k.startswith("database_unavailable_force")}
    before = rds_state(aws)
    aws.proxy.clear_log()
    run = run_playbook(drill.PLAYBOOK, extra_vars=extra)
    assert run.returncode != 0
    out = " ".join(run.stdout.split())
    assert "does not look unavailable" in out and "-e database_unavailable_force=true" in out, out[-3000:]
    assert rds_state(aws) == before and mutating_calls(aws, MUTATING) == []

    for bad, message in (
        ({"database_unavailable_cluster": "orders_db;drop"}, 'database_unavailable_cluster "orders_db;drop" is not'),
        (
            {"database_unavailable_cause": "lost", "database_unavailable_restore_target": "orders-db"},
            "must be a NEW DB identifier",
        ),
        ({"database_unavailable_cause": "reboot"}, "database_unavailable_cause"),
        ({"database_unavailable_force_reason": ""}, "needs a reason"),
    ):
        aws.proxy.clear_log()
        run = run_playbook(drill.PLAYBOOK, extra_vars={**extra_vars(context), **bad})
        assert run.returncode != 0
        assert message in " ".join(run.output.split()), (bad, run.output[-2000:])
        assert "Traceback" not in run.output
        assert aws.proxy.log() == [] and rds_state(aws) == before


def test_multi_az_instance_failover(aws, run_playbook):
    before = rds_state(aws)["instances"]["reports-db"]
    extra = {
        "database_unavailable_kind": "instance",
        "database_unavailable_instance": "reports-db",
        "database_unavailable_force": True,
        "database_unavailable_force_reason": "test: the primary refuses connections",
        "firebreak_gate_approvals": {"database-unavailable-failover": "yes"},
        "incident_gate_allow_unpinned": True,
    }
    run = run_playbook(drill.PLAYBOOK, extra_vars=extra)
    assert run.returncode == 0, run.output[-4000:]
    after = rds_state(aws)["instances"]["reports-db"]
    assert after[0] == "available"
    assert [
        r
        for r in records(run)
        if r.get("action") == "firebreak.runbooks.rds_instance_failover" and r["event"] == "task_changed"
    ]
    assert "RebootDBInstance" in [e["action"] for e in aws.proxy.log()], before
    # (a re-run changing nothing is the cluster test's; rds_instance_failover's own tests cover the instance's)


def test_connection_exhaustion_restarts_the_backend_services(aws, run_playbook):
    before = rds_state(aws)
    deployments = before["shop-api"]
    aws.proxy.clear_log()
    extra = {
        "database_unavailable_cause": "connections",
        "database_unavailable_force": True,
        "database_unavailable_force_reason": "test: too many connections in the API's logs",
    }
    run = run_playbook(drill.PLAYBOOK, extra_vars=extra)
    assert run.returncode == 0, run.output[-4000:]
    after = rds_state(aws)
    assert after["shop-api"] != deployments and len(after["shop-api"]) >= 1
    # the database is left alone: no failover, no reboot, no restore (it compared with itself before)
    assert after["clusters"] == before["clusters"] and after["instances"] == before["instances"]
    assert not {"FailoverDBCluster", "RebootDBInstance"} & {e["action"] for e in aws.proxy.log()}
    restarts = [
        r
        for r in records(run)
        if r.get("action") == "firebreak.runbooks.ecs_service_restart" and not r.get("check_mode")
    ]
    assert restarts and restarts[-1]["event"] == "task_changed"
