"""Benchmark: from an alarm's state change to the first mitigating call and to verified recovery, event-driven.

    python -m bench.run --only eda

The sandbox deploys a bad revision to the seeded ECS service (the service_down drill's fault); the real
``ansible-rulebook`` runs ``extensions/eda/rulebooks/service_down.yml`` with the durable SQS source. The clock
starts when the alarm goes to ALARM (``set_alarm_state``; moto emits no EventBridge event for it, so the bench
then puts the event on the queue as the EventBridge rule would, like ``python -m sandbox.alarm``). Measured:

- to the message read by the source (its journal's ``received``);
- to the first mitigating call: ECS ``UpdateService`` reaching the fault proxy (target <= 10 s);
- to verified recovery: the scenario's health verification recorded as passed on the incident timeline, and
  the run finished (``playbook_end``); the drill's own check of the sandbox after it.

Floor, measured in the same run: an empty ``ansible-playbook`` (Ansible's start-up, which the rulebook's run pays
once before its first task). One run: the rulebook and its Java start-up are not timed.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sandbox import REPO_ROOT
from sandbox.drills import service_down
from sandbox.rulebook import (
    ALARM,
    Rulebook,
    alarm_event,
    in_queue,
    make_alarm_queue,
    proxy_calls,
    proxy_seq,
    proxy_time,
    record_time,
    rulebook_available,
    verified_timeline,
)

BIN = Path(sys.executable).parent
TARGETS = {"first_mitigation_s": 10.0}


def empty_playbook(env: dict, runs: int = 3) -> float:
    """Median seconds of an ansible-playbook run that does nothing (Ansible's start-up on this machine, now)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [str(BIN / "ansible-playbook"), "tests/integration/playbooks/noop.yml"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            check=True,
        )
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 3)


def _verified(records: list[dict]) -> dict | None:
    """The scenario's health verification passing: the first task_ok after the rollback whose task verifies."""
    rolled = False
    for rec in records:
        if rec["event"] == "task_changed" and (rec.get("action") or "").endswith("ecs_service_rollback"):
            rolled = True
        task = (rec.get("task") or "").lower()
        if rolled and rec["event"] == "task_ok" and ("verify" in task or "recovery" in task):
            return rec
    return None


def measure(box, workdir: Path) -> dict:
    """One alarm -> rulebook -> service_down run; seconds from the state change to each milestone."""
    box.reset_aws()
    context = service_down.inject(box)
    sqs, name, url = make_alarm_queue(box)
    rulebook = Rulebook(box, workdir, name).start("bench-eda")
    try:
        seq = proxy_seq(box)
        cloudwatch = box.client("cloudwatch")
        changed = time.time()
        cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="make bench: service down")
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(alarm_event(box)))
        rulebook.wait_for(lambda: proxy_calls(box, "ecs", "UpdateService", seq), 120, "no mitigating call")

        def incident():
            return next((r["incident_id"] for r in rulebook.journal() if r["state"] == "received"), None)

        def finished() -> bool:
            path = rulebook.incidents / (incident() or "-") / "timeline.jsonl"
            return path.exists() and any(
                r["event"] == "playbook_end" and (r.get("playbook") or "").endswith("eda_service_down.yml")
                for r in verified_timeline(rulebook, incident())
            )

        rulebook.wait_for(finished, 180, "the service_down run did not finish")
        rulebook.wait_for(lambda: in_queue(sqs, url) == 0, 30, "the alarm's message was not deleted")
    finally:
        rulebook.kill(signal.SIGTERM)
    service_down.verify(box, context)  # the sandbox: the good revision runs, targets healthy
    records = verified_timeline(rulebook, incident())
    received = next(r for r in rulebook.journal() if r["state"] == "received")
    (update,) = proxy_calls(box, "ecs", "UpdateService", seq)
    end = next(r for r in records if r["event"] == "playbook_end")
    verified = _verified(records)
    start = next(r for r in records if r["event"] == "playbook_start")
    return {
        "read_s": round(received["epoch"] - changed, 3),
        "playbook_start_s": round(record_time(start) - changed, 3),
        "first_mitigation_s": round(proxy_time(update) - changed, 3),
        "verified_s": round(record_time(verified) - changed, 3) if verified else None,
        "verified_task": verified.get("task") if verified else None,
        "finished_s": round(record_time(end) - changed, 3),
        "incident_id": incident(),
        "timeline_records": len(records),
    }


def run(box, args) -> dict:
    if not rulebook_available():
        return {"skipped": "ansible-rulebook and a Java 17+ runtime are needed"}
    env = {**os.environ, **box.env()}
    env.pop("FIREBREAK_TIMELINE", None)
    with tempfile.TemporaryDirectory(prefix="firebreak-bench-eda-") as tmp:
        env["FIREBREAK_TIMELINE"] = f"{tmp}/noop.jsonl"
        env["FIREBREAK_INCIDENT_ID"] = "BENCH-EDA"
        floor = empty_playbook(env)
        figures = measure(box, Path(tmp))
    figures["empty_playbook_s"] = floor
    figures["load_1m"] = round(os.getloadavg()[0], 2)
    figures["when"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return figures


def report(figures: dict) -> list[str]:
    if "skipped" in figures:
        return [f"skipped: {figures['skipped']}"]
    target = TARGETS["first_mitigation_s"]
    verdict = "meets" if figures["first_mitigation_s"] <= target else "MISSES"
    verified = (
        f"{figures['verified_s']} s (task {figures['verified_task']!r} passed)"
        if figures["verified_s"] is not None
        else "not found on the timeline"
    )
    return [
        "alarm `firebreak-ecs-running-below-desired` set to ALARM (`set_alarm_state`) and its EventBridge event put on "
        "the queue; the real ansible-rulebook with `extensions/eda/rulebooks/service_down.yml` and the durable SQS "
        "source (started beforehand, not timed) runs `eda_service_down.yml`; the service_down drill's fault "
        "(a bad revision) in place; times from the state change",
        f"read by the source {figures['read_s']} s; the playbook's first record (Ansible started) "
        f"{figures['playbook_start_s']} s",
        f"first mitigating call (ECS `UpdateService` at the fault proxy): **{figures['first_mitigation_s']} s** "
        f"({verdict} <= {target} s)",
        f"verified recovery: health verification {verified}; the run finished {figures['finished_s']} s; the drill's "
        f"check of the sandbox passed (good revision, healthy targets); one verified timeline of "
        f"{figures['timeline_records']} records",
        f"floor, same run: an empty `ansible-playbook` {figures['empty_playbook_s']} s (the start-up the run pays "
        f"once); the first mitigating call came {round(figures['first_mitigation_s'] / figures['empty_playbook_s'], 1)}"
        f"x that after the state change (rulebook dispatch, ansible-runner, record and confirm, triage reads)",
    ]
