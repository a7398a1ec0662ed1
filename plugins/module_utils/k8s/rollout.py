# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Rollout undo, restart and status: pure decisions (no API calls), unit-tested without a cluster.

Modelled on ``kubectl rollout undo|restart|status`` (``k8s.io/kubectl/pkg/polymorphichelpers``):

* history: a Deployment's ReplicaSets, or a StatefulSet's / DaemonSet's ControllerRevisions, that the
  workload OWNS (controller ownerReference with its uid) and that match its FULL selector, so two
  workloads sharing a label key never see each other's history (``kubernetes.core.k8s_rollback``
  lists by label keys only);
* the previous revision is the highest one below the current one, so a history with gaps
  (``revisionHistoryLimit``) works; ``to_revision`` must be one that exists;
* the patch replaces the pod template only (without ``pod-template-hash``), keeps the workload's own
  annotations, copies the change-cause annotations kubectl copies, and records the rollback under
  ``firebreak.io/rolled-back-*`` so a re-run on the recorded target is a no-op;
* a rollout is complete as ``kubectl rollout status`` says, plus, for a Deployment with a progress
  deadline, the ``Progressing`` condition's reason ``NewReplicaSetAvailable``.
"""

from __future__ import annotations

import copy
import datetime

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
HASH_LABEL = "pod-template-hash"
CR_HASH_LABEL = "controller.kubernetes.io/hash"
POD_REVISION_LABEL = "controller-revision-hash"
CHANGE_CAUSE = "kubernetes.io/change-cause"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# kubectl's annotationsToSkip: never copied from a ReplicaSet onto the Deployment.
ANNOTATIONS_TO_SKIP = frozenset(
    (
        LAST_APPLIED,
        REVISION,
        REVISION_HISTORY,
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    )
)
MARK_PREFIX = "firebreak.io/"
MARK_FROM = "firebreak.io/rolled-back-from"
MARK_TO = "firebreak.io/rolled-back-to"
MARK_TO_HASH = "firebreak.io/rolled-back-to-hash"
MARK_AT = "firebreak.io/rolled-back-at"

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


class RolloutInputError(ValueError):
    """Nothing can be done as asked (no earlier revision, paused, unknown revision); nothing changed."""


# --------------------------------------------------------------------------------------------------
# Selectors and ownership
# --------------------------------------------------------------------------------------------------


def selector_string(selector: dict | None) -> str:
    """A ``labelSelector`` query for a LabelSelector (matchLabels and matchExpressions)."""
    selector = selector or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), sorted(expr.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise ValueError(f"unknown selector operator {op!r} for key {key!r}")
    return ",".join(parts)


def selector_matches(selector: dict | None, labels: dict | None) -> bool:
    """Whether ``labels`` match the LabelSelector (an empty selector matches nothing, as for workloads)."""
    selector = selector or {}
    labels = labels or {}
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return False
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expr in expressions:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def owned_by(obj: dict, uid: str) -> bool:
    """Whether ``obj`` has a controller ownerReference to ``uid``."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("uid") == uid and ref.get("controller", False):
            return True
    return False


# --------------------------------------------------------------------------------------------------
# Templates and history
# --------------------------------------------------------------------------------------------------


def images(template: dict | None) -> list[str]:
    """``["name=image", ...]`` of a pod template's init containers and containers, in order."""
    spec = (template or {}).get("spec") or {}
    found = []
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            found.append(f"{container.get('name')}={container.get('image')}")
    return found


def strip_hash(template: dict | None) -> dict:
    """A copy of a ReplicaSet's pod template without the ``pod-template-hash`` label (as kubectl)."""
    template = copy.deepcopy(template or {})
    labels = (template.get("metadata") or {}).get("labels")
    if labels is not None:
        labels.pop(HASH_LABEL, None)
    return template


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def deployment_history(deployment: dict, replicasets: list[dict]) -> list[dict]:
    """The Deployment's revisions, oldest first: ReplicaSets it owns (uid) that match its full selector.

    Each entry: ``revision``, ``name``, ``hash``, ``template`` (without the hash label), ``images``,
    ``change_cause``, ``annotations``, ``replicas``. ReplicaSets without a revision are skipped.
    """
    uid = deployment["metadata"]["uid"]
    selector = deployment["spec"].get("selector")
    history = []
    for rs in replicasets:
        meta = rs.get("metadata") or {}
        template = (rs.get("spec") or {}).get("template") or {}
        if not owned_by(rs, uid) or not selector_matches(selector, (template.get("metadata") or {}).get("labels")):
            continue
        annotations = meta.get("annotations") or {}
        revision = _int(annotations.get(REVISION))
        if revision is None:
            continue
        history.append(
            {
                "revision": revision,
                "name": meta.get("name"),
                "hash": ((template.get("metadata") or {}).get("labels") or {}).get(HASH_LABEL)
                or (meta.get("labels") or {}).get(HASH_LABEL),
                "template": strip_hash(template),
                "images": images(template),
                "change_cause": annotations.get(CHANGE_CAUSE),
                "annotations": dict(annotations),
                "replicas": (rs.get("spec") or {}).get("replicas", 0),
            }
        )
    return sorted(history, key=lambda e: e["revision"])


def revision_template(controller_revision: dict) -> dict:
    """The pod template stored in a ControllerRevision's ``data`` (``$patch: replace`` removed)."""
    data = controller_revision.get("data") or {}
    template = copy.deepcopy(((data.get("spec") or {}).get("template")) or {})
    template.pop("$patch", None)
    return template


def controller_revision_history(workload: dict, revisions: list[dict]) -> list[dict]:
    """A StatefulSet's or DaemonSet's revisions, oldest first: ControllerRevisions it owns (uid) whose
    labels match its full selector. Same entry keys as ``deployment_history``."""
    uid = workload["metadata"]["uid"]
    selector = workload["spec"].get("selector")
    history = []
    for cr in revisions:
        meta = cr.get("metadata") or {}
        if not owned_by(cr, uid) or not selector_matches(selector, meta.get("labels")):
            continue
        template = revision_template(cr)
        annotations = meta.get("annotations") or {}
        history.append(
            {
                "revision": int(cr.get("revision") or 0),
                "name": meta.get("name"),
                # the revision's name (<workload>-<hash>) is unique and survives renumbering
                "hash": meta.get("name"),
                "template": template,
                "images": images(template),
                "change_cause": annotations.get(CHANGE_CAUSE),
                "annotations": dict(annotations),
                "replicas": None,
            }
        )
    return sorted(history, key=lambda e: e["revision"])


def current_entry(kind: str, workload: dict, history: list[dict]) -> dict | None:
    """The history entry the workload runs now.

    Deployment: the ReplicaSet whose revision is the Deployment's revision annotation, else the one
    whose template equals the Deployment's. StatefulSet: ``status.updateRevision``, else the template.
    DaemonSet: the template, else the highest revision.
    """
    template = workload["spec"].get("template") or {}
    by_template = [e for e in history if e["template"] == template]
    if kind == "Deployment":
        revision = _int((workload["metadata"].get("annotations") or {}).get(REVISION))
        for entry in history:
            if entry["revision"] == revision and (not by_template or entry in by_template):
                return entry
        return by_template[-1] if by_template else None
    if by_template:
        return by_template[-1]
    if kind == "StatefulSet":
        update = (workload.get("status") or {}).get("updateRevision")
        for entry in history:
            if entry["name"] == update:
                return entry
    return history[-1] if history else None


def summary(entry: dict | None) -> dict:
    """What the result shows of a history entry."""
    if not entry:
        return {}
    return {
        "revision": entry["revision"],
        "name": entry["name"],
        "images": entry["images"],
        "change_cause": entry.get("change_cause"),
    }


# --------------------------------------------------------------------------------------------------
# The rollback record and the decision
# --------------------------------------------------------------------------------------------------


def read_marker(annotations: dict | None) -> dict | None:
    """The rollback recorded on a workload (``firebreak.io/rolled-back-*`` annotations), or None."""
    annotations = annotations or {}
    if not annotations.get(MARK_TO_HASH):
        return None
    return {
        "from": _int(annotations.get(MARK_FROM)),
        "to": _int(annotations.get(MARK_TO)),
        "to_hash": annotations.get(MARK_TO_HASH),
        "at": annotations.get(MARK_AT),
    }


def marker_annotations(from_revision: int, target: dict, at: str) -> dict:
    return {
        MARK_FROM: str(from_revision),
        MARK_TO: str(target["revision"]),
        MARK_TO_HASH: str(target["hash"]),
        MARK_AT: at,
    }


def _revisions_text(history) -> str:
    return ", ".join(str(e["revision"]) for e in history) or "none"


def decide_undo(kind, name, history, current, to_revision=None, paused=False, marker=None, known_good=None) -> dict:
    """Decide what ``rollout undo`` does.

    Returns ``{"changed": bool, "target": entry, "reason": str}``; raises ``RolloutInputError``
    (the message names the workload and lists the revisions that exist) when there is no earlier
    revision, ``to_revision`` or ``known_good`` is unknown, or a change is needed on a paused Deployment.

    ``known_good`` (a revision's hash: the one an earlier rollback of the same incident restored) pins the target:
    a workload that runs it, or runs its images (a restart since), changes nothing; any other rolls back to it and
    never to another revision, so a re-run cannot flip back to the bad one.
    """
    label = f"{kind} {name!r}"
    existing = _revisions_text(history)
    if current is None:
        raise RolloutInputError(
            f"{label}: cannot tell which revision it runs (no owned revision matches its pod template); "
            f"revisions: {existing}"
        )
    if known_good and to_revision is None:
        wanted = [e for e in history if e["hash"] == known_good]
        if current["hash"] == known_good or (wanted and wanted[-1]["images"] == current["images"]):
            return {
                "changed": False,
                "target": current,
                "reason": (
                    f"{label} already runs the known-good revision of this incident (hash {known_good}, images "
                    f"{', '.join(current['images'])}; now revision {current['revision']}); not rolling back again"
                ),
            }
        if not wanted:
            raise RolloutInputError(
                f"{label}: the known-good revision (hash {known_good}) is no longer in the history; nothing was "
                f"changed, give to_revision to choose one; revisions: {existing}"
            )
        target = wanted[-1]
        if paused:
            raise RolloutInputError(
                f"{label} is paused: resume it before rolling back (kubectl rollout resume); nothing changed; "
                f"revisions: {existing}"
            )
        return {
            "changed": True,
            "target": target,
            "reason": (
                f"from revision {current['revision']} to revision {target['revision']} (the known-good revision "
                f"of this incident, hash {known_good})"
            ),
        }
    if to_revision is not None:
        wanted = [e for e in history if e["revision"] == int(to_revision)]
        if not wanted:
            raise RolloutInputError(f"{label}: revision {to_revision} not found; revisions: {existing}")
        target = wanted[0]
        if target["hash"] == current["hash"]:
            return {"changed": False, "target": current, "reason": f"{label} already runs revision {to_revision}"}
        reason = f"from revision {current['revision']} to revision {target['revision']} (requested)"
    else:
        if marker and marker.get("to_hash") == current["hash"]:
            when = f" at {marker['at']}" if marker.get("at") else ""
            return {
                "changed": False,
                "target": current,
                "reason": (
                    f"{label} was already rolled back from revision {marker.get('from')} to revision "
                    f"{marker.get('to')}{when} and still runs it (now revision {current['revision']}); not rolling "
                    "back again (give to_revision to go further back)"
                ),
            }
        lower = [e for e in history if e["revision"] < current["revision"] and e["hash"] != current["hash"]]
        if not lower:
            raise RolloutInputError(
                f"{label}: no revision earlier than the current revision {current['revision']} to roll back to; "
                f"revisions: {existing}"
            )
        target = lower[-1]
        reason = f"from revision {current['revision']} to revision {target['revision']} (previous revision)"
    if paused:
        raise RolloutInputError(
            f"{label} is paused: resume it before rolling back (kubectl rollout resume); nothing changed; "
            f"revisions: {existing}"
        )
    return {"changed": True, "target": target, "reason": reason}


def copied_annotations(kind: str, target: dict) -> dict:
    """Annotations kubectl copies from the target revision onto the workload: a Deployment's
    ReplicaSet annotations except kubectl's skip list (and ours); nothing for ControllerRevisions."""
    if kind != "Deployment":
        return {}
    return {
        k: v
        for k, v in (target.get("annotations") or {}).items()
        if k not in ANNOTATIONS_TO_SKIP and not k.startswith(MARK_PREFIX)
    }


def stale_annotations(kind: str, workload: dict, target: dict) -> list[str]:
    """Annotations kubectl's rollback drops from a Deployment: the change-cause of the bad revision when
    the target ReplicaSet has none (its history must not describe the revision rolled back from)."""
    if kind != "Deployment":
        return []
    current = workload["metadata"].get("annotations") or {}
    if CHANGE_CAUSE in current and CHANGE_CAUSE not in (target.get("annotations") or {}):
        return [CHANGE_CAUSE]
    return []


def undo_patch(workload: dict, target: dict, extra_annotations: dict, remove=()) -> list[dict]:
    """A JSON patch (RFC 6902) that rolls the workload to ``target``: tests that the pod template is
    still the one the decision was made on, replaces the pod template, and sets (or removes) annotations
    one key at a time (the workload's other annotations stay)."""
    from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.common import escape_pointer

    ops = [
        {"op": "test", "path": "/spec/template", "value": workload["spec"]["template"]},
        {"op": "replace", "path": "/spec/template", "value": target["template"]},
    ]
    if not (workload["metadata"].get("annotations")):
        ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
    for key, value in sorted(extra_annotations.items()):
        ops.append({"op": "add", "path": f"/metadata/annotations/{escape_pointer(key)}", "value": value})
    for key in remove:
        ops.append({"op": "remove", "path": f"/metadata/annotations/{escape_pointer(key)}"})
    return ops


def restart_patch(at: str) -> dict:
    """The strategic-merge patch of ``kubectl rollout restart``."""
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}}


# --------------------------------------------------------------------------------------------------
# Rollout status
# --------------------------------------------------------------------------------------------------


def _condition(status: dict, ctype: str) -> dict | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == ctype:
            return cond
    return None


def _parse(ts) -> datetime.datetime | None:
    if not ts:
        return None
    try:
        return datetime.datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return None


def rollout_status(kind: str, obj: dict, since: datetime.datetime | None = None) -> tuple[str, str]:
    """``("done" | "waiting" | "failed", why)`` for a workload, as ``kubectl rollout status``.

    ``since``: a ``ProgressDeadlineExceeded`` condition last updated before this time (whole seconds)
    is stale (from before the step's change) and is not a failure.
    """
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    generation, observed = meta.get("generation", 0), status.get("observedGeneration", 0)
    if observed < generation:
        return "waiting", f"waiting for the {kind} spec update (generation {generation}) to be observed"
    if kind == "Deployment":
        replicas = spec.get("replicas", 1)
        progressing = _condition(status, "Progressing")
        if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
            updated = _parse(progressing.get("lastUpdateTime") or progressing.get("lastTransitionTime"))
            if since is None or updated is None or updated >= since.replace(microsecond=0):
                return "failed", f"deployment exceeded its progress deadline: {progressing.get('message', '')}".strip()
        updated_n = status.get("updatedReplicas", 0)
        if updated_n < replicas:
            return "waiting", f"{updated_n} out of {replicas} new replicas have been updated"
        if status.get("replicas", 0) > updated_n:
            return "waiting", f"{status.get('replicas', 0) - updated_n} old replicas are pending termination"
        if status.get("availableReplicas", 0) < updated_n:
            return "waiting", f"{status.get('availableReplicas', 0)} of {updated_n} updated replicas are available"
        if status.get("readyReplicas", 0) < updated_n:
            return "waiting", f"{status.get('readyReplicas', 0)} of {updated_n} updated replicas are ready"
        deadline = spec.get("progressDeadlineSeconds") is not None and replicas > 0
        if deadline and (not progressing or progressing.get("reason") != "NewReplicaSetAvailable"):
            reason = progressing.get("reason") if progressing else "no Progressing condition"
            return "waiting", f"Progressing condition is {reason}, not yet NewReplicaSetAvailable"
        return "done", f"successfully rolled out ({updated_n}/{replicas} updated, available and ready)"
    if kind == "StatefulSet":
        strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
        if strategy != "RollingUpdate":
            return "done", f"update strategy {strategy}: rollout status is only available for RollingUpdate"
        replicas = spec.get("replicas", 1)
        ready = status.get("readyReplicas", 0)
        if ready < replicas:
            return "waiting", f"{ready} of {replicas} pods are ready"
        partition = ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition") or 0
        if partition:
            updated = status.get("updatedReplicas", 0)
            if updated < replicas - partition:
                return "waiting", f"{updated} of {replicas - partition} partitioned pods updated"
            return "done", f"partitioned roll out complete: {updated} new pods updated"
        if status.get("updateRevision") != status.get("currentRevision"):
            updated = status.get("updatedReplicas", 0)
            return "waiting", f"{updated} pods at revision {status.get('updateRevision')}, not all updated yet"
        return "done", f"rolling update complete: {replicas} pods at revision {status.get('currentRevision')}"
    if kind == "DaemonSet":
        strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
        if strategy != "RollingUpdate":
            return "done", f"update strategy {strategy}: rollout status is only available for RollingUpdate"
        desired = status.get("desiredNumberScheduled", 0)
        updated = status.get("updatedNumberScheduled", 0)
        if updated < desired:
            return "waiting", f"{updated} out of {desired} new pods have been updated"
        available = status.get("numberAvailable", 0)
        if available < desired:
            return "waiting", f"{available} of {desired} updated pods are available"
        return "done", f"successfully rolled out ({desired} pods)"
    raise ValueError(f"unsupported kind {kind!r}")


def workload_state(kind: str, obj: dict, entry: dict | None = None) -> dict:
    """The before/after record of a workload."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    state = {
        "revision": entry["revision"] if entry else None,
        "images": images(spec.get("template")),
        "generation": (obj.get("metadata") or {}).get("generation"),
    }
    if kind == "DaemonSet":
        state.update(
            desired=status.get("desiredNumberScheduled", 0),
            updated=status.get("updatedNumberScheduled", 0),
            available=status.get("numberAvailable", 0),
            ready=status.get("numberReady", 0),
        )
    else:
        state.update(
            replicas=spec.get("replicas", 1),
            updated=status.get("updatedReplicas", 0),
            available=status.get("availableReplicas", 0),
            ready=status.get("readyReplicas", 0),
        )
    if kind == "Deployment":
        state["paused"] = bool(spec.get("paused", False))
    return state


def stuck_pods(pods: list[dict], owner_uid: str, target_name: str) -> list[str]:
    """Names of a StatefulSet's pods that are not Ready and not of the ``target_name`` revision: under
    ``OrderedReady`` they block the rollback until deleted (StatefulSet docs, "Forced rollback")."""
    names = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if not owned_by(pod, owner_uid) or (meta.get("labels") or {}).get(POD_REVISION_LABEL) == target_name:
            continue
        ready = _condition(pod.get("status") or {}, "Ready")
        if not (ready and ready.get("status") == "True"):
            names.append(meta.get("name"))
    return sorted(names)


def pod_problems(pods: list[dict], limit: int = 10) -> list[dict]:
    """Pods that are not ready, with their containers' waiting/terminated reasons and restart counts."""
    found = []
    for pod in pods:
        status = pod.get("status") or {}
        ready = _condition(status, "Ready")
        if ready and ready.get("status") == "True":
            continue
        reasons, restarts = [], 0
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            restarts += cs.get("restartCount", 0)
            state = cs.get("state") or {}
            for key in ("waiting", "terminated"):
                if key in state and (state[key] or {}).get("reason"):
                    detail = state[key]
                    text = f"{cs.get('name')}: {detail['reason']}"
                    if detail.get("message"):
                        text += f" ({str(detail['message'])[:200]})"
                    reasons.append(text)
        found.append(
            {
                "name": (pod.get("metadata") or {}).get("name"),
                "phase": status.get("phase"),
                "reasons": reasons,
                "restarts": restarts,
            }
        )
    return found[:limit]


# --------------------------------------------------------------------------------------------------
# Scaling
# --------------------------------------------------------------------------------------------------


def decide_scale(label, replicas_now, hpa, replicas=None, min_replicas=None, max_replicas=None) -> dict:
    """Decide a scale-out: the workload's replicas, or (when ``hpa`` targets it) the HPA's bounds.

    Returns ``{"changed", "old", "new", "previous", "reason"}`` (``old``/``new``: ``replicas``, ``hpa_min``,
    ``hpa_max``); raises ``ValueError`` naming the bad value.
    """
    for option, value in (("replicas", replicas), ("max_replicas", max_replicas)):
        if value is not None and value < 0:
            raise ValueError(f"{option} must be >= 0, got {value}")
    if min_replicas is not None and min_replicas < 1:
        raise ValueError(f"min_replicas must be >= 1, got {min_replicas}")
    if replicas is None and min_replicas is None and max_replicas is None:
        raise ValueError("give replicas, or min_replicas/max_replicas for a HorizontalPodAutoscaler")
    old = {"replicas": replicas_now, "hpa_min": None, "hpa_max": None}
    if hpa is None:
        if min_replicas is not None or max_replicas is not None:
            raise ValueError(f"no HorizontalPodAutoscaler targets {label}: give replicas instead of min/max_replicas")
        new = dict(old, replicas=replicas)
        reason = (
            f"replicas {replicas_now} -> {replicas}" if replicas != replicas_now else f"already {replicas} replicas"
        )
        return {
            "changed": replicas != replicas_now,
            "old": old,
            "new": new,
            "previous": {"replicas": replicas_now, "hpa": None},
            "reason": reason,
        }
    spec = hpa.get("spec") or {}
    hpa_name = hpa["metadata"]["name"]
    old.update(hpa_min=spec.get("minReplicas", 1), hpa_max=spec.get("maxReplicas"))
    new_min = min_replicas if min_replicas is not None else (replicas if replicas is not None else old["hpa_min"])
    if new_min < 1:
        raise ValueError(f"HorizontalPodAutoscaler {hpa_name!r} cannot have minReplicas {new_min}: it must be >= 1")
    new_max = max_replicas if max_replicas is not None else max(old["hpa_max"] or new_min, new_min)
    if new_max < new_min:
        raise ValueError(
            f"max_replicas {new_max} is below minReplicas {new_min} for HorizontalPodAutoscaler {hpa_name!r}"
        )
    new_replicas = min(max(replicas_now, new_min), new_max)
    new = {"replicas": new_replicas, "hpa_min": new_min, "hpa_max": new_max}
    parts = [f"{k} {old[k]} -> {new[k]}" for k in ("hpa_min", "hpa_max", "replicas") if old[k] != new[k]]
    return {
        "changed": new != old,
        "old": old,
        "new": new,
        "previous": {
            "replicas": replicas_now,
            "hpa": {"name": hpa_name, "min_replicas": old["hpa_min"], "max_replicas": old["hpa_max"]},
        },
        "reason": (f"through HorizontalPodAutoscaler {hpa_name}: " + ", ".join(parts))
        if parts
        else f"HorizontalPodAutoscaler {hpa_name} already has minReplicas {new_min}, maxReplicas {new_max}",
    }
