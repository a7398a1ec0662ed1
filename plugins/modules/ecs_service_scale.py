#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ecs_service_scale
short_description: Scale an ECS service out (recording the old desired count) or restore the recorded count
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Performs the "scale out" response action of an ECS incident in one call. With O(state=scaled) it raises the
    service's desired count to O(desired_count), waits until the service runs that many tasks and is stable, and
    reports target health.
  - The count before the scale-out is recorded so that it can be put back, in the result (RV(scale)) and on the
    service as the tags C(firebreak:scaled-from), C(firebreak:scaled-to) and C(firebreak:scaled-at) (plus the
    incident tags), written once ECS accepted the update. Scaling out again keeps the first recorded count (the one
    before the incident's first scale-out).
  - With O(state=restored) it puts back the recorded count and removes the record. If the desired count is no longer
    the one the scale-out set (someone changed it meanwhile), it is left alone and reported in RV(left_alone).
  - A scale-out never scales in. O(desired_count) lower than the service's current desired count fails naming both
    values. The same count as now is no change.
  - Idempotent. A second scale-out to the same count, or a second restore, reports no change.
  - In check mode the module reads the service and reports the change (with a diff), making no call that changes
    anything.
  - Every AWS call is retried on throttling and transient errors within O(retry_budget); an error that does not
    clear fails the step naming the API call, the AWS error code and the service. The calls up to and including the
    update are made or fail within O(mitigation_deadline) seconds of the step's start.
options:
  state:
    description:
      - C(scaled) raises the desired count to O(desired_count); C(restored) puts back the count recorded by the
        scale-out.
    type: str
    choices: [scaled, restored]
    default: scaled
  desired_count:
    description:
      - The desired task count to scale out to, from 0 to 5000 (the ECS tasks-per-service quota). Required with
        O(state=scaled); ignored with O(state=restored).
    type: int
  wait:
    description:
      - Wait until the service runs the desired count and is stable.
    type: bool
    default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.ECS_SERVICE
  - firebreak.runbooks.step.ECS_WAIT
  - firebreak.runbooks.step.INCIDENT
  - firebreak.runbooks.step.ATTRIBUTES
  - firebreak.runbooks.step.DEADLINE
notes:
  - moto (the sandbox) sets the running count to the desired count at once; only real ECS shows tasks starting (and
    failing to start for lack of capacity or IP addresses in the subnets).
  - Application Auto Scaling, when configured for the service, may change the desired count afterwards; raise its
    minimum capacity too if the scale-out must hold.
seealso:
  - module: firebreak.runbooks.ecs_service_restart
  - module: firebreak.runbooks.ecs_service_status_info
"""

EXAMPLES = r"""
- name: Scale the API service out to 6 tasks and wait until they all run
  firebreak.runbooks.ecs_service_scale:
    cluster: shop
    service: shop-api
    desired_count: 6
    incident_id: INC-042
  register: scale

- name: After the incident, put back the desired count recorded before the scale-out
  firebreak.runbooks.ecs_service_scale:
    cluster: shop
    service: shop-api
    state: restored
    incident_id: INC-042
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "scaled shop-api: desired count 2 -> 6 (restore to 2 with state=restored); stable"
service:
  description: The service acted on (C(arn), C(name), C(cluster)).
  returned: always
  type: dict
  sample: {"arn": "arn:aws:ecs:us-east-1:123456789012:service/shop/shop-api", "name": "shop-api", "cluster": "arn:..."}
before:
  description: The service before the step (C(task_definition), C(desired_count), C(running_count)).
  returned: always
  type: dict
  sample: {"task_definition": "shop-api:3", "desired_count": 2, "running_count": 2}
after:
  description: The service after the step (after waiting when O(wait=true)); in check mode, the predicted state.
  returned: always
  type: dict
  sample: {"task_definition": "shop-api:3", "desired_count": 6, "running_count": 6}
scale:
  description: The scale-out recorded on the service (after the step), if any.
  returned: always
  type: dict
  contains:
    from:
      description: The desired count before the scale-out (what O(state=restored) puts back).
      returned: when a scale-out is recorded
      type: int
      sample: 2
    to:
      description: The desired count the scale-out set.
      returned: when a scale-out is recorded
      type: int
      sample: 6
    at:
      description: When the scale-out was made (UTC, ISO 8601).
      returned: when a scale-out is recorded
      type: str
      sample: "2025-01-31T14:03:07Z"
    recorded:
      description: Whether the record is on the service (false if tagging failed, or after a restore).
      returned: always
      type: bool
      sample: true
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: mitigation}
containment: {description: Always empty here., returned: always, type: list, elements: dict, sample: []}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
left_alone:
  description:
    - With O(state=restored), what was found changed by someone else since the scale-out and therefore not touched
      (C(desired_count) now, C(scaled_to), C(scaled_from)); empty otherwise.
  returned: always
  type: dict
  sample: {}
incident_id:
  description: The incident this step acted for.
  returned: always
  type: str
  sample: INC-042
target_health:
  description: Health of the targets of every target group of the service, read after the step.
  returned: always
  type: list
  elements: dict
  sample: [{"target_group_arn": "arn:aws:elasticloadbalancing:...", "healthy": 6, "unhealthy": 0, "total": 6}]
captured:
  description: The service summary and target health read before the step, with O(capture=true).
  returned: when O(capture=true)
  type: dict
  sample: {"at": "2025-01-31T14:03:07Z", "service": {"service_name": "shop-api"}, "target_health": []}
diff:
  description: The desired count before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {"desired_count": 2}, "after": {"desired_count": 6}}
aws_operation:
  description: The API call that failed for good (a failed step only).
  returned: on an AWS error
  type: str
  sample: UpdateService
aws_error_code:
  description: The AWS error code of that failure.
  returned: on an AWS error
  type: str
  sample: InternalFailure
resource:
  description: What the failed call was about.
  returned: on an AWS error
  type: str
  sample: "ECS service 'shop-api' in cluster 'shop' (desired count 2 -> 6)"
attempts:
  description: How many attempts the failed call made.
  returned: on an AWS error
  type: int
  sample: 9
"""

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws.ecs import (
    SCALE_TAGS,
    SERVICE_OPTIONS,
    WAIT_OPTIONS,
    AnsibleECSError,
    ECSInputError,
    capture_before,
    decide_scale_out,
    decide_scale_restore,
    describe_service,
    lazy_client,
    normalize_task_definition,
    read_scale,
    scale_tags,
    service_resource,
    state_of,
    tag_service,
    target_health,
    untag_service,
    update_service,
    utc_now,
    validate_desired_count,
    wait_for_stable,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    DEADLINE_OPTION,
    INCIDENT_OPTION,
    RETRY_BUDGET_OPTION,
    Caller,
    StepAWSError,
    aws_client,
    incident_tags,
    run_aws_step,
)

ARGUMENT_SPEC = dict(
    **SERVICE_OPTIONS,
    state=dict(type="str", choices=["scaled", "restored"], default="scaled"),
    desired_count=dict(type="int"),
    wait=dict(type="bool", default=True),
    **WAIT_OPTIONS,
    **RETRY_BUDGET_OPTION,
    **DEADLINE_OPTION,
    **INCIDENT_OPTION,
)

STEP = "scale_out"


def run(module, result: dict | None = None) -> dict:
    result = {} if result is None else result
    params = module.params
    cluster, service_name, incident_id = params["cluster"], params["service"], params["incident_id"] or None
    for option in ("wait_timeout", "retry_budget", "mitigation_deadline"):
        if params[option] < 0:
            raise ECSInputError(message=f"{option} must be >= 0, got {params[option]}")
    if params["state"] == "scaled":
        validate_desired_count(params["desired_count"])

    caller = Caller(params["retry_budget"], deadline=params["mitigation_deadline"])
    ecs = aws_client(module, "ecs")
    elbv2 = lazy_client(module, "elbv2")
    service = describe_service(ecs, cluster, service_name, caller=caller)
    before = state_of(service)
    desired_now = int(service.get("desiredCount") or 0)
    identity = {"arn": service["serviceArn"], "name": service["serviceName"], "cluster": service.get("clusterArn")}
    record = read_scale(service.get("tags"))
    result.update(
        changed=False,
        service=identity,
        before=before,
        incident_id=incident_id,
        scale=dict(record or {}, recorded=bool(record)),
        left_alone={},
    )
    if params["capture"]:
        result["captured"] = capture_before(ecs, elbv2, service, caller=caller)

    if params["state"] == "scaled":
        decision = decide_scale_out(desired_now, params["desired_count"], record)
        decision["action"] = "scale" if decision["changed"] else "none"
    else:
        decision = decide_scale_restore(desired_now, record)
        result["left_alone"] = decision["left_alone"]
    new_count = decision["to"]
    if module._diff:
        result["diff"] = {"before": {"desired_count": desired_now}, "after": {"desired_count": new_count}}
    verb = "scaled" if params["state"] == "scaled" else "restored"

    if module.check_mode or decision["action"] not in ("scale", "restore"):
        caller.end_deadline()
    if module.check_mode:
        result["changed"] = decision["changed"]
        result["after"] = dict(before, desired_count=new_count, running_count=new_count)
        result["target_health"] = (
            result["captured"]["target_health"] if "captured" in result else target_health(elbv2, service, caller)
        )
        would = f"would have {verb}" if decision["changed"] else "no change to"
        result["msg"] = f"check mode: {would} {identity['name']}: {decision['reason']}"
        return result

    if decision["action"] in ("scale", "restore"):
        what = f"{service_resource(cluster, service_name)} (desired count {desired_now} -> {new_count})"
        try:
            update_service(ecs, cluster, service_name, desired_count=new_count, caller=caller, resource=what)
        except StepAWSError as e:
            e.note = f"the desired count was {desired_now} before this step and the update was not confirmed"
            raise
        result["changed"] = True
        caller.end_deadline()
    try:
        if decision["action"] == "scale":
            scale = {"from": decision["from"], "to": new_count, "at": utc_now()}
            tags = dict(scale_tags(scale["from"], scale["to"], scale["at"]), **incident_tags(incident_id, STEP))
            result["scale"] = dict(scale, recorded=False)
            tag_service(ecs, service["serviceArn"], tags, caller=caller)
            result["scale"]["recorded"] = True
        elif decision["action"] in ("restore", "forget"):
            result["scale"] = dict(record, recorded=True)
            untag_service(ecs, service["serviceArn"], SCALE_TAGS, caller=caller)
            result["changed"] = True
            result["scale"]["recorded"] = False
    except StepAWSError as e:
        module.warn(f"the desired count is {new_count} but the record on the service could not be updated ({e})")

    outcome = decision["reason"]
    if params["wait"]:
        current = normalize_task_definition(service["taskDefinition"])
        try:
            service = wait_for_stable(
                ecs,
                cluster,
                service_name,
                current,
                params["wait_timeout"],
                caller=caller,
                purpose=f"run {new_count} tasks",
            )
        except AnsibleECSError as e:
            e.kwargs.update(result, after=state_of(service))
            raise
        outcome += "; stable"
    elif result["changed"]:
        service = describe_service(ecs, cluster, service_name, caller=caller)
        outcome += "; not waiting for stability"
    result["after"] = state_of(service)
    result["target_health"] = target_health(elbv2, service, caller=caller)
    done = verb if result["changed"] else "no change to"
    result["msg"] = f"{done} {identity['name']}: {outcome}"
    return result


def main():
    run_aws_step(run, "mitigation", ARGUMENT_SPEC, required_if=[("state", "scaled", ("desired_count",))])


if __name__ == "__main__":
    main()
