# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The post-incident report, rendered from a verified timeline: ``report.md`` for people and ``report.json``
for machines, both from one set of facts (``report_facts``).

Pure Python (standard library only), no Ansible and no I/O, so the ``incident_report`` action stays thin and
every rule is unit-tested on crafted records:

- the clocks (time to declare, to first mitigation, to containment, to recovery, to resolution) are measured from
  the first event, by the ``step_kind`` each step recorded (never by a table of module names);
- severity, status, roles and communications come from the lifecycle records (``details.lifecycle``);
- targets are the inventory hosts the records name (``host``); a target failed when a task failed on it (or it was
  unreachable) and it did not finish;
- the review is due a number of business days after the resolution, per severity (data: ``REVIEW_POLICY``);
- the chart is Mermaid (gantt), with every text from the timeline escaped so that it cannot break the diagram.
"""

from __future__ import annotations

import datetime
import difflib
import itertools
import json
import re

from ansible_collections.firebreak.runbooks.plugins.module_utils.record import lifecycle as lc
from ansible_collections.firebreak.runbooks.plugins.module_utils.record.timeline import (
    CONTAINMENT,
    MITIGATION,
    RECOVERY,
    VERIFICATION,
    TimelineError,
    _entries,
    _result_items,
    parse_timestamp,
    record_step_kind,
)

SCHEMA = "firebreak.runbooks.report/1"
CHART_MAX_ACTIONS = 40
# Post-incident review: business days after the resolution, per severity (None: no review required).  P1/P2 from the
# issue's rule (within 5 business days); P3 ten business days; P4 none.  Override with ``review_policy``.
REVIEW_POLICY = {"P1": 5, "P2": 5, "P3": 10, "P4": None}
CLOCKS = ("declaration", "mitigation", "containment", "recovery", "resolution")
CLOCK_LABELS = {
    "declaration": "Time to declare",
    "mitigation": "Time to mitigation",
    "containment": "Time to containment",
    "recovery": "Time to recovery",
    "resolution": "Time to resolution",
}
MITIGATING = (CONTAINMENT, MITIGATION, RECOVERY)

_REPORT_JSON_MAX = 6000
_TIMELINE_MSG_MAX = 160


class ReportInputError(ValueError):
    """An option of the report that cannot be used (the message names the bad value)."""


# --------------------------------------------------------------------------------------------
# text helpers
# --------------------------------------------------------------------------------------------


def format_duration(seconds):
    """``2 hours 15 minutes``, ``3 minutes 5 seconds``, ``12 seconds``, ``0.4 seconds``."""
    if seconds is None:
        return "unknown"
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f} seconds"
    seconds = round(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    for value, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"), (secs, "second")):
        if value:
            parts.append(f"{value} {unit}{'' if value == 1 else 's'}")
    if days or hours:
        parts = parts[:2]  # "2 hours 15 minutes" as in the post-mortem template
    return " ".join(parts) or "0 seconds"


def _clock(ts):
    dt = parse_timestamp(ts)
    return dt.strftime("%H:%M:%S") if dt else "??:??:??"


def _iso(dt):
    return dt.astimezone(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if dt else None


def _one_line(text, limit=_TIMELINE_MSG_MAX):
    if text is None:
        return ""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fence(text, lang=""):
    text = str(text)
    fence = "```"
    while fence in text:
        fence += "`"
    return "{}{}\n{}\n{}".format(fence, lang, text.rstrip("\n"), fence)


def _json_block(value, limit=_REPORT_JSON_MAX):
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    if len(text) > limit:
        text = text[:limit] + f"\n... ({len(text) - limit} more characters in the timeline record)"
    return _fence(text, "json")


def _md(text):
    """Inert Markdown for text from the timeline (a note, a task name): one line (every line break, Unicode
    ones included, becomes a space, so no heading, list or fence can start), and every character that
    would change inline rendering escaped (emphasis, code, links, images, HTML, tables)."""
    if text is None:
        return ""
    return re.sub(r"([\\`*_|<>\[\]()#!~&{}])", r"\\\1", " ".join(str(text).split()))


def _code(text):
    """An inline code span (no escaping inside; longer backtick fences when needed)."""
    text = " ".join(str(text).split()) if text is not None else ""
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _operator_label(op):
    if not isinstance(op, dict):
        return str(op) if op else "unknown"
    user = op.get("user") or "unknown"
    if op.get("source") == "awx":
        label = "{} (AWX job {}".format(user, op.get("job_id") if op.get("job_id") is not None else "?")
        if op.get("job_template"):
            label += ", template {}".format(op["job_template"])
        return label + ")"
    return "{} ({})".format(user, op.get("source") or "local")


# Mermaid: text is escaped with its entity codes (``#58;`` for ``:``), which Mermaid turns back into the character
# when it draws.  Every character that ends a gantt task name (``:``), starts a comment (``#``, ``%%``), ends its
# data (``;``), opens a directive or a block (``{``, ``}``), could close the Markdown fence (a backtick) or be read
# as markup (``<``, ``>``, ``&``, quotes) is replaced, and so are the placeholder characters Mermaid itself uses.
_MERMAID_ESCAPES = {c: f"#{ord(c)};" for c in "#:;%{}`<>&\"'\\[]|=ﬂ°¶ß"}


def mermaid_text(text, limit=80):
    """``text`` as safe Mermaid gantt text: one line, at most ``limit`` characters before escaping, control
    characters removed, every syntax character as an entity code (see ``_MERMAID_ESCAPES``)."""
    text = "".join(ch for ch in " ".join(str(text if text is not None else "").split()) if ch.isprintable())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return "".join(_MERMAID_ESCAPES.get(ch, ch) for ch in text) or "-"


def _mermaid_time(dt):
    return dt.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


# --------------------------------------------------------------------------------------------
# runs, steps, clocks
# --------------------------------------------------------------------------------------------


def _runs(records):
    """Group records into playbook runs: (start_record, end_record_or_None, [records])."""
    runs = []
    open_runs = {}
    for rec in records:
        # the run id recorded in every record of a run; older records fall back to operator and playbook
        key = rec.get("run_id") or (json.dumps(rec.get("operator"), sort_keys=True), rec.get("playbook"))
        if rec.get("event") == "playbook_start":
            run = {"start": rec, "end": None, "records": [rec]}
            runs.append(run)
            open_runs[key] = run
            continue
        run = open_runs.get(key)
        if run is None:
            continue
        run["records"].append(rec)
        if rec.get("event") == "playbook_end":
            run["end"] = rec
            del open_runs[key]
    return runs


def _is_task(rec):
    return rec.get("event") in ("task_ok", "task_changed", "task_failed")


def _ignored(rec):
    return isinstance(rec.get("details"), dict) and bool(rec["details"].get("ignore_errors"))


def verification_passed(rec):
    """A verification step's record passed: the task did not fail, no result says ``passed: false``, and every
    check it returned (``checks[].verdict``, as health_verify and k8s_health_verify return them) passed."""
    if rec.get("event") not in ("task_ok", "task_changed"):
        return False
    for item in _result_items(rec.get("details")):
        if item.get("passed") is False:
            return False
        checks = item.get("checks")
        if isinstance(checks, list) and any(
            not isinstance(c, dict) or str(c.get("verdict", "")).lower() != "pass" for c in checks
        ):
            return False
    return True


def step_times(records):
    """``{"containment", "mitigation", "recovery"}`` -> the record that reached it, or ``None``.

    Only non-check-mode task records count.  Containment: the first changed containment step.
    Mitigation: the first changed containment, mitigation or recovery step.  Recovery: the first
    verification step that passed (every check) after the mitigation; without one, the first changed
    recovery step."""
    found = {CONTAINMENT: None, MITIGATION: None, RECOVERY: None}
    restored = None
    for rec in records:
        if rec.get("check_mode") or not _is_task(rec):
            continue
        kind = record_step_kind(rec)
        if kind == VERIFICATION:
            if found[MITIGATION] and found[RECOVERY] is None and verification_passed(rec):
                found[RECOVERY] = rec
            continue
        if not rec.get("changed") or kind not in MITIGATING:
            continue
        if kind == CONTAINMENT and found[CONTAINMENT] is None:
            found[CONTAINMENT] = rec
        if found[MITIGATION] is None:
            found[MITIGATION] = rec
        if kind == RECOVERY and restored is None:
            restored = rec
    if found[RECOVERY] is None:
        found[RECOVERY] = restored
    return found


def _step_result(rec):
    if rec.get("event") == "task_failed":
        return "failed (ignored)" if _ignored(rec) else "failed"
    return "changed" if rec.get("changed") else "ok"


def _step(rec):
    kind = record_step_kind(rec)
    out = {
        "seq": rec.get("seq"),
        "at": rec.get("ts"),
        "kind": kind,
        "task": rec.get("task"),
        "role": rec.get("role"),
        "action": rec.get("action"),
        "target": rec.get("host"),
        "result": _step_result(rec),
        "changed": bool(rec.get("changed")),
        "check_mode": bool(rec.get("check_mode")),
        "msg": _one_line(rec.get("msg"), 300) or None,
    }
    if kind == VERIFICATION:
        out["passed"] = verification_passed(rec)
    return out


def _containments(records, incident_id):
    """``{"open": [...], "released": [...]}``: this incident's containment entries (changed, not check mode),
    each with the seq and target that applied it, and for the released ones the seq of the release."""
    found = {}
    released = {}
    for rec in records:
        if rec.get("check_mode") or not str(rec.get("event", "")).startswith("task_"):
            continue
        for item in _result_items(rec.get("details")):
            for entry in _entries(item.get("release")):
                for rid in entry.get("releases") or []:
                    released.setdefault(str(rid), rec.get("seq"))
            if not rec.get("changed"):
                continue
            for entry in _entries(item.get("containment")):
                if not entry.get("id") or (incident_id and entry.get("incident_id") not in (None, incident_id)):
                    continue
                found.setdefault(
                    str(entry["id"]),
                    {
                        "id": str(entry["id"]),
                        "step": entry.get("step"),
                        "resource": entry.get("resource"),
                        "seq": rec.get("seq"),
                        "at": rec.get("ts"),
                        "target": rec.get("host"),
                    },
                )
    out = {"open": [], "released": []}
    for key, entry in found.items():
        if key in released and (released[key] or 0) >= (entry["seq"] or 0):
            out["released"].append(dict(entry, released_seq=released[key]))
        else:
            out["open"].append(entry)
    return out


def _targets(records):
    """The targets (inventory hosts that ran a step, or failed), in the order first seen, with their outcome in the
    last run that touched them: ``finished``, ``failed`` (a task failed or the host was unreachable and it did not
    finish: the run's end lists it, or nothing ran on it after the failure) or ``unfinished`` (the run has no end)."""
    runs = _runs(records)
    run_of = {}
    for i, run in enumerate(runs):
        for rec in run["records"]:
            run_of[id(rec)] = i
    per_host = {}
    for rec in records:
        host = rec.get("host")
        event = rec.get("event")
        if not host or rec.get("check_mode") or not (_is_task(rec) or event == "host_unreachable"):
            continue
        failure = event == "host_unreachable" or (event == "task_failed" and not _ignored(rec))
        kind = record_step_kind(rec)
        info = per_host.setdefault(
            host,
            {"target": False, "steps": 0, "changed": 0, "runs": {}, "mitigated": None, "recovered": None},
        )
        if kind or failure:
            info["target"] = True
        if kind:
            info["steps"] += 1
            info["changed"] += 1 if rec.get("changed") else 0
            if kind in MITIGATING and rec.get("changed") and info["mitigated"] is None:
                info["mitigated"] = rec
            if kind == VERIFICATION and info["mitigated"] and info["recovered"] is None and verification_passed(rec):
                info["recovered"] = rec
        run = info["runs"].setdefault(run_of.get(id(rec), -1), {"failure": None, "after": False})
        if failure:
            run["failure"], run["after"] = rec, False
        elif run["failure"] is not None and event != "task_skipped":
            run["after"] = True
    targets = []
    for host, info in per_host.items():
        if not info["target"]:
            continue
        last = max(info["runs"])
        run = info["runs"][last]
        end = runs[last]["end"] if last >= 0 else None
        end_details = end.get("details") if end and isinstance(end.get("details"), dict) else {}
        if end is not None and isinstance(end_details.get("failed_hosts"), list):
            failed = host in end_details["failed_hosts"]
        else:
            failed = run["failure"] is not None and not run["after"]
        status = "failed" if failed else ("finished" if end is not None or last < 0 else "unfinished")
        reason = None
        if failed and run["failure"] is not None:
            rec = run["failure"]
            what = "unreachable" if rec.get("event") == "host_unreachable" else f"{rec.get('task') or 'a task'} failed"
            reason = {"seq": rec.get("seq"), "at": rec.get("ts"), "what": what, "msg": _one_line(rec.get("msg"), 300)}
        targets.append(
            {
                "name": host,
                "status": status,
                "failed": failed,
                "steps": info["steps"],
                "changed": info["changed"],
                "mitigated_at": info["mitigated"].get("ts") if info["mitigated"] else None,
                "recovered_at": info["recovered"].get("ts") if info["recovered"] else None,
                "failure": reason,
            }
        )
    return targets


# --------------------------------------------------------------------------------------------
# review due date
# --------------------------------------------------------------------------------------------


def review_policy(overrides=None):
    """The review policy: ``REVIEW_POLICY`` with ``overrides`` (severity -> business days, or null for none)."""
    policy = dict(REVIEW_POLICY)
    if overrides is None:
        return policy
    if not isinstance(overrides, dict):
        raise ReportInputError(f"review_policy must be a mapping of severity to business days, got {overrides!r}")
    for severity, days in overrides.items():
        if severity not in lc.SEVERITIES:
            raise ReportInputError(f"review_policy {severity!r}: severities are {', '.join(lc.SEVERITIES)}")
        if isinstance(days, str) and days.strip().isdigit():
            days = int(days)
        if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days <= 0):
            raise ReportInputError(
                f"review_policy {severity}={days!r}: give a positive number of business days, or null for no review"
            )
        policy[severity] = days
    return policy


def review_holidays(values):
    """Dates (``YYYY-MM-DD``) that are not business days."""
    out = set()
    for value in values or []:
        try:
            out.add(datetime.date.fromisoformat(str(value)))
        except ValueError:
            raise ReportInputError(f"review_holidays: {value!r} is not a date (YYYY-MM-DD)") from None
    return out


def add_business_days(day, count, holidays=()):
    """``day`` plus ``count`` business days (Saturday, Sunday and ``holidays`` skipped)."""
    while count > 0:
        day += datetime.timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            count -= 1
    return day


def review_due(severity, resolved_at, policy, holidays=()):
    """The post-incident review's due date from the severity and the resolution time."""
    days = policy.get(severity) if severity else None
    out = {"severity": severity, "business_days": days, "from": resolved_at, "due": None, "required": bool(days)}
    if not severity:
        out["note"] = "no severity recorded: declare the incident (incident_declare) to set one"
        out["required"] = None
    elif not days:
        out["note"] = f"no review required for {severity} by the review policy"
    elif not resolved_at:
        out["note"] = f"due {days} business days after the resolution; the incident is not resolved"
    else:
        resolved = parse_timestamp(resolved_at) or lc.parse_iso(resolved_at)
        due = add_business_days(resolved.astimezone(datetime.UTC).date(), days, holidays)
        out["due"] = due.isoformat()
        out["note"] = f"{severity}: within {days} business days of the resolution"
    return out


# --------------------------------------------------------------------------------------------
# the facts (report.json) and the chart
# --------------------------------------------------------------------------------------------


def _clock_entry(at, t0, rec=None, basis=None):
    dt = parse_timestamp(at) or lc.parse_iso(at)
    if dt is None:
        return {"reached": False, "at": None, "seconds": None, "seq": None}
    out = {
        "reached": True,
        "at": _iso(dt),
        "seconds": round((dt - t0).total_seconds(), 3) if t0 else None,
        "seq": rec.get("seq") if rec else None,
    }
    if rec is not None:
        out.update(task=rec.get("task"), role=rec.get("role"), action=rec.get("action"), target=rec.get("host"))
    if basis:
        out["basis"] = basis
    return out


def _key_actions(records, times, max_actions):
    """(shown, total): the key actions for the chart, at most ``max_actions``, the milestones and failures first."""
    candidates = []
    for rec in records:
        if rec.get("check_mode"):
            continue
        kind = record_step_kind(rec) if _is_task(rec) else None
        failure = rec.get("event") == "host_unreachable" or (rec.get("event") == "task_failed" and not _ignored(rec))
        if failure or (kind and (rec.get("changed") or kind == VERIFICATION or rec.get("event") == "task_failed")):
            candidates.append(rec)
    milestones = {id(r) for r in times.values() if r is not None}

    def rank(i):
        rec = candidates[i]
        if id(rec) in milestones:
            return (0, i)
        if rec.get("event") in ("task_failed", "host_unreachable"):
            return (1, i)
        return (2 if rec.get("changed") else 3, i)

    ranked = sorted(range(len(candidates)), key=rank)
    keep = sorted(ranked[: max(0, max_actions)])
    return [candidates[i] for i in keep], len(candidates)


def report_facts(records, path, seals=(), review=None, holidays=(), chart_max=CHART_MAX_ACTIONS, durable=None):
    """Everything the report says, as JSON-ready data (``report.json``; schema in docs/report.md)."""
    if not records:
        raise TimelineError(f"{path}: no records to report on")
    first, last = records[0], records[-1]
    incident_ids = []
    for rec in records:
        if rec.get("incident_id") and rec["incident_id"] not in incident_ids:
            incident_ids.append(rec["incident_id"])
    state = lc.fold(lc.lifecycle_records(records))
    note_severity = None
    for rec in records:
        if rec.get("event") == "note" and isinstance(rec.get("details"), dict) and rec["details"].get("severity"):
            note_severity = rec["details"]["severity"]
    severity = (state or {}).get("severity") or note_severity

    t_first_record = parse_timestamp(first.get("ts"))
    given = lc.parse_iso((state or {}).get("first_event_at"))
    if given and (t_first_record is None or given <= t_first_record):
        t0, t0_source = given, "declaration"
    elif given:
        t0, t0_source = t_first_record, "first_record (earlier than the first_event_at given at declaration)"
    else:
        t0, t0_source = t_first_record, "first_record"

    times = step_times(records)
    recovery_basis = None
    if times[RECOVERY] is not None:
        recovery_basis = "verification" if record_step_kind(times[RECOVERY]) == VERIFICATION else "recovery_step"
    clocks = {
        "declaration": _clock_entry((state or {}).get("declared_at"), t0),
        "mitigation": _clock_entry((times[MITIGATION] or {}).get("ts"), t0, times[MITIGATION]),
        "containment": _clock_entry((times[CONTAINMENT] or {}).get("ts"), t0, times[CONTAINMENT]),
        "recovery": _clock_entry((times[RECOVERY] or {}).get("ts"), t0, times[RECOVERY], recovery_basis),
        "resolution": _clock_entry((state or {}).get("resolved_at"), t0),
    }
    if state:
        clocks["declaration"]["seq"] = state.get("declared_seq")
        clocks["resolution"]["seq"] = state.get("resolved_seq") if state.get("resolved_at") else None

    policy = review_policy(review)
    resolved_at = (state or {}).get("resolved_at")
    due = dict(review_due(severity, resolved_at, policy, holidays), policy=policy)
    steps = [_step(r) for r in records if _is_task(r) and record_step_kind(r)]
    targets = _targets(records)
    tasks = [r for r in records if str(r.get("event", "")).startswith("task_") or r.get("event") == "host_unreachable"]
    failed = [r for r in records if r.get("event") == "task_failed"]
    shown, total = _key_actions(records, times, chart_max)
    t_last = parse_timestamp(last.get("ts"))
    end = lc.parse_iso(resolved_at) or t_last
    incident_id = incident_ids[0] if incident_ids else None
    facts = {
        "schema": SCHEMA,
        "incident_id": incident_id,
        "incident_ids": incident_ids,
        "declared": bool(state),
        "title": (state or {}).get("title"),
        "type": (state or {}).get("type"),
        "environment": (state or {}).get("environment"),
        "services": (state or {}).get("services") or [],
        "accounts": (state or {}).get("accounts") or [],
        "impact": (state or {}).get("impact") or None,
        "severity": severity,
        "severity_source": "lifecycle" if (state or {}).get("severity") else ("note" if note_severity else None),
        "severity_history": (state or {}).get("severity_history") or [],
        "severity_policy": (state or {}).get("policy_name"),
        "status": (state or {}).get("status"),
        "resolved": bool(resolved_at),
        "status_history": (state or {}).get("status_history") or [],
        "roles": (state or {}).get("roles") or {},
        "role_history": (state or {}).get("role_history") or [],
        "communications": (state or {}).get("communications") or [],
        "communications_not_delivered": sum(
            1 for c in (state or {}).get("communications") or [] if not c.get("delivered")
        ),
        "first_event": {"at": _iso(t0), "source": t0_source},
        "declared_at": (state or {}).get("declared_at"),
        "resolved_at": resolved_at,
        "duration_seconds": round((end - t0).total_seconds(), 3) if end and t0 else None,
        "clocks": clocks,
        "steps": steps,
        "containments": _containments(records, incident_id),
        "targets": targets,
        "failed_targets": [t["name"] for t in targets if t["failed"]],
        "review": due,
        "review_due": due["due"],
        "outcome": {
            "task_results": len(tasks),
            "changed": sum(1 for r in records if r.get("changed") and str(r.get("event", "")).startswith("task_")),
            "failed": len(failed),
            "failed_ignored": sum(1 for r in failed if _ignored(r)),
            "unreachable": sum(1 for r in records if r.get("event") == "host_unreachable"),
        },
        "chart": {"key_actions": total, "shown": len(shown), "left_out": total - len(shown), "max": chart_max},
        "timeline": {
            "path": str(path),
            "records": len(records),
            "first_seq": first.get("seq"),
            "first_at": first.get("ts"),
            "last_at": last.get("ts"),
            "last_seq": last.get("seq"),
            "first_hash": first.get("hash"),
            "last_hash": last.get("hash"),
            "seals_checked": len(seals or ()),
            "durable": durable,
        },
    }
    return facts, {"times": times, "shown": shown, "state": state, "t0": t0}


def mermaid_chart(facts, shown):
    """The Mermaid gantt chart of the phases (between the milestones reached, in time order) and the key actions
    (``shown``: records), one section per target when there is more than one."""
    title = "Incident " + (facts.get("incident_id") or "unknown")
    if facts.get("title"):
        title += " - " + facts["title"]
    points = []
    labels = {
        "first_event": "first event",
        "declaration": "declared",
        "mitigation": "mitigated",
        "containment": "contained",
        "recovery": "recovered",
        "resolution": "resolved",
    }
    t0 = parse_timestamp(facts["first_event"]["at"]) if facts["first_event"]["at"] else None
    if t0:
        points.append((t0, "first_event"))
    for name in CLOCKS:
        clock = facts["clocks"][name]
        if clock["reached"]:
            points.append((parse_timestamp(clock["at"]), name))
    points.sort(key=lambda p: (p[0], CLOCKS.index(p[1]) if p[1] in CLOCKS else -1))
    times = [parse_timestamp(r.get("ts")) for r in shown]
    span = [t for t in [p[0] for p in points] + times if t]
    many_days = bool(span) and (max(span) - min(span)).total_seconds() >= 86400
    lines = [
        "gantt",
        f"    title {mermaid_text(title, 120)}",
        "    dateFormat YYYY-MM-DD HH:mm:ss",
        "    axisFormat " + ("%m-%d %H:%M" if many_days else "%H:%M"),
        "    todayMarker off",
    ]
    if points:
        lines.append("    section Phases")
        for i, ((start, a), (stop, b)) in enumerate(itertools.pairwise(points)):
            label = mermaid_text(f"{labels[a]} to {labels[b]}")
            lines.append(f"    {label} :done, ph{i + 1}, {_mermaid_time(start)}, {_mermaid_time(stop)}")
        if not facts["resolved"]:
            last = parse_timestamp(facts["timeline"].get("last_at")) or points[-1][0]
            if last < points[-1][0]:
                last = points[-1][0]
            label = mermaid_text(f"{labels[points[-1][1]]} - not resolved")
            lines.append(f"    {label} :active, ph{len(points)}, {_mermaid_time(points[-1][0])}, {_mermaid_time(last)}")
        lines.append("    section Milestones")
        for i, (at, name) in enumerate(points):
            lines.append(f"    {mermaid_text(labels[name])} :milestone, ms{i + 1}, {_mermaid_time(at)}, 0s")
    # in the targets' order (first seen in the timeline), then any other host
    targets = list(dict.fromkeys([t["name"] for t in facts["targets"]] + [r.get("host") or "-" for r in shown]))
    by_target = len({t["name"] for t in facts["targets"]}) > 1
    groups = [(t, [r for r in shown if (r.get("host") or "-") == t]) for t in targets] if by_target else [("", shown)]
    n = 0
    for target, recs in groups:
        if not recs:
            continue
        lines.append("    section " + (mermaid_text("target " + target, 60) if by_target else "Key actions"))
        for rec in recs:
            n += 1
            at = parse_timestamp(rec.get("ts"))
            if at is None:
                continue
            kind = record_step_kind(rec) if _is_task(rec) else None
            failure = rec.get("event") in ("task_failed", "host_unreachable")
            what = "unreachable" if rec.get("event") == "host_unreachable" else (rec.get("task") or rec.get("action"))
            label = f"{kind or 'failed'} - {what}"
            if kind == VERIFICATION:
                label += " (passed)" if verification_passed(rec) else " (not passed)"
            elif failure and kind:
                label += " (failed)"
            if not by_target and rec.get("host"):
                label += f" on {rec['host']}"
            tag = (
                "crit, milestone" if failure or (kind == VERIFICATION and not verification_passed(rec)) else "milestone"
            )
            lines.append(f"    {mermaid_text(label)} :{tag}, a{n}, {_mermaid_time(at)}, 0s")
    return "\n".join(lines)


def render_json(facts):
    """``report.json``: the facts, keys sorted, two-space indented, one trailing newline (deterministic)."""
    return json.dumps(facts, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


# --------------------------------------------------------------------------------------------
# report.md
# --------------------------------------------------------------------------------------------


def _diff_text(before, after):
    def lines(value):
        if isinstance(value, str):
            return value.splitlines()
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str).splitlines()

    return "\n".join(difflib.unified_diff(lines(before), lines(after), "before", "after", lineterm=""))


def _render_action(rec, level="###"):
    out = []
    title = rec.get("task") or rec.get("action") or "task"
    out.append("{} seq {} — {} UTC — {}".format(level, rec.get("seq"), _clock(rec.get("ts")), _md(title)))
    kind = record_step_kind(rec)
    facts = [
        "host `{}`".format(rec.get("host")) if rec.get("host") else None,
        "action `{}`".format(rec.get("action")) if rec.get("action") else None,
        "role `{}`".format(rec.get("role")) if rec.get("role") else None,
        f"step: **{kind}**" if kind else None,
        "**check mode — nothing was changed**" if rec.get("check_mode") else None,
        "**failed**" if rec.get("event") == "task_failed" else None,
        "by {}".format(_md(_operator_label(rec.get("operator")))),
    ]
    out.append("- " + " · ".join(f for f in facts if f))
    if rec.get("msg"):
        out.append("- Message: {}".format(_md(_one_line(rec.get("msg"), 500))))
    details = rec.get("details") if isinstance(rec.get("details"), dict) else {}
    shown = False
    if "before" in details or "after" in details:
        out += [
            "",
            "Before:",
            "",
            _json_block(details.get("before")),
            "",
            "After:",
            "",
            _json_block(details.get("after")),
        ]
        shown = True
    diffs = details.get("diff")
    if diffs and not shown:
        for diff in diffs if isinstance(diffs, list) else [diffs]:
            if not isinstance(diff, dict):
                continue
            if "prepared" in diff:
                out += ["", _fence(diff["prepared"], "diff")]
                shown = True
            elif "before" in diff or "after" in diff:
                text = _diff_text(diff.get("before", ""), diff.get("after", ""))
                if text:
                    out += ["", _fence(text, "diff")]
                    shown = True
    rest = {k: v for k, v in details.items() if k not in ("before", "after", "diff")}
    if rest:
        out += ["", "Result:" if shown else "Result (no before/after recorded):", "", _json_block(rest)]
    elif not shown:
        out.append("- No before/after recorded.")
    out.append("")
    return out


def _when(at):
    dt = parse_timestamp(at) or lc.parse_iso(at)
    return dt.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if dt else "unknown"


def _clock_text(clock, name):
    if not clock["reached"]:
        return "not reached" + (" (the incident is not resolved)" if name == "resolution" else "")
    text = format_duration(clock["seconds"]) if clock["seconds"] is not None else "unknown"
    text += f" ({_clock(clock['at'])} UTC"
    if clock.get("seq") is not None:
        text += f", seq {clock['seq']}"
    return text + ")"


def _review_text(review):
    if review.get("due"):
        return f"{review['due']} ({_md(review['note'])})"
    return f"not set: {_md(review.get('note') or '')}"


def render_markdown(records, facts, extra, path, last_hash=None, seals=()):
    """``report.md`` for verified ``records`` (``facts``, ``extra``: from ``report_facts``)."""
    first, last = records[0], records[-1]
    times, state, t0 = extra["times"], extra["state"], extra["t0"]
    t_last = parse_timestamp(last.get("ts"))
    operators = []
    for rec in records:
        label = _operator_label(rec.get("operator"))
        if rec.get("operator") and label not in operators:
            operators.append(label)
    runs = _runs(records)
    failed = [r for r in records if r.get("event") == "task_failed"]
    failed_ignored = [r for r in failed if _ignored(r)]
    unreachable = [r for r in records if r.get("event") == "host_unreachable"]
    changed = [r for r in records if r.get("changed") and str(r.get("event", "")).startswith("task_")]
    notes = [r for r in records if r.get("event") == "note"]
    targets = facts["targets"]
    by_target = len(targets) > 1

    playbooks = {}
    for run in runs:
        name = run["start"].get("playbook") or "?"
        entry = playbooks.setdefault(name, {"runs": 0, "check": 0, "failed": 0, "unfinished": 0})
        entry["runs"] += 1
        if run["start"].get("check_mode"):
            entry["check"] += 1
        if run["end"] is None:
            entry["unfinished"] += 1
        elif isinstance(run["end"].get("details"), dict) and run["end"]["details"].get("outcome") == "failed":
            entry["failed"] += 1

    def since_start(rec):
        dt = parse_timestamp(rec.get("ts"))
        return format_duration((dt - t0).total_seconds()) if dt and t0 else "unknown"

    title_id = ", ".join(facts["incident_ids"]) or "unknown incident"
    heading = f"# Post-incident report: {_md(title_id)}"
    if facts.get("title"):
        heading += f" — {_md(facts['title'])}"
    out = [heading, ""]
    out.append(
        f"Rendered by `firebreak.runbooks.incident_report` from {_code(path)} ({len(records)} records, hash chain "
        "verified); the same facts are in `report.json` beside this file (docs/report.md). Sections marked "
        "_to be completed_ are for the post-mortem meeting."
    )
    out.append("")

    # ---- Summary
    out += ["## Incident Summary", ""]
    d0 = t0.strftime("%Y-%m-%d") if t0 else "unknown"
    d1 = t_last.strftime("%Y-%m-%d") if t_last else d0
    out.append(f"- **Incident**: {_md(title_id)}")
    if facts.get("title"):
        out.append(f"- **Title**: {_md(facts['title'])}")
    out.append("- **Date**: %s" % (d0 if d0 == d1 else f"{d0} to {d1}"))
    end_label = "resolution" if facts["resolved"] else "last record"
    end_at = facts["resolved_at"] if facts["resolved"] else last.get("ts")
    out.append(
        "- **Duration**: {} (first event {} UTC to {} {} UTC{})".format(
            format_duration(facts["duration_seconds"]),
            _clock(facts["first_event"]["at"]),
            end_label,
            _clock(end_at),
            "" if facts["resolved"] else "; not resolved",
        )
    )
    severity = lc.report_severity(state) or facts["severity"]
    out.append("- **Severity**: %s" % (_md(severity) if severity else "_to be completed_"))
    if not facts["declared"]:
        out.append(
            "- **Status**: not declared (no lifecycle record: use the `firebreak.runbooks.incident_declare` role)"
        )
    elif facts["resolved"]:
        out.append(f"- **Status**: resolved at {_when(facts['resolved_at'])}")
    else:
        out.append(f"- **Status**: **unresolved** (status {_md(facts['status'])})")
    out.append("- **Impact**: %s" % (_md(facts["impact"]) if facts.get("impact") else "_to be completed_"))
    if facts["declared"]:
        out.append(
            "- **Environment**: {}; **services**: {}; **accounts**: {}".format(
                _md(facts.get("environment") or "not given"),
                _md(", ".join(facts["services"]) or "not given"),
                _md(", ".join(facts["accounts"]) or "not given"),
            )
        )
        roles = facts["roles"]
        out.append(
            "- **Roles**: "
            + (
                "; ".join(f"{lc.ROLE_LABELS.get(r, r)}: {_md(roles[r])}" for r in lc.ROLES if roles.get(r))
                or "none recorded"
            )
        )
    out.append("- **Root Cause**: _to be completed (see below)_")
    out.append("- **Operators**: %s" % (", ".join(_md(o) for o in operators) or "unknown"))
    out.append(f"- **Playbooks run**: {len(runs)} run(s)")
    for name, entry in sorted(playbooks.items()):
        flags = []
        if entry["check"]:
            flags.append(f"**{entry['check']} check-mode only (changed nothing)**")
        if entry["failed"]:
            flags.append(f"{entry['failed']} with failures")
        if entry["unfinished"]:
            flags.append(f"{entry['unfinished']} without a recorded end (interrupted or stopped)")
        out.append(f"  - {_code(name)}: {entry['runs']} run(s)" + ((" — " + ", ".join(flags)) if flags else ""))
    outcome = facts["outcome"]
    text = f"{outcome['task_results']} task result(s), {outcome['changed']} changed, {outcome['failed']} failed"
    if outcome["failed_ignored"]:
        text += f" ({outcome['failed_ignored']} ignored)"
    text += f", {outcome['unreachable']} host(s) unreachable"
    if any(e["check"] for e in playbooks.values()):
        text += "; check-mode runs are flagged above and count neither as containment nor as recovery"
    out.append(f"- **Outcome**: {text}")
    if targets:
        out.append(
            "- **Targets**: {}{}".format(
                len(targets),
                (
                    " ({} failed: {})".format(
                        len(facts["failed_targets"]), ", ".join(_md(t) for t in facts["failed_targets"])
                    )
                    if facts["failed_targets"]
                    else ", none failed"
                ),
            )
        )
    out.append(
        "- **First event**: {} ({})".format(
            _when(facts["first_event"]["at"]),
            "given at declaration" if facts["first_event"]["source"] == "declaration" else "the first record",
        )
    )
    for name in CLOCKS:
        out.append(f"- **{CLOCK_LABELS[name]}**: {_clock_text(facts['clocks'][name], name)}")
    out.append(f"- **Post-incident review due**: {_review_text(facts['review'])}")
    out.append("")

    # ---- Chart
    out += ["## Phases and Key Actions", ""]
    out.append(_fence(mermaid_chart(facts, extra["shown"]), "mermaid"))
    out.append("")
    chart = facts["chart"]
    if chart["left_out"]:
        out.append(
            f"The chart shows {chart['shown']} of {chart['key_actions']} key actions (the milestones and failures "
            f"first); {chart['left_out']} left out. Every action is in the Timeline and Actions sections."
        )
    else:
        out.append(f"The chart shows all {chart['key_actions']} key action(s) (changed, failed or verifying steps).")
    out.append("")

    # ---- Timeline
    out += ["## Timeline", "", "All times UTC; `#` is the record's seq.", ""]
    lines = []
    day = None
    for rec in records:
        dt = parse_timestamp(rec.get("ts"))
        if dt and dt.strftime("%Y-%m-%d") != day:
            day = dt.strftime("%Y-%m-%d")
            lines.append(f"--- {day} ---")
        event = rec.get("event")
        parts = []
        if event == "playbook_start":
            parts.append(
                "{} started by {}".format(
                    _one_line(rec.get("playbook")), _one_line(_operator_label(rec.get("operator")))
                )
            )
            if rec.get("check_mode"):
                parts.append("(check mode)")
        elif event == "playbook_end":
            parts.append(_one_line(rec.get("msg")))
        elif event == "play_start":
            parts.append("play: {}".format(_one_line(rec.get("play"))))
        elif event == "note":
            kind = rec["details"].get("kind") if isinstance(rec.get("details"), dict) else None
            parts.append("{}: {}".format(kind or "note", _one_line(rec.get("msg"))))
        else:
            host = "[{}]".format(_one_line(rec.get("host"))) if rec.get("host") else ""
            parts.append("{} {}".format(host, _one_line(rec.get("task") or rec.get("action") or "")))
            if rec.get("check_mode"):
                parts.append("(check mode)")
            if rec.get("msg"):
                parts.append("- " + _one_line(rec.get("msg")))
        lines.append(
            "{} UTC - #{} {} {}".format(
                _clock(rec.get("ts")), rec.get("seq"), event, " ".join(p for p in parts if p).strip()
            )
        )
    out.append(_fence("\n".join(lines)))
    out.append("")

    # ---- Targets
    if by_target or facts["failed_targets"]:
        out += ["## Targets", ""]
        out.append(
            "Each inventory host that ran a step or failed, with its outcome in the last run that touched it "
            "(failed: a task failed there or it was unreachable, and it did not finish)."
        )
        out += ["", "| Target | Steps | Changed | Mitigated | Recovered | Outcome |", "|---|---|---|---|---|---|"]
        for t in targets:
            outcome = t["status"]
            if t["failure"]:
                outcome = "**failed** at seq {}: {}{}".format(
                    t["failure"]["seq"],
                    _md(t["failure"]["what"]),
                    (" — " + _md(_one_line(t["failure"]["msg"], 160))) if t["failure"]["msg"] else "",
                )
            out.append(
                "| {} | {} | {} | {} | {} | {} |".format(
                    _md(t["name"]),
                    t["steps"],
                    t["changed"],
                    _clock(t["mitigated_at"]) + " UTC" if t["mitigated_at"] else "-",
                    _clock(t["recovered_at"]) + " UTC" if t["recovered_at"] else "-",
                    outcome,
                )
            )
        out.append("")
        if facts["failed_targets"]:
            out.append(
                "Failed targets ({}): {}. The other targets went on.".format(
                    len(facts["failed_targets"]), ", ".join(_md(t) for t in facts["failed_targets"])
                )
            )
        else:
            out.append("Every target finished or is still running; none failed.")
        out.append("")

    # ---- Actions
    out += ["## Actions", ""]
    if changed:
        out.append("Every task that reported a change, with its before/after state as recorded.")
        out.append("")
        if by_target:
            names = [t["name"] for t in targets]
            others = sorted({r.get("host") or "-" for r in changed} - set(names))
            for name in names + others:
                recs = [r for r in changed if (r.get("host") or "-") == name]
                if not recs:
                    continue
                label = "Target" if name in names else "Host"
                out += [f"### {label} {_md(name)}", ""]
                for rec in recs:
                    out += _render_action(rec, "####")
        else:
            for rec in changed:
                out += _render_action(rec)
    else:
        out.append("No task reported a change.")
        out.append("")

    # ---- Containments
    cont = facts["containments"]
    if cont["open"] or cont["released"]:
        out += ["## Containments", ""]
        for label, entries in (("Still in place", cont["open"]), ("Released", cont["released"])):
            out.append(f"{label} ({len(entries)}):")
            out.append("")
            for e in entries:
                out.append(
                    "- {} {} on {} (seq {}{})".format(
                        _md(e.get("step") or "containment"),
                        _code(e.get("resource") or e["id"]),
                        _md(e.get("target") or "-"),
                        e.get("seq"),
                        f", released at seq {e['released_seq']}" if e.get("released_seq") else "",
                    )
                )
            if not entries:
                out.append("- none")
            out.append("")

    # ---- Lifecycle
    out += ["## Incident Lifecycle", ""]
    out += lc.report_lines(state, md=_md)

    # ---- Notes
    out += ["## Notes, Decisions and Communications", ""]
    if notes:
        for rec in notes:
            det = rec.get("details") if isinstance(rec.get("details"), dict) else {}
            extra_bits = [
                x for x in (det.get("severity"), ("to " + det["audience"]) if det.get("audience") else None) if x
            ]
            out.append(
                "- {} UTC — **{}**{}: {} — {}".format(
                    _clock(rec.get("ts")),
                    _md(det.get("kind") or "note"),
                    (" ({})".format(_md(", ".join(extra_bits)))) if extra_bits else "",
                    _md(_one_line(rec.get("msg"), 2000)),
                    _md(_operator_label(rec.get("operator"))),
                )
            )
    else:
        out.append(
            "No notes were recorded (add them with `playbooks/incident_note.yml` or the "
            "`firebreak.runbooks.incident_note` module)."
        )
    out.append("")

    # ---- Time to containment / recovery
    out += ["## Time to Containment and Recovery", ""]
    out.append(
        "Measured from the first event ({} UTC, {}), by the `step_kind` each step recorded: mitigation is the first "
        "changed containment, mitigation or recovery step; containment the first changed containment step; recovery "
        "the first verification whose checks all passed after a mitigation (else the first changed recovery step); "
        "declaration and resolution from the lifecycle records. Check-mode runs do not count.".format(
            _clock(facts["first_event"]["at"]),
            "given at declaration" if facts["first_event"]["source"] == "declaration" else "the first record",
        )
    )
    out.append("")
    out.append("| Milestone | Time | After | Step |")
    out.append("|---|---|---|---|")
    for name in CLOCKS:
        clock = facts["clocks"][name]
        label = name.capitalize()
        if not clock["reached"]:
            out.append(f"| {label} | not reached | - | - |")
            continue
        rec = times.get({"mitigation": MITIGATION, "containment": CONTAINMENT, "recovery": RECOVERY}.get(name))
        if rec:
            step = "seq {}: {} ({}{}) on {}".format(
                rec.get("seq"),
                _md(rec.get("task") or ""),
                _md(rec.get("role") or ""),
                (", " if rec.get("role") else "") + _md(rec.get("action") or ""),
                _md(rec.get("host") or "-"),
            )
            if name == "recovery" and clock.get("basis") == "recovery_step":
                step += " (a recovery step: no passing verification was recorded)"
        else:
            step = f"seq {clock.get('seq')}: lifecycle record" if clock.get("seq") is not None else "lifecycle record"
        after = format_duration(clock["seconds"]) if clock["seconds"] is not None else "unknown"
        out.append(f"| {label} | {_clock(clock['at'])} UTC | {after} | {step} |")
    out.append("")

    # ---- Follow-ups
    out += ["## Follow-ups", ""]
    out.append(f"**Post-incident review due**: {_review_text(facts['review'])}.")
    out.append("")
    out += ["### Root Cause", "", "_To be completed._", ""]
    out += ["### Contributing Factors", "", "1. _To be completed._", ""]
    out += ["### What Went Well", ""]
    if times[CONTAINMENT]:
        out.append(f"- Containment reached {since_start(times[CONTAINMENT])} after the first event.")
    if times[RECOVERY]:
        out.append(f"- Recovery reached {since_start(times[RECOVERY])} after the first event.")
    out += ["- _To be completed._", ""]
    out += ["### What Didn't Go Well", ""]
    for rec in failed:
        out.append(
            "- seq {}: {} failed on {}{}: {}".format(
                rec.get("seq"),
                _code(rec.get("task") or rec.get("action") or "task"),
                _md(rec.get("host") or "-"),
                " (ignored)" if rec in failed_ignored else "",
                _md(_one_line(rec.get("msg"), 300)),
            )
        )
    for rec in unreachable:
        out.append(
            "- seq {}: host {} unreachable: {}".format(
                rec.get("seq"), _md(rec.get("host")), _md(_one_line(rec.get("msg")))
            )
        )
    for c in facts["communications"]:
        if not c.get("delivered"):
            out.append(
                "- The {} post of the {} record was not delivered: {}".format(
                    str(c.get("channel")).replace("_", " "), _md(c.get("for_event")), _md(c.get("error") or "no answer")
                )
            )
    out += ["- _To be completed._", ""]
    out += ["### Action Items", ""]
    due = facts["review"].get("due") or "YYYY-MM-DD"
    for rec in failed:
        task = _code(rec.get("task") or rec.get("action") or "task")
        out.append(
            f"- [ ] Find out why {task} failed (seq {rec.get('seq')}) and fix the runbook or the system "
            f"[Owner: TBD] [Due: {due}]"
        )
    for entry in facts["containments"]["open"]:
        out.append(
            "- [ ] Release the containment applied at seq {} ({} on {}) when it is safe [Owner: TBD] [Due: {}]".format(
                entry.get("seq"), _code(entry.get("step") or entry["id"]), _md(entry.get("target") or "-"), due
            )
        )
    if not facts["containments"]["open"] and not facts["containments"]["released"]:
        for rec in changed:  # containments recorded without ledger entries (older records)
            if record_step_kind(rec) == CONTAINMENT and not rec.get("check_mode"):
                out.append(
                    "- [ ] Release the containment applied at seq {} ({} on {}) when it is safe "
                    "[Owner: TBD] [Due: {}]".format(
                        rec.get("seq"), _code(rec.get("task") or rec.get("action")), _md(rec.get("host") or "-"), due
                    )
                )
    out.append("- [ ] _Action item_ [Owner: TBD] [Due: YYYY-MM-DD]")
    out.append("")

    # ---- Chain verification
    out += ["## Timeline Verification", ""]
    out.append(f"- **File**: {_code(path)}")
    out.append(
        f"- **Records**: {len(records)} (seq {first.get('seq')} to {last.get('seq')}), "
        "every `prev_hash` link and `hash` verified"
    )
    out.append("- **First hash**: `{}`".format(first.get("hash")))
    out.append("- **Last hash**: `%s`" % (last_hash or last.get("hash")))
    out += _durable_lines(facts["timeline"].get("durable"))
    if seals:
        out.append(f"- **Seals**: {len(seals)} checked, every one holds (no record removed or rewritten after it)")
        for seal in seals:
            out.append(
                "  - seq {} `{}` sealed {} ({})".format(
                    seal.get("seq"),
                    str(seal.get("hash"))[:16],
                    _md(seal.get("sealed_at") or "?"),
                    _md(seal.get("source")),
                )
            )
    else:
        out.append(
            "- **Seals**: none checked: a cut tail or a rewritten chain cannot be ruled out (seal with "
            "`playbooks/incident_seal.yml` into the inventory's `firebreak_evidence_bucket`, or pass `incident_seals`)"
        )
    out.append("")
    out.append(
        "Re-verify at any time with {}; a record changed, removed or inserted after this report fails "
        "verification at its seq.".format(
            _code(f"ansible-playbook playbooks/incident_report.yml -e incident_timeline={path}")
        )
    )
    out.append("")
    return "\n".join(out)


def _durable_lines(durable):
    """The durable copy's line of Timeline Verification (``durable``: see ``incident_report``'s ``durable``)."""
    if not durable:
        return [
            "- **Durable copy**: none (no evidence bucket: the timeline was kept in the local file only, which an "
            "AWX job's container does not keep)"
        ]
    where = _code(durable.get("location"))
    if durable.get("complete"):
        return [
            f"- **Durable copy**: {where}, complete ({durable.get('records')} records, verified as one chain"
            + (
                "; the report was rendered from it: the local file was absent or shorter)"
                if durable.get("used")
                else ")"
            )
        ]
    return [
        f"- **Durable copy**: {where}, **incomplete**: it holds {durable.get('records')} of the "
        f"{durable.get('expected')} records (the write-through failed"
        + (f" from seq {durable['gap_from']}" if durable.get("gap_from") else "")
        + "; the rest are only in the local file: keep it, and run any playbook of the incident to copy them)"
    ]


def render(
    records, path, last_hash=None, seals=(), review=None, holidays=(), chart_max=CHART_MAX_ACTIONS, durable=None
):
    """``(markdown, json_text, facts)`` for verified ``records`` of the timeline ``path``."""
    facts, extra = report_facts(
        records, path, seals=seals, review=review, holidays=holidays, chart_max=chart_max, durable=durable
    )
    markdown = render_markdown(records, facts, extra, path, last_hash=last_hash, seals=seals)
    return markdown, render_json(facts), facts
