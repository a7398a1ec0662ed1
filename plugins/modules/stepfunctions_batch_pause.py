#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stepfunctions_batch_pause
short_description: Pause a Step Functions / Batch pipeline during an incident, and resume exactly what was paused
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Containment step "pause Step Functions/Batch runs" of the seed plan "Challenge 04" (section 3, security incident),
    and its recovery "re-enable Batch/Step Functions pipelines" (section 5).
  - With O(state=paused), disables the ENABLED Batch job queues of O(job_queues) (no new job is scheduled, running
    jobs finish), then stops every RUNNING execution of the state machines of O(state_machines) with an C(error) and
    C(cause) naming the incident, tags the state machines and queues with the incident, and returns one
    RV(containment) entry per resource saying exactly what was stopped and disabled.
  - With O(state=resumed), re-enables exactly the queues the given O(containments) disabled and that are still
    disabled (a queue someone re-enabled meanwhile is left alone and reported; a queue named in O(job_queues) that
    this incident did not disable but is disabled is reported, not enabled), removes the incident tags, and lists
    the stopped executions with their input in RV(redrive) (and per state machine in RV(release)). It never starts
    an execution.
  - Each job queue is claimed in the containment ledger (item C(state:DISABLED) on the queue ARN), also a queue
    another incident already disabled; a resume re-enables a queue only when no other unreleased incident still
    claims it (RV(kept) says for whom), so a queue disabled by two incidents stays disabled until the last resume.
    Stopped executions cannot be un-stopped, so they record no claim; each incident's resume lists its own for
    re-drive. A queue deleted meanwhile is reported in RV(gone) and the resume goes on.
  - One module call reads, decides, acts and waits. A re-run changes nothing. In check mode nothing is changed.
    Unknown state machines or queues fail naming the value before anything is changed.
options:
  state:
    description:
      - V(paused) stops and disables; V(resumed) re-enables what O(containments) disabled and lists executions to
        re-drive.
    type: str
    choices: [paused, resumed]
    default: paused
  state_machines:
    description:
      - Names or ARNs of the Step Functions state machines whose RUNNING executions are stopped.
    type: list
    elements: str
    default: []
  job_queues:
    description:
      - Names or ARNs of the Batch job queues to disable.
      - With O(state=resumed), optional; queues named here that are disabled but not by this incident are reported.
    type: list
    elements: str
    default: []
  wait:
    description:
      - Wait until the stopped executions are no longer RUNNING and the queues have reached their new state.
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait, in seconds.
    type: int
    default: 300
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.INCIDENT
  - firebreak.runbooks.step.CONTAINMENT
  - firebreak.runbooks.step.CLAIMS
  - firebreak.runbooks.step.ATTRIBUTES
notes:
  - O(incident_id) is required with O(state=paused) (except in check mode).
  - Stopping an execution does not prevent new ones from starting (EventBridge rules, schedules, API callers); with
    its queue disabled a new execution's C(batch:submitJob) step fails. An execution started between the listing
    and the stop is reported in RV(still_running); run the step again.
  - For a C(.sync) Batch task, Step Functions tries to terminate the job when the execution is stopped.
seealso:
  - module: firebreak.runbooks.s3_public_access_lock
"""

EXAMPLES = r"""
- name: Pause the results pipeline
  firebreak.runbooks.stepfunctions_batch_pause:
    state_machines: [results-pipeline]
    job_queues: [results-queue]
    incident_id: INC-2041

- name: Resume it after the incident; the executions to re-drive are listed, not started
  firebreak.runbooks.stepfunctions_batch_pause:
    state: resumed
    incident_id: INC-2041
    containments: >-
      {{ lookup('firebreak.runbooks.containments', 'pipeline_pause', incident_id='INC-2041', wantlist=True) }}
  register: resumed

- name: Show what to re-drive
  ansible.builtin.debug:
    var: resumed.release.redrive
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "stopped 2 executions of results-pipeline; disabled results-queue"
before:
  description: The pipeline before the step.
  returned: always
  type: dict
  contains:
    state_machines:
      description: Per state machine ARN, the RUNNING executions (C(arn), C(name), C(start_date)).
      returned: always
      type: dict
      sample: {"arn:aws:states:us-east-1:123456789012:stateMachine:results-pipeline": {"running": []}}
    job_queues:
      description: Per job queue ARN, C(state) and C(status).
      returned: always
      type: dict
      sample: {"arn:aws:batch:us-east-1:123456789012:job-queue/results-queue": {"state": "ENABLED", "status": "VALID"}}
after:
  description: The pipeline after the step (read back when O(wait=true)), or in check mode the predicted state.
  returned: always
  type: dict
  contains:
    state_machines:
      description: Per state machine ARN, the executions still RUNNING.
      returned: always
      type: dict
      sample: {"arn:aws:states:us-east-1:123456789012:stateMachine:results-pipeline": {"running": []}}
    job_queues:
      description: Per job queue ARN, C(state) and C(status).
      returned: always
      type: dict
      sample: {"arn:aws:batch:us-east-1:123456789012:job-queue/results-queue": {"state": "DISABLED", "status": "VALID"}}
containment:
  description:
    - With O(state=paused), one entry per resource changed. A state machine entry (C(kind=state_machine)) has
      C(changed.stopped_executions) (C(arn), C(name), C(start_date)), C(changed.error), C(changed.cause) and
      C(changed.tags_added); a job queue entry (C(kind=job_queue)) has C(changed.disabled), C(changed.state_before)
      and C(changed.tags_added), and C(claimed) (C(state:DISABLED), the containment ledger's item). A queue another
      incident had already disabled gets an entry with C(changed.disabled=false) that only claims it.
    - Empty when nothing changed.
  returned: always
  type: list
  elements: dict
  sample:
    - incident_id: INC-2041
      step: pipeline_pause
      kind: job_queue
      resource: arn:aws:batch:us-east-1:123456789012:job-queue/results-queue
      changed: {"disabled": true, "state_before": "ENABLED", "tags_added": {"firebreak:incident": "INC-2041"}}
      at: "2026-11-24T13:30:00Z"
      id: 0123456789abcdef
still_running:
  description: Executions found RUNNING after the stops (started meanwhile); empty normally.
  returned: when state is paused
  type: list
  elements: str
  sample: []
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: containment}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str, sample: GetAlias}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
release:
  description:
    - With O(state=resumed), one entry per released resource (job queue or state machine), with C(kind),
      C(releases) (ids of the entries undone), C(restored) (C(enabled), the queue when re-enabled, and
      C(tags_removed)), C(left_alone) (changed by someone else meanwhile, or still claimed by another incident),
      C(redrive) (for a state machine, the executions it stopped, to start again by hand) and C(gone=true) when the
      queue no longer exists.
  returned: when state is resumed
  type: list
  elements: dict
  sample:
    - incident_id: INC-2041
      step: pipeline_pause
      kind: state_machine
      resource: arn:aws:states:us-east-1:123456789012:stateMachine:results-pipeline
      releases: [0123456789abcdef]
      restored: {"enabled": [], "tags_removed": ["firebreak:incident"]}
      left_alone: {}
      redrive:
        - state_machine_arn: arn:aws:states:us-east-1:123456789012:stateMachine:results-pipeline
          execution_arn: arn:aws:states:us-east-1:123456789012:execution:results-pipeline:upload-20240601-0001
          name: upload-20240601-0001
          status: ABORTED
          input: '{"batch": 1}'
redrive:
  description:
    - With O(state=resumed), every execution the containments stopped that is still C(ABORTED), with
      C(state_machine_arn), C(execution_arn), C(name), C(status) and C(input), to start again by hand.
  returned: when state is resumed
  type: list
  elements: dict
kept:
  description:
    - With O(state=resumed), the job queues (ARNs) left disabled because another unreleased incident still claims
      them, with who. The last claimant's resume re-enables them.
  returned: when state is resumed
  type: dict
  sample: {"arn:aws:batch:us-east-1:123456789012:job-queue/results-queue": ["INC-2042"]}
gone:
  description: With O(state=resumed), job queues (ARNs) deleted meanwhile; their entries are recorded as released.
  returned: when state is resumed
  type: list
  elements: str
diff:
  description: Before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {"job_queues": {}}, "after": {"job_queues": {}}}
"""

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import stepfunctions_batch as sb
from ansible_collections.firebreak.runbooks.plugins.module_utils.containment import ledger
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime import step
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import run_aws_step

ARGUMENT_SPEC = dict(
    state=dict(type="str", choices=["paused", "resumed"], default="paused"),
    state_machines=dict(type="list", elements="str", default=[]),
    job_queues=dict(type="list", elements="str", default=[]),
    containments=ledger.CONTAINMENT_OPTIONS["containments"],
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=300),
    **ledger.CLAIMS_OPTIONS,
    **step.INCIDENT_OPTION,
    **step.RETRY_BUDGET_OPTION,
)

STOP_CONCURRENCY = 8
QUEUE_ITEM = "state:DISABLED"


def claims_ledger(module, caller):
    return ledger.for_module(module, caller)


def bookkeeping(module, record):
    ledger.bookkeeping(module, "the pipeline was changed", record)


def _sfn_tags(caller, sfn, arn):
    answer = caller(sfn, "list_tags_for_resource", f"state machine {arn!r}", resourceArn=arn)
    return {t["key"]: t["value"] for t in answer.get("tags") or []}


def pause(module, caller, clients, result):
    params = module.params
    incident_id = params["incident_id"]
    wanted_tags = step.incident_tags(incident_id or "check-mode", sb.STEP)
    machines = (
        sb.resolve_state_machines(caller, clients.sfn(), params["state_machines"]) if params["state_machines"] else {}
    )
    queues = sb.describe_job_queues(caller, clients.batch(), params["job_queues"])

    plan_machines = []
    for machine in machines.values():
        running = sb.running_executions(caller, clients.sfn(), machine["arn"])
        tags = sb.missing_tags(_sfn_tags(caller, clients.sfn(), machine["arn"]), wanted_tags)
        plan_machines.append({**machine, "running": running, "tags_added": tags})
    plan_queues = []
    for queue in queues.values():
        disable = queue.get("state") == "ENABLED"
        tags = sb.missing_tags(queue.get("tags"), wanted_tags)
        plan_queues.append(
            {
                "arn": queue["jobQueueArn"],
                "name": queue["jobQueueName"],
                "queue": queue,
                "disable": disable,
                "tags_added": tags,
            }
        )

    result["before"] = {
        "state_machines": {m["arn"]: {"running": m["running"]} for m in plan_machines},
        "job_queues": {q["arn"]: sb.queue_view(q["queue"]) for q in plan_queues},
    }
    predicted = {
        "state_machines": {m["arn"]: {"running": []} for m in plan_machines},
        "job_queues": {q["arn"]: dict(sb.queue_view(q["queue"]), state="DISABLED") for q in plan_queues},
    }
    error, cause = sb.stop_reason(incident_id)
    entries = []
    claims = claims_ledger(module, caller) if plan_queues and incident_id and not module.check_mode else None
    for q in plan_queues:
        # the claims first: another incident's resume must see them before the queue is disabled; a queue already
        # disabled (by another incident) is claimed too, so it stays disabled until the last claimant resumes
        new_claim = claims.claim(incident_id, sb.STEP, q["arn"], [QUEUE_ITEM]) if claims else 0
        if q["disable"] or q["tags_added"] or new_claim:
            changed = {"disabled": q["disable"], "state_before": q["queue"].get("state"), "tags_added": q["tags_added"]}
            entries.append(
                step.containment_entry(
                    incident_id, sb.STEP, q["arn"], changed, kind="job_queue", name=q["name"], claimed=[QUEUE_ITEM]
                )
            )
    for m in plan_machines:
        if m["running"] or m["tags_added"]:
            changed = {
                "stopped_executions": m["running"],
                "error": error,
                "cause": cause,
                "tags_added": m["tags_added"],
            }
            entries.append(
                step.containment_entry(incident_id, sb.STEP, m["arn"], changed, kind="state_machine", name=m["name"])
            )
    stops = sum(len(m["running"]) for m in plan_machines)
    disables = [q["name"] for q in plan_queues if q["disable"]]
    machine_names = ", ".join(m["name"] for m in plan_machines) or "no state machine"
    summary = f"stop {stops} execution(s) of {machine_names}; disable {', '.join(disables) or 'no queue'}"
    result["changed"] = bool(entries)
    result["still_running"] = []
    result["containment"] = entries
    if module.check_mode or not entries:
        result["after"] = predicted if module.check_mode else result["before"]
        result["msg"] = (
            f"check mode: would {summary}"
            if module.check_mode
            else "no change: nothing running, every queue disabled and tagged"
        )
        return result

    # Act: queues first (nothing new is scheduled), then the executions.
    batch = clients.batch() if plan_queues else None
    for q in plan_queues:
        if q["disable"]:
            caller(batch, "update_job_queue", f"job queue {q['name']!r}", jobQueue=q["arn"], state="DISABLED")
            bookkeeping(module, lambda q=q: claims.mark_added(incident_id, sb.STEP, q["arn"], [QUEUE_ITEM]))
        if q["tags_added"]:
            caller(batch, "tag_resource", f"job queue {q['name']!r}", resourceArn=q["arn"], tags=q["tags_added"])
    sfn = clients.sfn() if plan_machines else None
    to_stop = [e["arn"] for m in plan_machines for e in m["running"]]

    def stop(arn):
        try:
            caller(sfn, "stop_execution", f"execution {arn!r}", executionArn=arn, error=error, cause=cause)
        except step.StepAWSError as err:
            if err.code != "ExecutionDoesNotExist":
                raise

    if to_stop:
        with ThreadPoolExecutor(max_workers=min(STOP_CONCURRENCY, len(to_stop))) as pool:
            list(pool.map(stop, to_stop))
    for m in plan_machines:
        if m["tags_added"]:
            tags = [{"key": k, "value": v} for k, v in m["tags_added"].items()]
            caller(sfn, "tag_resource", f"state machine {m['name']!r}", resourceArn=m["arn"], tags=tags)

    after = {"state_machines": {}, "job_queues": {}}
    if params["wait"]:
        if to_stop:
            sb.wait_for_stopped(caller, sfn, to_stop, params["wait_timeout"])
        if plan_queues:
            now = sb.wait_for_queues(caller, batch, [q["arn"] for q in plan_queues], "DISABLED", params["wait_timeout"])
            after["job_queues"] = {q["jobQueueArn"]: sb.queue_view(q) for q in now.values()}
    else:
        after["job_queues"] = predicted["job_queues"]
    for m in plan_machines:
        running = sb.running_executions(caller, sfn, m["arn"])
        after["state_machines"][m["arn"]] = {"running": running}
        result["still_running"] += [e["arn"] for e in running]
    result["after"] = after
    if result["still_running"]:
        module.warn(f"executions started meanwhile are RUNNING: {result['still_running']}; run the step again")
    result["msg"] = summary.replace("stop ", "stopped ", 1).replace("; disable ", "; disabled ")
    return result


def _queue_name(arn):
    return arn.rsplit("/", 1)[-1]


def resume(module, caller, clients, result):
    params = module.params
    machine_entries, queue_entries = sb.entries_by_kind(params["containments"])
    queue_arns = []
    for entry in queue_entries:
        if entry["resource"] not in queue_arns:
            queue_arns.append(entry["resource"])
    named = sb.describe_job_queues(caller, clients.batch(), params["job_queues"]) if params["job_queues"] else {}
    now = {}
    if queue_arns:
        answer = caller(clients.batch(), "describe_job_queues", "job queues", jobQueues=queue_arns)
        for queue in answer.get("jobQueues") or []:
            now[queue["jobQueueArn"]] = queue

    # The containment ledger: a queue stays disabled while another unreleased incident still claims it.
    claims = claims_ledger(module, caller)
    gone, kept, settles, decided = [], {}, [], []
    for arn in queue_arns:
        entries = [e for e in queue_entries if e["resource"] == arn]
        owner = params["incident_id"] or entries[0].get("incident_id")
        ours = [QUEUE_ITEM] if any(e["changed"].get("disabled") for e in entries) else []
        claimed = list(dict.fromkeys([i for e in entries for i in e.get("claimed") or []] + ours))
        if now.get(arn) is None:
            gone.append(arn)  # deleted meanwhile: recorded as released, the release goes on
            if owner and claimed and not module.check_mode:
                bookkeeping(module, lambda owner=owner, arn=arn, claimed=claimed: claims.drop(owner, arn, claimed))
            continue
        selection = {"remove": ours, "kept": {}}
        if owner and claimed:
            selection = claims.select(owner, arn, claimed, ours)
            settles.append((owner, arn, claimed, selection["remove"]))
        if selection["kept"]:
            kept[arn] = selection["kept"][QUEUE_ITEM]
        # enable only what the ledger lets this release remove (also a queue another, released incident disabled)
        may_enable = QUEUE_ITEM in selection["remove"]
        decided += [dict(e, changed=dict(e["changed"], disabled=may_enable)) for e in entries]
    decision = sb.decide_queue_resume(decided, {arn: now.get(arn) for arn in queue_arns if arn not in gone})
    for arn, who in kept.items():
        decision["left_alone"][arn] = f"still claimed by {', '.join(who)}: left disabled"
    for queue in named.values():
        arn = queue["jobQueueArn"]
        if arn not in queue_arns and queue.get("state") == "DISABLED":
            decision["left_alone"][arn] = "disabled, but not by this incident: left disabled"

    machine_tags_removed = {}
    for entry in machine_entries:
        added = entry["changed"].get("tags_added") or {}
        if added:
            try:
                tags = _sfn_tags(caller, clients.sfn(), entry["resource"])
            except step.StepAWSError as err:
                if err.code not in ("ResourceNotFound", "StateMachineDoesNotExist"):
                    raise
                tags = {}
            keys = sorted(k for k, v in added.items() if tags.get(k) == v)
            if keys:
                machine_tags_removed[entry["resource"]] = sorted(
                    set(machine_tags_removed.get(entry["resource"], [])) | set(keys)
                )

    redrive = []
    for execution in sb.stopped_executions(machine_entries):
        try:
            described = caller(
                clients.sfn(), "describe_execution", f"execution {execution['arn']!r}", executionArn=execution["arn"]
            )
        except step.StepAWSError as err:
            if err.code != "ExecutionDoesNotExist":
                raise
            decision["left_alone"][execution["arn"]] = (
                "the execution no longer exists (history expired?): no input to re-drive"
            )
            continue
        item = {
            "state_machine_arn": execution["state_machine_arn"],
            "execution_arn": execution["arn"],
            "name": execution.get("name"),
            "status": described.get("status"),
            "input": described.get("input"),
        }
        if described.get("status") != "ABORTED":
            decision["left_alone"][execution["arn"]] = (
                f"status {described.get('status')} (re-driven or changed meanwhile): not listed for re-drive"
            )
            continue
        redrive.append(item)

    result["before"] = {"state_machines": {}, "job_queues": {arn: sb.queue_view(q) for arn, q in now.items()}}
    tags_removed = dict(decision["tags_removed"], **machine_tags_removed)
    changed = bool(decision["enable"] or tags_removed)
    result["release"] = release_entries(
        params["incident_id"], machine_entries, queue_entries, decision, tags_removed, redrive, gone
    )
    result["redrive"] = redrive
    result["kept"] = kept
    result["gone"] = gone
    result["changed"] = changed
    predicted = {
        "state_machines": {},
        "job_queues": {
            arn: dict(v, state="ENABLED") if arn in decision["enable"] else v
            for arn, v in result["before"]["job_queues"].items()
        },
    }
    tail = f"; {len(redrive)} execution(s) listed for re-drive (not started)" + (
        f"; left alone: {', '.join(sorted(decision['left_alone']))}" if decision["left_alone"] else ""
    )
    for arn, who in kept.items():
        tail += f"; kept {_queue_name(arn)} disabled for {', '.join(who)} (still claimed)"
    if gone:
        tail += f"; gone (recorded as released): {', '.join(gone)}"

    def settle():
        if module.check_mode:
            return
        for owner, arn, claimed, removed in settles:
            bookkeeping(
                module,
                lambda owner=owner, arn=arn, claimed=claimed, removed=removed: claims.settle(
                    owner, arn, claimed, removed=removed
                ),
            )

    if module.check_mode or not changed:
        settle()
        result["after"] = predicted if module.check_mode else result["before"]
        verb = (
            f"check mode: would re-enable {len(decision['enable'])} queue(s)"
            if module.check_mode
            else "no queue to re-enable"
        )
        result["msg"] = verb + tail
        return result

    batch = clients.batch()
    for arn in decision["enable"]:
        caller(batch, "update_job_queue", f"job queue {arn!r}", jobQueue=arn, state="ENABLED")
    for arn, keys in tags_removed.items():
        if ":job-queue/" in arn:
            caller(batch, "untag_resource", f"job queue {arn!r}", resourceArn=arn, tagKeys=keys)
        else:
            caller(clients.sfn(), "untag_resource", f"state machine {arn!r}", resourceArn=arn, tagKeys=keys)
    settle()
    after = {"state_machines": {}, "job_queues": dict(predicted["job_queues"])}
    if params["wait"] and decision["enable"]:
        queues = sb.wait_for_queues(caller, batch, decision["enable"], "ENABLED", params["wait_timeout"])
        after["job_queues"].update({q["jobQueueArn"]: sb.queue_view(q) for q in queues.values()})
    result["after"] = after
    result["msg"] = f"re-enabled {len(decision['enable'])} queue(s)" + tail
    return result


def release_entries(incident_id, machine_entries, queue_entries, decision, tags_removed, redrive, gone):
    """One release entry per resource: each queue (C(restored.enabled)), each state machine (its C(redrive))."""
    out = []
    by_resource = {}
    for entry in queue_entries + machine_entries:
        by_resource.setdefault(entry["resource"], []).append(entry)
    for arn, entries in by_resource.items():
        is_queue = entries[0].get("kind") == "job_queue"
        left = {k: v for k, v in decision["left_alone"].items() if k == arn}
        if not is_queue:
            stopped = {x.get("arn") for e in entries for x in e["changed"].get("stopped_executions") or []}
            left.update({k: v for k, v in decision["left_alone"].items() if k in stopped})
        extra = {"kind": entries[0].get("kind"), "redrive": [r for r in redrive if r["state_machine_arn"] == arn]}
        if arn in gone:
            extra["gone"] = True
        out.append(
            step.release_entry(
                entries[0].get("incident_id") or incident_id,
                sb.STEP,
                arn,
                [e["id"] for e in entries if e.get("id")],
                {
                    "enabled": [arn] if arn in decision["enable"] else [],
                    "tags_removed": tags_removed.get(arn, []),
                },
                left,
                **extra,
            )
        )
    placed = {k for entry in out for k in entry["left_alone"]}
    for arn, why in decision["left_alone"].items():
        if arn not in placed and ":job-queue/" in arn:
            # a queue named in job_queues that this incident did not disable: reported, nothing released
            out.append(
                step.release_entry(
                    incident_id,
                    sb.STEP,
                    arn,
                    [],
                    {"enabled": [], "tags_removed": []},
                    {arn: why},
                    kind="job_queue",
                    redrive=[],
                )
            )
    return out


class Clients:
    """boto3 clients created on first use (a step that only touches Batch never builds a Step Functions client)."""

    def __init__(self, module):
        self.module = module
        self._cache = {}

    def _get(self, service):
        if service not in self._cache:
            self._cache[service] = step.aws_client(self.module, service)
        return self._cache[service]

    def sfn(self):
        return self._get("stepfunctions")

    def batch(self):
        return self._get("batch")


def run(module, result):
    params = module.params
    params["state_machines"] = sb.validate_names(params["state_machines"], "state machine")
    params["job_queues"] = sb.validate_names(params["job_queues"], "job queue")
    if params["wait_timeout"] < 0:
        raise sb.PipelinePauseError(f"wait_timeout must be >= 0, got {params['wait_timeout']}")
    if params["state"] == "paused":
        if not params["state_machines"] and not params["job_queues"]:
            raise sb.PipelinePauseError("nothing to pause: give state_machines and/or job_queues")
        if not params["incident_id"] and not module.check_mode:
            raise sb.PipelinePauseError("incident_id is required to pause (it names the stop and tags the resources)")
    else:
        sb.entries_by_kind(params["containments"])  # validate before any call
    result.update(changed=False)
    caller = step.Caller(params["retry_budget"])
    clients = Clients(module)
    result = (
        pause(module, caller, clients, result)
        if params["state"] == "paused"
        else resume(module, caller, clients, result)
    )
    return result


def main():
    run_aws_step(run, "containment", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
