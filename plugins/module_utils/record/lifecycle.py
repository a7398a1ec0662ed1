# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The incident lifecycle: severity policy, the record of declare/update/resolve, the state folded from
the timeline's earlier lifecycle records, and the communications rendered from the seeds' templates.

Pure functions (no Ansible, no I/O) so that the action plugin stays thin and the rules are unit-tested.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta, timezone

SEVERITIES = ("P1", "P2", "P3", "P4")
STATUSES = ("investigating", "identified", "monitoring", "resolved")
ROLES = ("commander", "tech_lead", "comms", "approver", "scribe")
ROLE_LABELS = {
    "commander": "Incident Commander",
    "tech_lead": "Tech Lead",
    "comms": "Communications Lead",
    "approver": "Approver",
    "scribe": "Scribe",
}
EVENTS = ("declared", "update", "resolved", "delivery")
CHANNELS = ("chat", "status_page")
LIFECYCLE_ACTIONS = frozenset(("firebreak.runbooks.incident_lifecycle", "incident_lifecycle"))

# The seeds' severity tables.  ``response_minutes`` None is "next business day"; ``update_every_minutes``
# None means no update cadence is asked for; ``status_page`` is whether the status page is updated.
PRESETS = {
    # incident-procedures.md: Severity Levels (response 15 min / 1 h / 4 h / next business day) and
    # Communication Protocol (updates every 15 minutes for P1, 30 minutes for P2; status page for P1/P2)
    "incident-procedures": {
        "P1": {"label": "Critical", "response_minutes": 15, "update_every_minutes": 15, "status_page": True},
        "P2": {"label": "High", "response_minutes": 60, "update_every_minutes": 30, "status_page": True},
        "P3": {"label": "Medium", "response_minutes": 240, "update_every_minutes": None, "status_page": False},
        "P4": {"label": "Low", "response_minutes": None, "update_every_minutes": None, "status_page": False},
    },
    # serverless-neptune-runbook.md: Incident Severity Levels (response 5 / 15 / 60 min / next business day);
    # it gives no update cadence, so the procedures' 15 / 30 minutes stand
    "serverless": {
        "P1": {"label": "Critical", "response_minutes": 5, "update_every_minutes": 15, "status_page": True},
        "P2": {"label": "High", "response_minutes": 15, "update_every_minutes": 30, "status_page": True},
        "P3": {"label": "Medium", "response_minutes": 60, "update_every_minutes": None, "status_page": False},
        "P4": {"label": "Low", "response_minutes": None, "update_every_minutes": None, "status_page": False},
    },
}
POLICY_KEYS = {"label": str, "response_minutes": int, "update_every_minutes": int, "status_page": bool}


class LifecycleError(ValueError):
    """A lifecycle request that cannot be recorded (the message names the bad value)."""


# ------------------------------------------------------------------------------------------ policy


def resolve_policy(preset="incident-procedures", overrides=None):
    """The severity table: ``preset`` with an organisation's ``overrides`` (per severity, per key) on top."""
    if preset not in PRESETS:
        raise LifecycleError(f"unknown severity policy preset {preset!r}: choose one of {', '.join(PRESETS)}")
    policy = copy.deepcopy(PRESETS[preset])
    for severity, entry in (overrides or {}).items():
        if severity not in SEVERITIES:
            raise LifecycleError(f"severity policy override for {severity!r}: severities are {', '.join(SEVERITIES)}")
        if not isinstance(entry, dict):
            raise LifecycleError(f"severity policy override for {severity} must be a mapping, got {entry!r}")
        for key, value in entry.items():
            kind = POLICY_KEYS.get(key)
            if kind is None:
                raise LifecycleError(
                    f"severity policy override {severity}.{key}: unknown key (known: {', '.join(POLICY_KEYS)})"
                )
            if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
                if kind is int and isinstance(value, str) and value.strip().isdigit():
                    value = int(value)
                else:
                    raise LifecycleError(f"severity policy override {severity}.{key}={value!r}: not a {kind.__name__}")
            if kind is int and value is not None and value <= 0:
                raise LifecycleError(f"severity policy override {severity}.{key}={value!r}: must be positive")
            policy[severity][key] = value
    return policy


def response_text(minutes):
    if minutes is None:
        return "next business day"
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour" + ("s" if hours > 1 else "")
    return f"{minutes} minutes"


# ------------------------------------------------------------------------------------------ time


def utc_now():
    return datetime.now(timezone.utc)


def iso(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_iso(text):
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def hhmm(dt):
    return dt.astimezone(timezone.utc).strftime("%H:%M UTC")


def stamp(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def duration_text(seconds):
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour" + ("s" if hours != 1 else ""))
    if minutes or not hours:
        parts.append(f"{minutes} minute" + ("s" if minutes != 1 else ""))
    return " ".join(parts)


# ------------------------------------------------------------------------------------------ state


def lifecycle_records(records, incident_id=None, check_mode=False):
    """The lifecycle records (``details.lifecycle``) of verified timeline ``records``, in order; failed results
    are left out, and check-mode results unless ``check_mode`` (a dry run sees its own predictions)."""
    found = []
    for rec in records:
        if rec.get("event") not in ("task_ok", "task_changed") or (rec.get("check_mode") and not check_mode):
            continue
        if rec.get("action") not in LIFECYCLE_ACTIONS:
            continue
        details = rec.get("details")
        if not isinstance(details, dict) or not isinstance(details.get("lifecycle"), dict):
            continue
        if incident_id and rec.get("incident_id") not in (None, incident_id):
            continue
        found.append(dict(details["lifecycle"], seq=rec.get("seq"), ts=rec.get("ts")))
    return found


def fold(entries, state=None):
    """The incident's current state from its lifecycle entries (``lifecycle_records``) applied on ``state``
    (None: from the start), or None if undeclared."""
    state = copy.deepcopy(state)
    for entry in entries:
        event = entry.get("event")
        if event == "declared":
            if state is not None and state.get("status") != "resolved":
                continue  # a repeated declaration of an open incident recorded nothing new
            state = {
                "declared_seq": entry.get("seq"),
                "declared_at": entry.get("at"),
                "communications": [],
                "updates": 0,
            }
            for key in (
                "incident_id",
                "title",
                "type",
                "environment",
                "services",
                "accounts",
                "impact",
                "first_event_at",
            ):
                state[key] = copy.deepcopy(entry.get(key))
            state["policy_name"] = entry.get("policy_name")
            state["policy"] = copy.deepcopy(entry.get("policy"))
            state["severity"] = entry.get("severity")
            state["status"] = entry.get("status")
            state["roles"] = dict(entry.get("roles") or {})
            state["role_history"] = [dict(h) for h in entry.get("role_history") or []]
            state["severity_history"] = [{"severity": entry.get("severity"), "at": entry.get("at")}]
            state["status_history"] = [{"status": entry.get("status"), "at": entry.get("at")}]
            state["next_update_due"] = entry.get("next_update_due")
            state["resolved_at"] = None
            state["resolved_seq"] = None
            continue
        if state is None:
            continue
        if event in ("update", "resolved"):
            if entry.get("severity") and entry["severity"] != state["severity"]:
                state["severity"] = entry["severity"]
                state["severity_history"].append({"severity": entry["severity"], "at": entry.get("at")})
            if entry.get("status") and entry["status"] != state["status"]:
                state["status"] = entry["status"]
                state["status_history"].append({"status": entry["status"], "at": entry.get("at")})
            state["roles"] = dict(entry.get("roles") or state["roles"])
            state["role_history"].extend(dict(h) for h in entry.get("role_changes") or [])
            if entry.get("impact"):
                state["impact"] = entry["impact"]
            state["next_update_due"] = entry.get("next_update_due")
            state["updates"] += 1 if event == "update" else 0
            state["last_update_at"] = entry.get("at")
            if event == "resolved":
                state["resolved_at"] = entry.get("at")
                state["resolved_seq"] = entry.get("seq")
        elif event == "delivery":
            state["communications"].append(
                {
                    k: entry.get(k)
                    for k in ("channel", "for_event", "delivered", "attempts", "status_code", "error", "at")
                }
            )
    return state


# ------------------------------------------------------------------------------------------ validation


def check_roles(roles, what="roles"):
    """Role name -> person, for the known role names; empty values are dropped."""
    if roles is None:
        return {}
    if not isinstance(roles, dict):
        raise LifecycleError(f"{what} must be a mapping of role to person, got {roles!r}")
    unknown = sorted(str(k) for k in roles if k not in ROLES)
    if unknown:
        raise LifecycleError(f"{what}: unknown role(s) {', '.join(unknown)}; the roles are {', '.join(ROLES)}")
    return {k: str(v).strip() for k, v in roles.items() if v is not None and str(v).strip()}


def check_transition(current, new):
    """Statuses only move forward (investigating → identified → monitoring → resolved); same is fine."""
    if new not in STATUSES:
        raise LifecycleError(f"status {new!r} is not one of {' → '.join(STATUSES)}")
    if current in STATUSES and STATUSES.index(new) < STATUSES.index(current):
        raise LifecycleError(
            f"status cannot go back from {current} to {new} (the order is {' → '.join(STATUSES)}); "
            "record what changed in the update text instead"
        )


TITLE_MAX_CHARS = 200  # a title is one line of a chat message, a status page and the report's heading


def check_title(value):
    """The stripped title; one printable line of at most ``TITLE_MAX_CHARS`` (control characters such as ANSI
    escapes and newlines would repaint a terminal or forge a line in the chat message and the report)."""
    title = (value or "").strip()
    if not title:
        raise LifecycleError("title must not be empty")
    if len(title) > TITLE_MAX_CHARS:
        raise LifecycleError(
            f"title is {len(title)} characters (at most {TITLE_MAX_CHARS}): {title[:40]!r}...; put the detail in "
            "the impact or the message"
        )
    bad = sorted({ch for ch in title if ord(ch) < 32 or 127 <= ord(ch) < 160})
    if bad:
        raise LifecycleError(
            f"title {title[:80]!r} has control characters ({', '.join(repr(ch) for ch in bad)}): give one line "
            "of text (no newlines, tabs or escape sequences)"
        )
    return title


FIRST_EVENT_SKEW_SECONDS = 300  # a clock this far ahead of the controller's is still believed


def check_first_event(value, now):
    """``first_event_at`` (when the incident started: the alarm, the first report) as the record's ISO form, or
    None when not given.  It must carry its time zone (``Z`` or an offset) and lie before the declaration."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    dt = parse_iso(text)
    if dt is None or dt.tzinfo is None:
        raise LifecycleError(
            f"first_event_at {text!r} is not an ISO 8601 time with a time zone (for example 2026-11-24T13:30:00Z)"
        )
    if (dt - now).total_seconds() > FIRST_EVENT_SKEW_SECONDS:
        raise LifecycleError(f"first_event_at {text!r} is later than the declaration ({iso(now)})")
    return iso(dt)


def next_update_due(policy, severity, at):
    every = (policy.get(severity) or {}).get("update_every_minutes")
    return iso(at + timedelta(minutes=every)) if every else None


# ------------------------------------------------------------------------------------------ events


def declare(params, state, now):
    """The lifecycle entry of a declaration, or None when the incident is already declared and open."""
    if state is not None and state.get("status") != "resolved":
        return None
    severity = params["severity"]
    if severity not in SEVERITIES:
        raise LifecycleError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    status = params.get("status") or "investigating"
    check_transition(None, status)
    if status == "resolved":
        raise LifecycleError("an incident cannot be declared resolved: declare it, then resolve it")
    title = check_title(params.get("title"))
    roles = check_roles(params.get("roles"))
    if not roles.get("commander"):
        raise LifecycleError("roles.commander must name the incident commander")
    policy = resolve_policy(params.get("policy_preset") or "incident-procedures", params.get("policy"))
    first_event_at = check_first_event(params.get("first_event_at"), now)
    at = iso(now)
    return {
        "event": "declared",
        "at": at,
        "incident_id": params.get("incident_id"),
        "title": title,
        "type": params.get("type") or "service",
        "severity": severity,
        "status": status,
        "environment": params.get("environment") or "",
        "services": list(params.get("services") or []),
        "accounts": [str(a) for a in params.get("accounts") or []],
        "impact": params.get("impact") or "",
        "first_event_at": first_event_at,
        "roles": roles,
        "role_history": [{"role": r, "person": p, "previous": None, "at": at} for r, p in roles.items()],
        "policy_name": params.get("policy_preset") or "incident-procedures",
        "policy": policy,
        "response_due": (
            iso(now + timedelta(minutes=policy[severity]["response_minutes"]))
            if policy[severity]["response_minutes"]
            else None
        ),
        "update_every_minutes": policy[severity]["update_every_minutes"],
        "next_update_due": next_update_due(policy, severity, now),
        "message": params.get("message") or "",
    }


def _changes(params, state, now):
    at = iso(now)
    severity = params.get("severity") or state["severity"]
    if severity not in SEVERITIES:
        raise LifecycleError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    given = check_roles(params.get("roles"))
    roles = dict(state.get("roles") or {})
    role_changes = []
    for role, person in given.items():
        if roles.get(role) != person:
            role_changes.append({"role": role, "person": person, "previous": roles.get(role), "at": at})
            roles[role] = person
    return at, severity, roles, role_changes


def update(params, state, now):
    if state is None:
        raise LifecycleError("no declaration of this incident in its timeline: run incident_declare first")
    if state.get("status") == "resolved":
        raise LifecycleError(f"the incident was resolved at {state.get('resolved_at')}: declare it again to reopen")
    at, severity, roles, role_changes = _changes(params, state, now)
    status = params.get("status") or state["status"]
    check_transition(state["status"], status)
    if status == "resolved":
        raise LifecycleError("status resolved is set by incident_resolve (the resolution announcement)")
    policy = state.get("policy") or resolve_policy()
    entry = {
        "event": "update",
        "at": at,
        "incident_id": state.get("incident_id") or params.get("incident_id"),
        "title": state.get("title"),
        "severity": severity,
        "previous_severity": state["severity"] if severity != state["severity"] else None,
        "status": status,
        "previous_status": state["status"] if status != state["status"] else None,
        "roles": roles,
        "role_changes": role_changes,
        "impact": params.get("impact") or state.get("impact") or "",
        "update": params.get("update") or "",
        "message": params.get("message") or "",
        "update_every_minutes": (policy.get(severity) or {}).get("update_every_minutes"),
        "next_update_due": next_update_due(policy, severity, now),
        "status_page": bool((policy.get(severity) or {}).get("status_page")),
    }
    return entry


def resolve(params, state, now):
    if state is None:
        raise LifecycleError("no declaration of this incident in its timeline: run incident_declare first")
    if state.get("status") == "resolved":
        return None
    at, severity, roles, role_changes = _changes(params, state, now)
    declared = parse_iso(state.get("declared_at"))
    policy = state.get("policy") or resolve_policy()
    return {
        "event": "resolved",
        "at": at,
        "incident_id": state.get("incident_id") or params.get("incident_id"),
        "title": state.get("title"),
        "severity": severity,
        "previous_severity": state["severity"] if severity != state["severity"] else None,
        "status": "resolved",
        "previous_status": state["status"],
        "roles": roles,
        "role_changes": role_changes,
        "impact": params.get("impact") or state.get("impact") or "",
        "summary": params.get("update") or "",
        "message": params.get("message") or "",
        "duration_seconds": round((now - declared).total_seconds(), 3) if declared else None,
        "next_update_due": None,
        "status_page": bool((policy.get(severity) or {}).get("status_page")),
    }


_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.I)


def scrub_urls(text):
    """An error text without any URL in it (a webhook URL is a secret)."""
    return _URL.sub("<url>", str(text or ""))[:500]


def delivery(params, state, now):
    channel = params.get("channel")
    if channel not in CHANNELS:
        raise LifecycleError(f"channel {channel!r} is not one of {', '.join(CHANNELS)}")
    for_event = params.get("for_event")
    if for_event not in ("declared", "update", "resolved"):
        raise LifecycleError(f"for_event {for_event!r} is not one of declared, update, resolved")
    delivered = bool(params.get("delivered"))
    return {
        "event": "delivery",
        "at": iso(now),
        "incident_id": (state or {}).get("incident_id") or params.get("incident_id"),
        "channel": channel,
        "for_event": for_event,
        "delivered": delivered,
        "attempts": params.get("attempts"),
        "status_code": params.get("status_code"),
        "error": None if delivered else (scrub_urls(params.get("error")) or "no answer"),
    }


# ------------------------------------------------------------------------------------------ communications


def _role_lines(roles):
    return [f"{ROLE_LABELS[r]}: {roles[r]}" for r in ROLES if roles.get(r)]


def render(entry, state, policy):
    """``{"chat": text, "status_page": text}`` for a declared/update/resolved entry, from the seeds'
    templates (incident-procedures.md: Slack Incident Announcement, Incident Update Template, Resolution
    Announcement; External Communication for the status page)."""
    event = entry["event"]
    at = parse_iso(entry["at"])
    severity = entry["severity"]
    label = (policy.get(severity) or {}).get("label") or ""
    every = (policy.get(severity) or {}).get("update_every_minutes")
    status = entry["status"].capitalize()
    title = entry.get("title") or ""
    impact = entry.get("impact") or "under assessment"
    if event == "declared":
        chat = [
            "\U0001f6a8 INCIDENT DECLARED \U0001f6a8",
            "",
            f"Incident: {entry.get('incident_id') or ''} {title}".rstrip(),
            f"Severity: {severity} - {label}",
            f"Status: {status}",
            f"Impact: {impact}",
            f"Started: {stamp(parse_iso(entry.get('first_event_at')) or at)}",
        ]
        if entry.get("environment"):
            chat.append(f"Environment: {entry['environment']}")
        if entry.get("services"):
            chat.append(f"Services: {', '.join(entry['services'])}")
        chat += ["", *_role_lines(entry.get("roles") or {}), ""]
        chat.append(
            f"We are investigating and will provide updates every {every} minutes."
            if every
            else "We are investigating."
        )
        external = [
            f"Title: {title}",
            f"Status: {status}",
            "",
            entry.get("message")
            or f"We are currently investigating reports of {impact}. "
            "Our team is actively working to resolve the issue.",
        ]
        if every:
            external += ["", f"Updates will be posted every {every} minutes."]
        external += ["", f"Posted: {stamp(at)}"]
    elif event == "update":
        chat = [f"\U0001f4ca INCIDENT UPDATE [{hhmm(at)}]", ""]
        chat.append(f"Incident: {entry.get('incident_id') or ''} {title}".rstrip())
        if entry.get("previous_severity"):
            chat.append(f"Severity: {severity} - {label} (was {entry['previous_severity']})")
        else:
            chat.append(f"Severity: {severity} - {label}")
        chat += [f"Status: {status}", f"Impact: {impact}"]
        for change in entry.get("role_changes") or []:
            chat.append(
                f"{ROLE_LABELS[change['role']]}: {change['person']}"
                + (f" (was {change['previous']})" if change.get("previous") else "")
            )
        chat += ["", "Update:", entry.get("update") or "No change to report.", ""]
        due = parse_iso(entry.get("next_update_due"))
        chat.append(f"Next update: {hhmm(due)}" if due else "Next update: when there is news")
        external = [f"Title: {title}", f"Status: {status}", "", entry.get("message") or entry.get("update") or ""]
        if due:
            external += ["", f"Next update: {hhmm(due)}"]
        external += ["", f"Posted: {stamp(at)}"]
    else:
        chat = ["\u2705 INCIDENT RESOLVED", ""]
        chat.append(f"Incident: {entry.get('incident_id') or ''} {title}".rstrip())
        chat.append(f"Severity: {severity}")
        if entry.get("duration_seconds") is not None:
            chat.append(f"Duration: {duration_text(entry['duration_seconds'])}")
        chat += [f"Resolved: {stamp(at)}", "", "Summary:", entry.get("summary") or "Service restored.", ""]
        chat.append("Post-mortem will be published within 48 hours.")
        external = [
            f"Title: {title} - Resolved",
            "Status: Resolved",
            "",
            entry.get("message") or entry.get("summary") or "The service has been fully restored.",
            "",
            "We apologize for any inconvenience. A full post-mortem will be published within 48 hours.",
            "",
            f"Resolved: {stamp(at)}",
        ]
    return {"chat": "\n".join(chat), "status_page": "\n".join(external)}


def post_plan(budget, timeout=5, retries=2, delay=1):
    """``{"timeout", "retries", "delay"}`` for a webhook post whose attempts all fit in ``budget`` seconds."""
    budget = max(1, int(budget))
    timeout = max(1, min(int(timeout), budget))
    retries = max(0, int(retries))
    while retries and (retries + 1) * timeout + retries * delay > budget:
        retries -= 1
    return {"timeout": timeout, "retries": retries, "delay": delay, "budget": budget}


# ------------------------------------------------------------------------------------------ report


def report_severity(state):
    """``P1 (raised from P2 at 14:10 UTC)`` for the report's summary, or None without a declaration."""
    if not state:
        return None
    history = state.get("severity_history") or []
    text = state.get("severity") or "?"
    if len(history) > 1:
        text += " (" + " → ".join(h["severity"] for h in history) + ")"
    return text


def report_lines(state, md=str):
    """The report's "Incident Lifecycle" section (Markdown lines) from a folded ``state``; ``md`` escapes text."""
    if not state:
        return [
            "No lifecycle records (declare the incident with the `firebreak.runbooks.incident_declare` role).",
            "",
        ]

    def when(at):
        dt = parse_iso(at)
        return stamp(dt) if dt else "unknown time"

    out = [
        f"- **Title**: {md(state.get('title') or '')}",
        f"- **Type**: {md(state.get('type') or '')}; **environment**: {md(state.get('environment') or 'not given')}",
        f"- **Services**: {md(', '.join(state.get('services') or []) or 'not given')}; "
        f"**accounts**: {md(', '.join(state.get('accounts') or []) or 'not given')}",
        f"- **Severity policy**: {md(state.get('policy_name') or '')}",
        "- **First event**: "
        + (when(state["first_event_at"]) if state.get("first_event_at") else "not given at declaration"),
        f"- **Declared**: {when(state.get('declared_at'))} (seq {state.get('declared_seq')})",
        f"- **Resolved**: {when(state['resolved_at']) if state.get('resolved_at') else 'not resolved'}",
        "",
        "| When | Severity | Status |",
        "|---|---|---|",
    ]
    changes = [(h["at"], f"{h['severity']}", "") for h in state.get("severity_history") or []]
    changes += [(h["at"], "", h["status"]) for h in state.get("status_history") or []]
    merged = {}
    for at, severity, status in sorted(changes, key=lambda c: c[0] or ""):
        row = merged.setdefault(at, ["", ""])
        row[0] = row[0] or severity
        row[1] = row[1] or status
    for at, (severity, status) in merged.items():
        out.append(f"| {when(at)} | {severity} | {status} |")
    out += ["", "Roles (with their history):", ""]
    for entry in state.get("role_history") or []:
        label = ROLE_LABELS.get(entry.get("role"), entry.get("role"))
        was = f" (was {md(entry['previous'])})" if entry.get("previous") else ""
        out.append(f"- {when(entry.get('at'))}: {label}: {md(entry.get('person') or '')}{was}")
    out += ["", "Communications:", ""]
    comms = state.get("communications") or []
    for c in comms:
        outcome = "delivered" if c.get("delivered") else f"**NOT delivered** ({md(c.get('error') or 'no answer')})"
        out.append(
            f"- {when(c.get('at'))}: {c.get('for_event')} to {str(c.get('channel')).replace('_', ' ')}: {outcome}"
            f" after {c.get('attempts')} attempt(s)"
        )
    if not comms:
        out.append("- none posted (no webhook configured, or posting was left to later and not done)")
    out.append("")
    return out
