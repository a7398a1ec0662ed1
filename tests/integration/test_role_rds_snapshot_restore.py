"""The rds_snapshot_restore role: check mode, converge, idempotence, bad input, for a cluster and an instance."""

from __future__ import annotations

import pytest

from tests.integration.rds_helpers import rds_state, recap

pytestmark = pytest.mark.integration

ROLE = "tests/integration/playbooks/rds/rds_snapshot_restore_role.yml"


def members(aws, ident):
    found = aws.client("rds").describe_db_clusters(DBClusterIdentifier=ident)["DBClusters"][0]
    return {m["DBInstanceIdentifier"]: m["IsClusterWriter"] for m in found["DBClusterMembers"]}


def test_check_mode_changes_nothing(aws, run_playbook):
    before = rds_state(aws)
    run = run_playbook(ROLE, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert recap(run)["failed"] == 0 and recap(run)["changed"] == 1, run.stdout
    assert rds_state(aws) == before


def test_converge_then_idempotence_and_the_source_untouched(aws, run_playbook):
    before = rds_state(aws)
    first = run_playbook(ROLE)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    assert members(aws, "orders-db-snap") == {"orders-db-snap-1": True, "orders-db-snap-2": False}
    assert "restored from snapshot rds:orders-db-" in first.stdout and "are not in the restore" in first.stdout
    after = rds_state(aws)
    assert after["clusters"]["orders-db"] == before["clusters"]["orders-db"]
    for ident in ("orders-db-1", "orders-db-2"):
        assert after["instances"][ident] == before["instances"][ident]

    second = run_playbook(ROLE)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0 and recap(second)["failed"] == 0, second.stdout
    assert rds_state(aws) == after


def test_instance_kind_converges(aws, run_playbook):
    extra = {"kind": "instance", "source": "reports-db", "target": "reports-db-snap"}
    first = run_playbook(ROLE, extra_vars=extra)
    assert first.returncode == 0, first.output
    found = aws.client("rds").describe_db_instances(DBInstanceIdentifier="reports-db-snap")["DBInstances"][0]
    assert found["DBInstanceStatus"] == "available" and found["MultiAZ"] is True
    state = rds_state(aws)
    second = run_playbook(ROLE, extra_vars=extra)
    assert second.returncode == 0 and recap(second)["changed"] == 0, second.stdout
    assert rds_state(aws) == state


def test_overwriting_the_source_is_refused_before_any_call(aws, run_playbook):
    before = rds_state(aws)
    run = run_playbook(ROLE, extra_vars={"target": "ORDERS-DB"})
    assert run.returncode != 0
    assert "must name a NEW identifier" in run.stdout
    assert rds_state(aws) == before
