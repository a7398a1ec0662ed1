"""StatefulSet and DaemonSet controllers with their ControllerRevision history.

Modelled on kube-controller-manager's ``pkg/controller/statefulset`` (stateful_set_control.go) and
``pkg/controller/daemon`` (daemon_controller.go, update.go), and ``pkg/controller/history``:

- every template is snapshotted in a ControllerRevision ``<name>-<hash>`` owned by the workload, whose
  ``data`` is the strategic merge patch ``{"spec": {"template": {..., "$patch": "replace"}}}`` that
  ``kubectl rollout undo`` applies, and whose ``revision`` is max+1; a template equal to an older
  revision's reuses that revision and renumbers it to max+1 (a rollback), as the controllers do;
- StatefulSet pods are ``<name>-<ordinal>`` labelled ``controller-revision-hash: <revision name>``;
  OrderedReady creates them one at a time and waits for each to be Running and Ready, and a rolling
  update replaces them from the highest ordinal down to ``partition``, one at a time, waiting for health;
- DaemonSet pods run one per eligible node, labelled ``controller-revision-hash: <hash>`` and
  ``pod-template-generation``; a rolling update deletes old pods within ``maxUnavailable`` (unavailable old
  pods are replaced at once).
"""

from __future__ import annotations

import copy
import random
import time

from . import controller as ctl
from .resources import BY_KIND, scaled

STATEFULSET = BY_KIND[("apps/v1", "StatefulSet")]
DAEMONSET = BY_KIND[("apps/v1", "DaemonSet")]
REVISION_TYPE = BY_KIND[("apps/v1", "ControllerRevision")]
REVISION_LABEL = "controller-revision-hash"
HASH_LABEL = "controller.kubernetes.io/hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"


# ------------------------------------------------------------------------------------------------ history
def revision_patch(workload: dict) -> dict:
    """``getPatch``: the template as a strategic merge patch that replaces the whole template."""
    return {"spec": {"template": {**copy.deepcopy(workload["spec"].get("template") or {}), "$patch": "replace"}}}


def owned(c, rtype, owner: dict) -> list[dict]:
    uid = owner["metadata"]["uid"]
    return [obj for obj in c._objects(rtype, owner["metadata"]["namespace"]) if ctl._controller_uid(obj) == uid]


def sync_revisions(c, workload: dict, hash_of_template: bool) -> tuple[list[dict], dict]:
    """Find or create the ControllerRevision of the current template (renumbering a reused one).

    Returns (all revisions sorted by number, the update revision).
    """
    revisions = sorted(owned(c, REVISION_TYPE, workload), key=lambda r: (r.get("revision", 0), r["metadata"]["name"]))
    data = revision_patch(workload)
    next_revision = max((r.get("revision", 0) for r in revisions), default=0) + 1
    equal = [r for r in revisions if r.get("data") == data]
    if equal:
        match = equal[-1]
        if match is not revisions[-1]:
            renumbered = {**match, "metadata": dict(match["metadata"]), "revision": next_revision}
            c.store.write(REVISION_TYPE, renumbered)
            revisions = [r for r in revisions if r is not match] + [renumbered]
            return revisions, renumbered
        return revisions, match
    template = workload["spec"].get("template") or {}
    digest = ctl.template_hash(template if hash_of_template else data)
    meta = workload["metadata"]
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    if hash_of_template:  # the DaemonSet controller labels its history with the pod label (daemon/update.go)
        labels[REVISION_LABEL] = digest
    else:  # history.NewControllerRevision
        labels[HASH_LABEL] = digest
    revision = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": f"{meta['name']}-{digest}",
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [ctl._owner_ref(workload)],
        },
        "data": data,
        "revision": next_revision,
    }
    if hash_of_template and meta.get("annotations"):
        revision["metadata"]["annotations"] = dict(meta["annotations"])
    if c.store.lookup(REVISION_TYPE, meta["namespace"], revision["metadata"]["name"]) is not None:
        return revisions, revisions[-1] if revisions else revision  # a foreign revision holds the name
    c.store.new_object(REVISION_TYPE, revision)
    c.store.write(REVISION_TYPE, revision, "ADDED")
    return [*revisions, revision], revision


def truncate_history(c, workload: dict, revisions: list[dict], live: set[str]) -> None:
    """``truncateHistory``: delete the oldest revisions no pod uses beyond ``revisionHistoryLimit``."""
    limit = workload["spec"].get("revisionHistoryLimit", 10)
    idle = [r for r in revisions if r["metadata"]["name"] not in live]
    for revision in idle[: max(0, len(idle) - limit)]:
        c.store.remove(REVISION_TYPE, revision)


def _template_of(revision: dict) -> dict:
    template = copy.deepcopy(revision["data"]["spec"]["template"])
    template.pop("$patch", None)
    return template


def _healthy(c, pod: dict) -> bool:
    """``isRunningAndReady``."""
    return (pod.get("status") or {}).get("phase") == "Running" and c.pod_ready(pod)


def _available(c, pod: dict, min_ready: int, now: float) -> bool:
    if not _healthy(c, pod):
        return False
    return now - c.ready_at.get(pod["metadata"]["uid"], now) >= min_ready


def _write_status(c, rtype, workload: dict, status: dict) -> None:
    current = c.store.lookup(rtype, workload["metadata"]["namespace"], workload["metadata"]["name"])
    if current is not None and current.get("status") != status:
        c.store.write(rtype, {**current, "metadata": dict(current["metadata"]), "status": status})


# ------------------------------------------------------------------------------------------- statefulsets
def sync_statefulsets(c) -> None:
    for sts in c._objects(STATEFULSET):
        if not sts["metadata"].get("deletionTimestamp"):
            StatefulSetSync(c, sts).run()


class StatefulSetSync:
    """One pass of ``updateStatefulSet`` for one StatefulSet."""

    def __init__(self, c, sts: dict):
        self.c, self.sts = c, sts
        self.name = sts["metadata"]["name"]
        self.now = time.time()

    def ordinal(self, pod: dict) -> int:
        suffix = pod["metadata"]["name"][len(self.name) + 1 :]
        return int(suffix) if suffix.isdigit() else -1

    def run(self) -> None:
        c, sts = self.c, self.sts
        revisions, update = sync_revisions(c, sts, hash_of_template=False)
        by_name = {r["metadata"]["name"]: r for r in revisions}
        current = by_name.get((sts.get("status") or {}).get("currentRevision") or "", update)
        self.revisions = (current, update)
        pods = sorted(owned(c, ctl.POD, sts), key=self.ordinal)
        self.act(pods, current, update)
        pods = sorted(owned(c, ctl.POD, sts), key=self.ordinal)
        self.status(pods, current, update)
        truncate_history(
            c,
            sts,
            revisions,
            {current["metadata"]["name"], update["metadata"]["name"]}
            | {(p["metadata"].get("labels") or {}).get(REVISION_LABEL) for p in pods},
        )

    def revision_for(self, ordinal: int) -> dict:
        """``newVersionedStatefulSetPod``: ordinals below ``partition`` keep the current revision."""
        current, update = self.revisions
        strategy = self.sts["spec"].get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            partition = (strategy.get("rollingUpdate") or {}).get("partition", 0)
            return current if ordinal < partition else update
        return current

    def create(self, ordinal: int) -> bool:
        revision = self.revision_for(ordinal)
        name = f"{self.name}-{ordinal}"
        spec = {"hostname": name}
        if self.sts["spec"].get("serviceName"):
            spec["subdomain"] = self.sts["spec"]["serviceName"]
        labels = {
            REVISION_LABEL: revision["metadata"]["name"],
            POD_NAME_LABEL: name,
            POD_INDEX_LABEL: str(ordinal),
        }
        try:
            self.c.create_pod(self.sts, _template_of(revision), name, labels=labels, spec=spec)
        except ctl.PodForbidden as exc:
            self.c.record_event(
                self.sts,
                "FailedCreate",
                f"create Pod {name} in StatefulSet {self.name} failed error: {exc}",
                "Warning",
                "statefulset-controller",
            )
            return False
        self.c.record_event(
            self.sts,
            "SuccessfulCreate",
            f"create Pod {name} in StatefulSet {self.name} successful",
            component="statefulset-controller",
        )
        return True

    def delete(self, pod: dict) -> None:
        self.c.store.remove(ctl.POD, pod)
        self.c.ready_at.pop(pod["metadata"]["uid"], None)
        self.c.record_event(
            self.sts,
            "SuccessfulDelete",
            f"delete Pod {pod['metadata']['name']} in StatefulSet {self.name} successful",
            component="statefulset-controller",
        )

    def act(self, pods: list[dict], current: dict, update: dict) -> None:
        c, spec = self.c, self.sts["spec"]
        replicas = spec.get("replicas", 1)
        monotonic = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        slots: dict[int, dict] = {}
        condemned = []
        for pod in pods:
            ordinal = self.ordinal(pod)
            if 0 <= ordinal < replicas:
                slots[ordinal] = pod
            else:
                condemned.append(pod)
        for ordinal in range(replicas):
            pod = slots.get(ordinal)
            if pod is not None and (pod.get("status") or {}).get("phase") == "Failed":
                self.delete(pod)
                pod = None
            if pod is None:
                if not self.create(ordinal) or monotonic:
                    return
                continue
            # a pod that is not Running and Ready blocks everything after it (the known issue the
            # StatefulSet docs call "Forced rollback": reverting the template does not replace it)
            if monotonic and not _healthy(c, pod):
                return
        for pod in sorted(condemned, key=self.ordinal, reverse=True):
            if monotonic and not all(_healthy(c, p) for p in pods):
                return
            self.delete(pod)
            if monotonic:
                return
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        partition = (strategy.get("rollingUpdate") or {}).get("partition", 0)
        for ordinal in range(replicas - 1, partition - 1, -1):
            pod = slots.get(ordinal)
            if pod is None:
                continue
            if (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) != update["metadata"]["name"]:
                self.delete(pod)
                return
            if not _healthy(c, pod):
                return

    def status(self, pods: list[dict], current: dict, update: dict) -> None:
        c, sts = self.c, self.sts
        min_ready = sts["spec"].get("minReadySeconds", 0)
        revision_of = [(p["metadata"].get("labels") or {}).get(REVISION_LABEL) for p in pods]
        ready = sum(1 for p in pods if _healthy(c, p))
        status = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(pods),
            "readyReplicas": ready,
            "currentReplicas": revision_of.count(current["metadata"]["name"]),
            "updatedReplicas": revision_of.count(update["metadata"]["name"]),
            "currentRevision": current["metadata"]["name"],
            "updateRevision": update["metadata"]["name"],
            "collisionCount": 0,
            "availableReplicas": sum(1 for p in pods if _available(c, p, min_ready, self.now)),
        }
        strategy = (sts["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate")
        if strategy == "RollingUpdate" and status["updatedReplicas"] == status["replicas"] == ready:
            # completeRollingUpdate
            status["currentRevision"] = status["updateRevision"]
            status["currentReplicas"] = status["updatedReplicas"]
        for key in ("readyReplicas", "currentReplicas", "updatedReplicas"):  # omitempty in apps/v1
            if not status[key]:
                del status[key]
        _write_status(c, STATEFULSET, sts, status)


# -------------------------------------------------------------------------------------------- daemonsets
def sync_daemonsets(c) -> None:
    for ds in c._objects(DAEMONSET):
        if not ds["metadata"].get("deletionTimestamp"):
            DaemonSetSync(c, ds).run()


class DaemonSetSync:
    """One pass of the DaemonSet controller's ``syncDaemonSet`` (maxSurge 0 rolling update)."""

    def __init__(self, c, ds: dict):
        self.c, self.ds = c, ds
        self.name = ds["metadata"]["name"]
        self.now = time.time()

    def should_run(self, node: dict) -> bool:
        """``NodeShouldRunDaemonPod``, reduced to ``nodeSelector`` (daemon pods tolerate cordoned nodes)."""
        selector = ((self.ds["spec"].get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
        return selector.items() <= (node["metadata"].get("labels") or {}).items()

    def run(self) -> None:
        c, ds = self.c, self.ds
        revisions, current = sync_revisions(c, ds, hash_of_template=True)
        digest = current["metadata"]["labels"][REVISION_LABEL]
        nodes = {n["metadata"]["name"]: n for n in c.nodes()}
        eligible = {name for name, node in nodes.items() if self.should_run(node)}
        by_node: dict[str, list[dict]] = {}
        for pod in owned(c, ctl.POD, ds):
            by_node.setdefault(pod["spec"].get("nodeName", ""), []).append(pod)
        changed = self.manage(eligible, by_node, digest)
        if not changed and (ds["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate":
            self.rolling_update(eligible, by_node, digest)
        by_node = {}
        for pod in owned(c, ctl.POD, ds):
            by_node.setdefault(pod["spec"].get("nodeName", ""), []).append(pod)
        self.status(eligible, by_node, digest)
        live = {current["metadata"]["name"]} | {
            f"{self.name}-{(p['metadata'].get('labels') or {}).get(REVISION_LABEL)}"
            for pods in by_node.values()
            for p in pods
        }
        truncate_history(c, ds, revisions, live)

    def create(self, node: str, digest: str) -> None:
        template = self.ds["spec"].get("template") or {}
        name = f"{self.name}-{''.join(random.choices(ctl._ALNUM, k=5))}"
        generation = (self.ds["metadata"].get("annotations") or {}).get("deprecated.daemonset.template.generation", "1")
        affinity = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
                    ]
                }
            }
        }
        tolerations = list((template.get("spec") or {}).get("tolerations") or []) + [
            {"key": f"node.kubernetes.io/{key}", "operator": "Exists", "effect": effect}
            for key, effect in (
                ("not-ready", "NoExecute"),
                ("unreachable", "NoExecute"),
                ("disk-pressure", "NoSchedule"),
                ("memory-pressure", "NoSchedule"),
                ("pid-pressure", "NoSchedule"),
                ("unschedulable", "NoSchedule"),
            )
        ]
        try:
            self.c.create_pod(
                self.ds,
                template,
                name,
                generate_name=f"{self.name}-",
                labels={REVISION_LABEL: digest, TEMPLATE_GENERATION_LABEL: generation},
                spec={"nodeName": node, "affinity": affinity, "tolerations": tolerations},
            )
        except ctl.PodForbidden as exc:
            self.c.record_event(self.ds, "FailedCreate", f"Error creating: {exc}", "Warning", "daemonset-controller")
            return
        self.c.record_event(self.ds, "SuccessfulCreate", f"Created pod: {name}", component="daemonset-controller")

    def delete(self, pod: dict) -> None:
        self.c.store.remove(ctl.POD, pod)
        self.c.ready_at.pop(pod["metadata"]["uid"], None)
        self.c.record_event(
            self.ds, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}", component="daemonset-controller"
        )

    def manage(self, eligible: set[str], by_node: dict[str, list[dict]], digest: str) -> bool:
        """``manage``: a pod on each eligible node, none elsewhere, failed pods replaced."""
        changed = False
        for node, pods in by_node.items():
            if node not in eligible:
                for pod in pods:
                    self.delete(pod)
                    changed = True
        for node in sorted(eligible):
            pods = sorted(by_node.get(node, []), key=lambda p: p["metadata"]["creationTimestamp"])
            failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
            for pod in failed:
                self.delete(pod)
                changed = True
            pods = [p for p in pods if p not in failed]
            if not pods:
                self.create(node, digest)
                changed = True
            for extra in pods[1:]:
                self.delete(extra)
                changed = True
        return changed

    def max_unavailable(self, desired: int) -> int:
        rolling = (self.ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}
        unavailable = scaled(rolling.get("maxUnavailable", 1), desired, True)
        surge = scaled(rolling.get("maxSurge", 0), desired, True)
        return 1 if unavailable == 0 and surge == 0 else unavailable

    def rolling_update(self, eligible: set[str], by_node: dict[str, list[dict]], digest: str) -> None:
        """``rollingUpdate`` with maxSurge 0: unavailable old pods go at once, available ones within the budget."""
        min_ready = self.ds["spec"].get("minReadySeconds", 0)
        budget = self.max_unavailable(len(eligible))
        unavailable, replace, candidates = 0, [], []
        for node in sorted(eligible):
            pods = by_node.get(node, [])
            if len(pods) != 1:
                unavailable += 1
                continue
            pod = pods[0]
            if (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) == digest:
                if not _available(self.c, pod, min_ready, self.now):
                    unavailable += 1
            elif not _available(self.c, pod, min_ready, self.now):
                replace.append(pod)
            elif unavailable < budget:
                candidates.append(pod)
        for pod in replace + candidates[: max(0, budget - unavailable)]:
            self.delete(pod)

    def status(self, eligible: set[str], by_node: dict[str, list[dict]], digest: str) -> None:
        min_ready = self.ds["spec"].get("minReadySeconds", 0)
        scheduled = ready = available = updated = 0
        misscheduled = sum(1 for node in by_node if node not in eligible)
        for node in eligible:
            pods = sorted(by_node.get(node, []), key=lambda p: p["metadata"]["creationTimestamp"])
            if not pods:
                continue
            scheduled += 1
            pod = pods[0]
            ready += _healthy(self.c, pod)
            available += _available(self.c, pod, min_ready, self.now)
            updated += (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) == digest
        status = {
            "currentNumberScheduled": scheduled,
            "numberMisscheduled": misscheduled,
            "desiredNumberScheduled": len(eligible),
            "numberReady": ready,
            "observedGeneration": self.ds["metadata"].get("generation", 1),
            "updatedNumberScheduled": updated,
            "numberAvailable": available,
            "numberUnavailable": len(eligible) - available,
        }
        for key in ("updatedNumberScheduled", "numberAvailable", "numberUnavailable"):  # omitempty in apps/v1
            if not status[key]:
                del status[key]
        _write_status(self.c, DAEMONSET, self.ds, status)
