"""The pitr_restore role: check mode, converge, idempotence, bad input, for a cluster and an instance."""

from __future__ import annotations

import datetime

import pytest

from tests.integration.rds_helpers import rds_state, recap

pytestmark = pytest.mark.integration

ROLE = "tests/integration/playbooks/rds/pitr_restore_role.yml"


def members(aws, ident):
    found = aws.client("rds").describe_db_clusters(DBClusterIdentifier=ident)["DBClusters"][0]
    return {m["DBInstanceIdentifier"]: m["IsClusterWriter"] for m in found["DBClusterMembers"]}


def test_check_mode_changes_nothing(aws, run_playbook):
    before = rds_state(aws)
    run = run_playbook(ROLE, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert recap(run)["failed"] == 0
    assert rds_state(aws) == before


def test_converge_then_idempotence_and_the_source_untouched(aws, run_playbook):
    source_before = rds_state(aws)
    first = run_playbook(ROLE)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    assert members(aws, "orders-db-restored") == {"orders-db-restored-1": True, "orders-db-restored-2": False}
    after = rds_state(aws)
    assert after["clusters"]["orders-db"] == source_before["clusters"]["orders-db"]
    for ident in ("orders-db-1", "orders-db-2"):
        assert after["instances"][ident] == source_before["instances"][ident]

    second = run_playbook(ROLE)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0 and recap(second)["failed"] == 0, second.stdout
    assert rds_state(aws) == after


def test_instance_kind_converges(aws, run_playbook):
    extra = {"kind": "instance", "source": "reports-db", "target": "reports-db-restored"}
    first = run_playbook(ROLE, extra_vars=extra)
    assert first.returncode == 0, first.output
    found = aws.client("rds").describe_db_instances(DBInstanceIdentifier="reports-db-restored")["DBInstances"][0]
    assert found["DBInstanceStatus"] == "available"
    state = rds_state(aws)
    second = run_playbook(ROLE, extra_vars=extra)
    assert second.returncode == 0 and recap(second)["changed"] == 0, second.stdout
    assert rds_state(aws) == state


def test_a_time_in_the_future_is_refused_naming_it(aws, run_playbook):
    future = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = rds_state(aws)
    run = run_playbook(ROLE, extra_vars={"restore_time": future})
    assert run.returncode != 0
    assert f"restore time '{future}'" in run.stdout and "is in the future" in run.stdout
    assert rds_state(aws) == before


@pytest.mark.parametrize(
    ("extra", "made"),
    [
        ({"kind": "instance", "source": "REPORTS-DB", "target": "Reports-DB-Restored"}, {"reports-db-restored"}),
        ({"source": "ORDERS-DB", "target": "ORDERS-DB-RST"}, {"orders-db-rst", "orders-db-rst-1", "orders-db-rst-2"}),
    ],
)
def test_upper_case_identifiers_converge_to_the_ones_rds_stores(aws, run_playbook, extra, made):
    # Before the fix: the instance kind restored, then failed its own check (RDS answers the id in lower
    # case); the cluster kind waited for instance ids RDS never answers.
    before = rds_state(aws)
    first = run_playbook(ROLE, extra_vars=extra)
    assert first.returncode == 0, first.output
    after = rds_state(aws)
    new = (set(after["clusters"]) - set(before["clusters"])) | (set(after["instances"]) - set(before["instances"]))
    assert new == made
    assert all(after["instances"][i]["status"] == "available" for i in made if i in after["instances"])
    second = run_playbook(ROLE, extra_vars=extra)
    assert second.returncode == 0 and recap(second)["changed"] == 0, second.stdout
    assert rds_state(aws) == after


def test_a_target_too_long_for_its_instance_identifiers_is_refused_and_nothing_is_made(aws, run_playbook):
    target = "orders-db-restored-" + "x" * 43  # 62 characters: "<target>-1" would be 64
    before = rds_state(aws)
    run = run_playbook(ROLE, extra_vars={"target": target})
    assert run.returncode != 0
    assert f"'{target}-1'" in run.stdout and "choose a target of at most 61 characters" in run.stdout
    assert rds_state(aws) == before
