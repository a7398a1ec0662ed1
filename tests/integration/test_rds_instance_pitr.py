"""rds_instance_pitr against the sandbox: the restored instance is read back from moto and the source
is compared before/after. moto reports no restore window start for instances: the module derives it
(InstanceCreateTime / BackupRetentionPeriod), and these tests hold it to that."""

from __future__ import annotations

import datetime

import pytest

from tests.integration.proof import first_case_in_make_test
from tests.integration.rds_helpers import JSON_OUTPUT, assert_documented, mutating_calls, rds_state, result_of

pytestmark = pytest.mark.integration

MODULE = "tests/integration/playbooks/rds/instance_pitr.yml"


def restore(run_playbook, check=False, diff=False, **options):
    extra = {f"rds_{key}": value for key, value in options.items()}
    run = run_playbook(MODULE, extra_vars=extra, check=check, diff=diff, env=JSON_OUTPUT)
    return run, result_of(run, "Restore")


def instance(aws, ident):
    found = aws.client("rds").describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": [ident]}])
    return (found.get("DBInstances") or [None])[0]


def test_check_mode_changes_nothing(aws, run_playbook):
    before = rds_state(aws)
    aws.proxy.clear_log()
    run, result = restore(run_playbook, check=True, diff=True, incident_id="INC-5")
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert result["actions"] == ["restore instance reports-db-restored from reports-db to latest"]
    assert result["restore_window"]["how"].startswith("derived")
    assert mutating_calls(aws) == []
    assert rds_state(aws) == before


def test_restore_to_a_time_then_rerun_is_no_change(aws, run_playbook):
    source = instance(aws, "reports-db")
    when = source["InstanceCreateTime"] + datetime.timedelta(milliseconds=1)
    text = when.astimezone(datetime.timezone(datetime.timedelta(hours=-5))).isoformat()
    source_before = rds_state(aws)["instances"]["reports-db"]
    run, result = restore(run_playbook, restore_time=text, incident_id="INC-5")
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["use_latest"] is False
    restored = instance(aws, "reports-db-restored")
    assert restored["DBInstanceStatus"] == "available"
    assert restored["DBInstanceClass"] == source["DBInstanceClass"] and restored["MultiAZ"] is True
    assert restored["DBSubnetGroup"]["DBSubnetGroupName"] == source["DBSubnetGroup"]["DBSubnetGroupName"]
    assert [g["VpcSecurityGroupId"] for g in restored["VpcSecurityGroups"]] == [
        g["VpcSecurityGroupId"] for g in source["VpcSecurityGroups"]
    ]
    tags = {t["Key"]: t["Value"] for t in restored["TagList"]}
    assert tags["firebreak:restored-from"] == "reports-db" and tags["firebreak:incident"] == "INC-5"
    assert result["endpoints"]["address"] == restored["Endpoint"]["Address"]
    assert rds_state(aws)["instances"]["reports-db"] == source_before
    assert_documented(result, "rds_instance_pitr")

    aws.proxy.clear_log()
    again, second = restore(run_playbook, restore_time=text, incident_id="INC-5")
    assert again.returncode == 0, again.output
    assert second["changed"] is False
    assert mutating_calls(aws) == []


def _future(aws):
    return (datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=10)).isoformat()


def _before_earliest(aws):
    return (instance(aws, "reports-db")["InstanceCreateTime"] - datetime.timedelta(minutes=1)).isoformat()


@first_case_in_make_test
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"source": "no-such-db"}, "DB instance 'no-such-db' not found"),
        ({"source": "orders-db-1"}, "DB instance 'orders-db-1' is a member of DB cluster 'orders-db'"),
        ({"restore_time": _future}, "is in the future"),
        ({"restore_time": _before_earliest}, "is before the earliest restorable time of DB instance 'reports-db'"),
        ({"restore_time": "2026-13-45T99:00:00"}, "unparseable time '2026-13-45T99:00:00'"),
        ({"target": "orders-db-2"}, "target instance identifier 'orders-db-2' already exists"),
    ],
)
def test_bad_input_fails_naming_the_value_and_changes_nothing(aws, run_playbook, options, message):
    options = {k: (v(aws) if callable(v) else v) for k, v in options.items()}
    before = rds_state(aws)
    aws.proxy.clear_log()
    run, result = restore(run_playbook, incident_id="INC-5", **options)
    assert run.returncode != 0
    assert message in result["msg"], result["msg"]
    assert result["changed"] is False
    assert mutating_calls(aws) == []
    assert rds_state(aws) == before


def test_cutover_swaps_identifiers_and_a_rerun_is_no_change(aws, run_playbook):
    options = {"incident_id": "INC-5", "cutover": True, "cutover_confirm": "reports-db"}
    run, result = restore(run_playbook, **options)
    assert run.returncode == 0, run.output
    assert_documented(result, "rds_instance_pitr")
    assert result["cutover"]["done"] is True and result["cutover"]["replaced"] == "reports-db-replaced-inc-5"
    now_source = {t["Key"]: t["Value"] for t in instance(aws, "reports-db")["TagList"]}
    assert now_source["firebreak:restored-from"] == "reports-db"
    assert instance(aws, "reports-db-replaced-inc-5") is not None
    assert instance(aws, "reports-db-restored") is None

    aws.proxy.clear_log()
    again, second = restore(run_playbook, **options)
    assert again.returncode == 0, again.output
    assert second["changed"] is False
    assert mutating_calls(aws) == []
