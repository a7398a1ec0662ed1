"""The queue_workers_down scenario end to end on the incident frame: inject the drill's fault (jobs piling up in
prod-jobs, a stuck gpu-worker), run the runbook, verify the sandbox (the stuck worker rebooted, the jobs held and not
lost, the queue drained), the lifecycle and action records, the report, --check, the production gate, bad input, the
symptom refusal, a scale (old sizes recorded) and a DLQ re-drive."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from sandbox.drills import queue_workers_down as drill
from sandbox.seed import queues as seed_queues
from sandbox.seed import workers as seed_workers
from tests.integration.proof import first_case_in_make_test
from tests.integration.scenario_helpers import lifecycle, mutating_calls, records

pytestmark = [pytest.mark.integration, pytest.mark.drill]

PLAYBOOK = drill.PLAYBOOK
MUTATING = {
    "RebootInstances",
    "CreateTags",
    "DeleteTags",
    "StartInstanceRefresh",
    "UpdateAutoScalingGroup",
    "SetDesiredCapacity",
    "SendMessage",
    "SendMessageBatch",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ReceiveMessage",  # a receive hides a message and counts towards the dead-letter policy
    "PurgeQueue",
    "CreateQueue",
    "TagQueue",
}


def extra_vars(context: dict) -> dict:
    return {key: value for key, value in context.items() if not key.startswith("_")}


def state(aws) -> dict:
    """What the scenario may change: the group's sizes and instances' tags, and each queue's visible messages."""
    group = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[seed_workers.NAME])
    group = group["AutoScalingGroups"][0]
    ec2 = aws.client("ec2")
    tags = {}
    for iid in sorted(i["InstanceId"] for i in group["Instances"]):
        found = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        tags[iid] = sorted((t["Key"], t["Value"]) for t in found.get("Tags") or [])
    return {
        "sizes": (group["MinSize"], group["DesiredCapacity"], group["MaxSize"]),
        "tags": tags,
        "queues": {name: drill.visible(aws, name) for name in (seed_queues.JOBS, seed_queues.DLQ, seed_queues.HOLDING)},
    }


def test_scenario_reboots_the_stuck_worker_holds_the_jobs_verifies_and_a_rerun_changes_nothing(aws, run_playbook):
    context = drill.inject(aws)
    assert drill.visible(aws, seed_queues.JOBS) == drill.JOBS
    aws.proxy.clear_log()
    run = run_playbook(PLAYBOOK, extra_vars=extra_vars(context))
    assert run.returncode == 0, run.output[-4000:]
    checks = drill.verify(aws, context)
    assert any("5 jobs held in prod-jobs-holding" in line for line in checks)
    assert [a for a in mutating_calls(aws, MUTATING) if a == "RebootInstances"] == ["RebootInstances"]
    assert "PurgeQueue" not in mutating_calls(aws, MUTATING)
    stuck = context["_drill"]["stuck"]
    assert f"rebooted 1 instance(s) of gpu-worker: {stuck}" in run.stdout
    assert "left for a person:" in run.stdout

    # the frame: declared, symptom recorded, mitigations, verified, resolved, reported, sealed, in that order
    declared, resolved = lifecycle(run, "declared"), lifecycle(run, "resolved")
    assert [(d["severity"], d["type"], d["_check_mode"]) for d in declared] == [("P2", "queue_workers_down", False)]
    assert [r["status"] for r in resolved] == ["resolved"]
    assert "moved 5 message(s) from prod-jobs to prod-jobs-holding" in resolved[0]["summary"]
    recs = records(run)
    actions = [r["action"] for r in recs if r["event"] in ("task_ok", "task_changed", "task_failed", "note")]
    real = [
        r["action"]
        for r in recs
        if r["event"] == "task_changed"
        and not r.get("check_mode")
        and r["action"].startswith("firebreak.runbooks.")
        and r["action"] != "firebreak.runbooks.incident_lifecycle"
    ]
    assert real[:2] == ["firebreak.runbooks.ec2_instance_reboot", "firebreak.runbooks.sqs_job_move"], real
    notes = [r["msg"] for r in recs if r["event"] == "note"]
    assert any("symptom: queue prod-jobs: oldest message age 1800.0 s is not falling" in n for n in notes), notes
    assert any(n.startswith("Gate queue-workers-restart passed without approval") for n in notes)
    assert any(n.startswith("Gate queue-workers-job-move passed without approval") for n in notes)
    [move] = [r for r in recs if r["action"] == "firebreak.runbooks.sqs_job_move" and r["event"] == "task_changed"]
    assert len(move["details"]["moved"]) == drill.JOBS  # every message id recorded
    [verified] = [
        r
        for r in recs
        if r["action"] == "firebreak.runbooks.health_verify"
        and r["details"].get("rounds")
        and r["details"]["checks"][0]["verdict"] == "pass"
    ]
    order = [
        actions.index("firebreak.runbooks.sqs_job_move"),
        actions.index("firebreak.runbooks.incident_report"),
        actions.index("firebreak.runbooks.incident_seal"),
    ]
    assert order == sorted(order)
    assert verified["details"]["checks"][0]["kind"] == "sqs"
    report = run.timeline.with_name("report.md")
    assert report.is_file() and "P2" in report.read_text()
    drill.verify_record(run.timeline, report)

    before, seen = state(aws), len(recs)
    aws.proxy.clear_log()
    again = run_playbook(PLAYBOOK, extra_vars=extra_vars(context))
    assert again.returncode == 0, again.output[-4000:]
    changed = [r["action"] for r in records(again)[seen:] if r["event"] == "task_changed" and not r.get("check_mode")]
    assert changed == ["firebreak.runbooks.incident_report"], changed  # the report now covers both runs
    assert state(aws) == before and mutating_calls(aws, MUTATING) == []


def test_verify_fails_when_nothing_was_done(aws):
    context = drill.inject(aws)
    with pytest.raises(AssertionError, match="was not rebooted"):
        drill.verify(aws, context)


def test_check_mode_changes_nothing_and_shows_the_whole_plan(aws, run_playbook):
    context = drill.inject(aws)
    before = state(aws)
    aws.proxy.clear_log()
    run = run_playbook(
        PLAYBOOK, extra_vars={**extra_vars(context), "queue_workers_down_desired": 4}, check=True, diff=True
    )
    assert run.returncode == 0, run.output[-4000:]
    assert state(aws) == before and mutating_calls(aws, MUTATING) == []
    assert all(e["_check_mode"] for e in lifecycle(run)), "a dry run's lifecycle must not count as real"
    assert [e["event"] for e in lifecycle(run)] == ["declared", "update", "resolved"]
    assert not run.timeline.with_name("report.md").exists()
    for predicted in (
        "DRY RUN, nothing changed. restart: check mode: would have rebooted 1 instance(s) of gpu-worker",
        "would move 5 message(s) from prod-jobs to prod-jobs-holding",
        "scale: check mode: would have scaled gpu-worker",
    ):
        assert predicted in " ".join(run.stdout.split()), (predicted, run.stdout[-4000:])


def test_production_stops_before_the_job_move_without_approval_then_an_approval_proceeds(aws, run_playbook):
    context = drill.inject(aws)
    production = {**extra_vars(context), "firebreak_environment": "production"}
    run = run_playbook(PLAYBOOK, extra_vars=production)
    assert run.returncode != 0
    text = " ".join(run.stdout.split())
    assert "gate queue-workers-job-move not confirmed (approval_required in production): nothing was changed" in text
    assert "firebreak_gate_approvals" in text  # says how to confirm
    # the restart runs ungated (the seed does it first); the jobs are not touched
    assert drill.rebooted_by(aws, context["_drill"]["stuck"])
    assert drill.visible(aws, seed_queues.JOBS) == drill.JOBS and drill.visible(aws, seed_queues.HOLDING) == 0

    digest = re.search(r'"queue-workers-job-move": "([0-9a-f]{12})"', run.stdout).group(1)
    approval = {"firebreak_gate_approvals": {"queue-workers-job-move": digest}, "firebreak_gate_approver": "alice"}
    approved = run_playbook(PLAYBOOK, extra_vars={**production, **approval})
    assert approved.returncode == 0, approved.output[-4000:]
    drill.verify(aws, context)
    notes = [r["msg"] for r in records(approved) if r["event"] == "note" and "Gate queue-workers-job-move" in r["msg"]]
    assert notes and "approved by alice" in notes[-1]


def test_healthy_workers_are_refused_before_any_change_then_forced_with_a_recorded_reason(aws, run_playbook):
    before = state(aws)
    aws.proxy.clear_log()
    run = run_playbook(PLAYBOOK)
    assert run.returncode != 0
    text = " ".join(run.stdout.split())
    assert "gpu-worker / prod-jobs do not look down: queue prod-jobs: queue is empty" in text, text[-3000:]
    assert "-e queue_workers_down_force=true -e queue_workers_down_force_reason=" in text
    assert state(aws) == before and mutating_calls(aws, MUTATING) == []
    assert not lifecycle(run, "resolved")

    reason = "renders stall at 0% although the status checks pass"
    forced = run_playbook(
        PLAYBOOK, extra_vars={"queue_workers_down_force": True, "queue_workers_down_force_reason": reason}
    )
    assert forced.returncode == 0, forced.output[-4000:]
    notes = [r["msg"] for r in records(forced) if r["event"] == "note" and reason in (r["msg"] or "")]
    assert notes and notes[0].startswith("Forced by the operator")
    assert state(aws) == before  # nothing stuck, nothing asked: nothing to change


@first_case_in_make_test
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"queue_workers_down_asg": "gpu worker:x"}, 'queue_workers_down_asg "gpu worker:x" is not an Auto Scaling'),
        ({"queue_workers_down_queue": "prod jobs"}, 'queue_workers_down_queue "prod jobs" is not an SQS queue name'),
        ({"queue_workers_down_holding_queue": "prod-jobs"}, "is the jobs queue itself"),
        ({"queue_workers_down_move": "purge"}, "queue_workers_down_move"),
        ({"queue_workers_down_force": True}, "queue_workers_down_force needs a reason"),
    ],
)
def test_bad_input_stops_before_any_call(aws, run_playbook, extra, message):
    context = drill.inject(aws)
    before = state(aws)
    aws.proxy.clear_log()
    run = run_playbook(PLAYBOOK, extra_vars={**extra_vars(context), **extra})
    assert run.returncode != 0, extra
    assert message in " ".join(run.output.split()), (extra, run.output[-2000:])
    assert "Traceback" not in run.output
    assert aws.proxy.log() == [] and state(aws) == before


def test_a_scale_records_the_old_sizes_and_a_dlq_redrive_moves_the_dead_jobs_back(aws, run_playbook):
    context = drill.inject(aws)
    sqs = aws.client("sqs")
    dlq = drill.queue_url(aws, seed_queues.DLQ)
    dead = [sqs.send_message(QueueUrl=dlq, MessageBody=f"dead-{n}")["MessageId"] for n in range(3)]
    # after the drill's rising answer (the symptom), CloudWatch answers the age falling: the restarted and added
    # workers consume the jobs again (nothing consumes in the sandbox, so the metric stands in for them)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    aws.proxy.add_rule(
        {
            "service": "cloudwatch",
            "action": "GetMetricStatistics",
            "fault": "canned",
            "count": None,
            "body": {
                "Label": "ApproximateAgeOfOldestMessage",
                "Datapoints": [
                    {"Timestamp": now - dt.timedelta(minutes=2), "Maximum": 1800.0, "Unit": "Seconds"},
                    {"Timestamp": now - dt.timedelta(minutes=1), "Maximum": 240.0, "Unit": "Seconds"},
                ],
            },
            "description": "prod-jobs: oldest message age falling",
        }
    )
    run = run_playbook(
        PLAYBOOK,
        extra_vars={**extra_vars(context), "queue_workers_down_move": "redrive_dlq", "queue_workers_down_desired": 5},
    )
    assert run.returncode == 0, run.output[-4000:]
    assert "oldest message age 240.0 s and falling" in run.stdout
    group = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[seed_workers.NAME])
    assert group["AutoScalingGroups"][0]["DesiredCapacity"] == 5
    scaled = [
        r
        for r in records(run)
        if r["action"] == "firebreak.runbooks.autoscaling_capacity"
        and r["event"] == "task_changed"
        and not r.get("check_mode")
    ]
    assert scaled and scaled[0]["details"]["containment"], scaled  # the old sizes, for release_containment
    assert drill.visible(aws, seed_queues.DLQ) == 0
    assert drill.visible(aws, seed_queues.JOBS) == drill.JOBS + len(dead)  # re-driven, not lost
    [move] = [
        r for r in records(run) if r["action"] == "firebreak.runbooks.sqs_job_move" and r["event"] == "task_changed"
    ]
    assert sorted(move["details"]["moved"]) == sorted(dead)
