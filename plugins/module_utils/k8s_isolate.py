# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Namespace isolation: the deny-all NetworkPolicy, the quarantine labels and the release plan (pure)."""

from __future__ import annotations

import hashlib
import re

STEP = "k8s_namespace_isolate"
QUARANTINED = "firebreak.io/quarantined"
INCIDENT_LABEL = "firebreak.io/incident"
STEP_LABEL = "firebreak.io/step"
NAME_LABEL = "kubernetes.io/metadata.name"
_LABEL_VALUE_BAD = re.compile(r"[^A-Za-z0-9_.-]")


def label_value(text: str) -> str:
    """``text`` as a valid label value (63 characters of ``[A-Za-z0-9_.-]``, alphanumeric at both ends)."""
    value = _LABEL_VALUE_BAD.sub("-", str(text)).strip("-_.")
    if len(value) > 63:
        digest = hashlib.sha256(str(text).encode()).hexdigest()[:8]
        value = value[:54].rstrip("-_.") + "-" + digest
    return value


def policy_name(incident_id: str) -> str:
    """``firebreak-isolate-<incident>``, a valid DNS-1123 subdomain of at most 63 characters."""
    slug = re.sub(r"[^a-z0-9-]", "-", str(incident_id).lower()).strip("-")
    name = f"firebreak-isolate-{slug}"
    if len(name) > 63:
        name = name[:54].rstrip("-") + "-" + hashlib.sha256(str(incident_id).encode()).hexdigest()[:8]
    return name


def isolation_spec(pod_selector: dict | None, allow_dns: bool, responders: list[str]) -> dict:
    """The NetworkPolicy spec: deny all ingress and egress for the selected pods, except DNS to kube-system's
    kube-dns (UDP and TCP 53) and traffic to and from the responder namespaces (by ``kubernetes.io/metadata.name``,
    which the apiserver sets and nobody can change)."""
    ingress, egress = [], []
    if responders:
        peer = {
            "namespaceSelector": {
                "matchExpressions": [{"key": NAME_LABEL, "operator": "In", "values": sorted(responders)}]
            }
        }
        ingress.append({"from": [peer]})
        egress.append({"to": [peer]})
    if allow_dns:
        egress.append(
            {
                "to": [
                    {
                        "namespaceSelector": {"matchLabels": {NAME_LABEL: "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                ],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            }
        )
    return {
        "podSelector": dict(pod_selector or {}),
        "policyTypes": ["Ingress", "Egress"],
        "ingress": ingress,
        "egress": egress,
    }


def isolation_policy(namespace: str, incident_id: str, spec: dict) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": policy_name(incident_id),
            "namespace": namespace,
            "labels": {INCIDENT_LABEL: label_value(incident_id), STEP_LABEL: STEP},
        },
        "spec": spec,
    }


def spec_matches(existing: dict, wanted: dict) -> bool:
    """Whether a stored policy spec is the wanted one (empty rule lists and absent ones are equal)."""

    def norm(spec):
        spec = dict(spec or {})
        for key in ("ingress", "egress"):
            spec[key] = spec.get(key) or []
        spec["podSelector"] = spec.get("podSelector") or {}
        return spec

    return norm(existing) == norm(wanted)


def quarantine_labels(incident_id: str) -> dict:
    return {QUARANTINED: "true", INCIDENT_LABEL: label_value(incident_id)}


def release_plan(entry: dict, policy: dict | None, labels: dict) -> dict:
    """What releasing one containment entry does, given the policy and namespace labels found now.

    Returns ``{"delete_policy": name|None, "labels": {key: value|None to set}, "restored": {...},
    "left_alone": {...}}``: only what the entry says was changed, and only where it is still as the step left it.
    """
    changed = entry.get("changed") or {}
    plan = {"delete_policy": None, "labels": {}, "restored": {}, "left_alone": {}}
    name = changed.get("policy")
    if name and changed.get("policy_created"):
        ours = policy is not None and (policy["metadata"].get("labels") or {}).get(STEP_LABEL) == STEP
        if policy is None:
            plan["left_alone"]["policy"] = f"{name} already deleted"
        elif ours:
            plan["delete_policy"] = name
            plan["restored"]["policy_deleted"] = name
        else:
            plan["left_alone"]["policy"] = f"{name} no longer carries {STEP_LABEL}={STEP}; not deleted"
    set_labels = changed.get("labels_set") or {}
    for key, previous in (changed.get("labels") or {}).items():
        if labels.get(key) == set_labels.get(key):
            plan["labels"][key] = previous
            plan["restored"].setdefault("labels", {})[key] = previous
        else:
            plan["left_alone"].setdefault("labels", {})[key] = labels.get(key)
    return plan
