"""rds_instance_failover and its role against the sandbox.

moto accepts ``RebootDBInstance(ForceFailover=True)`` but never swaps the primary and standby AZs and
never leaves ``available``: these tests assert what the sandbox can show (the reboot call was made,
seen in the fault proxy's request log; the instance is available after; the record on the instance;
refusals change nothing). The AZ swap is AWS-only (docs/steps/rds_instance_failover.md).
"""

from __future__ import annotations

import pytest

from tests.integration.rds_helpers import JSON_OUTPUT, assert_documented, mutating_calls, rds_state, recap, result_of

pytestmark = pytest.mark.integration

MODULE = "tests/integration/playbooks/rds/instance_failover.yml"
ROLE = "tests/integration/playbooks/rds/rds_instance_failover_role.yml"


def failover(run_playbook, check=False, diff=False, env=None, **options):
    extra = {f"rds_{key}": value for key, value in options.items()}
    run = run_playbook(MODULE, extra_vars=extra, check=check, diff=diff, env={**JSON_OUTPUT, **(env or {})})
    return run, result_of(run, "Fail over")


def instance(aws, ident="reports-db") -> dict:
    return aws.client("rds").describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]


def tags(aws, ident="reports-db") -> dict:
    return {t["Key"]: t["Value"] for t in instance(aws, ident).get("TagList") or []}


def single_az(aws, ident="scratch-db"):
    aws.client("rds").create_db_instance(
        DBInstanceIdentifier=ident,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="scratch",
        MasterUserPassword="not-a-real-secret-1",
        MultiAZ=False,
    )


def test_check_mode_with_diff_changes_nothing(aws, run_playbook):
    before = rds_state(aws)
    aws.proxy.clear_log()
    run, result = failover(run_playbook, check=True, diff=True, incident_id="INC-1")
    assert run.returncode == 0, run.output
    assert result["changed"] is True and "would fail reports-db over" in result["msg"]
    assert result["before"]["multi_az"] is True
    assert mutating_calls(aws) == []
    assert rds_state(aws) == before


def test_failover_reboots_with_failover_records_it_and_rerun_is_no_change(aws, run_playbook):
    aws.proxy.clear_log()
    run, result = failover(run_playbook, incident_id="INC-1")
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert mutating_calls(aws).count("RebootDBInstance") == 1, mutating_calls(aws)
    assert instance(aws)["DBInstanceStatus"] == "available"
    assert result["after"]["status"] == "available"
    assert result["az_swapped"] is False  # moto never swaps; AWS does
    assert_documented(result, "rds_instance_failover")
    recorded = tags(aws)
    assert recorded["firebreak:failover-incident"] == "INC-1" and recorded["firebreak:incident"] == "INC-1"
    assert result["failover"]["incident"] == "INC-1"

    aws.proxy.clear_log()
    again, second = failover(run_playbook, incident_id="INC-1")
    assert again.returncode == 0, again.output
    assert second["changed"] is False and "already failed over for incident INC-1" in second["msg"]
    assert mutating_calls(aws) == []

    aws.proxy.clear_log()
    forced, third = failover(run_playbook, incident_id="INC-1", force=True)
    assert forced.returncode == 0, forced.output
    assert third["changed"] is True and mutating_calls(aws).count("RebootDBInstance") == 1


@pytest.mark.parametrize(
    ("setup", "options", "message"),
    [
        (None, {"instance": "no-such-db"}, "DB instance 'no-such-db' not found"),
        (single_az, {"instance": "scratch-db"}, "DB instance 'scratch-db' is single-AZ (MultiAZ false)"),
        (None, {"instance": "orders-db-1"}, "DB instance 'orders-db-1' is a member of DB cluster 'orders-db'"),
    ],
)
def test_refusals_name_the_instance_and_change_nothing(aws, run_playbook, setup, options, message):
    if setup:
        setup(aws)
    before = rds_state(aws)
    aws.proxy.clear_log()
    run, result = failover(run_playbook, incident_id="INC-1", **options)
    assert run.returncode != 0
    assert message in result["msg"], result["msg"]
    assert result["changed"] is False
    assert mutating_calls(aws) == []
    assert rds_state(aws) == before


@pytest.mark.proof
def test_permanent_5xx_on_reboot_fails_naming_call_and_code(aws, run_playbook):
    aws.proxy.add_rule({"service": "rds", "action": "RebootDBInstance", "fault": "error"})
    run, result = failover(run_playbook, incident_id="INC-1", retry_budget=3)
    assert run.returncode != 0
    assert "RebootDBInstance" in result["msg"] and "InternalFailure" in result["msg"]
    assert result["changed"] is False
    assert "firebreak:failover-incident" not in tags(aws)


def test_role_check_converge_idempotence(aws, run_playbook):
    before = rds_state(aws)
    check = run_playbook(ROLE, check=True)
    assert check.returncode == 0, check.output
    assert rds_state(aws) == before

    aws.proxy.clear_log()
    first = run_playbook(ROLE)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    assert mutating_calls(aws).count("RebootDBInstance") == 1
    assert instance(aws)["DBInstanceStatus"] == "available"

    state = rds_state(aws)
    second = run_playbook(ROLE)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0, second.stdout
    assert rds_state(aws) == state


def test_role_refuses_a_single_az_instance(aws, run_playbook):
    single_az(aws)
    before = rds_state(aws)
    run = run_playbook(ROLE, extra_vars={"instance": "scratch-db"})
    assert run.returncode != 0
    assert "DB instance 'scratch-db' is single-AZ" in run.stdout
    assert rds_state(aws) == before


def test_an_upper_case_identifier_is_reported_as_rds_stores_it(aws, run_playbook):
    run, result = failover(run_playbook, instance="REPORTS-DB", incident_id="INC-1")
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["instance"]["id"] == "reports-db"
    assert "failed reports-db over" in result["msg"], result["msg"]
    assert tags(aws)["firebreak:failover-incident"] == "INC-1"
