#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_health_verify
short_description: Verify Kubernetes rollouts in one call, polling until every workload is rolled out or a timeout
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - The Kubernetes half of the step "verify health" (M(firebreak.runbooks.health_verify) is the AWS half; the two
    take different connection options). It reads every workload in O(checks) and repeats the round every
    O(interval) seconds until all are rolled out or O(wait_timeout) has passed.
  - A workload passes when its rollout status is done, as C(kubectl rollout status) decides it (the generation
    observed; for a Deployment updated, available and ready replicas equal to the desired replicas, no old
    replicas left, and no C(ProgressDeadlineExceeded)).
  - Each check's verdict (C(pass) or C(fail)), its values and a message are in the result; a failing round's
    message names every failing workload and why.
  - Reads only. In check mode the checks run once (one round, no waiting).
options:
  checks:
    description: The workloads to verify.
    type: list
    elements: dict
    required: true
    suboptions:
      kind:
        description: The check kind (only C(rollout)).
        type: str
        choices: [rollout]
        default: rollout
      workload_kind:
        description: The kind of workload.
        type: str
        choices: [Deployment, StatefulSet, DaemonSet]
        default: Deployment
      namespace:
        description: The workload's namespace.
        type: str
        required: true
      name:
        description: The workload's name.
        type: str
        required: true
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - firebreak.runbooks.step.K8S
  - firebreak.runbooks.step.VERIFY
  - firebreak.runbooks.step.ATTRIBUTES_NO_DIFF
seealso:
  - module: firebreak.runbooks.health_verify
"""

EXAMPLES = r"""
- name: Verify the api Deployment rolled out
  firebreak.runbooks.k8s_health_verify:
    wait_timeout: 300
    checks:
      - namespace: shop
        name: api
"""

RETURN = r"""
passed:
  description: Whether every check passed in the last round.
  returned: always
  type: bool
  sample: true
checks:
  description: The last round's result of each check, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: C(rollout).
      returned: always
      type: str
      sample: rollout
    target:
      description: The workload as C(Kind namespace/name).
      returned: always
      type: str
      sample: Deployment shop/api
    verdict:
      description: C(pass) or C(fail).
      returned: always
      type: str
      sample: pass
    values:
      description: The rollout state and the replica counts the verdict was decided on.
      returned: always
      type: dict
      sample: {"state": "done", "replicas": 2, "updated": 2, "available": 2, "ready": 2}
    message:
      description: The verdict in words, as C(kubectl rollout status) would say it.
      returned: always
      type: str
      sample: successfully rolled out (2/2 updated, available and ready)
rounds:
  description: How many rounds of checks ran.
  returned: always
  type: int
  sample: 1
elapsed:
  description: Seconds spent, all rounds included.
  returned: always
  type: float
  sample: 0.2
passed_at:
  description: When the passing round ended (ISO 8601, UTC), or null.
  returned: always
  type: str
  sample: "2026-11-24T09:42:10Z"
msg:
  description: All checks passed, or every failing workload and why.
  returned: always
  type: str
  sample: "1/1 check(s) failed: rollout Deployment shop/api: deployment exceeded its progress deadline"
before:
  description: C(null); this step changes nothing.
  returned: always
  type: raw
  sample: null
after:
  description: What was read, in short (C(passed) and each workload's verdict).
  returned: always
  type: raw
  sample: {"passed": true, "verdicts": {"Deployment shop/api": "pass"}}
k8s_verb: {description: The verb of the failed Kubernetes call., returned: on its failure, type: str, sample: GET}
k8s_status: {description: Its HTTP status (C(null) if unanswered)., returned: on its failure, type: int, sample: 403}
predicted:
  description: C(true) in check mode (the checks still ran; nothing is ever changed).
  returned: always
  type: bool
  sample: false
step_kind:
  description: The kind of step, for the incident report.
  returned: always
  type: str
  sample: verification
containment:
  description: Always empty; a verification contains nothing.
  returned: always
  type: list
  elements: dict
  sample: []
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import health
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.common import (
    K8sInputError,
    Kube,
    auth_argument_spec,
    run_module,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.rollout import rollout_status
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import iso_seconds, utc_now
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule

ARGUMENT_SPEC = auth_argument_spec(
    checks=dict(
        type="list",
        elements="dict",
        required=True,
        options=dict(
            kind=dict(type="str", choices=["rollout"], default="rollout"),
            workload_kind=dict(type="str", choices=["Deployment", "StatefulSet", "DaemonSet"], default="Deployment"),
            namespace=dict(type="str", required=True),
            name=dict(type="str", required=True),
        ),
    ),
    **health.VERIFY_OPTIONS,
)


def rollout_check(kind, namespace, name, obj):
    """The check result for one workload (``obj`` None when it does not exist)."""
    target = f"{kind} {namespace}/{name}"
    if obj is None:
        return {
            "kind": "rollout",
            "target": target,
            "verdict": "fail",
            "values": {"state": None},
            "message": "not found",
        }
    state, why = rollout_status(kind, obj)
    status, meta = obj.get("status") or {}, obj.get("metadata") or {}
    values = {
        "state": state,
        "generation": meta.get("generation"),
        "observed_generation": status.get("observedGeneration"),
        "replicas": (obj.get("spec") or {}).get("replicas"),
        "updated": status.get("updatedReplicas", 0),
        "available": status.get("availableReplicas", 0),
        "ready": status.get("readyReplicas", 0),
    }
    verdict = "pass" if state == "done" else "fail"
    return {"kind": "rollout", "target": target, "verdict": verdict, "values": values, "message": why}


def run(module):
    params = module.params
    base = dict(changed=False, before=None, after=None)
    for key in ("interval", "wait_timeout"):
        if params[key] < 0:
            raise K8sInputError(f"{key} must be >= 0, got {params[key]}")
    if not params["checks"]:
        raise K8sInputError("checks is empty: give at least one workload")
    for index, check in enumerate(params["checks"]):
        if not isinstance(check, dict) or not check.get("namespace") or not check.get("name"):
            raise K8sInputError(f"checks[{index}] is {check!r}: give namespace and name")
        check.setdefault("workload_kind", "Deployment")
    kube = Kube.from_module(module)
    start = time.monotonic()
    deadline = start + params["wait_timeout"]
    rounds = 0
    while True:
        rounds += 1
        results = []
        for check in params["checks"]:
            kind, namespace, name = check["workload_kind"], check["namespace"], check["name"]
            results.append(rollout_check(kind, namespace, name, kube.get(kind, namespace, name, missing_ok=True)))
        passed, msg = health.summary(results)
        if passed or module.check_mode or time.monotonic() + params["interval"] > deadline:
            break
        time.sleep(params["interval"])
    elapsed = round(time.monotonic() - start, 2)
    result = dict(
        base,
        passed=passed,
        checks=results,
        rounds=rounds,
        elapsed=elapsed,
        passed_at=iso_seconds(utc_now()) if passed else None,
    )
    if not passed:
        msg = f"{msg} (after {rounds} round(s) in {elapsed}s)"
        if params["fail_on_unhealthy"]:
            module.fail_json(msg=msg, **result)
    return dict(result, msg=msg)


def main():
    module = AnsibleK8SModule(module_class=AnsibleModule, argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, run, "verification")


if __name__ == "__main__":
    main()
