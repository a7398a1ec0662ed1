#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ecs_service_rollback
short_description: Roll an ECS service back to its last stable task definition, wait until stable, verify targets
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Performs the step "roll back to last stable task definition" of an ECS incident in one call. It reads the service,
    decides the target revision, updates the service, waits until it is stable and reports the health of the
    service's load balancer target groups.
  - Without O(task_definition), the target is the highest ACTIVE revision of the service's task definition
    family lower than the revision the service runs (gaps and INACTIVE revisions are skipped).
  - A rollback is recorded on the service with the tags C(firebreak:rolled-back-from),
    C(firebreak:rolled-back-to) and C(firebreak:rolled-back-at) (written before the update). When no
    O(task_definition) and no O(rollback_from) are given and the service still runs the recorded
    C(firebreak:rolled-back-to) revision, the module reports no change instead of rolling back a second time.
  - With O(rollback_from), the module only acts when the service runs that (bad) revision, so a re-run after
    a partial failure, or after someone else already rolled back, changes nothing.
  - In check mode the module reads the service and reports the change (with a diff) but makes no call that
    changes anything.
  - Bad input (a cluster, service or revision that does not exist, an INACTIVE revision, a malformed reference,
    a revision of another family) fails with a message naming the value, before anything is changed.
options:
  cluster:
    description:
      - Name or ARN of the ECS cluster.
    type: str
    required: true
  service:
    description:
      - Name or ARN of the ECS service.
    type: str
    required: true
  task_definition:
    description:
      - The revision to roll back to, as a task definition ARN, C(family:revision), or a revision number of the
        service's family.
      - It must exist, be ACTIVE and belong to the service's family (unless O(allow_other_family=true)).
      - When omitted, the highest ACTIVE revision lower than the current one.
    type: str
  rollback_from:
    description:
      - The bad revision (task definition ARN, C(family:revision) or revision number of the service's family).
      - When set and the service does not run this revision, nothing is changed.
      - When set, it also overrides the rollback record. A service that runs the recorded rolled-back-to
        revision and is named here is rolled back further.
    type: str
  allow_other_family:
    description:
      - Allow O(task_definition) to be a revision of another task definition family.
    type: bool
    default: false
  force_new_deployment:
    description:
      - Also force a new deployment (ECS C(forceNewDeployment)) when updating the service.
    type: bool
    default: false
  wait:
    description:
      - Wait until the service is stable on the target revision (its task definition is the target, all desired
        tasks run and the deployment completed). Also waits when nothing needed to change.
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait, in seconds. On timeout the module fails and reports the service's current state.
    type: int
    default: 600
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
notes:
  - moto (the sandbox) never changes a service's C(deployments); stability is judged on the service's
    C(taskDefinition), C(runningCount) and C(desiredCount), and on the PRIMARY deployment's C(rolloutState).
  - The module returns target health but does not fail on unhealthy targets; assert on RV(target_health)
    (the C(firebreak.runbooks.ecs_rollback) role does).
seealso:
  - module: firebreak.runbooks.ecs_service_status_info
  - module: community.aws.ecs_service
"""

EXAMPLES = r"""
- name: Roll the API service back to the previous ACTIVE revision and wait until stable
  firebreak.runbooks.ecs_service_rollback:
    cluster: shop
    service: shop-api
  register: rollback

- name: Roll back only if the service still runs the bad revision 4 (safe to re-run)
  firebreak.runbooks.ecs_service_rollback:
    cluster: shop
    service: shop-api
    rollback_from: shop-api:4

- name: Roll back to a given revision, without waiting
  firebreak.runbooks.ecs_service_rollback:
    cluster: shop
    service: shop-api
    task_definition: arn:aws:ecs:us-east-1:123456789012:task-definition/shop-api:2
    wait: false

- name: Fail unless every target group has a healthy target after the rollback
  ansible.builtin.assert:
    that: rollback.target_health | rejectattr('healthy') | list | length == 0
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "rolled back shop-api from shop-api:3 to shop-api:2 (previous ACTIVE revision); stable"
service:
  description: The service acted on.
  returned: always
  type: dict
  contains:
    arn:
      description: Service ARN.
      returned: always
      type: str
      sample: arn:aws:ecs:us-east-1:123456789012:service/shop/shop-api
    name:
      description: Service name.
      returned: always
      type: str
      sample: shop-api
    cluster:
      description: Cluster ARN.
      returned: always
      type: str
      sample: arn:aws:ecs:us-east-1:123456789012:cluster/shop
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
after:
  description:
    - The service after the step (after waiting when O(wait=true)). In check mode, the predicted state.
  returned: always
  type: dict
  contains:
    task_definition:
      description: Task definition as C(family:revision).
      returned: always
      type: str
      sample: shop-api:2
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
target_task_definition:
  description: ARN of the revision the service runs (or would run, in check mode) after the step.
  returned: always
  type: str
  sample: arn:aws:ecs:us-east-1:123456789012:task-definition/shop-api:2
rollback:
  description: The rollback recorded on the service (its C(firebreak:*) tags), if any.
  returned: always
  type: dict
  contains:
    from:
      description: The revision rolled back from, C(family:revision).
      returned: when a rollback is recorded
      type: str
      sample: shop-api:3
    to:
      description: The revision rolled back to, C(family:revision).
      returned: when a rollback is recorded
      type: str
      sample: shop-api:2
    at:
      description: When the rollback was started (UTC, ISO 8601).
      returned: when a rollback is recorded
      type: str
      sample: "2025-01-31T14:03:07Z"
    recorded:
      description: Whether the record is on the service (false if tagging the service failed; see warnings).
      returned: always
      type: bool
      sample: true
target_health:
  description: Health of the targets of every target group of the service, read after the step.
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
diff:
  description: The task definition before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {"task_definition": "shop-api:3"}, "after": {"task_definition": "shop-api:2"}}
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.firebreak.runbooks.plugins.module_utils.ecs import (
    AnsibleECSError,
    ECSInputError,
    decide_rollback,
    describe_service,
    describe_task_definition,
    list_revisions,
    marker_tags,
    normalize_task_definition,
    parse_task_definition,
    read_marker,
    split_loose,
    state_of,
    tag_service,
    target_health,
    update_service,
    utc_now,
    validate_target,
    wait_for_stable,
)

ARGUMENT_SPEC = dict(
    cluster=dict(type="str", required=True),
    service=dict(type="str", required=True),
    task_definition=dict(type="str"),
    rollback_from=dict(type="str"),
    allow_other_family=dict(type="bool", default=False),
    force_new_deployment=dict(type="bool", default=False),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=600),
)


def current_revision(client, service: dict) -> tuple[str, int]:
    """``(family, revision)`` the service runs (moto may store a bare family: resolve it)."""
    family, revision = split_loose(service.get("taskDefinition"))
    if revision is None:
        described = describe_task_definition(client, family)
        if not described:
            reported = service.get("taskDefinition")
            raise ECSInputError(message=f"the service's task definition {reported!r} does not exist")
        revision = int(described["revision"])
    return family, revision


def run(module: AnsibleAWSModule) -> dict:
    params = module.params
    cluster, service_name = params["cluster"], params["service"]
    if params["wait_timeout"] < 0:
        raise ECSInputError(message=f"wait_timeout must be >= 0, got {params['wait_timeout']}")
    # Syntax first, before any call. A bare revision number needs the service's family: checked below.
    for option in ("task_definition", "rollback_from"):
        value = params[option]
        if value is not None and not value.strip().isdigit():
            try:
                parse_task_definition(value)
            except ValueError as e:
                raise ECSInputError(message=f"{option}: {e}") from None

    ecs = module.client("ecs")
    service = describe_service(ecs, cluster, service_name)
    family, revision = current_revision(ecs, service)
    current = f"{family}:{revision}"
    before = state_of(service)
    before["task_definition"] = current
    identity = {"arn": service["serviceArn"], "name": service["serviceName"], "cluster": service.get("clusterArn")}
    marker = read_marker(service.get("tags"))

    target_arns: dict[str, str] = {}
    target = None
    if params["task_definition"] is not None:
        try:
            requested = normalize_task_definition(params["task_definition"], family)
        except ValueError as e:
            raise ECSInputError(message=f"task_definition: {e}") from None
        described = describe_task_definition(ecs, requested)
        target = validate_target(params["task_definition"], described, family, params["allow_other_family"])
        target_arns[target] = described["taskDefinitionArn"]
    rollback_from = None
    if params["rollback_from"] is not None:
        try:
            rollback_from = normalize_task_definition(params["rollback_from"], family)
        except ValueError as e:
            raise ECSInputError(message=f"rollback_from: {e}") from None

    def active_revisions():
        revisions = list_revisions(ecs, family, "ACTIVE")
        target_arns.update({f"{family}:{r}": arn for r, arn in revisions.items()})
        return list(revisions)

    decision = decide_rollback(
        current, target=target, rollback_from=rollback_from, marker=marker, active_revisions=active_revisions
    )
    target = decision["target"]
    target_arn = target_arns.get(target) or (service["taskDefinition"] if target == current else None)
    if target_arn is None or ":task-definition/" not in target_arn:
        described = describe_task_definition(ecs, target)
        target_arn = described["taskDefinitionArn"] if described else target

    result = {
        "changed": decision["changed"],
        "service": identity,
        "before": before,
        "target_task_definition": target_arn,
        "rollback": dict(marker or {}, recorded=bool(marker)),
    }
    if module._diff:
        result["diff"] = {"before": {"task_definition": current}, "after": {"task_definition": target}}

    elbv2 = module.client("elbv2")
    if module.check_mode:
        result["after"] = dict(before, task_definition=target)
        result["target_health"] = target_health(elbv2, service)
        if decision["changed"]:
            result["msg"] = f"check mode: would roll back {identity['name']} {decision['reason']}"
        else:
            result["msg"] = f"check mode: no change to {identity['name']}: {decision['reason']}"
        return result

    if decision["changed"]:
        record = {"from": current, "to": target, "at": utc_now()}
        try:
            tag_service(ecs, service["serviceArn"], marker_tags(record["from"], record["to"], record["at"]))
            result["rollback"] = dict(record, recorded=True)
        except AnsibleECSError as e:
            module.warn(
                f"could not record the rollback on the service ({e}); a re-run without task_definition or "
                "rollback_from would roll back further"
            )
            result["rollback"] = dict(record, recorded=False)
        service = update_service(ecs, cluster, service_name, target_arn, params["force_new_deployment"])

    outcome = decision["reason"]
    if params["wait"]:
        try:
            service = wait_for_stable(ecs, cluster, service_name, target, params["wait_timeout"])
        except AnsibleECSError as e:
            # The update (if any) was made: report it with the failure so the record shows it.
            e.kwargs.update(result, after=state_of(service), changed=decision["changed"])
            raise
        outcome += "; stable"
    elif decision["changed"]:
        service = describe_service(ecs, cluster, service_name)
        outcome += "; not waiting for stability"
    result["after"] = state_of(service)
    result["target_health"] = target_health(elbv2, service)
    if decision["changed"]:
        result["msg"] = f"rolled back {identity['name']} {outcome}"
    else:
        result["msg"] = f"no change to {identity['name']}: {outcome}"
    return result


def main():
    module = AnsibleAWSModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        result = run(module)
    except AnsibleECSError as e:
        details = {"changed": False, **e.kwargs}
        if e.exception is not None:
            module.fail_json_aws(e.exception, msg=e.message, **details)
        module.fail_json(msg=e.message, **details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
