"""What the kill suite (test_proof_kills.py, issue 20 item 2) needs beside support.py: which cases run, where each
kill point is in a scenario's calls, the kill itself and the report of the killed timeline.

The cases: every drilled scenario (``support.SCENARIOS``) at three points of its first mutation. All of them
(13 scenarios x 3 points) cost about twice CI's time to spare, so by default each scenario runs ONE point, rotating
with the UTC day (scenario i runs point ``(day + i) % 3``: in three days every point of every scenario has run),
one of them (rotating too) with SIGTERM instead of SIGKILL. ``FIREBREAK_PROOF_KILLS=all`` runs every point of every
scenario with SIGKILL and service_down during its first mutation with SIGTERM, ``FIREBREAK_PROOF_KILLS=auth_attack:
after,data_loss`` the named ones (a bare name: its three points), ``FIREBREAK_PROOF_KILLS_ROTATION=<n>`` a given day's
rotation (to reproduce a failure the default run found).

The points are found from the proxies' logs and fault rules, never from sleeps. The first mutation is the first
mutating call the runbook itself makes: the timeline's own write-through (``firebreak/timelines/``) and seals are
the record, not the runbook's change, and best-effort tags are left aside as support.Baseline.first_change does.

- before: the last read the runbook makes before its first mutation is held in the proxy and the run is killed
  while it waits (nothing changed yet); when the first mutation is the runbook's first call, the run is killed as
  soon as its timeline has its first record;
- during: the first mutation is held in the proxy and the run is killed while it waits; the proxy then hands it on,
  as an API finishes a call its client stopped waiting for;
- after: the first mutation has been answered."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox import REPO_ROOT
from sandbox.fault_proxy import RULE_FIELDS
from tests.integration.proof_faults import support as ps

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.record import report as report_lib

POINTS = ("before", "during", "after")
HOLD = 2.0  # seconds a held call waits in the proxy (the kill lands in milliseconds: the run polls every 20 ms)
RECORD_PATHS = ("/firebreak/timelines", "/firebreak/seals")


# -- the cases ---------------------------------------------------------------------------------------------------
def rotation() -> int:
    chosen = os.environ.get("FIREBREAK_PROOF_KILLS_ROTATION", "").strip()
    return int(chosen) if chosen else datetime.datetime.now(datetime.timezone.utc).date().toordinal()


def chosen_cases(spec: str | None = None, names=None, turn: int | None = None) -> list[tuple[str, str, str]]:
    """(scenario, point, signal) for ``FIREBREAK_PROOF_KILLS`` (``spec``); unknown names are an error."""
    spec = os.environ.get("FIREBREAK_PROOF_KILLS", "").strip() if spec is None else spec.strip()
    names = sorted(ps.SCENARIOS) if names is None else sorted(names)
    if spec == "all":
        every = [(name, point, "SIGKILL") for name in names for point in POINTS]
        return [*every, ("service_down", "during", "SIGTERM")]
    if spec:
        cases = []
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            name, _, point = item.partition(":")
            if name not in names or (point and point not in POINTS):
                raise ValueError(
                    f"FIREBREAK_PROOF_KILLS: {item!r} is not a scenario[:point] "
                    f"(scenarios: {', '.join(names)}; points: {', '.join(POINTS)})"
                )
            cases += [(name, p, "SIGKILL") for p in ([point] if point else POINTS)]
        return cases
    turn = rotation() if turn is None else turn
    return [
        (name, POINTS[(turn + i) % len(POINTS)], "SIGTERM" if i == turn % len(names) else "SIGKILL")
        for i, name in enumerate(names)
    ]


def params(cases) -> list:
    """One xdist group per scenario, the fault suite's (``proof-faults-<name>``, support.scenario_params): one
    worker runs all of a scenario's faults and kills and makes its undisturbed run once for both suites."""
    return [
        pytest.param(*case, id="-".join(case), marks=pytest.mark.xdist_group(f"proof-faults-{case[0]}"))
        for case in cases
    ]


# -- the points --------------------------------------------------------------------------------------------------
def is_record(call: ps.Call) -> bool:
    """A write of the incident's own record: the timeline's write-through or a seal in the evidence bucket."""
    parts = call.path.split("/", 2)  # "/<bucket>/<key prefix>"
    return call.api == "aws" and call.service == "s3" and len(parts) == 3 and ("/" + parts[2]).startswith(RECORD_PATHS)


READ_VERBS = ("describe", "list", "get", "search")


def changes(call: ps.Call) -> bool:
    """A call that changes something: support.Call.mutating, but a REST ``POST`` whose path names a read (AWS Batch
    answers ``POST /v1/describejobqueues``) reads."""
    last = call.path.rstrip("/").rsplit("/", 1)[-1].lower()
    return call.mutating and not (call.rest and call.method == "POST" and last.startswith(READ_VERBS))


def first_mutation(base: ps.Baseline) -> ps.Call:
    """The runbook's first mutating call: not a write of its own record, not a best-effort tag."""
    return next(call for call in base.calls if changes(call) and not call.marker and not is_record(call))


def last_read_before(base: ps.Baseline, first: ps.Call) -> ps.Call | None:
    """The runbook's last call path first made before its first mutation (a read); None when there is none."""
    reads = [call for call in base.calls[: base.calls.index(first)] if not changes(call) and not is_record(call)]
    return reads[-1] if reads else None


def for_incident(call: ps.Call, name: str, incident: str) -> ps.Call:
    """The call path as the run of ``incident`` makes it: a key prefix naming the undisturbed run's incident (the
    evidence a scenario copies to ``incidents/<id>/``) names this run's."""
    base = f"INC-PROOF-BASE-{name}"
    return dataclasses.replace(
        call, operation=call.operation.replace(base, incident), path=call.path.replace(base, incident)
    )


def matches(entry: dict, call: ps.Call) -> bool:
    found = ps.calls_of([entry], call.api)
    return bool(found) and found[0].operation == call.operation and found[0].service == call.service


def proxy_of(box, kproxy, call: ps.Call):
    return box.proxy if call.api == "aws" else kproxy.proxy


def hit(proxy, rule: str) -> bool:
    return any(r["id"] == rule and r["hits"] for r in proxy.rules())


def landed(proxy, rule: str) -> bool:
    return any(rule in e["rules"] for e in proxy.log())


def wait_until(proc, check, what: str, timeout=240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (rc {proc.returncode}) before {what}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def kill(proc: subprocess.Popen, sig: str) -> int:
    """Signal the run's whole process group (its forks and module processes too); SIGKILL after 30 s. A run that
    already ended (and so left no process in its group) is not an error here: the caller reports why it ended."""
    try:
        _killpg(proc, getattr(signal, sig))
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _killpg(proc, signal.SIGKILL)
            proc.wait()
    finally:
        if proc.poll() is None:
            _killpg(proc, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def _killpg(proc: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is gone: the run ended (and was reaped) before it
        os.killpg(proc.pid, signum)


def drill_rules(*proxies) -> list[tuple]:
    """The rules a drill's inject installed (its scripted answers, such as the errors a metric read shows)."""
    return [(proxy, rule) for proxy in proxies for rule in proxy.rules() if not rule["default"]]


def rearm(rules: list[tuple]) -> int:
    """Put back the drill's scripted answers the killed run used up. A run killed before its first mutation changed
    nothing: the symptom the drill scripts (metric reads answered by the proxy a set number of times, then the
    recovered answers) is still there in the world, so the re-run must be shown it again. All of the drill's rules
    are put back in their order (a used-up rule added again behind a later one would never answer first).
    Returns how many were used (0: nothing put back)."""
    used = 0
    for proxy, rule in rules:
        now = next((r for r in proxy.rules() if r["id"] == rule["id"]), None)
        used += now is None or now["remaining"] != rule["remaining"]
    if used:
        for proxy, rule in rules:
            proxy.remove_rule(rule["id"])
        for proxy, rule in rules:
            proxy.add_rule({**{k: v for k, v in rule.items() if k in RULE_FIELDS}, "count": rule["remaining"]})
    return used


# -- the record --------------------------------------------------------------------------------------------------
def verified_lines(timeline: Path) -> list[dict]:
    """The timeline's records, verified (chain, hashes), after checking that it ends on a complete line."""
    assert timeline.exists(), "the killed run wrote no timeline"
    data = timeline.read_bytes()
    assert data.endswith(b"\n"), f"the timeline does not end on a complete line (a torn record): {data[-200:]!r}"
    records = ps.verify_timeline(str(timeline))
    assert len(records) == data.count(b"\n"), "a line of the timeline is not a record"
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1)), "a record is missing"
    return records


def report_of(timeline: Path, records: list[dict]) -> str:
    """The incident report (the ``incident_report`` module's renderer) of the killed timeline, in Markdown.
    Rendered in-process: the playbook around it (playbooks/incident_report.yml) would add 6 s per case."""
    return report_lib.render(records, str(timeline))[0]


def unfinished_line(markdown: str, playbook: str) -> str | None:
    """The report's line for ``playbook`` when it says one run has no recorded end, else None."""
    for line in markdown.splitlines():
        named = f"`{playbook}`" in line or f"`{os.path.basename(playbook)}`" in line
        if named and "1 without a recorded end (interrupted or stopped)" in line:
            return line.strip()
    return None


def results(path: Path) -> str:
    """The kill suite's figures from a session's proof-results.jsonl: per scenario the cases and seconds."""
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    kills = [e for e in entries if e.get("suite") == "kills"]
    out, total = [], 0.0
    for name in sorted({e["scenario"] for e in kills if "scenario" in e}):
        mine = [e for e in kills if e.get("scenario") == name]
        seconds = sum(e.get("seconds", 0) for e in mine) + max(e.get("baseline_seconds", 0) for e in mine)
        total += seconds
        out.append(f"{name}: {len(mine)} case(s), {seconds:.0f} s with its undisturbed run")
    out.append(f"total {total:.0f} worker-seconds for {len(kills)} case(s)")
    return "\n".join(out)
