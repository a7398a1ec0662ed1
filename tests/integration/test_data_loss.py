"""The data_loss scenario (S3 path) end to end on the incident frame: inject the drill's fault, run the runbook,
verify the restored bytes and the integrity check in moto, the lifecycle records, the refusal without a symptom,
bad input, --check, the production gate before the write freeze, and a re-run that changes nothing."""

from __future__ import annotations

import json
import time

import pytest

from sandbox.drills import data_loss
from tests.integration.scenario_helpers import lifecycle, records

pytestmark = [pytest.mark.integration, pytest.mark.drill]
BUCKET = data_loss.BUCKET


def extra_vars(context: dict, **more) -> dict:
    return {**{key: value for key, value in context.items() if not key.startswith("_")}, **more}


def bucket_state(aws) -> dict:
    """Every version and delete marker of the uploads bucket, and its policy."""
    s3 = aws.client("s3")
    listing = s3.list_object_versions(Bucket=BUCKET)
    return {
        "versions": sorted((v["Key"], v["VersionId"], v["IsLatest"]) for v in listing.get("Versions", [])),
        "markers": sorted((m["Key"], m["VersionId"], m["IsLatest"]) for m in listing.get("DeleteMarkers", [])),
        "frozen_by": data_loss.frozen_by(s3, BUCKET),
    }


def writes(aws) -> list[tuple[str, str]]:
    """Mutating S3 calls on the uploads bucket (the report's seal may write to the evidence bucket)."""
    return [
        (e["method"], e["path"])
        for e in aws.proxy.log()
        if e["service"] == "s3" and e["method"] not in ("GET", "HEAD") and BUCKET in (e.get("path") or "")
    ]


def test_scenario_restores_the_objects_checks_integrity_and_a_rerun_changes_nothing(aws, run_playbook):
    context = data_loss.inject(aws)
    with pytest.raises(AssertionError, match=r"uploads/avatar\.png is still deleted"):
        data_loss.verify(aws, context)

    run = run_playbook(data_loss.PLAYBOOK, extra_vars=extra_vars(context))
    assert run.returncode == 0, run.output[-4000:]
    data_loss.verify(aws, context)
    assert "integrity check passed on s3://firebreak-sandbox-uploads: 3 object(s) under" in run.stdout
    assert "2 required key(s) present" in run.stdout
    assert "left for a person:" in run.stdout
    # the key written after the time stays (reported, not hidden)
    assert aws.client("s3").get_object(Bucket=BUCKET, Key=data_loss.CREATED)["Body"].read() == b"junk"

    declared, resolved = lifecycle(run, "declared"), lifecycle(run, "resolved")
    assert [(d["severity"], d["type"]) for d in declared] == [("P1", "data_loss")]
    assert declared[0]["services"] == [BUCKET]
    assert [r["status"] for r in resolved] == ["resolved"]
    assert "integrity check passed" in resolved[0]["summary"]
    [restore] = [
        r
        for r in records(run)
        if r["action"] == "firebreak.runbooks.s3_object_restore"
        and r["event"] == "task_changed"
        and not r.get("check_mode")
    ]
    assert restore["details"]["counts"]["remove_delete_marker"] == 1 and restore["details"]["counts"]["copy"] == 1
    assert run.timeline.with_name("report.md").is_file()

    state, seen = bucket_state(aws), len(records(run))
    aws.proxy.clear_log()
    again = run_playbook(data_loss.PLAYBOOK, extra_vars=extra_vars(context))
    assert again.returncode == 0, again.output[-4000:]
    changed = [r["action"] for r in records(again)[seen:] if r["event"] == "task_changed"]
    assert changed == ["firebreak.runbooks.incident_report"], changed
    assert bucket_state(aws) == state and writes(aws) == []


def test_no_loss_since_the_time_is_refused_then_forced_with_a_recorded_reason(aws, run_playbook):
    before = bucket_state(aws)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    variables = {"data_loss_prefix": "uploads/", "data_loss_since": since, "data_loss_freeze_writes": False}
    aws.proxy.clear_log()
    run = run_playbook(data_loss.PLAYBOOK, extra_vars=variables)
    assert run.returncode != 0
    text = " ".join(run.stdout.split())
    assert f"No object was deleted or overwritten since {since}; nothing was changed" in text, text[-3000:]
    assert "-e data_loss_force=true -e data_loss_force_reason=" in text
    assert bucket_state(aws) == before and writes(aws) == []
    assert not lifecycle(run, "resolved")

    reason = "the data owner says rows are wrong; the versions do not show it"
    forced = run_playbook(
        data_loss.PLAYBOOK, extra_vars={**variables, "data_loss_force": True, "data_loss_force_reason": reason}
    )
    assert forced.returncode == 0, forced.output[-4000:]
    notes = [r["msg"] for r in records(forced) if r["event"] == "note" and "forced by the operator" in (r["msg"] or "")]
    assert notes and reason in notes[0]
    assert bucket_state(aws) == before  # nothing to restore: the force changes nothing here


def test_bad_input_stops_before_any_call(aws, run_playbook):
    context = data_loss.inject(aws)
    before = bucket_state(aws)
    for extra, message in (
        ({"data_loss_bucket": "Bad_Bucket!"}, 'data_loss_bucket "Bad_Bucket!" is not an S3 bucket name'),
        ({"data_loss_since": "yesterday"}, 'data_loss_since "yesterday" is not a point in time'),
        ({"data_loss_whole_bucket": True}, "Give exactly one of data_loss_prefix, data_loss_keys"),
        ({"data_loss_force": True}, "data_loss_force needs a reason"),
        ({"data_loss_severity": "P9"}, "data_loss_severity"),
    ):
        aws.proxy.clear_log()
        run = run_playbook(data_loss.PLAYBOOK, extra_vars=extra_vars(context, **extra))
        assert run.returncode != 0, extra
        assert message in " ".join(run.output.split()), (extra, run.output[-2000:])
        assert "Traceback" not in run.output
        assert aws.proxy.log() == [] and bucket_state(aws) == before


def test_check_mode_with_the_freeze_changes_nothing_and_shows_the_plan(aws, run_playbook):
    context = data_loss.inject(aws)
    before = bucket_state(aws)
    aws.proxy.clear_log()
    run = run_playbook(
        data_loss.PLAYBOOK, extra_vars=extra_vars(context, data_loss_freeze_writes=True), check=True, diff=True
    )
    assert run.returncode == 0, run.output[-4000:]
    assert bucket_state(aws) == before and writes(aws) == []
    assert "DRY RUN, nothing changed." in run.stdout
    assert "1 key(s) deleted, 1 overwritten, 1 created after" in " ".join(run.stdout.split())
    assert "firebreak.runbooks.s3_write_freeze" in run.stdout or "s3_write_freeze" in run.stdout
    assert all(e["_check_mode"] for e in lifecycle(run))
    assert not run.timeline.with_name("report.md").exists()


def test_production_without_approval_stops_before_the_write_freeze(aws, run_playbook):
    context = data_loss.inject(aws)
    before = bucket_state(aws)
    aws.proxy.clear_log()
    run = run_playbook(
        data_loss.PLAYBOOK,
        extra_vars=extra_vars(context, data_loss_freeze_writes=True, firebreak_environment="production"),
    )
    assert run.returncode != 0
    text = " ".join(run.stdout.split())
    assert "gate data-loss-write-freeze not confirmed (approval_required in production): nothing was changed" in text
    assert bucket_state(aws) == before and writes(aws) == []


def test_the_freeze_is_placed_before_the_restore(aws, run_playbook):
    """With the freeze (the default) the Deny statement is in the bucket policy before the restore's first call.
    The sandbox then refuses the restore's own writes (docs/sandbox.md "S3 bucket policies": no principal in the
    request context, so the caller's exemption is not seen); AWS exempts the caller. The run stops there with the
    freeze in place, saying so."""
    context = data_loss.inject(aws)
    run = run_playbook(data_loss.PLAYBOOK, extra_vars=extra_vars(context, data_loss_freeze_writes=True))
    assert data_loss.frozen_by(aws.client("s3"), BUCKET), run.output[-3000:]
    actions = [
        r["action"] for r in records(run) if r["event"] in ("task_changed", "task_failed") and not r.get("check_mode")
    ]
    assert actions.index("firebreak.runbooks.s3_write_freeze") < actions.index("firebreak.runbooks.s3_object_restore")
    [entry] = [
        r for r in records(run) if r["action"] == "firebreak.runbooks.s3_write_freeze" and r["event"] == "task_changed"
    ]
    assert entry["details"]["containment"], entry["details"]
    assert run.returncode != 0 and "403" in run.stdout  # the sandbox gap, above


# -- the database path -----------------------------------------------------------------------------------------------
RDS_WRITES = {
    "ModifyDBCluster",
    "CreateDBClusterSnapshot",
    "RestoreDBClusterToPointInTime",
    "CreateDBInstance",
    "AddTagsToResource",
    "ModifyDBInstance",
    "CreateDBSnapshot",
}


def db_state(aws) -> dict:
    """The clusters (retention, members, tags), their manual snapshots, and the writers' desired count."""
    rds = aws.client("rds")
    clusters = {
        c["DBClusterIdentifier"]: (
            c["Status"],
            c["BackupRetentionPeriod"],
            sorted(m["DBInstanceIdentifier"] for m in c["DBClusterMembers"]),
            sorted((t["Key"], t["Value"]) for t in c.get("TagList") or []),
        )
        for c in rds.describe_db_clusters()["DBClusters"]
    }
    snapshots = sorted(
        s["DBClusterSnapshotIdentifier"]
        for s in rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
    )
    service = aws.client("ecs").describe_services(cluster="shop", services=["shop-api"])["services"][0]
    return {"clusters": clusters, "snapshots": snapshots, "writers": service["desiredCount"]}


def db_writes(aws) -> list[str]:
    return [
        e.get("action")
        for e in aws.proxy.log()
        if e.get("action") in RDS_WRITES or (e["service"] == "ecs" and e.get("action") == "UpdateService")
    ]


def test_database_path_stops_writes_restores_to_a_point_in_time_and_puts_the_writers_back(aws, run_playbook, tmp_path):
    """Production without approval stops before the first gated change; --check changes nothing; the converge
    raises the retention, snapshots, scales the writers to zero and restores into a new cluster behind three gates,
    checks the restore (available, engine and version, endpoint); a re-run asked to put the writers back changes
    nothing in RDS and restores exactly the recorded count. moto keeps no rows and makes the restore available at
    once: the rows stay a person's check (docs/runbooks/data_loss.md)."""
    time.sleep(1.1)  # the restore time is after the seeded cluster's creation, inside its window
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(1.1)
    variables = {
        "data_loss_store": "cluster",
        "data_loss_db": "orders-db",
        "data_loss_since": since,
        "data_loss_db_evidence": "test: SELECT count(*) FROM orders WHERE created > since returned 0, expected 1200",
        "data_loss_backup_retention_floor": 14,
        "data_loss_writers_platform": "ecs",
        "data_loss_writers_ecs_cluster": "shop",
        "data_loss_writers_ecs_service": "shop-api",
        "data_loss_restore_target": "orders-db-pitr",
    }
    approvals = {
        "firebreak_gate_approvals": {
            "data-loss-stop-writes": "yes",
            "data-loss-restore": "yes",
            "data-loss-cutover": "yes",
        },
        "incident_gate_allow_unpinned": True,
    }
    before = db_state(aws)
    assert before["clusters"]["orders-db"][1] == 7 and before["writers"] == 2, before

    aws.proxy.clear_log()
    refused = run_playbook(
        data_loss.PLAYBOOK,
        extra_vars={**variables, "firebreak_environment": "production"},
        timeline=tmp_path / "refused" / "timeline.jsonl",
    )
    assert refused.returncode != 0
    text = " ".join(refused.stdout.split())
    assert "gate data-loss-stop-writes not confirmed (approval_required in production): nothing was changed" in text, (
        text[-3000:]
    )
    assert "firebreak_gate_approvals" in text
    assert db_state(aws) == before and db_writes(aws) == []

    dry = run_playbook(
        data_loss.PLAYBOOK,
        extra_vars={**variables, **approvals},
        check=True,
        diff=True,
        timeline=tmp_path / "dry" / "timeline.jsonl",
    )
    assert dry.returncode == 0, dry.output[-4000:]
    assert "DRY RUN, nothing changed." in dry.stdout
    assert db_state(aws) == before and db_writes(aws) == []
    assert all(e["_check_mode"] for e in lifecycle(dry))

    run = run_playbook(data_loss.PLAYBOOK, extra_vars={**variables, **approvals})
    assert run.returncode == 0, run.output[-4000:]
    after = db_state(aws)
    status, retention, members, _ = after["clusters"]["orders-db"]
    assert status == "available"
    assert retention == 14 and members == before["clusters"]["orders-db"][2]
    assert after["writers"] == 0
    assert [s for s in after["snapshots"] if s.startswith("orders-db-inc-test-") and s.endswith("-before-pitr")]
    restored = aws.client("rds").describe_db_clusters(DBClusterIdentifier="orders-db-pitr")["DBClusters"][0]
    tags = {t["Key"]: t["Value"] for t in restored.get("TagList") or []}
    assert restored["Status"] == "available" and restored["Engine"] == "aurora-postgresql"
    assert restored["EngineVersion"] == "15.4" and restored["Endpoint"], restored
    assert tags["firebreak:restored-from"] == "orders-db", tags
    assert restored["DBClusterMembers"], "the restore must have its writer instance"
    # the order: writes stopped (retention, snapshot, writers) before the restore
    calls = [e.get("action") for e in aws.proxy.log()]
    assert calls.index("ModifyDBCluster") < calls.index("RestoreDBClusterToPointInTime")
    assert calls.index("CreateDBClusterSnapshot") < calls.index("RestoreDBClusterToPointInTime")
    assert calls.index("UpdateService") < calls.index("RestoreDBClusterToPointInTime")

    out = " ".join(run.stdout.split())
    assert "integrity check passed on orders-db-pitr: available, aurora-postgresql 15.4, endpoint" in out, out[-3000:]
    assert "left for a person:" in out and "cannot run SQL" in out
    notes = [r["msg"] for r in records(run) if r["event"] == "note" and not r.get("check_mode")]
    assert any("backup retention of cluster orders-db raised from 7 to 14 day(s)" in n for n in notes), notes
    assert any(n.startswith("writers stopped: ECS service shop/shop-api scaled from 2 to 0") for n in notes), notes
    assert any("cut-over: orders-db-pitr" in n and restored["Endpoint"] in n for n in notes), notes
    for gate in ("data-loss-stop-writes", "data-loss-restore", "data-loss-cutover"):
        assert any(n.startswith(f"Gate {gate}") for n in notes), (gate, notes)
    [pitr] = [
        r
        for r in records(run)
        if r["action"] == "firebreak.runbooks.rds_cluster_pitr"
        and r["event"] == "task_changed"
        and not r.get("check_mode")
    ]
    assert pitr["details"]["target"]["id"] == "orders-db-pitr"
    declared, resolved = lifecycle(run, "declared"), lifecycle(run, "resolved")
    assert [(d["type"], d["services"]) for d in declared if not d["_check_mode"]] == [("data_loss", ["orders-db"])]
    assert [r["status"] for r in resolved if not r["_check_mode"]] == ["resolved"]
    report = json.loads(run.timeline.with_name("report.json").read_text())
    assert report["resolved"] is True

    aws.proxy.clear_log()
    again = run_playbook(
        data_loss.PLAYBOOK,
        extra_vars={**variables, **approvals, "data_loss_restore_writers": True},
        timeline=run.timeline,
    )
    assert again.returncode == 0, again.output[-4000:]
    final = db_state(aws)
    assert final["writers"] == 2, "the recorded count is put back"
    assert {**final, "writers": 0} == after
    assert db_writes(aws) == ["UpdateService"], db_writes(aws)
