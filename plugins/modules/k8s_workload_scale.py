#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_workload_scale
short_description: Scale a Deployment or StatefulSet (or the bounds of its HorizontalPodAutoscaler) and wait
version_added: 0.1.0
author:
  - firebreak.runbooks maintainers (@firebreak)
description:
  - The Kubernetes side of a scale-out during an incident (seed "HPA saturation"; "Performance Degradation" step 4).
    One module call reads the workload and any HorizontalPodAutoscaler that targets it, decides, changes, waits and
    reports the old values so that they can be restored.
  - Without an HPA, sets the workload's replicas through its C(scale) subresource.
  - When an HPA targets the workload, a manual replica count would be undone by the HPA, so the HPA's
    C(minReplicas) (and, if needed, C(maxReplicas)) are changed instead; the workload is also scaled into the new
    bounds at once rather than waiting for the HPA's next sync.
  - Setting the values the workload already has changes nothing. In check mode nothing is changed.
  - Bad input (a workload or namespace that does not exist, C(min_replicas) above C(max_replicas), HPA bounds
    without an HPA) fails naming the value, before anything is changed.
options:
  kind:
    description:
      - Kind of the workload.
    type: str
    choices: [Deployment, StatefulSet]
    default: Deployment
  replicas:
    description:
      - The replica count wanted. With an HPA, the HPA's new C(minReplicas) (unless O(min_replicas) is given).
    type: int
  min_replicas:
    description:
      - The HPA's new C(minReplicas). Only when an HPA targets the workload.
    type: int
  max_replicas:
    description:
      - The HPA's new C(maxReplicas). Only when an HPA targets the workload. When omitted it is raised to the new
        C(minReplicas) if it is below it, else kept.
    type: int
  wait:
    description:
      - Wait until the workload runs the new number of replicas, all updated, available and ready.
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait, in seconds. On timeout the module fails and reports the pods that are not ready.
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
  - module: kubernetes.core.k8s_scale
"""

EXAMPLES = r"""
- name: Scale the api out to 6 replicas (or raise its HPA's minReplicas to 6)
  firebreak.runbooks.k8s_workload_scale:
    namespace: shop
    name: api
    replicas: 6
  register: scaled

- name: Restore what was there before
  firebreak.runbooks.k8s_workload_scale:
    namespace: shop
    name: api
    replicas: "{{ scaled.previous.replicas if scaled.previous.hpa is none else omit }}"
    min_replicas: "{{ scaled.previous.hpa.min_replicas if scaled.previous.hpa is not none else omit }}"
    max_replicas: "{{ scaled.previous.hpa.max_replicas if scaled.previous.hpa is not none else omit }}"
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "scaled Deployment shop/api from 2 to 6 replicas; successfully rolled out (6/6 updated, available and ready)"
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
previous:
  description:
    - The values before the step, to restore them later. C(replicas) of the workload and, when an HPA targets it,
      C(hpa) with C(name), C(min_replicas) and C(max_replicas) (else C(hpa) is null).
  returned: always
  type: dict
  sample: {"replicas": 2, "hpa": {"name": "api", "min_replicas": 2, "max_replicas": 4}}
before:
  description: Replicas, ready replicas and HPA bounds before the step.
  returned: always
  type: dict
  sample: {"replicas": 2, "ready": 2, "hpa_min": 2, "hpa_max": 4}
after:
  description: Replicas, ready replicas and HPA bounds after the step (after waiting); in check mode, the prediction.
  returned: always
  type: dict
  sample: {"replicas": 6, "ready": 6, "hpa_min": 6, "hpa_max": 6}
rollout:
  description: The rollout's state when the module finished (C(state) and C(message)).
  returned: always
  type: dict
  sample: {"state": "done", "message": "successfully rolled out (6/6 updated, available and ready)"}
pods:
  description: Pods that are not ready with their containers' waiting or terminated reasons, when the wait failed.
  returned: on failure to complete the rollout
  type: list
  elements: dict
  sample: [{"name": "api-6c9f-x2k4p", "phase": "Pending", "reasons": ["api: ImagePullBackOff"], "restarts": 0}]
diff:
  description: Replicas and HPA bounds before and after, in diff mode.
  returned: when diff mode is on
  type: dict
  sample: {"before": {"replicas": 2}, "after": {"replicas": 6}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.common import (
    K8S_OBJECT_OPTIONS,
    MERGE_PATCH,
    K8sInputError,
    K8sStepError,
    Kube,
    auth_argument_spec,
    failing_pods,
    rollout_failure,
    run_module,
    wait_for_rollout,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.rollout import decide_scale
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

ARGUMENT_SPEC = auth_argument_spec(
    kind=dict(type="str", choices=["Deployment", "StatefulSet"], default="Deployment"),
    **K8S_OBJECT_OPTIONS,
    replicas=dict(type="int"),
    min_replicas=dict(type="int"),
    max_replicas=dict(type="int"),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=300),
)


def find_hpas(kube, kind, namespace, name):
    """``(hpa kind key, [hpas targeting the workload])``: autoscaling/v2, else v1 where v2 is not served."""
    for key in ("HorizontalPodAutoscaler", "HorizontalPodAutoscalerV1"):
        try:
            items = kube.list(key, namespace)
        except K8sStepError as e:
            if e.status == 404:
                continue
            raise
        targeting = [
            h
            for h in items
            if (h.get("spec") or {}).get("scaleTargetRef", {}).get("kind") == kind
            and h["spec"]["scaleTargetRef"].get("name") == name
        ]
        return key, targeting
    return None, []


def run(module) -> dict:
    params = module.params
    kind, namespace, name = params["kind"], params["namespace"], params["name"]
    label = f"{kind} {namespace}/{name}"
    if params["wait_timeout"] < 0:
        raise K8sInputError(f"wait_timeout must be >= 0, got {params['wait_timeout']}")
    kube = Kube.from_module(module)
    kube.namespace(namespace)
    workload = kube.get(kind, namespace, name)
    hpa_key, hpas = find_hpas(kube, kind, namespace, name)
    if len(hpas) > 1:
        names = ", ".join(sorted(h["metadata"]["name"] for h in hpas))
        raise K8sInputError(f"several HorizontalPodAutoscalers target {label} ({names}); fix that first")
    hpa = hpas[0] if hpas else None
    try:
        decision = decide_scale(
            label,
            workload["spec"].get("replicas", 1),
            hpa,
            params["replicas"],
            params["min_replicas"],
            params["max_replicas"],
        )
    except ValueError as e:
        raise K8sInputError(str(e)) from None

    status = workload.get("status") or {}
    before = {"replicas": decision["old"]["replicas"], "ready": status.get("readyReplicas", 0)}
    before.update(hpa_min=decision["old"]["hpa_min"], hpa_max=decision["old"]["hpa_max"])
    wanted = {"replicas": decision["new"]["replicas"], "hpa_min": decision["new"]["hpa_min"]}
    wanted["hpa_max"] = decision["new"]["hpa_max"]
    changed = decision["changed"]
    result = {
        "changed": changed,
        "workload": {"kind": kind, "namespace": namespace, "name": name, "uid": workload["metadata"]["uid"]},
        "previous": decision["previous"],
        "before": before,
    }
    if module._diff:
        keys = [k for k in wanted if wanted[k] != before[k]] or ["replicas"]
        result["diff"] = {"before": {k: before[k] for k in keys}, "after": {k: wanted[k] for k in keys}}
    if module.check_mode:
        result["after"] = dict(before, **wanted)
        result["rollout"] = {"state": "not waited", "message": "check mode"}
        result["msg"] = f"check mode: {'would scale' if changed else 'no change to'} {label}: {decision['reason']}"
        return result

    if hpa is not None and (wanted["hpa_min"], wanted["hpa_max"]) != (before["hpa_min"], before["hpa_max"]):
        body = {"spec": {"minReplicas": wanted["hpa_min"], "maxReplicas": wanted["hpa_max"]}}
        kube.patch(hpa_key, namespace, hpa["metadata"]["name"], body, content_type=MERGE_PATCH)
    if wanted["replicas"] != before["replicas"]:
        scale = {"spec": {"replicas": wanted["replicas"]}}
        kube.patch(kind, namespace, name, scale, content_type=MERGE_PATCH, subresource="scale")

    if params["wait"]:
        state, why, obj = wait_for_rollout(kube, kind, namespace, name, params["wait_timeout"])
        workload = obj or workload
        result["rollout"] = {"state": state, "message": why}
        if state != "done":
            result["after"] = dict(wanted, ready=(workload.get("status") or {}).get("readyReplicas", 0))
            pods = failing_pods(kube, workload)
            action = "scaled" if changed else "no change to"
            raise rollout_failure(label, action, state, why, pods, params["wait_timeout"], **result)
    else:
        workload = kube.get(kind, namespace, name)
        result["rollout"] = {"state": "not waited", "message": "not waiting for the rollout"}
    result["after"] = dict(wanted, replicas=workload["spec"].get("replicas", 1))
    result["after"]["ready"] = (workload.get("status") or {}).get("readyReplicas", 0)
    verb = "scaled" if changed else "no change to"
    result["msg"] = f"{verb} {label}: {decision['reason']}; {result['rollout']['message']}"
    return result


def main():
    module = AnsibleK8SModule(
        module_class=AnsibleModule,
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
        required_one_of=[("replicas", "min_replicas", "max_replicas")],
    )
    run_module(module, run, "mitigation")


if __name__ == "__main__":
    main()
