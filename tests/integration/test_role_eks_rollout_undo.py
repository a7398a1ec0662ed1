"""The eks_rollout_undo role: converge after a bad deploy, idempotence, check mode, bad input (molecule-style)."""

from __future__ import annotations

import re

import pytest

from tests.integration.k8s_api import deploy_bad, deployment, image

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/k8s/role_undo.yml"
RECAP = re.compile(
    r"^localhost\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)",
    re.M,
)


def recap(run) -> dict:
    match = RECAP.search(run.stdout)
    assert match, f"no PLAY RECAP for localhost in the output:\n{run.output[-3000:]}"
    return {key: int(value) for key, value in match.groupdict().items()}


def state(box) -> dict:
    api = deployment(box, "shop", "api")
    return {"image": image(api), "annotations": api["metadata"].get("annotations"), "spec": api["spec"]}


def test_converge_after_a_bad_deploy_then_idempotence(kube, run_playbook):
    deploy_bad(kube)
    first = run_playbook(PLAYBOOK)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    assert image(deployment(kube, "shop", "api")) == "registry.local/api:2.2.0"
    assert "runs api=registry.local/api:2.2.0" in first.stdout

    second = run_playbook(PLAYBOOK)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0 and recap(second)["failed"] == 0, second.stdout
    api = deployment(kube, "shop", "api")
    assert image(api) == "registry.local/api:2.2.0", "the idempotence run must not roll back again"
    assert api["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "5"


def test_check_mode_changes_nothing(kube, run_playbook):
    deploy_bad(kube)
    before = state(kube)
    run = run_playbook(PLAYBOOK, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert "registry.local/api:2.2.0" in run.stdout, "check mode should show the template it would restore"
    assert state(kube) == before


def test_bad_input_is_refused_naming_the_value(kube, run_playbook):
    before = state(kube)
    run = run_playbook(PLAYBOOK, extra_vars={"eks_rollout_undo_kind": "Job"})
    assert run.returncode != 0
    assert "eks_rollout_undo_kind" in run.stdout and "Job" in run.stdout
    run = run_playbook(PLAYBOOK, extra_vars={"k8s_namespace": "nope"})
    assert run.returncode != 0
    assert "namespace 'nope' does not exist" in run.stdout
    assert state(kube) == before
