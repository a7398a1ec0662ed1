"""The alert storm: 50 state changes of one alarm to ALARM within 10 s (distinct EventBridge ids) on the queue,
the real ansible-rulebook with the durable source and extensions/eda/rulebooks/service_down.yml: one scenario run
(one ECS UpdateService reaching the fault proxy), one incident whose verified timeline records all 50 events,
every message deleted and journaled.

The first event starts service_down; the 49 repeats are held by the source for firebreak_repeat_batch_seconds
and recorded in batches (one eda_alert.yml run and one timeline note per batch, listing each message), so the
storm costs a few playbook runs instead of 50. Needs a Java 17+ runtime; skipped without one.
"""

from __future__ import annotations

import math
import os
import signal
import time

import pytest
import yaml

from sandbox.drills import service_down
from sandbox.rulebook import (
    ALARM,
    SANDBOX_VARS,
    Rulebook,
    in_queue,
    make_alarm_queue,
    proxy_calls,
    proxy_seq,
    rulebook_available,
    runs_settled,
    send_all,
    storm_events,
    verified_timeline,
)

pytestmark = [pytest.mark.integration, pytest.mark.proof]  # a 50-event storm: load (make proof)

if not rulebook_available():
    pytest.skip("ansible-rulebook and a Java 17+ runtime are needed", allow_module_level=True)

STORM = 50


def test_fifty_duplicate_alarms_one_run_one_timeline_holding_all(aws, tmp_path):
    sqs, name, url = make_alarm_queue(aws)
    ecs = aws.manifest["aws"]["ecs"]
    batch_max = yaml.safe_load(SANDBOX_VARS.read_text())["firebreak_repeat_batch_max"]
    context = service_down.inject(aws)  # the bad deploy the alarm is about (service_down confirms it before acting)
    rulebook = Rulebook(aws, tmp_path, name).start()
    seq = proxy_seq(aws)
    events = storm_events(aws, STORM, spread=10.0)
    try:
        started = time.monotonic()
        message_ids = send_all(sqs, url, events)
        rulebook.wait_for(
            lambda: rulebook.states().count("deleted") >= STORM, 170, "not every message of the storm was deleted"
        )
        # the acting run confirmed before it acted, and every run before its last record: wait for their ends
        incident_id = next(r["incident_id"] for r in rulebook.journal() if r["state"] == "received")
        rulebook.wait_for(lambda: runs_settled(rulebook, incident_id), 120, "the runs did not end")
        elapsed = time.monotonic() - started
    finally:
        rulebook.kill(signal.SIGTERM)

    # the journal accounts for every message: one incident, one first event, 49 repeats, all confirmed and deleted
    journal = rulebook.journal()
    received = [r for r in journal if r["state"] == "received"]
    assert sorted(r["message_id"] for r in received) == sorted(message_ids)
    assert {r["incident_id"] for r in received} == {incident_id}
    assert incident_id.startswith(f"ALARM-{ALARM}-")
    assert [r["repeat"] for r in received].count(False) == 1
    for mid in message_ids:
        assert rulebook.states(mid) == ["received", "queued", "acked", "deleted"], mid
    assert not [r for r in journal if r["state"] in ("refused", "duplicate", "poison", "unconfirmed", "delete_failed")]
    assert in_queue(sqs, url) == 0

    # one scenario run: one mitigating call after the storm began, the service rolled back once
    updates = proxy_calls(aws, "ecs", "UpdateService", after_seq=seq)
    assert len(updates) == 1, updates
    service = aws.client("ecs").describe_services(cluster=ecs["cluster"], services=[ecs["service"]])["services"][0]
    assert service["taskDefinition"].endswith(f":{ecs['current']}"), context["_drill"]  # back on the good revision

    # one timeline, its chain verified, holding all 50 events
    records = verified_timeline(rulebook, incident_id)
    assert {r["incident_id"] for r in records} == {incident_id}
    starts = [os.path.basename(r["playbook"]) for r in records if r["event"] == "playbook_start"]
    assert starts.count("eda_service_down.yml") == 1
    batches = len(starts) - 1
    assert set(starts) == {"eda_service_down.yml", "eda_alert.yml"}
    assert 1 <= batches <= STORM // 2, starts  # batched: a few recording runs, not 49
    assert batches >= math.ceil((STORM - 1) / batch_max)
    rollbacks = [r for r in records if r["event"] == "task_changed" and r["action"].endswith("ecs_service_rollback")]
    assert len(rollbacks) == 1
    notes = [r for r in records if r["event"] == "note" and "Alert received" in r["msg"]]
    assert len(notes) == 1 + batches
    assert "acting: service_down" in notes[0]["msg"] and "first event of this incident" in notes[0]["msg"]
    text = "\n".join(n["msg"] for n in notes)
    for mid in message_ids:
        assert f"SQS message {mid}" in text, mid
    first_event = next(r["event_id"] for r in received if not r["repeat"])
    for event in events:  # each repeat listed with its EventBridge id
        assert event["id"] == first_event or f"event {event['id']}" in text, event["id"]
    acks = [r for r in records if (r.get("action") or "").endswith("incident_event_ack")]
    assert len(acks) == 1 + batches
    print(notes[1]["msg"][:600])
    print(f"storm of {STORM}: {batches} recording runs after the acting one; all deleted after {elapsed:.1f}s")
