#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ecs_service_status_info
short_description: Triage an ECS service in one call (service, recent task definition revisions, target health)
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Performs the step "initial triage" of an ECS incident in one call.
  - Returns a summary of the service (status, desired, running and pending counts, task definition,
    deployments, rollout state, the most recent events and any firebreak rollback record), the most recent
    revisions of its task definition family (ACTIVE and INACTIVE, newest first, with their images), and the
    health of the targets of every load balancer target group of the service.
  - Reads only; runs in check mode.
  - The step modules (M(firebreak.runbooks.ecs_service_rollback), M(firebreak.runbooks.ecs_service_restart),
    M(firebreak.runbooks.ecs_service_scale)) capture the same evidence in their own call with C(capture=true);
    use this module for triage alone.
options:
  revisions:
    description:
      - How many of the most recent task definition revisions of the service's family to return (0 for none).
    type: int
    default: 5
  events:
    description:
      - How many of the most recent service events to return.
    type: int
    default: 10
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.ECS_SERVICE
  - firebreak.runbooks.step.ATTRIBUTES_NO_DIFF
seealso:
  - module: firebreak.runbooks.ecs_service_rollback
"""

EXAMPLES = r"""
- name: Triage the API service
  firebreak.runbooks.ecs_service_status_info:
    cluster: shop
    service: shop-api
    revisions: 3
  register: triage

- name: Show what runs and what ran before
  ansible.builtin.debug:
    msg: >-
      {{ triage.service.task_definition_revision }}
      ({{ triage.service.running_count }}/{{ triage.service.desired_count }} running);
      revisions {{ triage.task_definitions | map(attribute='revision') | list }}
"""

RETURN = r"""
service:
  description: Summary of the service.
  returned: always
  type: dict
  contains:
    service_name:
      description: Service name.
      returned: always
      type: str
      sample: shop-api
    service_arn:
      description: Service ARN.
      returned: always
      type: str
      sample: arn:aws:ecs:us-east-1:123456789012:service/shop/shop-api
    cluster_arn:
      description: Cluster ARN.
      returned: always
      type: str
      sample: arn:aws:ecs:us-east-1:123456789012:cluster/shop
    status:
      description: Service status.
      returned: always
      type: str
      sample: ACTIVE
    launch_type:
      description: Launch type.
      returned: always
      type: str
      sample: FARGATE
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
    pending_count:
      description: Pending task count.
      returned: always
      type: int
      sample: 0
    task_definition:
      description: The task definition as the service reports it (an ARN on AWS).
      returned: always
      type: str
      sample: arn:aws:ecs:us-east-1:123456789012:task-definition/shop-api:3
    task_definition_revision:
      description: The task definition as C(family:revision).
      returned: always
      type: str
      sample: shop-api:3
    rollout_state:
      description: Rollout state of the PRIMARY deployment.
      returned: always
      type: str
      sample: COMPLETED
    rollout_state_reason:
      description: Reason for the rollout state of the PRIMARY deployment.
      returned: always
      type: str
      sample: ECS deployment ecs-svc/123 completed.
    deployments:
      description:
        - The deployments, each with C(id), C(status), C(task_definition), C(desired_count), C(running_count),
          C(pending_count), C(failed_tasks), C(rollout_state), C(created_at) and C(updated_at).
      returned: always
      type: list
      elements: dict
      sample: [{"id": "ecs-svc/123", "status": "PRIMARY", "rollout_state": "COMPLETED"}]
    events:
      description: The most recent service events (newest first), each with C(id), C(created_at) and C(message).
      returned: always
      type: list
      elements: dict
      sample: [{"id": "e1", "created_at": "2025-01-31T14:03:07+00:00", "message": "(service shop-api) steady state"}]
    load_balancers:
      description: Load balancers of the service (C(target_group_arn), C(container_name), C(container_port)).
      returned: always
      type: list
      elements: dict
      sample: [{"target_group_arn": "arn:aws:elasticloadbalancing:...", "container_name": "api", "container_port": 80}]
    rollback_marker:
      description: The firebreak rollback recorded on the service (C(from), C(to), C(at)), or null.
      returned: always
      type: dict
      sample: {"from": "shop-api:3", "to": "shop-api:2", "at": "2025-01-31T14:03:07Z"}
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: evidence}
containment: {description: Always empty here., returned: always, type: list, elements: dict, sample: []}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str, sample: GetAlias}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
task_definitions:
  description: The most recent revisions of the service's task definition family, newest first.
  returned: always
  type: list
  elements: dict
  contains:
    arn:
      description: Task definition ARN.
      returned: always
      type: str
      sample: arn:aws:ecs:us-east-1:123456789012:task-definition/shop-api:3
    family:
      description: Family.
      returned: always
      type: str
      sample: shop-api
    revision:
      description: Revision number.
      returned: always
      type: int
      sample: 3
    status:
      description: C(ACTIVE) or C(INACTIVE).
      returned: always
      type: str
      sample: ACTIVE
    images:
      description: The image of each container.
      returned: always
      type: list
      elements: str
      sample: ["registry.local/shop-api:1.2.0"]
    registered_at:
      description: When the revision was registered (ISO 8601).
      returned: always
      type: str
      sample: "2025-01-31T13:40:00+00:00"
    current:
      description: Whether the service runs this revision.
      returned: always
      type: bool
      sample: true
target_health:
  description: Health of the targets of every target group of the service.
  returned: always
  type: list
  elements: dict
  contains:
    target_group_arn:
      description: Target group ARN.
      returned: always
      type: str
      sample: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-api-tg/0123456789abcdef
    healthy:
      description: Number of targets in state C(healthy).
      returned: always
      type: int
      sample: 2
    unhealthy:
      description: Number of targets in state C(unhealthy), C(unhealthy.draining) or C(unavailable).
      returned: always
      type: int
      sample: 0
    total:
      description: Number of registered targets.
      returned: always
      type: int
      sample: 2
    states:
      description: Number of targets per state.
      returned: always
      type: dict
      sample: {"healthy": 2}
    targets:
      description: Each target with C(id), C(port), C(state), C(reason) and C(description).
      returned: always
      type: list
      elements: dict
      sample: [{"id": "10.0.1.10", "port": 8000, "state": "healthy", "reason": null, "description": null}]
msg: {description: What the step read (one line)., returned: always, type: str}
before: {description: C(null); this step changes nothing., returned: always, type: raw, sample: null}
after: {description: The service as read (as RV(service))., returned: always, type: raw}
"""

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws.ecs import (
    SERVICE_OPTIONS,
    ECSInputError,
    describe_service,
    lazy_client,
    recent_revisions,
    service_summary,
    split_loose,
    target_health,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    RETRY_BUDGET_OPTION,
    Caller,
    aws_client,
    run_aws_step,
)

ARGUMENT_SPEC = dict(
    **SERVICE_OPTIONS,
    revisions=dict(type="int", default=5),
    events=dict(type="int", default=10),
    **RETRY_BUDGET_OPTION,
)


def run(module, result):
    params = module.params
    caller = Caller(params["retry_budget"])
    ecs = aws_client(module, "ecs")
    service = describe_service(ecs, params["cluster"], params["service"], caller=caller)
    summary = service_summary(service, params["events"])
    try:
        family, _revision = split_loose(service.get("taskDefinition"))
    except ValueError as e:
        raise ECSInputError(str(e)) from None
    revisions = recent_revisions(ecs, family, params["revisions"], summary["task_definition_revision"], caller=caller)
    health = target_health(lazy_client(module, "elbv2"), service, caller=caller)
    result.update(
        changed=False,
        msg=f"read {summary.get('name') or params['service']}",
        before=None,
        after=summary,
        service=summary,
        task_definitions=revisions,
        target_health=health,
    )
    return result


def main():
    run_aws_step(run, "evidence", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
