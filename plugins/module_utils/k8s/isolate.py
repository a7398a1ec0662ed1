# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Namespace isolation: the deny-all NetworkPolicy, the quarantine labels, the policies that would defeat it and the
release plan (pure)."""

from __future__ import annotations

import hashlib
import json
import re

from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.common import K8sInputError

STEP = "k8s_namespace_isolate"
QUARANTINED = "firebreak.io/quarantined"
INCIDENT_LABEL = "firebreak.io/incident"
STEP_LABEL = "firebreak.io/step"
# the exact incident id (labels fold it; two ids may fold to one label value)
INCIDENT_ANNOTATION = "firebreak.io/incident-id"
# the full manifests of the policies set aside for the isolation, so that a re-run after a failure part way never
# loses one (the containment entry records them too)
SET_ASIDE_ANNOTATION = "firebreak.io/set-aside"
NAME_LABEL = "kubernetes.io/metadata.name"
PREFIX = "firebreak-isolate-"
# apimachinery ValidateAnnotations: the total size of a object's annotations (keys and values)
ANNOTATIONS_MAX = 256 * 1024
_LABEL_VALUE_BAD = re.compile(r"[^A-Za-z0-9_.-]")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


# -- names and identifiers ---------------------------------------------------------------------------------------
def label_value(text: str) -> str:
    """``text`` as a valid label value (63 characters of ``[A-Za-z0-9_.-]``, alphanumeric at both ends)."""
    value = _LABEL_VALUE_BAD.sub("-", str(text)).strip("-_.")
    if len(value) > 63:
        digest = hashlib.sha256(str(text).encode()).hexdigest()[:8]
        value = value[:54].rstrip("-_.") + "-" + digest
    return value


def _slug(incident_id: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", str(incident_id).lower())).strip("-")


def policy_name(incident_id: str) -> str:
    """``firebreak-isolate-<folded incident>-<digest>``: a DNS-1123 name of at most 63 characters, unique per
    incident id (the digest is of the exact id, so ids that differ only in case or punctuation differ)."""
    digest = hashlib.sha256(str(incident_id).encode()).hexdigest()[:8]
    slug = _slug(incident_id)[: 63 - len(PREFIX) - len(digest) - 1].rstrip("-")
    return f"{PREFIX}{slug}-{digest}" if slug else f"{PREFIX}{digest}"


def legacy_policy_name(incident_id: str) -> str:
    """The name isolations had before the digest (``firebreak-isolate-<folded incident>``): found, never made."""
    slug = re.sub(r"[^a-z0-9-]", "-", str(incident_id).lower()).strip("-")
    name = f"{PREFIX}{slug}"
    if len(name) > 63:
        name = name[:54].rstrip("-") + "-" + hashlib.sha256(str(incident_id).encode()).hexdigest()[:8]
    return name


def check_namespace(value, option: str) -> str:
    """A namespace name (DNS-1123 label); ``K8sInputError`` naming the option and the value otherwise."""
    if not isinstance(value, str) or len(value) > 63 or not _DNS_LABEL.match(value):
        raise K8sInputError(
            f"{option}: {value!r} is not a namespace name (a DNS-1123 label: at most 63 lower case alphanumeric "
            "characters or '-', alphanumeric at both ends); nothing changed"
        )
    return value


def check_incident_id(incident_id) -> str:
    """The incident id, with every identifier the step derives from it checked before the first change."""
    text = incident_id if isinstance(incident_id, str) else ""
    if not text.strip() or any(ord(c) < 32 or ord(c) == 127 for c in text) or len(text) > 253:
        raise K8sInputError(
            f"incident_id: {incident_id!r} cannot name an isolation (at most 253 printable characters); nothing changed"
        )
    if not label_value(text):
        raise K8sInputError(
            f"incident_id: {incident_id!r} gives an empty label value (it needs a letter or digit); nothing changed"
        )
    name = policy_name(text)
    if len(name) > 63 or not _DNS_SUBDOMAIN.match(name) or not _LABEL_VALUE.match(label_value(text)):
        raise K8sInputError(f"incident_id: {incident_id!r} gives an invalid name {name!r}; nothing changed")
    return text


# -- label selectors ---------------------------------------------------------------------------------------------
def _label_key_problem(key) -> str | None:
    if not isinstance(key, str):
        return "not a string"
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return "its prefix is not a DNS-1123 subdomain"
    if not name or len(name) > 63 or not _NAME.match(name):
        return "a label key's name is at most 63 characters of [A-Za-z0-9_.-], alphanumeric at both ends"
    return None


def _label_value_problem(value) -> str | None:
    if not isinstance(value, str):
        return f"a label value is a string, not {type(value).__name__}"
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return "a label value is at most 63 characters of [A-Za-z0-9_.-], alphanumeric at both ends"
    return None


def check_label_selector(selector, option: str = "pod_selector") -> dict:
    """``selector`` if it is a ``metav1.LabelSelector`` (``matchLabels``, ``matchExpressions``) as the API server
    validates it; ``K8sInputError`` naming the option and the bad value otherwise.

    A real API server drops fields it does not know: ``{app: front}`` would become ``{}``, which selects every pod."""
    if selector is None:
        return {}

    def bad(what, value, why):
        raise K8sInputError(f"{option}: {what} {value!r} {why}; nothing changed")

    if not isinstance(selector, dict):
        bad("value", selector, "is not a label selector (a dict with matchLabels and/or matchExpressions)")
    for key in selector:
        if key not in ("matchLabels", "matchExpressions"):
            bad(
                "key",
                key,
                "is not a label selector field (matchLabels, matchExpressions); labels go under matchLabels, "
                "e.g. {matchLabels: {app: front}}",
            )
    labels = selector.get("matchLabels")
    if labels is not None:
        if not isinstance(labels, dict):
            bad("matchLabels", labels, "is not a dict of label keys to values")
        for key, value in labels.items():
            problem = _label_key_problem(key)
            if problem:
                bad("matchLabels key", key, f"is not a valid label key ({problem})")
            problem = _label_value_problem(value)
            if problem:
                bad(f"matchLabels[{key}] value", value, f"is not valid ({problem})")
    expressions = selector.get("matchExpressions")
    if expressions is not None:
        if not isinstance(expressions, list):
            bad("matchExpressions", expressions, "is not a list of {key, operator, values}")
        for i, expr in enumerate(expressions):
            where = f"matchExpressions[{i}]"
            if not isinstance(expr, dict):
                bad(where, expr, "is not a dict with key, operator and values")
            unknown = sorted(set(expr) - {"key", "operator", "values"}, key=str)
            if unknown:
                bad(f"{where} field", unknown[0], "is not one of key, operator, values")
            problem = _label_key_problem(expr.get("key"))
            if problem:
                bad(f"{where}.key", expr.get("key"), f"is not a valid label key ({problem})")
            operator, values = expr.get("operator"), expr.get("values")
            if operator not in OPERATORS:
                bad(f"{where}.operator", operator, "is not one of In, NotIn, Exists, DoesNotExist")
            if values is not None and not isinstance(values, list):
                bad(f"{where}.values", values, "is not a list")
            if operator in ("In", "NotIn") and not values:
                bad(f"{where}.values", values, f"must be non-empty when operator is {operator}")
            if operator in ("Exists", "DoesNotExist") and values:
                bad(f"{where}.values", values, f"must be empty when operator is {operator}")
            for value in values or []:
                problem = _label_value_problem(value)
                if problem:
                    bad(f"{where}.values item", value, f"is not valid ({problem})")
    return selector


def _constraints(selector: dict) -> dict:
    """Per label key: ``(allowed values or None, excluded values, must exist, must not exist)``."""
    out: dict = {}

    def of(key):
        return out.setdefault(key, [None, set(), False, False])

    for key, value in (selector.get("matchLabels") or {}).items():
        c = of(key)
        c[0] = {value} if c[0] is None else c[0] & {value}
        c[2] = True
    for expr in selector.get("matchExpressions") or []:
        c, values = of(expr.get("key")), set(expr.get("values") or [])
        operator = expr.get("operator")
        if operator == "In":
            c[0] = values if c[0] is None else c[0] & values
            c[2] = True
        elif operator == "NotIn":
            c[1] |= values
        elif operator == "Exists":
            c[2] = True
        elif operator == "DoesNotExist":
            c[3] = True
    return out


def selectors_may_overlap(a: dict | None, b: dict | None) -> bool:
    """Whether some labels (of a pod now or later) could match both label selectors. ``False`` only when the two
    provably exclude each other on some key (``app=front`` and ``app=api``; ``Exists`` and ``DoesNotExist``)."""
    ca, cb = _constraints(a or {}), _constraints(b or {})
    for key in set(ca) | set(cb):
        allowed, excluded, exists, absent = None, set(), False, False
        for c in (ca.get(key), cb.get(key)):
            if c is None:
                continue
            if c[0] is not None:
                allowed = set(c[0]) if allowed is None else allowed & c[0]
            excluded |= c[1]
            exists, absent = exists or c[2], absent or c[3]
        if (exists and absent) or (allowed is not None and not (allowed - excluded)):
            return False
    return True


# -- the isolation policy ----------------------------------------------------------------------------------------
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


def isolation_annotations(incident_id: str, set_aside: list[dict]) -> dict:
    annotations = {INCIDENT_ANNOTATION: incident_id}
    if set_aside:
        annotations[SET_ASIDE_ANNOTATION] = json.dumps(set_aside, sort_keys=True, separators=(",", ":"))
    return annotations


def isolation_policy(namespace: str, incident_id: str, spec: dict, name: str | None = None, set_aside=()) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name or policy_name(incident_id),
            "namespace": namespace,
            "labels": {INCIDENT_LABEL: label_value(incident_id), STEP_LABEL: STEP},
            "annotations": isolation_annotations(incident_id, list(set_aside)),
        },
        "spec": spec,
    }


def is_isolation(policy: dict) -> bool:
    """A policy this step made (for any incident)."""
    return ((policy.get("metadata") or {}).get("labels") or {}).get(STEP_LABEL) == STEP


def belongs_to(policy: dict | None, incident_id: str | None, name: str | None = None) -> bool:
    """Whether ``policy`` is this step's isolation for exactly ``incident_id``: by the incident annotation, or for a
    policy made before it existed, by the incident label, the step label and the name it was given then
    (``name``, or the old derived one)."""
    if policy is None or not incident_id or not is_isolation(policy):
        return False
    meta = policy.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    if INCIDENT_ANNOTATION in annotations:
        return annotations[INCIDENT_ANNOTATION] == incident_id
    return (meta.get("labels") or {}).get(INCIDENT_LABEL) == label_value(incident_id) and meta.get("name") in {
        name or legacy_policy_name(incident_id),
        legacy_policy_name(incident_id),
    }


def find_isolation(policies: list[dict], incident_id: str) -> dict | None:
    """This incident's isolation policy among ``policies`` (the new name first, then one made under the old)."""
    own = [p for p in policies if belongs_to(p, incident_id)]
    own.sort(key=lambda p: p["metadata"]["name"] != policy_name(incident_id))
    return own[0] if own else None


def spec_matches(existing: dict, wanted: dict) -> bool:
    """Whether a stored policy spec is the wanted one (empty rule lists and absent ones are equal)."""

    def norm(spec):
        spec = dict(spec or {})
        for key in ("ingress", "egress"):
            spec[key] = spec.get(key) or []
        spec["podSelector"] = spec.get("podSelector") or {}
        return spec

    return norm(existing) == norm(wanted)


# -- policies that would defeat the deny ---------------------------------------------------------------------------
def allows(policy: dict) -> list[str]:
    """What a NetworkPolicy allows its pods, in words (``[]``: nothing, e.g. a default deny)."""
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes") or (["Ingress"] + (["Egress"] if spec.get("egress") else []))
    out = []
    for direction, peers_key, kind in (("ingress", "from", "Ingress"), ("egress", "to", "Egress")):
        rules = spec.get(direction) or []
        if kind not in types or not rules:
            continue
        if any(not rule.get(peers_key) and not rule.get("ports") for rule in rules):
            out.append(f"all {direction}")
        else:
            out.append(f"some {direction}")
    return out


def defeating_policies(policies: list[dict], pod_selector: dict | None) -> list[dict]:
    """The policies that allow some traffic to or from pods the isolation selects. NetworkPolicies add up: any
    allow of another policy that selects an isolated pod admits that traffic beside the deny. The step's own
    isolation policies (of any incident) are not counted."""
    found = []
    for policy in sorted(policies, key=lambda p: p["metadata"]["name"]):
        if is_isolation(policy):
            continue
        allowed = allows(policy)
        if allowed and selectors_may_overlap((policy.get("spec") or {}).get("podSelector"), pod_selector):
            found.append({"name": policy["metadata"]["name"], "allows": allowed})
    return found


def manifest(policy: dict) -> dict:
    """What restores a policy exactly: its name, namespace, labels, annotations and spec, and the uid and
    resourceVersion it had (to know it again; not restored)."""
    meta = policy.get("metadata") or {}
    kept = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if meta.get(k) is not None}
    record = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": kept, "spec": policy["spec"]}
    for key in ("uid", "resourceVersion"):
        if meta.get(key):
            record.setdefault("was", {})[key] = meta[key]
    return record


def set_aside_of(policy: dict | None) -> list[dict]:
    """The manifests an isolation policy's annotation holds (``[]`` when none or unreadable)."""
    text = (((policy or {}).get("metadata") or {}).get("annotations") or {}).get(SET_ASIDE_ANNOTATION)
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return [m for m in value if isinstance(m, dict) and (m.get("metadata") or {}).get("name")]


def merge_set_aside(*lists: list[dict]) -> list[dict]:
    """Manifests by name, the first seen kept (what was recorded before wins over what is found now)."""
    seen: dict = {}
    for manifests in lists:
        for m in manifests or []:
            if isinstance(m, dict) and isinstance(m.get("metadata"), dict) and m["metadata"].get("name"):
                seen.setdefault(m["metadata"]["name"], m)
    return [seen[name] for name in sorted(seen)]


def restorable(stored: dict | None, record: dict) -> str:
    """``"create"`` when the set-aside policy is absent, ``"restored"`` when it is there exactly as recorded,
    ``"changed"`` when someone made another policy of that name meanwhile (left alone)."""
    if stored is None:
        return "create"
    meta, want = stored.get("metadata") or {}, record.get("metadata") or {}
    same = all((meta.get(k) or {}) == (want.get(k) or {}) for k in ("labels", "annotations"))
    return "restored" if same and stored.get("spec") == record.get("spec") else "changed"


def restore_body(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "was"}


def quarantine_labels(incident_id: str) -> dict:
    return {QUARANTINED: "true", INCIDENT_LABEL: label_value(incident_id)}


# -- release -----------------------------------------------------------------------------------------------------
def release_plan(entry: dict, policy: dict | None, labels: dict) -> dict:
    """What releasing one containment entry does, given the policy and namespace labels found now.

    Returns ``{"delete_policy": name|None, "labels": {key: value|None to set}, "restored": {...},
    "left_alone": {...}}``: only what the entry says was changed, and only where it is still as the step left it.
    The policy is deleted only while it is this step's isolation for exactly the entry's incident.
    """
    changed = entry.get("changed") or {}
    plan = {"delete_policy": None, "labels": {}, "restored": {}, "left_alone": {}}
    name = changed.get("policy")
    if name and (changed.get("policy_created") or changed.get("policy_owned")):
        if policy is None:
            plan["left_alone"]["policy"] = f"{name} already deleted"
        elif belongs_to(policy, entry.get("incident_id"), name):
            plan["delete_policy"] = name
            plan["restored"]["policy_deleted"] = name
        else:
            plan["left_alone"]["policy"] = (
                f"{name} is no longer this step's isolation for incident {entry.get('incident_id')!r}; not deleted"
            )
    set_labels = changed.get("labels_set") or {}
    for key, previous in (changed.get("labels") or {}).items():
        if labels.get(key) == set_labels.get(key):
            plan["labels"][key] = previous
            plan["restored"].setdefault("labels", {})[key] = previous
        else:
            plan["left_alone"].setdefault("labels", {})[key] = labels.get(key)
    return plan
