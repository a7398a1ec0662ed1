"""PodDisruptionBudgets and the eviction subresource of the Kubernetes API test server, checked against what the
Kubernetes documentation says ("Specifying a Disruption Budget for your Application", "API-initiated Eviction",
the PodDisruptionBudget and Eviction API references)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from sandbox.k8s_server import KubeServer

DELAY = 0.3
PDBS = "/apis/policy/v1/namespaces/shop/poddisruptionbudgets"


@pytest.fixture(scope="module")
def server():
    srv = KubeServer(rollout_delay=DELAY)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def kube(server):
    server.reset()
    return server


def call(server, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def budget(server, name="front-pdb", **spec):
    body = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": "front"}}, **spec},
    }
    code, created = call(server, "POST", PDBS, body)
    assert code == 201, created
    # the disruption controller observes it (until then an eviction answers "still being processed")
    return server.wait_for(lambda: _observed(server, name))


def _observed(server, name):
    _, pdb = call(server, "GET", f"{PDBS}/{name}")
    status = pdb.get("status") or {}
    return pdb if status.get("observedGeneration") == pdb["metadata"]["generation"] else None


def pods(server, app="front"):
    _, listed = call(server, "GET", f"/api/v1/namespaces/shop/pods?labelSelector=app%3D{app}")
    return sorted(p["metadata"]["name"] for p in listed["items"])


def evict(server, pod, dry_run=False, name=None):
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name or pod, "namespace": "shop"}}
    query = "?dryRun=All" if dry_run else ""
    return call(server, "POST", f"/api/v1/namespaces/shop/pods/{pod}/eviction{query}", body)


def test_discovery_serves_poddisruptionbudgets_and_the_eviction_subresource(kube):
    _, policy = call(kube, "GET", "/apis/policy/v1")
    names = {r["name"]: r for r in policy["resources"]}
    assert names["poddisruptionbudgets"]["kind"] == "PodDisruptionBudget" and "poddisruptionbudgets/status" in names
    assert names["poddisruptionbudgets"]["shortNames"] == ["pdb"]
    _, core = call(kube, "GET", "/api/v1")
    eviction = next(r for r in core["resources"] if r["name"] == "pods/eviction")
    assert (eviction["group"], eviction["version"], eviction["kind"], eviction["verbs"]) == (
        "policy",
        "v1",
        "Eviction",
        ["create"],
    )


def test_min_available_counts_the_selected_pods_and_allows_the_rest(kube):
    pdb = budget(kube, minAvailable=2)
    status = pdb["status"]
    assert (status["expectedPods"], status["desiredHealthy"], status["currentHealthy"]) == (3, 2, 3)
    assert status["disruptionsAllowed"] == 1
    [cond] = status["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("DisruptionAllowed", "True", "SufficientPods")


def test_max_unavailable_takes_the_expected_count_from_the_deployment_scale(kube):
    pdb = budget(kube, maxUnavailable="34%")  # 34% of 3 rounds up to 2
    assert (pdb["status"]["expectedPods"], pdb["status"]["desiredHealthy"]) == (3, 1)
    assert pdb["status"]["disruptionsAllowed"] == 2


def test_an_eviction_takes_a_disruption_and_the_next_waits_for_the_replacement(kube):
    budget(kube, maxUnavailable=1)
    first, second = pods(kube)[:2]
    code, answer = evict(kube, first)
    assert code == 201 and answer["status"] == "Success"
    assert first not in pods(kube)
    code, refused = evict(kube, second)
    assert code == 429 and refused["reason"] == "TooManyRequests"
    assert refused["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    [cause] = refused["details"]["causes"]
    assert cause["reason"] == "DisruptionBudget"
    assert cause["message"] == "The disruption budget front-pdb needs 2 healthy pods and has 2 currently"
    assert second in pods(kube), "a refused eviction deletes nothing"
    # the ReplicaSet's replacement becomes Ready after the rollout delay: then the budget allows one again
    kube.wait_for(lambda: _observed(kube, "front-pdb")["status"]["disruptionsAllowed"] == 1, timeout=10)
    assert evict(kube, second)[0] == 201


def test_a_budget_that_allows_no_disruption_refuses_every_eviction(kube):
    budget(kube, minAvailable=3)
    pod = pods(kube)[0]
    code, refused = evict(kube, pod)
    assert code == 429
    assert refused["details"]["causes"][0]["message"] == (
        "The disruption budget front-pdb needs 3 healthy pods and has 3 currently"
    )
    assert pod in pods(kube)


def test_a_dry_run_eviction_changes_nothing(kube):
    budget(kube, minAvailable=2)
    pod = pods(kube)[0]
    assert evict(kube, pod, dry_run=True)[0] == 201
    assert pod in pods(kube) and _observed(kube, "front-pdb")["status"]["disruptionsAllowed"] == 1


def test_a_pod_without_a_budget_is_evicted_and_two_budgets_are_an_error(kube):
    pod = pods(kube, "api")[0]
    assert evict(kube, pod)[0] == 201 and pod not in pods(kube, "api")
    budget(kube, "one", minAvailable=1)
    budget(kube, "two", maxUnavailable=1)
    code, error = evict(kube, pods(kube)[0])
    assert code == 500
    assert error["message"] == (
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    )


def test_an_eviction_names_its_pod_and_a_missing_pod_is_not_found(kube):
    pod = pods(kube)[0]
    code, error = evict(kube, pod, name="other")
    assert code == 400 and error["message"] == "name in URL does not match name in Eviction object"
    code, error = evict(kube, "nope")
    assert code == 404 and error["message"] == 'pods "nope" not found'


def test_a_null_selector_selects_no_pod(kube):
    code, created = call(
        kube,
        "POST",
        PDBS,
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "none"},
         "spec": {"minAvailable": 3}},
    )  # fmt: skip
    assert code == 201, created
    pdb = kube.wait_for(lambda: _observed(kube, "none"))
    assert pdb["status"]["expectedPods"] == 0 and pdb["status"]["currentHealthy"] == 0
    assert evict(kube, pods(kube)[0])[0] == 201


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ({"minAvailable": 1, "maxUnavailable": 1}, "spec", "minAvailable and maxUnavailable cannot be both set"),
        ({"minAvailable": "150%"}, "spec.minAvailable", "must not be greater than 100%"),
        ({"maxUnavailable": -1}, "spec.maxUnavailable", "must be greater than or equal to 0"),
        ({"minAvailable": "half"}, "spec.minAvailable", "a valid percent string"),
        ({"minAvailable": 1, "unhealthyPodEvictionPolicy": "Never"}, "spec.unhealthyPodEvictionPolicy", "Unsupported"),
    ],
)
def test_invalid_budgets_are_refused(kube, spec, field, message):
    body = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "bad"}, "spec": spec}
    code, error = call(kube, "POST", PDBS, body)
    assert code == 422 and error["reason"] == "Invalid"
    assert any(c["field"] == field and message in c["message"] for c in error["details"]["causes"]), error


def _node_not_ready(server, name="sandbox-node-1"):
    _, node = call(server, "GET", f"/api/v1/nodes/{name}")
    conditions = [dict(c, status="False") if c["type"] == "Ready" else c for c in node["status"]["conditions"]]
    req = urllib.request.Request(
        server.url + f"/api/v1/nodes/{name}/status",
        data=json.dumps({"status": {"conditions": conditions}}).encode(),
        method="PATCH",
    )
    req.add_header("Content-Type", "application/merge-patch+json")
    urllib.request.urlopen(req, timeout=10).read()


def _front_pods_on(server, node):
    _, listed = call(server, "GET", "/api/v1/namespaces/shop/pods?labelSelector=app%3Dfront")
    return sorted(p["metadata"]["name"] for p in listed["items"] if p["spec"].get("nodeName") == node)


@pytest.mark.parametrize(("policy", "code"), [(None, 429), ("IfHealthyBudget", 429), ("AlwaysAllow", 201)])
def test_unready_pods_of_a_short_budget_go_only_with_always_allow(kube, policy, code):
    """A NotReady node's pods are not Ready: the budget is short of healthy pods, and by default
    (IfHealthyBudget) it refuses their eviction; AlwaysAllow lets unhealthy pods go."""
    spec = {"maxUnavailable": 1, **({"unhealthyPodEvictionPolicy": policy} if policy else {})}
    _node_not_ready(kube)
    on_node = _front_pods_on(kube, "sandbox-node-1")
    assert len(on_node) == 2
    budget(kube, **spec)
    kube.wait_for(lambda: _observed(kube, "front-pdb")["status"]["currentHealthy"] == 1)
    assert evict(kube, on_node[0])[0] == code
