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

No call waits for ever (``retry_budget``, the same option as the AWS steps): throttling (429), 5xx
answers, refused connections and timeouts are retried until the budget is spent, then the step fails
naming the call.  kubernetes' client sets no timeout of its own, and kubernetes.core's client reads
the API's version and groups while it is created, so without a bound a hung API server (an
overloaded control plane, a black-holed address) holds a step until the job is killed.  Each attempt
has a read timeout and, in the module's main thread, an alarm that ends it (``_deadline``); the
alarm also bounds the reads kubernetes.core makes while the client is created.
"""

from __future__ import annotations

import contextlib
import copy
import json
import signal
import threading
import time

from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    DEFAULT_RETRY_BUDGET,
    RETRY_BUDGET_OPTION,
    StepError,
    attempt_timeout,
    run_step,
)

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
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets", True),
}

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

# Answers worth one more try: throttled, or the apiserver briefly unavailable.
RETRY_STATUSES = (429, 500, 502, 503, 504)
CONNECT_TIMEOUT = 10
# A request that was sent and not answered may have been carried out: only reads are sent again.
RESEND_AFTER_NO_ANSWER = frozenset(("GET", "HEAD"))


class K8sStepError(StepError):
    """A Kubernetes call failed, or the step cannot complete. ``result`` goes into ``fail_json``, with the
    call's ``verb``, HTTP ``status`` and ``reason`` as ``k8s_verb``, ``k8s_status``, ``k8s_reason``."""

    def __init__(self, message, status=None, reason=None, verb=None, details=None, **result):
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.verb = verb
        self.details = details  # the API's Status ``details`` (``causes``...), for a step that reads them
        self.result = result

    def fail_result(self):
        call = {"k8s_verb": self.verb, "k8s_status": self.status, "k8s_reason": self.reason}
        return {**self.result, **call} if self.verb or self.status else dict(self.result)


class K8sInputError(K8sStepError):
    """The request names something that does not exist or may not be used; nothing was changed."""


class K8sWaitTimeout(K8sStepError):
    """The workload did not reach the wanted state in time."""


# The object a step acts on (documented by the firebreak.runbooks.step.K8S_OBJECT fragment).
K8S_OBJECT_OPTIONS = {"name": {"type": "str", "required": True}, "namespace": {"type": "str", "required": True}}


def auth_argument_spec(**extra) -> dict:
    """kubernetes.core's connection options, ``retry_budget``, and ``extra`` (the step's own options)."""
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(copy.deepcopy(RETRY_BUDGET_OPTION))
    spec.update(extra)
    return spec


def backoff_delay(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: 0.5, 1, 2, 4, then 5."""
    return min(5.0, 0.5 * 2 ** (attempt - 1))


class _NoAnswer(BaseException):
    """Raised by the alarm of ``_deadline``.  A BaseException, so that no library's ``except Exception``
    takes it for an error of its own and carries on."""


@contextlib.contextmanager
def _deadline(seconds):
    """End the block with ``_NoAnswer`` after ``seconds`` (SIGALRM).  Only the main thread gets signals:
    elsewhere (and where there is no ``setitimer``) the block runs unbounded, with its socket timeouts."""
    if seconds <= 0 or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def alarm(signum, frame):
        raise _NoAnswer()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _transport_problem(exc) -> str | None:
    """What a failed request's exception says about delivery: ``unsent`` (no connection was made),
    ``unanswered`` (sent, no answer in time), ``dropped`` (the connection broke), or ``None`` for what
    retrying cannot fix (TLS verification, a malformed address)."""
    import urllib3.exceptions as u

    if isinstance(exc, u.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, u.ConnectTimeoutError):  # NewConnectionError (refused, no route) is one too
        return "unsent"
    if isinstance(exc, (u.ReadTimeoutError, TimeoutError)):
        return "unanswered"
    if isinstance(exc, (u.ProtocolError, ConnectionError)):
        return "dropped"
    return None


def _one_try_per_request(k8s_client):
    """Turn off urllib3's own retries on the client's connection pool (3 by default, each with its own
    timeout, so one of our attempts could last four times its timeout), so that ``Kube.request`` alone
    decides what is sent again, and when.  A client without that pool is returned as it is."""
    rest = getattr(getattr(getattr(k8s_client, "client", None), "client", None), "rest_client", None)
    pool = getattr(rest, "pool_manager", None)
    if pool is not None and hasattr(pool, "connection_pool_kw"):
        pool.connection_pool_kw["retries"] = False
        pool.clear()  # pools made for discovery keep the retries they were made with
    return k8s_client


def _retry_after(exc) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    try:
        return float(headers.get("Retry-After"))
    except (TypeError, ValueError):
        return None


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

    def __init__(self, k8s_client, sleep=time.sleep, budget=DEFAULT_RETRY_BUDGET, clock=time.monotonic):
        self.k8s = k8s_client
        self.sleep = sleep
        self.clock = clock
        self.budget = check_budget(budget)
        self.calls = 0

    @classmethod
    def from_module(cls, module) -> Kube:
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
        from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException

        budget = check_budget(module.params.get("retry_budget"))
        # kubernetes.core reads the API's version and groups while it makes the client (unless its
        # discovery cache has them): one bounded attempt, which the budget may repeat.
        limit = attempt_timeout(budget)
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            began = time.monotonic()
            try:
                with _deadline(limit):
                    return cls(_one_try_per_request(get_api_client(module=module)), budget=budget)
            except _NoAnswer:
                problem = f"no answer from the Kubernetes API at {_api_host(module)} within {limit}s"
                retry = True
            except CoreException as e:
                raise K8sStepError(f"cannot create a Kubernetes client: {e}") from None
            except Exception as e:  # kubeconfig errors surface as assorted exceptions
                status = getattr(e, "status", None)
                problem = f"{type(e).__name__}: {e}"
                retry = status in RETRY_STATUSES or _transport_problem(e) is not None
            now = time.monotonic()
            elapsed = now - started
            if not retry or elapsed + backoff_delay(attempt) + (now - began) > budget:
                note = f" ({attempt} attempts in {elapsed:.0f}s; retry_budget {budget}s)" if attempt > 1 else ""
                raise K8sStepError(f"cannot create a Kubernetes client: {problem}{note}") from None
            time.sleep(backoff_delay(attempt))

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
        self,
        verb,
        kind,
        namespace=None,
        name=None,
        body=None,
        subresource=None,
        what=None,
        raw=False,
        retry_statuses=RETRY_STATUSES,
        **params,
    ):
        """One API request, retried within the budget; returns the decoded JSON (or text with ``raw``).

        ``retry_statuses``: the HTTP statuses retried (a step that handles 429 itself, such as an eviction a
        PodDisruptionBudget refuses, leaves it out).  Raises ``K8sStepError`` naming the verb, the object, the
        status and the reason, with the API's ``details``."""
        from kubernetes.client.exceptions import ApiException

        path = self.path(kind, namespace, name, subresource)
        what = what or describe(kind, namespace, name)
        limit = attempt_timeout(self.budget)
        start = self.clock()
        attempt = 0
        while True:
            attempt += 1
            self.calls += 1
            began = self.clock()
            # the first attempt gets the whole attempt timeout (a budget of 0 still makes one real attempt);
            # a later one no more than what is left of the budget
            remaining = max(1.0, start + self.budget - began)
            wait = min(limit, remaining) if attempt > 1 else limit
            try:
                with _deadline(wait + 1):  # the socket's own timeout first; the alarm for what it misses
                    resp = self.k8s.client.request(
                        verb,
                        path,
                        body=body,
                        serialize=False,
                        _request_timeout=(min(CONNECT_TIMEOUT, wait), wait),
                        **params,
                    )
            except ApiException as e:
                status = _status_body(e)
                reason = status.get("reason") or getattr(e, "reason", None)
                message = status.get("message") or getattr(e, "reason", "") or str(e)
                problem = f"{e.status} {reason}: {message}"
                retry = e.status in retry_statuses
                delay = _retry_after(e) if e.status == 429 else None
                error = {"status": e.status, "reason": reason, "details": status.get("details")}
            except _NoAnswer:
                problem, retry, delay, error = self._no_answer(verb, wait)
            except Exception as e:  # connection refused, TLS, DNS, timeouts: name the server
                kind_of = _transport_problem(e)
                if kind_of == "unanswered":
                    problem, retry, delay, error = self._no_answer(verb, wait)
                else:
                    problem = f"cannot reach the Kubernetes API at {self.host}: {e}"
                    # not sent: safe to send again; a broken connection only for reads
                    retry = kind_of == "unsent" or (kind_of == "dropped" and verb in RESEND_AFTER_NO_ANSWER)
                    delay, error = None, {}
            else:
                data = resp.data.decode("utf-8") if isinstance(resp.data, bytes) else resp.data
                if raw:
                    return data
                return json.loads(data) if data else {}
            now = self.clock()
            delay = min(10.0, delay) if delay is not None else backoff_delay(attempt)
            # no attempt that would end after the budget: allow for one more as long as this one
            if not retry or now + delay + (now - began) > start + self.budget:
                note = (
                    f" ({attempt} attempts in {now - start:.0f}s; retry_budget {self.budget}s)" if attempt > 1 else ""
                )
                raise K8sStepError(f"{verb} {what} failed: {problem}{note}", verb=verb, **error) from None
            self.sleep(delay)

    @property
    def host(self) -> str:
        return getattr(getattr(self.k8s, "configuration", None), "host", None) or "?"

    def _no_answer(self, verb, wait):
        problem = f"no answer from the Kubernetes API at {self.host} within {wait:g}s"
        if verb not in RESEND_AFTER_NO_ANSWER:
            # sent, not answered: it may have been carried out; re-running the step reads the state again
            problem += " (the request may have been carried out: re-run the step, it reads the state again)"
        return problem, verb in RESEND_AFTER_NO_ANSWER, None, {}

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
        items, token, asked = [], None, set()
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
            if token in asked:  # a continue token that comes round again: stop instead of listing for ever
                raise K8sStepError(
                    f"GET {describe(kind, namespace, None)} failed: the API answered a continue token already "
                    "listed; stopped instead of listing for ever"
                )
            asked.add(token)

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


def check_budget(budget) -> int:
    """``retry_budget`` as an int >= 0 (``None``: the default); ``K8sInputError`` naming a bad value."""
    if budget is None:
        return DEFAULT_RETRY_BUDGET
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise K8sInputError(f"retry_budget must be an integer >= 0, got {budget!r}")
    return budget


def _api_host(module) -> str:
    """The API server the module's options or kubeconfig name, for messages."""
    host = module.params.get("host")
    if host:
        return host
    try:
        import kubernetes.client

        return kubernetes.client.Configuration.get_default_copy().host or "?"
    except Exception:  # only for a message
        return "?"


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


def wait_for_rollout(kube, kind, namespace, name, timeout, since=None, poll=1.0):
    """Poll the workload until ``rollout_status`` says done or failed, or ``timeout`` passes.

    Returns ``(state, why, workload)``."""
    from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.rollout import rollout_status

    def check():
        obj = kube.get(kind, namespace, name)
        state, why = rollout_status(kind, obj, since)
        return state, why, obj

    return wait_until(check, timeout, poll)


def failing_pods(kube, workload, limit=10):
    """The workload's pods that are not ready, with their containers' waiting/terminated reasons."""
    from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.rollout import pod_problems, selector_string

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


def run_module(module, run, step_kind):
    """Run ``run(module)`` with ``step.run_step``: the result contract, and a ``K8sStepError`` fails the task
    with its message, the call's verb and status, and the partial result it carries."""
    run_step(module, lambda module, result: run(module), step_kind)
