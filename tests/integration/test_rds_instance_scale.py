"""rds_instance_scale against the sandbox: the class is read back from moto, the record is on the instance's
tags, and the orderable-class check is held to what DescribeOrderableDBInstanceOptions answers.

moto changes the class at once (no ``modifying``, no reboot or failover) and lists orderable classes only for
some Aurora PostgreSQL versions (11.x), not the seeded 15.4: the refusal is tested on a cluster of such a version.
"""

from __future__ import annotations

import pytest

from tests.integration.proof import first_case_in_make_test
from tests.integration.rds_helpers import JSON_OUTPUT, assert_documented, mutating_calls, rds_calls, result_of

pytestmark = pytest.mark.integration

MODULE = "tests/integration/playbooks/rds/instance_scale.yml"


def scale(run_playbook, check=False, diff=False, **options):
    extra = {f"rds_{key}": value for key, value in options.items()}
    run = run_playbook(MODULE, extra_vars=extra, check=check, diff=diff, env=JSON_OUTPUT)
    return run, result_of(run, "Scale")


def described(aws, ident):
    found = aws.client("rds").describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    return {
        "class": found["DBInstanceClass"],
        "status": found["DBInstanceStatus"],
        "tags": {t["Key"]: t["Value"] for t in found.get("TagList") or []},
    }


def test_check_mode_predicts_and_changes_nothing(aws, run_playbook):
    before = described(aws, "reports-db")
    aws.proxy.clear_log()
    run, result = scale(run_playbook, check=True, diff=True, instance_class="db.t3.large", incident_id="INC-7")
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["predicted"] is True
    assert result["after"]["instance_class"] == "db.t3.large"
    assert result["diff"] == {"before": {"instance_class": "db.t3.medium"}, "after": {"instance_class": "db.t3.large"}}
    assert "Multi-AZ" in result["disruption"] and result["gate_kind"] == "failover"
    assert mutating_calls(aws) == []
    assert described(aws, "reports-db") == before


def test_scale_records_the_old_class_rerun_is_no_change_and_restore_puts_it_back(aws, run_playbook):
    run, result = scale(run_playbook, instance_class="db.t3.large", incident_id="INC-7")
    assert run.returncode == 0, run.output
    now = described(aws, "reports-db")
    assert now["class"] == "db.t3.large" and now["status"] == "available"
    assert now["tags"]["firebreak:scaled-from-class"] == "db.t3.medium"
    assert now["tags"]["firebreak:scaled-to-class"] == "db.t3.large"
    assert now["tags"]["firebreak:incident"] == "INC-7"
    assert result["before"]["instance_class"] == "db.t3.medium" and result["after"]["instance_class"] == "db.t3.large"
    assert result["scale"] == dict(result["scale"], **{"from": "db.t3.medium", "to": "db.t3.large", "recorded": True})
    assert result["class_check"]["verdict"] == "unknown"  # moto lists no class for postgres
    assert_documented(result, "rds_instance_scale")

    aws.proxy.clear_log()
    again, second = scale(run_playbook, instance_class="DB.T3.LARGE", incident_id="INC-7")
    assert again.returncode == 0, again.output
    assert second["changed"] is False and mutating_calls(aws) == []

    # a second scale keeps the first recorded class
    third_run, _third = scale(run_playbook, instance_class="db.t3.xlarge", incident_id="INC-7")
    assert third_run.returncode == 0, third_run.output
    assert described(aws, "reports-db")["tags"]["firebreak:scaled-from-class"] == "db.t3.medium"

    back_run, back = scale(run_playbook, state="restored", incident_id="INC-7")
    assert back_run.returncode == 0, back_run.output
    now = described(aws, "reports-db")
    assert now["class"] == "db.t3.medium" and back["after"]["instance_class"] == "db.t3.medium"
    assert not {k for k in now["tags"] if k.startswith("firebreak:scaled")}

    aws.proxy.clear_log()
    noop_run, noop = scale(run_playbook, state="restored", incident_id="INC-7")
    assert noop_run.returncode == 0 and noop["changed"] is False
    assert mutating_calls(aws) == []


def test_restore_leaves_a_class_someone_changed_meanwhile(aws, run_playbook):
    run, _ = scale(run_playbook, instance_class="db.t3.large")
    assert run.returncode == 0, run.output
    rds = aws.client("rds")
    rds.modify_db_instance(DBInstanceIdentifier="reports-db", DBInstanceClass="db.m5.large", ApplyImmediately=True)
    back_run, back = scale(run_playbook, state="restored")
    assert back_run.returncode == 0, back_run.output
    assert back["changed"] is False and back["left_alone"]["instance_class"] == "db.m5.large"
    assert described(aws, "reports-db")["class"] == "db.m5.large"


def test_the_aurora_writer_is_scaled_as_its_instance(aws, run_playbook):
    run, result = scale(run_playbook, instance="orders-db-1", instance_class="db.r6g.xlarge")
    assert run.returncode == 0, run.output
    assert result["instance"]["role"] == "writer" and result["instance"]["cluster"] == "orders-db"
    assert "writer of DB cluster orders-db" in result["disruption"]
    assert described(aws, "orders-db-1")["class"] == "db.r6g.xlarge"
    assert described(aws, "orders-db-2")["class"] == "db.r6g.large"
    assert "ModifyDBInstance" in mutating_calls(aws)


def _legacy_cluster(aws):
    """An Aurora PostgreSQL 11.9 cluster: a version moto lists orderable classes for."""
    rds = aws.client("rds")
    rds.create_db_cluster(
        DBClusterIdentifier="legacy-db",
        Engine="aurora-postgresql",
        EngineVersion="11.9",
        MasterUsername="legacy",
        MasterUserPassword="not-a-secret-1",
    )
    rds.create_db_instance(
        DBInstanceIdentifier="legacy-db-1",
        DBClusterIdentifier="legacy-db",
        Engine="aurora-postgresql",
        EngineVersion="11.9",
        DBInstanceClass="db.r5.large",
    )


def test_a_class_the_engine_does_not_offer_is_refused_naming_it(aws, run_playbook):
    _legacy_cluster(aws)
    aws.proxy.clear_log()
    run, result = scale(run_playbook, instance="legacy-db-1", instance_class="db.m1.small")
    assert run.returncode != 0
    assert "instance_class 'db.m1.small' is not offered for aurora-postgresql 11.9" in result["msg"], result["msg"]
    assert "db.r5.xlarge" in result["msg"]
    assert "DescribeOrderableDBInstanceOptions" in rds_calls(aws) and mutating_calls(aws) == []
    assert described(aws, "legacy-db-1")["class"] == "db.r5.large"

    ok_run, ok = scale(run_playbook, instance="legacy-db-1", instance_class="db.r5.xlarge")
    assert ok_run.returncode == 0, ok_run.output
    assert ok["class_check"]["verdict"] == "valid"
    assert described(aws, "legacy-db-1")["class"] == "db.r5.xlarge"


@first_case_in_make_test
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"instance": "no-such-db", "instance_class": "db.t3.large"}, "DB instance 'no-such-db' not found"),
        ({"instance_class": "t3.large"}, "instance_class: 't3.large' is not a DB instance class"),
        ({}, "instance_class is required with state=scaled"),
        ({"instance": "bad_id", "instance_class": "db.t3.large"}, "instance: 'bad_id' is not a valid DB identifier"),
    ],
)
def test_bad_input_fails_naming_the_value_and_changes_nothing(aws, run_playbook, options, message):
    before = described(aws, "reports-db")
    aws.proxy.clear_log()
    run, result = scale(run_playbook, **options)
    assert run.returncode != 0
    assert message in result["msg"], result["msg"]
    assert result["changed"] is False
    assert mutating_calls(aws) == []
    assert described(aws, "reports-db") == before
