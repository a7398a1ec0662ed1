"""Deployment, ReplicaSet, Pod and Namespace controllers, modelled on kube-controller-manager's.

The Deployment logic follows ``pkg/controller/deployment`` (sync.go, rolling.go, recreate.go, progress.go):
revisions, ReplicaSet reuse on rollback, surge arithmetic, proportional scaling, status and conditions.
Pods are simulated: a pod becomes ready ``rollout_delay`` seconds after it is created, unless one of its
images matches ``bad_image_pattern`` (then it sits in ``ImagePullBackOff`` for ever).
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
import threading
import time
import traceback
from datetime import datetime, timezone

from . import autoscaler, disruption, workloads
from .kubelet import Kubelet
from .resources import BY_KIND, apply_defaults, scaled
from .store import Store, now_iso

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
_NOT_COPIED = {
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
}
_ALNUM = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand: no vowels, no confusable digits
NODE = "sandbox-node-1"

NAMESPACE = BY_KIND[("v1", "Namespace")]
POD = BY_KIND[("v1", "Pod")]
EVENT = BY_KIND[("v1", "Event")]
NODE_TYPE = BY_KIND[("v1", "Node")]
DEPLOYMENT = BY_KIND[("apps/v1", "Deployment")]
REPLICASET = BY_KIND[("apps/v1", "ReplicaSet")]


def safe_encode(value: str) -> str:
    """``rand.SafeEncodeString``."""
    return "".join(_ALNUM[ord(char) % len(_ALNUM)] for char in value)


def template_hash(template: dict) -> str:
    """A stable ``pod-template-hash``: FNV-1a 32 of the canonical template, encoded like the controller's."""
    value = 0x811C9DC5
    for byte in json.dumps(template, sort_keys=True, separators=(",", ":")).encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return safe_encode(str(value))


def _without_hash(template: dict | None) -> dict:
    """The template without its ``pod-template-hash`` label (shallow copies only: stored objects are immutable)."""
    template = template or {}
    meta = template.get("metadata") or {}
    labels = meta.get("labels") or {}
    if HASH_LABEL not in labels:
        return template
    return {**template, "metadata": {**meta, "labels": {k: v for k, v in labels.items() if k != HASH_LABEL}}}


def _revision(rs: dict) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _replicas(obj: dict) -> int:
    return obj["spec"].get("replicas", 1)


def _status(obj: dict, key: str) -> int:
    return (obj.get("status") or {}).get(key) or 0


def _parse_time(value: str) -> float:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def _controller_uid(obj: dict) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


def _owner_ref(owner: dict) -> dict:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _condition(ctype: str, status: str, reason: str, message: str, ts: str) -> dict:
    return {
        "type": ctype,
        "status": status,
        "lastUpdateTime": ts,
        "lastTransitionTime": ts,
        "reason": reason,
        "message": message,
    }


def _get_condition(status: dict, ctype: str) -> dict | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == ctype), None)


def _set_condition(status: dict, condition: dict) -> None:
    """``SetDeploymentCondition``: same status and reason keeps the old one; same status keeps the transition time."""
    current = _get_condition(status, condition["type"])
    if current and current["status"] == condition["status"] and current["reason"] == condition["reason"]:
        return
    if current and current["status"] == condition["status"]:
        condition["lastTransitionTime"] = current["lastTransitionTime"]
    status["conditions"] = [c for c in status.get("conditions") or [] if c["type"] != condition["type"]] + [condition]


def _remove_condition(status: dict, ctype: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c["type"] != ctype]


def fenceposts(d: dict) -> tuple[int, int]:
    """``ResolveFenceposts``: (maxSurge rounded up, maxUnavailable rounded down); both 0 makes unavailable 1."""
    rolling = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    desired = _replicas(d)
    surge = scaled(rolling.get("maxSurge", "25%"), desired, True)
    unavailable = scaled(rolling.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _rolling(d: dict) -> bool:
    return (d["spec"].get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def max_surge(d: dict) -> int:
    return fenceposts(d)[0] if _rolling(d) else 0


def max_unavailable(d: dict) -> int:
    if not _rolling(d) or _replicas(d) == 0:
        return 0
    return min(fenceposts(d)[1], _replicas(d))


def _has_deadline(d: dict) -> bool:
    deadline = d["spec"].get("progressDeadlineSeconds")
    return deadline is not None and deadline != 2**31 - 1


class PodForbidden(Exception):
    """Pod admission refused the pod (a missing ServiceAccount): the apiserver's 403 message."""


class Controllers:
    """Runs every controller in one background thread, ticking every 50 ms (sooner after a write)."""

    def __init__(
        self,
        store: Store,
        bad_image_pattern: str,
        rollout_delay: float,
        namespace_delete_delay: float,
        crash_image_pattern: str = r":(crash|exit)[^/:]*$",
        crash_backoff: float = 0.5,
    ):
        self.store = store
        self.bad_image = re.compile(bad_image_pattern)
        self.crash_image = re.compile(crash_image_pattern)
        self.crash_backoff = crash_backoff
        self.kubelet = Kubelet(self)
        self.ref_types = {"ConfigMap": BY_KIND[("v1", "ConfigMap")], "Secret": BY_KIND[("v1", "Secret")]}
        self.rollout_delay = rollout_delay
        self.namespace_delete_delay = namespace_delete_delay
        self.instant = False
        self.ready_at: dict[str, float] = {}  # pod uid -> when its containers are ready
        self.terminating_since: dict[str, float] = {}  # namespace uid -> when it went Terminating
        self.event_names: dict[tuple, str] = {}  # (object uid, reason, message, component) -> Event name
        self.pod_checked: dict[str, tuple] = {}  # pod uid -> ((pod, node, config versions), next due time)
        self.settled: dict[str, tuple] = {}  # object uid -> the resourceVersions it was last synced at, when idle
        self.node_ready_seen: dict[str, bool] = {}  # node name -> Ready as last seen by the node controller
        self.hpa_sync_period = 0.5
        self.hpa_synced: dict[str, float] = {}  # HPA uid -> last sync
        self.cpu_utilization: dict[tuple[str, str], int] = {}  # (namespace, target name) -> CPU % of requests
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------------ loop
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="k8s-controllers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.store.wakeup.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.store.wakeup.wait(0.05)
            self.store.wakeup.clear()
            try:
                self.converge()
            except Exception:  # a controller bug must not kill the thread: report it, the next tick retries
                traceback.print_exc()

    def converge(self, rounds: int = 10) -> None:
        """Run all controllers until nothing changes (or ``rounds`` passes)."""
        with self.store.lock:
            for _ in range(rounds):
                before = self.store.rv
                self.sync_namespaces()
                self.sync_nodes()
                self.sync_pods()
                self.sync_replicasets()
                self.sync_deployments()
                workloads.sync_statefulsets(self)
                workloads.sync_daemonsets(self)
                autoscaler.sync_autoscalers(self)
                disruption.sync_disruption_budgets(self)
                if self.store.rv == before:
                    return

    def reset(self) -> None:
        self.ready_at.clear()
        self.terminating_since.clear()
        self.event_names.clear()
        self.kubelet.reset()
        self.hpa_synced.clear()
        self.node_ready_seen.clear()
        self.settled.clear()
        self.pod_checked.clear()
        self.cpu_utilization.clear()

    def _objects(self, rtype, namespace: str | None = None) -> list[dict]:
        return [
            obj for (ns, _), obj in sorted(self.store.objects[rtype].items()) if namespace is None or ns == namespace
        ]

    # ------------------------------------------------------------------------------------------ namespaces
    def sync_namespaces(self) -> None:
        now = time.time()
        for ns in self._objects(NAMESPACE):
            if ns["status"].get("phase") != "Terminating":
                continue
            name = ns["metadata"]["name"]
            marked = self.terminating_since.setdefault(ns["metadata"]["uid"], now)
            if not self.instant and now - marked < self.namespace_delete_delay:
                continue
            for rtype, objects in self.store.objects.items():
                if rtype.namespaced:
                    for obj in [o for (o_ns, _), o in objects.items() if o_ns == name]:
                        self.store.remove(rtype, obj)
            self.store.remove(NAMESPACE, ns)
            self.terminating_since.pop(ns["metadata"]["uid"], None)

    # ----------------------------------------------------------------------------------------------- nodes
    def sync_nodes(self) -> None:
        """The node lifecycle controller: Events NodeNotReady/NodeReady and the not-ready/unreachable taints."""
        for node in self._objects(NODE_TYPE):
            name = node["metadata"]["name"]
            ready = self.node_ready(node)
            seen = self.node_ready_seen.get(name)
            self.node_ready_seen[name] = ready
            if seen is not None and seen != ready:
                state = "NodeReady" if ready else "NodeNotReady"
                self.record_event(node, state, f"Node {name} status is now: {state}", component="node-controller")
            cond = next((c for c in (node.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), {})
            key = (
                None
                if ready
                else (
                    "node.kubernetes.io/unreachable"
                    if cond.get("status") == "Unknown"
                    else "node.kubernetes.io/not-ready"
                )
            )
            taints = [
                t
                for t in (node.get("spec") or {}).get("taints") or []
                if t.get("key") not in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")
                or t.get("key") == key
            ]
            if key and not any(t.get("key") == key for t in taints):
                taints += [
                    {"key": key, "effect": "NoSchedule"},
                    {"key": key, "effect": "NoExecute", "timeAdded": now_iso()},
                ]
            if taints != ((node.get("spec") or {}).get("taints") or []):
                spec = {k: v for k, v in (node.get("spec") or {}).items() if k != "taints"}
                if taints:
                    spec["taints"] = taints
                self.store.write(NODE_TYPE, {**node, "spec": spec})

    # ------------------------------------------------------------------------------------------------ pods
    def sync_pods(self) -> None:
        """The scheduler binds pods without a node; the kubelet reports their status (see kubelet.py)."""
        now = time.time()
        for pod in self._objects(POD):
            uid = pod["metadata"]["uid"]
            if not pod["spec"].get("nodeName"):
                node = self.pick_node(pod)
                if node is None:
                    status = self._unschedulable(pod)
                    if status != pod.get("status"):
                        self.store.write(POD, {**pod, "status": status})
                    continue
                pod = self.store.write(POD, {**pod, "spec": {**pod["spec"], "nodeName": node}})
                self._scheduled(pod)
            started = self.ready_at.setdefault(uid, now if self.instant else now + self.rollout_delay)
            node = self.node(pod["spec"]["nodeName"])
            key = (
                pod["metadata"]["resourceVersion"],
                node["metadata"]["resourceVersion"] if node else "",
                self.store.config_rv,
            )
            cached = self.pod_checked.get(uid)
            if cached and cached[0] == key and now < cached[1]:
                continue  # nothing the kubelet looks at changed, and no timer is due
            status = self.kubelet.status(pod, started, now)
            if status != pod.get("status"):
                pod = self.store.write(POD, {**pod, "status": status})
            key = (pod["metadata"]["resourceVersion"], key[1], self.store.config_rv)
            self.pod_checked[uid] = (key, self.kubelet.due)

    def _scheduled(self, pod: dict) -> None:
        if not self.instant:
            meta = pod["metadata"]
            self.record_event(
                pod,
                "Scheduled",
                f"Successfully assigned {meta['namespace']}/{meta['name']} to {pod['spec']['nodeName']}",
                component="default-scheduler",
            )

    def _unschedulable(self, pod: dict) -> dict:
        nodes = self.nodes()
        message = (
            f"0/{len(nodes)} nodes are available: {len(nodes)} node(s) had untolerated taint "
            "{node.kubernetes.io/not-ready: }. preemption: 0/"
            f"{len(nodes)} nodes are available: {len(nodes)} Preemption is not helpful for scheduling."
            if nodes
            else "no nodes available to schedule pods"
        )
        if not self.instant:
            self.record_event(pod, "FailedScheduling", message, "Warning", "default-scheduler")
        created = pod["metadata"]["creationTimestamp"]
        return {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "lastProbeTime": None,
                    "lastTransitionTime": created,
                    "reason": "Unschedulable",
                    "message": message,
                }
            ],
            "qosClass": "BestEffort",
        }

    @staticmethod
    def pod_ready(pod: dict) -> bool:
        cond = next((c for c in pod.get("status", {}).get("conditions") or [] if c["type"] == "Ready"), None)
        return bool(cond and cond["status"] == "True")

    # ----------------------------------------------------------------------------------------- replicasets
    def _new_pod(self, rs: dict) -> None:
        name = f"{rs['metadata']['name']}-{''.join(random.choices(_ALNUM, k=5))}"
        self.create_pod(rs, rs["spec"].get("template") or {}, name, generate_name=rs["metadata"]["name"] + "-")
        if not self.instant:  # the seed's history keeps only the Deployment controller's Events
            self.record_event(rs, "SuccessfulCreate", f"Created pod: {name}", component="replicaset-controller")

    def create_pod(
        self,
        owner: dict,
        template: dict,
        name: str,
        generate_name: str | None = None,
        labels: dict | None = None,
        spec: dict | None = None,
    ) -> dict:
        """A pod from a workload's template, owned by it (``GetPodFromTemplate``), then scheduled."""
        meta = template.get("metadata") or {}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": owner["metadata"]["namespace"],
                "labels": {**copy.deepcopy(meta.get("labels") or {}), **(labels or {})},
                "ownerReferences": [_owner_ref(owner)],
            },
            "spec": {**copy.deepcopy(template.get("spec") or {}), **(spec or {})},
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        }
        if generate_name:
            pod["metadata"]["generateName"] = generate_name
        if meta.get("annotations"):
            pod["metadata"]["annotations"] = copy.deepcopy(meta["annotations"])
        apply_defaults(POD, pod)
        pod["spec"].setdefault("serviceAccountName", "default")
        pod["spec"].setdefault("enableServiceLinks", True)
        error = self.store.service_account_error(pod, generate_name or name)
        if error:
            raise PodForbidden(error)
        self.store.new_object(POD, pod)
        if not pod["spec"].get("nodeName"):
            node = self.pick_node(pod)
            if node:
                pod["spec"]["nodeName"] = node
        self.store.write(POD, pod, "ADDED")
        if pod["spec"].get("nodeName"):
            self._scheduled(pod)
        if self.instant:
            self.ready_at[pod["metadata"]["uid"]] = time.time() - 1
        return pod

    def node(self, name: str) -> dict | None:
        return self.store.lookup(NODE_TYPE, "", name) if name else None

    def nodes(self) -> list[dict]:
        return self._objects(NODE_TYPE)

    @staticmethod
    def node_ready(node: dict) -> bool:
        cond = next((c for c in (node.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), None)
        return cond is None or cond.get("status") == "True"

    def pick_node(self, pod: dict) -> str | None:
        """The scheduler, reduced: a Ready, schedulable node matching ``nodeSelector``, fewest pods first."""
        selector = pod["spec"].get("nodeSelector") or {}
        candidates = [
            n
            for n in self.nodes()
            if self.node_ready(n)
            and not (n.get("spec") or {}).get("unschedulable")
            and selector.items() <= (n["metadata"].get("labels") or {}).items()
        ]
        if not candidates:
            return None
        load: dict[str, int] = {}
        for other in self.store.objects[POD].values():
            node = other["spec"].get("nodeName")
            if node:
                load[node] = load.get(node, 0) + 1
        return min(candidates, key=lambda n: (load.get(n["metadata"]["name"], 0), n["metadata"]["name"]))["metadata"][
            "name"
        ]

    def record_event(
        self,
        obj: dict,
        reason: str,
        message: str,
        etype: str = "Normal",
        component: str = "",
        host: str = "",
        field_path: str = "",
    ) -> None:
        """A ``v1`` Event about ``obj``, as client-go's recorder writes it (a repeat bumps ``count``)."""
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        key = (meta.get("uid", ""), reason, message, component)
        now = now_iso()
        seen = self.event_names.get(key)
        stored = self.store.lookup(EVENT, namespace, seen) if seen else None
        if stored is not None:
            self.store.write(EVENT, {**stored, "count": stored.get("count", 1) + 1, "lastTimestamp": now})
            return
        stamp = time.time_ns()
        while self.store.lookup(EVENT, namespace, f"{meta['name']}.{stamp:x}") is not None:
            stamp += 1
        name = f"{meta['name']}.{stamp:x}"
        involved = {
            "kind": obj.get("kind", ""),
            "namespace": meta.get("namespace", ""),
            "name": meta["name"],
            "uid": meta.get("uid", ""),
            "apiVersion": obj.get("apiVersion", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        if not involved["namespace"]:
            del involved["namespace"]
        if field_path:
            involved["fieldPath"] = field_path
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": {"component": component, **({"host": host} if host else {})},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": etype,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": host,
        }
        self.store.write(EVENT, self.store.new_object(EVENT, event), "ADDED")
        self.event_names[key] = name

    def sync_replicasets(self) -> None:
        now = time.time()
        pods_by_owner: dict[str, list[dict]] = {}
        for pod in self._objects(POD):
            uid = _controller_uid(pod)
            if uid:
                pods_by_owner.setdefault(uid, []).append(pod)
        for rs in self._objects(REPLICASET):
            pods = pods_by_owner.get(rs["metadata"]["uid"], [])
            desired = _replicas(rs)
            # nothing to do for a ReplicaSet whose pods and itself are as last synced (no timer pending)
            key = (rs["metadata"]["resourceVersion"], *(p["metadata"]["resourceVersion"] for p in pods))
            if (
                len(pods) == desired
                and not rs["spec"].get("minReadySeconds")
                and self.settled.get(rs["metadata"]["uid"]) == key
            ):
                continue
            failure = None
            if len(pods) < desired:
                for _ in range(desired - len(pods)):
                    try:
                        self._new_pod(rs)
                    except PodForbidden as exc:
                        failure = str(exc)
                        self.record_event(
                            rs, "FailedCreate", f"Error creating: {failure}", "Warning", "replicaset-controller"
                        )
                        break
            elif len(pods) > desired:
                ranked = sorted(pods, key=lambda p: (self.pod_ready(p), -self.ready_at.get(p["metadata"]["uid"], 0)))
                for pod in ranked[: len(pods) - desired]:
                    self.store.remove(POD, pod)
                    self.ready_at.pop(pod["metadata"]["uid"], None)
                    if not self.instant:
                        self.record_event(
                            rs,
                            "SuccessfulDelete",
                            f"Deleted pod: {pod['metadata']['name']}",
                            component="replicaset-controller",
                        )
            pods = [
                p
                for p in self._objects(POD, rs["metadata"]["namespace"])
                if _controller_uid(p) == rs["metadata"]["uid"]
            ]
            min_ready = rs["spec"].get("minReadySeconds", 0)
            ready = [p for p in pods if self.pod_ready(p)]
            available = [p for p in ready if now - self.ready_at.get(p["metadata"]["uid"], now) >= min_ready]
            status = {"replicas": len(pods)}
            template_labels = ((rs["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
            labelled = sum(1 for p in pods if template_labels.items() <= (p["metadata"].get("labels") or {}).items())
            for key, value in (
                ("fullyLabeledReplicas", labelled),
                ("readyReplicas", len(ready)),
                ("availableReplicas", len(available)),
            ):
                if value:
                    status[key] = value
            status["observedGeneration"] = rs["metadata"].get("generation", 1)
            previous = _get_condition(rs.get("status") or {}, "ReplicaFailure")
            if failure:  # calculateStatus: ReplicaFailure while pods cannot be created, removed once they can
                status["conditions"] = [
                    previous
                    if previous and previous.get("message") == failure
                    else {
                        "type": "ReplicaFailure",
                        "status": "True",
                        "lastTransitionTime": now_iso(),
                        "reason": "FailedCreate",
                        "message": failure,
                    }
                ]
            elif previous and len(pods) < desired:
                status["conditions"] = [previous]
            if status != rs.get("status"):
                rs = self.store.write(REPLICASET, {**rs, "status": status, "metadata": dict(rs["metadata"])})
            if len(pods) == desired:
                self.settled[rs["metadata"]["uid"]] = (
                    rs["metadata"]["resourceVersion"],
                    *(p["metadata"]["resourceVersion"] for p in pods),
                )

    # ------------------------------------------------------------------------------------------ deployments
    def sync_deployments(self) -> None:
        rs_by_owner: dict[str, list[dict]] = {}
        for rs in self._objects(REPLICASET):
            uid = _controller_uid(rs)
            if uid:
                rs_by_owner.setdefault(uid, []).append(rs)
        for d in self._objects(DEPLOYMENT):
            owned = rs_by_owner.get(d["metadata"]["uid"], [])
            key = (d["metadata"]["resourceVersion"], *(rs["metadata"]["resourceVersion"] for rs in owned))
            if self.settled.get(d["metadata"]["uid"]) == key:
                continue  # complete, and nothing it looks at changed since
            before = self.store.rv
            DeploymentSync(self, d, owned).run()
            progressing = _get_condition(d.get("status") or {}, "Progressing")
            if self.store.rv == before and progressing and progressing["reason"] == "NewReplicaSetAvailable":
                self.settled[d["metadata"]["uid"]] = key  # a sync that changed nothing on a complete rollout


class DeploymentSync:
    """One pass of ``syncDeployment`` for one Deployment."""

    def __init__(self, controllers: Controllers, d: dict, rs_list: list[dict]):
        self.c = controllers
        self.store = controllers.store
        self.old_d = d
        # the controller changes annotations and status only: copy those, share the rest
        meta = {**d["metadata"], "annotations": dict(d["metadata"].get("annotations") or {})}
        self.d = {**d, "metadata": meta, "status": copy.deepcopy(d.get("status") or {})}
        self.rs_list = sorted(rs_list, key=lambda rs: (rs["metadata"]["creationTimestamp"], rs["metadata"]["name"]))
        self.now = now_iso()

    # -------------------------------------------------------------------------------------------- helpers
    def _save_rs(self, old: dict, new: dict) -> dict:
        stored = self.store.write_if_changed(REPLICASET, old, new)
        self.rs_list = [stored if rs["metadata"]["uid"] == stored["metadata"]["uid"] else rs for rs in self.rs_list]
        return stored

    def _event(self, reason: str, message: str) -> None:
        self.c.record_event(self.d, reason, message, component="deployment-controller")

    def scale_rs(self, rs: dict, replicas: int) -> dict:
        """``scaleReplicaSet``: size and the desired/max-replicas annotations."""
        desired = _replicas(self.d)
        annotations = rs["metadata"].get("annotations") or {}
        wanted = {DESIRED: str(desired), MAX_REPLICAS: str(desired + max_surge(self.d))}
        if _replicas(rs) == replicas and all(annotations.get(k) == v for k, v in wanted.items()):
            return rs
        new = copy.deepcopy(rs)
        new["metadata"].setdefault("annotations", {}).update(wanted)
        if _replicas(rs) != replicas:
            verb = "up" if replicas > _replicas(rs) else "down"
            new["spec"]["replicas"] = replicas
            new["metadata"]["generation"] = rs["metadata"].get("generation", 1) + 1
            self._event(
                "ScalingReplicaSet",
                f"Scaled {verb} replica set {rs['metadata']['name']} from {_replicas(rs)} to {replicas}",
            )
        return self._save_rs(rs, new)

    def _annotations_to_copy(self, rs: dict) -> dict:
        """The Deployment's annotations that the ReplicaSet lacks (``copyDeploymentAnnotationsToReplicaSet``)."""
        current = rs["metadata"].get("annotations") or {}
        return {
            key: value
            for key, value in (self.d["metadata"].get("annotations") or {}).items()
            if key not in _NOT_COPIED and current.get(key) != value
        }

    def _set_revision(self, revision: str) -> None:
        annotations = self.d["metadata"].setdefault("annotations", {})
        annotations[REVISION] = revision

    # ------------------------------------------------------------------------------------- new replicaset
    def get_new_rs(self, create: bool) -> tuple[dict | None, list[dict]]:
        """``getAllReplicaSetsAndSyncRevision``: find (or create) the new RS, renumbering a reused one."""
        template = _without_hash(self.d["spec"].get("template"))
        new_rs = next((rs for rs in self.rs_list if _without_hash(rs["spec"].get("template")) == template), None)
        old = [rs for rs in self.rs_list if rs is not new_rs]
        new_revision = max((_revision(rs) for rs in old), default=0) + 1
        if new_rs is not None:
            annotations = self._annotations_to_copy(new_rs)
            current = _revision(new_rs)
            if current < new_revision:
                existing = new_rs["metadata"].get("annotations") or {}
                if REVISION in existing:
                    history = existing.get(REVISION_HISTORY)
                    annotations[REVISION_HISTORY] = f"{history},{current}" if history else str(current)
                annotations[REVISION] = str(new_revision)
            min_ready = self.d["spec"].get("minReadySeconds", 0)
            if annotations or new_rs["spec"].get("minReadySeconds", 0) != min_ready:
                updated = copy.deepcopy(new_rs)
                updated["metadata"].setdefault("annotations", {}).update(annotations)
                if updated["spec"].get("minReadySeconds", 0) != min_ready:
                    updated["spec"]["minReadySeconds"] = min_ready
                    updated["metadata"]["generation"] = updated["metadata"].get("generation", 1) + 1
                new_rs = self._save_rs(new_rs, updated)
            self._set_revision(str(_revision(new_rs)))
            if _has_deadline(self.d) and _get_condition(self.d["status"], "Progressing") is None:
                _set_condition(
                    self.d["status"],
                    _condition(
                        "Progressing",
                        "True",
                        "FoundNewReplicaSet",
                        f'Found new replica set "{new_rs["metadata"]["name"]}"',
                        self.now,
                    ),
                )
            return new_rs, old
        if not create:
            return None, old
        pod_hash = template_hash(template)
        rs_template = copy.deepcopy(template)  # template is a shallow copy: never change it in place
        rs_template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = copy.deepcopy(self.d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        meta = self.d["metadata"]
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{pod_hash}",
                "namespace": meta["namespace"],
                "labels": copy.deepcopy(rs_template["metadata"]["labels"]),
                "annotations": {},
                "ownerReferences": [_owner_ref(self.d)],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": self.d["spec"].get("minReadySeconds", 0),
                "selector": selector,
                "template": rs_template,
            },
        }
        if self.store.lookup(REPLICASET, meta["namespace"], rs["metadata"]["name"]) is not None:
            return None, old  # a hash collision with a foreign ReplicaSet: leave it (the real one bumps collisionCount)
        rs["metadata"]["annotations"].update(self._annotations_to_copy(rs))
        rs["metadata"]["annotations"][REVISION] = str(new_revision)
        desired = _replicas(self.d)
        rs["metadata"]["annotations"].update({DESIRED: str(desired), MAX_REPLICAS: str(desired + max_surge(self.d))})
        rs["spec"]["replicas"] = self.new_rs_replicas([*old, rs], rs)
        self.store.new_object(REPLICASET, rs)
        apply_defaults(REPLICASET, rs)
        rs["status"] = {"replicas": 0}
        self.store.write(REPLICASET, rs, "ADDED")
        self.rs_list.append(rs)
        if rs["spec"]["replicas"]:
            self._event(
                "ScalingReplicaSet",
                f"Scaled up replica set {rs['metadata']['name']} from 0 to {rs['spec']['replicas']}",
            )
        self._set_revision(str(new_revision))
        if _has_deadline(self.d):
            _set_condition(
                self.d["status"],
                _condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetCreated",
                    f'Created new replica set "{rs["metadata"]["name"]}"',
                    self.now,
                ),
            )
        return rs, old

    def new_rs_replicas(self, all_rs: list[dict], new_rs: dict) -> int:
        """``NewRSNewReplicas``."""
        desired = _replicas(self.d)
        if not _rolling(self.d):
            return desired
        if _replicas(new_rs) == desired:
            return desired
        total = sum(_replicas(rs) for rs in all_rs)
        max_total = desired + max_surge(self.d)
        if total >= max_total:
            return _replicas(new_rs)
        return _replicas(new_rs) + min(max_total - total, desired - _replicas(new_rs))

    # ------------------------------------------------------------------------------------------------ sync
    def run(self) -> None:
        d = self.d
        if d["metadata"].get("deletionTimestamp"):
            return
        self.check_paused_conditions()
        if d["spec"].get("paused") or self.is_scaling_event():
            new_rs, old = self.get_new_rs(create=False)
            self.scale(new_rs, old)
            if d["spec"].get("paused"):
                self.cleanup(old)
            self.sync_status(new_rs, rollout=False)
        elif _rolling(d):
            self.rollout_rolling()
        else:
            self.rollout_recreate()

    def check_paused_conditions(self) -> None:
        if not _has_deadline(self.d):
            return
        status = self.d["status"]
        cond = _get_condition(status, "Progressing")
        if cond and cond["reason"] == "ProgressDeadlineExceeded":
            return
        paused_cond = cond is not None and cond["reason"] == "DeploymentPaused"
        if self.d["spec"].get("paused") and not paused_cond:
            _set_condition(
                status, _condition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", self.now)
            )
        elif not self.d["spec"].get("paused") and paused_cond:
            _set_condition(
                status, _condition("Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed", self.now)
            )

    def is_scaling_event(self) -> bool:
        new_rs, old = self.get_new_rs(create=False)
        for rs in [r for r in [*old, new_rs] if r is not None and _replicas(r) > 0]:
            desired = (rs["metadata"].get("annotations") or {}).get(DESIRED)
            if desired is not None and desired != str(_replicas(self.d)):
                return True
        return False

    def scale(self, new_rs: dict | None, old: list[dict]) -> None:
        """``scale``: one active RS takes the full count; otherwise proportional scaling of all active ones."""
        desired = _replicas(self.d)
        active = [rs for rs in ([new_rs] if new_rs else []) + old if _replicas(rs) > 0]
        if len(active) <= 1:
            target = active[0] if active else (new_rs or (max(old, key=_revision) if old else None))
            if target is not None and _replicas(target) != desired:
                self.scale_rs(target, desired)
            return
        if new_rs is not None and _replicas(new_rs) == desired and _status(new_rs, "availableReplicas") == desired:
            for rs in old:
                if _replicas(rs) > 0:
                    self.scale_rs(rs, 0)
            return
        if not _rolling(self.d):
            return
        allowed = desired + max_surge(self.d) if desired > 0 else 0
        to_add = allowed - sum(_replicas(rs) for rs in active)
        # larger first; on a tie newer first when scaling up, older first when scaling down
        active.sort(key=lambda rs: (rs["metadata"]["creationTimestamp"], rs["metadata"]["name"]), reverse=to_add > 0)
        active.sort(key=_replicas, reverse=True)
        sizes, added = {}, 0
        for rs in active:
            proportion = 0
            if to_add != 0 and to_add != added:
                annotated = int((rs["metadata"].get("annotations") or {}).get(MAX_REPLICAS, 0)) or _status(
                    self.d, "replicas"
                )
                fraction = math.floor(_replicas(rs) * allowed / annotated + 0.5) - _replicas(rs) if annotated else 0
                remaining = to_add - added
                proportion = min(fraction, remaining) if to_add > 0 else max(fraction, remaining)
            sizes[rs["metadata"]["uid"]] = _replicas(rs) + proportion
            added += proportion
        for index, rs in enumerate(active):
            size = sizes[rs["metadata"]["uid"]]
            if index == 0 and to_add != 0:
                size = max(0, size + to_add - added)
            self.scale_rs(rs, size)

    def rollout_rolling(self) -> None:
        new_rs, old = self.get_new_rs(create=True)
        if new_rs is None:
            self.sync_status(None, rollout=True)
            return
        desired = _replicas(self.d)
        if _replicas(new_rs) > desired:
            self.scale_rs(new_rs, desired)
            return self.sync_status(new_rs, rollout=True)
        if _replicas(new_rs) < desired:
            wanted = self.new_rs_replicas([*old, new_rs], new_rs)
            if wanted != _replicas(new_rs):
                new_rs = self.scale_rs(new_rs, wanted)
                return self.sync_status(new_rs, rollout=True)
        if self.reconcile_old(new_rs, old):
            return self.sync_status(new_rs, rollout=True)
        if self.complete(self.d["status"]):
            self.cleanup(old)
        self.sync_status(new_rs, rollout=True)

    def reconcile_old(self, new_rs: dict, old: list[dict]) -> bool:
        """``reconcileOldReplicaSets``: clean up unhealthy old pods, then scale old RSs down within maxUnavailable."""
        if not sum(_replicas(rs) for rs in old):
            return False
        all_rs = [*old, new_rs]
        min_available = _replicas(self.d) - max_unavailable(self.d)
        new_unavailable = _replicas(new_rs) - _status(new_rs, "availableReplicas")
        max_scaled_down = sum(_replicas(rs) for rs in all_rs) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        scaled_down = 0
        for rs in sorted(old, key=lambda r: r["metadata"]["creationTimestamp"]):
            if scaled_down >= max_scaled_down:
                break
            if _replicas(rs) == 0 or _replicas(rs) == _status(rs, "availableReplicas"):
                continue
            count = min(max_scaled_down - scaled_down, _replicas(rs) - _status(rs, "availableReplicas"))
            self.scale_rs(rs, _replicas(rs) - count)
            scaled_down += count
        old = [rs for rs in self.rs_list if rs["metadata"]["uid"] != new_rs["metadata"]["uid"]]
        available = sum(_status(rs, "availableReplicas") for rs in [*old, new_rs])
        if available > min_available:
            budget, done = available - min_available, 0
            for rs in sorted(old, key=lambda r: r["metadata"]["creationTimestamp"]):
                if done >= budget:
                    break
                if _replicas(rs) == 0:
                    continue
                count = min(_replicas(rs), budget - done)
                self.scale_rs(rs, _replicas(rs) - count)
                done += count
            scaled_down += done
        return scaled_down > 0

    def rollout_recreate(self) -> None:
        new_rs, old = self.get_new_rs(create=False)
        scaled_down = False
        for rs in old:
            if _replicas(rs) > 0:
                self.scale_rs(rs, 0)
                scaled_down = True
        if scaled_down:
            return self.sync_status(new_rs, rollout=True)
        new_uid = new_rs["metadata"]["uid"] if new_rs else None
        if any(_status(rs, "replicas") for rs in self.rs_list if rs["metadata"]["uid"] != new_uid):
            return self.sync_status(new_rs, rollout=True)
        if new_rs is None:
            new_rs, old = self.get_new_rs(create=True)
        if new_rs is not None and _replicas(new_rs) != _replicas(self.d):
            new_rs = self.scale_rs(new_rs, _replicas(self.d))
        if self.complete(self.d["status"]):
            self.cleanup(old)
        self.sync_status(new_rs, rollout=True)

    def cleanup(self, old: list[dict]) -> None:
        """``cleanupDeployment``: delete the oldest idle ReplicaSets beyond ``revisionHistoryLimit``."""
        limit = self.d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        cleanable = sorted(old, key=_revision)
        for rs in cleanable[: max(0, len(cleanable) - limit)]:
            if (
                _status(rs, "replicas")
                or _replicas(rs)
                or rs["metadata"].get("generation", 1) > _status(rs, "observedGeneration")
            ):
                continue
            self.store.cascade(rs)
            self.store.remove(REPLICASET, rs)
            self.rs_list = [r for r in self.rs_list if r["metadata"]["uid"] != rs["metadata"]["uid"]]

    def complete(self, status: dict) -> bool:
        desired = _replicas(self.d)
        return (
            status.get("updatedReplicas", 0) == desired
            and status.get("replicas", 0) == desired
            and status.get("availableReplicas", 0) == desired
            and status.get("observedGeneration", 0) >= self.d["metadata"].get("generation", 1)
        )

    def calculate_status(self, new_rs: dict | None) -> dict:
        all_rs = self.rs_list
        available = sum(_status(rs, "availableReplicas") for rs in all_rs)
        unavailable = max(0, sum(_replicas(rs) for rs in all_rs) - available)
        status = {"observedGeneration": self.d["metadata"].get("generation", 1)}
        for key, value in (
            ("replicas", sum(_status(rs, "replicas") for rs in all_rs)),
            ("updatedReplicas", _status(new_rs, "replicas") if new_rs else 0),
            ("readyReplicas", sum(_status(rs, "readyReplicas") for rs in all_rs)),
            ("availableReplicas", available),
            ("unavailableReplicas", unavailable),
        ):
            if value:
                status[key] = value
        status["conditions"] = copy.deepcopy(self.d["status"].get("conditions") or [])
        if available >= _replicas(self.d) - max_unavailable(self.d):
            cond = _condition(
                "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", self.now
            )
        else:
            cond = _condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                self.now,
            )
        _set_condition(status, cond)
        return status

    def sync_status(self, new_rs: dict | None, rollout: bool) -> None:
        """``syncRolloutStatus`` (rollout) or ``syncDeploymentStatus`` (paused, scaling)."""
        status = self.calculate_status(new_rs)
        previous = self.d["status"]
        if rollout:
            if not _has_deadline(self.d):
                _remove_condition(status, "Progressing")
            current = _get_condition(previous, "Progressing")
            is_complete = (
                status.get("replicas", 0) == status.get("updatedReplicas", 0)
                and current is not None
                and current["reason"] == "NewReplicaSetAvailable"
            )
            if _has_deadline(self.d) and not is_complete and new_rs is not None:
                name = new_rs["metadata"]["name"]
                old_replicas = previous.get("replicas", 0) - previous.get("updatedReplicas", 0)
                new_old_replicas = status.get("replicas", 0) - status.get("updatedReplicas", 0)
                if self.complete(status):
                    _set_condition(
                        status,
                        _condition(
                            "Progressing",
                            "True",
                            "NewReplicaSetAvailable",
                            f'ReplicaSet "{name}" has successfully progressed.',
                            self.now,
                        ),
                    )
                elif (
                    status.get("updatedReplicas", 0) > previous.get("updatedReplicas", 0)
                    or new_old_replicas < old_replicas
                    or status.get("readyReplicas", 0) > previous.get("readyReplicas", 0)
                    or status.get("availableReplicas", 0) > previous.get("availableReplicas", 0)
                ):
                    cond = _condition(
                        "Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.', self.now
                    )
                    if current is not None:
                        if current["status"] == "True":
                            cond["lastTransitionTime"] = current["lastTransitionTime"]
                        _remove_condition(status, "Progressing")
                    _set_condition(status, cond)
                elif self.timed_out(status):
                    _set_condition(
                        status,
                        _condition(
                            "Progressing",
                            "False",
                            "ProgressDeadlineExceeded",
                            f'ReplicaSet "{name}" has timed out progressing.',
                            self.now,
                        ),
                    )
        failures = [
            cond
            for rs in ([new_rs] if new_rs else []) + [r for r in self.rs_list if r is not new_rs]
            for cond in (rs.get("status") or {}).get("conditions") or []
            if cond["type"] == "ReplicaFailure"
        ]
        if failures:  # getReplicaFailures: the ReplicaSet's failure moves into the Deployment's conditions
            cond = failures[0]
            _set_condition(
                status,
                _condition("ReplicaFailure", cond["status"], cond["reason"], cond["message"], self.now),
            )
        else:
            _remove_condition(status, "ReplicaFailure")
        if "collisionCount" in previous:
            status["collisionCount"] = previous["collisionCount"]
        self.d["status"] = status
        self.store.write_if_changed(DEPLOYMENT, self.old_d, self.d)

    def timed_out(self, status: dict) -> bool:
        cond = _get_condition(status, "Progressing")
        if cond is None or cond["reason"] == "NewReplicaSetAvailable":
            return False
        if cond["reason"] == "ProgressDeadlineExceeded":
            return True
        return _parse_time(cond["lastUpdateTime"]) + self.d["spec"]["progressDeadlineSeconds"] < time.time()
