"""Drill scenarios for ``make drill``: one module per scenario playbook.

A scenario module defines::

    PLAYBOOK = "playbooks/<scenario>.yml"
    DESCRIPTION = "one line"
    def inject(sandbox) -> dict        # make the fault; return the playbook's extra vars, plus under the
                                       # key "_drill" what verify needs and "fault": one line saying what
                                       # was broken (recorded as the timeline's first note)
    def verify(sandbox, context) -> list[str]
                                       # check recovery in the sandbox; raise AssertionError if it did not happen
    def verify_record(timeline, report) -> list[str]
                                       # optional: check the incident frame's record (frame_record() below does
                                       # the checks every scenario shares)
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType


def available() -> dict[str, ModuleType]:
    """Scenario name -> module, for every drill in this package."""
    scenarios = {}
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            scenarios[info.name] = importlib.import_module(f"{__name__}.{info.name}")
    return dict(sorted(scenarios.items()))


@dataclass
class FrameRecord:
    """What ``frame_record`` read: every timeline record, the declaration's lifecycle entry, the gate notes."""

    records: list[dict]
    declared: dict
    gates: list[str]
    report: str

    def changed(self, action: str) -> list[dict]:
        """The real (not check-mode) ``task_changed`` records of ``firebreak.runbooks.<action>``."""
        return [
            rec
            for rec in self.records
            if rec.get("action") == f"firebreak.runbooks.{action}"
            and rec.get("event") == "task_changed"
            and not rec.get("check_mode")
        ]

    def summary(self) -> list[str]:
        """The check lines every drill reports for its frame: declaration and resolution, the gate."""
        return [
            f"declared {self.declared['severity']} ({self.declared['type']}) and resolved in the timeline",
            f"gate: {self.gates[-1].split(':', 1)[0]}",
        ]


def frame_record(timeline: Path, report: Path, gate: str = "", severity_in_report: bool = True) -> FrameRecord:
    """The checks of the incident frame's record that every drill's ``verify_record`` shares: real (not
    check-mode) declared and resolved lifecycle records, a decision of the gate (``Gate <gate>`` notes; any gate
    when empty) and, unless ``severity_in_report`` is false, a report naming the declared severity. Raises
    AssertionError naming what is missing."""
    records = [json.loads(line) for line in Path(timeline).read_text().splitlines()]
    lifecycle = [
        rec["details"]["lifecycle"]
        for rec in records
        if rec.get("action") == "firebreak.runbooks.incident_lifecycle"
        and not rec.get("check_mode")
        and isinstance(rec.get("details"), dict)
        and rec["details"].get("lifecycle")
    ]
    events = [entry["event"] for entry in lifecycle]
    assert "declared" in events, f"no declaration in {timeline} (lifecycle events: {events})"
    assert "resolved" in events, f"the incident was not resolved in {timeline} (lifecycle events: {events})"
    declared = next(entry for entry in lifecycle if entry["event"] == "declared")
    prefix = f"Gate {gate}" if gate else "Gate "
    gates = [rec["msg"] for rec in records if rec["event"] == "note" and (rec.get("msg") or "").startswith(prefix)]
    assert gates, f"no decision of gate {gate} in {timeline}" if gate else f"no gate decision in {timeline}"
    text = Path(report).read_text()
    if severity_in_report:
        assert declared["severity"] in text, f"the report {report} does not name the severity {declared['severity']}"
    return FrameRecord(records, declared, gates, text)
