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
