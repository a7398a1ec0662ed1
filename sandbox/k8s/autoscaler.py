"""The HorizontalPodAutoscaler controller, modelled on ``pkg/controller/podautoscaler`` (horizontal.go).

Every ``hpa_sync_period`` seconds (a real controller's 15 s) each HPA reads its target's ``scale``:

- a target scaled to 0 disables autoscaling (ScalingActive False, ScalingDisabled);
- replicas above ``maxReplicas`` or below ``minReplicas`` are brought back within them, metrics or not
  (Event SuccessfulRescale ``New size: N; reason: Current number of replicas below Spec.MinReplicas``);
- otherwise a CPU ``Utilization`` metric uses the utilization set with ``KubeServer.set_cpu_utilization``
  (the metrics API's answer): ``ceil(replicas * utilization / target)`` outside a 10 % tolerance, clamped
  to min/max (ScalingLimited TooManyReplicas at the maximum: saturation). Without one, the metrics API has
  nothing (ScalingActive False, FailedGetResourceMetric) and the replicas stay. Scale-downs from metrics
  wait for the scale-down stabilization window (``behavior.scaleDown.stabilizationWindowSeconds``, default
  300 s), so in practice only an explicit 0 window scales down.
"""

from __future__ import annotations

import copy
import math
import time

from .resources import BY_KIND
from .store import now_iso

HPA_V2 = BY_KIND[("autoscaling/v2", "HorizontalPodAutoscaler")]
HPA_V1 = BY_KIND[("autoscaling/v1", "HorizontalPodAutoscaler")]
TOLERANCE = 0.1
SCALABLE = {
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "ReplicaSet"),
}


def _cond(ctype: str, status: str, reason: str, message: str, previous: dict) -> dict:
    old = next((c for c in previous.get("conditions") or [] if c["type"] == ctype), None)
    ts = old["lastTransitionTime"] if old and old["status"] == status else now_iso()
    return {"type": ctype, "status": status, "lastTransitionTime": ts, "reason": reason, "message": message}


def _cpu_target(hpa: dict, v1: bool) -> int | None:
    if v1:
        return hpa["spec"].get("targetCPUUtilizationPercentage")
    for metric in hpa["spec"].get("metrics") or []:
        resource = metric.get("resource") or {}
        target = resource.get("target") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu" and target.get("type") == "Utilization":
            return target.get("averageUtilization")
    return None


def sync_autoscalers(c) -> None:
    now = time.time()
    for rtype, v1 in ((HPA_V2, False), (HPA_V1, True)):
        for hpa in c._objects(rtype):
            uid = hpa["metadata"]["uid"]
            if now - c.hpa_synced.get(uid, 0) < c.hpa_sync_period and not c.instant:
                continue
            c.hpa_synced[uid] = now
            _sync(c, rtype, hpa, v1, now)


def _sync(c, rtype, hpa: dict, v1: bool, now: float) -> None:
    spec, previous = hpa["spec"], hpa.get("status") or {}
    namespace = hpa["metadata"]["namespace"]
    ref = spec.get("scaleTargetRef") or {}
    minimum, maximum = spec.get("minReplicas", 1), spec.get("maxReplicas", 1)
    target_type = BY_KIND.get((ref.get("apiVersion", ""), ref.get("kind", "")))
    target = c.store.lookup(target_type, namespace, ref.get("name", "")) if target_type else None
    status = {
        "currentReplicas": 0,
        "desiredReplicas": 0,
        **({"lastScaleTime": previous["lastScaleTime"]} if previous.get("lastScaleTime") else {}),
    }
    if not v1:
        status["observedGeneration"] = hpa["metadata"].get("generation", 1)
    if target is None or (ref.get("apiVersion"), ref.get("kind")) not in SCALABLE:
        what = f'{(target_type.group_resource if target_type else ref.get("kind", "").lower())} "{ref.get("name")}"'
        message = f"the HPA controller was unable to get the target's current scale: {what} not found"
        c.record_event(hpa, "FailedGetScale", message.split(": ", 1)[1], "Warning", "horizontal-pod-autoscaler")
        status["conditions"] = [_cond("AbleToScale", "False", "FailedGetScale", message, previous)]
        return _write(c, rtype, hpa, status, v1)
    current = target["spec"].get("replicas", 1)
    status["currentReplicas"] = (target.get("status") or {}).get("replicas", 0)
    conditions = []
    desired, reason = current, ""
    active = _cond("ScalingActive", "True", "ValidMetricFound", "", previous)
    if current == 0 and minimum != 0:
        active = _cond(
            "ScalingActive",
            "False",
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
            previous,
        )
        desired = 0
    elif current > maximum:
        desired, reason = maximum, "Current number of replicas above Spec.MaxReplicas"
    elif current < minimum:
        desired, reason = minimum, "Current number of replicas below Spec.MinReplicas"
    else:
        target_util = _cpu_target(hpa, v1)
        utilization = c.cpu_utilization.get((namespace, ref.get("name")))
        if target_util is None or utilization is None:
            message = (
                "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get "
                "metrics for resource cpu: no metrics returned from resource metrics API"
            )
            active = _cond("ScalingActive", "False", "FailedGetResourceMetric", message, previous)
            c.record_event(
                hpa, "FailedGetResourceMetric", message.split(": ", 1)[1], "Warning", "horizontal-pod-autoscaler"
            )
        else:
            active["message"] = (
                "the HPA was able to successfully calculate a replica count from cpu resource utilization "
                "(percentage of request)"
            )
            ratio = utilization / target_util
            proposed = current if abs(1 - ratio) <= TOLERANCE else math.ceil(ratio * current)
            window = ((spec.get("behavior") or {}).get("scaleDown") or {}).get("stabilizationWindowSeconds", 300)
            if proposed < current and (v1 or window):
                proposed = current
            clamped = max(minimum, min(maximum, proposed))
            if clamped != current:
                direction = "above" if clamped > current else "below"
                desired, reason = clamped, f"cpu resource utilization (percentage of request) {direction} target"
            limited = proposed > maximum or proposed < minimum
            if not v1:
                status["currentMetrics"] = [
                    {
                        "type": "Resource",
                        "resource": {"name": "cpu", "current": {"averageUtilization": utilization}},
                    }
                ]
            else:
                status["currentCPUUtilizationPercentage"] = utilization
            if limited:
                conditions.append(
                    _cond(
                        "ScalingLimited",
                        "True",
                        "TooManyReplicas" if proposed > maximum else "TooFewReplicas",
                        "the desired replica count is more than the maximum replica count"
                        if proposed > maximum
                        else "the desired replica count is less than the minimum replica count",
                        previous,
                    )
                )
    if desired != current and reason:
        updated = copy.deepcopy(target)
        updated["spec"]["replicas"] = desired
        c.store.update(target_type, namespace, target["metadata"]["name"], updated, manager="kube-controller-manager")
        c.record_event(
            hpa, "SuccessfulRescale", f"New size: {desired}; reason: {reason}", component="horizontal-pod-autoscaler"
        )
        status["lastScaleTime"] = now_iso(now)
        able = _cond(
            "AbleToScale",
            "True",
            "SucceededRescale",
            f"the HPA controller was able to update the target scale to {desired}",
            previous,
        )
        if "below Spec.MinReplicas" in reason or "above Spec.MaxReplicas" in reason:
            conditions.append(
                _cond(
                    "ScalingLimited",
                    "True",
                    "TooFewReplicas" if "MinReplicas" in reason else "TooManyReplicas",
                    "the desired replica count is less than the minimum replica count"
                    if "MinReplicas" in reason
                    else "the desired replica count is more than the maximum replica count",
                    previous,
                )
            )
    else:
        able = _cond("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size", previous)
    if not any(cond["type"] == "ScalingLimited" for cond in conditions):
        conditions.append(
            _cond(
                "ScalingLimited",
                "False",
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
                previous,
            )
        )
    status["desiredReplicas"] = desired
    status["conditions"] = [able, active, *conditions]
    _write(c, rtype, hpa, status, v1)


def _write(c, rtype, hpa: dict, status: dict, v1: bool) -> None:
    if v1:  # autoscaling/v1 keeps the conditions in an annotation
        status.pop("conditions", None)
    current = c.store.lookup(rtype, hpa["metadata"]["namespace"], hpa["metadata"]["name"])
    if current is not None and current.get("status") != status:
        c.store.write(rtype, {**current, "metadata": dict(current["metadata"]), "status": status})
