"""The health_verify role: passes on the healthy sandbox, fails naming the check and its value on a broken one,
reports without failing in check mode, and refuses a wrong type before any call."""

from __future__ import annotations

import pytest

from tests.integration.k8s_api import deploy_bad
from tests.integration.test_role_ecs_rollback import recap

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/health/role.yml"


def alarms(aws):
    return aws.manifest["aws"]["cloudwatch"]["alarms"]


def test_healthy_sandbox_passes(aws, run_playbook):
    run = run_playbook(PLAYBOOK, extra_vars={"health_alarms": alarms(aws)})
    assert run.returncode == 0, run.output[-3000:]
    assert recap(run)["failed"] == 0 and recap(run)["changed"] == 0
    assert "Recovered: 2 check(s) passed" in run.stdout


def test_broken_alarm_fails_naming_the_check_and_its_value(aws, run_playbook):
    aws.client("cloudwatch").set_alarm_state(AlarmName="firebreak-alb-5xx", StateValue="ALARM", StateReason="test")
    run = run_playbook(PLAYBOOK, extra_vars={"health_alarms": alarms(aws)})
    assert run.returncode != 0
    assert recap(run)["failed"] == 1
    assert "Not recovered: alarm firebreak-alb-5xx" in run.stdout
    assert "alarm 'firebreak-alb-5xx' is ALARM, not OK" in run.stdout
    assert '"firebreak-alb-5xx": "ALARM"' in run.stdout


def test_check_mode_reports_without_failing(aws, run_playbook):
    aws.client("cloudwatch").set_alarm_state(AlarmName="firebreak-alb-5xx", StateValue="ALARM", StateReason="test")
    run = run_playbook(PLAYBOOK, extra_vars={"health_alarms": alarms(aws), "health_wait_timeout": 60}, check=True)
    assert run.returncode == 0, run.output[-3000:]
    assert recap(run)["failed"] == 0


def test_wrong_type_is_refused(aws, run_playbook):
    run = run_playbook(PLAYBOOK, extra_vars={"health_alarms": alarms(aws), "health_wait_timeout": "soon"})
    assert run.returncode != 0
    assert "health_verify_wait_timeout" in run.stdout


def test_kubernetes_rollouts_are_verified_beside_aws(aws, kube, run_playbook):
    checks = [{"namespace": "shop", "name": "api"}]
    run = run_playbook(PLAYBOOK, extra_vars={"health_alarms": alarms(aws), "health_k8s": checks})
    assert run.returncode == 0, run.output[-3000:]
    assert "Recovered: 3 check(s) passed" in run.stdout
    deploy_bad(kube)
    run = run_playbook(PLAYBOOK, extra_vars={"health_alarms": alarms(aws), "health_k8s": checks})
    assert run.returncode != 0
    assert "Not recovered: rollout Deployment shop/api: deployment exceeded its progress deadline" in run.stdout
