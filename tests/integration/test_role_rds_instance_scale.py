"""The rds_instance_scale role: check mode, converge, idempotence, restore, bad input."""

from __future__ import annotations

import pytest

from tests.integration.rds_helpers import rds_state, recap

pytestmark = pytest.mark.integration

ROLE = "tests/integration/playbooks/rds/rds_instance_scale_role.yml"


def instance_class(aws, ident):
    return aws.client("rds").describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]["DBInstanceClass"]


def test_check_mode_changes_nothing(aws, run_playbook):
    before = rds_state(aws), instance_class(aws, "reports-db")
    run = run_playbook(ROLE, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert recap(run)["failed"] == 0 and recap(run)["changed"] == 1, run.stdout
    assert (rds_state(aws), instance_class(aws, "reports-db")) == before


def test_converge_idempotence_and_restore(aws, run_playbook):
    first = run_playbook(ROLE)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    assert instance_class(aws, "reports-db") == "db.t3.large"
    after = rds_state(aws)
    assert ("firebreak:scaled-from-class", "db.t3.medium") in after["instances"]["reports-db"]["tags"]

    second = run_playbook(ROLE)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0 and recap(second)["failed"] == 0, second.stdout
    assert rds_state(aws) == after and instance_class(aws, "reports-db") == "db.t3.large"

    back = run_playbook(ROLE, extra_vars={"state": "restored"})
    assert back.returncode == 0, back.output
    assert recap(back)["changed"] == 1, back.stdout
    assert instance_class(aws, "reports-db") == "db.t3.medium"
    again = run_playbook(ROLE, extra_vars={"state": "restored"})
    assert again.returncode == 0 and recap(again)["changed"] == 0, again.stdout


def test_the_aurora_writer_converges(aws, run_playbook):
    run = run_playbook(ROLE, extra_vars={"instance": "orders-db-1", "instance_class": "db.r6g.2xlarge"})
    assert run.returncode == 0, run.output
    assert "(writer) is db.r6g.2xlarge" in run.stdout
    assert instance_class(aws, "orders-db-1") == "db.r6g.2xlarge"
    assert instance_class(aws, "orders-db-2") == "db.r6g.large"


def test_a_missing_class_is_refused_before_any_call(aws, run_playbook):
    before = rds_state(aws)
    run = run_playbook(ROLE, extra_vars={"instance_class": ""})
    assert run.returncode != 0
    assert "rds_instance_scale_class is required with rds_instance_scale_state=scaled" in run.stdout
    assert rds_state(aws) == before and instance_class(aws, "reports-db") == "db.t3.medium"


def test_a_change_acknowledged_but_never_applied_fails_naming_the_class_read_back(aws, run_playbook):
    # The fault proxy answers ModifyDBInstance as if it took and never passes it on: the class stays.
    answer = {"DBInstance": {"DBInstanceIdentifier": "reports-db", "DBInstanceClass": "db.t3.large"}}
    aws.proxy.add_rule({"service": "rds", "action": "ModifyDBInstance", "fault": "canned", "body": answer})
    run = run_playbook(ROLE, extra_vars={"wait_timeout": 2})
    assert run.returncode != 0, run.output
    assert "to be available as db.t3.large" in run.stdout and "class db.t3.medium" in run.stdout, run.stdout
    assert instance_class(aws, "reports-db") == "db.t3.medium"
