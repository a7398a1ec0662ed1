# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the Kubernetes step modules share: the API layer on kubernetes.core's client, errors, waiting.

The modules take kubernetes.core's connection options (``AUTH_ARG_SPEC``, documented by the
``kubernetes.core.k8s_auth_options`` fragment) and build their client with kubernetes.core's
``get_api_client``, so kubeconfig, context, host/api_key, ``K8S_AUTH_*`` variables and
``module_defaults: group/firebreak.runbooks.k8s`` work as for kubernetes.core's own modules.

Requests go to the known paths of the kinds the steps touch (no discovery round trips), and every
failure becomes a ``K8sStepError`` whose message names the verb, the object and the API's reason;
a missing namespace or object becomes a ``K8sInputError`` naming the value.
"""

from __future__ import annotations

import copy
import datetime
import json
import time

try:
    from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
except ImportError:  # pragma: no cover - only without kubernetes.core
    AUTH_ARG_SPEC = {}

# kind -> (path prefix, plural, namespaced)
KINDS = {
    "Namespace": ("/api/v1", "namespaces", False),
    "Node": ("/api/v1", "nodes", False),
    "Pod": ("/api/v1", "pods", True),
    "Event": ("/api/v1", "events", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "Secret": ("/api/v1", "secrets", True),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "ReplicaSet": ("/apis/apps/v1", "replicasets", True),
    "StatefulSet": ("/apis/apps/v1", "statefulsets", True),
    "DaemonSet": ("/apis/apps/v1", "daemonsets", True),
    "ControllerRevision": ("/apis/apps/v1", "controllerrevisions", True),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers", True),
    # where autoscaling/v2 is not served (minReplicas/maxReplicas are the same fields)
    "HorizontalPodAutoscalerV1": ("/apis/autoscaling/v1", "horizontalpodautoscalers", True),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies", True),
}

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

# Answers worth one more try: throttled, or the apiserver briefly unavailable.
RETRY_STATUSES = (429, 500, 502, 503, 504)
RETRY_ATTEMPTS = 4


class K8sStepError(Exception):
    """A Kubernetes call failed, or the step cannot complete. ``result`` goes into ``fail_json``."""

    def __init__(self, message, status=None, reason=None, **result):
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.result = result


class K8sInputError(K8sStepError):
    """The request names something that does not exist or may not be used; nothing was changed."""


class K8sWaitTimeout(K8sStepError):
    """The workload did not reach the wanted state in time."""


def auth_argument_spec(**extra) -> dict:
    """kubernetes.core's connection options plus ``extra`` (the step's own options)."""
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(extra)
    return spec


def escape_pointer(key: str) -> str:
    """A JSON pointer token for ``key`` (RFC 6901: ``~`` -> ``~0``, ``/`` -> ``~1``)."""
    return str(key).replace("~", "~0").replace("/", "~1")


def describe(kind: str, namespace: str | None, name: str | None) -> str:
    if name and namespace:
        return f"{kind} {namespace}/{name}"
    if name:
        return f"{kind} {name}"
    if namespace:
        return f"{kind}s in namespace {namespace!r}"
    return f"{kind}s"


def _status_body(exc) -> dict:
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        return json.loads(body) if body else {}
    except ValueError:
        return {"message": str(body)[:300]}


class Kube:
    """Calls to the Kubernetes API through kubernetes.core's client (``K8SClient``)."""

    def __init__(self, k8s_client, sleep=time.sleep):
        self.k8s = k8s_client
        self.sleep = sleep
        self.calls = 0

    @classmethod
    def from_module(cls, module) -> Kube:
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException

        try:
            return cls(get_api_client(module=module))
        except CoreException as e:
            raise K8sStepError(f"cannot create a Kubernetes client: {e}") from None
        except Exception as e:  # kubeconfig errors surface as assorted exceptions
            raise K8sStepError(f"cannot create a Kubernetes client: {type(e).__name__}: {e}") from None

    @staticmethod
    def path(kind: str, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        prefix, plural, namespaced = KINDS[kind]
        path = prefix
        if namespaced and namespace:
            path += f"/namespaces/{namespace}"
        path += f"/{plural}"
        if name:
            path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
        return path

    def request(
        self, verb, kind, namespace=None, name=None, body=None, subresource=None, what=None, raw=False, **params
    ):
        """One API request; returns the decoded JSON (or text with ``raw``). Raises ``K8sStepError``."""
        from kubernetes.client.exceptions import ApiException

        path = self.path(kind, namespace, name, subresource)
        what = what or describe(kind, namespace, name)
        for attempt in range(1, RETRY_ATTEMPTS + 1):
            self.calls += 1
            try:
                resp = self.k8s.client.request(verb, path, body=body, serialize=False, **params)
            except ApiException as e:
                if e.status in RETRY_STATUSES and attempt < RETRY_ATTEMPTS:
                    self.sleep(0.5 * attempt)
                    continue
                status = _status_body(e)
                reason = status.get("reason") or getattr(e, "reason", None)
                message = status.get("message") or getattr(e, "reason", "") or str(e)
                raise K8sStepError(
                    f"{verb} {what} failed: {e.status} {reason}: {message}", status=e.status, reason=reason
                ) from None
            except Exception as e:  # connection refused, TLS, DNS: name the server
                host = getattr(getattr(self.k8s, "configuration", None), "host", "?")
                raise K8sStepError(f"{verb} {what} failed: cannot reach the Kubernetes API at {host}: {e}") from None
            data = resp.data.decode("utf-8") if isinstance(resp.data, bytes) else resp.data
            if raw:
                return data
            return json.loads(data) if data else {}
        raise AssertionError("unreachable")  # pragma: no cover

    # -- reads ---------------------------------------------------------------------------------------
    def get(self, kind, namespace, name, missing_ok=False):
        try:
            return self.request("GET", kind, namespace, name)
        except K8sStepError as e:
            if e.status == 404:
                if missing_ok:
                    return None
                where = f" in namespace {namespace!r}" if namespace and KINDS[kind][2] else ""
                raise K8sInputError(f"{kind} {name!r} not found{where}", status=404) from None
            raise

    def list(self, kind, namespace=None, label_selector=None, field_selector=None, limit=None):
        params = {}
        if label_selector:
            params["label_selector"] = label_selector
        if field_selector:
            params["field_selector"] = field_selector
        items, token = [], None
        while True:
            page_params = dict(params)
            if limit:
                page_params["limit"] = limit
            if token:
                page_params["_continue"] = token
            page = self.request("GET", kind, namespace, **page_params)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    def namespace(self, name):
        """The Namespace ``name``; ``K8sInputError`` naming it when it does not exist."""
        found = self.get("Namespace", None, name, missing_ok=True)
        if found is None:
            raise K8sInputError(f"namespace {name!r} does not exist", status=404)
        return found

    # -- writes --------------------------------------------------------------------------------------
    def patch(self, kind, namespace, name, body, content_type=STRATEGIC_MERGE_PATCH, subresource=None, dry_run=False):
        params = {"content_type": content_type}
        if dry_run:
            params["dry_run"] = "All"
        return self.request("PATCH", kind, namespace, name, body=body, subresource=subresource, **params)

    def create(self, kind, namespace, body, dry_run=False):
        params = {"dry_run": "All"} if dry_run else {}
        return self.request(
            "POST", kind, namespace, body=body, what=f"create {kind} {body['metadata']['name']}", **params
        )

    def delete(self, kind, namespace, name, dry_run=False):
        params = {"dry_run": "All"} if dry_run else {}
        return self.request("DELETE", kind, namespace, name, **params)


def wait_until(check, timeout, poll=1.0, clock=time.monotonic, sleep=time.sleep):
    """Call ``check()`` until it returns ``(state, why, value)`` with state ``done`` or ``failed``.

    Returns ``(state, why, value)``; ``state`` is ``timeout`` when ``timeout`` seconds passed first.
    """
    deadline = clock() + max(0, timeout)
    state, why, value = check()
    while state not in ("done", "failed"):
        if clock() >= deadline:
            return "timeout", why, value
        sleep(min(poll, max(0.05, deadline - clock())))
        state, why, value = check()
    return state, why, value


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def iso(value: datetime.datetime) -> str:
    """``2026-11-24T13:30:00Z`` (whole seconds, as Kubernetes timestamps)."""
    return value.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def wait_for_rollout(kube, kind, namespace, name, timeout, since=None, poll=1.0):
    """Poll the workload until ``rollout_status`` says done or failed, or ``timeout`` passes.

    Returns ``(state, why, workload)``."""
    from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s_rollout import rollout_status

    def check():
        obj = kube.get(kind, namespace, name)
        state, why = rollout_status(kind, obj, since)
        return state, why, obj

    return wait_until(check, timeout, poll)


def failing_pods(kube, workload, limit=10):
    """The workload's pods that are not ready, with their containers' waiting/terminated reasons."""
    from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s_rollout import pod_problems, selector_string

    selector = selector_string(workload["spec"].get("selector"))
    pods = kube.list("Pod", workload["metadata"]["namespace"], label_selector=selector)
    return pod_problems(pods, limit)


def rollout_failure(label, action, state, why, pods, timeout, **result):
    """The ``K8sStepError`` for a rollout that failed or timed out, naming the stuck pods' reasons."""
    ended = "failed" if state == "failed" else f"did not complete within {timeout}s"
    text = "; ".join(f"{p['name']}: {', '.join(p['reasons']) or p['phase']}" for p in pods)
    return K8sWaitTimeout(
        f"{action} {label}, but the rollout {ended}: {why}" + (f"; pods not ready: {text}" if text else ""),
        pods=pods,
        **result,
    )


def run_module(module, run):
    """Run ``run(module)``; a ``K8sStepError`` fails the task with its message and partial result."""
    try:
        result = run(module)
    except K8sStepError as e:
        module.fail_json(msg=e.message, **{"changed": False, **e.result})
    module.exit_json(**result)
