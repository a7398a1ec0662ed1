"""Drill: the film generation workers are down (seeds/incident-procedures.md, "Film Generation Service Down").

The fault: render jobs pile up in the seeded ``prod-jobs`` queue (messages sent, and CloudWatch's
``ApproximateAgeOfOldestMessage`` for the queue rising to half an hour, answered once by the fault proxy since moto
computes no SQS metrics) while one ``gpu-worker`` instance fails its instance status check (the fault proxy answers
``DescribeInstanceStatus`` with it impaired, as tests/integration/test_ec2_instance_reboot.py does, for the symptom
check's read and the restart's own read; after the reboot moto reports it ok again).

The runbook (``playbooks/queue_workers_down.yml``) must confirm the symptom, reboot the stuck worker (only it), move
the stuck jobs to ``prod-jobs-holding`` (a move, never a purge: every message arrives there) and verify the jobs
queue's oldest message age falls (the queue is empty). The drill asks for the move and confirms its gate.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sandbox.drills import frame_record
from sandbox.seed import queues as seed_queues
from sandbox.seed import workers as seed_workers

PLAYBOOK = "playbooks/queue_workers_down.yml"
DESCRIPTION = "GPU workers stuck, jobs piling up in SQS: reboot the stuck worker, hold the stuck jobs, verify the queue"
JOBS = 5
AGES = (600.0, 1200.0, 1800.0)  # ApproximateAgeOfOldestMessage, oldest datapoint first: rising
# DescribeInstanceStatus reads that see the worker stuck: the symptom check's (check mode) and the restart's own
STUCK_READS = 2


def group_instances(sandbox) -> list[str]:
    groups = sandbox.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[seed_workers.NAME])
    return sorted(i["InstanceId"] for i in groups["AutoScalingGroups"][0]["Instances"])


def queue_url(sandbox, name: str) -> str:
    return sandbox.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]


def visible(sandbox, name: str) -> int:
    attributes = sandbox.client("sqs").get_queue_attributes(
        QueueUrl=queue_url(sandbox, name), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def make_stuck(sandbox, stuck: str, count: int | None = STUCK_READS) -> None:
    """The fault proxy answers DescribeInstanceStatus with ``stuck`` impaired for the next ``count`` reads."""
    items = [
        {
            "instanceId": iid,
            "availabilityZone": "us-east-1a",
            "instanceState": {"code": 16, "name": "running"},
            "instanceStatus": {"status": "impaired" if iid == stuck else "ok"},
            "systemStatus": {"status": "ok"},
        }
        for iid in group_instances(sandbox)
    ]
    sandbox.proxy.add_rule(
        {
            "service": "ec2",
            "action": "DescribeInstanceStatus",
            "fault": "canned",
            "count": count,
            "body": {"instanceStatusSet": items},
            "description": f"{stuck} fails its instance status check",
        }
    )


def make_backlog(sandbox, jobs: int = JOBS, ages=AGES) -> list[str]:
    """Send ``jobs`` render jobs to the jobs queue; CloudWatch answers (once) their age rising. Returns the ids."""
    sqs, url = sandbox.client("sqs"), queue_url(sandbox, seed_queues.JOBS)
    ids = [
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"job": f"render-{n}", "frames": 240}))["MessageId"]
        for n in range(jobs)
    ]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    points = [
        {"Timestamp": now - dt.timedelta(minutes=len(ages) - n), "Maximum": age, "Unit": "Seconds"}
        for n, age in enumerate(ages)
    ]
    sandbox.proxy.add_rule(
        {
            "service": "cloudwatch",
            "action": "GetMetricStatistics",
            "fault": "canned",
            "count": 1,
            "body": {"Label": "ApproximateAgeOfOldestMessage", "Datapoints": points},
            "description": f"{seed_queues.JOBS}: oldest message age rising to {ages[-1]:.0f} s (moto: no SQS metrics)",
        }
    )
    return ids


def inject(sandbox) -> dict:
    """Stick one worker and pile jobs up; return the playbook's extra vars and, under ``_drill``, what ``verify``
    needs."""
    if not (sandbox.manifest or {}).get("aws", {}).get("queues"):
        raise RuntimeError("the sandbox has no worker queues (manifest['aws']['queues']); was it started with AWS?")
    instances = group_instances(sandbox)
    stuck = instances[0]
    make_stuck(sandbox, stuck)
    make_backlog(sandbox)
    if visible(sandbox, seed_queues.JOBS) != JOBS:
        raise RuntimeError(f"fault injection failed: {seed_queues.JOBS} does not hold the {JOBS} jobs sent")
    return {
        "queue_workers_down_asg": seed_workers.NAME,
        "queue_workers_down_queue": seed_queues.JOBS,
        "queue_workers_down_move": "hold",
        "queue_workers_down_holding_queue": seed_queues.HOLDING,
        "queue_workers_down_health_timeout": 30,
        "_drill": {
            "stuck": stuck,
            "healthy": [i for i in instances if i != stuck],
            "jobs": JOBS,
            "fault": (
                f"{JOBS} jobs waiting in {seed_queues.JOBS} (oldest {AGES[-1]:.0f} s and rising) while worker {stuck} "
                f"of {seed_workers.NAME} fails its instance status check"
            ),
        },
    }


def rebooted_by(sandbox, instance_id: str) -> str:
    found = sandbox.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return {t["Key"]: t["Value"] for t in found.get("Tags") or []}.get("firebreak:rebooted-by", "")


def verify(sandbox, context: dict) -> list[str]:
    """Check in moto: the stuck worker (only it) was rebooted, the jobs were held (not lost) and the queue drained."""
    drill = context["_drill"]
    assert rebooted_by(sandbox, drill["stuck"]), f"the stuck worker {drill['stuck']} was not rebooted"
    twice = [i for i in drill["healthy"] if rebooted_by(sandbox, i)]
    assert not twice, f"healthy workers were rebooted too: {twice}"
    assert group_instances(sandbox), f"{seed_workers.NAME} has no instances"
    left = visible(sandbox, seed_queues.JOBS)
    held = visible(sandbox, seed_queues.HOLDING)
    assert left == 0, f"{left} jobs still wait in {seed_queues.JOBS}: they were not moved"
    assert held == drill["jobs"], f"{seed_queues.HOLDING} holds {held} jobs, expected {drill['jobs']} (none lost)"
    return [
        f"worker {drill['stuck']} rebooted (tagged by {rebooted_by(sandbox, drill['stuck'])}), the others left alone",
        f"{held} jobs held in {seed_queues.HOLDING}, {seed_queues.JOBS} empty",
    ]


def verify_record(timeline: Path, report: Path) -> list[str]:
    """The frame's record: declared and resolved, the gates' decisions, the reboot and the move with every id."""
    frame = frame_record(timeline, report, severity_in_report=False)
    moves = [
        rec
        for rec in frame.records
        if rec.get("action") == "firebreak.runbooks.sqs_job_move" and rec["event"] == "task_changed"
    ]
    assert moves and len(moves[-1]["details"]["moved"]) == JOBS, "the job move did not record every message id"
    return [
        "declared and resolved in the timeline",
        f"{len(frame.gates)} gate decision(s)",
        f"{len(moves[-1]['details']['moved'])} moved message ids recorded",
    ]
