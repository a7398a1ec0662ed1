"""``ansible-playbook`` killed mid-run (issue 20 item 2): before, during and after a scenario's first mutation.

The points are found from the proxies' logs and rules, never from sleeps: *before* is the moment the run's first
call reaches the API (no mutation yet), *during* is while the first mutating call is held in the proxy (a latency
rule that has been hit: the request is in flight; the proxy hands it on after the kill, as a real API would finish a
call its client stopped waiting for), *after* is the moment the first mutating call has been answered. The whole
process group gets SIGKILL (one case SIGTERM). Then the timeline must verify with no torn line, the report must name
the unfinished run, and a re-run of the same incident must reach the undisturbed run's end state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.integration.proof_faults import support as ps

pytestmark = [pytest.mark.proof, pytest.mark.integration]

CASES = [
    ("service_down", "before", "SIGKILL"),
    ("service_down", "during", "SIGKILL"),
    ("service_down", "after", "SIGKILL"),
    ("service_down", "during", "SIGTERM"),
    ("auth_attack", "during", "SIGKILL"),
    ("auth_attack", "after", "SIGKILL"),
    ("k8s_service_down", "during", "SIGKILL"),
    ("k8s_service_down", "after", "SIGKILL"),
]
HOLD = 4.0  # seconds the proxy holds the first mutating call for "during"


def matches(entry: dict, call: ps.Call) -> bool:
    found = ps.calls_of([entry], call.api)
    return bool(found) and found[0].operation == call.operation and found[0].service == call.service


def wait_until(proc, check, what: str, timeout=240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (rc {proc.returncode}) before {what}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def report_run(box, kproxy, timeline, incident):
    return ps.run(
        box, kproxy, "playbooks/incident_report.yml", {"incident_timeline": str(timeline)}, timeline, incident
    )


@pytest.mark.parametrize(
    ("name", "point", "sig"),
    [pytest.param(*case, id="-".join(case), marks=pytest.mark.xdist_group(f"proof-kills-{case[0]}")) for case in CASES],
)
def test_a_run_killed_mid_way_leaves_a_valid_timeline_a_report_naming_it_and_a_rerun_recovers(
    name, point, sig, sandbox, kube_proxy, tmp_path_factory, tmp_path, request
):
    base = ps.baseline(sandbox, kube_proxy, name, tmp_path_factory.mktemp("base"))
    first = base.first_change
    # the scenario's own first call on the API the mutation goes to (not a read of the other API)
    opening = next(call for call in base.calls if call.api == first.api)
    variables = ps.prepare(sandbox, kube_proxy, name)
    proxy = sandbox.proxy if first.api == "aws" else kube_proxy.proxy
    hold = proxy.add_rule(first.rule(fault="latency", seconds=HOLD, count=1)) if point == "during" else None

    incident = f"INC-PROOF-KILL-{name}-{point}-{sig}"
    timeline = tmp_path / "timeline.jsonl"
    playbook = ps.SCENARIOS[name].PLAYBOOK
    proc = ps.start(sandbox, kube_proxy, playbook, variables, timeline, incident, tmp_path / "killed.log")
    try:
        if point == "before":
            wait_until(proc, lambda: any(matches(e, opening) for e in proxy.log()), f"the first call {opening.label}")
        elif point == "during":
            wait_until(
                proc,
                lambda: any(r["id"] == hold and r["hits"] for r in proxy.rules()),
                f"the first mutating call {first.label} in flight",
            )
        else:
            wait_until(
                proc,
                lambda: any(matches(e, first) and e["status"] < 400 for e in proxy.log()),
                f"the first mutating call {first.label} answered",
            )
        mutated_at_kill = any(matches(e, first) for e in proxy.log())
        held_answered = any(hold in e["rules"] for e in proxy.log()) if hold else None
        os.killpg(proc.pid, getattr(signal, sig))
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0
    if point == "before":
        assert not mutated_at_kill, f"{first.label} was already made: the kill came too late for 'before'"
    if point == "during":  # the held call reaches the API after its client is gone; wait for it to land
        # (another call of the same path, made in parallel, such as a second claim, may have been answered)
        assert not held_answered, f"the held {first.label} was answered before the kill"
        deadline = time.monotonic() + HOLD + 5
        while not any(hold in e["rules"] for e in proxy.log()) and time.monotonic() < deadline:
            time.sleep(0.05)

    # the timeline verifies: no torn line, every record chained
    assert timeline.exists(), "the killed run wrote no timeline"
    lines = timeline.read_bytes().split(b"\n")
    assert lines[-1] == b"", "the timeline does not end on a complete line (a torn record)"
    records = ps.verify_timeline(str(timeline))
    assert len(records) == len(lines) - 1
    killed_records = len(records)

    reported = report_run(sandbox, kube_proxy, timeline, incident)
    assert reported.returncode == 0, reported.output[-3000:]
    text = (timeline.parent / "report.md").read_text()
    unfinished = f"`{playbook}`: 1 run(s) — 1 without a recorded end (interrupted or stopped)"
    assert unfinished in text or (
        f"`{os.path.basename(playbook)}`" in text and "without a recorded end (interrupted or stopped)" in text
    ), [line for line in text.splitlines() if "run(s)" in line]
    facts = json.loads((timeline.parent / "report.json").read_text())

    again = ps.run(sandbox, kube_proxy, playbook, variables, timeline, incident)
    outcome = ps.rerun_outcome(name, again)
    after = ps.verify_timeline(str(timeline))
    assert after[:killed_records] == records, "records written before the kill changed"
    differences = ps.state_differences(base.end, ps.end_state(sandbox))
    assert not differences, f"the re-run after the kill differs from the undisturbed run: {differences}"
    ps.tally(
        request,
        suite="kills",
        case=f"{name} / {sig} {point} the first mutation ({first.label})",
        faults=1,
        survived=1,
        records_lost=0,
        end_state_differed=0,
        detail=(
            f"{killed_records} records verified after the kill, report: unfinished run named "
            f"({len(facts.get('targets', []))} target(s)); {outcome} in {again.seconds:.0f}s"
        ),
    )
