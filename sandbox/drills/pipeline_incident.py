"""Drill: the results pipeline fails (seeds/eks-batch-stepfunctions-plan.md, "Step Functions failures, Batch
queue/age"; containment "pause Step Functions/Batch runs").

The sandbox seeds the pipeline of that plan: the state machine ``results-pipeline`` (a ``batch:submitJob.sync``
task) with two RUNNING executions, and the Batch job queue ``results-queue`` (ENABLED). The fault: two more
executions of it end in failure after the drill's start. moto never runs an execution, so it cannot fail one
(FAILED); the drill stops them instead (ABORTED), which the runbook counts as failed as it counts FAILED and
TIMED_OUT (/work/shared/notes/moto-fidelity.md; docs/runbooks/pipeline_incident.md "What the sandbox cannot show").

The runbook (``playbooks/pipeline_incident.yml``, the first run of an incident) must confirm the failures, record
their ARNs, disable the queue and stop the RUNNING executions. ``verify`` checks the contained state in moto: the
queue DISABLED, nothing RUNNING, the seeded executions ABORTED. The resume (a second run after the fix,
``pipeline_incident_resume=true``) is exercised by tests/integration/test_pipeline_incident.py.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

PLAYBOOK = "playbooks/pipeline_incident.yml"
DESCRIPTION = "Step Functions executions failing: pause the pipeline (queue disabled, runs stopped), list the re-drive"
FAILED = ("upload-20240601-0003", "upload-20240601-0004")


def _manifest(sandbox) -> dict:
    aws = (sandbox.manifest or {}).get("aws", {})
    if not aws.get("stepfunctions") or not aws.get("batch"):
        raise RuntimeError("the sandbox has no Step Functions / Batch seed (manifest['aws']); was it started with AWS?")
    return aws


def fail_executions(sandbox, names=FAILED) -> list[str]:
    """Start the named executions and end them at once (ABORTED: moto cannot make one FAILED)."""
    sfn = sandbox.client("stepfunctions")
    arn = _manifest(sandbox)["stepfunctions"]["state_machine_arn"]
    failed = []
    for name in names:
        execution = sfn.start_execution(stateMachineArn=arn, name=name, input='{"batch": 2}')["executionArn"]
        sfn.stop_execution(executionArn=execution, error="States.TaskFailed", cause="results-worker exited 1")
        failed.append(execution)
    return failed


def queue_state(sandbox) -> str:
    name = _manifest(sandbox)["batch"]["job_queue_name"]
    return sandbox.client("batch").describe_job_queues(jobQueues=[name])["jobQueues"][0]["state"]


def executions(sandbox) -> dict[str, str]:
    """Execution name -> status, for every execution of the seeded state machine."""
    sfn = sandbox.client("stepfunctions")
    arn = _manifest(sandbox)["stepfunctions"]["state_machine_arn"]
    found = {}
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
        found.update({e["name"]: e["status"] for e in page["executions"]})
    return found


def inject(sandbox) -> dict:
    """Two executions fail after the window starts; return the extra vars."""
    aws = _manifest(sandbox)
    since = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.1)  # listing times have second resolution here: the failures are strictly after the window's start
    failed = fail_executions(sandbox)
    return {
        "pipeline_incident_state_machine": aws["stepfunctions"]["state_machine_name"],
        "pipeline_incident_job_queue": aws["batch"]["job_queue_name"],
        "pipeline_incident_since": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "_drill": {
            "seeded": [arn.rsplit(":", 1)[-1] for arn in aws["stepfunctions"]["execution_arns"]],
            "failed": failed,
            "fault": f"executions {', '.join(FAILED)} of {aws['stepfunctions']['state_machine_name']} failed"
            f" after {since}",
        },
    }


def verify(sandbox, context: dict) -> list[str]:
    """The pipeline is paused: the queue DISABLED, no execution RUNNING, the seeded ones stopped."""
    drill = context["_drill"]
    state = queue_state(sandbox)
    assert state == "DISABLED", f"the job queue is {state}, expected DISABLED (paused)"
    now = executions(sandbox)
    running = sorted(name for name, status in now.items() if status == "RUNNING")
    assert not running, f"executions still RUNNING: {running}"
    for name in drill["seeded"]:
        assert now.get(name) == "ABORTED", f"seeded execution {name} is {now.get(name)}, expected ABORTED (stopped)"
    return [
        "results-queue DISABLED",
        f"no execution RUNNING; {', '.join(drill['seeded'])} stopped (ABORTED)",
    ]
