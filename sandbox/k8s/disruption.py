"""PodDisruptionBudgets: the disruption controller and the ``pods/eviction`` subresource.

Modelled on kube-controller-manager's ``pkg/controller/disruption`` (disruption.go) and the apiserver's
``pkg/registry/core/pod/storage/eviction.go``, as the Kubernetes documentation describes them
("Specifying a Disruption Budget for your Application", "API-initiated Eviction"):

- The controller keeps each budget's ``status``: ``expectedPods``, ``desiredHealthy``, ``currentHealthy`` (Ready
  pods matching the selector, not being deleted and not in ``disruptedPods``), ``disruptionsAllowed`` =
  ``currentHealthy - desiredHealthy`` (never below 0), ``disruptedPods`` (evictions not yet observed, dropped when
  the pod is gone or after 2 minutes), ``observedGeneration`` and the condition ``DisruptionAllowed``
  (``SufficientPods``, ``InsufficientPods``, ``SyncFailed``).  An integer ``minAvailable`` counts the matching
  pods; a percentage or ``maxUnavailable`` needs the scale of the pods' controllers (Deployment through its
  ReplicaSet, ReplicaSet, StatefulSet), and a pod without one fails the sync (``disruptionsAllowed`` 0).
  A null selector selects no pod, an empty one every pod of the namespace (policy/v1).
- An eviction (``POST .../pods/NAME/eviction`` with a ``policy/v1`` ``Eviction``) deletes the pod when no budget
  selects it, when it is not running yet or has ended (``Pending``, ``Succeeded``, ``Failed``), or when it is not
  Ready and its budget's ``unhealthyPodEvictionPolicy`` is ``AlwaysAllow`` (or, by default ``IfHealthyBudget``,
  the budget has its desired healthy pods).  Otherwise the budget must allow a disruption: it is decremented and
  the pod recorded in ``disruptedPods`` before the pod is deleted; with none allowed the answer is
  ``429 TooManyRequests`` "Cannot evict pod as it would violate the pod's disruption budget." with the cause
  ``DisruptionBudget`` "The disruption budget NAME needs N healthy pods and has M currently" (and while the
  controller has not observed the budget's generation, "... is still being processed by the server.").  A pod
  that more than one budget selects answers ``500`` "This pod has more than one PodDisruptionBudget, which the
  eviction subresource does not support."
"""

from __future__ import annotations

import calendar
import copy
import re
import time

from .resources import BY_KIND
from .selectors import SelectorError, selector_from_label_selector
from .store import ApiError, bad_request, not_found, now_iso

PDB = BY_KIND[("policy/v1", "PodDisruptionBudget")]
POD = BY_KIND[("v1", "Pod")]
REPLICASET = BY_KIND[("apps/v1", "ReplicaSet")]
DEPLOYMENT = BY_KIND[("apps/v1", "Deployment")]
STATEFULSET = BY_KIND[("apps/v1", "StatefulSet")]
DELETION_TIMEOUT = 120.0  # seconds an eviction stays in disruptedPods without the pod going (DeletionTimeout)
MAX_DISRUPTED_PODS = 2000
_PERCENT = re.compile(r"^[0-9]+%$")
POLICIES = ("IfHealthyBudget", "AlwaysAllow")


# ------------------------------------------------------------------------------------------------ validation
def validate(spec: dict, causes: list) -> None:
    """``ValidatePodDisruptionBudgetSpec``: minAvailable xor maxUnavailable, each a non-negative int or a
    percentage of at most 100%, a valid selector, a known unhealthyPodEvictionPolicy."""
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        causes.append(
            ("FieldValueInvalid", "spec", "Invalid value: minAvailable and maxUnavailable cannot be both set")
        )
    for key in ("minAvailable", "maxUnavailable"):
        value = spec.get(key)
        if value is None:
            continue
        path = f"spec.{key}"
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            causes.append(("FieldValueInvalid", path, f"Invalid value: {value!r}: must be an integer or percentage"))
        elif isinstance(value, int) and value < 0:
            causes.append(("FieldValueInvalid", path, f"Invalid value: {value}: must be greater than or equal to 0"))
        elif isinstance(value, str) and not _PERCENT.match(value):
            causes.append(
                (
                    "FieldValueInvalid",
                    path,
                    f"Invalid value: {value!r}: a valid percent string must be a numeric string followed by an "
                    "ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                )
            )
        elif isinstance(value, str) and int(value[:-1]) > 100:
            causes.append(("FieldValueInvalid", path, f"Invalid value: {value!r}: must not be greater than 100%"))
    try:
        selector_from_label_selector(spec.get("selector"))
    except (SelectorError, AttributeError, TypeError) as exc:
        causes.append(("FieldValueInvalid", "spec.selector", f"Invalid value: {exc}"))
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in POLICIES:
        causes.append(
            (
                "FieldValueNotSupported",
                "spec.unhealthyPodEvictionPolicy",
                f'Unsupported value: "{policy}": supported values: "AlwaysAllow", "IfHealthyBudget"',
            )
        )


# ------------------------------------------------------------------------------------------------ helpers
def _ready(pod: dict) -> bool:
    cond = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    return bool(cond and cond.get("status") == "True")


def selects(pdb: dict, pod: dict) -> bool:
    """policy/v1: a null selector selects nothing, an empty one every pod of the namespace."""
    selector = (pdb.get("spec") or {}).get("selector")
    if selector is None:
        return False
    try:
        return selector_from_label_selector(selector)(pod["metadata"].get("labels") or {})
    except (SelectorError, AttributeError, TypeError):
        return False


def budgets_for(store, pod: dict) -> list[dict]:
    namespace = pod["metadata"]["namespace"]
    return [pdb for (ns, _), pdb in sorted(store.objects[PDB].items()) if ns == namespace and selects(pdb, pod)]


def _controller_ref(obj: dict) -> dict | None:
    return next((ref for ref in obj["metadata"].get("ownerReferences") or [] if ref.get("controller")), None)


def _expected_scale(store, pods: list[dict]) -> tuple[int | None, str]:
    """``getExpectedScale``: the sum of the scale of the pods' controllers, each counted once; ``(None, why)``
    when a pod has no controller with a scale."""
    scales: dict[str, int] = {}
    for pod in pods:
        ref = _controller_ref(pod)
        if ref is None:
            return None, f"found no controller ref for pod {pod['metadata']['name']!r}"
        namespace = pod["metadata"]["namespace"]
        owner, replicas = None, None
        if ref.get("kind") == "ReplicaSet":
            rs = store.lookup(REPLICASET, namespace, ref["name"])
            if rs is not None and rs["metadata"]["uid"] == ref.get("uid"):
                owner, replicas = rs, rs["spec"].get("replicas", 1)
                parent = _controller_ref(rs)
                if parent is not None and parent.get("kind") == "Deployment":
                    deployment = store.lookup(DEPLOYMENT, namespace, parent["name"])
                    if deployment is not None and deployment["metadata"]["uid"] == parent.get("uid"):
                        owner, replicas = deployment, deployment["spec"].get("replicas", 1)
        elif ref.get("kind") == "StatefulSet":
            sts = store.lookup(STATEFULSET, namespace, ref["name"])
            if sts is not None and sts["metadata"]["uid"] == ref.get("uid"):
                owner, replicas = sts, sts["spec"].get("replicas", 1)
        if owner is None:
            return None, f"found no controllers for pod {pod['metadata']['name']!r}"
        scales[owner["metadata"]["uid"]] = replicas
    return sum(scales.values()), ""


def _scaled(value: int | str, total: int) -> int:
    if isinstance(value, int):
        return value
    whole, rest = divmod(int(value[:-1]) * total, 100)
    return whole + (1 if rest else 0)  # GetScaledValueFromIntOrPercent(..., roundUp=true)


def _condition(status: str, reason: str, previous: dict, generation: int) -> dict:
    old = next((c for c in previous.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None)
    ts = old["lastTransitionTime"] if old and old.get("status") == status else now_iso()
    return {
        "type": "DisruptionAllowed",
        "status": status,
        "reason": reason,
        "message": "",
        "lastTransitionTime": ts,
        "observedGeneration": generation,
    }


def budget_status(store, pdb: dict, now: float) -> dict:
    """The status the disruption controller computes for ``pdb`` now."""
    namespace = pdb["metadata"]["namespace"]
    spec = pdb.get("spec") or {}
    previous = pdb.get("status") or {}
    generation = pdb["metadata"].get("generation", 1)
    pods = [pod for (ns, _), pod in sorted(store.objects[POD].items()) if ns == namespace and selects(pdb, pod)]
    present = {pod["metadata"]["name"] for pod in pods if not pod["metadata"].get("deletionTimestamp")}
    disrupted = {}
    for name, at in (previous.get("disruptedPods") or {}).items():
        if name in present and now - _epoch(at) < DELETION_TIMEOUT:
            disrupted[name] = at
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    failure = ""
    if max_unavailable is not None:
        expected, failure = _expected_scale(store, pods)
        if expected is not None:
            desired = max(0, expected - _scaled(max_unavailable, expected))
    elif isinstance(min_available, int):
        expected, desired = len(pods), min_available
    elif isinstance(min_available, str):
        expected, failure = _expected_scale(store, pods)
        if expected is not None:
            desired = _scaled(min_available, expected)
    else:  # neither set: the controller's counts stay 0, so every healthy pod may be disrupted
        expected, desired = 0, 0
    healthy = sum(
        1
        for pod in pods
        if not pod["metadata"].get("deletionTimestamp") and pod["metadata"]["name"] not in disrupted and _ready(pod)
    )
    if expected is None:  # failSafe: no disruption allowed while the budget cannot be computed
        return {
            **{k: v for k, v in previous.items() if k != "conditions"},
            "observedGeneration": generation,
            "disruptionsAllowed": 0,
            "currentHealthy": healthy,
            "desiredHealthy": previous.get("desiredHealthy", 0),
            "expectedPods": previous.get("expectedPods", 0),
            "conditions": [{**_condition("False", "SyncFailed", previous, generation), "message": failure}],
        }
    allowed = max(0, healthy - desired)
    status = {
        "observedGeneration": generation,
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": [
            _condition(
                "True" if allowed > 0 else "False",
                "SufficientPods" if allowed > 0 else "InsufficientPods",
                previous,
                generation,
            )
        ],
    }
    if disrupted:
        status["disruptedPods"] = disrupted
    return status


def _epoch(value: str) -> float:
    try:
        return float(calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ")))
    except (TypeError, ValueError):
        return 0.0


# ------------------------------------------------------------------------------------------------ controller
def sync_disruption_budgets(c) -> None:
    """The disruption controller: every budget's status, written only when it changes."""
    now = time.time()
    for pdb in c._objects(PDB):
        status = budget_status(c.store, pdb, now)
        if status != (pdb.get("status") or {}):
            c.store.write(PDB, {**pdb, "status": status})


# ------------------------------------------------------------------------------------------------ eviction
def _too_many_requests(message: str, cause: str) -> ApiError:
    return ApiError(
        429,
        "TooManyRequests",
        message,
        {"causes": [{"reason": "DisruptionBudget", "message": cause}], "retryAfterSeconds": 0},
    )


def evict(store, namespace: str, name: str, body: dict, dry_run: bool) -> dict:
    """``POST pods/NAME/eviction``: the pod deleted when its budget allows it (see the module docstring)."""
    if not isinstance(body, dict):
        raise bad_request("the body of the request was in an unknown format: an Eviction is an object")
    kind = body.get("kind")
    if kind not in (None, "Eviction") or body.get("apiVersion") not in (None, "policy/v1", "policy/v1beta1"):
        raise bad_request(f"expected an Eviction (policy/v1), got {body.get('apiVersion')}/{kind}")
    meta = body.get("metadata") or {}
    if meta.get("name") and meta["name"] != name:
        raise bad_request("name in URL does not match name in Eviction object")
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise bad_request("namespace in URL does not match namespace in Eviction object")
    options = body.get("deleteOptions") or {}
    with store.lock:
        pod = store.lookup(POD, namespace, name)
        if pod is None:
            raise not_found(POD, name)
        phase = (pod.get("status") or {}).get("phase")
        ignore_budget = phase in ("Succeeded", "Failed", "Pending") or bool(pod["metadata"].get("deletionTimestamp"))
        if not ignore_budget:
            budgets = budgets_for(store, pod)
            if len(budgets) > 1:
                raise ApiError(
                    500,
                    "InternalError",
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                )
            if budgets:
                _take_disruption(store, budgets[0], pod, dry_run)
        store.delete(POD, namespace, name, options, dry_run)
        store.wakeup.set()
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}


def _take_disruption(store, pdb: dict, pod: dict, dry_run: bool) -> None:
    """``checkAndDecrement``, after the unhealthy-pod policy: raises 429/403, or records the disruption."""
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
    if not _ready(pod):
        policy = spec.get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
        healthy, desired = status.get("currentHealthy", 0), status.get("desiredHealthy", 0)
        if policy == "AlwaysAllow" or (healthy >= desired and desired > 0):
            return
    name = pdb["metadata"]["name"]
    if status.get("observedGeneration", 0) < pdb["metadata"].get("generation", 1):
        raise _too_many_requests(
            "Cannot evict pod as it would violate the pod's disruption budget.",
            f"The disruption budget {name} is still being processed by the server.",
        )
    allowed = status.get("disruptionsAllowed", 0)
    if allowed < 0:
        raise ApiError(403, "Forbidden", f'poddisruptionbudgets.policy "{name}" is forbidden: pdb disruptions '
                       "allowed is negative")  # fmt: skip
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        raise ApiError(
            403,
            "Forbidden",
            f'poddisruptionbudgets.policy "{name}" is forbidden: DisruptedPods map too big - too many evictions not '
            "confirmed by PDB controller",
        )
    if allowed == 0:
        raise _too_many_requests(
            "Cannot evict pod as it would violate the pod's disruption budget.",
            f"The disruption budget {name} needs {status.get('desiredHealthy', 0)} healthy pods and has "
            f"{status.get('currentHealthy', 0)} currently",
        )
    if dry_run:
        return
    updated = copy.deepcopy(pdb)
    new_status = updated.setdefault("status", {})
    new_status["disruptionsAllowed"] = allowed - 1
    new_status.setdefault("disruptedPods", {})[pod["metadata"]["name"]] = now_iso()
    if allowed - 1 == 0:
        new_status["conditions"] = [
            _condition("False", "InsufficientPods", status, pdb["metadata"].get("generation", 1))
        ]
    store.write(PDB, updated)
