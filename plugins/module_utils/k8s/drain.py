# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Node drain (``k8s_node_drain``): which pods a drain evicts, skips or refuses, the cordon and its release.

The pod filters are ``kubectl drain``'s (``k8s.io/kubectl/pkg/drain/filters.go``): DaemonSet pods are skipped
(their controller ignores ``unschedulable`` and would put them back), mirror pods (static pods the kubelet owns)
are skipped (the API cannot delete them), finished pods are deleted without a budget; pods with ``emptyDir``
data are refused unless ``delete_emptydir_data`` (the data is lost), and pods no controller will recreate are
refused unless ``force`` (they are gone for good).

The cordon is shared cluster state, so the node itself is the record (as the NetworkPolicies are for
``k8s_namespace_isolate``): ``firebreak.io/cordoned-by`` names the incident whose drain cordoned the node, and
``firebreak.io/cordon-held-by`` lists every incident that needs it cordoned.  A release takes its incident off
the list and uncordons only a node a firebreak drain cordoned that no other incident still holds; a node
cordoned by hand (no ``cordoned-by``) is never uncordoned.
"""

from __future__ import annotations

import re

from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.common import K8sInputError

STEP = "k8s_node_drain"
CORDONED_BY = "firebreak.io/cordoned-by"
HELD_BY = "firebreak.io/cordon-held-by"
MIRROR = "kubernetes.io/config.mirror"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_BUDGET = re.compile(r"The disruption budget (?P<name>\S+) ")


def check_node(value) -> str:
    if not isinstance(value, str) or len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise K8sInputError(f"node: {value!r} is not a node name (a DNS-1123 subdomain); nothing changed")
    return value


def check_incident(value) -> str:
    text = value if isinstance(value, str) else ""
    if not text.strip() or "," in text or any(ord(c) < 32 or ord(c) == 127 for c in text) or len(text) > 253:
        raise K8sInputError(
            f"incident_id: {value!r} cannot hold a cordon (at most 253 printable characters, no comma); nothing changed"
        )
    return text


def pod_key(pod: dict) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def _controller(pod: dict) -> dict | None:
    return next((ref for ref in pod["metadata"].get("ownerReferences") or [] if ref.get("controller")), None)


def classify(pods: list[dict], delete_emptydir_data: bool = False, force: bool = False) -> dict:
    """``{"evict": [pod], "skipped": {key: why}, "refused": {key: why}}`` for the pods on a node."""
    evict, skipped, refused = [], {}, {}
    for pod in sorted(pods, key=pod_key):
        key = pod_key(pod)
        meta, spec = pod["metadata"], pod.get("spec") or {}
        phase = (pod.get("status") or {}).get("phase")
        controller = _controller(pod)
        if MIRROR in (meta.get("annotations") or {}):
            skipped[key] = "mirror pod (a static pod the kubelet runs; the API cannot delete it)"
            continue
        if controller is not None and controller.get("kind") == "DaemonSet":
            skipped[key] = f"DaemonSet pod ({controller.get('name')}: its controller runs one on every node)"
            continue
        if phase in ("Succeeded", "Failed"):
            evict.append(pod)  # finished: deleted without a budget, nothing is lost
            continue
        problems = []
        if controller is None and not force:
            problems.append("no controller will recreate it (force=true evicts it anyway: it is gone for good)")
        volumes = [v.get("name") for v in spec.get("volumes") or [] if "emptyDir" in v]
        if volumes and not delete_emptydir_data:
            problems.append(
                f"emptyDir data in {', '.join(volumes)} is lost when it goes (delete_emptydir_data=true evicts it "
                "anyway)"
            )
        if problems:
            refused[key] = "; ".join(problems)
        else:
            evict.append(pod)
    return {"evict": evict, "skipped": skipped, "refused": refused}


def pod_ready(pod: dict) -> bool:
    cond = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    return bool(cond and cond.get("status") == "True")


def holders(node: dict) -> list[str]:
    text = ((node.get("metadata") or {}).get("annotations") or {}).get(HELD_BY) or ""
    return [part for part in (p.strip() for p in text.split(",")) if part]


def cordon_state(node: dict) -> dict:
    """What a result shows of a node: whether it is cordoned, by whom, who holds it, its Ready condition."""
    meta, spec = node.get("metadata") or {}, node.get("spec") or {}
    ready = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {})
    return {
        "unschedulable": bool(spec.get("unschedulable")),
        "cordoned_by": (meta.get("annotations") or {}).get(CORDONED_BY),
        "held_by": holders(node),
        "ready": ready.get("status", "Unknown"),
    }


def cordon_patch(node: dict, incident: str) -> dict | None:
    """The merge patch that cordons ``node`` for ``incident`` (``None``: nothing to change).

    Schedulable: cordon it, as this incident's (``cordoned-by``, ``held-by``).  Cordoned by a firebreak drain:
    add the incident to ``held-by``.  Cordoned by hand: nothing (a release must not uncordon it).  The patch
    carries the node's resourceVersion, so a write in between answers 409 and the step reads again."""
    meta = node["metadata"]
    held = holders(node)
    annotations = meta.get("annotations") or {}
    if not (node.get("spec") or {}).get("unschedulable"):
        patch_annotations = {CORDONED_BY: incident, HELD_BY: incident}
        return {
            "metadata": {"annotations": patch_annotations, "resourceVersion": meta["resourceVersion"]},
            "spec": {"unschedulable": True},
        }
    if CORDONED_BY in annotations and incident not in held:
        return {
            "metadata": {
                "annotations": {HELD_BY: ",".join([*held, incident])},
                "resourceVersion": meta["resourceVersion"],
            }
        }
    return None


def release_patch(node: dict, incident: str) -> tuple[dict | None, str]:
    """``(merge patch or None, outcome)`` releasing ``incident``'s hold on the cordon of ``node``.

    Outcomes: ``uncordoned`` (a firebreak cordon no one else holds), ``kept`` (other incidents hold it),
    ``cordoned_by_others`` (cordoned by hand: left cordoned), ``already_uncordoned`` (someone uncordoned it)."""
    meta = node["metadata"]
    annotations = meta.get("annotations") or {}
    rest = [h for h in holders(node) if h != incident]
    rv = meta["resourceVersion"]
    ours = {CORDONED_BY: None, HELD_BY: None}
    if not (node.get("spec") or {}).get("unschedulable"):
        # uncordoned by someone meanwhile: firebreak's record of the cordon is stale for every incident
        patch = {"metadata": {"annotations": ours, "resourceVersion": rv}} if set(ours) & set(annotations) else None
        return patch, "already_uncordoned"
    if CORDONED_BY not in annotations:
        patch = None
        if HELD_BY in annotations:
            patch = {"metadata": {"annotations": {HELD_BY: ",".join(rest) or None}, "resourceVersion": rv}}
        return patch, "cordoned_by_others"
    if rest:
        if len(rest) == len(holders(node)):
            return None, "kept"
        return {"metadata": {"annotations": {HELD_BY: ",".join(rest)}, "resourceVersion": rv}}, "kept"
    return {"metadata": {"annotations": ours, "resourceVersion": rv}, "spec": {"unschedulable": None}}, "uncordoned"


def blocking_budget(details: dict | None, message: str = "") -> str | None:
    """The PodDisruptionBudget a 429 eviction answer names (its ``DisruptionBudget`` cause)."""
    for cause in (details or {}).get("causes") or []:
        match = _BUDGET.search(str(cause.get("message") or ""))
        if match:
            return match.group("name")
    match = _BUDGET.search(message or "")
    return match.group("name") if match else None


def budget_reason(details: dict | None) -> str:
    causes = [str(c.get("message")) for c in (details or {}).get("causes") or [] if c.get("message")]
    return "; ".join(causes)
