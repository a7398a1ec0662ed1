#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_node_drain
short_description: Cordon and drain a Kubernetes node, respecting PodDisruptionBudgets; uncordon it on release
version_added: 0.1.0
author:
  - firebreak.runbooks maintainers (@firebreak)
description:
  - The "cordon and drain the NotReady node" step of the Kubernetes service-down playbook (alert C(KubeNodeNotReady)),
    as C(kubectl drain) does it, in one call.
  - First it lists the node's pods and decides, before changing anything. DaemonSet pods and mirror (static) pods are
    skipped. Pods with C(emptyDir) data are refused unless O(delete_emptydir_data=true), and pods no controller
    recreates unless O(force=true). A refused pod fails the step naming it and why, with nothing changed.
  - O(state=drained) cordons the node (C(spec.unschedulable=true)), recording the incident in the node's annotations
    C(firebreak.io/cordoned-by) and C(firebreak.io/cordon-held-by). A node a firebreak drain of another incident
    cordoned gets this incident added to C(cordon-held-by); a node cordoned by hand is left as it is. Then it evicts
    the pods through the Eviction API (C(POST .../pods/NAME/eviction), C(policy/v1)), so PodDisruptionBudgets are
    respected. An eviction a budget refuses (429) is tried again until O(wait_timeout). Then the step fails,
    naming the pod and the budget, and leaves the node cordoned (the containment entry records it). Last, it waits
    (within O(wait_timeout)) for the evicted pods to be gone, and reads the node and its pods back.
  - O(state=cordoned) only cordons. O(state=released) takes this incident's hold off the cordon recorded in
    O(containments). It uncordons the node only when a firebreak drain cordoned it and no other incident still holds
    it. A node cordoned by hand stays cordoned, one another incident holds stays cordoned, and one someone uncordoned
    meanwhile is left alone. Each is reported. Evicted pods are not brought back (their controllers recreated them
    elsewhere).
  - Writes to the node carry its resourceVersion; a conflict (someone wrote in between) reads it again, a few times.
  - Check mode lists what would be evicted, skipped and refused and changes nothing.
options:
  node:
    description:
      - The node to drain or release.
    type: str
    required: true
  state:
    description:
      - V(drained) cordons and evicts, V(cordoned) only cordons, V(released) undoes this incident's cordon.
    type: str
    choices: [drained, cordoned, released]
    default: drained
  delete_emptydir_data:
    description:
      - Evict pods with C(emptyDir) volumes too (their data is lost), like C(kubectl drain --delete-emptydir-data).
    type: bool
    default: false
  force:
    description:
      - Evict pods that no controller (ReplicaSet, StatefulSet, Job...) recreates too (they are gone for good), like
        C(kubectl drain --force).
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds the evictions (retried while a PodDisruptionBudget refuses them) and the wait for the evicted pods to
        be gone may take, in all.
    type: int
    default: 120
  poll_interval:
    description:
      - Seconds between eviction retries and between checks that the evicted pods are gone.
    type: float
    default: 2.0
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - firebreak.runbooks.step.K8S
  - firebreak.runbooks.step.INCIDENT
  - firebreak.runbooks.step.CONTAINMENT
  - firebreak.runbooks.step.ATTRIBUTES
requirements:
  - kubernetes >= 24.2.0
  - PyYAML >= 3.11
notes:
  - O(incident_id) is required outside check mode; it is recorded on the node.
  - The pods' controllers recreate them on other nodes; the drain does not wait for that (verify the workloads'
    health afterwards).
"""

EXAMPLES = r"""
- name: Cordon and drain the NotReady node
  firebreak.runbooks.k8s_node_drain:
    node: ip-10-0-1-23.eu-west-1.compute.internal
    incident_id: INC-2041
    wait_timeout: 300

- name: Release it (uncordon, unless another incident still holds it)
  firebreak.runbooks.k8s_node_drain:
    node: ip-10-0-1-23.eu-west-1.compute.internal
    state: released
    incident_id: INC-2041
    containments: >-
      {{ lookup('firebreak.runbooks.containments', 'k8s_node_drain', incident_id='INC-2041', wantlist=True) }}
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "cordoned node sandbox-node-1 and evicted 4 pods (2 skipped)"
before:
  description:
    - The node before the step (C(unschedulable), C(cordoned_by), C(held_by), C(ready)) and C(pods), the pods on
      it.
  returned: always
  type: dict
  sample: {"unschedulable": false, "cordoned_by": null, "held_by": [], "ready": "False", "pods": ["shop/front-x"]}
after:
  description: The node and its pods as read back after the step (in check mode, the prediction).
  returned: always
  type: dict
  sample: {"unschedulable": true, "cordoned_by": "INC-2041", "held_by": ["INC-2041"], "ready": "False",
           "pods": ["kube-system/fluentd-abcde"]}
evicted:
  description: The pods evicted (would be evicted, in check mode), as C(namespace/name).
  returned: when state is drained
  type: list
  elements: str
  sample: ["shop/front-6d4b7c9f8-x2k4p"]
left_on_node:
  description:
    - Pods left on the node on purpose (DaemonSet and mirror pods), with why (not C(skipped), which Ansible
      reserves for a skipped task).
  returned: when state is drained
  type: dict
  sample: {"kube-system/fluentd-abcde": "DaemonSet pod (fluentd: its controller runs one on every node)"}
refused:
  description: Pods the drain will not evict without O(delete_emptydir_data) or O(force), with why (the step fails).
  returned: when state is drained
  type: dict
  sample: {}
blocked:
  description: Pods whose eviction a PodDisruptionBudget still refused when O(wait_timeout) ran out, with the budget.
  returned: when state is drained
  type: dict
  sample: {"shop/front-6d4b7c9f8-x2k4p": "shop/front-pdb"}
remaining:
  description: Pods other than the skipped ones still on the node as read back (empty when the drain holds).
  returned: when state is drained
  type: list
  elements: str
  sample: []
outcome:
  description:
    - With O(state=released), C(uncordoned), C(kept) (other incidents hold the cordon), C(cordoned_by_others)
      (cordoned by hand, left so), C(already_uncordoned), or C(nothing) (no entry of this incident).
  returned: when state is released
  type: str
  sample: uncordoned
containment:
  description:
    - The containment entry, when this call cordoned the node or added the incident's hold on it. C(changed) holds
      C(cordoned) (this call cordoned it), C(held) (the incident's hold) and C(evicted) (the pods it evicted; not
      undone by a release). Empty list otherwise.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "3f2a...", "step": "k8s_node_drain", "resource": "node/sandbox-node-1",
            "changed": {"cordoned": true, "held": true, "evicted": ["shop/front-x"]}}]
release:
  description:
    - With O(state=released), the release entry (C(gone=true) when the node no longer exists).
    - No containment ledger claim is needed, the node is the shared record (C(firebreak.io/cordon-held-by)).
  returned: when state is released
  type: list
  elements: dict
  sample: [{"releases": ["3f2a..."], "restored": {"uncordoned": true}, "left_alone": {}}]
gone:
  description: With O(state=released), C(node/NAME) when the node no longer exists. Else empty.
  returned: when state is released
  type: list
  elements: str
  sample: []
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: containment}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
k8s_verb: {description: The verb of the failed Kubernetes call., returned: on its failure, type: str, sample: POST}
k8s_status: {description: Its HTTP status (C(null) if unanswered)., returned: on its failure, type: int, sample: 429}
diff:
  description: The node's cordon and pods before and after, in diff mode.
  returned: when diff mode is on
  type: dict
  sample: {"before": {"unschedulable": false}, "after": {"unschedulable": true}}
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.firebreak.runbooks.plugins.module_utils.containment import ledger
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s import drain
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.common import (
    MERGE_PATCH,
    K8sInputError,
    K8sStepError,
    Kube,
    auth_argument_spec,
    run_module,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    INCIDENT_OPTION,
    containment_entry,
    release_entry,
)
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

ARGUMENT_SPEC = auth_argument_spec(
    node=dict(type="str", required=True),
    state=dict(type="str", choices=["drained", "cordoned", "released"], default="drained"),
    delete_emptydir_data=dict(type="bool", default=False),
    force=dict(type="bool", default=False),
    wait_timeout=dict(type="int", default=120),
    poll_interval=dict(type="float", default=2.0),
    containments=ledger.CONTAINMENT_OPTIONS["containments"],
    **INCIDENT_OPTION,
)
CONFLICT_RETRIES = 5
NO_RETRY_429 = (500, 502, 503, 504)  # an eviction's 429 is a budget's answer: this step retries it itself


def read(kube, name):
    node = kube.get("Node", None, name, missing_ok=True)
    if node is None:
        raise K8sInputError(f"node {name!r} not found; nothing changed", status=404)
    return node


def pods_on(kube, name):
    return kube.list("Pod", None, field_selector=f"spec.nodeName={name}")


def state_of(node, pods):
    return {**drain.cordon_state(node), "pods": sorted(drain.pod_key(p) for p in pods)}


def patch_node(kube, name, plan, node):
    """Apply ``plan(node) -> merge patch or None`` with the node's resourceVersion; a 409 reads again."""
    for attempt in range(CONFLICT_RETRIES + 1):
        body = plan(node)
        if body is None:
            return node, False
        try:
            return kube.patch("Node", None, name, body, content_type=MERGE_PATCH), True
        except K8sStepError as err:
            if err.status != 409 or attempt == CONFLICT_RETRIES:
                raise
            node = read(kube, name)
    return node, False  # pragma: no cover - the loop returns or raises


class Drain:
    def __init__(self, module, kube, sleep=time.sleep, clock=time.monotonic):
        self.module = module
        self.kube = kube
        self.sleep = sleep
        self.clock = clock
        self.params = module.params

    def incident(self):
        incident = self.params["incident_id"]
        if not incident:
            if not self.module.check_mode:
                raise K8sInputError("incident_id is required to cordon a node (it is recorded on it); nothing changed")
            return "check-mode"
        return drain.check_incident(incident)

    def evict(self, pod):
        """``"evicted"``, ``"gone"`` or ``("blocked", budget, reason)``."""
        meta = pod["metadata"]
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "deleteOptions": {"preconditions": {"uid": meta["uid"]}} if meta.get("uid") else {},
        }
        try:
            self.kube.request(
                "POST",
                "Pod",
                meta["namespace"],
                meta["name"],
                body=body,
                subresource="eviction",
                what=f"eviction of pod {drain.pod_key(pod)}",
                retry_statuses=NO_RETRY_429,
            )
        except K8sStepError as err:
            if err.status == 404:
                return "gone"
            if err.status == 409:  # the pod was replaced by another of the same name: this one is gone
                return "gone"
            if err.status == 429:
                budget = drain.blocking_budget(err.details, err.message)
                return (
                    "blocked",
                    f"{meta['namespace']}/{budget}" if budget else None,
                    drain.budget_reason(err.details),
                )
            raise
        return "evicted"

    def gone(self, pod):
        found = self.kube.get("Pod", pod["metadata"]["namespace"], pod["metadata"]["name"], missing_ok=True)
        return found is None or found["metadata"].get("uid") != pod["metadata"].get("uid")

    def drained(self):
        params = self.params
        name = drain.check_node(params["node"])
        incident = self.incident()
        if params["wait_timeout"] < 0 or params["poll_interval"] <= 0:
            raise K8sInputError(
                f"wait_timeout must be >= 0 and poll_interval > 0, got {params['wait_timeout']!r} and "
                f"{params['poll_interval']!r}; nothing changed"
            )
        node = read(self.kube, name)
        pods = pods_on(self.kube, name)
        before = state_of(node, pods)
        evicting = params["state"] == "drained"
        plan = drain.classify(pods, params["delete_emptydir_data"], params["force"]) if evicting else None
        result = {"changed": False, "before": before, "containment": []}
        if evicting:
            result.update(evicted=[], left_on_node=plan["skipped"], refused=plan["refused"], blocked={}, remaining=[])
            if plan["refused"]:
                listed = "; ".join(f"{key}: {why}" for key, why in plan["refused"].items())
                raise K8sInputError(f"cannot drain node {name}: {listed}; nothing changed", **result, after=before)
        if self.module.check_mode:
            predicted = drain.cordon_patch(node, incident)
            after = dict(before)
            if predicted is not None:
                annotations = predicted["metadata"]["annotations"]
                after.update(
                    unschedulable=True,
                    cordoned_by=annotations.get(drain.CORDONED_BY, before["cordoned_by"]),
                    held_by=[h for h in annotations.get(drain.HELD_BY, "").split(",") if h],
                )
            if evicting:
                going = {drain.pod_key(p) for p in plan["evict"]}
                after["pods"] = [p for p in before["pods"] if p not in going]
                result["evicted"] = sorted(going)
            result.update(changed=bool(predicted is not None or (evicting and plan["evict"])), after=after)
            result["msg"] = (
                f"check mode: would {'cordon' if predicted is not None else 'keep the cordon of'} node {name}"
                + (f" and evict {len(plan['evict'])} pods ({len(plan['skipped'])} skipped)" if evicting else "")
            )
            return result
        was_cordoned = before["unschedulable"]
        node, wrote = patch_node(self.kube, name, lambda n: drain.cordon_patch(n, incident), node)
        cordoned = wrote and not was_cordoned
        held = incident in drain.holders(node)
        entry_changed = {"cordoned": cordoned, "held": held, "evicted": []}
        if wrote:
            result["changed"] = True
            result["containment"] = [containment_entry(incident, drain.STEP, f"node/{name}", entry_changed, node=name)]
        if evicting:
            self.evict_all(name, plan["evict"], result, entry_changed)
        node = read(self.kube, name)
        pods = pods_on(self.kube, name)
        result["after"] = state_of(node, pods)
        if evicting:
            skipped = set(plan["skipped"])
            result["remaining"] = [p for p in result["after"]["pods"] if p not in skipped]
        how = "cordoned" if cordoned else ("holds the cordon of" if wrote else "kept the cordon of")
        if not held and node["spec"].get("unschedulable"):
            how = "left the cordon (made by hand) of"
        result["msg"] = f"{how} node {name}" + (
            f" and evicted {len(result['evicted'])} pods ({len(plan['skipped'])} skipped)" if evicting else ""
        )
        return result

    def evict_all(self, name, pods, result, entry_changed):
        deadline = self.clock() + self.params["wait_timeout"]
        pending, evicted, blocked = list(pods), [], {}
        while True:
            for pod in list(pending):
                outcome = self.evict(pod)
                if outcome in ("evicted", "gone"):
                    pending.remove(pod)
                    blocked.pop(drain.pod_key(pod), None)
                    if outcome == "evicted":
                        evicted.append(pod)
                        result["evicted"].append(drain.pod_key(pod))
                        entry_changed["evicted"].append(drain.pod_key(pod))
                        result["changed"] = True
                else:
                    blocked[drain.pod_key(pod)] = outcome[1:]
            if not pending or self.clock() >= deadline:
                break
            self.sleep(min(self.params["poll_interval"], max(0.05, deadline - self.clock())))
        if pending:
            result["blocked"] = {key: budget or "?" for key, (budget, _why) in blocked.items()}
            listed = "; ".join(
                f"pod {key} (PodDisruptionBudget {budget or '?'}: {why or 'Cannot evict pod'})"
                for key, (budget, why) in blocked.items()
            )
            result["msg"] = (
                f"node {name} is cordoned, but {len(pending)} pods could not be evicted within "
                f"{self.params['wait_timeout']}s because their PodDisruptionBudget allows no disruption: {listed}; "
                f"evicted {len(evicted)}"
            )
            unready = [drain.pod_key(p) for p in pending if not drain.pod_ready(p)]
            if unready:
                result["msg"] += (
                    f"; {', '.join(unready)} are not Ready (a NotReady node's pods never are): a budget with "
                    "unhealthyPodEvictionPolicy AlwaysAllow lets unhealthy pods be evicted"
                )
            raise K8sStepError(result["msg"], status=429, reason="TooManyRequests", verb="POST", **result)
        left = list(evicted)
        while left:
            left = [pod for pod in left if not self.gone(pod)]
            if not left or self.clock() >= deadline:
                break
            self.sleep(min(self.params["poll_interval"], max(0.05, deadline - self.clock())))
        if left:
            keys = ", ".join(drain.pod_key(p) for p in left)
            result["remaining"] = [drain.pod_key(p) for p in left]
            result["msg"] = (
                f"node {name} is cordoned and its pods evicted, but {keys} still exist after "
                f"{self.params['wait_timeout']}s"
            )
            raise K8sStepError(result["msg"], **result)

    def released(self):
        params = self.params
        name = drain.check_node(params["node"])
        resource = f"node/{name}"
        entries = [
            e
            for e in params["containments"]
            if isinstance(e, dict) and e.get("step") == drain.STEP and e.get("resource") == resource
        ]
        incident = params["incident_id"] or (entries[0].get("incident_id") if entries else None)
        if incident:
            incident = drain.check_incident(incident)
        ids = [e["id"] for e in entries if e.get("id")]
        node = self.kube.get("Node", None, name, missing_ok=True)
        if node is None:
            if not entries:
                raise K8sInputError(f"node {name!r} not found; nothing changed", status=404)
            return {
                "changed": False,
                "before": {},
                "after": {},
                "gone": [resource],
                "outcome": "gone",
                "release": [release_entry(incident, drain.STEP, resource, ids, restored={}, left_alone={}, gone=True)],
                "msg": f"gone: node {name} no longer exists; {len(entries)} containment(s) recorded as released",
            }
        pods = pods_on(self.kube, name)
        before = state_of(node, pods)
        result = {"changed": False, "before": before, "gone": [], "release": []}
        if not entries:
            result.update(after=before, outcome="nothing")
            result["msg"] = f"nothing to release on node {name}: no {drain.STEP} containment of this incident"
            return result
        body, outcome = drain.release_patch(node, incident)
        if self.module.check_mode or body is None:
            after = dict(before)
            if body is not None:
                annotations = body["metadata"]["annotations"]
                if outcome == "uncordoned":
                    after.update(unschedulable=False, cordoned_by=None, held_by=[])
                elif drain.HELD_BY in annotations:
                    after["held_by"] = [h for h in (annotations[drain.HELD_BY] or "").split(",") if h]
            result["after"] = after
            changed = body is not None
        else:
            node, changed = patch_node(self.kube, name, lambda n: drain.release_patch(n, incident)[0], node)
            outcome = drain.release_patch(node, incident)[1] if not changed else outcome
            result["after"] = state_of(read(self.kube, name), pods_on(self.kube, name))
        result["changed"] = changed
        result["outcome"] = outcome
        left_alone = {}
        if outcome == "kept":
            left_alone["kept_for_others"] = [h for h in before["held_by"] if h != incident]
        elif outcome == "cordoned_by_others":
            left_alone["cordoned_by_others"] = True
        elif outcome == "already_uncordoned":
            left_alone["already_uncordoned"] = True
        result["release"] = [
            release_entry(
                incident,
                drain.STEP,
                resource,
                ids,
                restored={"uncordoned": outcome == "uncordoned"},
                left_alone=left_alone,
            )
        ]
        verb = "would uncordon" if self.module.check_mode else "uncordoned"
        result["msg"] = {
            "uncordoned": f"{verb} node {name}",
            "kept": f"node {name} stays cordoned: still held by {', '.join(left_alone.get('kept_for_others', []))}",
            "cordoned_by_others": f"node {name} stays cordoned: someone else cordoned it, not a firebreak drain",
            "already_uncordoned": f"node {name} was already uncordoned by someone else; left as it is",
        }[outcome]
        return result


def run(module) -> dict:
    kube = Kube.from_module(module)
    runner = Drain(module, kube)
    if module.params["state"] == "released":
        return runner.released()
    return runner.drained()


def main():
    module = AnsibleK8SModule(module_class=AnsibleModule, argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, run, "containment")


if __name__ == "__main__":
    main()
