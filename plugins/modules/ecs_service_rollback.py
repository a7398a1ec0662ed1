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
  - A rollback is recorded on the service, and the record only claims what happened. Before the update the
    module tags the service C(firebreak:rollback-pending) (C(from=<revision> to=<revision> at=<time>)); once
    the update succeeded it replaces that tag with C(firebreak:rolled-back-from), C(firebreak:rolled-back-to)
    and C(firebreak:rolled-back-at). When no O(task_definition) and no O(rollback_from) are given and the
    service still runs the recorded C(firebreak:rolled-back-to) revision, the module reports no change instead of
    rolling back a second time.
  - A re-run that finds a pending record completes it. If the service still runs the pending source revision,
    it is rolled on to the pending target; if it already runs the pending target (the update reached ECS but the
    final record was lost), the rollback is only recorded, never repeated to an older revision.
  - Every AWS call is retried on throttling and transient errors within O(retry_budget); an error that does not
    clear fails the step naming the API call, the AWS error code, the service and the target revision. The calls up
    to and including the update are made or fail within O(mitigation_deadline) seconds of the step's start.
  - With O(rollback_from), the module only acts when the service runs that (bad) revision, so a re-run after
    a partial failure, or after someone else already rolled back, changes nothing.
  - In check mode the module reads the service and reports the change (with a diff) but makes no call that
    changes anything.
  - Bad input (a cluster, service or revision that does not exist, an INACTIVE revision, a malformed reference,
    a revision of another family) fails with a message naming the value, before anything is changed.
options:
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
  capture:
    description:
      - Capture the evidence of the incident in the same module call, returned as RV(captured) (and so
        recorded in the incident timeline).
      - The service summary (counts, deployments, recent events, firebreak records) and the health of its
        target groups are read B(before) anything is changed; the recent task definition revisions of the
        family (which the rollback does not change) are read B(after) the rollback, so they do not delay it.
      - Replaces a separate M(firebreak.runbooks.ecs_service_status_info) task before the step (one module
        process, about 0.4 s, saved before the first mitigating call).
    type: bool
    default: false
  capture_revisions:
    description:
      - How many of the most recent task definition revisions to capture with O(capture=true).
    type: int
    default: 5
  require_symptom:
    description:
      - Confirm the symptom before rolling back, from what the capture reads before anything changes (in the same
        call, so the first mutating call does not move; the service and its target health are read even without
        O(capture)).
      - Confirmed when the service is down or degraded (fewer tasks running than desired, a target group with an
        unhealthy target or none healthy, the newest deployment's rollout FAILED or stalled IN_PROGRESS with failed
        tasks) B(and) the newest deployment is the suspect (it runs the revision being rolled back from and shows
        the failure itself).
      - When it is not confirmed the step fails before any change, naming what it read (RV(symptom)), unless
        O(force=true). Only a rollback is checked; a re-run that changes nothing, or one completing a pending
        rollback, is not.
    type: bool
    default: false
  force:
    description:
      - With O(require_symptom=true), roll back even though the symptom is not confirmed. Needs O(force_reason);
        RV(symptom) records that the rollback was forced and why.
    type: bool
    default: false
  force_reason:
    description:
      - Why the rollback is forced (recorded in RV(symptom) and so in the incident timeline). Required with
        O(force=true).
    type: str
  claims_bucket:
    description:
      - The S3 bucket that holds the rollback lock, the object C(firebreak/locks/ecs-rollback/<service ARN>/<revision>)
        (the roles pass the evidence bucket, C(firebreak_evidence_bucket), as they do for the containment ledger).
      - Before it updates the service the step takes the lock with a conditional write (C(PutObject) with
        C(If-None-Match) set to C(*)), so that of the runs rolling back one service from one revision at once, on any
        machine, exactly one rolls back. The others change nothing and say which incident, operator and host holds the
        lock and since when (RV(rollback.held_by)); a run that comes after the rollback was recorded finds the service
        already rolled back. The lock is deleted (C(DeleteObject) with C(If-Match) its ETag) once the rollback is
        recorded on the service; one left by a run that died is taken over after 10 minutes with a write
        conditional on its ETag (C(If-Match)), so two runs cannot both take it over.
      - Without it, only the local lock in O(claims_dir) is taken, which orders the runs of one machine only
        (RV(lock.scope) is C(host)).
      - If the bucket cannot be read or written within O(retry_budget), the step fails before anything is changed,
        naming the S3 call and its error code (as a containment claim that cannot be written does).
    type: str
  incident_id:
    description:
      - The incident this rollback acts for, written in the rollback lock, so that a run that finds the lock held
        names the incident holding it (RV(rollback.held_by)).
      - When not given, the environment variable C(FIREBREAK_INCIDENT_ID) (the one the incident timeline reads).
    type: str
  claims_dir:
    description:
      - The local directory of the rollback lock's fast path (a file created only if absent), taken before the
        bucket's.
      - Defaults to the environment variable C(FIREBREAK_CLAIMS_DIR), else C(.claims) beside the incident
        directories (the parent of the directory of C(FIREBREAK_TIMELINE)), else C(incidents/.claims).
    type: path
  frame:
    description:
      - The incident frame's work before the rollback, done on the controller inside this task by the module's
        action plugin before the module runs, so that a scenario runs no task before its first mitigating call.
      - C(validate.argument_spec) checks the scenario's variables; C(refuse_var) names the variable holding why the
        run must stop (empty when it may go on); C(before) lists the declaration and the gate's decision, each an
        C(incident_lifecycle) or C(incident_note) entry with its C(task) name, C(role), C(args) and C(register);
        C(facts) are set for the tasks after it.
      - A failure stops the task before any AWS call. The timeline callback writes each C(before) entry as the
        record its own task would have written, at the time it ran, before this task's record (docs/frame.md).
      - C(validate.specs) reads the specs from files instead of the task's arguments, each C(file) (found as the
        file lookup finds it) or C(role) (a role of this collection), with C(entry) (default C(main)) and
        C(exclude) (option names left out).
      - With this option, where the task runs on the local connection with the controller's Python and sets no
        C(environment) or C(async), the rollback runs in the task's worker (the same code, argument spec and
        result, no module process); elsewhere the module runs as usual.
      - The module itself ignores this option.
    type: dict
    version_added: "0.1.0"
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.ECS_SERVICE
  - firebreak.runbooks.step.ECS_WAIT
  - firebreak.runbooks.step.ATTRIBUTES
  - firebreak.runbooks.step.DEADLINE
notes:
  - moto (the sandbox) never changes a service's C(deployments); stability is judged on the service's
    C(taskDefinition), C(runningCount) and C(desiredCount), and on the PRIMARY deployment's C(rolloutState).
  - The module returns target health but does not fail on unhealthy targets; assert on RV(target_health)
    (the C(firebreak.runbooks.ecs_rollback) role does).
  - Two runs rolling back the same service from the same revision at once (two responders, or two incidents, on one
    machine or on several) make one rollback; see O(claims_bucket) and C(docs/steps/ecs_rollback.md).
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

- name: Roll back and capture the before-state (service, target health, revisions) in the same call
  firebreak.runbooks.ecs_service_rollback:
    cluster: shop
    service: shop-api
    capture: true
    retry_budget: 120
  register: rollback

- name: Roll back only when the service is down and its newest deploy is the suspect (refuses a healthy service)
  firebreak.runbooks.ecs_service_rollback:
    cluster: shop
    service: shop-api
    capture: true
    require_symptom: true

- name: Roll back a healthy-looking service anyway, recording why
  firebreak.runbooks.ecs_service_rollback:
    cluster: shop
    service: shop-api
    require_symptom: true
    force: true
    force_reason: "customers report 500s on checkout since deploy 142; the ALB health check does not cover it"

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
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: mitigation}
containment: {description: Always empty here., returned: always, type: list, elements: dict, sample: []}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
rollback:
  description: The rollback recorded on the service (its C(firebreak:*) tags), if any.
  returned: always
  type: dict
  contains:
    state:
      description:
        - C(rolled-back) when the final record is on the service.
        - C(pending) when only the pending record is (the update was not confirmed).
        - C(unrecorded) when tagging failed (see warnings), C(none) when there is no record.
      returned: always
      type: str
      sample: rolled-back
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
      description: Whether the final record is on the service (false if tagging the service failed; see warnings).
      returned: always
      type: bool
      sample: true
    concurrent:
      description:
        - True when another run was rolling the service back from the same revision at once (it held the rollback
          lock, or had rolled the service back between this run's reads); this run changed nothing.
      returned: when another run was rolling back at once
      type: bool
      sample: true
    held_by:
      description:
        - Who holds the rollback lock, when another run held it (C(incident_id), C(operator), C(host), C(pid), C(at)
          since when, C(expires), C(from) and C(to)).
      returned: when another run held the rollback lock
      type: dict
      sample: {"incident_id": "INC-7", "operator": "alice", "host": "jump-1", "at": "2026-12-07T04:50:00Z"}
lock:
  description: The rollback lock, when the step was to roll back (not in check mode, nor when nothing needed to change).
  returned: when the step was to roll back
  type: dict
  contains:
    scope:
      description:
        - C(everywhere) (the lock object in O(claims_bucket)), C(host) (only the local lock, no bucket configured), or
          C(none) (no bucket and the local directory could not be written; see warnings).
      returned: always
      type: str
      sample: everywhere
    where:
      description: The lock's location (an C(s3://) URI or a file path).
      returned: always
      type: str
      sample: s3://evidence/firebreak/locks/ecs-rollback/arn%3Aaws%3Aecs%3A...%2Fshop-api/shop-api%3A4
    held:
      description:
        - Whether this run took the lock (it then rolled back, unless its second read found the service rolled back
          meanwhile); false when another run held it.
      returned: always
      type: bool
      sample: true
    took_over:
      description: The lock body of a run that died, taken over because it was stale.
      returned: when a stale lock was taken over
      type: dict
captured:
  description:
    - The evidence captured with O(capture=true). C(service) and C(target_health) were read before anything was
      changed (at C(at)); C(task_definitions) after the step.
  returned: when O(capture=true)
  type: dict
  contains:
    at:
      description: When the before-state was read (UTC, ISO 8601).
      returned: always
      type: str
      sample: "2025-01-31T14:03:07Z"
    service:
      description: The service summary, as M(firebreak.runbooks.ecs_service_status_info) returns it.
      returned: always
      type: dict
      sample: {"service_name": "shop-api", "task_definition_revision": "shop-api:3", "running_count": 2}
    target_health:
      description: Target health of every target group of the service, before the step.
      returned: always
      type: list
      elements: dict
      sample: [{"target_group_arn": "arn:aws:elasticloadbalancing:...", "healthy": 0, "unhealthy": 2}]
    task_definitions:
      description:
        - The most recent revisions of the family, newest first (as M(firebreak.runbooks.ecs_service_status_info)
          returns them).
      returned: always
      type: list
      elements: dict
      sample: [{"revision": 3, "status": "ACTIVE", "images": ["registry.local/shop-api:1.2.0"], "current": false}]
symptom:
  description:
    - The symptom check of O(require_symptom=true), from the service and target health read before any change.
    - Also returned when the step refuses (fails) because the symptom is not confirmed.
  returned: when O(require_symptom=true)
  type: dict
  contains:
    checked:
      description: Whether the check applied (only a rollback is checked, not a re-run that changes nothing).
      returned: always
      type: bool
      sample: true
    confirmed:
      description: The service is down or degraded and its newest deployment is the suspect.
      returned: always
      type: bool
      sample: true
    degraded:
      description: The service is down or degraded (any sign in RV(symptom.signs)).
      returned: always
      type: bool
      sample: true
    signs:
      description: What shows the service down or degraded.
      returned: always
      type: list
      elements: str
      sample: ["0 of 2 desired tasks running", "shop-api-tg/0123: 0 of 2 targets healthy, 2 unhealthy"]
    saw:
      description: What was read, in one line.
      returned: always
      type: str
      sample: "shop-api runs shop-api:4 with 0/2 tasks running, newest deployment ecs-svc/123 ..."
    suspect:
      description:
        - The newest deployment (C(deployment), C(task_definition), C(rollout_state), C(failed_tasks),
          C(created_at)), the revision rolled back from (C(revision)), whether the deployment runs it (C(matches))
          and shows the failure (C(failing)).
      returned: always
      type: dict
      sample: {"revision": "shop-api:4", "deployment": "ecs-svc/123", "matches": true, "failing": true}
    forced:
      description: The rollback went ahead with O(force=true) although the symptom was not confirmed.
      returned: always
      type: bool
      sample: false
    force_reason:
      description: O(force_reason), when forced.
      returned: when forced
      type: str
      sample: "customers report 500s on checkout"
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
  sample: "ECS service 'shop-api' in cluster 'shop' (rollback from shop-api:3 to shop-api:2)"
attempts:
  description: How many attempts the failed call made.
  returned: on an AWS error
  type: int
  sample: 9
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
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws.ecs import (
    SERVICE_OPTIONS,
    TAG_PENDING,
    WAIT_OPTIONS,
    AnsibleECSError,
    ECSInputError,
    ECSSymptomAbsent,
    capture_before,
    decide_rollback,
    decide_symptom,
    describe_service,
    describe_task_definition,
    lazy_client,
    list_revisions,
    marker_tags,
    normalize_task_definition,
    parse_task_definition,
    pending_tags,
    read_marker,
    read_pending,
    recent_revisions,
    service_resource,
    split_loose,
    state_of,
    tag_service,
    target_health,
    untag_service,
    update_service,
    utc_now,
    validate_target,
    wait_for_stable,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.containment import ledger, lock
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    DEADLINE_OPTION,
    INCIDENT_OPTION,
    RETRY_BUDGET_OPTION,
    Caller,
    StepAWSError,
    aws_client,
    run_aws_step,
)

ARGUMENT_SPEC = dict(
    **SERVICE_OPTIONS,
    task_definition=dict(type="str"),
    rollback_from=dict(type="str"),
    allow_other_family=dict(type="bool", default=False),
    force_new_deployment=dict(type="bool", default=False),
    wait=dict(type="bool", default=True),
    **WAIT_OPTIONS,
    capture_revisions=dict(type="int", default=5),
    require_symptom=dict(type="bool", default=False),
    force=dict(type="bool", default=False),
    force_reason=dict(type="str"),
    **ledger.CLAIMS_OPTIONS,
    **INCIDENT_OPTION,
    frame=dict(type="dict"),  # taken out by the action plugin (the frame's controller-side work); never used here
    **RETRY_BUDGET_OPTION,
    **DEADLINE_OPTION,
)


def current_revision(client, service: dict, caller) -> tuple[str, int]:
    """``(family, revision)`` the service runs (moto may store a bare family: resolve it)."""
    family, revision = split_loose(service.get("taskDefinition"))
    if revision is None:
        described = describe_task_definition(client, family, caller=caller)
        if not described:
            reported = service.get("taskDefinition")
            raise ECSInputError(message=f"the service's task definition {reported!r} does not exist")
        revision = int(described["revision"])
    return family, revision


def validate_params(params: dict) -> None:
    """Everything that can be checked without AWS, before any call."""
    for option in ("cluster", "service"):
        if option in params and not (params[option] or "").strip():
            raise ECSInputError(message=f"{option} must name the ECS {option}, got {params[option]!r}")
    for option in ("wait_timeout", "retry_budget", "mitigation_deadline", "capture_revisions"):
        if params[option] is not None and params[option] < 0:
            raise ECSInputError(message=f"{option} must be >= 0, got {params[option]}")
    if params["force"] and not (params["force_reason"] or "").strip():
        raise ECSInputError(message="force=true needs a force_reason: say why the rollback goes ahead anyway")
    # Syntax first. A bare revision number needs the service's family: checked once the service is read.
    for option in ("task_definition", "rollback_from"):
        value = params[option]
        if value is not None and not value.strip().isdigit():
            try:
                parse_task_definition(value)
            except ValueError as e:
                raise ECSInputError(message=f"{option}: {e}") from None


def record(module, ecs, caller, service_arn: str, tags: dict, untag=(), what="the rollback") -> bool:
    """Tag (and untag) the service; a failure is a warning (the service change matters more than its record)."""
    try:
        tag_service(ecs, service_arn, tags, caller=caller)
        if untag:
            untag_service(ecs, service_arn, untag, caller=caller)
        return True
    except StepAWSError as e:
        module.warn(f"could not record {what} on the service ({e})")
        return False


ROLLBACK_LOCK_TTL = 600  # seconds: a lock older than this was left by a run that died


class RollbackLock:
    """One rollback of a service from one revision at a time, across machines: a file created only if absent in the
    local claim directory (``ledger.default_dir()``, the fast path that orders the runs of one machine without a
    call), then, with a bucket, an S3 object created with a conditional write (``containment/lock.py``). Released
    once the rollback is recorded on the service; one left by a run that died is taken over after ``ttl`` seconds
    (at once on the machine that wrote it when its process is gone)."""

    def __init__(self, service_arn: str, current: str, root: str | None = None, ttl: float = ROLLBACK_LOCK_TTL,
                 s3: tuple | None = None):  # fmt: skip
        key = ledger.Ledger.key(service_arn, f"rollback-from:{current}", "lock", "rollback")
        self.ttl = ttl
        self.local = lock.LocalLock(root or ledger.default_dir(), key, ttl)
        self.remote = None
        if s3 is not None:
            caller, client, bucket = s3
            self.remote = lock.S3Lock(caller, client, bucket, lock.lock_key("ecs-rollback", service_arn, current))

    def take(self, **fields) -> lock.Taken:
        """Take the local lock, then the bucket's. ``fields`` go into the lock body (what, for which incident)."""
        body = lock.lock_body(self.ttl, **fields)
        try:
            local = self.local.take(body)
        except ledger.LedgerError:
            if self.remote is None:
                raise
            local = None  # the directory cannot be written: the bucket's lock alone orders the runs
        if local is not None and (not local.held or self.remote is None):
            return local
        try:
            remote = self.remote.take(body)
        except ledger.LedgerError:
            self.local.release()
            raise
        if not remote.held:
            self.local.release()
        return remote

    def release(self) -> None:
        """Release both locks (the bucket's only if still ours). Raises ``LedgerError`` when the bucket cannot be
        written (the local lock is released all the same)."""
        self.local.release()
        if self.remote is not None:
            self.remote.release()


def check_symptom(params: dict, result: dict, observed: dict, current: str, checked: bool) -> None:
    """Record the symptom check in ``result["symptom"]``; refuse (raise) a rollback whose symptom is absent unless
    forced. Runs before any call that changes something."""
    symptom = decide_symptom(observed["service"], observed["target_health"], current)
    symptom.update(checked=checked, forced=False)
    result["symptom"] = symptom
    if not checked or symptom["confirmed"]:
        return
    if params["force"]:
        symptom.update(forced=True, force_reason=params["force_reason"].strip())
        return
    what = (
        "is not down or degraded" if not symptom["degraded"] else "is degraded but its newest deploy is not the suspect"
    )
    raise ECSSymptomAbsent(
        message=(
            f"symptom not confirmed: the service {what} ({symptom['saw']}); nothing was changed. "
            "Roll back anyway with force=true and a force_reason"
        ),
        **dict(result, changed=False),
    )


def run(module: AnsibleAWSModule, result: dict | None = None) -> dict:
    """The whole step. ``result`` is filled in as the step goes, so a failure can report what was done."""
    result = {} if result is None else result
    params = module.params
    cluster, service_name = params["cluster"], params["service"]
    validate_params(params)

    caller = Caller(params["retry_budget"], deadline=params["mitigation_deadline"])
    ecs = aws_client(module, "ecs")
    elbv2 = lazy_client(module, "elbv2")  # only a service with target groups needs it
    service = describe_service(ecs, cluster, service_name, caller=caller)
    family, revision = current_revision(ecs, service, caller)
    current = f"{family}:{revision}"
    before = state_of(service)
    before["task_definition"] = current
    identity = {"arn": service["serviceArn"], "name": service["serviceName"], "cluster": service.get("clusterArn")}
    marker = read_marker(service.get("tags"))
    pending = read_pending(service.get("tags"))
    result.update(changed=False, service=identity, before=before)
    observed = None
    if params["capture"] or params["require_symptom"]:
        # Evidence that cannot be read afterwards: the service and its targets before anything changes.
        observed = capture_before(ecs, elbv2, service, caller=caller)
        if params["capture"]:
            result["captured"] = observed

    target_arns: dict[str, str] = {}
    target = None
    if params["task_definition"] is not None:
        try:
            requested = normalize_task_definition(params["task_definition"], family)
        except ValueError as e:
            raise ECSInputError(message=f"task_definition: {e}") from None
        described = describe_task_definition(ecs, requested, caller=caller)
        target = validate_target(params["task_definition"], described, family, params["allow_other_family"])
        target_arns[target] = described["taskDefinitionArn"]
    rollback_from = None
    if params["rollback_from"] is not None:
        try:
            rollback_from = normalize_task_definition(params["rollback_from"], family)
        except ValueError as e:
            raise ECSInputError(message=f"rollback_from: {e}") from None

    def active_revisions():
        revisions = list_revisions(ecs, family, "ACTIVE", caller=caller)
        target_arns.update({f"{family}:{r}": arn for r, arn in revisions.items()})
        return list(revisions)

    decision = decide_rollback(
        current,
        target=target,
        rollback_from=rollback_from,
        marker=marker,
        active_revisions=active_revisions,
        pending=pending,
    )
    target = decision["target"]
    if decision["action"] == "resume":
        # The pending target was checked when the rollback started; it must still be deployable.
        described = describe_task_definition(ecs, target, caller=caller)
        validate_target(target, described, family, allow_other_family=True)
        target_arns[target] = described["taskDefinitionArn"]
    target_arn = target_arns.get(target) or (service["taskDefinition"] if target == current else None)
    if target_arn is None or ":task-definition/" not in target_arn:
        described = describe_task_definition(ecs, target, caller=caller)
        target_arn = described["taskDefinitionArn"] if described else target

    if pending:  # the newest record: a rollback started after any recorded one
        recorded = dict(pending, recorded=False, state="pending")
    else:
        recorded = dict(marker or {}, recorded=bool(marker), state="rolled-back" if marker else "none")
    result.update(changed=decision["changed"], target_task_definition=target_arn, rollback=recorded)
    if module._diff:
        result["diff"] = {"before": {"task_definition": current}, "after": {"task_definition": target}}

    if params["require_symptom"]:
        check_symptom(params, result, observed, current, checked=decision["action"] == "rollback")

    if module.check_mode or decision["action"] == "none":
        caller.end_deadline()
    if module.check_mode:
        result["after"] = dict(before, task_definition=target)
        result["target_health"] = (
            result["captured"]["target_health"] if "captured" in result else target_health(elbv2, service, caller)
        )
        if params["capture"]:
            result["captured"]["task_definitions"] = recent_revisions(
                ecs, family, params["capture_revisions"], current, caller=caller
            )
        if decision["changed"]:
            verb = "would record" if decision["action"] == "reconcile" else "would roll back"
            result["msg"] = f"check mode: {verb} {identity['name']} {decision['reason']}"
        else:
            result["msg"] = f"check mode: no change to {identity['name']}: {decision['reason']}"
        result["msg"] += symptom_note(result)
        return result

    rollback_lock = None
    if decision["action"] in ("rollback", "resume"):
        # Another run rolling back the same service from the same revision at once (another responder, another
        # incident, on this machine or another) would update it twice: the first to take the lock rolls back, after
        # reading the service again (the other may have finished meanwhile).
        rollback_lock, taken = take_lock(module, params, caller, service["serviceArn"], current, target)
        again = describe_service(ecs, cluster, service_name, caller=caller) if taken.held else None
        again_current = current_revision(ecs, again, caller) if again else None
        if (
            not taken.held
            or f"{again_current[0]}:{again_current[1]}" != current
            or read_marker(again.get("tags")) != marker
        ):
            release_lock(module, rollback_lock)
            rollback_lock = None
            if not taken.held:
                reason = (
                    f"the rollback of {identity['name']} from {current} is already being done by "
                    f"{lock.describe_holder(taken.holder)} (lock {taken.where}); nothing changed by this run"
                )
            else:
                reason = f"the service no longer runs {current} as read before (another run rolled it back meanwhile)"
            decision = {"changed": False, "target": target, "action": "none", "reason": reason}
            concurrent = dict(result["rollback"], concurrent=True)
            if taken.holder is not None:
                concurrent["held_by"] = {k: taken.holder.get(k) for k in HOLDER_FIELDS if k in taken.holder}
            result.update(changed=False, rollback=concurrent)
            caller.end_deadline()
        result["lock"] = taken.summary()
        result["lock"].pop("holder", None)
        if taken.took_over is not None:
            module.warn(f"took over a stale rollback lock left by {lock.describe_holder(taken.took_over)}")
    try:
        return _act(module, params, result, decision, ecs, elbv2, caller, service, cluster, service_name, current,
                    target, target_arn, pending, family, identity,
                    on_recorded=lambda: release_lock(module, rollback_lock))  # fmt: skip
    finally:
        release_lock(module, rollback_lock)


HOLDER_FIELDS = ("incident_id", "operator", "host", "pid", "at", "expires", "from", "to")


def take_lock(module, params, caller, service_arn, current, target):
    """The rollback lock and what taking it answered. Without O(claims_bucket) only the local lock is taken (it holds
    on this machine only); a local directory that cannot be written is then a warning and the rollback goes ahead
    (``lock.scope: none``), as before there was a bucket. With O(claims_bucket), a bucket that cannot be read or
    written fails the step before anything is changed (as a containment claim does), naming the call."""
    s3 = None
    if params.get("claims_bucket"):
        s3 = (caller, aws_client(module, "s3"), params["claims_bucket"])
    rollback_lock = RollbackLock(service_arn, current, root=params.get("claims_dir"), s3=s3)
    fields = {"step": "ecs_service_rollback", "service": service_arn, "from": current, "to": target}
    fields["incident_id"] = params.get("incident_id")
    try:
        return rollback_lock, rollback_lock.take(**fields)
    except ledger.LedgerError as e:
        if s3 is not None:
            e.note = (
                f"nothing was changed: the service still runs {current}. Re-run when the bucket answers (or without "
                "claims_bucket, to roll back under this machine's lock only)"
            )
            raise
        module.warn(f"rolling back without the rollback lock ({e}): a concurrent run could roll back too")
        return None, lock.Taken(True, None, "none")


def release_lock(module, rollback_lock) -> None:
    """Release the lock (a second call does nothing); a bucket that cannot be written is a warning (the lock then
    expires on its own)."""
    if rollback_lock is None:
        return
    try:
        rollback_lock.release()
    except ledger.LedgerError as e:
        module.warn(f"could not release the rollback lock ({e}); it expires on its own")


def _act(module, params, result, decision, ecs, elbv2, caller, service, cluster, service_name, current, target,
         target_arn, pending, family, identity, on_recorded=None):  # fmt: skip
    """Roll back (or resume, or record), wait, read back: the part of the step that changes the service.
    ``on_recorded`` is called once the final record is on the service (which alone stops a second rollback)."""
    if decision["action"] in ("rollback", "resume"):
        started = pending["at"] if decision["action"] == "resume" and pending.get("at") else utc_now()
        rollback = {"from": current, "to": target, "at": started}
        # 1. the pending record: claims only that a rollback was started
        pending_recorded = record(
            module,
            ecs,
            caller,
            service["serviceArn"],
            pending_tags(current, target, started),
            what="the pending rollback",
        )
        result["rollback"] = dict(rollback, recorded=False, state="pending" if pending_recorded else "unrecorded")
        result["changed"] = pending_recorded
        # 2. the update (the mitigation)
        what = f"{service_resource(cluster, service_name)} (rollback from {current} to {target})"
        try:
            service = update_service(
                ecs, cluster, service_name, target_arn, params["force_new_deployment"], caller=caller, resource=what
            )
        except StepAWSError as e:
            note = (
                "the rollback is recorded as pending on the service (tag firebreak:rollback-pending): a re-run "
                "completes it, or only records it if this update did reach ECS"
                if pending_recorded
                else "no record of it is on the service"
            )
            e.note = f"the service ran {current} before this step and the update was not confirmed; {note}"
            raise
        result["changed"] = True
        caller.end_deadline()
        # 3. the final record replaces the pending one
        recorded = record(
            module,
            ecs,
            caller,
            service["serviceArn"],
            marker_tags(current, target, started),
            untag=[TAG_PENDING],
            what="the rollback",
        )
        if recorded and on_recorded is not None:
            on_recorded()  # the record stops any later run: the lock is no longer needed while this run waits
        if not recorded:
            module.warn(
                "the rollback happened but is not recorded on the service: a re-run without task_definition or "
                "rollback_from would roll back further"
                + (" (the pending record completes it)" if pending_recorded else "")
            )
        result["rollback"] = dict(
            rollback, recorded=recorded, state="rolled-back" if recorded else result["rollback"]["state"]
        )
    elif decision["action"] == "reconcile":
        caller.end_deadline()
        rollback = {"from": pending["from"], "to": current, "at": pending.get("at") or utc_now()}
        recorded = record(
            module,
            ecs,
            caller,
            service["serviceArn"],
            marker_tags(rollback["from"], rollback["to"], rollback["at"]),
            untag=[TAG_PENDING],
        )
        result["changed"] = recorded
        result["rollback"] = dict(rollback, recorded=recorded, state="rolled-back" if recorded else "pending")

    outcome = decision["reason"]
    if params["wait"]:
        try:
            service = wait_for_stable(ecs, cluster, service_name, target, params["wait_timeout"], caller=caller)
        except AnsibleECSError as e:
            # The update (if any) was made: report it with the failure so the record shows it.
            e.kwargs.update(result, after=state_of(service), changed=result["changed"])
            raise
        outcome += "; stable"
    elif decision["action"] in ("rollback", "resume"):
        service = describe_service(ecs, cluster, service_name, caller=caller)
        outcome += "; not waiting for stability"
    result["after"] = state_of(service)
    result["target_health"] = target_health(elbv2, service, caller=caller)
    if params["capture"]:
        # The revision list does not change with a rollback: read after the mitigation, not before it.
        result["captured"]["task_definitions"] = recent_revisions(
            ecs, family, params["capture_revisions"], current, caller=caller
        )
    if decision["action"] == "reconcile":
        result["msg"] = f"no new rollback of {identity['name']}: {outcome}"
    elif decision["changed"]:
        result["msg"] = f"rolled back {identity['name']} {outcome}"
    else:
        result["msg"] = f"no change to {identity['name']}: {outcome}"
    result["msg"] += symptom_note(result)
    return result


def symptom_note(result: dict) -> str:
    """What the message adds about the symptom check."""
    symptom = result.get("symptom") or {}
    if symptom.get("forced"):
        return f" (forced without a confirmed symptom: {symptom['force_reason']})"
    if symptom.get("checked") and symptom.get("confirmed"):
        return "; symptom confirmed: " + ", ".join(symptom["signs"])
    return ""


STEP_KIND = "mitigation"


def main():
    run_aws_step(run, STEP_KIND, ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
