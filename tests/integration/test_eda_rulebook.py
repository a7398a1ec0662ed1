"""ansible-rulebook with extensions/eda/rulebooks/service_down.yml against the sandbox: a CloudWatch alarm
state change put on the SQS queue starts service_down, and the message is deleted only after the run
confirmed it; killed right after reading the alert, a restarted rulebook acts on it once.

Needs a Java 17+ runtime (ansible-rulebook's rules engine); skipped without one.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from sandbox import REPO_ROOT
from sandbox.drills import service_down
from sandbox.rulebook import (
    ACCOUNT,
    ALARM,
    BIN,
    Rulebook,
    alarm_event,
    in_queue,
    make_alarm_queue,
    rollbacks,
    rulebook_available,
    runs_settled,
    timeline,
)

pytestmark = pytest.mark.integration

if not rulebook_available():
    pytest.skip("ansible-rulebook and a Java 17+ runtime are needed", allow_module_level=True)


@pytest.fixture
def alarm_queue(aws):
    return make_alarm_queue(aws)


def test_alarm_runs_service_down_and_the_message_is_deleted_only_after(aws, alarm_queue, tmp_path):
    sqs, name, url = alarm_queue
    ecs = aws.manifest["aws"]["ecs"]
    service_down.inject(aws)  # the bad deploy the alarm is about (service_down confirms the symptom before acting)
    rulebook = Rulebook(aws, tmp_path, name).start()
    try:
        sent = time.time()
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(alarm_event(aws)))
        rulebook.wait_for(lambda: "queued" in rulebook.states(), 30, "the alert was not dispatched")
        assert in_queue(sqs, url) == 1  # dispatched, not deleted
        rulebook.wait_for(lambda: "deleted" in rulebook.states(), 120, "the message was not deleted")
        deleted = time.time()
        # the alarm again a minute later (a repeat), then its resolution: recorded on the same incident, not acted on
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(alarm_event(aws, later=60)))
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(alarm_event(aws, "OK", later=120)))
        rulebook.wait_for(
            lambda: rulebook.states().count("deleted") == 3, 120, "the repeat and the OK were not recorded"
        )
        incident_id = next(r["incident_id"] for r in rulebook.journal() if r["state"] == "received")
        rulebook.wait_for(lambda: runs_settled(rulebook, incident_id), 60, "a run did not end")
    finally:
        rulebook.kill(signal.SIGTERM)

    journal = rulebook.journal()
    alarm_id = next(r["message_id"] for r in journal if r["state"] == "received")
    assert rulebook.states(alarm_id) == ["received", "queued", "acked", "deleted"]
    incident_id = next(r["incident_id"] for r in journal if r["state"] == "received")
    assert incident_id.startswith(f"ALARM-{ALARM}-")
    records = timeline(rulebook, incident_id)
    acks = [r for r in records if (r.get("action") or "").endswith("incident_event_ack")]
    # the alert's notes (the runbook writes its own: the gate's decision, service_down's decision-tree branch)
    notes = [r for r in records if r["event"] == "note" and r["msg"].lstrip().startswith("Alert received")]
    assert len(acks) == 3 and len(notes) == 3  # the ALARM, the repeat and the OK, all on one incident
    assert "acting: service_down" in notes[0]["msg"]
    assert all("recorded, not acted on" in n["msg"] for n in notes[1:])
    assert sum("a repeat within the incident window" in n["msg"] for n in notes) == 2
    # recorded (note), then confirmed, then deleted, and the runbook acted once
    assert notes[0]["seq"] < acks[0]["seq"]
    acked = next(r for r in journal if r["state"] == "acked" and r["message_id"] == alarm_id)
    deleted_rec = next(r for r in journal if r["state"] == "deleted" and r["message_id"] == alarm_id)
    assert acked["acked_at"] <= deleted_rec["ts"]
    (rollback,) = rollbacks(records)
    # the runbook's own report, written from its verified timeline beside it: resolved, recovery reached
    facts = json.loads((rulebook.incidents / incident_id / "report.json").read_text())
    assert facts["incident_id"] == incident_id and facts["resolved"] is True, facts.get("status")
    assert facts["clocks"]["mitigation"]["reached"] and facts["clocks"]["recovery"]["reached"], facts["clocks"]
    service = aws.client("ecs").describe_services(cluster=ecs["cluster"], services=[ecs["service"]])["services"][0]
    assert service["taskDefinition"].endswith(f":{ecs['current']}")  # the last good revision again
    assert in_queue(sqs, url) == 0
    rolled = datetime.datetime.fromisoformat(rollback["ts"].replace("Z", "+00:00")).timestamp()
    # the runbook's UpdateService calls, after the alarm was sent (the seed sets the circuit breaker with one)
    updates = [
        e
        for e in aws.proxy.log()
        if e["service"] == "ecs"
        and e["action"] == "UpdateService"
        and datetime.datetime.fromisoformat(e["time"]).timestamp() >= sent
    ]
    (update,) = updates
    mitigated = datetime.datetime.fromisoformat(update["time"]).timestamp()
    # DESIGN.md's target for the first mitigating call is 10 s; reported here, measured, never asserted
    print(
        f"alarm sent -> message deleted {deleted - sent:.1f}s, -> ecs UpdateService (first mitigating call) "
        f"{mitigated - sent:.1f}s, -> rollback recorded {rolled - sent:.1f}s"
    )


def test_killed_right_after_reading_the_alert_acts_once_after_restart(aws, alarm_queue, tmp_path):
    sqs, name, url = alarm_queue
    service_down.inject(aws)  # the bad deploy the alarm is about
    first = Rulebook(aws, tmp_path, name, visibility=5).start("first")
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(alarm_event(aws)))
    try:
        first.wait_for(lambda: "received" in first.states(), 30, "the alert was not read")
    finally:
        first.kill()  # SIGKILL to the whole process group, a few milliseconds after the read
    assert "deleted" not in first.states()
    assert in_queue(sqs, url) == 1

    # restarted, loading the source from the development directory (-S) this time
    second = Rulebook(aws, tmp_path, name, visibility=5, source_dir=True).start("second")
    try:
        second.wait_for(lambda: "deleted" in second.states(), 120, "the alert was lost")
        incident_id = next(r["incident_id"] for r in second.journal() if r["state"] == "received")

        def rolled_back():
            try:
                return bool(rollbacks(timeline(second, incident_id)))
            except (OSError, ValueError):  # not written yet, or a line being appended
                return False

        # the message is deleted once the alert is confirmed, before the runbook's frame reaches its rollback
        second.wait_for(rolled_back, 120, "the runbook did not roll back")
        time.sleep(8)  # longer than the visibility timeout: nothing comes back
    finally:
        second.kill(signal.SIGTERM)
    records = timeline(second, incident_id)
    assert len(rollbacks(records)) == 1, [
        (r["event"], r.get("task"), (r.get("msg") or "")[:300])
        for r in records
        if r["event"] in ("task_failed", "note")
    ]
    assert in_queue(sqs, url) == 0
    states = second.states()
    assert states.count("deleted") == 1
    # the killed run was either never dispatched (dispatched again now) or its orphaned playbook confirmed it
    # (deleted now as a duplicate); either way one rollback
    print(f"after the kill: {states}")


def test_the_cloudformation_template_routes_alarm_changes_to_the_queue(aws):
    """extensions/eda/aws/alarm-queue.cfn.yml in the sandbox: the stack builds, the rule sends only alarm state
    changes of the prefix to the queue, the queue has the redrive policy. (moto evaluates no queue policy.)"""
    template = (REPO_ROOT / "extensions" / "eda" / "aws" / "alarm-queue.cfn.yml").read_text()
    cfn = aws.client("cloudformation")
    stack = f"firebreak-alarms-{uuid.uuid4().hex[:6]}"
    cfn.create_stack(
        StackName=stack,
        TemplateBody=template,
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[
            {"ParameterKey": "QueueName", "ParameterValue": stack},
            {"ParameterKey": "AlarmNamePrefix", "ParameterValue": "firebreak-"},
        ],
    )
    (described,) = cfn.describe_stacks(StackName=stack)["Stacks"]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=outputs["QueueName"])["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert json.loads(attrs["RedrivePolicy"])["maxReceiveCount"] == 5
    events = aws.client("events")
    for name, source, detail_type in [
        (ALARM, "aws.cloudwatch", "CloudWatch Alarm State Change"),
        ("other-alarm", "aws.cloudwatch", "CloudWatch Alarm State Change"),
        (ALARM, "aws.ec2", "EC2 Instance State-change Notification"),
    ]:
        detail = {"alarmName": name, "state": {"value": "ALARM"}}
        entry = {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail)}
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    # GuardDuty findings from MinFindingSeverity (4) and ECS deployment failures, nothing else of theirs
    for source, detail_type, detail in [
        ("aws.guardduty", "GuardDuty Finding", {"id": "high", "severity": 8.0}),
        ("aws.guardduty", "GuardDuty Finding", {"id": "low", "severity": 2.0}),
        ("aws.ecs", "ECS Deployment State Change", {"eventName": "SERVICE_DEPLOYMENT_FAILED"}),
        ("aws.ecs", "ECS Deployment State Change", {"eventName": "SERVICE_DEPLOYMENT_COMPLETED"}),
    ]:
        entry = {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail)}
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    bodies = []
    for _ in range(3):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        bodies += [json.loads(m["Body"]) for m in messages]
    delivered = sorted(
        (b["source"], b["detail"].get("alarmName") or b["detail"].get("id") or b["detail"].get("eventName"))
        for b in bodies
    )
    assert delivered == [
        ("aws.cloudwatch", ALARM),
        ("aws.ecs", "SERVICE_DEPLOYMENT_FAILED"),
        ("aws.guardduty", "high"),
    ]


def test_sandbox_alarm_puts_an_accepted_state_change_on_the_seeded_queue(aws):
    """``python -m sandbox.alarm`` (moto emits no alarm events): the seeded queue gets an event the source accepts."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "aws_sqs_durable", REPO_ROOT / "extensions" / "eda" / "plugins" / "event_source" / "aws_sqs_durable.py"
    )
    source = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(source)
    env = {**os.environ, **aws.env()}
    sent = subprocess.run(
        [sys.executable, "-m", "sandbox.alarm", ALARM, "--state", "OK"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stderr
    queue = aws.manifest["aws"]["alarm_queue"]
    (message,) = aws.client("sqs").receive_message(QueueUrl=queue["queue_url"], WaitTimeSeconds=1)["Messages"]
    event = source.unwrap(message["Body"])
    info = source.describe(event)
    assert source.refusal(event, info, {ACCOUNT}, {"aws.cloudwatch"}, set()) is None
    assert (info["kind"], info["alarm_name"], info["state"]) == ("cloudwatch_alarm", ALARM, "OK")
    ecs = aws.manifest["aws"]["ecs"]
    assert info["dimensions"] == {"ClusterName": ecs["cluster"], "ServiceName": ecs["service"]}


def test_the_alert_playbook_refuses_a_timeline_that_would_vanish(tmp_path):
    """Without FIREBREAK_INCIDENTS_DIR (or FIREBREAK_TIMELINE) the run fails before confirming: the message stays."""
    spool = tmp_path / "spool"
    (spool / "acks").mkdir(parents=True)
    extra = {
        "incident_id": "ALARM-test",
        "ansible_eda": {"event": {"firebreak": {"message_id": "m-1", "spool": str(spool)}}},
    }
    env = {k: v for k, v in os.environ.items() if k not in ("FIREBREAK_INCIDENTS_DIR", "FIREBREAK_TIMELINE")}
    env.update(ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    run = subprocess.run(
        [str(BIN / "ansible-playbook"), str(REPO_ROOT / "playbooks" / "eda_alert.yml"), "-e", json.dumps(extra)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "Set FIREBREAK_INCIDENTS_DIR" in run.stdout
    assert list((spool / "acks").iterdir()) == []
