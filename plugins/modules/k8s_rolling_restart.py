#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_rolling_restart
short_description: Restart a Deployment, StatefulSet or DaemonSet as kubectl rollout restart does, and wait
version_added: 0.1.0
author:
  - firebreak.runbooks maintainers (@firebreak)
description:
  - Sets the pod template annotation C(kubectl.kubernetes.io/restartedAt) to the current time (what
    C(kubectl rollout restart) does), so the workload's controller replaces every pod with a rolling update, then
    waits until the rollout completes. One module call reads, patches, waits and reports.
  - With O(incident_id), the restart is recorded on the workload (annotations C(firebreak.io/restarted-for) and
    C(firebreak.io/restarted-at)); a re-run for the same incident changes nothing unless O(force=true).
  - Refuses a paused Deployment (as kubectl does), changing nothing.
  - In check mode nothing is changed; the diff shows the annotation that would be set.
options:
  kind:
    description:
      - Kind of the workload.
    type: str
    choices: [Deployment, StatefulSet, DaemonSet]
    default: Deployment
  force:
    description:
      - Restart even if the workload was already restarted for O(incident_id).
    type: bool
    default: false
  wait:
    description:
      - Wait until the rollout completes (also when nothing needed to change).
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait, in seconds. On timeout, or when a Deployment reports C(ProgressDeadlineExceeded), the
        module fails and reports the pods that are not ready with their containers' waiting reasons.
    type: int
    default: 300
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - firebreak.runbooks.step.K8S
  - firebreak.runbooks.step.INCIDENT
  - firebreak.runbooks.step.ATTRIBUTES
  - firebreak.runbooks.step.K8S_OBJECT
requirements:
  - kubernetes >= 24.2.0
  - PyYAML >= 3.11
notes:
  - The annotation is on the Kubernetes object, not a tag; O(incident_id) is recorded as an annotation.
seealso:
  - module: firebreak.runbooks.k8s_rollout_undo
"""

EXAMPLES = r"""
- name: Restart the api pods once for this incident and wait until all are replaced
  firebreak.runbooks.k8s_rolling_restart:
    namespace: shop
    name: api
    incident_id: INC-2041
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "restarted Deployment shop/api; successfully rolled out (2/2 updated, available and ready)"
workload:
  description: The workload acted on.
  returned: always
  type: dict
  sample: {"kind": "Deployment", "namespace": "shop", "name": "api", "uid": "5d4c..."}
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: mitigation}
containment: {description: Always empty here., returned: always, type: list, elements: dict, sample: []}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
k8s_verb: {description: The verb of the failed Kubernetes call., returned: on its failure, type: str, sample: PATCH}
k8s_status: {description: Its HTTP status (C(null) if unanswered)., returned: on its failure, type: int, sample: 409}
restarted_at:
  description: The C(kubectl.kubernetes.io/restartedAt) value the pod template carries after the step.
  returned: always
  type: str
  sample: "2026-11-24T13:30:00Z"
before:
  description: The workload before the step (images, generation, replica counts, C(restarted_at)).
  returned: always
  type: dict
  sample: {"images": ["api=registry.local/api:2.2.0"], "replicas": 2, "ready": 2, "restarted_at": null}
after:
  description: The workload after the step (after waiting when O(wait=true)); in check mode, the prediction.
  returned: always
  type: dict
  sample: {"images": ["api=registry.local/api:2.2.0"], "replicas": 2, "restarted_at": "2026-11-24T13:30:00Z"}
rollout:
  description: The rollout's state when the module finished (C(state) and C(message)).
  returned: always
  type: dict
  sample: {"state": "done", "message": "successfully rolled out (2/2 updated, available and ready)"}
pods:
  description: Pods that are not ready with their containers' waiting or terminated reasons, when the rollout failed.
  returned: on failure to complete the rollout
  type: list
  elements: dict
  sample: [{"name": "api-6c9f-x2k4p", "phase": "Pending", "reasons": ["api: ImagePullBackOff"], "restarts": 0}]
diff:
  description: The restart annotation before and after, in diff mode.
  returned: when diff mode is on
  type: dict
  sample: {"before": {"restarted_at": null}, "after": {"restarted_at": "2026-11-24T13:30:00Z"}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.common import (
    K8S_OBJECT_OPTIONS,
    K8sInputError,
    Kube,
    auth_argument_spec,
    failing_pods,
    rollout_failure,
    run_module,
    wait_for_rollout,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.rollout import (
    RESTARTED_AT,
    restart_patch,
    workload_state,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    INCIDENT_OPTION,
    iso_seconds,
    utc_now,
)
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

RESTARTED_FOR = "firebreak.io/restarted-for"
RESTARTED_AT_MARK = "firebreak.io/restarted-at"

ARGUMENT_SPEC = auth_argument_spec(
    kind=dict(type="str", choices=["Deployment", "StatefulSet", "DaemonSet"], default="Deployment"),
    **K8S_OBJECT_OPTIONS,
    **INCIDENT_OPTION,
    force=dict(type="bool", default=False),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=300),
)


def restarted_at(workload: dict):
    return ((workload["spec"].get("template") or {}).get("metadata") or {}).get("annotations", {}).get(RESTARTED_AT)


def state(kind, workload):
    return dict(workload_state(kind, workload), restarted_at=restarted_at(workload))


def run(module) -> dict:
    params = module.params
    kind, namespace, name = params["kind"], params["namespace"], params["name"]
    label = f"{kind} {namespace}/{name}"
    if params["wait_timeout"] < 0:
        raise K8sInputError(f"wait_timeout must be >= 0, got {params['wait_timeout']}")
    kube = Kube.from_module(module)
    kube.namespace(namespace)
    workload = kube.get(kind, namespace, name)
    annotations = workload["metadata"].get("annotations") or {}
    incident = params["incident_id"]
    before = state(kind, workload)
    result = {
        "workload": {"kind": kind, "namespace": namespace, "name": name, "uid": workload["metadata"]["uid"]},
        "before": before,
    }

    already = incident and annotations.get(RESTARTED_FOR) == incident and before["restarted_at"]
    changed = not already or params["force"]
    if changed and workload["spec"].get("paused"):
        raise K8sInputError(f"{label} is paused: resume it before restarting (kubectl rollout resume); nothing changed")
    now = utc_now()
    stamp = iso_seconds(now) if changed else before["restarted_at"]
    result.update(changed=bool(changed), restarted_at=stamp)
    if module._diff:
        result["diff"] = {"before": {"restarted_at": before["restarted_at"]}, "after": {"restarted_at": stamp}}
    if changed:
        reason = "restarted"
    else:
        reason = f"already restarted for incident {incident} at {annotations.get(RESTARTED_AT_MARK) or stamp}"

    if module.check_mode:
        result["after"] = dict(before, restarted_at=stamp)
        result["rollout"] = {"state": "not waited", "message": "check mode"}
        result["msg"] = f"check mode: {'would restart' if changed else 'no change to'} {label}" + (
            "" if changed else f": {reason}"
        )
        return result

    since = None
    if changed:
        since = now
        body = restart_patch(stamp)
        if incident:
            body["metadata"] = {"annotations": {RESTARTED_FOR: incident, RESTARTED_AT_MARK: stamp}}
        workload = kube.patch(kind, namespace, name, body)

    outcome = f"{label}" if changed else f"{label}: {reason}"
    if params["wait"]:
        status, why, obj = wait_for_rollout(kube, kind, namespace, name, params["wait_timeout"], since)
        workload = obj or workload
        result["rollout"] = {"state": status, "message": why}
        if status != "done":
            result["after"] = state(kind, workload)
            action = "restarted" if changed else "no change to"
            pods = failing_pods(kube, workload)
            raise rollout_failure(outcome, action, status, why, pods, params["wait_timeout"], **result)
    else:
        result["rollout"] = {"state": "not waited", "message": "not waiting for the rollout"}
    result["after"] = state(kind, workload)
    result["msg"] = f"{'restarted' if changed else 'no change to'} {outcome}; {result['rollout']['message']}"
    return result


def main():
    module = AnsibleK8SModule(module_class=AnsibleModule, argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, run, "mitigation")


if __name__ == "__main__":
    main()
