#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_namespace_isolate
short_description: Isolate a Kubernetes namespace with a deny-all NetworkPolicy for an incident, and release it
version_added: 0.1.0
author:
  - firebreak.runbooks maintainers (@firebreak)
description:
  - The "isolate namespace" containment of the EKS plan (section 3, security incident).
  - O(state=isolated) creates the NetworkPolicy C(firebreak-isolate-<incident>) that denies all ingress and egress
    of the namespace's pods (or of the pods matching O(pod_selector)), optionally allowing DNS to kube-system's
    kube-dns and traffic to and from responder namespaces (selected by the C(kubernetes.io/metadata.name) label,
    which the apiserver sets), and labels the namespace C(firebreak.io/quarantined=true) and
    C(firebreak.io/incident=<incident>). It returns a C(containment) entry recording exactly that (and the
    NetworkPolicies that already existed).
  - O(state=released) undoes exactly what the given O(containments) entries say. It deletes the policy the step
    created and puts back the namespace labels it changed, unless someone changed them meanwhile (those are left
    alone and reported). Policies others added are never touched. It returns a C(release) entry.
  - Re-runs change nothing. In check mode nothing is changed.
  - The NetworkPolicy only isolates where the cluster's network plugin enforces NetworkPolicies (on EKS, the VPC
    CNI with network policy enabled, or Calico/Cilium).
options:
  namespace:
    description:
      - The namespace to isolate or release.
    type: str
    required: true
  state:
    description:
      - V(isolated) to contain, V(released) to undo the given O(containments).
    type: str
    choices: [isolated, released]
    default: isolated
  pod_selector:
    description:
      - A label selector (C(matchLabels), C(matchExpressions)) of the pods to isolate; empty isolates every pod.
    type: dict
    default: {}
  allow_dns:
    description:
      - Allow egress to kube-system's kube-dns pods on port 53 (UDP and TCP).
    type: bool
    default: true
  responder_namespaces:
    description:
      - Namespaces allowed to reach the isolated pods and be reached by them (forensics, responders' tooling).
    type: list
    elements: str
    default: []
  containments:
    description:
      - With O(state=released), the containment entries to undo (as the C(firebreak.runbooks.containments) lookup
        returns them). Entries of other steps or namespaces are ignored.
    type: list
    elements: dict
    default: []
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - firebreak.runbooks.step.K8S
  - firebreak.runbooks.step.INCIDENT
  - firebreak.runbooks.step.ATTRIBUTES
requirements:
  - kubernetes >= 24.2.0
  - PyYAML >= 3.11
notes:
  - O(incident_id) is required with O(state=isolated) outside check mode; it names the policy and labels the namespace.
"""

EXAMPLES = r"""
- name: Isolate the shop namespace, letting the forensics namespace in
  firebreak.runbooks.k8s_namespace_isolate:
    namespace: shop
    incident_id: INC-2041
    responder_namespaces: [forensics]

- name: Release it
  firebreak.runbooks.k8s_namespace_isolate:
    namespace: shop
    state: released
    incident_id: INC-2041
    containments: >-
      {{ lookup('firebreak.runbooks.containments', 'k8s_namespace_isolate', incident_id='INC-2041', wantlist=True) }}
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "isolated namespace shop with NetworkPolicy firebreak-isolate-inc-2041"
policy:
  description: The isolation NetworkPolicy as created (or that would be created), with O(state=isolated).
  returned: when state is isolated
  type: dict
  sample: {"metadata": {"name": "firebreak-isolate-inc-2041"}, "spec": {"policyTypes": ["Ingress", "Egress"]}}
before:
  description: The namespace's labels and NetworkPolicy names before the step.
  returned: always
  type: dict
  sample: {"labels": {"kubernetes.io/metadata.name": "shop"}, "policies": []}
after:
  description: The namespace's labels and NetworkPolicy names after the step (in check mode, the prediction).
  returned: always
  type: dict
  sample: {"labels": {"firebreak.io/quarantined": "true"}, "policies": ["firebreak-isolate-inc-2041"]}
containment:
  description:
    - The containment entry (see C(plugins/module_utils/step.py)) when the step changed something in
      O(state=isolated); C(changed) holds C(policy), C(policy_created), C(labels) (previous values, null for absent)
      and C(labels_set). Empty list otherwise.
  returned: always
  type: list
  elements: dict
  sample: {"id": "3f2a...", "step": "k8s_namespace_isolate", "resource": "namespace/shop", "changed": {}}
release:
  description: The release entry, with O(state=released), when entries were given.
  returned: when state is released
  type: dict
  sample: {"releases": ["3f2a..."], "restored": {"policy_deleted": "firebreak-isolate-inc-2041"}, "left_alone": {}}
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: containment}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
k8s_verb: {description: The verb of the failed Kubernetes call., returned: on its failure, type: str, sample: PATCH}
k8s_status: {description: Its HTTP status (C(null) if unanswered)., returned: on its failure, type: int, sample: 409}
diff:
  description: Namespace labels and policy names before and after, in diff mode.
  returned: when diff mode is on
  type: dict
  sample: {"before": {"policies": []}, "after": {"policies": ["firebreak-isolate-inc-2041"]}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s_common import (
    MERGE_PATCH,
    K8sInputError,
    Kube,
    auth_argument_spec,
    run_module,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s_isolate import (
    STEP,
    isolation_policy,
    isolation_spec,
    policy_name,
    quarantine_labels,
    release_plan,
    spec_matches,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.step import (
    INCIDENT_OPTION,
    containment_entry,
    release_entry,
)
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

ARGUMENT_SPEC = auth_argument_spec(
    namespace=dict(type="str", required=True),
    state=dict(type="str", choices=["isolated", "released"], default="isolated"),
    pod_selector=dict(type="dict", default={}),
    allow_dns=dict(type="bool", default=True),
    responder_namespaces=dict(type="list", elements="str", default=[]),
    containments=dict(type="list", elements="dict", default=[]),
    **INCIDENT_OPTION,
)


def snapshot(kube, namespace):
    ns = kube.namespace(namespace)
    policies = sorted(p["metadata"]["name"] for p in kube.list("NetworkPolicy", namespace))
    return ns, {"labels": dict(ns["metadata"].get("labels") or {}), "policies": policies}


def isolate(module, kube) -> dict:
    params = module.params
    namespace, incident = params["namespace"], params["incident_id"]
    if not incident:
        if not module.check_mode:
            raise K8sInputError("incident_id is required to isolate a namespace (it names the policy); nothing changed")
        incident = "check-mode"
    for responder in params["responder_namespaces"]:
        if kube.get("Namespace", None, responder, missing_ok=True) is None:
            raise K8sInputError(f"responder namespace {responder!r} does not exist; nothing changed")
    _ns, before = snapshot(kube, namespace)
    spec = isolation_spec(params["pod_selector"], params["allow_dns"], params["responder_namespaces"])
    policy = isolation_policy(namespace, incident, spec)
    name = policy_name(incident)
    existing = kube.get("NetworkPolicy", namespace, name, missing_ok=True)
    want_labels = quarantine_labels(incident)
    label_changes = {k: before["labels"].get(k) for k, v in want_labels.items() if before["labels"].get(k) != v}
    create = existing is None
    update = not create and not spec_matches(existing.get("spec"), spec)
    changed = create or update or bool(label_changes)
    after = {
        "labels": dict(before["labels"], **want_labels),
        "policies": sorted(set(before["policies"]) | {name}),
    }
    result = {"changed": changed, "policy": policy, "before": before, "containment": []}
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    if module.check_mode:
        result["after"] = after
        result["msg"] = f"check mode: {'would isolate' if changed else 'no change to'} namespace {namespace}"
        return result
    if create:
        kube.create("NetworkPolicy", namespace, policy)
    elif update:
        kube.patch("NetworkPolicy", namespace, name, {"spec": spec}, content_type=MERGE_PATCH)
    if label_changes:
        kube.patch("Namespace", None, namespace, {"metadata": {"labels": want_labels}}, content_type=MERGE_PATCH)
    _, result["after"] = snapshot(kube, namespace)
    if changed:
        result["containment"] = [
            containment_entry(
                incident,
                STEP,
                f"namespace/{namespace}",
                changed={
                    "policy": name,
                    "policy_created": create,
                    "policy_updated": update,
                    "labels": label_changes,
                    "labels_set": {k: want_labels[k] for k in label_changes},
                },
                namespace=namespace,
                existing_policies=before["policies"],
            )
        ]
        result["msg"] = f"isolated namespace {namespace} with NetworkPolicy {name}"
    else:
        result["msg"] = f"no change: namespace {namespace} is already isolated by NetworkPolicy {name}"
    return result


def release(module, kube) -> dict:
    params = module.params
    namespace = params["namespace"]
    _ns, before = snapshot(kube, namespace)
    resource = f"namespace/{namespace}"
    entries = [e for e in params["containments"] if e.get("step") == STEP and e.get("resource") == resource]
    result = {"changed": False, "before": before}
    if not entries:
        result["after"] = before
        result["msg"] = f"nothing to release in namespace {namespace}: no containment entries of {STEP} given"
        return result
    labels = dict(before["labels"])
    deletes, label_patch, restored, left_alone = [], {}, {}, {}
    for entry in entries:
        name = (entry.get("changed") or {}).get("policy")
        policy = kube.get("NetworkPolicy", namespace, name, missing_ok=True) if name else None
        plan = release_plan(entry, policy, labels)
        if plan["delete_policy"] and plan["delete_policy"] not in deletes:
            deletes.append(plan["delete_policy"])
        label_patch.update(plan["labels"])
        for key, value in plan["restored"].items():
            if isinstance(value, dict):
                restored.setdefault(key, {}).update(value)
            else:
                restored[key] = value
        for key, value in plan["left_alone"].items():
            left_alone[key] = value
    ours = {(e.get("changed") or {}).get("policy") for e in entries}
    others = [p for p in before["policies"] if p not in deletes and p not in ours]
    if others:
        left_alone["other_policies"] = others
    changed = bool(deletes or label_patch)
    result["changed"] = changed
    if module._diff:
        after_labels = {k: v for k, v in dict(labels, **label_patch).items() if v is not None}
        result["diff"] = {
            "before": before,
            "after": {"labels": after_labels, "policies": [p for p in before["policies"] if p not in deletes]},
        }
    if not module.check_mode:
        for name in deletes:
            kube.delete("NetworkPolicy", namespace, name)
        if label_patch:
            kube.patch("Namespace", None, namespace, {"metadata": {"labels": label_patch}}, content_type=MERGE_PATCH)
        _, result["after"] = snapshot(kube, namespace)
    else:
        result["after"] = before
    incident = params["incident_id"] or entries[0].get("incident_id")
    result["release"] = release_entry(
        incident, STEP, resource, [e["id"] for e in entries if e.get("id")], restored=restored, left_alone=left_alone
    )
    verb = "would release" if module.check_mode else "released"
    result["msg"] = (
        f"{verb} namespace {namespace}: {', '.join(f'{k}={v}' for k, v in restored.items()) or 'nothing to undo'}"
        + (f"; left alone: {left_alone}" if left_alone else "")
    )
    return result


def run(module) -> dict:
    kube = Kube.from_module(module)
    if module.params["state"] == "isolated":
        return isolate(module, kube)
    return release(module, kube)


def main():
    module = AnsibleK8SModule(module_class=AnsibleModule, argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, run, "containment")


if __name__ == "__main__":
    main()
