# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""ECS service rollback: the API layer and the decision logic.

Two halves:

* API layer: small functions, one AWS call (or one paginated listing) each, wrapped in
  ``AWSRetry.jittered_backoff`` (the one retry idiom of this file; ECS throttles with
  ``ThrottlingException``) and in an error handler that raises ``AnsibleECSError``. Missing clusters,
  services and task definitions become ``ECSInputError`` with a message naming the value.
* Decision logic: pure functions (no AWS) that parse and normalise task definition references, pick
  the rollback target, read the rollback marker, judge stability and summarise target health. Unit
  tests exercise them without AWS.

moto differences handled here (see the shared notes on moto fidelity): ``update_service`` stores the
task definition as passed (``shop-api:2``, not an ARN) so every comparison normalises both sides to
``family:revision``; ``deployments`` never change, so stability does not wait for a new deployment;
``list_task_definitions`` ignores ``sort`` and ``maxResults``, so revisions are sorted here.
"""

from __future__ import annotations

import re
import time

from ansible_collections.amazon.aws.plugins.module_utils.errors import AWSErrorHandler
from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


class AnsibleECSError(AnsibleAWSError):
    """An ECS or ELBv2 call failed."""


class ECSInputError(AnsibleECSError):
    """The request names something that does not exist or may not be used; nothing was changed."""


class ECSWaitTimeout(AnsibleECSError):
    """The service did not become stable within the timeout."""


class ECSDeploymentFailed(AnsibleECSError):
    """ECS reports the deployment FAILED (deployment circuit breaker)."""


class ECSErrorHandler(AWSErrorHandler):
    _CUSTOM_EXCEPTION = AnsibleECSError


def error_code(err: AnsibleAWSError) -> str | None:
    """The AWS error code behind an ``AnsibleAWSError`` (None when it did not come from a response)."""
    exc = getattr(err, "exception", None)
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code")


# --------------------------------------------------------------------------------------------------
# Retries: one idiom, a jittered backoff around each call. botocore retries a few times itself;
# this outlasts longer throttling storms (an incident is exactly when APIs get throttled).
# --------------------------------------------------------------------------------------------------

RETRY_CODES = [
    "ThrottlingException",
    "ServerException",  # ECS 5xx
    "ServiceUnavailableException",
    "RequestLimitExceeded",
    "Throttling",  # ELBv2
]
aws_retry = AWSRetry.jittered_backoff(
    retries=8, delay=1, backoff=2.0, max_delay=15, catch_extra_error_codes=RETRY_CODES
)

# Tags that record a rollback on the service, so that a re-run does not roll back a second time.
TAG_FROM = "firebreak:rolled-back-from"
TAG_TO = "firebreak:rolled-back-to"
TAG_AT = "firebreak:rolled-back-at"

POLL_DELAY = 5.0  # seconds between DescribeServices calls while waiting

# --------------------------------------------------------------------------------------------------
# Task definition references
# --------------------------------------------------------------------------------------------------

_FAMILY = r"[A-Za-z0-9_-]{1,255}"
TASK_DEFINITION_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition/(?P<family>" + _FAMILY + r"):(?P<revision>[1-9][0-9]*)$"
)
FAMILY_REVISION_RE = re.compile(r"^(?P<family>" + _FAMILY + r"):(?P<revision>[1-9][0-9]*)$")
REVISION_RE = re.compile(r"^[1-9][0-9]*$")
# What a service may report (moto stores what was passed, which may be a bare family).
LOOSE_RE = re.compile(
    r"^(?:arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition/)?(?P<family>"
    + _FAMILY
    + r")(?::(?P<revision>[1-9][0-9]*))?$"
)


def parse_task_definition(ref, default_family: str | None = None) -> tuple[str, int]:
    """Return ``(family, revision)`` for a task definition ARN, ``family:revision`` or (with
    ``default_family``) a bare revision number. Raise ``ValueError`` naming ``ref`` otherwise."""
    text = str(ref).strip() if ref is not None else ""
    for regex in (TASK_DEFINITION_ARN_RE, FAMILY_REVISION_RE):
        match = regex.match(text)
        if match:
            return match.group("family"), int(match.group("revision"))
    if default_family and REVISION_RE.match(text):
        return default_family, int(text)
    expected = "a task definition ARN or family:revision"
    if default_family:
        expected += " or a revision number"
    raise ValueError(f"malformed task definition {ref!r}: expected {expected} (for example shop-api:2)")


def normalize_task_definition(ref, default_family: str | None = None) -> str:
    """``family:revision`` for any accepted reference (ARN, ``family:revision``, revision number)."""
    family, revision = parse_task_definition(ref, default_family)
    return f"{family}:{revision}"


def split_loose(ref: str) -> tuple[str, int | None]:
    """``(family, revision or None)`` for what a service reports as its task definition."""
    match = LOOSE_RE.match(str(ref or ""))
    if not match:
        raise ValueError(f"unrecognised task definition {ref!r} on the service")
    revision = match.group("revision")
    return match.group("family"), int(revision) if revision else None


def family_revisions(arns, family: str) -> dict[int, str]:
    """``{revision: arn}`` for the ARNs of exactly ``family`` (ListTaskDefinitions' familyPrefix is a
    prefix: ``shop-api`` also lists ``shop-api-worker``)."""
    found = {}
    for arn in arns:
        match = TASK_DEFINITION_ARN_RE.match(arn)
        if match and match.group("family") == family:
            found[int(match.group("revision"))] = arn
    return dict(sorted(found.items()))


# --------------------------------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------------------------------


def previous_revision(current_revision: int, active_revisions) -> int | None:
    """The highest ACTIVE revision lower than ``current_revision`` (gaps and INACTIVE ones skipped)."""
    lower = [int(r) for r in active_revisions if int(r) < int(current_revision)]
    return max(lower) if lower else None


def validate_target(requested: str, described: dict | None, service_family: str, allow_other_family: bool) -> str:
    """Check an explicitly requested target against DescribeTaskDefinition's answer (None: not found).

    Returns ``family:revision``; raises ``ECSInputError`` naming ``requested``."""
    if not described:
        raise ECSInputError(message=f"task definition {requested!r} does not exist")
    family, revision = described["family"], int(described["revision"])
    status = described.get("status", "ACTIVE")
    if status != "ACTIVE":
        name = repr(requested) if requested == f"{family}:{revision}" else f"{requested!r} ({family}:{revision})"
        raise ECSInputError(message=f"task definition {name} is {status}; only an ACTIVE revision can be deployed")
    if family != service_family and not allow_other_family:
        raise ECSInputError(
            message=(
                f"task definition {requested!r} is of family {family!r}, but the service runs family "
                f"{service_family!r}; set allow_other_family=true if that is intended"
            )
        )
    return f"{family}:{revision}"


def read_marker(tags) -> dict | None:
    """The rollback marker from a service's tags (ECS ``[{key, value}]`` or a dict), or None."""
    if isinstance(tags, list):
        tags = {t.get("key"): t.get("value") for t in tags}
    tags = tags or {}
    if not tags.get(TAG_TO):
        return None
    return {"from": tags.get(TAG_FROM), "to": tags.get(TAG_TO), "at": tags.get(TAG_AT)}


def marker_tags(rollback_from: str, rollback_to: str, at: str) -> dict:
    return {TAG_FROM: rollback_from, TAG_TO: rollback_to, TAG_AT: at}


def decide_rollback(
    current: str,
    *,
    target: str | None = None,
    rollback_from: str | None = None,
    marker: dict | None = None,
    active_revisions=None,
) -> dict:
    """Decide what the rollback step does. All references are ``family:revision``.

    ``active_revisions`` (revision numbers of the service's family that are ACTIVE, or a callable returning
    them) is only consulted when no explicit ``target`` is given and nothing else decides first.

    Returns ``{"changed": bool, "target": "family:revision", "reason": str}``; raises ``ECSInputError``
    when there is nothing to roll back to.
    """
    family, current_revision = parse_task_definition(current)
    if target is not None and target == current:
        return {"changed": False, "target": current, "reason": f"the service already runs {current}"}
    if rollback_from is not None and rollback_from != current:
        return {
            "changed": False,
            "target": current,
            "reason": (
                f"the service runs {current}, not {rollback_from} (rollback_from): nothing to roll back; "
                "it was already rolled back or redeployed"
            ),
        }
    if target is not None:
        return {"changed": True, "target": target, "reason": f"from {current} to {target} (requested)"}
    if rollback_from is None and marker and marker.get("to") == current:
        when = f" at {marker['at']}" if marker.get("at") else ""
        return {
            "changed": False,
            "target": current,
            "reason": (
                f"the service was already rolled back from {marker.get('from')} to {current}{when} and still runs it; "
                "not rolling back again (give task_definition or rollback_from to go further back)"
            ),
        }
    revisions = active_revisions() if callable(active_revisions) else active_revisions
    chosen = previous_revision(current_revision, revisions or [])
    if chosen is None:
        raise ECSInputError(
            message=f"no ACTIVE revision of family {family!r} lower than {current_revision} to roll back to"
        )
    target = f"{family}:{chosen}"
    return {"changed": True, "target": target, "reason": f"from {current} to {target} (previous ACTIVE revision)"}


def primary_deployment(service: dict) -> dict | None:
    for deployment in service.get("deployments") or []:
        if deployment.get("status") == "PRIMARY":
            return deployment
    return None


def stability(service: dict, target: str) -> tuple[str, str]:
    """``("stable" | "waiting" | "failed", why)`` for a service that should run ``target`` (family:revision).

    Stable: the service's taskDefinition is the target, runningCount == desiredCount, and either one
    deployment (PRIMARY) is left or the PRIMARY deployment's rolloutState is COMPLETED.
    """
    try:
        current = normalize_task_definition(service.get("taskDefinition"))
    except ValueError:
        current = str(service.get("taskDefinition"))
    if current != target:
        return "waiting", f"taskDefinition is {current}, not yet {target}"
    primary = primary_deployment(service)
    if primary and primary.get("rolloutState") == "FAILED":
        return (
            "failed",
            f"deployment {primary.get('id')} FAILED: {primary.get('rolloutStateReason', 'no reason given')}",
        )
    running, desired = service.get("runningCount", 0), service.get("desiredCount", 0)
    if running != desired:
        return "waiting", f"runningCount {running} != desiredCount {desired}"
    deployments = service.get("deployments") or []
    if len(deployments) == 1 and primary is not None:
        return "stable", "one PRIMARY deployment, all tasks running"
    if primary is not None and primary.get("rolloutState") == "COMPLETED":
        return "stable", "PRIMARY deployment COMPLETED"
    states = ", ".join(f"{d.get('status')}/{d.get('rolloutState', '-')}" for d in deployments) or "none"
    return "waiting", f"deployments not settled ({states})"


def state_of(service: dict) -> dict:
    """The before/after record of a service: what a rollback changes and what shows it worked."""
    try:
        task_definition = normalize_task_definition(service.get("taskDefinition"))
    except ValueError:
        task_definition = service.get("taskDefinition")
    return {
        "task_definition": task_definition,
        "desired_count": service.get("desiredCount"),
        "running_count": service.get("runningCount"),
    }


def summarize_target_health(target_group_arn: str, descriptions) -> dict:
    """``{target_group_arn, healthy, unhealthy, total, states, targets}`` from DescribeTargetHealth."""
    states: dict[str, int] = {}
    targets = []
    for desc in descriptions or []:
        health = desc.get("TargetHealth") or {}
        state = health.get("State", "unknown")
        states[state] = states.get(state, 0) + 1
        target = desc.get("Target") or {}
        targets.append(
            {
                "id": target.get("Id"),
                "port": target.get("Port"),
                "state": state,
                "reason": health.get("Reason"),
                "description": health.get("Description"),
            }
        )
    unhealthy = sum(n for s, n in states.items() if s in ("unhealthy", "unhealthy.draining", "unavailable"))
    return {
        "target_group_arn": target_group_arn,
        "healthy": states.get("healthy", 0),
        "unhealthy": unhealthy,
        "total": len(targets),
        "states": states,
        "targets": targets,
    }


def target_group_arns(service: dict) -> list[str]:
    """The ALB/NLB target groups of a service, in order, without duplicates."""
    seen = []
    for lb in service.get("loadBalancers") or []:
        arn = lb.get("targetGroupArn")
        if arn and arn not in seen:
            seen.append(arn)
    return seen


def _iso(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def service_summary(service: dict, events: int = 10) -> dict:
    """A snake_case triage summary of a DescribeServices entry."""
    primary = primary_deployment(service) or {}
    try:
        normalized = normalize_task_definition(service.get("taskDefinition"))
    except ValueError:
        normalized = service.get("taskDefinition")
    return {
        "service_name": service.get("serviceName"),
        "service_arn": service.get("serviceArn"),
        "cluster_arn": service.get("clusterArn"),
        "status": service.get("status"),
        "launch_type": service.get("launchType"),
        "desired_count": service.get("desiredCount"),
        "running_count": service.get("runningCount"),
        "pending_count": service.get("pendingCount"),
        "task_definition": service.get("taskDefinition"),
        "task_definition_revision": normalized,
        "rollout_state": primary.get("rolloutState"),
        "rollout_state_reason": primary.get("rolloutStateReason"),
        "deployments": [
            {
                "id": d.get("id"),
                "status": d.get("status"),
                "task_definition": d.get("taskDefinition"),
                "desired_count": d.get("desiredCount"),
                "running_count": d.get("runningCount"),
                "pending_count": d.get("pendingCount"),
                "failed_tasks": d.get("failedTasks"),
                "rollout_state": d.get("rolloutState"),
                "created_at": _iso(d.get("createdAt")),
                "updated_at": _iso(d.get("updatedAt")),
            }
            for d in service.get("deployments") or []
        ],
        "events": [
            {"id": e.get("id"), "created_at": _iso(e.get("createdAt")), "message": e.get("message")}
            for e in (service.get("events") or [])[: max(int(events), 0)]
        ],
        "load_balancers": [
            {
                "target_group_arn": lb.get("targetGroupArn"),
                "container_name": lb.get("containerName"),
                "container_port": lb.get("containerPort"),
            }
            for lb in service.get("loadBalancers") or []
        ],
        "rollback_marker": read_marker(service.get("tags")),
    }


def revision_summary(task_definition: dict) -> dict:
    """``{arn, family, revision, status, images, registered_at}`` of a task definition."""
    return {
        "arn": task_definition.get("taskDefinitionArn"),
        "family": task_definition.get("family"),
        "revision": task_definition.get("revision"),
        "status": task_definition.get("status"),
        "images": [c.get("image") for c in task_definition.get("containerDefinitions") or []],
        "registered_at": _iso(task_definition.get("registeredAt")),
    }


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --------------------------------------------------------------------------------------------------
# API layer
# --------------------------------------------------------------------------------------------------


@ECSErrorHandler.common_error_handler("describe the ECS service")
@aws_retry
def _describe_services(client, cluster: str, service: str) -> dict:
    return client.describe_services(cluster=cluster, services=[service], include=["TAGS"])


def describe_service(client, cluster: str, service: str) -> dict:
    """The service (with tags). ``ECSInputError`` when the cluster or service does not exist or is not ACTIVE."""
    try:
        response = _describe_services(client, cluster, service)
    except AnsibleECSError as e:
        if error_code(e) == "ClusterNotFoundException":
            raise ECSInputError(message=f"ECS cluster {cluster!r} not found") from e
        raise
    services = response.get("services") or []
    if not services:
        reasons = ", ".join(f.get("reason", "?") for f in response.get("failures") or []) or "not found"
        raise ECSInputError(message=f"ECS service {service!r} not found in cluster {cluster!r} ({reasons})")
    found = services[0]
    if found.get("status") != "ACTIVE":
        raise ECSInputError(
            message=f"ECS service {service!r} in cluster {cluster!r} is {found.get('status')}, not ACTIVE"
        )
    return found


@ECSErrorHandler.common_error_handler("describe the task definition")
@aws_retry
def _describe_task_definition(client, task_definition: str) -> dict:
    return client.describe_task_definition(taskDefinition=task_definition)


def describe_task_definition(client, task_definition: str) -> dict | None:
    """The task definition, or None when it does not exist (ECS answers ClientException)."""
    try:
        return _describe_task_definition(client, task_definition)["taskDefinition"]
    except AnsibleECSError as e:
        if error_code(e) in ("ClientException", "TaskDefinitionNotFoundException"):
            return None
        raise


@ECSErrorHandler.common_error_handler("list task definitions")
@aws_retry
def _list_task_definitions_page(client, family: str, status: str, token: str | None) -> dict:
    params = {"familyPrefix": family, "status": status, "sort": "DESC"}
    if token:
        params["nextToken"] = token
    return client.list_task_definitions(**params)


def list_revisions(client, family: str, status: str = "ACTIVE") -> dict[int, str]:
    """``{revision: arn}`` of ``family`` with ``status``, ascending (sorted here: moto ignores ``sort``)."""
    arns, token = [], None
    while True:
        page = _list_task_definitions_page(client, family, status, token)
        arns.extend(page.get("taskDefinitionArns") or [])
        token = page.get("nextToken")
        if not token:
            return family_revisions(arns, family)


@ECSErrorHandler.common_error_handler("update the ECS service")
@aws_retry
def update_service(
    client, cluster: str, service: str, task_definition: str, force_new_deployment: bool = False
) -> dict:
    return client.update_service(
        cluster=cluster, service=service, taskDefinition=task_definition, forceNewDeployment=force_new_deployment
    )["service"]


@ECSErrorHandler.common_error_handler("tag the ECS service")
@aws_retry
def tag_service(client, service_arn: str, tags: dict) -> None:
    client.tag_resource(resourceArn=service_arn, tags=[{"key": k, "value": v} for k, v in tags.items()])


@ECSErrorHandler.common_error_handler("describe target health")
@aws_retry
def _describe_target_health(client, target_group_arn: str) -> list:
    return client.describe_target_health(TargetGroupArn=target_group_arn).get("TargetHealthDescriptions") or []


def target_health(elbv2_client, service: dict) -> list[dict]:
    """Target health summaries for every target group of the service."""
    return [
        summarize_target_health(arn, _describe_target_health(elbv2_client, arn)) for arn in target_group_arns(service)
    ]


def wait_for_stable(
    client,
    cluster: str,
    service: str,
    target: str,
    timeout: float,
    delay: float = POLL_DELAY,
    sleep=time.sleep,
    clock=time.monotonic,
) -> dict:
    """Poll DescribeServices until ``stability`` says stable; return the service.

    Raises ``ECSDeploymentFailed`` when the PRIMARY deployment FAILED and ``ECSWaitTimeout`` (with the
    current state in the message) when ``timeout`` seconds pass."""
    deadline = clock() + max(float(timeout), 0.0)
    while True:
        current = describe_service(client, cluster, service)
        verdict, why = stability(current, target)
        if verdict == "stable":
            return current
        if verdict == "failed":
            raise ECSDeploymentFailed(message=f"ECS service {service!r} did not roll back to {target}: {why}")
        remaining = deadline - clock()
        if remaining <= 0:
            state = state_of(current)
            raise ECSWaitTimeout(
                message=(
                    f"timed out after {timeout}s waiting for ECS service {service!r} to be stable on {target}: {why} "
                    f"(taskDefinition={state['task_definition']}, running={state['running_count']}, "
                    f"desired={state['desired_count']}, deployments={len(current.get('deployments') or [])})"
                )
            )
        sleep(min(delay, remaining))
