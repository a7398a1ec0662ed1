"""The sqs_job_move role: check mode, converge, idempotence, bad input, against the sandbox's Film Generation queues."""

from __future__ import annotations

import pytest

from tests.integration.containment_helpers import calls, last_seq, recap, role, timeline_records
from tests.integration.test_sqs_job_move import counts, put_jobs, queues

pytestmark = pytest.mark.integration


def state(aws) -> dict:
    q = queues(aws)
    return {name: counts(aws, q[f"{name}_url"]) for name in ("jobs", "dlq", "holding")}


def test_check_mode_changes_nothing(aws, run_playbook):
    q = queues(aws)
    put_jobs(aws, q["jobs_url"], 4)
    before = state(aws)
    seq = last_seq(aws)
    run = role(
        run_playbook,
        "sqs_job_move",
        check=True,
        diff=True,
        sqs_job_move_source_queue=q["jobs_queue"],
        sqs_job_move_destination_queue=q["holding_queue"],
    )
    assert run.returncode == 0, run.output
    assert "would move 4 message(s)" in run.stdout
    assert state(aws) == before
    assert "ReceiveMessage" not in calls(aws, "sqs", seq)


def test_converge_and_a_re_run_that_moves_nothing(aws, run_playbook, tmp_path):
    q = queues(aws)
    ids = put_jobs(aws, q["jobs_url"], 23)
    timeline = tmp_path / "timeline.jsonl"
    variables = {"sqs_job_move_source_queue": q["jobs_queue"], "sqs_job_move_destination_queue": q["holding_queue"]}
    first = role(run_playbook, "sqs_job_move", timeline=timeline, **variables)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    assert state(aws) == {"jobs": (0, 0), "dlq": (0, 0), "holding": (23, 0)}
    [record] = [r for r in timeline_records(timeline) if r["event"] == "task_changed"]
    assert record["details"]["moved"] == ids and record["details"]["step_kind"] == "mitigation"

    second = role(run_playbook, "sqs_job_move", timeline=timeline, **variables)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0, second.stdout
    assert state(aws) == {"jobs": (0, 0), "dlq": (0, 0), "holding": (23, 0)}


def test_re_drive_of_the_dead_letter_queue(aws, run_playbook):
    q = queues(aws)
    put_jobs(aws, q["dlq_url"], 3)
    run = role(run_playbook, "sqs_job_move", sqs_job_move_source_queue=q["dlq"])
    assert run.returncode == 0, run.output
    assert state(aws) == {"jobs": (3, 0), "dlq": (0, 0), "holding": (0, 0)}


def test_the_same_queue_twice_is_refused_before_any_call(aws, run_playbook):
    q = queues(aws)
    put_jobs(aws, q["jobs_url"], 2)
    seq = last_seq(aws)
    run = role(
        run_playbook,
        "sqs_job_move",
        sqs_job_move_source_queue=q["jobs_queue"],
        sqs_job_move_destination_queue=q["jobs_queue"],
    )
    assert run.returncode != 0
    assert "differ from" in run.stdout
    assert calls(aws, "sqs", seq) == [] and state(aws)["jobs"] == (2, 0)
