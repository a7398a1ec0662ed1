"""k8s_health_verify against the Kubernetes API test server: a rolled-out Deployment passes, a stuck rollout
fails naming the workload and why, a missing one fails naming it."""

from __future__ import annotations

import json

import pytest

from tests.integration.k8s_api import deploy_bad

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/health/k8s.yml"
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}


def verify(run_playbook, checks, **extra):
    run = run_playbook(PLAYBOOK, extra_vars={"health_checks": checks, **extra}, env=JSON_OUTPUT, timeout=120)
    data = json.loads(run.stdout[run.stdout.index("{") :])
    return run, data["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_rolled_out_deployment_passes(kube, run_playbook):
    run, result = verify(run_playbook, [{"namespace": "shop", "name": "api"}])
    assert run.returncode == 0, result.get("msg")
    assert result["passed"] is True and result["step_kind"] == "verification"
    (check,) = result["checks"]
    assert check["verdict"] == "pass" and check["values"]["state"] == "done"
    assert check["values"]["available"] == check["values"]["replicas"]


def test_stuck_rollout_fails_naming_the_workload_and_why(kube, run_playbook):
    deploy_bad(kube)
    run, result = verify(run_playbook, [{"namespace": "shop", "name": "api"}, {"namespace": "shop", "name": "gone"}])
    assert run.returncode != 0
    assert result["passed"] is False
    assert "rollout Deployment shop/api: deployment exceeded its progress deadline" in result["msg"]
    assert "rollout Deployment shop/gone: not found" in result["msg"]
    assert [c["values"]["state"] for c in result["checks"]] == ["failed", None]
