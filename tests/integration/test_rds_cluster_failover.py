"""rds_cluster_failover and the aurora_failover role against the sandbox (moto behind the fault proxy).

Every test reads the writer back from moto (``IsClusterWriter``), not only what the module said.
"""

from __future__ import annotations

import datetime
import re
import time

import pytest

from tests.integration.proof import first_case_in_make_test
from tests.integration.rds_helpers import (
    JSON_OUTPUT,
    assert_documented,
    mutating_calls,
    rds_state,
    recap,
    result_of,
    writer,
)

pytestmark = pytest.mark.integration

MODULE = "tests/integration/playbooks/rds/cluster_failover.yml"
ROLE = "tests/integration/playbooks/rds/aurora_failover_role.yml"


def failover(run_playbook, check=False, diff=False, env=None, **options):
    extra = {f"rds_{key}": value for key, value in options.items()}
    run = run_playbook(MODULE, extra_vars=extra, check=check, diff=diff, env={**JSON_OUTPUT, **(env or {})})
    return run, result_of(run, "Fail over")


def add_reader(aws, ident, cluster="orders-db", klass="db.r6g.large", zone="us-east-1b", tier=1, engine=None):
    engine = engine or aws.client("rds").describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["Engine"]
    aws.client("rds").create_db_instance(
        DBInstanceIdentifier=ident,
        DBClusterIdentifier=cluster,
        Engine=engine,
        DBInstanceClass=klass,
        AvailabilityZone=zone,
        PromotionTier=tier,
    )


def test_check_mode_with_diff_changes_nothing(aws, run_playbook):
    before = rds_state(aws)
    aws.proxy.clear_log()
    run, result = failover(run_playbook, check=True, diff=True, target="orders-db-2")
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert result["diff"] == {"before": {"writer": "orders-db-1"}, "after": {"writer": "orders-db-2"}}
    assert result["after"]["writer"] == "orders-db-2" and result["old_writer"] == "orders-db-1"
    assert "would fail over" in result["msg"]
    assert writer(aws, "orders-db") == "orders-db-1"
    assert rds_state(aws) == before
    assert mutating_calls(aws) == []


def test_failover_to_a_given_reader_then_rerun_is_no_change(aws, run_playbook):
    run, result = failover(run_playbook, target="orders-db-2", incident_id="INC-7")
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert (result["old_writer"], result["new_writer"]) == ("orders-db-1", "orders-db-2")
    assert result["before"]["writer"] == "orders-db-1" and result["after"]["writer"] == "orders-db-2"
    assert result["after"]["readers"] == ["orders-db-1"]
    assert writer(aws, "orders-db") == "orders-db-2"
    assert_documented(result, "rds_cluster_failover")
    tags = aws.client("rds").list_tags_for_resource(ResourceName=aws.manifest["aws"]["aurora"]["cluster_arn"])
    assert {"Key": "firebreak:incident", "Value": "INC-7"} in tags["TagList"]

    aws.proxy.clear_log()
    again, second = failover(run_playbook, target="orders-db-2")
    assert again.returncode == 0, again.output
    assert second["changed"] is False
    assert "already is the writer" in second["msg"]
    assert mutating_calls(aws) == []
    assert writer(aws, "orders-db") == "orders-db-2"


def test_best_reader_prefers_same_class_then_tier_then_other_az(aws, run_playbook):
    # orders-db-1 (writer, db.r6g.large, us-east-1a), orders-db-2 (tier 1, us-east-1b) from the seed.
    add_reader(aws, "orders-db-small", klass="db.t3.medium", tier=0)  # best tier, but a smaller class
    add_reader(aws, "orders-db-3", tier=0, zone="us-east-1a")  # same class, tier 0, same AZ as the writer
    add_reader(aws, "orders-db-4", tier=0, zone="us-east-1b")  # same class, tier 0, another AZ: the best
    run, result = failover(run_playbook, failover_from="orders-db-1")
    assert run.returncode == 0, run.output
    assert result["target"] == "orders-db-4", result["candidates"]
    assert [c["id"] for c in result["candidates"]] == ["orders-db-4", "orders-db-3", "orders-db-2", "orders-db-small"]
    assert writer(aws, "orders-db") == "orders-db-4"

    # failover_from names the old writer: a re-run changes nothing (it would otherwise fail over again)
    again, second = failover(run_playbook, failover_from="orders-db-1")
    assert again.returncode == 0, again.output
    assert second["changed"] is False and "already failed over" in second["msg"]
    assert writer(aws, "orders-db") == "orders-db-4"


def test_neptune_cluster_fails_over_to_its_tier_0_reader(aws, run_playbook):
    assert aws.manifest["aws"]["neptune"]["engine"] == "neptune"
    run, result = failover(run_playbook, cluster="graph-db")
    assert run.returncode == 0, run.output
    assert result["cluster"]["engine"] == "neptune"
    assert (result["old_writer"], result["new_writer"]) == ("graph-db-1", "graph-db-2")
    assert writer(aws, "graph-db") == "graph-db-2"


@first_case_in_make_test
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cluster": "no-such-db"}, "DB cluster 'no-such-db' not found"),
        ({"target": "reports-db"}, "target 'reports-db' is not a member of DB cluster 'orders-db'"),
        ({"target": "orders-db-9"}, "target 'orders-db-9' is not a member of DB cluster 'orders-db'"),
    ],
)
def test_bad_input_fails_naming_the_value_and_changes_nothing(aws, run_playbook, options, message):
    before = rds_state(aws)
    aws.proxy.clear_log()
    run, result = failover(run_playbook, **options)
    assert run.returncode != 0
    assert result.get("failed") is True
    assert message in result["msg"]
    assert result["changed"] is False
    assert mutating_calls(aws) == []
    assert rds_state(aws) == before


def test_a_target_that_is_not_available_is_refused_naming_it(aws, run_playbook):
    add_reader(aws, "orders-db-3")
    # moto never leaves "available" by itself: the fault proxy answers DescribeDBInstances as AWS would
    # while the reader is rebooting is not possible for one instance, so stop it (moto: "stopped").
    aws.client("rds").stop_db_instance(DBInstanceIdentifier="orders-db-3")
    before = rds_state(aws)
    run, result = failover(run_playbook, target="orders-db-3")
    assert run.returncode != 0
    assert "target 'orders-db-3' of DB cluster 'orders-db' is stopped, not available" in result["msg"]
    assert rds_state(aws) == before


@pytest.mark.proof
def test_permanent_5xx_on_failover_fails_within_the_budget_naming_call_and_code(aws, run_playbook):
    aws.proxy.add_rule({"service": "rds", "action": "FailoverDBCluster", "fault": "error"})
    aws.proxy.clear_log()
    started = time.monotonic()
    # A budget below the default (60 s) proves the same bound in a fifth of the time; the default's own bound
    # is proven with a fake clock in tests/unit/test_step.py.
    budget = 12
    run, result = failover(run_playbook, target="orders-db-2", retry_budget=budget)
    ended = datetime.datetime.now(datetime.UTC)
    elapsed = time.monotonic() - started
    assert run.returncode != 0
    assert "FailoverDBCluster" in result["msg"] and "InternalFailure" in result["msg"], result["msg"]
    assert result["aws_operation"] == "FailoverDBCluster" and result["aws_error_code"] == "InternalFailure"
    assert result["changed"] is False
    attempts = [e for e in aws.proxy.log() if e["action"] == "FailoverDBCluster"]
    assert len(attempts) > 1 and result["attempts"] == len(attempts), "a 5xx is retried, each attempt logged"
    # The step gives up within the budget: no attempt starts after it, so the last attempt starts
    # less than 60 s after the first; the module's clock stops when the last attempt answered. The whole
    # ansible-playbook run adds start-up and reporting around that (seconds, more under load).
    first = datetime.datetime.fromisoformat(attempts[0]["time"])
    last = datetime.datetime.fromisoformat(attempts[-1]["time"])
    assert (last - first).total_seconds() < budget
    gave_up_after = float(re.search(r"attempts in ([0-9.]+)s", result["msg"]).group(1))
    assert gave_up_after < budget + 1, result["msg"]  # + the last attempt's own duration
    assert (ended - first).total_seconds() < budget + 15, f"the run ended {(ended - first).total_seconds():.1f}s after"
    assert elapsed > gave_up_after
    assert writer(aws, "orders-db") == "orders-db-1"


# -- the role ---------------------------------------------------------------------------------------


def test_role_check_mode_changes_nothing(aws, run_playbook):
    before = rds_state(aws)
    run = run_playbook(ROLE, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert recap(run)["failed"] == 0
    assert rds_state(aws) == before


def test_role_converge_then_idempotence(aws, run_playbook):
    # the failure: the writer is on the wrong instance (orders-db-1); the role puts it on orders-db-2
    first = run_playbook(ROLE)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    assert writer(aws, "orders-db") == "orders-db-2"

    state = rds_state(aws)
    second = run_playbook(ROLE)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0 and recap(second)["failed"] == 0, second.stdout
    assert rds_state(aws) == state


def test_role_rejects_a_non_member_target(aws, run_playbook):
    before = rds_state(aws)
    run = run_playbook(ROLE, extra_vars={"target": "graph-db-2"})
    assert run.returncode != 0
    assert "target 'graph-db-2' is not a member of DB cluster 'orders-db'" in run.stdout
    assert rds_state(aws) == before


# -- identifiers in any case (issue 21): RDS stores and answers them in lower case ---------------------


def test_upper_case_cluster_and_target_fail_over_to_the_lower_case_member(aws, run_playbook):
    # Before the fix: "target 'ORDERS-DB-2' is not a member of DB cluster 'ORDERS-DB'".
    run, result = failover(run_playbook, cluster="ORDERS-DB", target="Orders-DB-2")
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["cluster"]["id"] == "orders-db"
    assert (result["target"], result["new_writer"]) == ("orders-db-2", "orders-db-2")
    assert writer(aws, "orders-db") == "orders-db-2"


def test_failover_from_the_writer_in_upper_case_still_fails_over(aws, run_playbook):
    # Before the fix: "ORDERS-DB-1" != "orders-db-1", so the step reported the writer as already failed
    # over and changed nothing while orders-db-1 was still the writer.
    run, result = failover(run_playbook, failover_from="ORDERS-DB-1")
    assert run.returncode == 0, run.output
    assert result["changed"] is True, result["msg"]
    assert writer(aws, "orders-db") == "orders-db-2"


def test_role_accepts_an_upper_case_target(aws, run_playbook):
    run = run_playbook(ROLE, extra_vars={"target": "ORDERS-DB-2"})
    assert run.returncode == 0, run.output
    assert writer(aws, "orders-db") == "orders-db-2"
