"""k8s_config_rollback against the Kubernetes API test server: ConfigMap/Secret data and the restarted workloads."""

from __future__ import annotations

import base64
import json
import sys

import pytest

from sandbox import REPO_ROOT
from tests.integration.k8s_api import (
    APPS,
    CORE,
    JSON_OUTPUT,
    call,
    deployment,
    get,
    patch,
    replicasets,
    result_of,
    wait_for,
)

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.config import (
    snapshot_document,
    write_snapshot,
)

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/k8s/config.yml"
GOOD = {"checkout": "v1", "timeout": "30"}


def rollback(run_playbook, check=False, diff=False, **options):
    extra = {f"k8s_{key}": value for key, value in options.items()}
    run = run_playbook(PLAYBOOK, extra_vars=extra, check=check, diff=diff, env=JSON_OUTPUT)
    return run, result_of(run, "Roll back config")


def applied_configmap(box):
    """ConfigMap flags as `kubectl apply` leaves it, used by api through envFrom; then a bad `kubectl edit`."""
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags", "namespace": "shop"}, "data": GOOD}
    cm = dict(
        body,
        metadata=dict(
            body["metadata"], annotations={"kubectl.kubernetes.io/last-applied-configuration": json.dumps(body)}
        ),
    )
    call(box, "POST", f"{CORE}/shop/configmaps", cm)
    patch(
        box,
        f"{APPS}/shop/deployments/api",
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "api", "envFrom": [{"configMapRef": {"name": "flags"}}]}]}
                }
            }
        },
    )
    wait_for(
        lambda: (
            (d := deployment(box, "shop", "api"))["status"].get("updatedReplicas") == 2
            and d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"
            and "unavailableReplicas" not in d["status"]
            and d["status"].get("replicas") == 2
        ),
        what="api on revision 4",
    )
    patch(
        box,
        f"{CORE}/shop/configmaps/flags",
        {"data": {"checkout": "v2-broken", "extra": "1"}},
        "application/merge-patch+json",
    )


def test_restore_from_last_applied_restarts_the_users_and_rerun_is_a_no_op(kube, run_playbook):
    applied_configmap(kube)
    uid = deployment(kube, "shop", "api")["metadata"]["uid"]
    run, result = rollback(run_playbook)
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["restored_from"] == "last-applied-configuration"
    assert get(kube, f"{CORE}/shop/configmaps/flags")["data"] == GOOD
    assert result["restarted"] == [{"kind": "Deployment", "name": "api", "state": "done"}]
    assert max(replicasets(kube, "shop", uid)) == 5  # the restart made a new ReplicaSet
    assert deployment(kube, "shop", "front")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert "v2-broken" not in run.stdout and "v1" not in json.dumps(result["after"])

    again, second = rollback(run_playbook)
    assert again.returncode == 0 and second["changed"] is False
    assert max(replicasets(kube, "shop", uid)) == 5


def test_check_mode_changes_nothing(kube, run_playbook):
    applied_configmap(kube)
    before = get(kube, f"{CORE}/shop/configmaps/flags")["data"]
    run, result = rollback(run_playbook, check=True, diff=True)
    assert run.returncode == 0 and result["changed"] is True
    assert result["restarted"][0]["name"] == "api"
    assert get(kube, f"{CORE}/shop/configmaps/flags")["data"] == before


def test_secret_restored_from_a_snapshot_without_printing_values(kube, run_playbook, tmp_path):
    evidence = tmp_path / "evidence"
    secret = get(kube, f"{CORE}/shop/secrets/api-db")
    path = write_snapshot(
        str(evidence), snapshot_document(dict(secret, kind="Secret"), "2026-11-24T13:00:00Z", "INC-1")
    )
    assert (
        oct((evidence / "k8s" / "shop").stat().st_mode)[-3:] == "700"
        and oct(__import__("os").stat(path).st_mode)[-3:] == "600"
    )
    patch(
        kube,
        f"{CORE}/shop/secrets/api-db",
        {"data": {"password": base64.b64encode(b"leaked-rotate-me").decode()}},
        "application/merge-patch+json",
    )
    run, result = rollback(run_playbook, kind="Secret", name="api-db", evidence_dir=str(evidence))
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    restored = get(kube, f"{CORE}/shop/secrets/api-db")["data"]
    assert base64.b64decode(restored["password"]).decode() == "sandbox-password"
    assert result["restored_from"] == f"snapshot {path}"
    for secret_value in ("sandbox-password", "leaked-rotate-me", restored["password"]):
        assert secret_value not in run.stdout and secret_value not in run.timeline.read_text()


def test_no_earlier_content_names_the_configmap_and_changes_nothing(kube, run_playbook, tmp_path):
    before = get(kube, f"{CORE}/shop/configmaps/shop-config")
    run, result = rollback(run_playbook, name="shop-config", evidence_dir=str(tmp_path))
    assert run.returncode != 0
    assert "ConfigMap shop/shop-config has no earlier content to restore" in result["msg"]
    assert get(kube, f"{CORE}/shop/configmaps/shop-config") == before


def test_role_converge_idempotence_check(kube, run_playbook):
    from tests.integration.test_role_eks_rollout_undo import recap

    applied_configmap(kube)
    role = "tests/integration/playbooks/k8s/role_config.yml"
    check = run_playbook(role, check=True)
    assert check.returncode == 0, check.output
    assert get(kube, f"{CORE}/shop/configmaps/flags")["data"]["checkout"] == "v2-broken"
    first = run_playbook(role)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1
    assert get(kube, f"{CORE}/shop/configmaps/flags")["data"] == GOOD
    second = run_playbook(role)
    assert second.returncode == 0 and recap(second)["changed"] == 0, second.stdout
