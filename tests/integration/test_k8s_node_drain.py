"""k8s_node_drain against the Kubernetes API test server: the node cordoned and recorded, its pods evicted through
the Eviction API (PodDisruptionBudgets respected), DaemonSet and mirror pods left, emptyDir and bare pods refused,
and a release that uncordons only a cordon the incident holds alone."""

from __future__ import annotations

import pytest

from tests.integration.k8s_api import JSON_OUTPUT, call, get, patch, result_of, wait_for

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/k8s/drain.yml"
NODE = "sandbox-node-1"
PDBS = "/apis/policy/v1/namespaces/shop/poddisruptionbudgets"


def drain(run_playbook, check=False, diff=False, **options):
    extra = {f"k8s_{key}": value for key, value in options.items()}
    extra.setdefault("k8s_incident_id", "INC-7")
    run = run_playbook(PLAYBOOK, extra_vars=extra, check=check, diff=diff, env=JSON_OUTPUT)
    return run, result_of(run, "Drain")


def node(box, name=NODE) -> dict:
    return get(box, f"/api/v1/nodes/{name}")


def cordon(box, name=NODE) -> tuple[bool, dict]:
    found = node(box, name)
    annotations = {k: v for k, v in (found["metadata"].get("annotations") or {}).items() if k.startswith("firebreak")}
    return bool(found["spec"].get("unschedulable")), annotations


def pods_on(box, name=NODE) -> dict[str, str]:
    """``namespace/name`` -> owner kind of the pods on the node."""
    items = get(box, f"/api/v1/pods?fieldSelector=spec.nodeName%3D{name}")["items"]
    return {
        f"{p['metadata']['namespace']}/{p['metadata']['name']}": next(
            (r["kind"] for r in p["metadata"].get("ownerReferences") or []), "none"
        )
        for p in items
    }


def budget(box, name, **spec):
    call(
        box,
        "POST",
        PDBS,
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": "front"}}, **spec},
        },
    )
    wait_for(
        lambda: (get(box, f"{PDBS}/{name}").get("status") or {}).get("observedGeneration") == 1,
        what=f"the disruption controller to observe {name}",
    )


def bare_pod(box, name, annotations=None, volumes=None):
    spec = {"nodeName": NODE, "containers": [{"name": "c", "image": "registry.local/tool:1.0"}]}
    if volumes:
        spec["volumes"] = volumes
    metadata = {"name": name, "annotations": annotations or {}}
    call(
        box,
        "POST",
        "/api/v1/namespaces/shop/pods",
        {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec},
    )


def test_drain_evicts_all_but_daemonset_pods_reruns_unchanged_and_release_uncordons(kube, run_playbook):
    before = pods_on(kube)
    workload_pods = sorted(k for k, kind in before.items() if kind != "DaemonSet")
    daemon_pods = sorted(k for k, kind in before.items() if kind == "DaemonSet")
    assert workload_pods and daemon_pods

    run, planned = drain(run_playbook, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert planned["predicted"] is True and planned["evicted"] == workload_pods
    assert cordon(kube) == (False, {}) and pods_on(kube) == before, "check mode changed the cluster"

    run, result = drain(run_playbook)
    assert run.returncode == 0, run.output
    assert cordon(kube) == (
        True,
        {"firebreak.io/cordoned-by": "INC-7", "firebreak.io/cordon-held-by": "INC-7"},
    )
    assert sorted(pods_on(kube)) == daemon_pods, "only the DaemonSet pod is left on the node"
    assert result["evicted"] == workload_pods and result["remaining"] == []
    assert set(result["left_on_node"]) == set(daemon_pods)
    assert result["after"]["unschedulable"] is True and result["after"]["held_by"] == ["INC-7"]
    [entry] = result["containment"]
    assert entry["resource"] == f"node/{NODE}" and entry["changed"]["cordoned"] is True
    assert entry["changed"]["evicted"] == workload_pods
    # the controllers replaced the pods on the other node (the cordoned one takes none)
    wait_for(
        lambda: get(kube, "/apis/apps/v1/namespaces/shop/deployments/front")["status"].get("readyReplicas") == 3,
        what="front to be ready again",
    )
    assert all(k not in pods_on(kube) for k in workload_pods)

    run, again = drain(run_playbook)
    assert run.returncode == 0, run.output
    assert again["changed"] is False and again["containment"] == [] and again["evicted"] == []

    run, released = drain(run_playbook, state="released", containments=result["containment"])
    assert run.returncode == 0, run.output
    assert released["outcome"] == "uncordoned" and cordon(kube) == (False, {})
    assert released["release"][0]["releases"] == [entry["id"]]

    run, twice = drain(run_playbook, state="released", containments=result["containment"])
    assert run.returncode == 0, run.output
    assert twice["changed"] is False and cordon(kube) == (False, {})


def test_a_budget_that_allows_no_disruption_fails_naming_the_pod_and_the_budget(kube, run_playbook):
    budget(kube, "front-pdb", minAvailable=3)
    fronts = sorted(k for k in pods_on(kube) if k.startswith("shop/front-"))
    run, result = drain(run_playbook, wait_timeout=2)
    assert run.returncode != 0
    assert result["k8s_status"] == 429 and result["k8s_verb"] == "POST"
    for pod in fronts:
        assert pod in result["msg"] and result["blocked"][pod] == "shop/front-pdb"
    assert "needs 3 healthy pods and has 3 currently" in result["msg"]
    assert all(pod in pods_on(kube) for pod in fronts), "the budget held: no front pod was evicted"
    assert cordon(kube)[0] is True, "the node stays cordoned"
    [entry] = result["containment"]
    assert entry["changed"]["cordoned"] is True, "the failed drain still records its cordon for the release"
    assert "shop/front" not in " ".join(entry["changed"]["evicted"])


def test_a_budget_that_allows_one_at_a_time_is_waited_for(kube, run_playbook):
    budget(kube, "front-pdb", maxUnavailable=1)
    fronts = sorted(k for k in pods_on(kube) if k.startswith("shop/front-"))
    assert len(fronts) == 2
    run, result = drain(run_playbook, wait_timeout=30)
    assert run.returncode == 0, run.output
    assert all(pod in result["evicted"] for pod in fronts)
    assert not any(k.startswith("shop/front-") for k in pods_on(kube))


def test_emptydir_and_bare_pods_are_refused_before_anything_changes(kube, run_playbook):
    bare_pod(kube, "scratch", volumes=[{"name": "cache", "emptyDir": {}}])
    before = pods_on(kube)
    run, result = drain(run_playbook)
    assert run.returncode != 0
    reasons = result["refused"]["shop/scratch"]
    assert "emptyDir data in cache" in reasons and "no controller will recreate it" in reasons
    assert "cannot drain node sandbox-node-1: shop/scratch" in result["msg"] and "nothing changed" in result["msg"]
    assert cordon(kube) == (False, {}) and pods_on(kube) == before

    run, result = drain(run_playbook, delete_emptydir_data=True, force=True)
    assert run.returncode == 0, run.output
    assert "shop/scratch" in result["evicted"] and "shop/scratch" not in pods_on(kube)


def test_mirror_pods_are_left_on_the_node(kube, run_playbook):
    bare_pod(kube, "static-proxy", annotations={"kubernetes.io/config.mirror": "abc123"})
    run, result = drain(run_playbook)
    assert run.returncode == 0, run.output
    assert "mirror pod" in result["left_on_node"]["shop/static-proxy"]
    assert "shop/static-proxy" in pods_on(kube)


def test_a_cordon_made_by_hand_is_never_undone(kube, run_playbook):
    patch(kube, f"/api/v1/nodes/{NODE}", {"spec": {"unschedulable": True}})
    run, result = drain(run_playbook)
    assert run.returncode == 0, run.output
    assert cordon(kube) == (True, {}), "the hand-made cordon is not claimed as the incident's"
    assert result["containment"] == []
    entry = {"id": "x1", "step": "k8s_node_drain", "resource": f"node/{NODE}", "incident_id": "INC-7"}
    run, released = drain(run_playbook, state="released", containments=[entry])
    assert run.returncode == 0, run.output
    assert released["outcome"] == "cordoned_by_others" and cordon(kube) == (True, {})


def test_the_last_incident_holding_the_cordon_uncordons(kube, run_playbook):
    run, first = drain(run_playbook, incident_id="INC-A")
    assert run.returncode == 0, run.output
    run, second = drain(run_playbook, incident_id="INC-B")
    assert run.returncode == 0, run.output
    assert second["changed"] is True and second["containment"][0]["changed"]["cordoned"] is False
    assert cordon(kube)[1]["firebreak.io/cordon-held-by"] == "INC-A,INC-B"

    run, released = drain(run_playbook, incident_id="INC-A", state="released", containments=first["containment"])
    assert run.returncode == 0, run.output
    assert released["outcome"] == "kept" and "INC-B" in released["msg"]
    assert cordon(kube) == (True, {"firebreak.io/cordoned-by": "INC-A", "firebreak.io/cordon-held-by": "INC-B"})

    run, released = drain(run_playbook, incident_id="INC-B", state="released", containments=second["containment"])
    assert run.returncode == 0, run.output
    assert released["outcome"] == "uncordoned" and cordon(kube) == (False, {})


def test_a_missing_node_is_named_and_nothing_changes(kube, run_playbook):
    run, result = drain(run_playbook, node="no-such-node")
    assert run.returncode != 0
    assert "node 'no-such-node' not found" in result["msg"]
    run, result = drain(run_playbook, node="Bad_Name")
    assert run.returncode != 0 and "node: 'Bad_Name' is not a node name" in result["msg"]
