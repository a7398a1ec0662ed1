"""Readers shared by the scenario and role tests: a run's timeline records, the incident lifecycle entries in them,
and the calls the fault proxy saw that change something."""

from __future__ import annotations

import json
import re
from pathlib import Path

LIFECYCLE_ACTION = "firebreak.runbooks.incident_lifecycle"


def records(source) -> list[dict]:
    """The records of a timeline: ``source`` is a run (``run_playbook``'s result, read at its ``.timeline``) or the
    timeline's path. Blank lines are skipped."""
    path = Path(getattr(source, "timeline", source))
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def lifecycle(source, event: str | None = None, *, real: bool = False) -> list[dict]:
    """The incident lifecycle entries (``details.lifecycle`` of the incident_lifecycle tasks), in order, each with
    ``_check_mode`` (its record's check mode). ``source``: a run, a timeline path or a list of records; ``event``
    keeps one kind (declared, update, resolved, delivery...); ``real`` drops the check-mode (dry run) entries."""
    rows = source if isinstance(source, list) else records(source)
    found = []
    for rec in rows:
        details = rec.get("details")
        entry = details.get("lifecycle") if isinstance(details, dict) else None
        if rec.get("action") != LIFECYCLE_ACTION or not entry or event not in (None, entry["event"]):
            continue
        if real and rec.get("check_mode"):
            continue
        found.append(dict(entry, _check_mode=bool(rec.get("check_mode"))))
    return found


def mutating_calls(box, mutating, *, services=(), qualified: bool = False) -> list[str]:
    """The actions the fault proxy saw that change something, in order: ``mutating`` is a set of action names or a
    compiled pattern matched at the start of the action; ``services`` keeps those services only; ``qualified``
    names each ``service:action``."""
    found = []
    for entry in box.proxy.log():
        action = entry.get("action") or ""
        if services and entry["service"] not in services:
            continue
        if not (mutating.match(action) if isinstance(mutating, re.Pattern) else action in mutating):
            continue
        found.append(f"{entry['service']}:{action}" if qualified else action)
    return found
