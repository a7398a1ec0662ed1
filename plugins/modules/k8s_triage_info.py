#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_triage_info
short_description: Kubernetes triage of a namespace or workload (pods, events, rollout history, nodes, logs), bounded
version_added: 0.1.0
author:
  - firebreak.runbooks maintainers (@firebreak)
description:
  - The "Check Infrastructure" step of the Kubernetes playbooks (C(kubectl describe pod), C(kubectl logs),
    C(kubectl get events), node status for C(KubeNodeNotReady)) in one module call, with bounded output.
  - Reports the pods that are not ready with their containers' waiting or terminated reasons and restart counts,
    the most recent Events (sorted by time), the rollout history of the workloads (revision, images, change-cause),
    node conditions, and the last log lines of crashing containers.
  - With O(evidence_dir), snapshots the ConfigMaps and Secrets the workloads use into
    C(<evidence_dir>/k8s/<namespace>/<Kind>-<name>-<time>.json) (mode 0600; Secret values kept restorable there,
    never returned), so that M(firebreak.runbooks.k8s_config_rollback) can restore them later in the incident.
    In check mode nothing is written.
  - Changes nothing in the cluster.
options:
  namespace:
    description:
      - The namespace to triage.
    type: str
    required: true
  kind:
    description:
      - Kind of the workload to focus on (with O(name)).
    type: str
    choices: [Deployment, StatefulSet, DaemonSet]
    default: Deployment
  name:
    description:
      - Name of the workload to focus on. When omitted, every Deployment, StatefulSet and DaemonSet of the namespace.
    type: str
  events:
    description:
      - How many of the most recent Events to return.
    type: int
    default: 20
  log_lines:
    description:
      - How many log lines to return per crashing container (previous instance when it restarted).
    type: int
    default: 20
  max_pods:
    description:
      - At most this many not-ready pods are listed, and logs are read for at most 5 containers.
    type: int
    default: 20
  evidence_dir:
    description:
      - The incident's evidence directory (C(incidents/<incident_id>/evidence)); when set, the ConfigMaps and Secrets
        the workloads use are snapshotted there.
    type: path
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - firebreak.runbooks.step.K8S
  - firebreak.runbooks.step.INCIDENT
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
requirements:
  - kubernetes >= 24.2.0
  - PyYAML >= 3.11
seealso:
  - module: firebreak.runbooks.k8s_config_rollback
  - module: firebreak.runbooks.k8s_rollout_undo
"""

EXAMPLES = r"""
- name: Triage the api Deployment and snapshot its configuration for the incident
  firebreak.runbooks.k8s_triage_info:
    namespace: shop
    name: api
    incident_id: "{{ incident_id }}"
    evidence_dir: "incidents/{{ incident_id }}/evidence"
  register: triage
"""

RETURN = r"""
summary:
  description: One line per finding, for people.
  returned: always
  type: list
  elements: str
  sample: ["Deployment api: rollout ProgressDeadlineExceeded", "pod api-6c9f-x2k4p not ready: api: ImagePullBackOff"]
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: evidence}
containment: {description: Always empty here., returned: always, type: list, elements: dict, sample: []}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
k8s_verb: {description: The verb of the failed Kubernetes call., returned: on its failure, type: str, sample: PATCH}
k8s_status: {description: Its HTTP status (C(null) if unanswered)., returned: on its failure, type: int, sample: 409}
workloads:
  description:
    - The workloads triaged, each with C(kind), C(name), C(images), C(rollout) (state and message) and C(history).
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "Deployment", "name": "api", "rollout": {"state": "failed"}, "history": [{"revision": 3}]}]
pods_not_ready:
  description: Pods that are not ready, with C(name), C(phase), C(reasons) and C(restarts).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "api-6c9f-x2k4p", "phase": "Pending", "reasons": ["api: ImagePullBackOff"], "restarts": 0}]
events:
  description: The most recent Events of the namespace (of the workload, its ReplicaSets and pods when O(name) is set).
  returned: always
  type: list
  elements: dict
  sample: [{"time": "2026-11-24T13:30:00Z", "type": "Warning", "reason": "BackOff", "object": "Pod/api-1", "count": 3}]
nodes:
  description: Nodes with C(ready), C(unschedulable) and the C(problems) among their conditions.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "node-1", "ready": true, "unschedulable": false, "problems": []}]
logs:
  description:
    - Last log lines of crashing containers (C(pod), C(container), C(reason), C(restarts), C(lines) or C(error)).
  returned: always
  type: list
  elements: dict
  sample: [{"pod": "api-1", "container": "api", "reason": "CrashLoopBackOff", "restarts": 4, "lines": ["panic"]}]
snapshots:
  description: ConfigMaps and Secrets snapshotted (C(kind), C(name), C(path), C(keys) as digests; values never shown).
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "Secret", "name": "api-db", "path": "incidents/INC-1/evidence/k8s/shop/Secret-api-db-2026.json"}]
msg: {description: What the step read (one line)., returned: always, type: str}
before: {description: C(null); this step changes nothing., returned: always, type: raw, sample: null}
after: {description: The findings as read (as RV(summary))., returned: always, type: raw}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.common import (
    K8sInputError,
    K8sStepError,
    Kube,
    auth_argument_spec,
    run_module,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.config import (
    digests,
    references,
    snapshot_dir,
    snapshot_document,
    snapshot_filename,
    write_snapshot,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.rollout import (
    controller_revision_history,
    current_entry,
    deployment_history,
    images,
    owned_by,
    pod_problems,
    rollout_status,
    selector_matches,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.triage import (
    clip,
    crashing_containers,
    events_summary,
    nodes_summary,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    INCIDENT_OPTION,
    iso_seconds,
    utc_now,
)
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

ARGUMENT_SPEC = auth_argument_spec(
    namespace=dict(type="str", required=True),
    kind=dict(type="str", choices=["Deployment", "StatefulSet", "DaemonSet"], default="Deployment"),
    name=dict(type="str"),
    events=dict(type="int", default=20),
    log_lines=dict(type="int", default=20),
    max_pods=dict(type="int", default=20),
    evidence_dir=dict(type="path"),
    **INCIDENT_OPTION,
)
KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def run(module) -> dict:
    params = module.params
    namespace = params["namespace"]
    for option in ("events", "log_lines", "max_pods"):
        if params[option] < 0:
            raise K8sInputError(f"{option} must be >= 0, got {params[option]}")
    kube = Kube.from_module(module)
    kube.namespace(namespace)
    if params["name"]:
        targets = [(params["kind"], kube.get(params["kind"], namespace, params["name"]))]
    else:
        targets = [(k, w) for k in KINDS for w in kube.list(k, namespace)]
    replicasets = kube.list("ReplicaSet", namespace) if any(k == "Deployment" for k, _ in targets) else []
    revisions = kube.list("ControllerRevision", namespace) if any(k != "Deployment" for k, _ in targets) else []
    all_pods = kube.list("Pod", namespace)

    summary, workloads, pods, names = [], [], [], set()
    for kind, obj in targets:
        uid = obj["metadata"]["uid"]
        if kind == "Deployment":
            history = deployment_history(obj, replicasets)
            owners = {uid} | {rs["metadata"]["uid"] for rs in replicasets if owned_by(rs, uid)}
            names |= {rs["metadata"]["name"] for rs in replicasets if owned_by(rs, uid)}
        else:
            history = controller_revision_history(obj, revisions)
            owners = {uid}
        current = current_entry(kind, obj, history)
        state, why = rollout_status(kind, obj)
        mine = [
            p
            for p in all_pods
            if any(owned_by(p, o) for o in owners)
            and selector_matches(obj["spec"].get("selector"), p["metadata"].get("labels"))
        ]
        pods.extend(mine)
        names.add(obj["metadata"]["name"])
        workloads.append(
            {
                "kind": kind,
                "name": obj["metadata"]["name"],
                "images": images(obj["spec"].get("template")),
                "revision": current["revision"] if current else None,
                "rollout": {"state": state, "message": why},
                "history": [
                    {"revision": h["revision"], "images": h["images"], "change_cause": h["change_cause"]}
                    for h in history[-10:]
                ],
            }
        )
        if state != "done":
            summary.append(f"{kind} {obj['metadata']['name']}: rollout {state}: {why}")
    if not params["name"]:
        pods = all_pods
    names |= {p["metadata"]["name"] for p in pods}

    not_ready = pod_problems(pods, params["max_pods"])
    for pod in not_ready:
        summary.append(
            f"pod {pod['name']} not ready: {', '.join(pod['reasons']) or pod['phase']} (restarts {pod['restarts']})"
        )

    events = events_summary(kube.list("Event", namespace), names if params["name"] else None, params["events"])
    nodes = nodes_summary(kube.list("Node"))
    for node in nodes:
        if not node["ready"]:
            summary.append(f"node {node['name']} NotReady (KubeNodeNotReady)")
        elif node["problems"]:
            summary.append(f"node {node['name']}: {', '.join(p['type'] for p in node['problems'])}")

    logs = []
    for entry in crashing_containers(pods, 5):
        query = [("container", entry["container"]), ("tailLines", str(params["log_lines"]))]
        if entry["previous"]:
            query.append(("previous", "true"))
        try:
            text = kube.request("GET", "Pod", namespace, entry["pod"], subresource="log", raw=True, query_params=query)
            entry["lines"] = (
                [clip(line) for line in text.splitlines()[-params["log_lines"] :]] if params["log_lines"] else []
            )
        except K8sStepError as e:
            entry["error"] = clip(e.message, 300)
        logs.append(entry)

    snapshots = []
    if params["evidence_dir"]:
        used = set()
        for _, obj in targets:
            used |= references(((obj.get("spec") or {}).get("template") or {}).get("spec") or {})
        captured = iso_seconds(utc_now())
        for kind, name in sorted(used):
            obj = kube.get(kind, namespace, name, missing_ok=True)
            if obj is None:
                summary.append(f"{kind} {name} is used but does not exist")
                continue
            obj.setdefault("kind", kind)
            doc = snapshot_document(obj, captured, params["incident_id"])
            if module.check_mode:
                path = f"{snapshot_dir(params['evidence_dir'], namespace)}/{snapshot_filename(kind, name, captured)}"
            else:
                path = write_snapshot(params["evidence_dir"], doc)
            snapshots.append({"kind": kind, "name": name, "path": path, "keys": digests(kind, doc)})

    return {
        "changed": False,
        "msg": f"{len(summary)} finding(s) in namespace {namespace}" if summary else f"no findings in {namespace}",
        "before": None,
        "after": summary[:50],
        "summary": summary[:50],
        "workloads": workloads,
        "pods_not_ready": not_ready,
        "events": events,
        "nodes": nodes,
        "logs": logs,
        "snapshots": snapshots,
    }


def main():
    module = AnsibleK8SModule(module_class=AnsibleModule, argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, run, "evidence")


if __name__ == "__main__":
    main()
