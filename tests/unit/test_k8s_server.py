"""The Kubernetes API test server answers like a real apiserver where runbooks look."""

from __future__ import annotations

import base64
import json
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes import dynamic, watch
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError, UnprocessibleEntityError

from sandbox.k8s.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from sandbox.k8s.selectors import SelectorError, parse_label_selector
from sandbox.k8s_server import KubeServer

DELAY = 0.1
APPS = "/apis/apps/v1/namespaces/shop/deployments"
SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSONP = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = KubeServer(rollout_delay=DELAY)
    srv.start()
    srv.tmp = tmp_path_factory.mktemp("k8s")
    yield srv
    srv.stop()


@pytest.fixture
def kube(server):
    """The server, wiped and seeded again."""
    server.reset()
    return server


def call(server, method, path, body=None, content_type="application/json"):
    """One HTTP request; returns (status code, decoded JSON body)."""
    data = None
    if body is not None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def get(server, path):
    code, body = call(server, "GET", path)
    assert code == 200, body
    return body


def deployment(name="web", image="registry.local/web:1.0.0", replicas=2, labels=None, **spec):
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [{"name": name, "image": image, "ports": [{"containerPort": 80}]}]},
            },
            **spec,
        },
    }


def owned_replicasets(server, name, namespace="shop"):
    d = get(server, f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
    items = get(server, f"/apis/apps/v1/namespaces/{namespace}/replicasets")["items"]
    return {
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs
        for rs in items
        if rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
    }


def rolled_out(server, name, namespace="shop"):
    """kubernetes.core's ``deployment_ready`` predicate, on the raw object."""
    d = get(server, f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
    s = d.get("status", {})
    ok = (
        d["spec"]["replicas"] == s.get("replicas", 0)
        and s.get("availableReplicas") == s.get("replicas")
        and s.get("observedGeneration") == d["metadata"]["generation"]
        and not s.get("unavailableReplicas")
    )
    return d if ok else None


def condition(obj, ctype):
    return next((c for c in obj["status"].get("conditions", []) if c["type"] == ctype), None)


# ------------------------------------------------------------------------------------------------ discovery
def test_discovery_documents(server):
    assert get(server, "/version")["gitVersion"].startswith("v1.31")
    assert get(server, "/api")["versions"] == ["v1"]
    groups = {g["name"]: g for g in get(server, "/apis")["groups"]}
    assert {"apps", "autoscaling", "batch", "networking.k8s.io"} <= set(groups)
    assert groups["apps"]["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    apps = {r["name"]: r for r in get(server, "/apis/apps/v1")["resources"]}
    assert apps["deployments/scale"] | {"verbs": None} == {
        "name": "deployments/scale",
        "singularName": "",
        "namespaced": True,
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
        "verbs": None,
    }
    assert apps["deployments/status"]["kind"] == "Deployment"
    assert apps["replicasets/scale"]["kind"] == "Scale"
    assert apps["deployments"]["namespaced"] and "patch" in apps["deployments"]["verbs"]
    core = {r["name"]: r for r in get(server, "/api/v1")["resources"]}
    assert core["namespaces"]["namespaced"] is False and core["pods"]["namespaced"] is True
    assert {"configmaps", "secrets", "services", "serviceaccounts", "events"} <= set(core)
    netpol = {r["name"]: r for r in get(server, "/apis/networking.k8s.io/v1")["resources"]}
    assert netpol["networkpolicies"]["kind"] == "NetworkPolicy"
    code, body = call(server, "GET", "/apis/nosuch.group/v1")
    assert code == 404 and body["kind"] == "Status"


def test_control_endpoints(server):
    assert get(server, "/sandbox/healthz")["status"] == "ok"
    call(server, "DELETE", f"{APPS}/front")
    assert call(server, "GET", f"{APPS}/front")[0] == 404
    code, manifest = call(server, "POST", "/sandbox/reset")
    assert code == 200 and manifest["deployments"]["shop/front"]["revision"] == 3
    assert rolled_out(server, "front")


# ------------------------------------------------------------------------------------------------- the seed
def test_seed_has_revision_history(kube):
    manifest = kube.manifest
    assert manifest["deployments"]["shop/front"]["replicasets"]["1"]["image"] == "registry.local/front:1.0.0"
    front = rolled_out(kube, "front")
    assert front and front["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert front["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/front:1.2.0"
    rs = owned_replicasets(kube, "front")
    assert sorted(rs) == ["1", "2", "3"]
    assert [rs[r]["spec"]["replicas"] for r in ("1", "2", "3")] == [0, 0, 3]
    assert [rs[r]["spec"]["template"]["spec"]["containers"][0]["image"] for r in ("1", "2", "3")] == [
        "registry.local/front:1.0.0",
        "registry.local/front:1.1.0",
        "registry.local/front:1.2.0",
    ]
    for r in rs.values():
        pod_hash = r["spec"]["template"]["metadata"]["labels"]["pod-template-hash"]
        assert r["metadata"]["name"] == f"front-{pod_hash}"
        assert r["spec"]["selector"]["matchLabels"] == {"app": "front", "pod-template-hash": pod_hash}
        assert r["metadata"]["ownerReferences"][0]["controller"] is True
    api = get(kube, f"{APPS}/api")
    assert api["spec"]["template"]["metadata"]["labels"] == {"app": "api", "tier": "backend"}
    pods = get(kube, "/api/v1/namespaces/shop/pods?labelSelector=app%3Dfront")["items"]
    assert len(pods) == 3 and {p["status"]["phase"] for p in pods} == {"Running"}
    assert get(kube, "/apis/apps/v1/namespaces/batch/deployments/worker")["spec"]["replicas"] == 1
    assert {s["metadata"]["name"] for s in get(kube, "/api/v1/namespaces/shop/services")["items"]} == {"front", "api"}


def test_reset_is_fast(server):
    started = time.monotonic()
    server.reset()
    assert time.monotonic() - started < 1.0


# --------------------------------------------------------------------------------------------------- CRUD
def test_crud_and_status_errors(kube):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags"}, "data": {"a": "1"}}
    code, created = call(kube, "POST", "/api/v1/namespaces/shop/configmaps", cm)
    assert code == 201
    assert created["metadata"]["uid"] and int(created["metadata"]["resourceVersion"]) > 0
    assert created["metadata"]["namespace"] == "shop" and "creationTimestamp" in created["metadata"]

    code, dup = call(kube, "POST", "/api/v1/namespaces/shop/configmaps", cm)
    assert code == 409 and dup["reason"] == "AlreadyExists" and dup["kind"] == "Status"
    assert dup["status"] == "Failure" and dup["code"] == 409 and dup["apiVersion"] == "v1"

    code, missing = call(kube, "GET", "/apis/apps/v1/namespaces/shop/deployments/nope")
    assert code == 404 and missing["reason"] == "NotFound"
    assert missing["message"] == 'deployments.apps "nope" not found'
    assert missing["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}

    code, no_ns = call(kube, "POST", "/api/v1/namespaces/ghost/configmaps", cm)
    assert code == 404 and no_ns["details"]["kind"] == "namespaces" and no_ns["details"]["name"] == "ghost"

    update = {**created, "data": {"a": "2"}}
    code, updated = call(kube, "PUT", "/api/v1/namespaces/shop/configmaps/flags", update)
    assert code == 200 and updated["data"] == {"a": "2"}
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    code, stale = call(kube, "PUT", "/api/v1/namespaces/shop/configmaps/flags", {**created, "data": {"a": "3"}})
    assert code == 409 and stale["reason"] == "Conflict"
    assert get(kube, "/api/v1/namespaces/shop/configmaps/flags")["data"] == {"a": "2"}

    code, deleted = call(kube, "DELETE", "/api/v1/namespaces/shop/configmaps/flags")
    assert code == 200 and deleted["status"] == "Success" and deleted["details"]["uid"] == created["metadata"]["uid"]
    assert call(kube, "GET", "/api/v1/namespaces/shop/configmaps/flags")[0] == 404
    assert call(kube, "DELETE", "/api/v1/namespaces/shop/configmaps/flags")[0] == 404

    code, bad = call(kube, "POST", "/api/v1/namespaces/shop/configmaps", "{not json")
    assert code == 400 and bad["reason"] == "BadRequest"
    code, bad_name = call(kube, "POST", "/api/v1/namespaces/shop/configmaps", {**cm, "metadata": {"name": "Bad_Name"}})
    assert code == 422 and bad_name["reason"] == "Invalid"


def test_list_shape_and_cluster_wide_list(kube):
    listed = get(kube, "/apis/apps/v1/deployments")
    assert listed["kind"] == "DeploymentList" and listed["apiVersion"] == "apps/v1"
    assert int(listed["metadata"]["resourceVersion"]) > 0
    assert [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in listed["items"]] == [
        ("batch", "worker"),
        ("shop", "api"),
        ("shop", "front"),
    ]
    assert "kind" not in listed["items"][0]  # as on a real apiserver: kind lives on the list
    assert get(kube, "/api/v1/namespaces/ghost/pods")["items"] == []  # listing a missing namespace is empty
    page = get(kube, "/api/v1/namespaces/shop/pods?limit=2")
    assert len(page["items"]) == 2 and page["metadata"]["remainingItemCount"] == 3
    rest = get(kube, f"/api/v1/namespaces/shop/pods?limit=10&continue={page['metadata']['continue']}")
    assert len(rest["items"]) == 3


@pytest.mark.parametrize(
    "selector,expected",
    [
        ("app=front", {"front"}),
        ("app==api", {"api"}),
        ("app!=front", {"api"}),
        ("app in (front,api)", {"front", "api"}),
        ("tier notin (web)", {"api"}),
        ("app", {"front", "api"}),
        ("!tier", set()),
        ("app,tier=backend", {"api"}),
        ("app=front,tier=backend", set()),
    ],
)
def test_label_selectors(kube, selector, expected):
    path = f"{APPS}?labelSelector={urllib.request.quote(selector)}"
    assert {d["metadata"]["name"] for d in get(kube, path)["items"]} == expected


def test_field_selectors(kube):
    def names(path):
        return {i["metadata"]["name"] for i in get(kube, path)["items"]}

    assert names("/apis/apps/v1/deployments?fieldSelector=metadata.namespace%3Dbatch") == {"worker"}
    assert names(f"{APPS}?fieldSelector=metadata.name%3Dapi") == {"api"}
    assert names(f"{APPS}?fieldSelector=metadata.name!%3Dapi") == {"front"}
    assert len(names("/api/v1/namespaces/shop/pods?fieldSelector=status.phase%3DRunning")) == 5
    assert names("/api/v1/namespaces/shop/pods?fieldSelector=status.phase%3DPending") == set()
    code, body = call(kube, "GET", f"{APPS}?fieldSelector=spec.replicas%3D3")
    assert code == 400 and "field label not supported" in body["message"]
    code, body = call(kube, "GET", f"{APPS}?labelSelector={urllib.request.quote('app in (a')}")
    assert code == 400


def test_selector_parser_units():
    assert parse_label_selector("a in (x, y),!b")({"a": "y"})
    assert not parse_label_selector("a in (x, y),!b")({"a": "y", "b": ""})
    assert parse_label_selector("a!=x")({})
    with pytest.raises(SelectorError):
        parse_label_selector("a=(b")


# ---------------------------------------------------------------------------------------------- patches
def test_strategic_merge_patch_on_deployment(kube):
    before = get(kube, f"{APPS}/api")
    code, patched = call(
        kube,
        "PATCH",
        f"{APPS}/api",
        {
            "metadata": {"labels": {"tier": None, "owner": "sre"}},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "api",
                                "image": "registry.local/api:2.3.0",
                                "env": [{"name": "MODE", "value": "x"}],
                            },
                        ]
                    }
                }
            },
        },
        SMP,
    )
    assert code == 200
    assert patched["metadata"]["labels"] == {"app": "api", "owner": "sre"}
    container = patched["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.local/api:2.3.0"
    assert container["ports"] == before["spec"]["template"]["spec"]["containers"][0]["ports"]  # merged, not replaced
    assert [e["name"] for e in container["env"]] == ["LOG_LEVEL", "MODE"]
    assert patched["metadata"]["generation"] == before["metadata"]["generation"] + 1


def test_strategic_merge_directives():
    live = {
        "metadata": {"labels": {"a": "1", "b": "2"}},
        "spec": {"containers": [{"name": "x", "image": "i", "args": ["1", "2"]}, {"name": "y", "image": "j"}]},
    }
    out = strategic_merge_patch(live, {"metadata": {"labels": {"$patch": "replace", "c": "3"}}})
    assert out["metadata"]["labels"] == {"c": "3"}
    out = strategic_merge_patch(live, {"spec": {"containers": [{"name": "y", "$patch": "delete"}]}})
    assert [c["name"] for c in out["spec"]["containers"]] == ["x"]
    out = strategic_merge_patch(live, {"spec": {"containers": [{"name": "x", "args": ["3"]}]}})
    assert out["spec"]["containers"][0] == {"name": "x", "image": "i", "args": ["3"]}  # plain lists replace
    out = strategic_merge_patch(live, {"spec": {"containers": [{"$patch": "replace"}, {"name": "z", "image": "k"}]}})
    assert out["spec"]["containers"] == [{"name": "z", "image": "k"}]
    out = strategic_merge_patch(live, {"metadata": {"$patch": "delete"}})
    assert "metadata" not in out
    out = strategic_merge_patch({"metadata": {"finalizers": ["a"]}}, {"metadata": {"finalizers": ["b"]}})
    assert out["metadata"]["finalizers"] == ["a", "b"]
    assert live["metadata"]["labels"] == {"a": "1", "b": "2"}  # the input is not modified


def test_merge_patch_rfc7386():
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    assert merge_patch(target, {"a": "z", "c": {"f": None}, "l": [3]}) == {"a": "z", "c": {"d": "e"}, "l": [3]}
    assert merge_patch({"a": "foo"}, "bar") == "bar"
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}


def test_merge_patch_over_http_replaces_lists(kube):
    code, patched = call(
        kube,
        "PATCH",
        f"{APPS}/api",
        {"spec": {"template": {"spec": {"containers": [{"name": "api", "image": "registry.local/api:9.9.9"}]}}}},
        MERGE,
    )
    assert code == 200
    assert "ports" not in patched["spec"]["template"]["spec"]["containers"][0]


def test_json_patch_rfc6902():
    doc = {"metadata": {"annotations": {"example.com/owner": "a", "t~x": "1"}}, "list": [1, 2, 3]}
    out = json_patch(
        doc,
        [
            {"op": "test", "path": "/metadata/annotations/example.com~1owner", "value": "a"},
            {"op": "replace", "path": "/metadata/annotations/t~0x", "value": "2"},
            {"op": "add", "path": "/list/-", "value": 4},
            {"op": "add", "path": "/list/0", "value": 0},
            {"op": "remove", "path": "/list/1"},
            {"op": "copy", "from": "/list", "path": "/copy"},
            {"op": "move", "from": "/copy", "path": "/moved"},
        ],
    )
    assert out == {
        "metadata": {"annotations": {"example.com/owner": "a", "t~x": "2"}},
        "list": [0, 2, 3, 4],
        "moved": [0, 2, 3, 4],
    }
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "test", "path": "/list/0", "value": 9}])
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "replace", "path": "/nope", "value": 1}])
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "remove", "path": "/list/7"}])


def test_json_patch_over_http(kube):
    path = f"{APPS}/front"
    code, patched = call(
        kube,
        "PATCH",
        path,
        [
            {"op": "add", "path": "/metadata/annotations/example.com~1ticket", "value": "INC-1"},
            {"op": "replace", "path": "/spec/replicas", "value": 4},
        ],
        JSONP,
    )
    assert code == 200
    assert patched["metadata"]["annotations"]["example.com/ticket"] == "INC-1" and patched["spec"]["replicas"] == 4
    code, failed = call(kube, "PATCH", path, [{"op": "test", "path": "/spec/replicas", "value": 1}], JSONP)
    assert code == 422 and failed["kind"] == "Status"
    code, failed = call(kube, "PATCH", path, {"op": "add"}, JSONP)
    assert code == 400
    code, failed = call(kube, "PATCH", path, {}, "text/plain")
    assert code == 415


def test_server_side_apply(kube):
    path = "/api/v1/namespaces/shop/configmaps/applied"
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: '1'\n"
    code, body = call(kube, "PATCH", path, manifest, APPLY)
    assert code == 422 and "fieldManager" in body["message"]
    code, created = call(kube, "PATCH", path + "?fieldManager=runbook&force=true", manifest, APPLY)
    assert code == 201 and created["data"] == {"a": "1"}
    entry = created["metadata"]["managedFields"][0]
    assert entry["manager"] == "runbook" and entry["operation"] == "Apply" and entry["fieldsType"] == "FieldsV1"
    assert "f:a" in entry["fieldsV1"]["f:data"]
    code, again = call(kube, "PATCH", path + "?fieldManager=runbook", manifest.replace("'1'", "'2'"), APPLY)
    assert code == 200 and again["data"] == {"a": "2"}
    assert again["metadata"]["uid"] == created["metadata"]["uid"]


def test_dry_run_does_not_store(kube):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}, "data": {}}
    code, body = call(kube, "POST", "/api/v1/namespaces/shop/configmaps?dryRun=All", cm)
    assert code == 201 and body["metadata"]["name"] == "dry"
    assert call(kube, "GET", "/api/v1/namespaces/shop/configmaps/dry")[0] == 404
    before = get(kube, f"{APPS}/front")
    code, body = call(kube, "PATCH", f"{APPS}/front?dryRun=All", {"spec": {"replicas": 7}}, SMP)
    assert code == 200 and body["spec"]["replicas"] == 7
    assert get(kube, f"{APPS}/front")["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    code, body = call(
        kube, "PATCH", f"{APPS}/front?dryRun=All", {"spec": {"selector": {"matchLabels": {"x": "y"}}}}, SMP
    )
    assert code == 422  # a dry run validates
    assert call(kube, "DELETE", f"{APPS}/front?dryRun=All")[0] == 200
    assert call(kube, "GET", f"{APPS}/front")[0] == 200
    assert call(kube, "GET", "/api/v1/namespaces/shop/configmaps?dryRun=Some")[0] == 400


# -------------------------------------------------------------------------------------- generation, status
def put_fresh(kube, path, change, read=None, attempts=50):
    """Read-modify-write with a retry on 409, as real clients do: the controller may write in between."""
    for _ in range(attempts):
        code, body = call(kube, "PUT", path, change(get(kube, read or path)))
        if code != 409:
            return code, body
    raise AssertionError(f"PUT {path} kept conflicting")


def test_generation_and_status_split(kube):
    d = get(kube, f"{APPS}/front")
    generation, rv = d["metadata"]["generation"], d["metadata"]["resourceVersion"]
    code, same = call(kube, "PATCH", f"{APPS}/front", {"spec": {"replicas": 3}}, SMP)
    assert same["metadata"]["resourceVersion"] == rv  # a no-op is not persisted
    _, labelled = call(kube, "PATCH", f"{APPS}/front", {"metadata": {"labels": {"x": "y"}}}, SMP)
    assert labelled["metadata"]["generation"] == generation  # labels are not spec
    _, spec = call(
        kube, "PATCH", f"{APPS}/front", {"spec": {"minReadySeconds": 0, "replicas": 3, "paused": False}}, SMP
    )
    assert spec["metadata"]["generation"] == generation + 1
    _, scaled = call(kube, "PATCH", f"{APPS}/front", {"spec": {"replicas": 4}}, MERGE)
    assert scaled["metadata"]["generation"] == generation + 2
    # the main resource ignores status, the status subresource ignores spec
    code, put = put_fresh(kube, f"{APPS}/front", lambda d: {**d, "status": {"replicas": 99}})
    assert code == 200 and put["status"].get("replicas") != 99
    _, status_put = put_fresh(
        kube,
        f"{APPS}/front/status",
        lambda d: {**d, "spec": {**d["spec"], "replicas": 1}, "status": {**d["status"], "observedGeneration": 1}},
        read=f"{APPS}/front",
    )
    assert status_put["spec"]["replicas"] == 4 and status_put["status"]["observedGeneration"] == 1
    assert status_put["metadata"]["generation"] == generation + 2
    _, pod = call(
        kube,
        "POST",
        "/api/v1/namespaces/shop/pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        },
    )
    assert "generation" not in get(kube, "/api/v1/namespaces/shop/configmaps/shop-config")["metadata"]
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "Always"  # untagged image: :latest


# ------------------------------------------------------------------------------------------------ controller
def test_rollout_creates_revision_and_takes_time(kube):
    code, _ = call(
        kube,
        "PATCH",
        f"{APPS}/front",
        {"spec": {"template": {"spec": {"containers": [{"name": "front", "image": "registry.local/front:1.3.0"}]}}}},
        SMP,
    )
    assert code == 200
    time.sleep(0.05)
    assert rolled_out(kube, "front") is None  # honest: three pods need three steps of rollout_delay
    d = kube.wait_for(lambda: rolled_out(kube, "front"), timeout=10)
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"
    rs = owned_replicasets(kube, "front")
    assert sorted(rs) == ["1", "2", "3", "4"]
    assert rs["4"]["spec"]["replicas"] == 3 and rs["3"]["spec"]["replicas"] == 0
    assert d["status"]["updatedReplicas"] == 3 and "unavailableReplicas" not in d["status"]
    assert condition(d, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert condition(d, "Available")["status"] == "True"
    pods = get(kube, "/api/v1/namespaces/shop/pods?labelSelector=app%3Dfront")["items"]
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"registry.local/front:1.3.0"}
    assert len(pods) == 3
    events = get(kube, "/api/v1/namespaces/shop/events?fieldSelector=involvedObject.name%3Dfront")["items"]
    assert any(e["reason"] == "ScalingReplicaSet" for e in events)
    # the ReplicaSet controller records each pod it creates and deletes (replica_set.go)
    new_rs = rs["4"]["metadata"]["name"]
    rs_events = {(e[0], e[2]) for e in events_for(kube, new_rs)}
    assert {("SuccessfulCreate", f"Created pod: {p['metadata']['name']}") for p in pods} <= rs_events
    old_events = {e[0] for e in events_for(kube, rs["3"]["metadata"]["name"])}
    assert "SuccessfulDelete" in old_events


def test_reused_template_is_renumbered_to_max_plus_one(kube):
    previous = owned_replicasets(kube, "front")["2"]
    template = previous["spec"]["template"]
    del template["metadata"]["labels"]["pod-template-hash"]
    # exactly what kubernetes.core.k8s_rollback sends
    code, _ = call(
        kube,
        "PATCH",
        f"{APPS}/front",
        [
            {"op": "replace", "path": "/spec/template", "value": template},
            {"op": "replace", "path": "/metadata/annotations", "value": {"deployment.kubernetes.io/revision": "2"}},
        ],
        JSONP,
    )
    assert code == 200
    d = kube.wait_for(lambda: rolled_out(kube, "front"), timeout=10)
    rs = owned_replicasets(kube, "front")
    assert sorted(rs) == ["1", "3", "4"]  # no new ReplicaSet: revision 2 became 4
    assert rs["4"]["metadata"]["name"] == previous["metadata"]["name"]
    assert rs["4"]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "2"
    assert rs["4"]["spec"]["replicas"] == 3 and rs["3"]["spec"]["replicas"] == 0
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/front:1.1.0"


def _set_image(server, name, image, namespace="shop"):
    code, body = call(
        server,
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
        {"spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}}},
        SMP,
    )
    assert code == 200, body


def _stuck(server, name, new_replicas, namespace="shop"):
    def check():
        d = get(server, f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
        return d if d["status"].get("updatedReplicas") == new_replicas else None

    d = server.wait_for(check, timeout=10)
    time.sleep(DELAY * 4)  # and it stays stuck
    return get(server, f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"), d


def test_stuck_rollout_default_surge(kube):
    _set_image(kube, "front", "registry.local/front:bad-1.3.0")
    d, _ = _stuck(kube, "front", 1)
    status = d["status"]
    # 3 replicas, 25%: surge ceil(0.75) = 1, unavailable floor(0.75) = 0
    assert status["replicas"] == 4 and status["updatedReplicas"] == 1
    assert status["availableReplicas"] == 3 and status["readyReplicas"] == 3
    assert status["unavailableReplicas"] == 1
    assert condition(d, "Available")["status"] == "True"
    assert condition(d, "Progressing")["reason"] == "ReplicaSetUpdated"
    assert rolled_out(kube, "front") is None
    rs = owned_replicasets(kube, "front")
    assert rs["4"]["spec"]["replicas"] == 1 and rs["4"]["status"]["replicas"] == 1
    assert "readyReplicas" not in rs["4"]["status"] and rs["3"]["spec"]["replicas"] == 3
    pending = get(kube, "/api/v1/namespaces/shop/pods?fieldSelector=status.phase%3DPending")["items"]
    assert len(pending) == 1
    assert pending[0]["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff"


@pytest.mark.parametrize(
    "replicas,strategy,expect_old,expect_new",
    [
        (4, {"maxSurge": 2, "maxUnavailable": 1}, 3, 3),
        (10, {"maxSurge": "25%", "maxUnavailable": "25%"}, 8, 5),  # surge ceil(2.5)=3, unavailable floor(2.5)=2
        (3, {"maxSurge": 0, "maxUnavailable": 1}, 2, 1),
    ],
)
def test_stuck_rollout_surge_arithmetic(kube, replicas, strategy, expect_old, expect_new):
    body = deployment("calc", replicas=replicas, strategy={"type": "RollingUpdate", "rollingUpdate": strategy})
    assert call(kube, "POST", APPS, body)[0] == 201
    kube.wait_for(lambda: rolled_out(kube, "calc"), timeout=10)
    _set_image(kube, "calc", "registry.local/web:broken")
    d, _ = _stuck(kube, "calc", expect_new)
    rs = owned_replicasets(kube, "calc")
    assert (rs["1"]["spec"]["replicas"], rs["2"]["spec"]["replicas"]) == (expect_old, expect_new)
    assert d["status"]["replicas"] == expect_old + expect_new
    assert d["status"]["availableReplicas"] == expect_old
    assert d["status"]["unavailableReplicas"] == expect_new + expect_old - expect_old
    assert condition(d, "Available")["status"] == "True"


def test_progress_deadline_exceeded(kube):
    body = deployment("slow", image="registry.local/web:bad", replicas=1, progressDeadlineSeconds=1)
    assert call(kube, "POST", APPS, body)[0] == 201

    def timed_out():
        d = get(kube, f"{APPS}/slow")
        cond = condition(d, "Progressing") if d.get("status") else None
        return d if cond and cond["reason"] == "ProgressDeadlineExceeded" else None

    d = kube.wait_for(timed_out, timeout=5)
    assert condition(d, "Progressing")["status"] == "False"
    assert condition(d, "Available")["status"] == "False"
    assert d["status"]["unavailableReplicas"] == 1 and "availableReplicas" not in d["status"]


def test_recreate_strategy(kube):
    body = deployment("rec", replicas=2, strategy={"type": "Recreate"})
    assert call(kube, "POST", APPS, body)[0] == 201
    kube.wait_for(lambda: rolled_out(kube, "rec"), timeout=10)
    _set_image(kube, "rec", "registry.local/web:2.0.0")
    seen_overlap = False

    def done():
        nonlocal seen_overlap
        pods = get(kube, "/api/v1/namespaces/shop/pods?labelSelector=app%3Drec")["items"]
        seen_overlap |= len({p["spec"]["containers"][0]["image"] for p in pods}) > 1
        return rolled_out(kube, "rec")

    kube.wait_for(done, timeout=10)
    assert not seen_overlap
    rs = owned_replicasets(kube, "rec")
    assert (rs["1"]["spec"]["replicas"], rs["2"]["spec"]["replicas"]) == (0, 2)


def test_paused_deployment_does_not_roll_out(kube):
    call(kube, "PATCH", f"{APPS}/api", {"spec": {"paused": True}}, SMP)
    _set_image(kube, "api", "registry.local/api:2.3.0")
    time.sleep(DELAY * 3)
    d = get(kube, f"{APPS}/api")
    assert sorted(owned_replicasets(kube, "api")) == ["1", "2", "3"]
    assert condition(d, "Progressing")["reason"] == "DeploymentPaused"
    assert condition(d, "Progressing")["status"] == "Unknown"
    assert d["status"]["observedGeneration"] == d["metadata"]["generation"]
    call(kube, "PATCH", f"{APPS}/api", {"spec": {"paused": None}}, SMP)
    d = kube.wait_for(lambda: rolled_out(kube, "api"), timeout=10)
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"


def test_revision_history_limit(kube):
    call(kube, "PATCH", f"{APPS}/api", {"spec": {"revisionHistoryLimit": 1}}, SMP)
    _set_image(kube, "api", "registry.local/api:2.3.0")
    kube.wait_for(lambda: rolled_out(kube, "api"), timeout=10)
    kube.wait_for(lambda: sorted(owned_replicasets(kube, "api")) == ["3", "4"], timeout=5)


def test_scaling_during_stuck_rollout_is_proportional(kube):
    _set_image(kube, "api", "registry.local/api:bad")
    _stuck(kube, "api", 1)  # old 2 + new 1
    call(kube, "PATCH", f"{APPS}/api/scale", {"spec": {"replicas": 4}}, MERGE)

    def spread():
        rs = owned_replicasets(kube, "api")
        return (rs["3"]["spec"]["replicas"], rs["4"]["spec"]["replicas"]) == (3, 2)

    kube.wait_for(spread, timeout=5)  # allowed 4 + surge 1 = 5, shared 3:2 like the real controller


def test_pod_deleted_is_replaced(kube):
    pods = get(kube, "/api/v1/namespaces/shop/pods?labelSelector=app%3Dapi")["items"]
    code, body = call(kube, "DELETE", f"/api/v1/namespaces/shop/pods/{pods[0]['metadata']['name']}")
    assert code == 200 and body["kind"] == "Pod"

    def replaced():
        names = {
            p["metadata"]["name"] for p in get(kube, "/api/v1/namespaces/shop/pods?labelSelector=app%3Dapi")["items"]
        }
        return len(names) == 2 and pods[0]["metadata"]["name"] not in names

    kube.wait_for(replaced, timeout=5)


# --------------------------------------------------------------------------------------------------- scale
def test_scale_subresource(kube):
    scale = get(kube, f"{APPS}/front/scale")
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 3} and scale["status"] == {"replicas": 3, "selector": "app=front"}
    code, scaled = call(kube, "PATCH", f"{APPS}/front/scale", {"spec": {"replicas": 5}}, MERGE)
    assert code == 200 and scaled["spec"]["replicas"] == 5
    d = kube.wait_for(lambda: rolled_out(kube, "front"), timeout=10)
    assert d["spec"]["replicas"] == 5 and d["status"]["availableReplicas"] == 5
    assert len(get(kube, "/api/v1/namespaces/shop/pods?labelSelector=app%3Dfront")["items"]) == 5
    code, body = call(kube, "PUT", f"{APPS}/front/scale", scale)  # stale resourceVersion
    assert code == 409 and body["reason"] == "Conflict"
    code, body = call(
        kube, "PUT", f"{APPS}/front/scale", {**scale, "metadata": {"name": "front"}, "spec": {"replicas": 1}}
    )
    assert code == 200 and body["spec"]["replicas"] == 1
    rs_scale = get(
        kube,
        f"/apis/apps/v1/namespaces/shop/replicasets/{kube.manifest['deployments']['shop/api']['replicasets']['3']['name']}/scale",
    )
    assert rs_scale["spec"]["replicas"] == 2 and "pod-template-hash=" in rs_scale["status"]["selector"]


# -------------------------------------------------------------------------------------------------- deletion
def test_cascade_delete(kube):
    code, body = call(kube, "DELETE", f"{APPS}/front")
    assert code == 200 and body["status"] == "Success"
    assert owned_replicasets_gone(kube, "front")
    assert get(kube, "/api/v1/namespaces/shop/pods?labelSelector=app%3Dfront")["items"] == []


def owned_replicasets_gone(server, app):
    return get(server, f"/apis/apps/v1/namespaces/shop/replicasets?labelSelector=app%3D{app}")["items"] == []


def test_orphan_delete_keeps_replicasets(kube):
    code, _ = call(
        kube, "DELETE", f"{APPS}/api", {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"}
    )
    assert code == 200
    rs = get(kube, "/apis/apps/v1/namespaces/shop/replicasets?labelSelector=app%3Dapi")["items"]
    assert len(rs) == 3 and all("ownerReferences" not in r["metadata"] for r in rs)


def test_namespace_goes_terminating_then_away(kube):
    code, body = call(kube, "DELETE", "/api/v1/namespaces/shop")
    assert code == 200 and body["kind"] == "Namespace"
    assert body["status"]["phase"] == "Terminating" and body["metadata"]["deletionTimestamp"]
    assert get(kube, "/api/v1/namespaces/shop")["status"]["phase"] == "Terminating"
    code, forbidden = call(
        kube,
        "POST",
        "/api/v1/namespaces/shop/configmaps",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}},
    )
    assert code == 403 and forbidden["reason"] == "Forbidden"
    kube.wait_for(lambda: call(kube, "GET", "/api/v1/namespaces/shop")[0] == 404, timeout=5)
    assert get(kube, "/apis/apps/v1/namespaces/shop/deployments")["items"] == []
    assert get(kube, "/api/v1/namespaces/shop/pods")["items"] == []
    assert len(get(kube, "/apis/apps/v1/namespaces/batch/deployments")["items"]) == 1


# ------------------------------------------------------------------------------------------------ validation
def test_selector_must_match_template(kube):
    bad = deployment("mismatch")
    bad["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    code, body = call(kube, "POST", APPS, bad)
    assert code == 422 and body["reason"] == "Invalid" and body["details"]["kind"] == "Deployment"
    assert body["details"]["causes"][0]["field"] == "spec.template.metadata.labels"
    assert "`selector` does not match template `labels`" in body["message"]
    # k8s_rollback's bug: front patched with api's template (shared label key `app`) is rejected
    api_template = owned_replicasets(kube, "api")["2"]["spec"]["template"]
    del api_template["metadata"]["labels"]["pod-template-hash"]
    code, body = call(
        kube, "PATCH", f"{APPS}/front", [{"op": "replace", "path": "/spec/template", "value": api_template}], JSONP
    )
    assert code == 422
    assert get(kube, f"{APPS}/front")["spec"]["template"]["metadata"]["labels"]["app"] == "front"
    code, body = call(kube, "PATCH", f"{APPS}/front", {"spec": {"selector": {"matchLabels": {"tier": "web"}}}}, MERGE)
    assert code == 422 and "immutable" in body["message"]


# --------------------------------------------------------------------------------------- kubernetes client
@pytest.fixture
def dyn(kube, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the client caches discovery in gettempdir()
    path = kube.write_kubeconfig(tmp_path / "kubeconfig")
    api_client = k8s_config.new_client_from_config(config_file=path)
    return dynamic.DynamicClient(api_client)


def test_dynamic_client(dyn, kube):
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    listed = deployments.get(namespace="shop", label_selector="app")
    assert listed.kind == "DeploymentList" and [i.metadata.name for i in listed.items] == ["api", "front"]
    assert listed.items[0].kind == "Deployment"  # the client fills kind in from the list
    front = deployments.get(name="front", namespace="shop")
    assert front.status.availableReplicas == 3
    with pytest.raises(NotFoundError):
        deployments.get(name="nope", namespace="shop")
    body = deployment("dyn")
    created = deployments.create(body=body, namespace="shop")
    with pytest.raises(ConflictError):
        deployments.create(body=body, namespace="shop")
    bad = deployment("dyn2")
    bad["spec"]["selector"]["matchLabels"] = {"app": "x"}
    with pytest.raises(UnprocessibleEntityError):
        deployments.create(body=bad, namespace="shop")
    patched = deployments.patch(
        name="dyn", namespace="shop", body={"spec": {"replicas": 3}}, content_type="application/merge-patch+json"
    )
    assert patched.spec.replicas == 3 and patched.metadata.uid == created.metadata.uid
    scale = deployments.subresources["scale"]
    assert scale.kind == "Scale"
    assert scale.get(name="front", namespace="shop").status.selector == "app=front"
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    applied = cms.server_side_apply(
        body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"k": "v"}},
        name="ssa",
        namespace="shop",
        field_manager="test",
        force_conflicts=True,
    )
    assert applied.data.k == "v"
    ns = dyn.resources.get(api_version="v1", kind="Namespace")
    assert {n.metadata.name for n in ns.get().items} >= {"shop", "batch", "default"}
    netpol = dyn.resources.get(api_version="networking.k8s.io/v1", kind="NetworkPolicy")
    netpol.create(
        namespace="shop",
        body={
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny-all"},
            "spec": {"podSelector": {}},
        },
    )
    assert netpol.get(name="deny-all", namespace="shop").spec.policyTypes == ["Ingress"]


def test_typed_client_and_watch(kube, tmp_path):
    path = kube.write_kubeconfig(tmp_path / "kubeconfig")
    api = k8s_client.CoreV1Api(k8s_config.new_client_from_config(config_file=path))
    assert len(api.list_namespaced_pod("shop").items) == 5
    rv = api.list_namespaced_config_map("shop").metadata.resource_version

    def change():
        time.sleep(0.2)
        api.create_namespaced_config_map("shop", {"metadata": {"name": "watched"}, "data": {}})

    thread = threading.Thread(target=change)
    thread.start()
    seen = []
    for event in watch.Watch().stream(api.list_namespaced_config_map, "shop", resource_version=rv, timeout_seconds=3):
        seen.append((event["type"], event["object"].metadata.name))
        if event["object"].metadata.name == "watched":
            break
    thread.join()
    assert ("ADDED", "watched") in seen


def test_kubeconfig(kube, tmp_path):
    path = kube.write_kubeconfig(tmp_path / "kc" / "config")
    _contexts, active = k8s_config.list_kube_config_contexts(config_file=path)
    assert active["name"] == "sandbox" and active["context"]["namespace"] == "default"
    with pytest.raises(ValueError):
        KubeServer(host="0.0.0.0")  # noqa: S104 - what is refused


def test_restart_annotation_rolls_out_a_new_replicaset(kube):
    restarted = {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
    code, _ = call(kube, "PATCH", f"{APPS}/api", {"spec": {"template": {"metadata": {"annotations": restarted}}}}, SMP)
    assert code == 200
    d = kube.wait_for(lambda: rolled_out(kube, "api"), timeout=10)
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"
    pods = get(kube, "/api/v1/namespaces/shop/pods?labelSelector=app%3Dapi")["items"]
    assert len(pods) == 2 and all(p["metadata"]["annotations"] == restarted for p in pods)


def test_namespace_service_and_pod_log(kube):
    code, ns = call(
        kube,
        "POST",
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "quarantine"}},
    )
    assert code == 201 and ns["status"]["phase"] == "Active"
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "quarantine"
    assert get(kube, "/api/v1/namespaces/quarantine/serviceaccounts/default")["metadata"]["name"] == "default"
    svc = get(kube, "/api/v1/namespaces/shop/services/front")
    assert svc["spec"]["clusterIP"].startswith("10.96.") and svc["spec"]["ports"][0]["targetPort"] == 8080
    pod = get(kube, "/api/v1/namespaces/shop/pods?labelSelector=app%3Dapi")["items"][0]["metadata"]["name"]
    with urllib.request.urlopen(f"{kube.url}/api/v1/namespaces/shop/pods/{pod}/log") as resp:
        assert "registry.local/api:2.2.0" in resp.read().decode()
    _set_image(kube, "api", "registry.local/api:broken")
    _stuck(kube, "api", 1)
    waiting = get(kube, "/api/v1/namespaces/shop/pods?fieldSelector=status.phase%3DPending")["items"][0]
    code, body = call(kube, "GET", f"/api/v1/namespaces/shop/pods/{waiting['metadata']['name']}/log")
    assert code == 400 and "trying and failing to pull image" in body["message"]


def test_delete_collection_foreground_and_create_rules(kube):
    code, listed = call(kube, "DELETE", "/api/v1/namespaces/shop/configmaps?labelSelector=app%3Dshop")
    assert code == 200 and listed["kind"] == "ConfigMapList" and len(listed["items"]) == 1
    assert get(kube, "/api/v1/namespaces/shop/configmaps")["items"] == []
    code, _ = call(kube, "DELETE", f"{APPS}/api?propagationPolicy=Foreground")
    assert code == 200 and owned_replicasets_gone(kube, "api")
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "resourceVersion": "5"}}
    assert call(kube, "POST", "/api/v1/namespaces/shop/configmaps", cm)[0] == 400
    cm["metadata"] = {"name": "x", "namespace": "batch"}
    assert call(kube, "POST", "/api/v1/namespaces/shop/configmaps", cm)[0] == 400  # namespace mismatch
    assert call(kube, "POST", "/apis/apps/v1/deployments", deployment("anywhere"))[0] == 405
    ns = get(kube, "/api/v1/namespaces/batch")
    code, finalized = call(kube, "PUT", "/api/v1/namespaces/batch/finalize", {**ns, "spec": {"finalizers": []}})
    assert code == 200 and finalized["spec"]["finalizers"] == []


# ------------------------------------------------------------------------ StatefulSets, DaemonSets, history
STS = "/apis/apps/v1/namespaces/shop/statefulsets"
DS = "/apis/apps/v1/namespaces/shop/daemonsets"
REVISIONS = "/apis/apps/v1/namespaces/shop/controllerrevisions"


def _workload(kind, name, image, labels=None, **spec):
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [{"name": name, "image": image}]},
            },
            **spec,
        },
    }


def statefulset(name="db", image="registry.local/db:1.0.0", replicas=3, **spec):
    return _workload("StatefulSet", name, image, replicas=replicas, serviceName=name, **spec)


def daemonset(name="agent", image="registry.local/agent:1.0.0", **spec):
    return _workload("DaemonSet", name, image, **spec)


def pods_of(server, app, namespace="shop"):
    items = get(server, f"/api/v1/namespaces/{namespace}/pods?labelSelector=app%3D{app}")["items"]
    return {p["metadata"]["name"]: p for p in items}


def revisions_of(server, owner_path, namespace="shop"):
    """The owner's ControllerRevisions by revision number, found the way kubectl does (selector + controller uid)."""
    owner = get(server, owner_path)
    selector = ",".join(f"{k}%3D{v}" for k, v in owner["spec"]["selector"]["matchLabels"].items())
    items = get(server, f"/apis/apps/v1/namespaces/{namespace}/controllerrevisions?labelSelector={selector}")["items"]
    return {r["revision"]: r for r in items if r["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]}


def sts_rolled_out(server, name="db"):
    """kubernetes.core's ``statefulset_ready`` on the raw object."""
    s = get(server, f"{STS}/{name}")
    st, replicas = s.get("status") or {}, s["spec"]["replicas"]
    ok = (
        st.get("observedGeneration") == s["metadata"]["generation"]
        and st.get("updateRevision") == st.get("currentRevision")
        and st.get("updatedReplicas", 0) == replicas == st.get("readyReplicas", 0) == st.get("replicas")
    )
    return s if ok else None


def ds_rolled_out(server, name="agent", namespace="shop"):
    """kubernetes.core's ``daemonset_ready`` on the raw object."""
    d = get(server, f"/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}")
    st = d.get("status") or {}
    ok = (
        st.get("desiredNumberScheduled") is not None
        and st.get("updatedNumberScheduled", 0) == st["desiredNumberScheduled"] == st.get("numberReady")
        and st.get("observedGeneration") == d["metadata"]["generation"]
    )
    return d if ok else None


def test_apps_discovery_serves_statefulsets_daemonsets_and_controllerrevisions(server):
    """API reference, apps/v1: StatefulSet (with scale and status), DaemonSet (status), ControllerRevision."""
    apps = {r["name"]: r for r in get(server, "/apis/apps/v1")["resources"]}
    assert apps["statefulsets"]["kind"] == "StatefulSet" and apps["statefulsets"]["shortNames"] == ["sts"]
    assert apps["statefulsets/scale"]["kind"] == "Scale" and apps["statefulsets/scale"]["group"] == "autoscaling"
    assert apps["statefulsets/status"]["kind"] == "StatefulSet"
    assert apps["daemonsets"]["shortNames"] == ["ds"] and apps["daemonsets/status"]["kind"] == "DaemonSet"
    assert "daemonsets/scale" not in apps
    assert apps["controllerrevisions"]["kind"] == "ControllerRevision" and apps["controllerrevisions"]["namespaced"]
    for path in (STS, DS, REVISIONS, "/apis/apps/v1/statefulsets", "/apis/apps/v1/controllerrevisions"):
        assert call(server, "GET", path)[0] == 200


def test_statefulset_ordered_creation_identity_and_status(kube):
    """StatefulSet docs, "Deployment and Scaling Guarantees": pods {0..N-1} are created sequentially and each
    waits for its predecessors to be Running and Ready; "Pod Identity": ``<name>-<ordinal>``, the
    ``statefulset.kubernetes.io/pod-name`` and ``apps.kubernetes.io/pod-index`` labels; the
    ``controller-revision-hash`` label names the ControllerRevision; status as in the API reference."""
    code, created = call(kube, "POST", STS, statefulset())
    assert code == 201 and created["spec"]["podManagementPolicy"] == "OrderedReady"
    assert created["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    time.sleep(DELAY / 2)
    assert set(pods_of(kube, "db")) == {"db-0"}  # db-1 waits for db-0 to be Running and Ready
    s = kube.wait_for(lambda: sts_rolled_out(kube), timeout=10)
    assert s["status"]["replicas"] == s["status"]["readyReplicas"] == s["status"]["availableReplicas"] == 3
    assert s["status"]["currentReplicas"] == s["status"]["updatedReplicas"] == 3
    assert s["status"]["observedGeneration"] == 1
    revisions = revisions_of(kube, f"{STS}/db")
    assert list(revisions) == [1]
    revision = revisions[1]
    assert s["status"]["currentRevision"] == s["status"]["updateRevision"] == revision["metadata"]["name"]
    assert revision["metadata"]["name"] == "db-" + revision["metadata"]["labels"]["controller.kubernetes.io/hash"]
    owner = revision["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "StatefulSet" and owner["controller"] is True
    assert revision["data"]["spec"]["template"]["$patch"] == "replace"
    pods = pods_of(kube, "db")
    assert sorted(pods) == ["db-0", "db-1", "db-2"]
    for ordinal, (name, pod) in enumerate(sorted(pods.items())):
        labels = pod["metadata"]["labels"]
        assert labels["controller-revision-hash"] == revision["metadata"]["name"]
        assert labels["statefulset.kubernetes.io/pod-name"] == name
        assert labels["apps.kubernetes.io/pod-index"] == str(ordinal)
        assert pod["spec"]["hostname"] == name and pod["spec"]["subdomain"] == "db"
        assert pod["spec"]["nodeName"].startswith("sandbox-node-")


def _patch_image(server, path, name, image):
    code, body = call(
        server, "PATCH", path, {"spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}}}, SMP
    )
    assert code == 200, body
    return body


def test_statefulset_rolling_update_stuck_on_bad_image_and_forced_rollback(kube):
    """StatefulSet docs, "Rolling Updates": pods are replaced from the largest ordinal down, one at a time, each
    waiting for the updated pod to be Running and Ready. "Forced rollback": with OrderedReady, a template that never
    becomes Ready stops the rollout; reverting the template is not enough, the broken pods must be deleted. Reverting
    reuses the old ControllerRevision, renumbered (history.FindEqualRevisions + UpdateControllerRevision)."""
    assert call(kube, "POST", STS, statefulset())[0] == 201
    kube.wait_for(lambda: sts_rolled_out(kube), timeout=10)
    good = revisions_of(kube, f"{STS}/db")[1]
    _patch_image(kube, f"{STS}/db", "db", "registry.local/db:bad-2.0.0")

    def stuck():
        s = get(kube, f"{STS}/db")
        return s if s["status"].get("updatedReplicas") == 1 and s["status"]["observedGeneration"] == 2 else None

    kube.wait_for(stuck, timeout=10)
    time.sleep(DELAY * 4)
    s = get(kube, f"{STS}/db")
    status = s["status"]
    assert status["replicas"] == 3 and status["readyReplicas"] == 2 and status["currentReplicas"] == 2
    assert status["currentRevision"] == good["metadata"]["name"] != status["updateRevision"]
    assert sts_rolled_out(kube) is None
    pods = pods_of(kube, "db")
    assert pods["db-2"]["metadata"]["labels"]["controller-revision-hash"] == status["updateRevision"]
    assert pods["db-2"]["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] in (
        "ErrImagePull",
        "ImagePullBackOff",
    )
    assert pods["db-1"]["metadata"]["labels"]["controller-revision-hash"] == good["metadata"]["name"]
    # kubectl rollout undo: apply revision 1's data as a strategic merge patch
    code, _ = call(kube, "PATCH", f"{STS}/db", good["data"], SMP)
    assert code == 200
    time.sleep(DELAY * 4)
    revisions = revisions_of(kube, f"{STS}/db")
    assert sorted(revisions) == [2, 3] and revisions[3]["metadata"]["name"] == good["metadata"]["name"]
    assert get(kube, f"{STS}/db")["status"]["updateRevision"] == good["metadata"]["name"]
    assert sts_rolled_out(kube) is None  # still waiting for the broken db-2
    assert "registry.local/db:bad-2.0.0" in json.dumps(pods_of(kube, "db")["db-2"]["spec"])
    assert call(kube, "DELETE", "/api/v1/namespaces/shop/pods/db-2")[0] == 200
    s = kube.wait_for(lambda: sts_rolled_out(kube), timeout=10)
    assert {p["spec"]["containers"][0]["image"] for p in pods_of(kube, "db").values()} == {"registry.local/db:1.0.0"}
    assert s["status"]["currentRevision"] == good["metadata"]["name"]


def test_statefulset_partition_scale_subresource_and_reverse_order(kube):
    """StatefulSet docs, "Partitioned rolling updates": only ordinals >= partition are updated; "Scaling":
    pods are removed from the highest ordinal; the ``scale`` subresource reads and sets ``spec.replicas``."""
    body = statefulset(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    assert call(kube, "POST", STS, body)[0] == 201
    kube.wait_for(lambda: sts_rolled_out(kube), timeout=10)
    _patch_image(kube, f"{STS}/db", "db", "registry.local/db:1.1.0")

    def partitioned():
        s = get(kube, f"{STS}/db")
        ok = s["status"].get("updatedReplicas") == 1 and s["status"].get("readyReplicas") == 3
        return s if ok else None

    s = kube.wait_for(partitioned, timeout=10)
    assert s["status"]["currentRevision"] != s["status"]["updateRevision"]
    images = {n: p["spec"]["containers"][0]["image"] for n, p in pods_of(kube, "db").items()}
    assert images == {
        "db-0": "registry.local/db:1.0.0",
        "db-1": "registry.local/db:1.0.0",
        "db-2": "registry.local/db:1.1.0",
    }
    scale = get(kube, f"{STS}/db/scale")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3 and scale["status"]["selector"] == "app=db"
    code, scale = call(kube, "PATCH", f"{STS}/db/scale", {"spec": {"replicas": 1}}, MERGE)
    assert code == 200 and scale["spec"]["replicas"] == 1
    kube.wait_for(lambda: set(pods_of(kube, "db")) == {"db-0"}, timeout=10)
    assert get(kube, f"{STS}/db")["status"]["replicas"] == 1


def test_statefulset_validation(kube):
    """API reference / ValidateStatefulSetUpdate: the selector must match the template labels and only replicas,
    ordinals, template, updateStrategy, persistentVolumeClaimRetentionPolicy and minReadySeconds may change."""
    body = statefulset()
    body["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    code, status = call(kube, "POST", STS, body)
    assert code == 422 and "`selector` does not match template `labels`" in status["message"]
    assert call(kube, "POST", STS, statefulset(podManagementPolicy="Sometimes"))[0] == 422
    assert call(kube, "POST", STS, statefulset())[0] == 201
    code, status = call(kube, "PATCH", f"{STS}/db", {"spec": {"serviceName": "elsewhere"}}, MERGE)
    assert code == 422 and "updates to statefulset spec for fields other than" in status["message"]
    assert call(kube, "PATCH", f"{STS}/db", {"spec": {"minReadySeconds": 1}}, MERGE)[0] == 200
    revision = next(iter(kube.wait_for(lambda: revisions_of(kube, f"{STS}/db")).values()))
    code, _ = call(
        kube, "PATCH", f"{REVISIONS}/{revision['metadata']['name']}", {"data": {"spec": {"template": None}}}, MERGE
    )
    assert code == 422  # ControllerRevision data is immutable


def test_daemonset_one_pod_per_node_rollout_and_rollback(kube):
    """DaemonSet docs: "ensures that all (or some) Nodes run a copy of a Pod", "As nodes are added to the
    cluster, Pods are added to them", ``nodeSelector`` limits the nodes; "Perform a Rolling Update on a DaemonSet":
    RollingUpdate with maxUnavailable 1 by default, old pods killed and new ones created one node at a time;
    "Perform a Rollback on a DaemonSet": history is in ControllerRevisions, ``controller-revision-hash`` labels."""
    code, created = call(kube, "POST", DS, daemonset())
    assert code == 201
    assert created["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert created["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"
    d = kube.wait_for(lambda: ds_rolled_out(kube), timeout=10)
    nodes = sorted(n["metadata"]["name"] for n in get(kube, "/api/v1/nodes")["items"])
    assert d["status"]["desiredNumberScheduled"] == len(nodes) == 2
    assert d["status"]["currentNumberScheduled"] == d["status"]["numberAvailable"] == 2
    assert d["status"]["numberMisscheduled"] == 0 and "numberUnavailable" not in d["status"]
    pods = pods_of(kube, "agent")
    assert sorted(p["spec"]["nodeName"] for p in pods.values()) == nodes
    good = revisions_of(kube, f"{DS}/agent")[1]
    digest = good["metadata"]["labels"]["controller-revision-hash"]
    assert good["metadata"]["name"] == f"agent-{digest}"
    assert all(p["metadata"]["labels"]["controller-revision-hash"] == digest for p in pods.values())
    assert all(p["metadata"]["labels"]["pod-template-generation"] == "1" for p in pods.values())
    _patch_image(kube, f"{DS}/agent", "agent", "registry.local/agent:broken")

    def stuck():
        d = get(kube, f"{DS}/agent")
        return d if d["status"].get("updatedNumberScheduled") == 1 and d["status"]["observedGeneration"] == 2 else None

    kube.wait_for(stuck, timeout=10)
    time.sleep(DELAY * 4)
    d = get(kube, f"{DS}/agent")
    assert d["status"]["updatedNumberScheduled"] == 1 and d["status"]["numberReady"] == 1
    assert d["status"]["numberUnavailable"] == 1 and d["status"]["numberAvailable"] == 1
    assert d["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "2"
    assert ds_rolled_out(kube) is None
    code, _ = call(kube, "PATCH", f"{DS}/agent", good["data"], SMP)  # kubectl rollout undo
    assert code == 200
    d = kube.wait_for(lambda: ds_rolled_out(kube), timeout=10)
    revisions = revisions_of(kube, f"{DS}/agent")
    assert sorted(revisions) == [2, 3] and revisions[3]["metadata"]["name"] == good["metadata"]["name"]
    assert {p["spec"]["containers"][0]["image"] for p in pods_of(kube, "agent").values()} == {
        "registry.local/agent:1.0.0"
    }
    # a new node gets a pod; a nodeSelector that no longer matches a node removes its pod
    node = get(kube, "/api/v1/nodes/sandbox-node-2")
    node["metadata"] = {"name": "sandbox-node-3", "labels": {**node["metadata"]["labels"], "role": "edge"}}
    assert call(kube, "POST", "/api/v1/nodes", node)[0] == 201
    kube.wait_for(lambda: get(kube, f"{DS}/agent")["status"]["desiredNumberScheduled"] == 3, timeout=10)
    kube.wait_for(lambda: ds_rolled_out(kube), timeout=10)
    code, _ = call(
        kube, "PATCH", f"{DS}/agent", {"spec": {"template": {"spec": {"nodeSelector": {"role": "edge"}}}}}, SMP
    )
    assert code == 200
    d = kube.wait_for(lambda: ds_rolled_out(kube), timeout=10)
    assert d["status"]["desiredNumberScheduled"] == 1
    kube.wait_for(lambda: [p["spec"]["nodeName"] for p in pods_of(kube, "agent").values()] == ["sandbox-node-3"])


def test_seeded_daemonset_and_cascade_delete(kube):
    """The seed's ``kube-system/fluentd`` has two revisions; deleting a workload garbage-collects its pods and
    ControllerRevisions (ownerReferences)."""
    seeded = kube.manifest["daemonsets"]["kube-system/fluentd"]
    assert [seeded["revisions"][r]["image"] for r in ("1", "2")] == seeded["images"]
    assert ds_rolled_out(kube, "fluentd", "kube-system")
    assert call(kube, "POST", STS, statefulset(replicas=1))[0] == 201
    kube.wait_for(lambda: sts_rolled_out(kube), timeout=10)
    assert call(kube, "DELETE", f"{STS}/db")[0] == 200
    assert pods_of(kube, "db") == {} and get(kube, REVISIONS)["items"] == []


# ------------------------------------------------------------------------------- pods, events, nodes, logs
PODS = "/api/v1/namespaces/shop/pods"


def _pod(name, image="registry.local/tool:1.0.0", **spec):
    container = {"name": name, "image": image}
    container.update(spec.pop("container", {}))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [container], **spec}}


def events_for(server, name, namespace="shop"):
    items = get(server, f"/api/v1/namespaces/{namespace}/events?fieldSelector=involvedObject.name%3D{name}")["items"]
    return [(e["reason"], e["type"], e["message"], e["source"]["component"]) for e in items]


def waiting_reason(pod, index=0):
    return ((pod["status"].get("containerStatuses") or [{}])[index].get("state") or {}).get("waiting", {}).get("reason")


def test_standalone_pod_is_scheduled_and_started_with_events(kube):
    """Pod lifecycle docs: the scheduler binds the pod (``spec.nodeName``, condition PodScheduled, Event
    ``Scheduled`` from default-scheduler); the kubelet pulls, creates and starts the containers (Events Pulled,
    Created, Started with ``involvedObject.fieldPath: spec.containers{name}``); phase Running, Ready True."""
    code, created = call(kube, "POST", PODS, _pod("tool"))
    assert code == 201 and created["status"]["phase"] == "Pending"

    def running():
        pod = get(kube, f"{PODS}/tool")
        return pod if pod["status"].get("phase") == "Running" else None

    pod = kube.wait_for(running, timeout=10)
    assert pod["spec"]["nodeName"] in ("sandbox-node-1", "sandbox-node-2")
    assert condition(pod, "Ready")["status"] == "True" and condition(pod, "PodScheduled")["status"] == "True"
    node = get(kube, f"/api/v1/nodes/{pod['spec']['nodeName']}")
    internal = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    assert pod["status"]["hostIP"] == internal and pod["status"]["podIP"].startswith("10.244.")
    running_state = pod["status"]["containerStatuses"][0]
    assert running_state["ready"] is True and "running" in running_state["state"]
    events = events_for(kube, "tool")
    assert (
        "Scheduled",
        "Normal",
        f"Successfully assigned shop/tool to {pod['spec']['nodeName']}",
        "default-scheduler",
    ) in events
    assert {e[0] for e in events} >= {"Pulled", "Created", "Started"}
    started = get(kube, "/api/v1/namespaces/shop/events?fieldSelector=reason%3DStarted")["items"]
    started = next(e for e in started if e["involvedObject"]["name"] == "tool")
    assert started["involvedObject"]["fieldPath"] == "spec.containers{tool}"
    assert started["involvedObject"]["kind"] == "Pod" and started["source"]["host"] == pod["spec"]["nodeName"]
    assert started["count"] == 1 and started["firstTimestamp"] and started["lastTimestamp"]


def test_bad_image_err_image_pull_then_back_off(kube):
    """Images docs, "ImagePullBackOff": the kubelet reports ErrImagePull, then backs off (ImagePullBackOff);
    Events Pulling, Failed (``Failed to pull image``, ``Error: ErrImagePull``), BackOff, ``Error:
    ImagePullBackOff``; the pod stays Pending and its log cannot be read."""
    assert call(kube, "POST", PODS, _pod("pull", "registry.local/tool:bad-1"))[0] == 201
    pod = kube.wait_for(lambda: (p := get(kube, f"{PODS}/pull")) and waiting_reason(p) == "ImagePullBackOff" and p)
    assert pod["status"]["phase"] == "Pending" and condition(pod, "Ready")["status"] == "False"
    assert condition(pod, "Ready")["reason"] == "ContainersNotReady"
    reasons = [(e[0], e[2]) for e in events_for(kube, "pull")]
    assert ("Pulling", 'Pulling image "registry.local/tool:bad-1"') in reasons
    assert any(r == "Failed" and m.startswith('Failed to pull image "registry.local/tool:bad-1"') for r, m in reasons)
    assert ("Failed", "Error: ErrImagePull") in reasons and ("Failed", "Error: ImagePullBackOff") in reasons
    assert ("BackOff", 'Back-off pulling image "registry.local/tool:bad-1"') in reasons
    code, body = call(kube, "GET", f"{PODS}/pull/log")
    assert code == 400 and "is waiting to start: trying and failing to pull image" in body["message"]


def test_crash_loop_back_off_with_restarts_events_and_logs(kube):
    """Pod lifecycle docs, "Container restarts" / CrashLoopBackOff: a container that exits is restarted with an
    exponential back-off; ``restartCount`` grows, ``lastState.terminated`` keeps the exit code, the waiting reason
    is CrashLoopBackOff, the pod stays Running but not Ready; Event BackOff ``Back-off restarting failed
    container``; ``kubectl logs`` shows the last run and ``--previous`` the terminated one. A Deployment of it
    never completes."""
    body = deployment("crashy", image="registry.local/crashy:crash-1.0", replicas=1)
    assert call(kube, "POST", APPS.replace("shop", "shop"), body)[0] == 201

    def looping():
        pods = list(pods_of(kube, "crashy").values())
        if (
            pods
            and waiting_reason(pods[0]) == "CrashLoopBackOff"
            and pods[0]["status"]["containerStatuses"][0]["restartCount"] >= 1
        ):
            return pods[0]
        return None

    pod = kube.wait_for(looping, timeout=15)
    status = pod["status"]["containerStatuses"][0]
    assert pod["status"]["phase"] == "Running" and condition(pod, "Ready")["status"] == "False"
    assert status["ready"] is False and status["lastState"]["terminated"]["exitCode"] == 1
    assert status["lastState"]["terminated"]["reason"] == "Error"
    assert (
        "back-off" in status["state"]["waiting"]["message"]
        and "restarting failed container=crashy" in status["state"]["waiting"]["message"]
    )
    name = pod["metadata"]["name"]
    backoff = [e for e in events_for(kube, name) if e[0] == "BackOff"]
    assert backoff and backoff[0][1] == "Warning"
    assert backoff[0][2].startswith(f"Back-off restarting failed container crashy in pod {name}_shop(")
    with urllib.request.urlopen(f"{kube.url}{PODS}/{name}/log?tailLines=2") as resp:
        lines = resp.read().decode().splitlines()
    assert len(lines) == 2 and "exiting with status 1" in lines[-1]
    with urllib.request.urlopen(f"{kube.url}{PODS}/{name}/log?previous=true") as resp:
        assert "FATAL" in resp.read().decode()
    assert rolled_out(kube, "crashy") is None
    d = get(kube, f"{APPS}/crashy")
    assert d["status"]["unavailableReplicas"] == 1
    # restartPolicy Never: the pod fails instead of restarting
    assert call(kube, "POST", PODS, _pod("once", "registry.local/job:exit-1", restartPolicy="Never"))[0] == 201
    failed = kube.wait_for(lambda: (p := get(kube, f"{PODS}/once")) and p["status"]["phase"] == "Failed" and p)
    assert failed["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1
    assert call(kube, "GET", f"{PODS}/once/log?previous=true")[0] == 400  # no previous instance


def test_missing_config_map_and_secret_references(kube):
    """ConfigMap docs, "Using ConfigMaps as environment variables" / Secret docs: a reference to a missing
    ConfigMap, Secret or key (not ``optional``) keeps the container from starting (CreateContainerConfigError,
    Event Failed ``Error: configmap "x" not found``) until it exists; a missing configMap volume keeps the pod
    in ContainerCreating with Event FailedMount."""
    env = [{"name": "FLAG", "valueFrom": {"configMapKeyRef": {"name": "flags", "key": "checkout"}}}]
    assert call(kube, "POST", PODS, _pod("cfg", container={"env": env}))[0] == 201
    secret_env = {"envFrom": [{"secretRef": {"name": "db-creds"}}]}
    assert call(kube, "POST", PODS, _pod("sec", container=secret_env))[0] == 201
    key_env = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "shop-config", "key": "NOPE"}}}]
    assert call(kube, "POST", PODS, _pod("key", container={"env": key_env}))[0] == 201
    optional = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k", "optional": True}}}]
    assert call(kube, "POST", PODS, _pod("opt", container={"env": optional}))[0] == 201
    volumes = [{"name": "conf", "configMap": {"name": "absent-volume"}}]
    assert call(kube, "POST", PODS, _pod("vol", volumes=volumes))[0] == 201

    def config_errors():
        pods = {n: get(kube, f"{PODS}/{n}") for n in ("cfg", "sec", "key")}
        return pods if all(waiting_reason(p) == "CreateContainerConfigError" for p in pods.values()) else None

    pods = kube.wait_for(config_errors, timeout=20)
    messages = {n: p["status"]["containerStatuses"][0]["state"]["waiting"]["message"] for n, p in pods.items()}
    assert messages == {
        "cfg": 'configmap "flags" not found',
        "sec": 'secret "db-creds" not found',
        "key": "couldn't find key NOPE in ConfigMap shop/shop-config",
    }
    assert all(p["status"]["phase"] == "Pending" for p in pods.values())
    assert ("Failed", "Warning", 'Error: configmap "flags" not found', "kubelet") in events_for(kube, "cfg")
    kube.wait_for(lambda: get(kube, f"{PODS}/opt")["status"]["phase"] == "Running", timeout=20)
    failed_mount = (
        "FailedMount",
        "Warning",
        'MountVolume.SetUp failed for volume "conf" : configmap "absent-volume" not found',
        "kubelet",
    )
    kube.wait_for(lambda: failed_mount in events_for(kube, "vol"), timeout=20)
    vol = get(kube, f"{PODS}/vol")
    assert waiting_reason(vol) == "ContainerCreating" and vol["status"]["phase"] == "Pending"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags"}, "data": {"checkout": "on"}}
    assert call(kube, "POST", "/api/v1/namespaces/shop/configmaps", cm)[0] == 201
    kube.wait_for(lambda: get(kube, f"{PODS}/cfg")["status"]["phase"] == "Running", timeout=20)  # kubelet retries
    # env is resolved when a container is created: deleting the ConfigMap does not stop a running one,
    # but the pods a rolling restart creates cannot start
    assert call(kube, "DELETE", "/api/v1/namespaces/shop/configmaps/flags")[0] == 200
    body = deployment("uses-flags", replicas=1)
    body["spec"]["template"]["spec"]["containers"][0]["env"] = env
    assert call(kube, "POST", APPS, body)[0] == 201
    kube.wait_for(
        lambda: any(waiting_reason(p) == "CreateContainerConfigError" for p in pods_of(kube, "uses-flags").values()),
        timeout=20,
    )
    assert get(kube, f"{PODS}/cfg")["status"]["phase"] == "Running"
    assert get(kube, f"{PODS}/cfg")["status"]["containerStatuses"][0]["ready"] is True


def test_missing_service_account_blocks_pod_creation(kube):
    """ServiceAccount admission (Service accounts docs): a pod naming a service account that does not exist is
    rejected (403); a ReplicaSet records Event FailedCreate and condition ReplicaFailure, which the Deployment
    copies; once the account exists the pods are created."""
    code, status = call(kube, "POST", PODS, _pod("nosa", serviceAccountName="runner"))
    assert code == 403 and status["reason"] == "Forbidden"
    assert status["message"] == (
        'pods "nosa" is forbidden: error looking up service account shop/runner: serviceaccount "runner" not found'
    )
    body = deployment("needs-sa", replicas=2)
    body["spec"]["template"]["spec"]["serviceAccountName"] = "runner"
    assert call(kube, "POST", APPS, body)[0] == 201

    def failed():
        d = get(kube, f"{APPS}/needs-sa")
        return d if d.get("status") and condition(d, "ReplicaFailure") else None

    d = kube.wait_for(failed, timeout=10)
    cond = condition(d, "ReplicaFailure")
    assert cond["status"] == "True" and cond["reason"] == "FailedCreate"
    assert 'serviceaccount "runner" not found' in cond["message"]
    rs = next(iter(owned_replicasets(kube, "needs-sa").values()))
    assert condition(rs, "ReplicaFailure")["reason"] == "FailedCreate"
    events = events_for(kube, rs["metadata"]["name"])
    failed_create = [e for e in events if e[0] == "FailedCreate"]
    assert failed_create and failed_create[0][1] == "Warning" and failed_create[0][3] == "replicaset-controller"
    assert failed_create[0][2].startswith(f'Error creating: pods "{rs["metadata"]["name"]}-" is forbidden')
    assert pods_of(kube, "needs-sa") == {}
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "runner"}}
    assert call(kube, "POST", "/api/v1/namespaces/shop/serviceaccounts", sa)[0] == 201
    d = kube.wait_for(lambda: rolled_out(kube, "needs-sa"), timeout=10)
    assert condition(d, "ReplicaFailure") is None


def test_nodes_conditions_and_not_ready_node(kube):
    """Nodes docs, "Node status": conditions Ready, MemoryPressure, DiskPressure, PIDPressure; addresses,
    capacity, nodeInfo. A node whose Ready condition is not True gets no new pods, and its pods are marked not
    Ready (node lifecycle controller)."""
    nodes = get(kube, "/api/v1/nodes")["items"]
    assert len(nodes) == 2
    for node in nodes:
        conds = {c["type"]: c for c in node["status"]["conditions"]}
        assert conds["Ready"]["status"] == "True" and conds["Ready"]["reason"] == "KubeletReady"
        assert {conds[t]["status"] for t in ("MemoryPressure", "DiskPressure", "PIDPressure")} == {"False"}
        assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.31")
    node = get(kube, "/api/v1/nodes/sandbox-node-1")
    for cond in node["status"]["conditions"]:
        if cond["type"] == "Ready":
            cond.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.")
    assert call(kube, "PUT", "/api/v1/nodes/sandbox-node-1/status", node)[0] == 200
    on_node = get(kube, "/api/v1/pods?fieldSelector=spec.nodeName%3Dsandbox-node-1")["items"]
    assert on_node

    def marked():
        pods = get(kube, "/api/v1/pods?fieldSelector=spec.nodeName%3Dsandbox-node-1")["items"]
        return all(condition(p, "Ready")["status"] == "False" for p in pods)

    kube.wait_for(marked, timeout=10)
    assert call(kube, "POST", PODS, _pod("later"))[0] == 201
    assert kube.wait_for(lambda: get(kube, f"{PODS}/later")["spec"].get("nodeName")) == "sandbox-node-2"
    # Taints and tolerations docs, "Taint based evictions": the node controller taints an unreachable node
    tainted = kube.wait_for(lambda: get(kube, "/api/v1/nodes/sandbox-node-1")["spec"].get("taints"))
    assert {(t["key"], t["effect"]) for t in tainted} == {
        ("node.kubernetes.io/unreachable", "NoSchedule"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
    }
    node_events = events_for(kube, "sandbox-node-1", "default")
    assert (
        "NodeNotReady",
        "Normal",
        "Node sandbox-node-1 status is now: NodeNotReady",
        "node-controller",
    ) in node_events
    pod_name = on_node[0]["metadata"]["name"]
    kube.wait_for(
        lambda: (
            ("NodeNotReady", "Warning", "Node is not ready", "node-controller")
            in events_for(kube, pod_name, on_node[0]["metadata"]["namespace"])
        )
    )
    node = get(kube, "/api/v1/nodes/sandbox-node-1")
    for cond in node["status"]["conditions"]:
        if cond["type"] == "Ready":
            cond.update(status="True", reason="KubeletReady", message="kubelet is posting ready status")
    assert call(kube, "PUT", "/api/v1/nodes/sandbox-node-1/status", node)[0] == 200
    kube.wait_for(lambda: not get(kube, "/api/v1/nodes/sandbox-node-1")["spec"].get("taints"))
    kube.wait_for(lambda: not marked())


def test_events_k8s_io_v1_serves_the_same_events(kube):
    """API reference, events.k8s.io/v1 Event: the same Events as v1 (one storage), with ``regarding``, ``note``,
    ``reportingController`` and the ``deprecated*`` fields; field selectors on ``regarding.*``."""
    group = get(kube, "/apis/events.k8s.io")
    assert group["preferredVersion"]["version"] == "v1"
    assert call(kube, "POST", PODS, _pod("evt"))[0] == 201
    kube.wait_for(lambda: any(e[0] == "Started" for e in events_for(kube, "evt")))
    listed = get(kube, "/apis/events.k8s.io/v1/namespaces/shop/events?fieldSelector=regarding.name%3Devt")
    assert listed["kind"] == "EventList" and listed["apiVersion"] == "events.k8s.io/v1"
    by_reason = {e["reason"]: e for e in listed["items"]}
    started = by_reason["Started"]
    assert started["regarding"]["name"] == "evt" and started["regarding"]["kind"] == "Pod"
    assert started["note"] == "Started container evt" and started["reportingController"] == "kubelet"
    assert started["deprecatedCount"] == 1 and started["deprecatedSource"]["component"] == "kubelet"
    one = get(kube, f"/apis/events.k8s.io/v1/namespaces/shop/events/{started['metadata']['name']}")
    assert one["apiVersion"] == "events.k8s.io/v1" and one["note"] == started["note"]
    new = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "drill.1"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "firebreak",
        "reportingInstance": "runner",
        "action": "Contain",
        "reason": "Isolated",
        "note": "namespace isolated",
        "type": "Normal",
        "regarding": {"kind": "Namespace", "name": "shop", "apiVersion": "v1"},
    }
    code, created = call(kube, "POST", "/apis/events.k8s.io/v1/namespaces/shop/events", new)
    assert code == 201 and created["note"] == "namespace isolated"
    core = get(kube, "/api/v1/namespaces/shop/events/drill.1")
    assert core["message"] == "namespace isolated" and core["involvedObject"]["name"] == "shop"
    assert core["reportingComponent"] == "firebreak"


# ------------------------------------------------------------------------------ HorizontalPodAutoscalers
HPAS = "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers"


def hpa(name="api", minimum=3, maximum=5, target="api", kind="Deployment", **spec):
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target},
            "minReplicas": minimum,
            "maxReplicas": maximum,
            **spec,
        },
    }


def test_autoscaling_v2_discovery_and_defaults(kube):
    """API reference, autoscaling/v2 (the preferred version): ``metrics`` defaults to CPU at 80 % utilization,
    ``behavior`` to the documented scale-up/scale-down policies; minReplicas <= maxReplicas is validated."""
    group = get(kube, "/apis/autoscaling")
    assert group["preferredVersion"]["version"] == "v2"
    assert {v["version"] for v in group["versions"]} == {"v1", "v2"}
    resources = {r["name"] for r in get(kube, "/apis/autoscaling/v2")["resources"]}
    assert {"horizontalpodautoscalers", "horizontalpodautoscalers/status"} <= resources
    code, created = call(kube, "POST", HPAS, hpa())
    assert code == 201
    assert created["spec"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}
    ]
    assert created["spec"]["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert created["spec"]["behavior"]["scaleDown"]["policies"] == [
        {"type": "Percent", "value": 100, "periodSeconds": 15}
    ]
    code, status = call(kube, "POST", HPAS, hpa("bad", minimum=4, maximum=2))
    assert code == 422 and "must be greater than or equal to `minReplicas`" in status["message"]
    body = hpa("nomax")
    del body["spec"]["maxReplicas"]
    assert call(kube, "POST", HPAS, body)[0] == 422


def test_hpa_min_replicas_holds_against_a_manual_scale_down(kube):
    """HPA docs / horizontal.go: replicas below minReplicas (or above maxReplicas) are brought back within them
    even without metrics (Event SuccessfulRescale "New size: N; reason: Current number of replicas below
    Spec.MinReplicas"); without a metrics API, ScalingActive is False (FailedGetResourceMetric)."""
    kube.hpa_sync_period = 0.1
    assert call(kube, "POST", HPAS, hpa())[0] == 201
    kube.wait_for(lambda: get(kube, f"{APPS}/api")["spec"]["replicas"] == 3, timeout=20)
    kube.wait_for(lambda: rolled_out(kube, "api"), timeout=20)
    code, _ = call(kube, "PATCH", f"{APPS}/api/scale", {"spec": {"replicas": 1}}, MERGE)  # kubectl scale
    assert code == 200
    kube.wait_for(lambda: get(kube, f"{APPS}/api")["spec"]["replicas"] == 3, timeout=20)
    h = kube.wait_for(lambda: (h := get(kube, f"{HPAS}/api")) and h["status"].get("currentReplicas") == 3 and h)
    assert h["status"]["desiredReplicas"] == 3 and h["status"]["lastScaleTime"]
    assert condition(h, "ScalingActive")["status"] == "False"
    assert condition(h, "ScalingActive")["reason"] == "FailedGetResourceMetric"
    rescales = [e for e in events_for(kube, "api") if e[0] == "SuccessfulRescale"]
    assert (
        "SuccessfulRescale",
        "Normal",
        "New size: 3; reason: Current number of replicas below Spec.MinReplicas",
        "horizontal-pod-autoscaler",
    ) in rescales
    # above the maximum: brought down to it
    code, _ = call(kube, "PATCH", f"{APPS}/api/scale", {"spec": {"replicas": 8}}, MERGE)
    kube.wait_for(lambda: get(kube, f"{APPS}/api")["spec"]["replicas"] == 5, timeout=20)
    # "Implicit maintenance-mode deactivation": a target scaled to 0 is left alone
    code, _ = call(kube, "PATCH", f"{APPS}/api/scale", {"spec": {"replicas": 0}}, MERGE)
    h = kube.wait_for(
        lambda: (h := get(kube, f"{HPAS}/api")) and condition(h, "ScalingActive")["reason"] == "ScalingDisabled" and h
    )
    assert get(kube, f"{APPS}/api")["spec"]["replicas"] == 0


def test_hpa_scales_on_cpu_utilization_up_to_its_maximum(kube):
    """HPA docs, "Algorithm details": desiredReplicas = ceil[currentReplicas * (current / desired metric)],
    within a 10 % tolerance, limited to maxReplicas (ScalingLimited True, TooManyReplicas: saturation)."""
    kube.hpa_sync_period = 0.1
    assert call(kube, "POST", HPAS, hpa("front", minimum=2, maximum=4, target="front"))[0] == 201
    kube.set_cpu_utilization("shop", "front", 84)  # within 10 % of 80: nothing to do
    h = kube.wait_for(lambda: (h := get(kube, f"{HPAS}/front")) and h.get("status", {}).get("currentMetrics") and h)
    assert condition(h, "ScalingActive")["reason"] == "ValidMetricFound"
    assert get(kube, f"{APPS}/front")["spec"]["replicas"] == 3
    kube.set_cpu_utilization("shop", "front", 200)
    kube.wait_for(lambda: get(kube, f"{APPS}/front")["spec"]["replicas"] == 4, timeout=20)

    def limited():
        h = get(kube, f"{HPAS}/front")
        cond = condition(h, "ScalingLimited") if h.get("status") else None
        return h if cond and cond["reason"] == "TooManyReplicas" else None

    h = kube.wait_for(limited, timeout=20)
    assert condition(h, "ScalingLimited")["status"] == "True" and h["status"]["desiredReplicas"] == 4
    assert h["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 200
    assert call(kube, "POST", HPAS, hpa("ghost", target="nothing"))[0] == 201
    h = kube.wait_for(lambda: (h := get(kube, f"{HPAS}/ghost")) and h.get("status", {}).get("conditions") and h)
    assert condition(h, "AbleToScale")["reason"] == "FailedGetScale"


# ------------------------------------------------------------------- Secrets, server-side apply, netpol, ns
def test_secret_string_data_is_folded_into_data(kube):
    """Secret docs / API reference: ``stringData`` is a write-only convenience field; its entries are merged into
    ``data`` (base64) on write, overriding ``data`` keys of the same name, and it is never output when reading."""
    path = "/api/v1/namespaces/shop/secrets"
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "token"},
        "data": {"user": base64.b64encode(b"old").decode(), "keep": base64.b64encode(b"k").decode()},
        "stringData": {"user": "responder", "password": "s3cret"},
    }
    code, created = call(kube, "POST", path, secret)
    assert code == 201 and "stringData" not in created
    stored = get(kube, f"{path}/token")
    assert "stringData" not in stored and stored["type"] == "Opaque"
    decoded = {k: base64.b64decode(v).decode() for k, v in stored["data"].items()}
    assert decoded == {"user": "responder", "password": "s3cret", "keep": "k"}
    code, patched = call(kube, "PATCH", f"{path}/token", {"stringData": {"password": "rotated"}}, MERGE)
    assert code == 200 and "stringData" not in patched
    assert base64.b64decode(get(kube, f"{path}/token")["data"]["password"]) == b"rotated"
    bad = {**secret, "metadata": {"name": "badkey"}, "stringData": {"no/slash": "x"}}
    assert call(kube, "POST", path, bad)[0] == 422


def _apply(server, path, manifest, manager, force=False):
    query = f"?fieldManager={manager}" + ("&force=true" if force else "")
    return call(server, "PATCH", path + query, json.dumps(manifest), APPLY)


def _owners(obj):
    return {
        (m["manager"], m["operation"], m.get("subresource", "")): m["fieldsV1"]
        for m in obj["metadata"].get("managedFields") or []
    }


def test_server_side_apply_conflicts_and_ownership(kube):
    """Server-Side Apply docs: "a conflict ... occurs when an Apply operation tries to change a field that another
    manager also claims to manage" (409 without force, naming the manager and the field); applying the same value
    shares ownership; ``force`` makes the applier the sole manager; an update operation takes ownership of the
    fields it changes; a field an applier stops applying that nobody else owns is removed."""
    path = "/api/v1/namespaces/shop/configmaps/flags"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags"}, "data": {"a": "1", "b": "1"}}
    assert call(kube, "POST", "/api/v1/namespaces/shop/configmaps?fieldManager=kubectl-create", cm)[0] == 201
    before = get(kube, path)
    code, status = _apply(kube, path, {**cm, "data": {"a": "2"}}, "runbook")
    assert code == 409 and status["reason"] == "Conflict"
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "kubectl-create" using v1: .data.a'
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "kubectl-create" using v1', "field": ".data.a"}
    ]
    assert get(kube, path)["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    code, shared = _apply(kube, path, {**cm, "data": {"a": "1"}}, "runbook")  # same value: shared ownership
    assert code == 200
    owners = _owners(shared)
    assert "f:a" in owners[("runbook", "Apply", "")]["f:data"]
    assert "f:a" in owners[("kubectl-create", "Update", "")]["f:data"]
    code, forced = _apply(kube, path, {**cm, "data": {"a": "2", "c": "3"}}, "runbook", force=True)
    assert code == 200 and forced["data"] == {"a": "2", "b": "1", "c": "3"}
    owners = _owners(forced)
    assert set(owners[("runbook", "Apply", "")]["f:data"]) == {"f:a", "f:c"}
    assert set(owners[("kubectl-create", "Update", "")]["f:data"]) == {"f:b"}
    code, status = _apply(kube, path, {**cm, "data": {"c": "4"}}, "other")
    assert code == 409 and status["message"] == 'Apply failed with 1 conflict: conflict with "runbook": .data.c'
    # runbook stops applying c: nobody else owns it, so it goes
    code, applied = _apply(kube, path, {**cm, "data": {"a": "2"}}, "runbook")
    assert code == 200 and applied["data"] == {"a": "2", "b": "1"}
    # an update (merge patch) takes ownership of what it changes
    code, edited = call(kube, "PATCH", path + "?fieldManager=editor", {"data": {"a": "5"}}, MERGE)
    assert code == 200 and set(_owners(edited)[("editor", "Update", "")]["f:data"]) == {"f:a"}
    assert ("runbook", "Apply", "") not in _owners(edited)
    code, status = _apply(kube, path, {**cm, "data": {"a": "2", "b": "2"}}, "runbook")
    assert code == 409 and status["message"].startswith("Apply failed with 2 conflicts: conflicts with ")
    assert {c["field"] for c in status["details"]["causes"]} == {".data.a", ".data.b"}


def test_server_side_apply_conflict_with_kubectl_scale(kube):
    """Server-Side Apply docs, "Transferring ownership": after ``kubectl scale`` (an update through the ``scale``
    subresource) re-applying a manifest with the old ``replicas`` conflicts on ``.spec.replicas``."""
    path = f"{APPS}/web"
    manifest = deployment("web", replicas=2)
    code, created = _apply(kube, path, manifest, "runbook")
    assert code == 201 and set(_owners(created)) == {("runbook", "Apply", "")}
    code, _ = call(kube, "PATCH", f"{path}/scale?fieldManager=kubectl", {"spec": {"replicas": 4}}, MERGE)
    assert code == 200
    owners = _owners(get(kube, path))
    assert owners[("kubectl", "Update", "scale")] == {"f:spec": {"f:replicas": {}}}
    code, status = _apply(kube, path, manifest, "runbook")
    assert code == 409
    assert status["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas'
    )
    image = "registry.local/web:2.0.0"
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = image
    code, status = _apply(kube, path, manifest, "other-tool")
    assert code == 409
    field = '.spec.template.spec.containers[name="web"].image'
    assert field in {c["field"] for c in status["details"]["causes"]}
    code, forced = _apply(kube, path, manifest, "runbook", force=True)
    assert code == 200 and forced["spec"]["replicas"] == 2
    assert ("kubectl", "Update", "scale") not in _owners(forced)


def _netpol(name, **spec):
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": {"podSelector": {}, **spec},
    }


def test_network_policy_validation(kube):
    """API reference, NetworkPolicySpec / ValidateNetworkPolicySpec: policyTypes are "Ingress" or "Egress";
    a port is 1-65535 or an IANA name, protocol TCP, UDP or SCTP, endPort >= port and only with a numeric port;
    ipBlock.cidr is a CIDR and ``except`` entries are strict subsets; a peer is an ipBlock or selectors."""
    path = "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies"
    dns = {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": "dns-tcp"}],
    }
    ok = _netpol("deny-all", policyTypes=["Ingress", "Egress"], egress=[dns])
    code, created = call(kube, "POST", path, ok)
    assert code == 201 and created["spec"]["policyTypes"] == ["Ingress", "Egress"]
    cases = [
        (_netpol("t1", policyTypes=["Ingres"]), 'spec.policyTypes[0]: Unsupported value: "Ingres"'),
        (_netpol("t2", ingress=[{"ports": [{"port": 70000}]}]), "spec.ingress[0].ports[0].port: Invalid value: 70000"),
        (_netpol("t3", egress=[{"ports": [{"protocol": "ICMP", "port": 1}]}]), 'Unsupported value: "ICMP"'),
        (
            _netpol("t4", ingress=[{"ports": [{"port": 8080, "endPort": 80}]}]),
            "must be greater than or equal to `port`",
        ),
        (_netpol("t5", ingress=[{"ports": [{"port": "http", "endPort": 90}]}]), "when `port` is non-numeric"),
        (_netpol("t6", ingress=[{"ports": [{"port": "Not_A_Name"}]}]), "spec.ingress[0].ports[0].port"),
        (_netpol("t7", ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]), "must be a valid CIDR value"),
        (
            _netpol("t8", ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["192.168.0.0/24"]}}]}]),
            "must be a strict subset of `cidr`",
        ),
        (
            _netpol("t9", egress=[{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]),
            "may not specify more than 1 peer type",
        ),
    ]
    for body, expected in cases:
        code, status = call(kube, "POST", path, body)
        assert code == 422 and status["reason"] == "Invalid", (body, status)
        assert expected in status["message"], status["message"]
    code, status = call(kube, "PATCH", f"{path}/deny-all", {"spec": {"policyTypes": ["Sideways"]}}, MERGE)
    assert code == 422
    assert get(kube, f"{path}/deny-all")["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_network_policy_label_selectors_are_pruned_or_rejected_as_the_apiserver_does(kube):
    """API concepts, "Field validation": unknown fields are dropped with a ``Warning`` header (``Warn``, the default),
    dropped silently (``Ignore``) or rejected with 400 (``Strict``). ``podSelector: {app: front}`` so becomes ``{}``,
    which selects every pod. ValidateLabelSelector answers 422 for bad operators, values and label keys."""
    path = "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies"
    loose = _netpol("loose", podSelector={"app": "front"})
    code, status = call(kube, "POST", path + "?fieldValidation=Strict", loose)
    assert code == 400 and status["reason"] == "BadRequest", status
    assert status["message"] == 'strict decoding error: unknown field "spec.podSelector.app"'
    req = urllib.request.Request(kube.url + path, data=json.dumps(loose).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        created = json.loads(resp.read())
        assert resp.headers["Warning"] == '299 - "unknown field \\"spec.podSelector.app\\""'
    assert created["spec"]["podSelector"] == {}
    peer = {"from": [{"podSelector": {"matchLabels": {"app": "x"}, "role": "db"}}]}
    code, created = call(kube, "POST", path + "?fieldValidation=Ignore", _netpol("peer", ingress=[peer]))
    assert code == 201 and created["spec"]["ingress"][0]["from"][0]["podSelector"] == {"matchLabels": {"app": "x"}}
    cases = [
        (
            {"matchExpressions": [{"key": "app", "operator": "Equals", "values": ["x"]}]},
            "not a valid selector operator",
        ),
        ({"matchExpressions": [{"key": "app", "operator": "In"}]}, "spec.podSelector.matchExpressions[0].values"),
        ({"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]}, "may not be specified"),
        ({"matchLabels": {"app": "front end"}}, "Invalid value: 'front end'"),
        ({"matchLabels": {"bad key": "x"}}, "Invalid value: 'bad key'"),
    ]
    for i, (selector, expected) in enumerate(cases):
        code, status = call(kube, "POST", path, _netpol(f"bad{i}", podSelector=selector))
        assert code == 422 and expected in status["message"], (selector, status)


def test_namespace_metadata_name_label_is_reset(kube):
    """Namespaces docs, "Automatic labelling": the control plane sets the immutable label
    ``kubernetes.io/metadata.name`` to the namespace's name on every namespace; changing or removing it is undone."""
    code, created = call(
        kube,
        "POST",
        "/api/v1/namespaces",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "iso", "labels": {"kubernetes.io/metadata.name": "x"}},
        },
    )
    assert code == 201 and created["metadata"]["labels"]["kubernetes.io/metadata.name"] == "iso"
    patch = {"metadata": {"labels": {"kubernetes.io/metadata.name": "kube-system", "quarantine": "inc-1"}}}
    code, patched = call(kube, "PATCH", "/api/v1/namespaces/shop", patch, MERGE)
    assert code == 200 and patched["metadata"]["labels"]["kubernetes.io/metadata.name"] == "shop"
    assert patched["metadata"]["labels"]["quarantine"] == "inc-1"
    code, patched = call(kube, "PATCH", "/api/v1/namespaces/shop", {"metadata": {"labels": None}}, MERGE)
    assert code == 200 and patched["metadata"]["labels"] == {"kubernetes.io/metadata.name": "shop"}
    ns = get(kube, "/api/v1/namespaces/shop")
    ns["metadata"]["labels"] = {}
    code, put = call(kube, "PUT", "/api/v1/namespaces/shop", ns)
    assert code == 200 and put["metadata"]["labels"] == {"kubernetes.io/metadata.name": "shop"}
    names = get(kube, "/api/v1/namespaces?labelSelector=kubernetes.io%2Fmetadata.name%3Dshop")["items"]
    assert [n["metadata"]["name"] for n in names] == ["shop"]


def test_autoscaling_v1_and_v2_are_one_object(kube):
    """API reference / HPA docs: an HPA is one object served in ``autoscaling/v1`` and ``autoscaling/v2``
    (``targetCPUUtilizationPercentage`` is the v2 CPU ``Utilization`` metric; v1 keeps v2's conditions in the
    ``autoscaling.alpha.kubernetes.io/conditions`` annotation); the controller acts on it whichever version made it."""
    kube.hpa_sync_period = 0.1
    v1_path = "/apis/autoscaling/v1/namespaces/shop/horizontalpodautoscalers"
    body = {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "api"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
            "minReplicas": 3,
            "maxReplicas": 6,
            "targetCPUUtilizationPercentage": 50,
        },
    }
    code, created = call(kube, "POST", v1_path, body)
    assert code == 201 and created["apiVersion"] == "autoscaling/v1"
    assert created["spec"]["targetCPUUtilizationPercentage"] == 50
    v2 = get(kube, f"{HPAS}/api")
    assert v2["apiVersion"] == "autoscaling/v2" and v2["spec"]["minReplicas"] == 3
    assert v2["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 50}
    kube.wait_for(lambda: get(kube, f"{APPS}/api")["spec"]["replicas"] == 3, timeout=20)
    seen = kube.wait_for(
        lambda: (h := get(kube, f"{v1_path}/api")) and h.get("status", {}).get("desiredReplicas") and h
    )
    assert "autoscaling.alpha.kubernetes.io/conditions" in seen["metadata"]["annotations"]
    code, patched = call(kube, "PATCH", f"{v1_path}/api", {"spec": {"maxReplicas": 8}}, MERGE)
    assert code == 200 and patched["spec"]["maxReplicas"] == 8
    v2 = get(kube, f"{HPAS}/api")
    assert v2["spec"]["maxReplicas"] == 8 and v2["spec"]["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 0
    listed = get(kube, v1_path)
    assert listed["apiVersion"] == "autoscaling/v1" and [i["metadata"]["name"] for i in listed["items"]] == ["api"]
    assert call(kube, "DELETE", f"{v1_path}/api")[0] == 200
    assert call(kube, "GET", f"{HPAS}/api")[0] == 404
