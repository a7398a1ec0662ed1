"""Small helpers for the Kubernetes step tests: read and write the test server directly (not through our modules),
and read a task result from a run with the json stdout callback."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

APPS = "/apis/apps/v1/namespaces"
CORE = "/api/v1/namespaces"
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}


def call(box, method: str, path: str, body=None, content_type="application/json"):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(box.kube_url + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read() or b"{}")


def get(box, path: str):
    return call(box, "GET", path)


def status_of(box, method: str, path: str, body=None, content_type="application/json") -> int:
    try:
        call(box, method, path, body, content_type)
    except urllib.error.HTTPError as e:
        return e.code
    return 200


def patch(box, path: str, body, content_type="application/strategic-merge-patch+json"):
    return call(box, "PATCH", path, body, content_type)


def deployment(box, namespace: str, name: str) -> dict:
    return get(box, f"{APPS}/{namespace}/deployments/{name}")


def image(obj: dict) -> str:
    return obj["spec"]["template"]["spec"]["containers"][0]["image"]


def set_image(box, namespace: str, name: str, new_image: str, kind="deployments", annotations=None, **spec):
    container = (
        deployment(box, namespace, name) if kind == "deployments" else get(box, f"{APPS}/{namespace}/{kind}/{name}")
    )
    cname = container["spec"]["template"]["spec"]["containers"][0]["name"]
    body = {"spec": {"template": {"spec": {"containers": [{"name": cname, "image": new_image}]}}, **spec}}
    if annotations:
        body["metadata"] = {"annotations": annotations}
    return patch(box, f"{APPS}/{namespace}/{kind}/{name}", body)


def wait_for(predicate, timeout=15.0, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def progressing_reason(obj: dict) -> str | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == "Progressing":
            return cond.get("reason")
    return None


def deploy_bad(box, namespace="shop", name="api", tag="bad-2.3.0", deadline=2, annotations=None):
    """A bad image deployed with a short progress deadline; returns once the rollout is stuck
    (ProgressDeadlineExceeded)."""
    repo = image(deployment(box, namespace, name)).rsplit(":", 1)[0]
    set_image(box, namespace, name, f"{repo}:{tag}", annotations=annotations, progressDeadlineSeconds=deadline)
    return wait_for(
        lambda: (d := deployment(box, namespace, name)) and progressing_reason(d) == "ProgressDeadlineExceeded" and d,
        timeout=deadline + 10,
        what=f"{namespace}/{name} to exceed its progress deadline",
    )


def replicasets(box, namespace: str, owner_uid: str) -> dict[int, dict]:
    items = get(box, f"{APPS}/{namespace}/replicasets")["items"]
    found = {}
    for rs in items:
        if any(ref["uid"] == owner_uid for ref in rs["metadata"].get("ownerReferences") or []):
            found[int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"])] = rs
    return found


def result_of(run, task: str) -> dict:
    """The localhost result of ``task`` from a run with the json stdout callback."""
    data = json.loads(run.stdout[run.stdout.index("{") :])
    for play in data["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                return entry["hosts"]["localhost"]
    raise AssertionError(f"task {task!r} not in the output:\n{run.output[-3000:]}")
