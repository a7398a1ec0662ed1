# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""ECS service rollback: the API layer and the decision logic.

Two halves:

* API layer: small functions, one AWS call (or one paginated listing) each, made through
  ``step.Caller`` (the collection's one retry idiom: throttling and transient errors are retried, an
  error that does not clear fails within the step's ``retry_budget`` as ``StepAWSError`` naming the API
  call, the AWS error code and the resource). Missing clusters, services and task definitions become
  ``ECSInputError`` with a message naming the value.
* Decision logic: pure functions (no AWS) that parse and normalise task definition references, pick
  the rollback target, read the rollback, restart and scale records, decide a restart or a scale-out,
  judge stability and summarise target health. Unit tests exercise them without AWS.

Records on the service (tags) only claim what happened. A rollback is first tagged *pending*
(``firebreak:rollback-pending``), then the service is updated, then the pending tag is replaced by the
``firebreak:rolled-back-*`` record. A re-run that finds a pending record completes it: it rolls the
service on to the pending target if it still runs the pending source, or only records the rollback if
the update had reached the service (its final tag was lost). Restarts and scale-outs are tagged after
the update succeeded.

moto differences handled here (see the shared notes on moto fidelity): ``update_service`` stores the
task definition as passed (``shop-api:2``, not an ARN) so every comparison normalises both sides to
``family:revision``; ``deployments`` never change, so stability does not wait for a new deployment;
``list_task_definitions`` ignores ``sort`` and ``maxResults``, so revisions are sorted here.
"""

from __future__ import annotations

import datetime
import re
import time

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    Caller,
    StepAWSError,
    StepError,
    aws_client,
    iso_seconds,
    iso_utc,
    isoformat,
    parse_time,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import utc_now as step_utc_now

# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


class AnsibleECSError(StepError, AnsibleAWSError):
    """An ECS or ELBv2 call failed."""

    def fail_result(self):
        return {k: v for k, v in self.kwargs.items() if k != "msg"}


class ECSInputError(AnsibleECSError):
    """The request names something that does not exist or may not be used; nothing was changed."""


class ECSWaitTimeout(AnsibleECSError):
    """The service did not become stable within the timeout."""


class ECSDeploymentFailed(AnsibleECSError):
    """ECS reports the deployment FAILED (deployment circuit breaker)."""


def _caller(caller):
    """The given ``Caller``, or one with the default budget (for direct use of the API layer)."""
    return caller if caller is not None else Caller()


def lazy_client(module, service: str):
    """A function returning ``module``'s client for ``service`` (bounded retries), created on first use."""
    made = []

    def get():
        if not made:
            made.append(aws_client(module, service))
        return made[0]

    return get


def service_resource(cluster: str, service: str) -> str:
    """How a failure names the service: ``ECS service 'shop-api' in cluster 'shop'``."""
    return f"ECS service {service!r} in cluster {cluster!r}"


# Tags that record a rollback on the service, so that a re-run does not roll back a second time.
TAG_FROM = "firebreak:rolled-back-from"
TAG_TO = "firebreak:rolled-back-to"
TAG_AT = "firebreak:rolled-back-at"
# A rollback started but not (yet) known to have reached the service: ``from=F to=T at=TIME``.
TAG_PENDING = "firebreak:rollback-pending"
# A restart (forced new deployment) recorded on the service.
TAG_RESTARTED_AT = "firebreak:restarted-at"
TAG_RESTARTED_DEPLOYMENT = "firebreak:restarted-deployment"
TAG_RESTARTED_FOR = "firebreak:restarted-for"
# A scale-out recorded on the service, so that it can be restored.
TAG_SCALED_FROM = "firebreak:scaled-from"
TAG_SCALED_TO = "firebreak:scaled-to"
TAG_SCALED_AT = "firebreak:scaled-at"
SCALE_TAGS = (TAG_SCALED_FROM, TAG_SCALED_TO, TAG_SCALED_AT)
# ECS service quota "tasks per service".
MAX_DESIRED_COUNT = 5000

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


def tags_dict(tags) -> dict:
    """Tags as a dict, from ECS's ``[{key, value}]`` or a dict (None: empty)."""
    return boto3_tag_list_to_ansible_dict(tags) if isinstance(tags, list) else dict(tags or {})


def read_marker(tags) -> dict | None:
    """The rollback marker from a service's tags (ECS ``[{key, value}]`` or a dict), or None."""
    tags = tags_dict(tags)
    if not tags.get(TAG_TO):
        return None
    return {"from": tags.get(TAG_FROM), "to": tags.get(TAG_TO), "at": tags.get(TAG_AT)}


def marker_tags(rollback_from: str, rollback_to: str, at: str) -> dict:
    return {TAG_FROM: rollback_from, TAG_TO: rollback_to, TAG_AT: at}


_PENDING_RE = re.compile(r"^from=(?P<from>\S+) to=(?P<to>\S+)(?: at=(?P<at>\S+))?$")


def pending_tags(rollback_from: str, rollback_to: str, at: str) -> dict:
    """The pending record of a rollback that has been started but not yet seen on the service."""
    return {TAG_PENDING: f"from={rollback_from} to={rollback_to} at={at}"}


def read_pending(tags) -> dict | None:
    """The pending rollback record (``{from, to, at}``) from a service's tags, or None (also when malformed)."""
    match = _PENDING_RE.match(str(tags_dict(tags).get(TAG_PENDING) or "").strip())
    if not match:
        return None
    try:
        found = {
            "from": normalize_task_definition(match.group("from")),
            "to": normalize_task_definition(match.group("to")),
        }
    except ValueError:
        return None
    found["at"] = match.group("at")
    return found


def decide_rollback(
    current: str,
    *,
    target: str | None = None,
    rollback_from: str | None = None,
    marker: dict | None = None,
    active_revisions=None,
    pending: dict | None = None,
) -> dict:
    """Decide what the rollback step does. All references are ``family:revision``.

    ``active_revisions`` (revision numbers of the service's family that are ACTIVE, or a callable returning
    them) is only consulted when no explicit ``target`` is given and nothing else decides first.
    ``pending`` is the pending record of an earlier run (``read_pending``).

    Returns ``{"changed": bool, "target": "family:revision", "action": str, "reason": str}``; ``action`` is
    ``rollback`` (update the service), ``resume`` (update the service to the pending target), ``reconcile``
    (the pending update reached the service: only record it) or ``none``. Raises ``ECSInputError`` when there
    is nothing to roll back to.
    """
    family, current_revision = parse_task_definition(current)
    if target is not None and target == current:
        return {"changed": False, "target": current, "action": "none", "reason": f"the service already runs {current}"}
    if pending and target is None:
        started = f" (started {pending['at']})" if pending.get("at") else ""
        if pending["to"] == current and rollback_from in (None, pending["from"]):
            return {
                "changed": True,
                "target": current,
                "action": "reconcile",
                "reason": (
                    f"the pending rollback from {pending['from']} to {current}{started} had reached the service; "
                    "recorded it"
                ),
            }
        if pending["from"] == current and rollback_from in (None, current):
            return {
                "changed": True,
                "target": pending["to"],
                "action": "resume",
                "reason": f"from {current} to {pending['to']} (completing the pending rollback{started})",
            }
    if rollback_from is not None and rollback_from != current:
        return {
            "changed": False,
            "target": current,
            "action": "none",
            "reason": (
                f"the service runs {current}, not {rollback_from} (rollback_from): nothing to roll back; "
                "it was already rolled back or redeployed"
            ),
        }
    if target is not None:
        return {
            "changed": True,
            "target": target,
            "action": "rollback",
            "reason": f"from {current} to {target} (requested)",
        }
    if rollback_from is None and marker and marker.get("to") == current:
        when = f" at {marker['at']}" if marker.get("at") else ""
        return {
            "changed": False,
            "target": current,
            "action": "none",
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
    return {
        "changed": True,
        "target": target,
        "action": "rollback",
        "reason": f"from {current} to {target} (previous ACTIVE revision)",
    }


class ECSSymptomAbsent(ECSInputError):
    """The symptom a rollback exists for is not there (and no force was given); nothing was changed."""


def _newest_deployment(deployments: list[dict]) -> dict | None:
    """The newest deployment of a service summary (latest ``created_at``; the PRIMARY one when times are missing)."""
    if not deployments:
        return None
    timed = [d for d in deployments if d.get("created_at")]
    if timed:
        return max(timed, key=lambda d: str(d["created_at"]))
    return next((d for d in deployments if d.get("status") == "PRIMARY"), deployments[0])


def decide_symptom(summary: dict, target_health: list[dict], suspect: str) -> dict:
    """Is the service down or degraded, and is its newest deployment -- the one running ``suspect``
    (``family:revision``, the revision a rollback moves away from) -- the suspect? Pure: reads a service
    summary (``service_summary``) and target health summaries (``target_health``) taken before any change.

    Down or degraded: fewer tasks running than desired; a target group with an unhealthy target or none healthy;
    or the newest deployment's rollout FAILED, or still IN_PROGRESS with failed tasks (stalled). The newest
    deployment is the suspect when it runs ``suspect`` and shows the failure itself (its rollout FAILED or
    IN_PROGRESS, failed tasks, or fewer of its tasks running than desired).

    Returns ``{"confirmed", "degraded", "suspect", "signs", "saw"}``: ``signs`` lists what shows the service
    down, ``saw`` says in one line what was read (for the refusal message) and ``suspect`` names the deployment.
    """
    running, desired = summary.get("running_count") or 0, summary.get("desired_count") or 0
    signs = []
    if running < desired:
        signs.append(f"{running} of {desired} desired tasks running")
    for group in target_health or []:
        name = str(group.get("target_group_arn") or "").rsplit(":", 1)[-1] or "target group"
        unhealthy, healthy, total = group.get("unhealthy", 0), group.get("healthy", 0), group.get("total", 0)
        if unhealthy or (total and not healthy):
            signs.append(f"{name}: {healthy} of {total} targets healthy, {unhealthy} unhealthy")
    newest = _newest_deployment(summary.get("deployments") or [])
    suspect_info = {"revision": suspect, "deployment": None, "matches": False, "failing": False}
    if newest is not None:
        try:
            revision = normalize_task_definition(newest.get("task_definition"))
        except ValueError:
            revision = str(newest.get("task_definition"))
        rollout, failed = newest.get("rollout_state"), newest.get("failed_tasks") or 0
        if rollout == "FAILED":
            signs.append(f"deployment {newest.get('id')} rollout FAILED ({summary.get('rollout_state_reason') or '-'})")
        elif rollout == "IN_PROGRESS" and failed:
            signs.append(f"deployment {newest.get('id')} rollout stalled: IN_PROGRESS with {failed} failed tasks")
        failing = (
            rollout in ("FAILED", "IN_PROGRESS")
            or failed > 0
            or (newest.get("running_count") or 0) < (newest.get("desired_count") or 0)
        )
        suspect_info.update(
            deployment=newest.get("id"),
            task_definition=revision,
            rollout_state=rollout,
            failed_tasks=failed,
            created_at=newest.get("created_at"),
            matches=revision == suspect,
            failing=bool(failing),
        )
    degraded = bool(signs)
    confirmed = degraded and suspect_info["matches"] and suspect_info["failing"]
    health = "; ".join(
        f"{str(g.get('target_group_arn') or '').rsplit(':', 1)[-1]} {g.get('healthy', 0)}/{g.get('total', 0)} healthy"
        for g in target_health or []
    )
    saw = f"{summary.get('service_name')} runs {suspect} with {running}/{desired} tasks running"
    if newest is not None:
        saw += (
            f", newest deployment {newest.get('id')} on {suspect_info.get('task_definition')} rollout "
            f"{suspect_info.get('rollout_state') or 'unknown'} with {suspect_info.get('failed_tasks')} failed tasks"
        )
    saw += f", targets {health}" if health else ", no load balancer targets"
    if degraded and not suspect_info["matches"]:
        saw += f"; the newest deployment does not run {suspect}: the deploy being rolled back is not the suspect"
    elif degraded and not suspect_info["failing"]:
        saw += "; the newest deployment completed without failed tasks: the deploy is not the suspect"
    return {
        "confirmed": confirmed,
        "degraded": degraded,
        "suspect": suspect_info,
        "signs": signs,
        "saw": saw,
    }


# -- restart ----------------------------------------------------------------------------------------


def read_restart(tags) -> dict | None:
    """The restart recorded on a service (``{at, deployment, incident}``), or None."""
    tags = tags_dict(tags)
    if not tags.get(TAG_RESTARTED_AT):
        return None
    return {
        "at": tags.get(TAG_RESTARTED_AT),
        "deployment": tags.get(TAG_RESTARTED_DEPLOYMENT),
        "incident": tags.get(TAG_RESTARTED_FOR) or None,
    }


def restart_tags(at: str, deployment_id: str | None, incident_id: str | None) -> dict:
    tags = {TAG_RESTARTED_AT: at, TAG_RESTARTED_DEPLOYMENT: deployment_id or ""}
    tags[TAG_RESTARTED_FOR] = str(incident_id) if incident_id else ""
    return tags


def decide_restart(record: dict | None, incident_id: str | None, now: datetime.datetime, min_interval: int) -> dict:
    """Restart unless this incident recorded a restart of the service less than ``min_interval`` seconds ago.

    A record counts when it was made for the same incident (no incident id on either side counts as the
    same) and its time parses; ``min_interval`` 0 always restarts. Returns ``{"changed", "reason"}``."""
    if min_interval <= 0 or not record:
        why = "min_interval is 0" if min_interval <= 0 else "no restart recorded on the service"
        return {"changed": True, "reason": f"forced a new deployment ({why})"}
    incident = str(incident_id) if incident_id else None
    if record.get("incident") != incident:
        recorded_for = record.get("incident") or "no incident"
        return {
            "changed": True,
            "reason": f"forced a new deployment (the recorded restart at {record.get('at')} was for {recorded_for})",
        }
    try:
        at = parse_time(record.get("at"))
    except ValueError:
        return {"changed": True, "reason": f"forced a new deployment (unreadable restart record {record.get('at')!r})"}
    age = (now - at).total_seconds()
    if 0 <= age < min_interval:
        for_incident = f" for incident {incident}" if incident else ""
        return {
            "changed": False,
            "reason": (
                f"restarted at {record['at']}{for_incident} ({int(age)}s ago, within min_interval {min_interval}s, "
                f"deployment {record.get('deployment') or 'unknown'}); not restarting again"
            ),
        }
    return {"changed": True, "reason": f"forced a new deployment (last restart {int(age)}s ago, at {record['at']})"}


def restart_stability(service: dict, deployment_id: str | None) -> tuple[str, str]:
    """``stability`` of a restarted service: its PRIMARY deployment must be the one the restart started."""
    primary = primary_deployment(service) or {}
    if deployment_id and primary.get("id") != deployment_id:
        return "waiting", f"PRIMARY deployment is {primary.get('id')}, not yet {deployment_id}"
    try:
        current = normalize_task_definition(service.get("taskDefinition"))
    except ValueError:
        current = str(service.get("taskDefinition"))
    return stability(service, current)


# -- scale out --------------------------------------------------------------------------------------


def read_scale(tags) -> dict | None:
    """The scale-out recorded on a service (``{from, to, at}`` with integer counts), or None."""
    tags = tags_dict(tags)
    try:
        return {"from": int(tags[TAG_SCALED_FROM]), "to": int(tags[TAG_SCALED_TO]), "at": tags.get(TAG_SCALED_AT)}
    except (KeyError, TypeError, ValueError):
        return None


def scale_tags(scaled_from: int, scaled_to: int, at: str) -> dict:
    return {TAG_SCALED_FROM: str(scaled_from), TAG_SCALED_TO: str(scaled_to), TAG_SCALED_AT: at}


def validate_desired_count(value) -> int:
    """``desired_count`` must be an integer in 0..MAX_DESIRED_COUNT; ``ECSInputError`` naming it otherwise."""
    if value is None:
        raise ECSInputError(message="desired_count is required with state=scaled")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DESIRED_COUNT:
        raise ECSInputError(
            message=f"desired_count must be an integer from 0 to {MAX_DESIRED_COUNT} (tasks per service), got {value!r}"
        )
    return value


def decide_scale_out(desired_now: int, requested: int, record: dict | None) -> dict:
    """Scale out to ``requested`` tasks. Never scales in (that is ``decide_scale_restore``'s job).

    Returns ``{"changed", "from", "to", "reason"}``; ``from`` is the count to record for a restore: the
    one already recorded (an earlier scale-out of this incident), else the current desired count."""
    requested = validate_desired_count(requested)
    original = record["from"] if record else desired_now
    if requested < desired_now:
        raise ECSInputError(
            message=(
                f"desired_count {requested} is lower than the service's desired count {desired_now}: a scale-out "
                "never scales in (use state=restored to put back a recorded count)"
            )
        )
    if requested == desired_now:
        return {
            "changed": False,
            "from": original,
            "to": requested,
            "reason": f"the service already wants {requested} tasks",
        }
    return {
        "changed": True,
        "from": original,
        "to": requested,
        "reason": f"desired count {desired_now} -> {requested} (restore to {original} with state=restored)",
    }


def decide_scale_restore(desired_now: int, record: dict | None) -> dict:
    """Put back the recorded count. ``{"changed", "to", "action", "reason", "left_alone"}``; ``action`` is
    ``restore`` (update the service and remove the record), ``forget`` (the service already has the recorded
    count: only remove the record) or ``none``."""
    if not record:
        return {
            "changed": False,
            "to": desired_now,
            "action": "none",
            "reason": "no scale-out recorded on the service: nothing to restore",
            "left_alone": {},
        }
    if desired_now == record["from"]:
        return {
            "changed": True,
            "to": desired_now,
            "action": "forget",
            "reason": f"the service already wants the recorded {desired_now} tasks; removed the scale-out record",
            "left_alone": {},
        }
    if desired_now != record["to"]:
        return {
            "changed": False,
            "to": desired_now,
            "action": "none",
            "reason": (
                f"the desired count is {desired_now}, not the {record['to']} the scale-out set: someone changed it "
                f"meanwhile, so it is left alone (the recorded count to restore is {record['from']})"
            ),
            "left_alone": {"desired_count": desired_now, "scaled_to": record["to"], "scaled_from": record["from"]},
        }
    return {
        "changed": True,
        "to": record["from"],
        "action": "restore",
        "reason": f"desired count {desired_now} -> {record['from']} (the count recorded before the scale-out)",
        "left_alone": {},
    }


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


# The service an ECS step acts on, and how it waits (doc fragments firebreak.runbooks.step.ECS_SERVICE, .ECS_WAIT).
SERVICE_OPTIONS = {"cluster": {"type": "str", "required": True}, "service": {"type": "str", "required": True}}
WAIT_OPTIONS = {"wait_timeout": {"type": "int", "default": 600}, "capture": {"type": "bool", "default": False}}


def deployment_summary(deployment, iso=isoformat):
    """One ECS deployment as the steps report it (``iso`` renders its times)."""
    reason = deployment.get("rolloutStateReason")
    return {
        "id": deployment.get("id"),
        "status": deployment.get("status"),
        "task_definition": deployment.get("taskDefinition"),
        "desired_count": deployment.get("desiredCount"),
        "running_count": deployment.get("runningCount"),
        "pending_count": deployment.get("pendingCount"),
        "failed_tasks": deployment.get("failedTasks"),
        "rollout_state": deployment.get("rolloutState"),
        "rollout_state_reason": reason if reason is None or len(reason) <= 500 else reason[:488] + " [truncated]",
        "created_at": iso(deployment.get("createdAt")),
        "updated_at": iso(deployment.get("updatedAt")),
    }


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
        "deployments": [deployment_summary(d) for d in service.get("deployments") or []],
        "events": [
            {"id": e.get("id"), "created_at": isoformat(e.get("createdAt")), "message": e.get("message")}
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
        "registered_at": isoformat(task_definition.get("registeredAt")),
    }


def utc_now() -> str:
    """Now, in whole seconds (the time the service records for a rollback, restart or scale)."""
    return iso_seconds(step_utc_now())


def deployment_state(service: dict) -> dict:
    """The PRIMARY deployment's ``{deployment_id, deployment_created_at}`` (what a restart changes)."""
    primary = primary_deployment(service) or {}
    return {"deployment_id": primary.get("id"), "deployment_created_at": isoformat(primary.get("createdAt"))}


# --------------------------------------------------------------------------------------------------
# API layer: every call through a step.Caller (bounded retries; failures name call, code, resource)
# --------------------------------------------------------------------------------------------------


_ECS_NAME = r"[A-Za-z0-9_-]{1,255}"
_ECS_REF = re.compile(rf"^(arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{{12}}:(cluster|service)/({_ECS_NAME}/)?)?{_ECS_NAME}$")


def check_name(kind: str, value) -> str:
    """``value`` when it is an ECS cluster or service name (up to 255 letters, digits, hyphens and underscores) or
    its ARN; ``ECSInputError`` naming it otherwise (ECS would refuse it, and a path such as ``../shop`` must
    never reach a resource of another name)."""
    if not isinstance(value, str) or not _ECS_REF.match(value):
        raise ECSInputError(
            message=f"invalid ECS {kind} name {value!r}: give up to 255 ASCII letters, digits, hyphens and "
            f"underscores, or the {kind}'s ARN"
        )
    return value


def describe_service(client, cluster: str, service: str, caller=None) -> dict:
    """The service (with tags). ``ECSInputError`` when a name is malformed, or the cluster or service does not exist
    or is not ACTIVE."""
    check_name("cluster", cluster)
    check_name("service", service)
    try:
        response = _caller(caller)(
            client,
            "describe_services",
            service_resource(cluster, service),
            cluster=cluster,
            services=[service],
            include=["TAGS"],
        )
    except StepAWSError as e:
        if e.code == "ClusterNotFoundException":
            raise ECSInputError(message=f"ECS cluster {cluster!r} not found") from None
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


def describe_task_definition(client, task_definition: str, caller=None) -> dict | None:
    """The task definition, or None when it does not exist (ECS answers ClientException)."""
    try:
        return _caller(caller)(
            client,
            "describe_task_definition",
            f"task definition {task_definition!r}",
            taskDefinition=task_definition,
        )["taskDefinition"]
    except StepAWSError as e:
        if e.code in ("ClientException", "TaskDefinitionNotFoundException"):
            return None
        raise


def list_revisions(client, family: str, status: str = "ACTIVE", caller=None) -> dict[int, str]:
    """``{revision: arn}`` of ``family`` with ``status``, ascending (sorted here: moto ignores ``sort``)."""
    arns = []
    pages = _caller(caller).paginate(
        client,
        "list_task_definitions",
        f"task definition family {family!r} ({status})",
        token_in="nextToken",  # noqa: S106 - a pagination token name, not a secret
        familyPrefix=family,
        status=status,
        sort="DESC",
    )
    for page in pages:
        arns.extend(page.get("taskDefinitionArns") or [])
    return family_revisions(arns, family)


def recent_revisions(client, family: str, count: int, current: str | None, caller=None) -> list[dict]:
    """The ``count`` newest revisions of ``family`` (ACTIVE and INACTIVE), newest first, described."""
    if count <= 0:
        return []
    arns = {}
    for status in ("ACTIVE", "INACTIVE"):
        arns.update(list_revisions(client, family, status, caller=caller))
    summaries = []
    for revision in sorted(arns, reverse=True)[:count]:
        described = describe_task_definition(client, arns[revision], caller=caller)
        if described is None:  # deleted between listing and describing
            continue
        summary = revision_summary(described)
        summary["current"] = f"{summary['family']}:{summary['revision']}" == current
        summaries.append(summary)
    return summaries


def update_service(
    client,
    cluster: str,
    service: str,
    task_definition: str | None = None,
    force_new_deployment: bool = False,
    caller=None,
    resource: str | None = None,
    desired_count: int | None = None,
) -> dict:
    """UpdateService; ``resource`` names what the update was for in a failure (default: the service)."""
    params = {"cluster": cluster, "service": service, "forceNewDeployment": force_new_deployment}
    if task_definition is not None:
        params["taskDefinition"] = task_definition
    if desired_count is not None:
        params["desiredCount"] = desired_count
    return _caller(caller)(client, "update_service", resource or service_resource(cluster, service), **params)[
        "service"
    ]


def tag_service(client, service_arn: str, tags: dict, caller=None) -> None:
    _caller(caller)(
        client,
        "tag_resource",
        f"ECS service {service_arn}",
        resourceArn=service_arn,
        tags=[{"key": k, "value": v} for k, v in tags.items()],
    )


def untag_service(client, service_arn: str, keys, caller=None) -> None:
    _caller(caller)(client, "untag_resource", f"ECS service {service_arn}", resourceArn=service_arn, tagKeys=list(keys))


def target_health(elbv2_client, service: dict, caller=None) -> list[dict]:
    """Target health summaries for every target group of the service. ``elbv2_client`` may be a callable
    returning the client, so that a service without target groups never creates one."""
    arns = target_group_arns(service)
    if not arns:
        return []
    client = elbv2_client() if callable(elbv2_client) else elbv2_client
    summaries = []
    for arn in arns:
        response = _caller(caller)(client, "describe_target_health", f"target group {arn}", TargetGroupArn=arn)
        summaries.append(summarize_target_health(arn, response.get("TargetHealthDescriptions") or []))
    return summaries


def wait_for_stable(
    client,
    cluster: str,
    service: str,
    target: str | None,
    timeout: float,
    delay: float = POLL_DELAY,
    sleep=time.sleep,
    clock=time.monotonic,
    caller=None,
    deployment_id: str | None = None,
    purpose: str | None = None,
) -> dict:
    """Poll DescribeServices until the service is stable; return the service.

    Stable on ``target`` (``stability``), or, with ``target`` None, on whatever it runs; with
    ``deployment_id``, only once that deployment is PRIMARY (``restart_stability``). Raises
    ``ECSDeploymentFailed`` when the PRIMARY deployment FAILED and ``ECSWaitTimeout`` (with the current
    state in the message) when ``timeout`` seconds pass."""
    deadline = clock() + max(float(timeout), 0.0)
    purpose = purpose or f"roll back to {target}"
    while True:
        current = describe_service(client, cluster, service, caller=caller)
        if target is None or deployment_id is not None:
            verdict, why = restart_stability(current, deployment_id)
        else:
            verdict, why = stability(current, target)
        if verdict == "stable":
            return current
        if verdict == "failed":
            raise ECSDeploymentFailed(message=f"ECS service {service!r} did not {purpose}: {why}")
        remaining = deadline - clock()
        if remaining <= 0:
            state = state_of(current)
            raise ECSWaitTimeout(
                message=(
                    f"timed out after {timeout}s waiting for ECS service {service!r} to {purpose} and be stable: "
                    f"{why} (taskDefinition={state['task_definition']}, running={state['running_count']}, "
                    f"desired={state['desired_count']}, deployments={len(current.get('deployments') or [])})"
                )
            )
        sleep(min(delay, remaining))


def capture_before(client, elbv2_client, service: dict, caller=None, events: int = 10) -> dict:
    """What a step records of a service before it changes anything: its summary and target health."""
    return {
        "service": service_summary(service, events),
        "target_health": target_health(elbv2_client, service, caller=caller),
        "at": iso_utc(datetime.datetime.now(datetime.UTC)),
    }
