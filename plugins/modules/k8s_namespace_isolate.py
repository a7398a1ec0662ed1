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
  - O(state=isolated) creates the NetworkPolicy C(firebreak-isolate-<folded incident>-<digest>) that denies all
    ingress and egress of the namespace's pods (or of the pods matching O(pod_selector)), optionally allowing DNS to
    kube-system's kube-dns and traffic to and from responder namespaces (selected by the C(kubernetes.io/metadata.name)
    label, which the apiserver sets), and labels the namespace C(firebreak.io/quarantined=true) and
    C(firebreak.io/incident=<incident>). It returns a C(containment) entry recording exactly that (and the
    NetworkPolicies that already existed).
  - The digest is of the exact incident id, so incident ids that differ only in case or punctuation get their own
    policies; the policy carries the exact id in the annotation C(firebreak.io/incident-id). A policy of that name
    that is not this incident's isolation is refused. An isolation made before the digest
    (C(firebreak-isolate-<folded incident>), found by its incident label) is adopted, not duplicated.
  - NetworkPolicies add up, so another policy that allows traffic to or from the isolated pods (an allow-all, or
    any allow of a policy whose pod selector may select them) would defeat the deny. By default the step refuses,
    naming those policies. With O(defeating_policies=set_aside) it keeps their full manifests in the isolation
    policy's annotation C(firebreak.io/set-aside) and in the containment entry, then deletes them; the release
    creates them again exactly (spec, labels, annotations). The result's RV(set_aside) says which were set aside.
  - O(pod_selector) must be a LabelSelector (C(matchLabels), C(matchExpressions)); anything else is refused, naming
    the value (a real API server drops unknown fields, and an empty selector selects every pod).
  - O(state=released) undoes exactly what the given O(containments) entries say. It creates again the policies the
    isolation set aside, then deletes the policy the step created (only while it is still this step's isolation for
    exactly the entry's incident) and puts back the namespace labels it changed, unless someone changed them
    meanwhile (those are left alone and reported). While another isolation policy stays in the namespace, the
    quarantine label stays. Policies others added are never touched. It returns a C(release) entry.
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
  defeating_policies:
    description:
      - What to do with NetworkPolicies in the namespace that would defeat the isolation (they allow some ingress or
        egress of pods the isolation selects).
      - V(refuse) fails naming them and changes nothing.
      - V(set_aside) deletes them for the isolation after recording their manifests; the release restores them.
    type: str
    choices: [refuse, set_aside]
    default: refuse
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
  sample: "isolated namespace shop with NetworkPolicy firebreak-isolate-inc-2041-486c629e"
policy:
  description: The isolation NetworkPolicy as created (or that would be created), with O(state=isolated).
  returned: when state is isolated
  type: dict
  sample: {"metadata": {"name": "firebreak-isolate-inc-2041-486c629e"}, "spec": {"policyTypes": ["Ingress", "Egress"]}}
set_aside:
  description:
    - With O(state=isolated), the names of the NetworkPolicies the isolation holds set aside (by this run or an
      earlier one for the incident); empty when none.
  returned: when state is isolated
  type: list
  elements: str
  sample: ["allow-all"]
defeating_policies:
  description:
    - With O(state=isolated), the policies found that would defeat the isolation, each with C(name) and C(allows)
      (for example C(all ingress), C(some egress)); also returned when the step refuses because of them.
  returned: when state is isolated
  type: list
  elements: dict
  sample: [{"name": "allow-all", "allows": ["all ingress", "all egress"]}]
before:
  description: The namespace's labels and NetworkPolicy names before the step.
  returned: always
  type: dict
  sample: {"labels": {"kubernetes.io/metadata.name": "shop"}, "policies": []}
after:
  description: The namespace's labels and NetworkPolicy names after the step (in check mode, the prediction).
  returned: always
  type: dict
  sample: {"labels": {"firebreak.io/quarantined": "true"}, "policies": ["firebreak-isolate-inc-2041-486c629e"]}
containment:
  description:
    - The containment entries (see C(plugins/module_utils/runtime/step.py)), one when the step changed something in
      O(state=isolated); C(changed) holds C(policy), C(policy_created), C(policy_owned), C(policy_updated),
      C(labels) (previous values, null for absent), C(labels_set) and C(set_aside) (the full manifests of the
      policies set aside). Empty list otherwise.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "3f2a...", "step": "k8s_namespace_isolate", "resource": "namespace/shop", "changed": {}}]
release:
  description:
    - With O(state=released), the release entries (one, for the namespace, when entries were given; C(gone=true)
      when the namespace no longer exists), as the other containment modules return them.
    - No containment ledger claim is needed here, the cluster itself is the shared record. Each incident has its own
      NetworkPolicy (named per exact incident id), so a release deletes only its own; and the quarantine label stays
      while another isolation policy is left in the namespace (C(left_alone.labels) says which); the last release
      removes firebreak's labels.
  returned: when state is released
  type: list
  elements: dict
  sample:
    [{"releases": ["3f2a..."], "restored": {"policy_deleted": "firebreak-isolate-inc-2041-486c629e"}, "left_alone": {}}]
gone:
  description:
    - With O(state=released), C(namespace/NAME) when the namespace no longer exists; its entries are recorded as
      released (the release entry has C(gone=true)) and nothing fails. Else empty.
  returned: when state is released
  type: list
  elements: str
  sample: []
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: containment}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
k8s_verb: {description: The verb of the failed Kubernetes call., returned: on its failure, type: str, sample: PATCH}
k8s_status: {description: Its HTTP status (C(null) if unanswered)., returned: on its failure, type: int, sample: 409}
diff:
  description: Namespace labels and policy names before and after, in diff mode.
  returned: when diff mode is on
  type: dict
  sample: {"before": {"policies": []}, "after": {"policies": ["firebreak-isolate-inc-2041-486c629e"]}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.firebreak.runbooks.plugins.module_utils.containment import ledger
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.common import (
    MERGE_PATCH,
    K8sInputError,
    Kube,
    auth_argument_spec,
    run_module,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.isolate import (
    ANNOTATIONS_MAX,
    INCIDENT_ANNOTATION,
    INCIDENT_LABEL,
    QUARANTINED,
    SET_ASIDE_ANNOTATION,
    STEP,
    check_incident_id,
    check_label_selector,
    check_namespace,
    defeating_policies,
    find_isolation,
    is_isolation,
    isolation_annotations,
    isolation_policy,
    isolation_spec,
    manifest,
    merge_set_aside,
    policy_name,
    quarantine_labels,
    release_plan,
    restorable,
    restore_body,
    set_aside_of,
    spec_matches,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
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
    defeating_policies=dict(type="str", choices=["refuse", "set_aside"], default="refuse"),
    containments=ledger.CONTAINMENT_OPTIONS["containments"],
    **INCIDENT_OPTION,
)


def snapshot(kube, namespace):
    """The namespace, its labels and policy names, and the NetworkPolicies themselves."""
    ns = kube.namespace(namespace)
    found = sorted(kube.list("NetworkPolicy", namespace), key=lambda p: p["metadata"]["name"])
    names = [p["metadata"]["name"] for p in found]
    return ns, {"labels": dict(ns["metadata"].get("labels") or {}), "policies": names}, found


def isolate(module, kube) -> dict:
    params = module.params
    namespace, incident = check_namespace(params["namespace"], "namespace"), params["incident_id"]
    if not incident:
        if not module.check_mode:
            raise K8sInputError("incident_id is required to isolate a namespace (it names the policy); nothing changed")
        incident = "check-mode"
    incident = check_incident_id(incident)
    selector = check_label_selector(params["pod_selector"], "pod_selector")
    for responder in params["responder_namespaces"]:
        check_namespace(responder, "responder_namespaces")
    for responder in params["responder_namespaces"]:
        if kube.get("Namespace", None, responder, missing_ok=True) is None:
            raise K8sInputError(f"responder namespace {responder!r} does not exist; nothing changed")
    _ns, before, policies = snapshot(kube, namespace)
    spec = isolation_spec(selector, params["allow_dns"], params["responder_namespaces"])
    existing = find_isolation(policies, incident)
    name = existing["metadata"]["name"] if existing else policy_name(incident)
    clash = next((p for p in policies if p["metadata"]["name"] == name and p is not existing), None)
    if clash is not None:
        owner = (clash["metadata"].get("annotations") or {}).get(INCIDENT_ANNOTATION)
        raise K8sInputError(
            f"NetworkPolicy {name!r} in namespace {namespace!r} exists and is not incident {incident!r}'s isolation"
            + (f" (it is incident {owner!r}'s)" if owner else "")
            + "; refusing to take it over; nothing changed"
        )
    defeating = defeating_policies(policies, spec["podSelector"])
    if defeating and params["defeating_policies"] != "set_aside":
        listed = "; ".join(f"{d['name']} (allows {' and '.join(d['allows'])})" for d in defeating)
        raise K8sInputError(
            f"namespace {namespace!r} holds NetworkPolicies that would defeat the isolation (policies add up, so "
            f"their allows admit traffic beside the deny): {listed}; nothing changed. Remove them, or run with "
            "defeating_policies=set_aside to set them aside for the isolation (recorded, restored on release)",
            defeating_policies=defeating,
            set_aside=[],
        )
    by_name = {p["metadata"]["name"]: p for p in policies}
    to_delete = [by_name[d["name"]] for d in defeating]
    held = {m["metadata"]["name"]: m for m in set_aside_of(existing)}
    # one set aside before and made again since (by a person or a GitOps controller): deleted again only when it
    # is the same policy, so that neither manifest is lost
    remade = [
        p["metadata"]["name"] for p in to_delete if restorable(p, held.get(p["metadata"]["name"], p)) == "changed"
    ]
    if remade:
        raise K8sInputError(
            f"NetworkPolicies {', '.join(remade)} in namespace {namespace!r} were set aside by this isolation and have "
            "been made again with another spec, labels or annotations; setting them aside again would lose one of "
            "the two; nothing changed",
            defeating_policies=defeating,
            set_aside=sorted(held),
        )
    set_aside = merge_set_aside(list(held.values()), [manifest(p) for p in to_delete])
    annotations = isolation_annotations(incident, set_aside)
    policy = isolation_policy(namespace, incident, spec, name=name, set_aside=set_aside)
    size = sum(len(k) + len(v) for k, v in annotations.items())
    if size > ANNOTATIONS_MAX:
        raise K8sInputError(
            f"the policies to set aside ({', '.join(m['metadata']['name'] for m in set_aside)}) do not fit in the "
            f"{SET_ASIDE_ANNOTATION} annotation ({size} bytes, at most {ANNOTATIONS_MAX}); nothing changed"
        )
    want_labels = quarantine_labels(incident)
    label_changes = {k: before["labels"].get(k) for k, v in want_labels.items() if before["labels"].get(k) != v}
    create = existing is None
    stored_meta = (existing or {}).get("metadata") or {}
    meta_patch = {}
    if not create:
        stored = stored_meta.get("annotations") or {}
        changed_annotations = {k: v for k, v in annotations.items() if stored.get(k) != v}
        if changed_annotations:
            meta_patch["annotations"] = changed_annotations
        if not policy["metadata"]["labels"].items() <= (stored_meta.get("labels") or {}).items():
            meta_patch["labels"] = policy["metadata"]["labels"]
    update = not create and (not spec_matches(existing.get("spec"), spec) or bool(meta_patch))
    changed = create or update or bool(label_changes) or bool(to_delete)
    after = {
        "labels": dict(before["labels"], **want_labels),
        "policies": sorted((set(before["policies"]) | {name}) - {p["metadata"]["name"] for p in to_delete}),
    }
    result = {
        "changed": changed,
        "policy": policy,
        "before": before,
        "containment": [],
        "set_aside": [m["metadata"]["name"] for m in set_aside],
        "defeating_policies": defeating,
    }
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    if module.check_mode:
        result["after"] = after
        result["msg"] = f"check mode: {'would isolate' if changed else 'no change to'} namespace {namespace}" + (
            f", setting aside {', '.join(result['set_aside'])}" if to_delete else ""
        )
        return result
    # the deny first, holding the manifests of what it sets aside; only then are they deleted
    if create:
        kube.create("NetworkPolicy", namespace, policy)
    elif update:
        body = {"spec": spec}
        if meta_patch:
            body["metadata"] = meta_patch
        kube.patch("NetworkPolicy", namespace, name, body, content_type=MERGE_PATCH)
    for other in to_delete:
        meta = other["metadata"]
        pre = {k: meta[k] for k in ("uid", "resourceVersion") if meta.get(k)}
        kube.request("DELETE", "NetworkPolicy", namespace, meta["name"], body={"preconditions": pre} if pre else None)
    if label_changes:
        kube.patch("Namespace", None, namespace, {"metadata": {"labels": want_labels}}, content_type=MERGE_PATCH)
    _, result["after"], _ = snapshot(kube, namespace)
    if changed:
        result["containment"] = [
            containment_entry(
                incident,
                STEP,
                f"namespace/{namespace}",
                changed={
                    "policy": name,
                    "policy_created": create,
                    "policy_owned": True,
                    "policy_updated": update,
                    "labels": label_changes,
                    "labels_set": {k: want_labels[k] for k in label_changes},
                    "set_aside": set_aside,
                },
                namespace=namespace,
                existing_policies=before["policies"],
            )
        ]
        result["msg"] = f"isolated namespace {namespace} with NetworkPolicy {name}" + (
            f", setting aside {', '.join(result['set_aside'])} (restored on release)" if set_aside else ""
        )
    else:
        result["msg"] = f"no change: namespace {namespace} is already isolated by NetworkPolicy {name}"
    return result


def release(module, kube) -> dict:
    params = module.params
    namespace = check_namespace(params["namespace"], "namespace")
    resource = f"namespace/{namespace}"
    entries = [e for e in params["containments"] if e.get("step") == STEP and e.get("resource") == resource]
    if entries and kube.get("Namespace", None, namespace, missing_ok=True) is None:
        # deleted meanwhile (its policies with it): nothing to undo; the entries are recorded as released
        incident = params["incident_id"] or entries[0].get("incident_id")
        return {
            "changed": False,
            "before": {},
            "after": {},
            "gone": [resource],
            "release": [
                release_entry(
                    incident,
                    STEP,
                    resource,
                    [e["id"] for e in entries if e.get("id")],
                    restored={},
                    left_alone={},
                    gone=True,
                )
            ],
            "msg": f"gone: namespace {namespace} no longer exists; {len(entries)} containment(s) recorded as released",
        }
    _ns, before, policies = snapshot(kube, namespace)
    by_name = {p["metadata"]["name"]: p for p in policies}
    result = {"changed": False, "before": before, "gone": [], "release": []}
    if not entries:
        result["after"] = before
        result["msg"] = f"nothing to release in namespace {namespace}: no containment entries of {STEP} given"
        return result
    labels = dict(before["labels"])
    deletes, label_patch, restored, left_alone = [], {}, {}, {}
    set_aside = []
    for entry in entries:
        name = (entry.get("changed") or {}).get("policy")
        plan = release_plan(entry, by_name.get(name) if name else None, labels)
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
        recorded = [m for m in (entry.get("changed") or {}).get("set_aside") or [] if isinstance(m, dict)]
        if plan["delete_policy"]:
            # the deny policy's annotation first: read from the API, it is exact; the entry came through the
            # timeline, which may have masked a value that looked secret
            recorded = merge_set_aside(set_aside_of(by_name[plan["delete_policy"]]), recorded)
        set_aside = merge_set_aside(set_aside, recorded)
    creates = []
    for record in set_aside:
        what = restorable(by_name.get(record["metadata"]["name"]), record)
        if what == "create":
            creates.append(record)
        elif what == "changed":
            left_alone.setdefault("set_aside", {})[record["metadata"]["name"]] = "another policy of that name exists"
    if set_aside:
        kept_by_others = left_alone.get("set_aside") or {}
        restored["set_aside_restored"] = [
            m["metadata"]["name"] for m in set_aside if m["metadata"]["name"] not in kept_by_others
        ]
    # another incident's isolation stays: the namespace stays marked quarantined while one is left
    remaining = [p["metadata"]["name"] for p in policies if is_isolation(p) and p["metadata"]["name"] not in deletes]
    if remaining and QUARANTINED in label_patch:
        label_patch.pop(QUARANTINED)
        restored.get("labels", {}).pop(QUARANTINED, None)
        left_alone.setdefault("labels", {})[QUARANTINED] = f"kept: {', '.join(remaining)} still isolates"
    if not remaining and deletes:
        # the last isolation leaves: firebreak's own labels go, also where an earlier (released) incident set them
        # and this incident's isolation found them set (it recorded only what it changed)
        for key in (QUARANTINED, INCIDENT_LABEL):
            if labels.get(key) is not None and label_patch.get(key, labels[key]) is not None:
                label_patch[key] = None
                restored.setdefault("labels", {})[key] = None
    ours = {(e.get("changed") or {}).get("policy") for e in entries}
    others = [p for p in before["policies"] if p not in deletes and p not in ours]
    if others:
        left_alone["other_policies"] = others
    changed = bool(deletes or label_patch or creates)
    result["changed"] = changed
    after_policies = sorted((set(before["policies"]) - set(deletes)) | {m["metadata"]["name"] for m in creates})
    if module._diff:
        after_labels = {k: v for k, v in dict(labels, **label_patch).items() if v is not None}
        result["diff"] = {"before": before, "after": {"labels": after_labels, "policies": after_policies}}
    if not module.check_mode:
        # what was set aside comes back before the deny goes (the deny keeps the manifests until then)
        for record in creates:
            kube.create("NetworkPolicy", namespace, restore_body(record))
        for name in deletes:
            kube.delete("NetworkPolicy", namespace, name)
        if label_patch:
            kube.patch("Namespace", None, namespace, {"metadata": {"labels": label_patch}}, content_type=MERGE_PATCH)
        _, result["after"], _ = snapshot(kube, namespace)
    else:
        result["after"] = before
    incident = params["incident_id"] or entries[0].get("incident_id")
    result["release"] = [
        release_entry(
            incident,
            STEP,
            resource,
            [e["id"] for e in entries if e.get("id")],
            restored=restored,
            left_alone=left_alone,
        )
    ]
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
