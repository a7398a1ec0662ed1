#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_rollout_undo
short_description: Roll a Deployment, StatefulSet or DaemonSet back to an earlier revision, safely, and wait
version_added: 0.1.0
author:
  - firebreak.runbooks maintainers (@firebreak)
description:
  - Does what C(kubectl rollout undo) does, in one module call that reads the workload and its history, decides,
    patches, waits for the rollout to complete and reports it.
  - The history is the ReplicaSets (Deployment) or ControllerRevisions (StatefulSet, DaemonSet) that the workload
    owns (controller ownerReference with its uid) AND that match its full selector, so two workloads that share a
    label key never see each other's revisions (unlike M(kubernetes.core.k8s_rollback)).
  - The target is the highest revision below the current one (a history with gaps left by C(revisionHistoryLimit)
    works), or O(to_revision).
  - Only the pod template is replaced (without the C(pod-template-hash) label). The workload's own annotations stay;
    for a Deployment the target ReplicaSet's annotations that kubectl copies (such as C(kubernetes.io/change-cause))
    are set. The patch fails, changing nothing, if the pod template changed since it was read.
  - The rollback is recorded on the workload as annotations C(firebreak.io/rolled-back-from),
    C(firebreak.io/rolled-back-to), C(firebreak.io/rolled-back-to-hash) and C(firebreak.io/rolled-back-at). A re-run
    while the workload runs the recorded target changes nothing (it never flips back to the bad revision); give
    O(to_revision) to go further back.
  - Refuses, changing nothing, when there is no earlier revision, when O(to_revision) does not exist, or when a
    Deployment that would change is paused; the message lists the revisions that exist.
  - In check mode nothing is changed; the result (and the diff) shows the pod template that would be restored.
options:
  kind:
    description:
      - Kind of the workload.
    type: str
    choices: [Deployment, StatefulSet, DaemonSet]
    default: Deployment
  to_revision:
    description:
      - The revision to roll back to (as C(kubectl rollout history) lists it).
      - When omitted, the highest revision below the current one.
    type: int
  known_good_hash:
    description:
      - The hash of the revision an earlier rollback of the same incident restored (RV(rollback) C(to_hash) of its
        result, which the timeline keeps); the target is pinned to it.
      - A workload that runs that revision, or runs its images (restarted since), changes nothing; any other rolls
        back to it and never to another revision, so a re-run cannot flip back to the bad revision even when the
        annotations that record the rollback were lost. A hash no longer in the history is refused, changing
        nothing.
      - Ignored when O(to_revision) is given.
    type: str
  delete_stuck_pods:
    description:
      - StatefulSet only. After the pod template is restored, delete the StatefulSet's pods that are not Ready and
        not of the restored revision, so that the controller recreates them from it.
      - Under the default C(OrderedReady) pod management a pod that never becomes Ready blocks the rollback as well
        as the rollout; the StatefulSet documentation ("Forced rollback") asks for exactly this deletion.
      - Ready pods are never deleted; the StatefulSet replaces them in order. In check mode the pods are listed,
        not deleted.
    type: bool
    default: true
  wait:
    description:
      - Wait until the rollout completes (also when nothing needed to change).
      - A Deployment is complete when its spec change is observed, all replicas are updated, available and ready,
        no old replicas remain and its C(Progressing) condition has reason C(NewReplicaSetAvailable). A StatefulSet
        or DaemonSet is complete by its own status fields, as C(kubectl rollout status) judges them.
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
  - firebreak.runbooks.step.ATTRIBUTES
  - firebreak.runbooks.step.K8S_OBJECT
requirements:
  - kubernetes >= 24.2.0
  - PyYAML >= 3.11
notes:
  - After a Deployment rollback the restored ReplicaSet gets a new revision number (max+1), as in Kubernetes;
    RV(to_revision) is the number it had when it was chosen, C(after.revision) the number it has now.
seealso:
  - module: kubernetes.core.k8s_rollback
  - module: firebreak.runbooks.k8s_rolling_restart
"""

EXAMPLES = r"""
- name: Roll the api Deployment back to its previous revision and wait until it is rolled out
  firebreak.runbooks.k8s_rollout_undo:
    namespace: shop
    name: api
  register: undo

- name: Roll a StatefulSet back to revision 2
  firebreak.runbooks.k8s_rollout_undo:
    kind: StatefulSet
    namespace: data
    name: queue
    to_revision: 2
    wait_timeout: 600

- name: Show what would be restored, changing nothing
  firebreak.runbooks.k8s_rollout_undo:
    namespace: shop
    name: api
  check_mode: true
  diff: true
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "rolled back Deployment shop/api from revision 4 to revision 3 (previous revision); successfully rolled out"
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
from_revision:
  description: The revision the workload ran before the step.
  returned: always
  type: int
  sample: 4
to_revision:
  description: The revision rolled back to (its number before the rollback), or the current one when nothing changed.
  returned: always
  type: int
  sample: 3
from_images:
  description: Containers and images (C(name=image)) before the step.
  returned: always
  type: list
  elements: str
  sample: ["api=registry.local/api:bad-2.3.0"]
to_images:
  description: Containers and images of the revision rolled back to.
  returned: always
  type: list
  elements: str
  sample: ["api=registry.local/api:2.2.0"]
revisions:
  description:
    - The workload's history as found (oldest first), each with C(revision), C(name), C(images), C(change_cause).
  returned: always
  type: list
  elements: dict
  sample: [{"revision": 3, "name": "api-5f7d9c8b6", "images": ["api=registry.local/api:2.2.0"], "change_cause": null}]
before:
  description: The workload before the step (revision, images, generation, replica counts; C(paused) for a Deployment).
  returned: always
  type: dict
  sample: {"revision": 4, "images": ["api=registry.local/api:bad-2.3.0"], "replicas": 2, "ready": 2, "paused": false}
after:
  description: The workload after the step (after waiting when O(wait=true)); in check mode, the prediction.
  returned: always
  type: dict
  sample: {"revision": 5, "images": ["api=registry.local/api:2.2.0"], "replicas": 2, "ready": 2, "paused": false}
rollback:
  description: The rollback recorded on the workload (C(from), C(to), C(to_hash), C(at)), empty when none.
  returned: always
  type: dict
  sample: {"from": 4, "to": 3, "to_hash": "5f7d9c8b6", "at": "2026-11-24T13:30:00Z"}
rollout:
  description: The rollout's state when the module finished (C(state) done, waiting or not waited, and C(message)).
  returned: always
  type: dict
  sample: {"state": "done", "message": "successfully rolled out (2/2 updated, available and ready)"}
deleted_pods:
  description: StatefulSet pods deleted (or, in check mode, that would be deleted) by O(delete_stuck_pods).
  returned: always
  type: list
  elements: str
  sample: ["queue-2"]
pods:
  description: Pods that are not ready with their containers' waiting or terminated reasons, when the rollout failed.
  returned: on failure to complete the rollout
  type: list
  elements: dict
  sample: [{"name": "api-6c9f-x2k4p", "phase": "Pending", "reasons": ["api: ImagePullBackOff"], "restarts": 0}]
diff:
  description: The pod template before and after, in diff mode.
  returned: when diff mode is on
  type: dict
  sample: {"before": {"template": {}}, "after": {"template": {}}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.common import (
    JSON_PATCH,
    K8S_OBJECT_OPTIONS,
    K8sInputError,
    K8sStepError,
    Kube,
    auth_argument_spec,
    failing_pods,
    rollout_failure,
    run_module,
    wait_for_rollout,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.rollout import (
    RolloutInputError,
    controller_revision_history,
    copied_annotations,
    current_entry,
    decide_undo,
    deployment_history,
    marker_annotations,
    read_marker,
    selector_string,
    stale_annotations,
    stuck_pods,
    summary,
    undo_patch,
    workload_state,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import iso_seconds, utc_now
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

ARGUMENT_SPEC = auth_argument_spec(
    kind=dict(type="str", choices=["Deployment", "StatefulSet", "DaemonSet"], default="Deployment"),
    **K8S_OBJECT_OPTIONS,
    to_revision=dict(type="int"),
    known_good_hash=dict(type="str", no_log=False),
    delete_stuck_pods=dict(type="bool", default=True),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=300),
)


def read_history(kube, kind, workload):
    namespace = workload["metadata"]["namespace"]
    selector = selector_string(workload["spec"].get("selector"))
    if kind == "Deployment":
        return deployment_history(workload, kube.list("ReplicaSet", namespace, label_selector=selector))
    return controller_revision_history(workload, kube.list("ControllerRevision", namespace, label_selector=selector))


def unblock_statefulset(kube, workload, target, check_mode):
    """Forced rollback: the StatefulSet's pods that are not Ready and not of the target revision."""
    selector = selector_string(workload["spec"].get("selector"))
    namespace = workload["metadata"]["namespace"]
    pods = kube.list("Pod", namespace, label_selector=selector)
    names = stuck_pods(pods, workload["metadata"]["uid"], target["name"])
    if not check_mode:
        for name in names:
            kube.delete("Pod", namespace, name)
    return names


def run(module) -> dict:
    params = module.params
    kind, namespace, name = params["kind"], params["namespace"], params["name"]
    label = f"{kind} {namespace}/{name}"
    if params["wait_timeout"] < 0:
        raise K8sInputError(f"wait_timeout must be >= 0, got {params['wait_timeout']}")
    if params["to_revision"] is not None and params["to_revision"] < 1:
        raise K8sInputError(f"to_revision must be a revision number >= 1, got {params['to_revision']}")

    kube = Kube.from_module(module)
    kube.namespace(namespace)
    workload = kube.get(kind, namespace, name)
    history = read_history(kube, kind, workload)
    current = current_entry(kind, workload, history)
    annotations = workload["metadata"].get("annotations") or {}
    marker = read_marker(annotations)
    try:
        decision = decide_undo(
            kind,
            name,
            history,
            current,
            to_revision=params["to_revision"],
            paused=bool(workload["spec"].get("paused")),
            marker=marker,
            known_good=params.get("known_good_hash") or None,
        )
    except RolloutInputError as e:
        raise K8sInputError(str(e), revisions=[summary(h) for h in history]) from None
    target = decision["target"]

    result = {
        "changed": decision["changed"],
        "workload": {"kind": kind, "namespace": namespace, "name": name, "uid": workload["metadata"]["uid"]},
        "from_revision": current["revision"],
        "to_revision": target["revision"],
        "from_images": current["images"],
        "to_images": target["images"],
        "revisions": [summary(h) for h in history],
        "before": workload_state(kind, workload, current),
        "rollback": marker or {},
    }
    if module._diff:
        result["diff"] = {
            "before": {"template": workload["spec"]["template"]},
            "after": {"template": target["template"]},
        }

    result["deleted_pods"] = []
    if kind == "StatefulSet" and params["delete_stuck_pods"] and module.check_mode:
        result["deleted_pods"] = unblock_statefulset(kube, workload, target, True)
        result["changed"] = result["changed"] or bool(result["deleted_pods"])

    if module.check_mode:
        result["after"] = dict(result["before"], images=target["images"], revision=target["revision"])
        result["rollout"] = {"state": "not waited", "message": "check mode"}
        verb = "would roll back" if decision["changed"] else "no change to"
        result["msg"] = f"check mode: {verb} {label}: {decision['reason']}"
        return result

    since = None
    if decision["changed"]:
        since = utc_now()
        extra = copied_annotations(kind, target)
        extra.update(marker_annotations(current["revision"], target, iso_seconds(since)))
        try:
            ops = undo_patch(workload, target, extra, stale_annotations(kind, workload, target))
            workload = kube.patch(kind, namespace, name, ops, content_type=JSON_PATCH)
        except K8sStepError as e:
            if e.status == 422 and "test" in e.message:
                raise K8sStepError(
                    f"the pod template of {label} changed while the step ran; nothing was changed, run it again "
                    f"({e.message})"
                ) from None
            raise
        result["rollback"] = read_marker(workload["metadata"].get("annotations")) or {}
    if kind == "StatefulSet" and params["delete_stuck_pods"]:
        result["deleted_pods"] = unblock_statefulset(kube, workload, target, False)
        result["changed"] = result["changed"] or bool(result["deleted_pods"])

    outcome = f"{label}: {decision['reason']}"
    if params["wait"]:
        state, why, obj = wait_for_rollout(kube, kind, namespace, name, params["wait_timeout"], since)
        workload = obj or workload
        result["rollout"] = {"state": state, "message": why}
        if state != "done":
            result["after"] = workload_state(kind, workload)
            done = "rolled back" if result["changed"] else "no change to"
            pods = failing_pods(kube, workload)
            raise rollout_failure(outcome, done, state, why, pods, params["wait_timeout"], **result)
    else:
        result["rollout"] = {"state": "not waited", "message": "wait=false"}
    after_history = read_history(kube, kind, workload) if decision["changed"] else history
    result["after"] = workload_state(kind, workload, current_entry(kind, workload, after_history))
    suffix = result["rollout"]["message"] if params["wait"] else "not waiting for the rollout"
    if result["deleted_pods"]:
        suffix = f"deleted stuck pods {', '.join(result['deleted_pods'])}; {suffix}"
    if result["changed"]:
        verb = "rolled back" if decision["changed"] else "unblocked the rollout of"
        result["msg"] = f"{verb} {outcome}; {suffix}"
    else:
        result["msg"] = f"no change to {outcome}; {suffix}"
    return result


def main():
    module = AnsibleK8SModule(module_class=AnsibleModule, argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, run, "mitigation")


if __name__ == "__main__":
    main()
