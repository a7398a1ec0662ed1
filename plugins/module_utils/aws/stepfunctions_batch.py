# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pause and resume a Step Functions / Batch pipeline: the API layer and the pure decisions.

Pause disables the named Batch job queues first (no new job is scheduled; jobs already running
finish), then stops every RUNNING execution of the named state machines with an ``error`` and
``cause`` naming the incident.  One containment entry per resource records exactly that: the
executions stopped (ARN, name, start date), the queues disabled (their state before).

Resume re-enables exactly the queues this incident disabled and that are still disabled (one someone
re-enabled meanwhile is left alone and reported), and *lists* the stopped executions with their
input so that a person can re-drive them: it never starts an execution itself (a silent restart of a
pipeline that was paused because it was misused is the wrong default).
"""

from __future__ import annotations

import re
import time

from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError, StepError, isoformat

STEP = "pipeline_pause"

STATE_MACHINE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_.-]{1,80}$")
STATE_MACHINE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
JOB_QUEUE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:batch:[a-z0-9-]+:\d{12}:job-queue/[A-Za-z0-9_-]{1,128}$")
JOB_QUEUE_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")

ERROR_MAX = 256
CAUSE_MAX = 32768
POLL_DELAY = 2.0
PAGE_TOKEN = "nextToken"  # noqa: S105 - the name of the pagination parameter, not a credential


class PipelinePauseError(StepError):
    """Bad input or a state the step refuses to act on; nothing was changed (unless ``changed``)."""


def validate_names(values, kind):
    """Each value must be a name or an ARN of ``kind`` (``state machine`` or ``job queue``)."""
    arn_re, name_re = (
        (STATE_MACHINE_ARN_RE, STATE_MACHINE_NAME_RE)
        if kind == "state machine"
        else (JOB_QUEUE_ARN_RE, JOB_QUEUE_NAME_RE)
    )
    out = []
    for value in values or []:
        text = str(value or "").strip()
        if not (arn_re.match(text) or name_re.match(text)):
            raise PipelinePauseError(f"invalid {kind} {value!r}: expected a name or an ARN")
        if text not in out:
            out.append(text)
    return out


def stop_reason(incident_id):
    """``(error, cause)`` for StopExecution, both naming the incident (within AWS's length limits)."""
    error = f"firebreak.IncidentPause.{incident_id}"[:ERROR_MAX]
    cause = (
        f"Stopped by firebreak.runbooks pipeline_pause for incident {incident_id}: the pipeline is paused while the "
        "incident is investigated. The execution's input is recorded for a re-drive after the incident."
    )[:CAUSE_MAX]
    return error, cause


# --------------------------------------------------------------------------------------------------
# API layer
# --------------------------------------------------------------------------------------------------


def resolve_state_machines(caller, sfn, refs):
    """``{ref: {"arn", "name"}}`` for names or ARNs; raises naming the first one that does not exist."""
    found = {}
    names = [ref for ref in refs if not ref.startswith("arn:")]
    by_name = {}
    if names:
        for page in caller.paginate(sfn, "list_state_machines", "state machines", token_in=PAGE_TOKEN):
            for machine in page.get("stateMachines") or []:
                by_name[machine["name"]] = machine["stateMachineArn"]
    for ref in refs:
        if ref.startswith("arn:"):
            try:
                described = caller(sfn, "describe_state_machine", f"state machine {ref!r}", stateMachineArn=ref)
            except StepAWSError as err:
                if err.code == "StateMachineDoesNotExist":
                    raise PipelinePauseError(f"state machine {ref!r} does not exist") from None
                raise
            found[ref] = {"arn": described["stateMachineArn"], "name": described["name"]}
        elif ref in by_name:
            found[ref] = {"arn": by_name[ref], "name": ref}
        else:
            raise PipelinePauseError(f"state machine {ref!r} does not exist")
    return found


def running_executions(caller, sfn, machine_arn):
    """The RUNNING executions of a state machine: ``[{"arn", "name", "start_date"}]``."""
    out = []
    for page in caller.paginate(
        sfn,
        "list_executions",
        f"state machine {machine_arn!r}",
        token_in=PAGE_TOKEN,
        stateMachineArn=machine_arn,
        statusFilter="RUNNING",
    ):
        for execution in page.get("executions") or []:
            out.append(
                {
                    "arn": execution["executionArn"],
                    "name": execution.get("name"),
                    "start_date": isoformat(execution.get("startDate")),
                }
            )
    return out


def describe_job_queues(caller, batch, refs):
    """``{ref: queue}`` (DescribeJobQueues entries) for names or ARNs; raises naming a missing one."""
    if not refs:
        return {}
    answer = caller(batch, "describe_job_queues", f"job queues {refs}", jobQueues=list(refs))
    queues = answer.get("jobQueues") or []
    found = {}
    for ref in refs:
        match = next((q for q in queues if ref in (q.get("jobQueueName"), q.get("jobQueueArn"))), None)
        if match is None:
            raise PipelinePauseError(f"Batch job queue {ref!r} does not exist")
        found[ref] = match
    return found


def queue_view(queue):
    return {"state": queue.get("state"), "status": queue.get("status")}


def wait_for_queues(caller, batch, arns, wanted_state, timeout, sleep=time.sleep, clock=time.monotonic):
    """Poll until every queue in ``arns`` has ``state == wanted_state`` and is no longer UPDATING."""
    deadline = clock() + timeout
    while True:
        queues = describe_job_queues(caller, batch, list(arns)) if arns else {}
        pending = {
            arn: queue_view(q)
            for arn, q in queues.items()
            if q.get("state") != wanted_state or q.get("status") in ("UPDATING", "CREATING")
        }
        if not pending:
            return queues
        if clock() >= deadline:
            raise PipelinePauseError(f"job queues not {wanted_state} after {timeout}s: {pending}")
        sleep(POLL_DELAY)


def wait_for_stopped(caller, sfn, execution_arns, timeout, sleep=time.sleep, clock=time.monotonic):
    """Poll DescribeExecution until none of ``execution_arns`` is RUNNING; returns ``{arn: status}``."""
    deadline = clock() + timeout
    statuses = {}
    remaining = list(execution_arns)
    while True:
        still = []
        for arn in remaining:
            described = caller(sfn, "describe_execution", f"execution {arn!r}", executionArn=arn)
            statuses[arn] = described.get("status")
            if described.get("status") == "RUNNING":
                still.append(arn)
        if not still:
            return statuses
        if clock() >= deadline:
            raise PipelinePauseError(f"executions still RUNNING after {timeout}s: {still}")
        remaining = still
        sleep(POLL_DELAY)


# --------------------------------------------------------------------------------------------------
# Decisions (pure)
# --------------------------------------------------------------------------------------------------


def missing_tags(current, wanted):
    """The tags of ``wanted`` that ``current`` lacks or holds with another value."""
    return {key: value for key, value in (wanted or {}).items() if (current or {}).get(key) != value}


def entries_by_kind(containments):
    """``(state machine entries, job queue entries)`` of this step, oldest first; refuses foreign shapes."""
    machines, queues = [], []
    for entry in containments or []:
        if not isinstance(entry, dict):
            raise PipelinePauseError(f"containments must be a list of containment entries, got {entry!r}")
        if entry.get("step", STEP) != STEP:
            continue
        changed = entry.get("changed")
        kind = entry.get("kind")
        if not isinstance(changed, dict) or kind not in ("state_machine", "job_queue"):
            raise PipelinePauseError(
                f"containment entry {entry.get('id')!r} is not a pipeline_pause entry (no kind or changed)"
            )
        (machines if kind == "state_machine" else queues).append(entry)
    return sorted(machines, key=_entry_time), sorted(queues, key=_entry_time)


def decide_queue_resume(entries, queues_now):
    """Which queues to re-enable.

    ``entries``: job queue entries (oldest first); ``queues_now``: ``{arn: queue or None}``.
    Returns ``{"enable": [arn], "left_alone": {arn: why}, "tags_removed": {arn: [keys]}}``.
    """
    enable, left_alone, tags_removed = [], {}, {}
    seen = set()
    for entry in entries:
        arn = entry["resource"]
        if arn in seen:
            continue
        seen.add(arn)
        queue = queues_now.get(arn)
        if queue is None:
            left_alone[arn] = "the job queue no longer exists"
            continue
        disabled = any(e["changed"].get("disabled") for e in entries if e["resource"] == arn)
        if disabled:
            if queue.get("state") == "DISABLED":
                enable.append(arn)
            else:
                left_alone[arn] = f"re-enabled by someone else meanwhile (state {queue.get('state')}): left as is"
        added = {}
        for e in entries:
            if e["resource"] == arn:
                added.update(e["changed"].get("tags_added") or {})
        tags = queue.get("tags") or {}
        removable = sorted(k for k, v in added.items() if tags.get(k) == v)
        if removable:
            tags_removed[arn] = removable
    return {"enable": enable, "left_alone": left_alone, "tags_removed": tags_removed}


def stopped_executions(entries):
    """Every execution the state machine entries stopped, oldest entry first, without duplicates."""
    out, seen = [], set()
    for entry in entries:
        for execution in entry["changed"].get("stopped_executions") or []:
            if execution.get("arn") and execution["arn"] not in seen:
                seen.add(execution["arn"])
                out.append(dict(execution, state_machine_arn=entry["resource"]))
    return out


def _entry_time(entry):
    return str(entry.get("at") or "")
