"""stepfunctions_batch_pause against the sandbox: executions and queues read back with boto3.

moto never runs an execution (they stay RUNNING until stopped) and does not store StopExecution's
error and cause: the tests assert ABORTED in moto and the error/cause in the request the proxy saw.
"""

from __future__ import annotations

import time

import pytest

from tests.integration.containment_helpers import last_seq, step
from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

MODULE = "stepfunctions_batch_pause"
INCIDENT = "INC-PIPE-1"
MUTATING = {"StopExecution", "UpdateJobQueue", "TagResource", "UntagResource", "StartExecution"}


def action(entry) -> str:
    """The call of a proxy log entry (Batch is REST JSON: no action, only a path)."""
    if entry["service"] == "batch" and entry["path"].startswith("/v1/updatejobqueue"):
        return "UpdateJobQueue"
    if entry["service"] == "batch" and entry["path"].startswith("/v1/tags/") and entry["method"] != "GET":
        return "TagResource" if entry["method"] == "POST" else "UntagResource"
    return entry["action"]


def area(aws):
    return aws.manifest["aws"]["stepfunctions"], aws.manifest["aws"]["batch"]


def statuses(aws) -> dict:
    sfn, _ = area(aws)
    executions = aws.client("stepfunctions").list_executions(stateMachineArn=sfn["state_machine_arn"])["executions"]
    return {e["executionArn"]: e["status"] for e in executions}


def queue_state(aws) -> str:
    return aws.client("batch").describe_job_queues(jobQueues=["results-queue"])["jobQueues"][0]["state"]


def queue_tags(aws) -> dict:
    return aws.client("batch").describe_job_queues(jobQueues=["results-queue"])["jobQueues"][0].get("tags") or {}


def mutations(aws, since):
    return [e for e in aws.proxy.log() if e["seq"] > since and action(e) in MUTATING]


def pause(run_playbook, **kw):
    return step(
        run_playbook,
        MODULE,
        state_machines=["results-pipeline"],
        job_queues=["results-queue"],
        incident_id=INCIDENT,
        **kw,
    )


def test_pause_stops_running_executions_naming_the_incident_and_disables_the_queue(aws, run_playbook):
    sfn, batch = area(aws)
    assert set(statuses(aws).values()) == {"RUNNING"}
    seq = last_seq(aws)
    run, result = pause(run_playbook, retry_budget=10)
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert statuses(aws) == dict.fromkeys(sfn["execution_arns"], "ABORTED")
    assert queue_state(aws) == "DISABLED"
    assert queue_tags(aws)["firebreak:incident"] == INCIDENT
    stops = [e for e in aws.proxy.log() if e["seq"] > seq and e["action"] == "StopExecution"]
    assert sorted(e["params"]["executionArn"] for e in stops) == sorted(sfn["execution_arns"])
    for entry in stops:
        assert INCIDENT in entry["params"]["error"] and INCIDENT in entry["params"]["cause"]
    updates = [e for e in aws.proxy.log() if e["seq"] > seq and action(e) == "UpdateJobQueue"]
    assert [e["params"]["state"] for e in updates] == ["DISABLED"]
    # queues before executions: nothing new is scheduled while the executions are stopped
    order = [action(e) for e in aws.proxy.log() if e["seq"] > seq and action(e) in ("UpdateJobQueue", "StopExecution")]
    assert order[0] == "UpdateJobQueue"

    entries = {e["kind"]: e for e in result["containment"]}
    assert entries["job_queue"]["resource"] == batch["job_queue_arn"]
    assert entries["job_queue"]["changed"]["disabled"] is True
    stopped = entries["state_machine"]["changed"]["stopped_executions"]
    assert sorted(e["arn"] for e in stopped) == sorted(sfn["execution_arns"])
    assert result["after"]["job_queues"][batch["job_queue_arn"]]["state"] == "DISABLED"
    assert result["still_running"] == []

    seq = last_seq(aws)
    run, again = pause(run_playbook)
    assert run.returncode == 0 and again["changed"] is False, run.output
    assert mutations(aws, seq) == []


def test_resume_reenables_only_what_was_disabled_and_lists_executions_for_redrive(aws, run_playbook):
    sfn, _batch = area(aws)
    _run, paused = pause(run_playbook)
    entries = paused["containment"]
    seq = last_seq(aws)
    run, resumed = step(run_playbook, MODULE, state="resumed", incident_id=INCIDENT, containments=entries)
    assert run.returncode == 0, run.output
    assert resumed["changed"] is True
    assert queue_state(aws) == "ENABLED"
    assert "firebreak:incident" not in queue_tags(aws)
    redrive = resumed["redrive"]
    assert redrive == [r for rel in resumed["release"] for r in rel["redrive"]]
    assert sorted(r["execution_arn"] for r in redrive) == sorted(sfn["execution_arns"])
    assert {r["input"] for r in redrive} == {'{"batch": 1}'}
    assert {r["status"] for r in redrive} == {"ABORTED"}
    assert "StartExecution" not in [e["action"] for e in aws.proxy.log() if e["seq"] > seq], "never restarted silently"
    assert statuses(aws) == dict.fromkeys(sfn["execution_arns"], "ABORTED")
    assert sorted(i for rel in resumed["release"] for i in rel["releases"]) == sorted(e["id"] for e in entries)

    run, again = step(run_playbook, MODULE, state="resumed", incident_id=INCIDENT, containments=entries)
    assert run.returncode == 0 and again["changed"] is False, run.output


def test_resume_leaves_a_queue_reenabled_meanwhile_and_reports_a_queue_disabled_by_someone_else(aws, run_playbook):
    _sfn, batch = area(aws)
    client = aws.client("batch")
    other = client.create_job_queue(
        jobQueueName="reports-queue",
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": batch["compute_environment_arn"]}],
    )["jobQueueArn"]
    _run, paused = pause(run_playbook)
    client.update_job_queue(jobQueue="results-queue", state="ENABLED")  # re-enabled by hand meanwhile
    client.update_job_queue(jobQueue="reports-queue", state="DISABLED")  # someone else's pause
    run, resumed = step(
        run_playbook,
        MODULE,
        state="resumed",
        incident_id=INCIDENT,
        job_queues=["results-queue", "reports-queue"],
        containments=paused["containment"],
    )
    assert run.returncode == 0, run.output
    left = {k: v for rel in resumed["release"] for k, v in rel["left_alone"].items()}
    assert "re-enabled by someone else" in left[batch["job_queue_arn"]]
    assert "not by this incident" in left[other]
    assert [q for rel in resumed["release"] for q in rel["restored"]["enabled"]] == []
    assert queue_state(aws) == "ENABLED"
    assert client.describe_job_queues(jobQueues=["reports-queue"])["jobQueues"][0]["state"] == "DISABLED"


def test_check_mode_changes_nothing(aws, run_playbook):
    seq = last_seq(aws)
    run, result = pause(run_playbook, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert result["changed"] is True and "would stop 2 execution(s)" in result["msg"]
    assert set(statuses(aws).values()) == {"RUNNING"}
    assert queue_state(aws) == "ENABLED"
    assert mutations(aws, seq) == []


@first_case_in_make_test
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"state_machines": ["no-such-machine"]}, "state machine 'no-such-machine' does not exist"),
        ({"job_queues": ["no-such-queue"]}, "Batch job queue 'no-such-queue' does not exist"),
        ({"job_queues": ["bad queue!"]}, "invalid job queue 'bad queue!'"),
        ({"incident_id": ""}, "incident_id is required"),
    ],
    ids=["unknown-machine", "unknown-queue", "invalid-queue", "no-incident"],
)
def test_bad_input_fails_naming_the_value_and_changes_nothing(aws, run_playbook, args, expected):
    seq = last_seq(aws)
    full = {"state_machines": ["results-pipeline"], "job_queues": ["results-queue"], "incident_id": INCIDENT, **args}
    run, result = step(run_playbook, MODULE, **full)
    assert run.returncode != 0
    assert expected in result["msg"], result["msg"]
    assert result["changed"] is False
    assert set(statuses(aws).values()) == {"RUNNING"} and queue_state(aws) == "ENABLED"
    assert mutations(aws, seq) == []


@pytest.mark.proof
def test_permanent_5xx_fails_within_budget_naming_call_and_code(aws, run_playbook):
    aws.proxy.add_rule({"service": "batch", "path": "^/v1/updatejobqueue", "fault": "error"})
    started = time.monotonic()
    run, result = pause(run_playbook, retry_budget=3)
    assert run.returncode != 0
    assert time.monotonic() - started < 60
    assert "UpdateJobQueue" in result["msg"] and "InternalFailure" in result["msg"], result["msg"]
    assert set(statuses(aws).values()) == {"RUNNING"}, "the executions are not stopped once the queue failed"
