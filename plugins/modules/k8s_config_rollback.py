#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_config_rollback
short_description: Restore a ConfigMap or Secret to its earlier content, restart the workloads that use it, wait
version_added: 0.1.0
author:
  - firebreak.runbooks maintainers (@firebreak)
description:
  - The C(rollback_config_k8s.sh) step of the Kubernetes playbooks, in one module call.
  - The earlier content comes from a snapshot the collection captured earlier in the incident
    (M(firebreak.runbooks.k8s_triage_info) writes them into the evidence directory), or from the object's
    C(kubectl.kubernetes.io/last-applied-configuration) annotation.
  - Only C(data) and C(binaryData) are restored (guarded by a test of the current content, so a concurrent change
    fails the step, changing nothing). The restore is recorded as annotations C(firebreak.io/restored-from) and
    C(firebreak.io/restored-at).
  - Then the Deployments, StatefulSets and DaemonSets of the namespace whose pod template uses the object (volumes,
    projected volumes, env, envFrom, imagePullSecrets) are restarted as C(kubectl rollout restart) does, and the
    module waits for their rollouts.
  - Values are never returned or printed, for ConfigMaps either; results show keys and SHA-256 digests.
  - Fails naming the object, changing nothing, when there is no earlier content (no snapshot, no
    last-applied-configuration). Content that is already the earlier one changes nothing.
options:
  kind:
    description:
      - Kind of the object.
    type: str
    choices: [ConfigMap, Secret]
    default: ConfigMap
  source:
    description:
      - Where the earlier content comes from.
      - V(auto) uses O(snapshot) when given, else the earliest snapshot of the object in O(evidence_dir), else the
        last-applied-configuration.
    type: str
    choices: [auto, snapshot, last_applied]
    default: auto
  snapshot:
    description:
      - Path of a snapshot file to restore (as written by M(firebreak.runbooks.k8s_triage_info)).
    type: path
  evidence_dir:
    description:
      - The incident's evidence directory (C(incidents/<incident_id>/evidence)), searched for snapshots of the object.
    type: path
  restart:
    description:
      - Restart the workloads of the namespace that use the object after restoring it, and wait for them.
    type: bool
    default: true
  wait:
    description:
      - Wait until the restarted workloads' rollouts complete.
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait for each workload, in seconds.
    type: int
    default: 300
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - firebreak.runbooks.step.K8S
  - firebreak.runbooks.step.ATTRIBUTES
  - firebreak.runbooks.step.K8S_OBJECT
requirements:
  - kubernetes >= 24.2.0
  - PyYAML >= 3.11
seealso:
  - module: firebreak.runbooks.k8s_triage_info
  - module: firebreak.runbooks.k8s_rolling_restart
"""

EXAMPLES = r"""
- name: Put shop-config back as it was at triage time, restart what uses it, wait
  firebreak.runbooks.k8s_config_rollback:
    namespace: shop
    name: shop-config
    evidence_dir: "incidents/{{ incident_id }}/evidence"
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "restored ConfigMap shop/shop-config from snapshot ...; restarted Deployment front, Deployment api"
object:
  description: The ConfigMap or Secret acted on.
  returned: always
  type: dict
  sample: {"kind": "ConfigMap", "namespace": "shop", "name": "shop-config", "uid": "5d4c..."}
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: mitigation}
containment: {description: Always empty here., returned: always, type: list, elements: dict, sample: []}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
k8s_verb: {description: The verb of the failed Kubernetes call., returned: on its failure, type: str, sample: PATCH}
k8s_status: {description: Its HTTP status (C(null) if unanswered)., returned: on its failure, type: int, sample: 409}
restored_from:
  description: Where the earlier content came from (C(snapshot <path>) or C(last-applied-configuration)).
  returned: always
  type: str
  sample: "snapshot incidents/INC-1/evidence/k8s/shop/ConfigMap-shop-config-20261124T130000Z.json"
before:
  description: Keys and value digests before the step.
  returned: always
  type: dict
  sample: {"FEATURE_CHECKOUT_V2": "sha256:3f1c0a9e2b7d4c11"}
after:
  description: Keys and value digests after the step (in check mode, the prediction).
  returned: always
  type: dict
  sample: {"FEATURE_CHECKOUT_V2": "sha256:b5bb9d8014a0f9b1"}
restarted:
  description: The workloads restarted (or, in check mode, that would be), each with C(kind), C(name), C(state).
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "Deployment", "name": "api", "state": "done"}]
diff:
  description: Keys and value digests before and after, in diff mode.
  returned: when diff mode is on
  type: dict
  sample: {"before": {"A": "sha256:..."}, "after": {"A": "sha256:..."}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.common import (
    JSON_PATCH,
    K8S_OBJECT_OPTIONS,
    K8sInputError,
    K8sStepError,
    Kube,
    auth_argument_spec,
    escape_pointer,
    failing_pods,
    rollout_failure,
    run_module,
    wait_for_rollout,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.config import (
    RESTORED_AT,
    RESTORED_FROM,
    content,
    digests,
    find_snapshots,
    last_applied_content,
    read_snapshot,
    restore_ops,
    workloads_using,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.rollout import restart_patch
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import iso_seconds, utc_now
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

ARGUMENT_SPEC = auth_argument_spec(
    kind=dict(type="str", choices=["ConfigMap", "Secret"], default="ConfigMap"),
    **K8S_OBJECT_OPTIONS,
    source=dict(type="str", choices=["auto", "snapshot", "last_applied"], default="auto"),
    snapshot=dict(type="path"),
    evidence_dir=dict(type="path"),
    restart=dict(type="bool", default=True),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=300),
)
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def earlier_content(params, kind, namespace, name, obj):
    """``(content, description)`` of the earlier content; ``K8sInputError`` naming the object if none."""
    label = f"{kind} {namespace}/{name}"
    source = params["source"]
    tried = []
    if source in ("auto", "snapshot"):
        paths = [params["snapshot"]] if params["snapshot"] else []
        if not paths and params["evidence_dir"]:
            paths = find_snapshots(params["evidence_dir"], kind, namespace, name)[:1]
        for path in paths:
            try:
                return read_snapshot(path, kind, namespace, name), f"snapshot {path}"
            except ValueError as e:
                raise K8sInputError(str(e)) from None
        where = params["evidence_dir"] or "(no evidence_dir given)"
        tried.append(f"no snapshot in {where}")
    if source in ("auto", "last_applied"):
        applied = last_applied_content(kind, obj)
        if applied is not None:
            return applied, "last-applied-configuration"
        tried.append("no kubectl.kubernetes.io/last-applied-configuration annotation")
    raise K8sInputError(f"{label} has no earlier content to restore: {'; '.join(tried)}; nothing changed")


def run(module) -> dict:
    params = module.params
    kind, namespace, name = params["kind"], params["namespace"], params["name"]
    label = f"{kind} {namespace}/{name}"
    if params["wait_timeout"] < 0:
        raise K8sInputError(f"wait_timeout must be >= 0, got {params['wait_timeout']}")
    kube = Kube.from_module(module)
    kube.namespace(namespace)
    obj = kube.get(kind, namespace, name)
    current = content(obj)
    target, described = earlier_content(params, kind, namespace, name, obj)
    changed = current != target
    users = []
    if params["restart"]:
        found = [(k, w) for k in WORKLOAD_KINDS for w in kube.list(k, namespace)]
        users = workloads_using(found, kind, name)
    result = {
        "changed": changed,
        "object": {"kind": kind, "namespace": namespace, "name": name, "uid": obj["metadata"]["uid"]},
        "restored_from": described,
        "before": digests(kind, current),
        "restarted": [],
    }
    if module._diff:
        result["diff"] = {"before": digests(kind, current), "after": digests(kind, target)}
    if not changed:
        result["after"] = result["before"]
        result["msg"] = f"no change to {label}: it already has the earlier content ({described})"
        return result
    if module.check_mode:
        result["after"] = digests(kind, target)
        result["restarted"] = [{"kind": k, "name": n, "state": "not restarted (check mode)"} for k, n in users]
        names = ", ".join(f"{k} {n}" for k, n in users) or "no workload"
        result["msg"] = f"check mode: would restore {label} from {described} and restart {names}"
        return result

    now = iso_seconds(utc_now())
    ops = restore_ops(current, target)
    if not obj["metadata"].get("annotations"):
        ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
    for key, value in ((RESTORED_FROM, described), (RESTORED_AT, now)):
        ops.append({"op": "add", "path": f"/metadata/annotations/{escape_pointer(key)}", "value": value})
    try:
        obj = kube.patch(kind, namespace, name, ops, content_type=JSON_PATCH)
    except K8sStepError as e:
        if e.status == 422 and "test" in e.message:
            raise K8sStepError(f"{label} changed while the step ran; nothing was changed, run it again") from None
        raise
    result["after"] = digests(kind, content(obj))

    since = utc_now()
    for wkind, wname in users:
        kube.patch(wkind, namespace, wname, restart_patch(now))
        result["restarted"].append({"kind": wkind, "name": wname, "state": "restarted"})
    if params["wait"]:
        for entry in result["restarted"]:
            state, why, workload = wait_for_rollout(
                kube, entry["kind"], namespace, entry["name"], params["wait_timeout"], since
            )
            entry["state"] = state
            if state != "done":
                wlabel = f"{entry['kind']} {namespace}/{entry['name']}"
                pods = failing_pods(kube, workload)
                raise rollout_failure(
                    wlabel, f"restored {label} and restarted", state, why, pods, params["wait_timeout"], **result
                )
    names = ", ".join(f"{e['kind']} {e['name']}" for e in result["restarted"]) or "no workload uses it"
    result["msg"] = f"restored {label} from {described}; restarted {names}"
    return result


def main():
    module = AnsibleK8SModule(
        module_class=AnsibleModule,
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
        mutually_exclusive=[("snapshot", "evidence_dir")],
    )
    run_module(module, run, "mitigation")


if __name__ == "__main__":
    main()
