"""The k8s_rolling_restart role and scale_out's Kubernetes tasks: converge, idempotence, check mode."""

from __future__ import annotations

import pytest

from tests.integration.k8s_api import deployment, replicasets
from tests.integration.test_role_eks_rollout_undo import recap

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/k8s/role_restart_scale.yml"


def test_restart_role_converge_idempotence_check(kube, run_playbook):
    uid = deployment(kube, "shop", "api")["metadata"]["uid"]
    check = run_playbook(PLAYBOOK, extra_vars={"k8s_role": "restart"}, check=True)
    assert check.returncode == 0, check.output
    assert max(replicasets(kube, "shop", uid)) == 3
    first = run_playbook(PLAYBOOK, extra_vars={"k8s_role": "restart"})
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1
    assert max(replicasets(kube, "shop", uid)) == 4
    second = run_playbook(PLAYBOOK, extra_vars={"k8s_role": "restart"})
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0, second.stdout
    assert max(replicasets(kube, "shop", uid)) == 4


def test_scale_out_kubernetes_converge_idempotence_check(kube, run_playbook):
    check = run_playbook(PLAYBOOK, extra_vars={"k8s_role": "scale"}, check=True)
    assert check.returncode == 0, check.output
    assert deployment(kube, "shop", "api")["spec"]["replicas"] == 2
    first = run_playbook(PLAYBOOK, extra_vars={"k8s_role": "scale"})
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1
    api = deployment(kube, "shop", "api")
    assert api["spec"]["replicas"] == 4 and api["status"]["readyReplicas"] == 4
    second = run_playbook(PLAYBOOK, extra_vars={"k8s_role": "scale"})
    assert second.returncode == 0 and recap(second)["changed"] == 0, second.stdout
