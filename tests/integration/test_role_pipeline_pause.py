"""The pipeline_pause role: check mode, converge, idempotence, resume, against the sandbox."""

from __future__ import annotations

import pytest

from tests.integration.containment_helpers import recap, recorded_containments, role
from tests.integration.test_stepfunctions_batch_pause import queue_state, statuses

pytestmark = pytest.mark.integration

VARS = {"pipeline_pause_state_machines": ["results-pipeline"], "pipeline_pause_job_queues": ["results-queue"]}


def test_check_mode_changes_nothing(aws, run_playbook):
    run = role(run_playbook, "pipeline_pause", check=True, diff=True, **VARS)
    assert run.returncode == 0, run.output
    assert set(statuses(aws).values()) == {"RUNNING"} and queue_state(aws) == "ENABLED"


def test_converge_idempotence_and_resume(aws, run_playbook, tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    first = role(run_playbook, "pipeline_pause", timeline=timeline, **VARS)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    assert set(statuses(aws).values()) == {"ABORTED"} and queue_state(aws) == "DISABLED"

    second = role(run_playbook, "pipeline_pause", timeline=timeline, **VARS)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0, second.stdout

    entries = recorded_containments(timeline, "pipeline_pause")
    assert {e["kind"] for e in entries} == {"state_machine", "job_queue"}
    resumed = role(run_playbook, "pipeline_pause", timeline=timeline, pipeline_pause_state="resumed")
    assert resumed.returncode == 0, resumed.output
    assert recap(resumed)["changed"] == 1
    assert queue_state(aws) == "ENABLED"
    assert set(statuses(aws).values()) == {"ABORTED"}, "resume never restarts executions"
    assert "upload-20240601-0001" in resumed.stdout

    again = role(run_playbook, "pipeline_pause", timeline=timeline, pipeline_pause_state="resumed")
    assert again.returncode == 0, again.output
    assert recap(again)["changed"] == 0


def test_a_queue_disabled_by_two_incidents(aws, run_playbook, tmp_path):
    """The first resume keeps the queue disabled while the second incident claims it; the last resume enables it."""

    def run_as(incident, **variables):
        return role(
            run_playbook,
            "pipeline_pause",
            timeline=tmp_path / incident / "timeline.jsonl",
            env={"FIREBREAK_INCIDENT_ID": incident},
            **variables,
        )

    first = run_as("INC-A", **VARS)
    assert first.returncode == 0, first.output
    second = run_as("INC-B", pipeline_pause_job_queues=["results-queue"])
    assert second.returncode == 0, second.output
    assert queue_state(aws) == "DISABLED"

    resume_a = run_as("INC-A", pipeline_pause_state="resumed")
    assert resume_a.returncode == 0, resume_a.output
    assert queue_state(aws) == "DISABLED", "INC-B still claims the disabled queue"
    assert "kept results-queue disabled for INC-B" in resume_a.stdout
    assert "upload-20240601-0001" in resume_a.stdout, "INC-A's stopped executions are still listed for re-drive"

    resume_b = run_as("INC-B", pipeline_pause_state="resumed")
    assert resume_b.returncode == 0, resume_b.output
    assert queue_state(aws) == "ENABLED", "the last claimant's resume enables the queue INC-A disabled"
    assert set(statuses(aws).values()) == {"ABORTED"}, "resume never restarts executions"


def test_a_deleted_queue_is_gone_and_the_resume_goes_on(aws, run_playbook, tmp_path):
    client = aws.client("batch")
    results = client.describe_job_queues(jobQueues=["results-queue"])["jobQueues"][0]
    order = [{"order": 1, "computeEnvironment": results["computeEnvironmentOrder"][0]["computeEnvironment"]}]
    spare = client.create_job_queue(
        jobQueueName="spare-queue", state="ENABLED", priority=1, computeEnvironmentOrder=order
    )["jobQueueArn"]
    timeline = tmp_path / "INC-G" / "timeline.jsonl"
    env = {"FIREBREAK_INCIDENT_ID": "INC-G"}
    paused = role(
        run_playbook,
        "pipeline_pause",
        timeline=timeline,
        env=env,
        pipeline_pause_job_queues=["results-queue", "spare-queue"],
    )
    assert paused.returncode == 0, paused.output
    assert queue_state(aws) == "DISABLED"
    client.delete_job_queue(jobQueue=spare)

    resumed = role(run_playbook, "pipeline_pause", timeline=timeline, env=env, pipeline_pause_state="resumed")
    assert resumed.returncode == 0, resumed.output
    assert "gone (recorded as released)" in resumed.stdout and "spare-queue" in resumed.stdout
    assert queue_state(aws) == "ENABLED"
