"""``make drill-all``: every drill against shared sandboxes, and a score table read from each drill's record.

    python -m sandbox.drill_all [SCENARIO ...] [--break SCENARIO[,SCENARIO]] [--jobs N] [--score PATH]

The sandbox is started once per job (``--jobs``, default 2) and reset to its seed between drills, which is far
cheaper than a start per drill. Each drill runs as ``make drill`` runs it (sandbox/drill.py ``run_drill``: fault,
runbook, verify, report) with its output in ``<incident>/drill.log``; its row of the score table is read from the
drill's ``report.json`` (the clocks of plugins/module_utils/record/report.py) and its timeline:

    scenario | time to mitigation | time to recovery | steps run | left manual | drill time | result

``--break`` (or ``BREAK=`` in make) runs the named drills broken: the runbook runs in check mode, so it plans its
fix and applies nothing, and the drill must show FAIL (docs/drills.md). The table is printed and written as
Markdown to ``--score`` (default ``incidents/drill-all/score.md``) with the rows as JSON beside it (``score.json``).
Exit status: 0 when every drill passed; 1 when any failed (or the sandbox did not start); 2 for an unknown scenario.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import queue
import shutil
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from sandbox import REPO_ROOT, Sandbox, SandboxError
from sandbox.drill import DrillError, render_report, run_drill
from sandbox.drills import available

DEFAULT_OUT = REPO_ROOT / "incidents" / "drill-all"
MANUAL_PREFIX = "left for a person:"
OPENERS, CLOSERS = "([{", ")]}"


@dataclass
class Score:
    """One row of the score table."""

    scenario: str
    passed: bool
    mitigation_seconds: float | None = None
    recovery_seconds: float | None = None
    steps_run: int | None = None
    steps_manual: int | None = None
    seconds: float = 0.0
    broken: bool = False
    reason: str = ""
    incident_id: str = ""
    report: str = ""


def _read_records(timeline: Path) -> list[dict]:
    records = []
    for line in Path(timeline).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def _lines(msg: str) -> list[str]:
    """The lines of a timeline record's ``msg``: a summary task's ``debug`` msg is a list of lines, which the
    timeline callback records as the list's ``str()`` (``['symptom: ...', "left for a person: read the function's
    logs; ..."]``: an item holding an apostrophe is in double quotes); any other msg is its text lines."""
    if msg.startswith("["):
        try:
            value = ast.literal_eval(msg)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = None
        if isinstance(value, list):
            return [line for item in value if isinstance(item, str) for line in item.splitlines()]
    return msg.splitlines()


def manual_items(text: str) -> list[str]:
    """The items of one ``left for a person: a; b (c; d); e.`` summary (``text`` starts after the colon): split at
    ``; `` outside parentheses and brackets, so that an item's own aside (``(run the integrity queries; this
    playbook cannot run SQL)``) stays one item. A JSON list after the colon is its items."""
    text = text.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list):
            return [str(item) for item in value if str(item).strip()]
    items, depth, current = [], 0, []
    i = 0
    while i < len(text):
        char = text[i]
        if char in OPENERS:
            depth += 1
        elif char in CLOSERS:
            depth = max(0, depth - 1)
        if depth == 0 and text.startswith("; ", i):
            items.append("".join(current))
            current, i = [], i + 2
            continue
        current.append(char)
        i += 1
    items.append("".join(current))
    items = [item.strip().rstrip(".;").strip() for item in items]
    return [item for item in items if item]


def steps_left_manual(records: list[dict]) -> int:
    """The steps the runbook handed to a person: the items of its ``left for a person: a; b`` summary line
    (manual_items: split at ``; `` outside parentheses). The summary is recorded as the ``msg`` of the summary
    task's timeline record (the ``debug`` of its lines) and can also be in a note of the same run: the record that
    lists the most counts, not their sum."""
    most = 0
    for rec in records:
        msg = rec.get("msg")
        if not isinstance(msg, str) or MANUAL_PREFIX not in msg:
            continue
        count = 0
        for line in _lines(msg):
            if MANUAL_PREFIX in line:
                count += len(manual_items(line.split(MANUAL_PREFIX, 1)[1]))
        most = max(most, count)
    return most


def score_from_record(
    scenario: str, passed: bool, report_json: Path | None, timeline: Path | None, seconds: float = 0.0, reason=""
) -> Score:
    """A drill's row: its clocks and steps from ``report.json`` (when the report was rendered) and the manual
    hand-offs from its timeline. ``passed`` is the drill's verdict (recovery verified, record complete): a report
    with clocks does not make a drill pass, and a drill whose report is missing does not pass either."""
    score = Score(scenario, passed, seconds=round(seconds, 1), reason=reason)
    if report_json and Path(report_json).is_file():
        facts = json.loads(Path(report_json).read_text(encoding="utf-8"))
        clocks = facts.get("clocks") or {}
        score.mitigation_seconds = (clocks.get("mitigation") or {}).get("seconds")
        score.recovery_seconds = (clocks.get("recovery") or {}).get("seconds")
        score.steps_run = sum(1 for step in facts.get("steps") or [] if not step.get("check_mode"))
        score.report = str(report_json)
    elif passed:
        score.passed = False
        score.reason = f"no report.json beside the timeline ({report_json})"
    if timeline and Path(timeline).is_file():
        score.steps_manual = steps_left_manual(_read_records(timeline))
    return score


def _clock(seconds) -> str:
    if seconds is None:
        return "not reached"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    return f"{int(seconds // 60)}m{seconds % 60:04.1f}s"


def _cell(value) -> str:
    return "—" if value is None else str(value)


def render_table(scores: list[Score]) -> str:
    """The score table as Markdown (a person reads it as text too), then one line per failure with its reason."""
    lines = [
        "| scenario | time to mitigation | time to recovery | steps run | left manual | drill time | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in scores:
        result = "PASS" if s.passed else ("FAIL (broken run)" if s.broken else "FAIL")
        lines.append(
            f"| {s.scenario} | {_clock(s.mitigation_seconds)} | {_clock(s.recovery_seconds)} | {_cell(s.steps_run)} "
            f"| {_cell(s.steps_manual)} | {s.seconds:.1f}s | {result} |"
        )
    passed = sum(1 for s in scores if s.passed)
    lines += ["", f"{passed} of {len(scores)} drills passed."]
    for s in scores:
        if not s.passed:
            lines.append(f"- FAIL {s.scenario}: {s.reason}")
    return "\n".join(lines) + "\n"


def exit_status(scores: list[Score]) -> int:
    return 0 if scores and all(s.passed for s in scores) else 1


def drill_and_score(scenario: str, sandbox, incidents_dir: Path, broken: bool = False) -> Score:
    """Run one drill on ``sandbox`` (already at its seed) and score it; never raises for a failed drill."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    incident_id = f"DRILL-{scenario}-{stamp}" + ("-broken" if broken else "")
    timeline = Path(incidents_dir) / incident_id / "timeline.jsonl"
    timeline.parent.mkdir(parents=True, exist_ok=True)
    report_json = timeline.with_name("report.json")
    started = time.monotonic()
    passed, reason = True, ""
    with open(timeline.with_name("drill.log"), "w", encoding="utf-8") as log:
        try:
            run_drill(scenario, sandbox, incidents_dir, incident_id=incident_id, broken=broken, output=log)
        except DrillError as exc:
            passed, reason = False, str(exc)
        except Exception as exc:  # an injection or a verify that broke: the drill failed, the others go on
            passed, reason = False, f"{type(exc).__name__}: {exc}"
        if not passed and timeline.is_file() and not report_json.is_file():
            render_report(sandbox, timeline, incident_id, output=log)  # the clocks of a failed drill, if any
    score = score_from_record(scenario, passed, report_json, timeline, time.monotonic() - started, reason)
    score.broken, score.incident_id = broken, incident_id
    if not passed:
        score.reason += f" (log: {timeline.with_name('drill.log')})"
    return score


def run_all(scenarios: list[str], incidents_dir: Path, broken=(), jobs: int = 2, workroot: Path | None = None):
    """Every drill in ``scenarios``, ``jobs`` sandboxes at once (each reset between its drills); rows in the
    order given."""
    todo: queue.Queue = queue.Queue()
    for name in scenarios:
        todo.put(name)
    scores: dict[str, Score] = {}
    errors: list[str] = []
    workroot = Path(workroot or REPO_ROOT / ".sandbox" / f"drill-all-{os.getpid()}")

    def worker(index: int) -> None:
        sandbox = Sandbox(workdir=workroot / f"sandbox-{index}")
        try:
            sandbox.start()
        except SandboxError as exc:
            errors.append(f"sandbox {index} did not start: {exc}")
            return
        first = True
        try:
            while True:
                try:
                    name = todo.get_nowait()
                except queue.Empty:
                    return
                if not first:
                    sandbox.reset()
                first = False
                score = drill_and_score(name, sandbox, incidents_dir, broken=name in broken)
                scores[name] = score
                print(f"  {'PASS' if score.passed else 'FAIL'}  {name} ({score.seconds:.1f}s)", flush=True)
        finally:
            sandbox.stop()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(max(1, min(jobs, len(scenarios))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shutil.rmtree(workroot, ignore_errors=True)
    for name in scenarios:
        if name not in scores:
            scores[name] = Score(name, False, reason="; ".join(errors) or "not run")
    return [scores[name] for name in scenarios], errors


def main(argv: list[str] | None = None) -> int:
    known = available()
    parser = argparse.ArgumentParser(prog="make drill-all", description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help="drills to run (default: all)")
    parser.add_argument(
        "--break",
        dest="broken",
        default=os.environ.get("FIREBREAK_DRILL_BREAK", ""),
        help="comma-separated drills to run broken (check mode: the fix is not applied); they must FAIL",
    )
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("DRILL_JOBS", "2")))
    parser.add_argument("--incidents-dir", default=str(REPO_ROOT / "incidents"))
    parser.add_argument("--score", default=str(DEFAULT_OUT / "score.md"), help="where the table is written")
    args = parser.parse_args(argv)

    names = args.scenarios or list(known)
    broken = [name for name in args.broken.replace(" ", ",").split(",") if name]
    unknown = [name for name in names + broken if name not in known]
    if unknown:
        print(f"make drill-all: unknown scenario(s) {', '.join(unknown)}. Known scenarios:", file=sys.stderr)
        for name, module in known.items():
            print(f"  {name:24} {module.DESCRIPTION}", file=sys.stderr)
        return 2
    names += [name for name in broken if name not in names]

    started = time.monotonic()
    print(f"==> {len(names)} drills on {min(args.jobs, len(names))} sandbox(es), reset between drills", flush=True)
    if broken:
        print(f"==> broken on purpose (the runbook runs in check mode): {', '.join(broken)}", flush=True)
    scores, errors = run_all(names, Path(args.incidents_dir), broken=set(broken), jobs=args.jobs)
    table = render_table(scores)
    total = time.monotonic() - started
    table += f"\nAll drills: {total:.0f}s wall time, {args.jobs} job(s).\n"

    score_path = Path(args.score)
    score_path.parent.mkdir(parents=True, exist_ok=True)
    score_path.write_text(table, encoding="utf-8")
    score_path.with_suffix(".json").write_text(
        json.dumps([asdict(s) for s in scores], indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    print()
    print(table, end="")
    print(f"score table: {score_path}")
    for error in errors:
        print(f"make drill-all: {error}", file=sys.stderr)
    return exit_status(scores)


if __name__ == "__main__":
    sys.exit(main())
