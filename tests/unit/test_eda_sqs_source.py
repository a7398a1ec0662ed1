"""The durable SQS event source (extensions/eda/plugins/event_source/aws_sqs_durable.py) against moto's SQS
in server mode on 127.0.0.1: a message is deleted only after its run confirmed it, comes back after the
visibility timeout when nobody did, is dispatched once across a crash, poison goes to the dead-letter queue,
events from accounts or sources not allowed are refused and journaled.

Visibility timeouts here are 2 s (moto keeps real time), so a few tests wait a few seconds.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("moto")

import boto3

from plugins.modules.incident_event_ack import acknowledge
from sandbox import CREDENTIALS, REGION, REPO_ROOT, MotoServer, rulebook

SOURCE_PATH = REPO_ROOT / "extensions" / "eda" / "plugins" / "event_source" / "aws_sqs_durable.py"
_spec = importlib.util.spec_from_file_location("aws_sqs_durable", SOURCE_PATH)
src = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(src)

ACCOUNT = "123456789012"  # moto's
ALARM = "firebreak-ecs-running-below-desired"
VT = 2


def alarm_event(
    state="ALARM", when="2026-12-06T16:04:34.000+0000", account=ACCOUNT, name=ALARM, source="aws.cloudwatch"
):
    arn = f"arn:aws:cloudwatch:{REGION}:{account}:alarm:{name}"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": source,
        "account": account,
        "time": when.replace(".000+0000", "Z"),
        "region": REGION,
        "resources": [arn],
        "detail": {
            "alarmName": name,
            "state": {"value": state, "reason": "test", "timestamp": when},
            "previousState": {"value": "OK" if state == "ALARM" else "ALARM", "timestamp": when},
            "configuration": {"metrics": []},
        },
    }


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory):
    server = MotoServer(tmp_path_factory.mktemp("moto-sqs"))
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
def sqs(moto_url):
    return boto3.client(
        "sqs",
        endpoint_url=moto_url,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture
def queue(sqs, request):
    name = f"alarms-{uuid.uuid4().hex[:10]}"
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": str(VT)})["QueueUrl"]
    return name, url


class Engine:
    """Stands in for ansible-rulebook's queue: keeps what the source dispatched."""

    def __init__(self):
        self.events = []

    async def put(self, event):
        self.events.append(event)


def make_source(sqs, queue_name, spool, engine=None, **args):
    args = {
        "queue_name": queue_name,
        "allowed_accounts": [ACCOUNT],
        "visibility_timeout": VT,
        "wait_seconds": 0,
        "spool": str(spool),
        **args,
    }
    return src.DurableSQSSource(engine or Engine(), args, client=sqs)


def counts(sqs, url):
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


async def receive_and_handle(source):
    handled = []
    for message in await asyncio.to_thread(source.receive):
        handled.append(await source.handle(message))
    return handled


def journal(spool):
    return [json.loads(line) for line in (Path(spool) / "journal.jsonl").read_text().splitlines()]


def states(spool, message_id=None):
    return [r["state"] for r in journal(spool) if message_id is None or r.get("message_id") == message_id]


def test_deleted_only_after_the_run_confirmed(sqs, queue, tmp_path):
    name, url = queue
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(alarm_event()))
    source = make_source(sqs, name, tmp_path / "spool")

    async def scenario():
        (event,) = await receive_and_handle(source)
        fb = event["firebreak"]
        assert fb["kind"] == "cloudwatch_alarm" and fb["state"] == "ALARM" and fb["alarm_name"] == ALARM
        assert fb["incident_id"].startswith(f"ALARM-{ALARM}-20261206T160434Z-")
        assert fb["repeat"] is False and fb["redelivery"] is False
        assert fb["spool"] == str((tmp_path / "spool").absolute())
        await source.settle()
        assert counts(sqs, url) == (0, 1)  # in flight, not deleted: no confirmation yet
        before, _, _ = acknowledge(fb["spool"], fb["message_id"], fb["incident_id"], "test")
        assert not before
        await source.settle()
        return fb["message_id"]

    mid = asyncio.run(scenario())
    assert counts(sqs, url) == (0, 0)
    assert states(tmp_path / "spool", mid) == ["received", "queued", "acked", "deleted"]
    # the same message confirmed again (a second run) is refused by the exclusive file
    before, ack, _ = acknowledge(str((tmp_path / "spool").absolute()), mid, "other", "second run")
    assert before and ack["run"] == "test"


def test_unconfirmed_comes_back_after_the_visibility_timeout_and_is_dispatched_once(sqs, queue, tmp_path):
    name, url = queue
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(alarm_event()))
    engine = Engine()

    async def scenario():
        first = make_source(sqs, name, tmp_path / "spool", engine, ack_timeout=0.1)
        (event,) = await receive_and_handle(first)
        await asyncio.sleep(0.2)
        await first.settle()  # ack_timeout passed: stop renewing, let it come back
        assert first.inflight == {}
        assert await receive_and_handle(first) == []  # still invisible
        await asyncio.sleep(VT + 0.5)
        (again,) = await receive_and_handle(first)
        assert again["firebreak"]["message_id"] == event["firebreak"]["message_id"]
        assert again["firebreak"]["receive_count"] == 2
        # the same decision: same incident, not a repeat of itself
        assert again["firebreak"]["incident_id"] == event["firebreak"]["incident_id"]
        assert again["firebreak"]["repeat"] is False and again["firebreak"]["redelivery"] is True
        acknowledge(again["firebreak"]["spool"], again["firebreak"]["message_id"], "x", "test")
        await first.settle()
        await asyncio.sleep(VT + 0.5)
        assert await receive_and_handle(first) == []

    asyncio.run(scenario())
    assert counts(sqs, url) == (0, 0)
    assert len(engine.events) == 2  # dispatched twice, confirmed (acted on) once


def test_pending_run_keeps_its_message_invisible(sqs, queue, tmp_path):
    name, url = queue
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(alarm_event()))
    engine = Engine()

    async def scenario():
        source = make_source(sqs, name, tmp_path / "spool", engine, ack_poll=0.1)
        await receive_and_handle(source)
        settle = asyncio.create_task(source.settle_loop())
        deadline = time.monotonic() + 2 * VT + 1
        while time.monotonic() < deadline:  # longer than two visibility timeouts
            assert await receive_and_handle(source) == []
            await asyncio.sleep(0.3)
        settle.cancel()

    asyncio.run(scenario())
    assert len(engine.events) == 1
    assert counts(sqs, url) == (0, 1)


CRASHING_SOURCE = """
import asyncio, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("src", sys.argv[1])
src = importlib.util.module_from_spec(spec); spec.loader.exec_module(src)

class NeverTakes:  # the rules engine never takes the event: the run is never dispatched
    async def put(self, event):
        await asyncio.Event().wait()

asyncio.run(src.main(NeverTakes(), json.loads(sys.argv[2])))
"""


def test_killed_after_reading_before_dispatch_processed_once_after_restart(sqs, queue, moto_url, tmp_path):
    name, url = queue
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(alarm_event()))
    spool = tmp_path / "spool"
    args = {
        "queue_name": name,
        "allowed_accounts": [ACCOUNT],
        "visibility_timeout": VT,
        "wait_seconds": 1,
        "spool": str(spool),
        "endpoint_url": moto_url,
        "region": REGION,
    }
    env = {**os.environ, **CREDENTIALS}
    proc = subprocess.Popen([sys.executable, "-c", CRASHING_SOURCE, str(SOURCE_PATH), json.dumps(args)], env=env)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "received" not in (
            states(spool) if (spool / "journal.jsonl").exists() else []
        ):
            time.sleep(0.1)
        assert "received" in states(spool), "the source did not read the alert"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert "queued" not in states(spool)
    assert counts(sqs, url) == (0, 1)  # read, not deleted

    engine = Engine()

    async def restart():
        source = make_source(sqs, name, spool, engine, wait_seconds=1)
        runner = asyncio.create_task(source.run())
        deadline = time.monotonic() + VT + 15
        while not engine.events and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert engine.events, "the alert was lost"
        fb = engine.events[0]["firebreak"]
        acknowledge(fb["spool"], fb["message_id"], fb["incident_id"], "run")
        while "deleted" not in states(spool) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(VT + 1)  # nothing comes back
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)

    asyncio.run(restart())
    assert len(engine.events) == 1
    assert engine.events[0]["firebreak"]["redelivery"] is True
    assert counts(sqs, url) == (0, 0)


def test_confirmed_but_not_deleted_before_a_crash_is_deleted_without_a_second_dispatch(sqs, queue, tmp_path):
    name, url = queue
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(alarm_event()))
    engine = Engine()

    async def scenario():
        first = make_source(sqs, name, tmp_path / "spool", engine)
        (event,) = await receive_and_handle(first)
        acknowledge(event["firebreak"]["spool"], event["firebreak"]["message_id"], "x", "run")
        first.journal.close()  # the process dies before it sees the confirmation
        await asyncio.sleep(VT + 0.5)
        second = make_source(sqs, name, tmp_path / "spool", engine)
        assert await receive_and_handle(second) == [None]

    asyncio.run(scenario())
    assert len(engine.events) == 1
    assert states(tmp_path / "spool")[-2:] == ["duplicate", "deleted"]
    assert counts(sqs, url) == (0, 0)


def test_poison_message_is_left_to_the_dead_letter_queue(sqs, queue, tmp_path):
    name, url = queue
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})}
    )
    sqs.send_message(QueueUrl=url, MessageBody="{not json")
    engine = Engine()

    async def scenario():
        source = make_source(sqs, name, tmp_path / "spool", engine)
        source.check_queue()
        for _ in range(3):
            await receive_and_handle(source)
            await asyncio.sleep(VT + 0.3)

    asyncio.run(scenario())
    assert engine.events == []
    assert states(tmp_path / "spool").count("poison") == 2
    assert json.loads(journal(tmp_path / "spool")[0]["redrive_policy"])["maxReceiveCount"] == 2
    assert counts(sqs, url) == (0, 0)
    moved = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0).get("Messages", [])
    assert [m["Body"] for m in moved] == ["{not json"]


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (alarm_event(account="999999999999"), "account '999999999999' is not allowed"),
        (alarm_event(source="aws.ec2"), "source 'aws.ec2' is not allowed"),
        (
            {**alarm_event(), "resources": ["arn:aws:cloudwatch:us-east-1:999999999999:alarm:x"]},
            "belongs to account 999999999999",
        ),
    ],
    ids=["account", "source", "resource-account"],
)
def test_event_not_allowed_is_refused_journaled_and_deleted(sqs, queue, tmp_path, event, reason):
    name, url = queue
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
    engine = Engine()
    source = make_source(sqs, name, tmp_path / "spool", engine)
    assert asyncio.run(receive_and_handle(source)) == [None]
    assert engine.events == []
    (refused,) = [r for r in journal(tmp_path / "spool") if r["state"] == "refused"]
    assert reason in refused["reason"]
    assert counts(sqs, url) == (0, 0)


def test_repeats_within_the_window_go_to_the_same_incident(sqs, queue, tmp_path):
    name, url = queue
    events = [
        alarm_event(when="2026-12-06T16:00:00.000+0000"),
        alarm_event(when="2026-12-06T16:10:00.000+0000"),  # flapped back within the window
        alarm_event(state="OK", when="2026-12-06T16:20:00.000+0000"),
        alarm_event(when="2026-12-06T19:00:00.000+0000"),  # hours later: a new incident
    ]
    engine = Engine()

    async def scenario():
        source = make_source(sqs, name, tmp_path / "spool", engine, incident_window=1800)
        for event in events:
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
            await receive_and_handle(source)
        source.journal.close()

    asyncio.run(scenario())
    got = [(e["firebreak"]["state"], e["firebreak"]["repeat"], e["firebreak"]["incident_id"]) for e in engine.events]
    assert [g[:2] for g in got] == [("ALARM", False), ("ALARM", True), ("OK", True), ("ALARM", False)]
    assert got[0][2] == got[1][2] == got[2][2] != got[3][2]
    assert got[3][2].startswith(f"ALARM-{ALARM}-20261206T190000Z-")
    # the window survives a restart: it is rebuilt from the journal
    source = make_source(sqs, name, tmp_path / "spool")
    assert source.journal.incidents[events[0]["resources"][0]]["incident_id"] == got[3][2]


def test_same_eventbridge_event_twice_is_dispatched_once(sqs, queue, tmp_path):
    name, url = queue
    event = alarm_event()
    for _ in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
    engine = Engine()
    source = make_source(sqs, name, tmp_path / "spool", engine)
    asyncio.run(receive_and_handle(source))
    asyncio.run(receive_and_handle(source))
    assert len(engine.events) == 1
    assert "duplicate" in states(tmp_path / "spool")


def test_one_source_per_spool_and_arguments_checked(sqs, queue, tmp_path):
    name, _ = queue
    make_source(sqs, name, tmp_path / "spool")
    with pytest.raises(src.SourceConfigError, match="another source"):
        make_source(sqs, name, tmp_path / "spool")
    with pytest.raises(src.SourceConfigError, match="allowed_accounts is required"):
        src.DurableSQSSource(Engine(), {"queue_name": name, "spool": str(tmp_path / "s2")}, client=sqs)
    with pytest.raises(src.SourceConfigError, match="12-digit"):
        make_source(sqs, name, tmp_path / "s3", allowed_accounts=["prod"])


def test_sns_wrapped_event_and_time_formats():
    inner = alarm_event()
    assert src.unwrap(json.dumps({"Type": "Notification", "Message": json.dumps(inner)})) == inner
    assert src.parse_time("2026-12-06T16:04:34.985+0000").isoformat() == "2026-12-06T16:04:34.985000+00:00"
    assert src.parse_time("2026-12-06T16:04:34Z").isoformat() == "2026-12-06T16:04:34+00:00"
    assert src.parse_time("yesterday") is None
    with pytest.raises(ValueError):
        src.unwrap("[1, 2]")


def test_journal_and_confirmations_older_than_the_retention_are_dropped(tmp_path):
    spool = tmp_path / "spool"
    journal_ = src.Journal(spool)
    journal_.append("received", "old-message", incident_id="INC-old")
    journal_.append("received", "new-message", incident_id="INC-new")
    journal_.close()
    lines = (spool / "journal.jsonl").read_text().splitlines()
    old = json.loads(lines[0])
    old["epoch"] -= 15 * 86400
    (spool / "journal.jsonl").write_text("\n".join([json.dumps(old), lines[1], '{"torn']))  # a torn last line
    spent = spool / "acks" / "old-message.json"
    spent.write_text("{}")
    os.utime(spent, (time.time() - 15 * 86400,) * 2)
    fresh = spool / "acks" / "new-message.json"
    fresh.write_text("{}")
    reopened = src.Journal(spool, retention_days=14)
    assert set(reopened.messages) == {"new-message"}
    assert not spent.exists() and fresh.exists()
    assert len((spool / "journal.jsonl").read_text().splitlines()) == 1


def test_confirmation_refuses_bad_input_and_writes_nothing_in_check_mode(tmp_path):
    spool = tmp_path / "spool"
    with pytest.raises(ValueError, match="acknowledgement directory"):
        acknowledge(str(spool), "abc")  # no source has made this spool
    (spool / "acks").mkdir(parents=True)
    with pytest.raises(ValueError, match="not an SQS message id"):
        acknowledge(str(spool), "../../etc/passwd")
    before, ack, path = acknowledge(str(spool), "abc", "INC-1", "run", check_mode=True)
    assert not before and ack["incident_id"] == "INC-1" and not os.path.exists(path)
    assert acknowledge(str(spool), "abc", "INC-1", "run")[0] is False
    assert acknowledge(str(spool), "abc", "INC-1", "again")[0] is True
    assert sorted(p.name for p in (spool / "acks").iterdir()) == ["abc.json"]  # no temporary file left


def test_repeats_are_batched_and_the_batch_confirmation_deletes_every_message(sqs, queue, tmp_path):
    """An alert storm: the first event alone, the repeats held and dispatched as one event listing each; the run's
    confirmation of the batch's first message deletes them all. An OK is batched apart from the ALARMs."""
    name, url = queue
    times = [f"2026-12-06T16:04:{34 + i:02d}.000+0000" for i in range(6)]
    events = [alarm_event(when=t) for t in times] + [alarm_event(state="OK", when="2026-12-06T16:05:00.000+0000")]
    engine = Engine()

    async def scenario():
        source = make_source(
            sqs, name, tmp_path / "spool", engine, repeat_batch_seconds=0.5, repeat_batch_max=3, visibility_timeout=30
        )
        for event in events:
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
            await receive_and_handle(source)
        # first dispatched alone; 3 repeats made a full batch at once; 2 ALARM repeats and the OK are still held
        assert [len(e["firebreak"].get("batch", [])) for e in engine.events] == [0, 3]
        await asyncio.sleep(0.6)
        await source.settle()  # the held batches are due
        assert sorted(len(e["firebreak"]["batch"]) for e in engine.events[2:]) == [1, 2]
        for dispatched in engine.events:
            fb = dispatched["firebreak"]
            acknowledge(fb["spool"], fb["message_id"], fb["incident_id"], "test")
        await source.settle()
        source.journal.close()

    asyncio.run(scenario())
    (first, full, *rest) = [e["firebreak"] for e in engine.events]
    assert first["repeat"] is False and "batch" not in first
    assert full["repeat"] is True and full["message_id"] == full["batch"][0]["message_id"]
    assert [b["event_id"] for b in full["batch"]] == [e["id"] for e in events[1:4]]
    assert {fb["batch"][0]["state"] for fb in rest} == {"ALARM", "OK"}
    assert {fb["incident_id"] for fb in [first, full, *rest]} == {first["incident_id"]}
    mids = {r["message_id"] for r in journal(tmp_path / "spool") if r["state"] == "received"}
    assert len(mids) == len(events)
    for mid in mids:
        assert states(tmp_path / "spool", mid) == ["received", "queued", "acked", "deleted"]
    assert counts(sqs, url) == (0, 0)


def test_a_batch_member_back_after_a_crash_is_deleted_when_its_batch_was_confirmed(sqs, queue, tmp_path):
    name, url = queue
    for second in (34, 35, 36):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(alarm_event(when=f"2026-12-06T16:04:{second}.000+0000")))
    engine = Engine()

    async def scenario():
        first = make_source(sqs, name, tmp_path / "spool", engine, repeat_batch_seconds=60, repeat_batch_max=2)
        for _ in range(3):
            await receive_and_handle(first)
        _, batch = engine.events
        acknowledge(batch["firebreak"]["spool"], batch["firebreak"]["message_id"], "x", "run")
        first.journal.close()  # dies before it sees the confirmation: both repeats come back
        await asyncio.sleep(VT + 0.5)
        again = make_source(sqs, name, tmp_path / "spool", engine, repeat_batch_seconds=60, repeat_batch_max=2)
        handled = []
        for _ in range(3):
            handled += await receive_and_handle(again)
        return batch["firebreak"]["batch"], handled

    members, handled = asyncio.run(scenario())
    # only the unconfirmed first event is dispatched again; the confirmed batch's members are not
    assert len([h for h in handled if h is not None]) == 1
    (redelivered,) = [e["firebreak"] for e in engine.events[2:]]
    assert redelivered["redelivery"] is True and redelivered["repeat"] is False and "batch" not in redelivered
    for member in members:
        assert states(tmp_path / "spool", member["message_id"])[-2:] == ["duplicate", "deleted"]


def guardduty_event(severity=8.0, finding_id="a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6", user="deploy-bot"):
    """The shared builder (sandbox/rulebook.py) with this file's finding: a fixed id, an instance credential type."""
    return rulebook.guardduty_event(
        user=user,
        severity=severity,
        finding_id=finding_id,
        finding_type="UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
    )


def ecs_deployment_event(event_name="SERVICE_DEPLOYMENT_FAILED"):
    """An ECS deployment state change (ECS developer guide, "Amazon ECS service deployment state change events")."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECS Deployment State Change",
        "source": "aws.ecs",
        "account": ACCOUNT,
        "time": "2026-12-06T16:20:00Z",
        "region": REGION,
        "resources": [f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/web-cluster/api"],
        "detail": {
            "eventType": "ERROR",
            "eventName": event_name,
            "deploymentId": "ecs-svc/1234567890123456789",
            "updatedAt": "2026-12-06T16:19:58.000Z",
            "reason": "ECS deployment circuit breaker: tasks failed to start.",
        },
    }


@pytest.mark.parametrize(
    ("score", "label", "severity"),
    [
        (10, "Critical", "P1"),
        (9.0, "Critical", "P1"),
        (8.9, "High", "P2"),
        (7, "High", "P2"),
        (6.9, "Medium", "P3"),
        (4.0, "Medium", "P3"),
        (3.9, "Low", "P4"),
        (1, "Low", "P4"),
        ("high", "Unknown", "P3"),
        (None, "Unknown", "P3"),
    ],
)
def test_guardduty_severity_bands_as_the_user_guide_gives_them(score, label, severity):
    assert src.finding_severity(score) == (label, severity)


def test_a_guardduty_finding_is_described_with_its_principal_and_one_incident_per_finding():
    event = guardduty_event()
    info = src.describe(event)
    assert info["kind"] == "guardduty_finding"
    assert (info["finding_severity"], info["severity"]) == ("High", "P2")
    assert (info["resource_type"], info["access_key_id"], info["principal"]) == (
        "AccessKey",
        "AKIAEXAMPLE123",
        "deploy-bot",
    )
    assert info["state_time"] == "2026-12-06T16:04:00.000Z"
    assert src.refusal(event, info, {ACCOUNT}, {"aws.guardduty"}, set()) is None
    assert "aws.guardduty" in src.refusal(event, info, {ACCOUNT}, {"aws.cloudwatch"}, set())
    # an update of the same finding (GuardDuty re-sends it with a new event id) is the same incident
    again = src.describe(guardduty_event(severity=8.5))
    key = src.dedupe_key(info, "m-1")
    assert key == src.dedupe_key(again, "m-2") == "guardduty:a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
    incident = src.derive_incident_id("ALERT", info, key, src.parse_time(info["state_time"]))
    # the finding type (its first 64 path-safe characters), the first time GuardDuty saw the activity, the key's hash
    assert re.fullmatch(
        r"ALERT-UnauthorizedAccess-IAMUser-InstanceCredentialExfiltration\.Outsid-20261206T160400Z-[0-9a-f]{8}",
        incident,
    )
    assert "/" not in incident and ":" not in incident


def test_an_ecs_deployment_failure_names_its_cluster_and_service():
    info = src.describe(ecs_deployment_event())
    assert info["kind"] == "ecs_deployment"
    assert (info["event_name"], info["cluster"], info["service"]) == ("SERVICE_DEPLOYMENT_FAILED", "web-cluster", "api")
    assert src.dedupe_key(info, "m-1") == f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/web-cluster/api"
    odd = ecs_deployment_event()
    odd["resources"] = ["not-an-arn"]
    assert src.describe(odd)["cluster"] == ""  # nothing guessed; the route needs the cluster, so it does not match
