#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ecs_service_restart
short_description: Restart an ECS service's tasks (force a new deployment), wait until stable, verify targets
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Performs the "restart unhealthy tasks" / "restart backend services to reset connections" response action of
    an ECS incident in one call. It reads the service, forces a new deployment (ECS C(forceNewDeployment) on the
    same task definition, so every task is replaced), waits until the new deployment is the PRIMARY one and the
    service is stable, and reports the health of the service's load balancer target groups.
  - A restart is recorded on the service once ECS accepted it, with the tags C(firebreak:restarted-at),
    C(firebreak:restarted-deployment) and C(firebreak:restarted-for) (the incident id), plus the incident tags.
  - "Idempotence: a restart is not repeated within O(min_interval) seconds of a restart recorded on the service
    for the same incident (O(incident_id); no incident id on both sides counts as the same). Such a re-run reports
    no change (and still waits for stability when O(wait=true)). A restart recorded for another incident, or older
    than O(min_interval), does not prevent a restart; O(min_interval=0) always restarts."
  - In check mode the module reads the service and reports whether it would restart (with a diff), making no call
    that changes anything.
  - Bad input (a cluster or service that does not exist, a negative interval or timeout) fails with a message naming
    the value, before anything is changed.
  - Every AWS call is retried on throttling and transient errors within O(retry_budget); an error that does not
    clear fails the step naming the API call, the AWS error code and the service. The calls up to and including the
    update are made or fail within O(mitigation_deadline) seconds of the step's start.
options:
  min_interval:
    description:
      - Seconds after a restart recorded for the same incident during which a re-run does not restart again.
      - C(0) restarts on every run.
    type: int
    default: 900
  wait:
    description:
      - Wait until the new deployment is PRIMARY and the service is stable (all desired tasks running, one deployment
        left or the PRIMARY one COMPLETED).
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
  - moto (the sandbox) replaces the PRIMARY deployment's id and creation time on C(forceNewDeployment) but never runs
    a rolling replacement of tasks, so the sandbox shows the new deployment and a stable service, not tasks being
    replaced or connections being reset. Only real ECS shows the old tasks draining and new ones starting.
seealso:
  - module: firebreak.runbooks.ecs_service_rollback
  - module: firebreak.runbooks.ecs_service_status_info
"""

EXAMPLES = r"""
- name: Restart the API service's tasks (reset connections) and wait until stable
  firebreak.runbooks.ecs_service_restart:
    cluster: shop
    service: shop-api
    incident_id: INC-042
  register: restart

- name: Restart again even if this incident restarted it a minute ago
  firebreak.runbooks.ecs_service_restart:
    cluster: shop
    service: shop-api
    incident_id: INC-042
    min_interval: 0
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "restarted shop-api: forced a new deployment (no restart recorded on the service); stable"
service:
  description: The service acted on (C(arn), C(name), C(cluster)).
  returned: always
  type: dict
  sample: {"arn": "arn:aws:ecs:us-east-1:123456789012:service/shop/shop-api", "name": "shop-api", "cluster": "arn:..."}
before:
  description: The service before the step.
  returned: always
  type: dict
  contains:
    task_definition:
      description: Task definition as C(family:revision).
      returned: always
      type: str
      sample: shop-api:3
    desired_count:
      description: Desired task count.
      returned: always
      type: int
      sample: 2
    running_count:
      description: Running task count.
      returned: always
      type: int
      sample: 2
    deployment_id:
      description: The PRIMARY deployment's id.
      returned: always
      type: str
      sample: ecs-svc/1234567890123456789
    deployment_created_at:
      description: When the PRIMARY deployment was created (ISO 8601).
      returned: always
      type: str
      sample: "2025-01-31T14:03:07+00:00"
after:
  description: The service after the step (after waiting when O(wait=true)); in check mode, the predicted state.
  returned: always
  type: dict
  sample: {"task_definition": "shop-api:3", "desired_count": 2, "running_count": 2, "deployment_id": "ecs-svc/987"}
restart:
  description: The restart recorded on the service (its C(firebreak:restarted-*) tags), if any.
  returned: always
  type: dict
  contains:
    at:
      description: When the restart was made (UTC, ISO 8601).
      returned: when a restart is recorded
      type: str
      sample: "2025-01-31T14:03:07Z"
    deployment:
      description: The deployment the restart started.
      returned: when a restart is recorded
      type: str
      sample: ecs-svc/987
    incident:
      description: The incident the restart was made for.
      returned: when a restart is recorded
      type: str
      sample: INC-042
    recorded:
      description: Whether the record is on the service (false if tagging failed; see warnings).
      returned: always
      type: bool
      sample: true
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: mitigation}
containment: {description: Always empty here., returned: always, type: list, elements: dict, sample: []}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
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
  sample: [{"target_group_arn": "arn:aws:elasticloadbalancing:...", "healthy": 2, "unhealthy": 0, "total": 2}]
captured:
  description: The service summary and target health read before the step, with O(capture=true).
  returned: when O(capture=true)
  type: dict
  sample: {"at": "2025-01-31T14:03:07Z", "service": {"service_name": "shop-api"}, "target_health": []}
diff:
  description: The PRIMARY deployment before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {"deployment_id": "ecs-svc/123"}, "after": {"deployment_id": "(new deployment)"}}
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
  sample: "ECS service 'shop-api' in cluster 'shop' (restart: force a new deployment)"
attempts:
  description: How many attempts the failed call made.
  returned: on an AWS error
  type: int
  sample: 9
"""

import datetime

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws.ecs import (
    SERVICE_OPTIONS,
    WAIT_OPTIONS,
    AnsibleECSError,
    ECSInputError,
    capture_before,
    decide_restart,
    deployment_state,
    describe_service,
    lazy_client,
    normalize_task_definition,
    read_restart,
    restart_tags,
    service_resource,
    state_of,
    tag_service,
    target_health,
    update_service,
    utc_now,
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
    min_interval=dict(type="int", default=900),
    wait=dict(type="bool", default=True),
    **WAIT_OPTIONS,
    **RETRY_BUDGET_OPTION,
    **DEADLINE_OPTION,
    **INCIDENT_OPTION,
)

STEP = "ecs_service_restart"


def snapshot(service: dict) -> dict:
    state = state_of(service)
    state.update(deployment_state(service))
    return state


def run(module, result: dict | None = None, now=None) -> dict:
    result = {} if result is None else result
    params = module.params
    cluster, service_name, incident_id = params["cluster"], params["service"], params["incident_id"] or None
    for option in ("min_interval", "wait_timeout", "retry_budget", "mitigation_deadline"):
        if params[option] < 0:
            raise ECSInputError(message=f"{option} must be >= 0, got {params[option]}")

    caller = Caller(params["retry_budget"], deadline=params["mitigation_deadline"])
    ecs = aws_client(module, "ecs")
    elbv2 = lazy_client(module, "elbv2")
    service = describe_service(ecs, cluster, service_name, caller=caller)
    before = snapshot(service)
    identity = {"arn": service["serviceArn"], "name": service["serviceName"], "cluster": service.get("clusterArn")}
    record = read_restart(service.get("tags"))
    result.update(
        changed=False,
        service=identity,
        before=before,
        incident_id=incident_id,
        restart=dict(record or {}, recorded=bool(record)),
    )
    if params["capture"]:
        result["captured"] = capture_before(ecs, elbv2, service, caller=caller)

    decision = decide_restart(record, incident_id, now or datetime.datetime.now(datetime.UTC), params["min_interval"])
    if module._diff:
        after_id = "(new deployment)" if decision["changed"] else before["deployment_id"]
        result["diff"] = {"before": {"deployment_id": before["deployment_id"]}, "after": {"deployment_id": after_id}}

    if module.check_mode or not decision["changed"]:
        caller.end_deadline()
    if module.check_mode:
        result["changed"] = decision["changed"]
        result["after"] = dict(before, deployment_id="(new deployment)") if decision["changed"] else dict(before)
        result["target_health"] = (
            result["captured"]["target_health"] if "captured" in result else target_health(elbv2, service, caller)
        )
        verb = "would restart" if decision["changed"] else "no change to"
        result["msg"] = f"check mode: {verb} {identity['name']}: {decision['reason']}"
        return result

    deployment_id = None
    if decision["changed"]:
        what = f"{service_resource(cluster, service_name)} (restart: force a new deployment)"
        try:
            updated = update_service(
                ecs, cluster, service_name, force_new_deployment=True, caller=caller, resource=what
            )
        except StepAWSError as e:
            e.note = "the service was not restarted (ECS did not confirm the new deployment); nothing is recorded"
            raise
        result["changed"] = True
        caller.end_deadline()
        deployment_id = deployment_state(updated)["deployment_id"]
        if deployment_id and deployment_id == before["deployment_id"]:
            raise ECSInputError(
                message=(
                    f"ECS accepted the restart of {identity['name']} but its PRIMARY deployment is still "
                    f"{deployment_id}: no new deployment was started"
                ),
                changed=True,
            )
        restart = {"at": utc_now(), "deployment": deployment_id, "incident": incident_id}
        tags = dict(restart_tags(restart["at"], deployment_id, incident_id), **incident_tags(incident_id, STEP))
        try:
            tag_service(ecs, service["serviceArn"], tags, caller=caller)
            result["restart"] = dict(restart, recorded=True)
        except StepAWSError as e:
            module.warn(
                f"the service was restarted but the restart is not recorded on it ({e}); a re-run would restart again"
            )
            result["restart"] = dict(restart, recorded=False)

    outcome = decision["reason"]
    if params["wait"]:
        current = normalize_task_definition(service["taskDefinition"]) if service.get("taskDefinition") else None
        try:
            service = wait_for_stable(
                ecs,
                cluster,
                service_name,
                current,
                params["wait_timeout"],
                caller=caller,
                deployment_id=deployment_id or before["deployment_id"],
                purpose="finish its restart" if decision["changed"] else "be stable",
            )
        except AnsibleECSError as e:
            e.kwargs.update(result, after=snapshot(service))
            raise
        outcome += "; stable"
    elif decision["changed"]:
        service = describe_service(ecs, cluster, service_name, caller=caller)
        outcome += "; not waiting for stability"
    result["after"] = snapshot(service)
    result["target_health"] = target_health(elbv2, service, caller=caller)
    verb = "restarted" if decision["changed"] else "no change to"
    result["msg"] = f"{verb} {identity['name']}: {outcome}"
    return result


def main():
    run_aws_step(run, "mitigation", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
