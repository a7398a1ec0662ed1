"""k8s_rolling_restart and k8s_workload_scale against the Kubernetes API test server; state read back from the API."""

from __future__ import annotations

import urllib.error

import pytest

from tests.integration.k8s_api import APPS, JSON_OUTPUT, call, deployment, get, image, patch, replicasets, result_of

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/k8s/restart_scale.yml"


def step(run_playbook, which, check=False, diff=False, **options):
    extra = {"k8s_step": which, **{f"k8s_{key}": value for key, value in options.items()}}
    run = run_playbook(PLAYBOOK, extra_vars=extra, check=check, diff=diff, env=JSON_OUTPUT)
    return run, result_of(run, which.capitalize())


def test_restart_makes_a_new_replicaset_with_every_pod_replaced_and_is_once_per_incident(kube, run_playbook):
    uid = deployment(kube, "shop", "api")["metadata"]["uid"]
    old_pods = {
        p["metadata"]["name"] for p in get(kube, "/api/v1/namespaces/shop/pods?labelSelector=app%3Dapi")["items"]
    }
    run, result = step(run_playbook, "restart", incident_id="INC-7")
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["rollout"]["state"] == "done"
    api = deployment(kube, "shop", "api")
    stamp = api["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    assert stamp == result["restarted_at"]
    assert api["metadata"]["annotations"]["firebreak.io/restarted-for"] == "INC-7"
    by_revision = replicasets(kube, "shop", uid)
    assert max(by_revision) == 4 and by_revision[4]["spec"]["replicas"] == 2 and by_revision[3]["spec"]["replicas"] == 0
    assert image(api) == "registry.local/api:2.2.0"
    pods = get(kube, "/api/v1/namespaces/shop/pods?labelSelector=app%3Dapi")["items"]
    assert len(pods) == 2 and not old_pods & {p["metadata"]["name"] for p in pods}

    again, second = step(run_playbook, "restart", incident_id="INC-7")
    assert again.returncode == 0, again.output
    assert second["changed"] is False and "already restarted for incident INC-7" in second["msg"]
    assert max(replicasets(kube, "shop", uid)) == 4


def test_restart_check_mode_changes_nothing_and_paused_is_refused(kube, run_playbook):
    before = deployment(kube, "shop", "api")["spec"]
    run, result = step(run_playbook, "restart", check=True, diff=True)
    assert run.returncode == 0 and result["changed"] is True
    assert result["diff"]["before"] == {"restarted_at": None}
    assert deployment(kube, "shop", "api")["spec"] == before
    patch(kube, f"{APPS}/shop/deployments/api", {"spec": {"paused": True}}, "application/merge-patch+json")
    run, result = step(run_playbook, "restart")
    assert run.returncode != 0 and "Deployment shop/api is paused" in result["msg"]
    assert "restartedAt" not in str(deployment(kube, "shop", "api")["spec"]["template"]["metadata"])


def test_restart_bad_input(kube, run_playbook):
    run, result = step(run_playbook, "restart", name="nope")
    assert run.returncode != 0 and "Deployment 'nope' not found in namespace 'shop'" in result["msg"]


def test_scale_replicas_waits_records_the_old_value_and_is_idempotent(kube, run_playbook):
    run, result = step(run_playbook, "scale", replicas=5)
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["previous"] == {"replicas": 2, "hpa": None}
    api = deployment(kube, "shop", "api")
    assert api["spec"]["replicas"] == 5 and api["status"]["availableReplicas"] == 5
    assert result["after"]["ready"] == 5
    again, second = step(run_playbook, "scale", replicas=5)
    assert again.returncode == 0 and second["changed"] is False


def test_scale_check_mode_and_bad_input(kube, run_playbook):
    run, result = step(run_playbook, "scale", check=True, diff=True, replicas=4)
    assert run.returncode == 0 and result["changed"] is True
    assert result["diff"] == {"before": {"replicas": 2}, "after": {"replicas": 4}}
    assert deployment(kube, "shop", "api")["spec"]["replicas"] == 2
    run, result = step(run_playbook, "scale", min_replicas=4)
    assert run.returncode != 0 and "no HorizontalPodAutoscaler targets Deployment shop/api" in result["msg"]
    run, result = step(run_playbook, "scale", namespace="nope", replicas=3)
    assert run.returncode != 0 and "namespace 'nope' does not exist" in result["msg"]
    assert deployment(kube, "shop", "api")["spec"]["replicas"] == 2


def test_scale_through_the_hpa_that_manages_the_workload(kube, run_playbook):
    for version in ("v2", "v1"):
        hpa = {
            "apiVersion": f"autoscaling/{version}",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "api", "namespace": "shop"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
                "minReplicas": 2,
                "maxReplicas": 4,
            },
        }
        try:
            call(kube, "POST", f"/apis/autoscaling/{version}/namespaces/shop/horizontalpodautoscalers", hpa)
            break
        except urllib.error.HTTPError as e:  # autoscaling/v2 not served by this server version
            assert e.code == 404, e
    run, result = step(run_playbook, "scale", replicas=6)
    assert run.returncode == 0, run.output
    assert result["previous"] == {"replicas": 2, "hpa": {"name": "api", "min_replicas": 2, "max_replicas": 4}}
    stored = get(kube, f"/apis/autoscaling/{version}/namespaces/shop/horizontalpodautoscalers/api")
    assert (stored["spec"]["minReplicas"], stored["spec"]["maxReplicas"]) == (6, 6)
    api = deployment(kube, "shop", "api")
    assert api["spec"]["replicas"] == 6 and api["status"]["availableReplicas"] == 6

    run, result = step(run_playbook, "scale", min_replicas=2, max_replicas=4)  # restore the recorded values
    assert run.returncode == 0, run.output
    stored = get(kube, f"/apis/autoscaling/{version}/namespaces/shop/horizontalpodautoscalers/api")
    assert (stored["spec"]["minReplicas"], stored["spec"]["maxReplicas"]) == (2, 4)
    assert deployment(kube, "shop", "api")["spec"]["replicas"] == 4
