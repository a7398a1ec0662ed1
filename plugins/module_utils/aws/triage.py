# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Evidence for the incident record after the first mitigation (``aws_triage_info``): bounded and redacted.

Each *section* reads one service's history of the incident window and returns the same shape::

    {"section": "cloudtrail", "status": "ok" | "partial" | "failed", "items": [...], "count": 3,
     "truncated": False, "left_out": 0, "more": False, "errors": []}

- ``items`` are capped at ``max_items``, newest first; ``truncated`` says some were left out and
  ``left_out`` how many were read and dropped.  A listing is read for at most ``MAX_PAGES`` pages: when
  more pages remained unread, ``more`` is true and ``left_out`` is a lower bound.
- ``errors`` holds one entry per failed call (``call``, ``code``, ``message``, ``resource``): a section
  that fails (AccessDenied, GuardDuty not enabled) is reported in its own entry while the other
  sections still return.  ``status`` is ``failed`` when nothing could be read, ``partial`` when some was.
- Every item goes through ``record.redaction.redact`` (CloudTrail's ``CloudTrailEvent`` is parsed first,
  so the secrets inside its request and response are found by key), and an item larger than
  ``MAX_ITEM_BYTES`` keeps its summary fields only.

The window (``since``/``until``) is ISO 8601, epoch seconds, ``now`` or relative to now (``-2h``,
``-90m``, ``-1d12h``); ``parse_window`` checks it and names a bad value.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import json
import re

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import ecs
from ansible_collections.firebreak.runbooks.plugins.module_utils.record.redaction import redact
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    Caller,
    StepAWSError,
    StepError,
    iso_utc,
    parse_time,
    utc_now,
)

SECTIONS = ("cloudtrail", "guardduty", "rds", "ecs", "codepipeline", "lambda", "alarms")
DEFAULT_MAX_ITEMS = 50
MAX_MAX_ITEMS = 1000
MAX_PAGES = 10
MAX_ITEM_BYTES = 8192
MAX_TEXT = 2000
# RDS keeps events for 14 days, CloudTrail's LookupEvents covers 90 days; a window is refused beyond this.
MAX_WINDOW_DAYS = 90

_RELATIVE_RE = re.compile(r"^-\s*((?:\d+\s*[smhdw]\s*)+)$", re.IGNORECASE)
_RELATIVE_PART_RE = re.compile(r"(\d+)\s*([smhdw])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ACCESS_KEY_RE = re.compile(r"^(AKIA|ASIA)[A-Z0-9]{12,124}$")
_INSTANCE_RE = re.compile(r"^i-[0-9a-f]{8,17}$")

# GuardDuty finding criteria fields per resource type (GuardDuty API reference, FindingCriteria).
GUARDDUTY_FIELDS = {
    "instance": "resource.instanceDetails.instanceId",
    "access_key": "resource.accessKeyDetails.accessKeyId",
    "user": "resource.accessKeyDetails.userName",
    "bucket": "resource.s3BucketDetails.name",
    "eks_cluster": "resource.eksClusterDetails.name",
}


# Fields whose values are AWS-defined names, never secrets, which the text rules of the redaction would
# mask (a GuardDuty finding type ``CredentialAccess:IAMUser/AnomalousBehavior`` reads as ``key: value``).
KEEP_FIELDS = {
    "guardduty": ("type",),
    "cloudtrail": ("event_name", "event_source"),
    "alarms": ("type",),
}


class TriageInputError(StepError):
    """Bad input: the message names the option and the value; nothing was called."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class TriageFailed(StepError):
    """Every requested section failed: the first failed call is the step's ``aws_operation``."""

    def __init__(self, sections):
        self.sections = sections
        errors = [(s["section"], e) for s in sections for e in s["errors"]]
        self.first = errors[0][1] if errors else {}
        parts = [f"{name}: {_error_text(e)}" for name, e in errors]
        self.message = "every requested section failed: " + "; ".join(parts)
        super().__init__(self.message)

    def fail_result(self):
        return {
            "aws_operation": self.first.get("call"),
            "aws_error_code": self.first.get("code"),
            "resource": self.first.get("resource"),
            "attempts": self.first.get("attempts", 1),
        }


def _error_text(error):
    text = f"{error.get('call')} failed"
    if error.get("resource"):
        text += f" for {error['resource']}"
    if error.get("code"):
        text += f": {error['code']}"
    if error.get("message"):
        text += f": {error['message']}"
    return text


# --------------------------------------------------------------------------------------------------
# Window and bounds (pure)
# --------------------------------------------------------------------------------------------------


def parse_moment(value, option, now):
    """An aware UTC datetime for ``value``: ``now``, ``-2h`` (``s m h d w``, combined as ``-1d12h``), ISO
    8601 or epoch seconds.  Raises ``TriageInputError`` naming ``option`` and the value."""
    text = str(value).strip() if value is not None else ""
    if text.lower() == "now":
        return now
    match = _RELATIVE_RE.match(text)
    if match:
        seconds = sum(int(n) * _UNIT_SECONDS[u.lower()] for n, u in _RELATIVE_PART_RE.findall(match.group(1)))
        return now - datetime.timedelta(seconds=seconds)
    try:
        return parse_time(text)
    except ValueError:
        raise TriageInputError(
            f"{option}: {value!r} is not a time: expected ISO 8601 such as 2026-11-24T09:30:00Z, epoch seconds, "
            "now, or relative to now such as -2h, -30m, -1d12h (units s, m, h, d, w)"
        ) from None


def parse_window(since, until, now=None):
    """``(start, end)`` of the evidence window; refuses an empty or reversed one, or one longer than 90 days."""
    now = now or utc_now()
    start = parse_moment(since, "since", now)
    end = parse_moment(until, "until", now) if until not in (None, "") else now
    if start >= end:
        raise TriageInputError(
            f"since {since!r} ({iso_utc(start)}) is not before until {until or 'now'!r} ({iso_utc(end)})"
        )
    if end - start > datetime.timedelta(days=MAX_WINDOW_DAYS):
        raise TriageInputError(
            f"the window since {since!r} until {until or 'now'!r} spans {(end - start).days} days; "
            f"CloudTrail keeps {MAX_WINDOW_DAYS} days of events, RDS 14: narrow it"
        )
    return start, end


def check_max_items(value):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_MAX_ITEMS:
        raise TriageInputError(f"max_items must be between 1 and {MAX_MAX_ITEMS}, got {value!r}")
    return value


def cap(items, max_items, more=False, unfetched=0):
    """``{items, count, truncated, left_out, more}``: the first ``max_items`` of ``items`` (``unfetched``: more
    that were listed but not fetched, counted as left out)."""
    kept = list(items[:max_items])
    left_out = max(0, len(items) - max_items) + unfetched
    return {
        "items": kept,
        "count": len(kept),
        "truncated": bool(left_out or more),
        "left_out": left_out,
        "more": bool(more),
    }


def clip(text, limit=MAX_TEXT):
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= limit else text[: limit - 12] + " [truncated]"


def bounded(item, summary_keys, limit=MAX_ITEM_BYTES):
    """``item`` as it is, or (larger than ``limit`` bytes as JSON) only its ``summary_keys`` and ``truncated``."""
    size = len(json.dumps(item, default=str))
    if size <= limit:
        return item
    kept = {k: item[k] for k in summary_keys if k in item}
    kept["truncated"] = f"item of {size} bytes cut to its summary (limit {limit})"
    return kept


def in_window(when, start, end):
    """Whether the datetime (or ISO text) ``when`` is in ``[start, end]``; unknown times count as in."""
    if when is None:
        return True
    if not isinstance(when, datetime.datetime):
        try:
            when = parse_time(when)
        except ValueError:
            return True
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return start <= when <= end


def _iso(value):
    if isinstance(value, datetime.datetime):
        return iso_utc(value if value.tzinfo else value.replace(tzinfo=datetime.UTC))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return iso_utc(datetime.datetime.fromtimestamp(value, datetime.UTC))
    return value


def _time_key(value):
    """Sort key (epoch seconds) for a datetime or ISO text; unknown sorts last when newest first."""
    if isinstance(value, datetime.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=datetime.UTC)).timestamp()
    try:
        return parse_time(value).timestamp()
    except (TypeError, ValueError):
        return float("-inf")


# --------------------------------------------------------------------------------------------------
# Input per section (pure)
# --------------------------------------------------------------------------------------------------


def _text(section, key, value, required=False):
    if value is None or value == "":
        if required:
            raise TriageInputError(f"{section}.{key} is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise TriageInputError(f"{section}.{key} must be a non-empty string, got {value!r}")
    return value.strip()


def _only_keys(section, given, allowed):
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise TriageInputError(
            f"{section}: unknown option(s) {', '.join(unknown)}; {section} takes {', '.join(sorted(allowed))}"
        )


def cloudtrail_lookup(principal=None, resource=None):
    """``(LookupAttributes, post_filter_resource)`` for a principal and/or a resource name.

    LookupEvents takes one attribute per call: an access key id (``AKIA``/``ASIA``) looks up
    ``AccessKeyId``; a user ARN the user name; an assumed-role ARN the role session name (CloudTrail's
    ``Username`` for assumed roles); any other name ``Username``.  With both, the principal is looked up
    and events are kept when they name the resource."""
    if principal:
        if _ACCESS_KEY_RE.match(principal):
            return [{"AttributeKey": "AccessKeyId", "AttributeValue": principal}], resource
        if principal.startswith("arn:"):
            parts = principal.split(":", 5)
            if len(parts) < 6 or not parts[5]:
                raise TriageInputError(f"cloudtrail.principal {principal!r} is not an IAM or STS ARN")
            path = parts[5].split("/")
            if (path[0] == "assumed-role" and len(path) >= 3) or (path[0] in ("user", "role") and len(path) >= 2):
                name = path[-1]
            else:
                raise TriageInputError(
                    f"cloudtrail.principal {principal!r}: expected a user, role or assumed-role ARN, "
                    "a user or role session name, or an access key id"
                )
            return [{"AttributeKey": "Username", "AttributeValue": name}], resource
        return [{"AttributeKey": "Username", "AttributeValue": principal}], resource
    return [{"AttributeKey": "ResourceName", "AttributeValue": resource}], None


def guardduty_criterion(resource, resource_type=None):
    """``(field, resource_type)`` of the GuardDuty criterion for ``resource``: an instance id and an access
    key id are recognised; a bucket, an EKS cluster or a user name needs ``resource_type``."""
    if resource_type:
        if resource_type not in GUARDDUTY_FIELDS:
            raise TriageInputError(
                f"guardduty.resource_type {resource_type!r} is not one of {', '.join(GUARDDUTY_FIELDS)}"
            )
        return GUARDDUTY_FIELDS[resource_type], resource_type
    if _INSTANCE_RE.match(resource):
        return GUARDDUTY_FIELDS["instance"], "instance"
    if _ACCESS_KEY_RE.match(resource):
        return GUARDDUTY_FIELDS["access_key"], "access_key"
    raise TriageInputError(
        f"guardduty.resource {resource!r} is neither an instance id (i-...) nor an access key id (AKIA/ASIA...); "
        f"say what it is with guardduty.resource_type ({', '.join(GUARDDUTY_FIELDS)})"
    )


def validate_sections(params):
    """The requested sections with their checked options, in ``SECTIONS`` order.  Raises
    ``TriageInputError`` naming the option and the value; nothing is called before this passes."""
    wanted = {}
    for name in SECTIONS:
        given = params.get(name)
        if given is None:
            continue
        if not isinstance(given, dict):
            raise TriageInputError(f"{name} must be a mapping of its options, got {given!r}")
        wanted[name] = given
    if not wanted:
        raise TriageInputError(f"no section requested: give at least one of {', '.join(SECTIONS)}")
    out = {}
    if "cloudtrail" in wanted:
        given = wanted["cloudtrail"]
        _only_keys("cloudtrail", given, ("principal", "resource"))
        principal = _text("cloudtrail", "principal", given.get("principal"))
        resource = _text("cloudtrail", "resource", given.get("resource"))
        if not principal and not resource:
            raise TriageInputError(
                "cloudtrail needs principal (a user or role, its ARN, or an access key id) or resource"
            )
        attributes, post_filter = cloudtrail_lookup(principal, resource)
        out["cloudtrail"] = {"principal": principal, "resource": resource, "lookup": attributes, "filter": post_filter}
    if "guardduty" in wanted:
        given = wanted["guardduty"]
        _only_keys("guardduty", given, ("resource", "resource_type", "include_archived"))
        resource = _text("guardduty", "resource", given.get("resource"), required=True)
        field, kind = guardduty_criterion(resource, _text("guardduty", "resource_type", given.get("resource_type")))
        out["guardduty"] = {
            "resource": resource,
            "resource_type": kind,
            "field": field,
            "include_archived": bool(given.get("include_archived", False)),
        }
    if "rds" in wanted:
        given = wanted["rds"]
        _only_keys("rds", given, ("cluster", "instance"))
        cluster = _text("rds", "cluster", given.get("cluster"))
        instance = _text("rds", "instance", given.get("instance"))
        if bool(cluster) == bool(instance):
            raise TriageInputError(f"rds needs exactly one of cluster or instance, got {given!r}")
        out["rds"] = {"cluster": cluster, "instance": instance}
    if "ecs" in wanted:
        given = wanted["ecs"]
        _only_keys("ecs", given, ("cluster", "service"))
        out["ecs"] = {
            "cluster": _text("ecs", "cluster", given.get("cluster"), required=True),
            "service": _text("ecs", "service", given.get("service"), required=True),
        }
    if "codepipeline" in wanted:
        given = wanted["codepipeline"]
        _only_keys("codepipeline", given, ("pipeline",))
        out["codepipeline"] = {"pipeline": _text("codepipeline", "pipeline", given.get("pipeline"), required=True)}
    if "lambda" in wanted:
        given = wanted["lambda"]
        _only_keys("lambda", given, ("function", "alias"))
        out["lambda"] = {
            "function": _text("lambda", "function", given.get("function"), required=True),
            "alias": _text("lambda", "alias", given.get("alias")),
        }
    if "alarms" in wanted:
        given = wanted["alarms"]
        _only_keys("alarms", given, ("names",))
        names = given.get("names")
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise TriageInputError(f"alarms.names must be a non-empty list of alarm names, got {names!r}")
        if len(names) > 100:
            raise TriageInputError(f"alarms.names: at most 100 alarms, got {len(names)}")
        out["alarms"] = {"names": list(dict.fromkeys(n.strip() for n in names))}
    return out


# --------------------------------------------------------------------------------------------------
# Section plumbing
# --------------------------------------------------------------------------------------------------


def error_entry(err):
    """A section's ``errors`` entry for a failed call."""
    return {
        "call": err.operation,
        "code": err.code,
        "message": clip(err.aws_message, 500),
        "resource": err.resource,
        "attempts": err.attempts,
    }


class Section:
    """One section's result as it is gathered: items, sub-lists and errors."""

    def __init__(self, name, request, max_items):
        self.name = name
        self.request = request
        self.max_items = max_items
        self.items = []
        self.more = False
        self.unfetched = 0
        self.extra = {}
        self.errors = []
        self.read_anything = False

    def fail(self, err):
        self.errors.append(error_entry(err))

    def result(self):
        capped = cap(self.items, self.max_items, self.more, self.unfetched)
        if self.errors and not (self.read_anything or capped["items"]):
            status = "failed"
        elif self.errors:
            status = "partial"
        else:
            status = "ok"
        out = {"section": self.name, "status": status, "request": _public_request(self.request)}
        masked = redact(capped)
        for kept, original in zip(masked["items"], capped["items"], strict=True):
            for field in KEEP_FIELDS.get(self.name, ()):
                if isinstance(original, dict) and isinstance(original.get(field), str):
                    kept[field] = original[field]
        out.update(masked)
        out.update(redact(self.extra))
        out["errors"] = self.errors
        return out


def _public_request(request):
    return {k: v for k, v in request.items() if k not in ("lookup", "filter", "field")}


def _pages(caller, client, method, resource, result_key, section, token_in="NextToken", token_out=None, **params):  # noqa: S107
    """Items of up to ``MAX_PAGES`` pages; sets ``section.more`` when a further page was not read."""
    items = []
    for number, page in enumerate(
        caller.paginate(client, method, resource, token_in=token_in, token_out=token_out, **params), 1
    ):
        section.read_anything = True
        items.extend(page.get(result_key) or [])
        if number >= MAX_PAGES and page.get(token_out or token_in):
            section.more = True
            break
    return items


# --------------------------------------------------------------------------------------------------
# Sections: each reads, fills a Section, and never raises a StepAWSError (it becomes an ``errors`` entry)
# --------------------------------------------------------------------------------------------------


def cloudtrail_section(client, caller, section, start, end):
    req = section.request
    resource = f"CloudTrail events of {req['lookup'][0]['AttributeValue']!r}"
    events = []
    asked = {None}
    token = None
    for page_number in range(1, MAX_PAGES + 1):
        params = {"LookupAttributes": req["lookup"], "StartTime": start, "EndTime": end, "MaxResults": 50}
        if token:
            params["NextToken"] = token
        page = caller(client, "lookup_events", resource, **params)
        section.read_anything = True
        events.extend(page.get("Events") or [])
        token = page.get("NextToken")
        if not token or token in asked:
            break
        asked.add(token)
        if page_number == MAX_PAGES:
            section.more = True
    items = []
    for event in events:
        if req["filter"] and req["filter"] not in [r.get("ResourceName") for r in event.get("Resources") or []]:
            continue
        items.append(cloudtrail_item(event))
    items.sort(key=lambda i: _time_key(i.get("event_time")), reverse=True)
    section.items = items


def cloudtrail_item(event):
    """One LookupEvents entry, its ``CloudTrailEvent`` parsed (redaction then finds secrets by key)."""
    record = event.get("CloudTrailEvent")
    parsed = None
    if isinstance(record, str):
        try:
            parsed = json.loads(record)
        except ValueError:
            parsed = {"unparsed": clip(record)}
    elif isinstance(record, dict):
        parsed = record
    parsed = parsed or {}
    item = {
        "event_id": event.get("EventId"),
        "event_time": _iso(event.get("EventTime")),
        "event_name": event.get("EventName"),
        "event_source": event.get("EventSource"),
        "username": event.get("Username"),
        "access_key_id": event.get("AccessKeyId"),
        "read_only": str(event.get("ReadOnly", "")).lower() == "true",
        "source_ip": parsed.get("sourceIPAddress"),
        "user_agent": clip(parsed.get("userAgent"), 300),
        "error_code": parsed.get("errorCode"),
        "resources": [
            {"type": r.get("ResourceType"), "name": r.get("ResourceName")} for r in event.get("Resources") or []
        ],
        "event": parsed,
    }
    return bounded(
        item,
        (
            "event_id",
            "event_time",
            "event_name",
            "event_source",
            "username",
            "access_key_id",
            "read_only",
            "source_ip",
            "error_code",
            "resources",
        ),
    )


def guardduty_section(client, caller, section, start, end):
    req = section.request
    detectors = _pages(caller, client, "list_detectors", "GuardDuty detectors", "DetectorIds", section)
    if not detectors:
        section.read_anything = False
        section.errors.append(
            {
                "call": "ListDetectors",
                "code": "NoDetector",
                "message": "GuardDuty is not enabled in this account and region (no detector)",
                "resource": "GuardDuty",
                "attempts": 1,
            }
        )
        return
    detector = detectors[0]
    criterion = {
        req["field"]: {"Equals": [req["resource"]]},
        "updatedAt": {"GreaterThanOrEqual": int(start.timestamp() * 1000)},
    }
    if not req["include_archived"]:
        criterion["service.archived"] = {"Equals": ["false"]}
    resource = f"GuardDuty findings of {req['resource']!r} (detector {detector})"
    ids = _pages(
        caller,
        client,
        "list_findings",
        resource,
        "FindingIds",
        section,
        DetectorId=detector,
        FindingCriteria={"Criterion": criterion},
        SortCriteria={"AttributeName": "updatedAt", "OrderBy": "DESC"},
        MaxResults=50,
    )
    section.extra["detector_id"] = detector
    wanted = ids[: section.max_items]
    findings = []
    for offset in range(0, len(wanted), 50):
        page = caller(client, "get_findings", resource, DetectorId=detector, FindingIds=wanted[offset : offset + 50])
        findings.extend(page.get("Findings") or [])
    items = [guardduty_item(f) for f in findings if in_window(f.get("UpdatedAt"), start, end)]
    items.sort(key=lambda i: _time_key(i.get("updated_at")), reverse=True)
    section.items = items
    section.unfetched = len(ids) - len(wanted)  # listed beyond the cap: left out, not fetched


def guardduty_item(finding):
    resource = finding.get("Resource") or {}
    service = finding.get("Service") or {}
    return bounded(
        {
            "id": finding.get("Id"),
            "type": finding.get("Type"),
            "severity": finding.get("Severity"),
            "title": clip(finding.get("Title"), 300),
            "description": clip(finding.get("Description"), 1000),
            "created_at": _iso(finding.get("CreatedAt")),
            "updated_at": _iso(finding.get("UpdatedAt")),
            "resource_type": resource.get("ResourceType"),
            "resource": resource,
            "count": service.get("Count"),
            "archived": service.get("Archived"),
            "first_seen": _iso(service.get("EventFirstSeen")),
            "last_seen": _iso(service.get("EventLastSeen")),
            "action": service.get("Action"),
        },
        ("id", "type", "severity", "title", "created_at", "updated_at", "resource_type", "count", "archived"),
    )


def rds_section(client, caller, section, start, end):
    req = section.request
    source_type, identifier = ("db-cluster", req["cluster"]) if req["cluster"] else ("db-instance", req["instance"])
    resource = f"RDS events of {source_type} {identifier!r}"
    events = _pages(
        caller,
        client,
        "describe_events",
        resource,
        "Events",
        section,
        token_in="Marker",  # noqa: S106
        SourceIdentifier=identifier,
        SourceType=source_type,
        StartTime=start,
        EndTime=end,
        MaxRecords=100,
    )
    items = [
        {
            "date": _iso(e.get("Date")),
            "source_identifier": e.get("SourceIdentifier"),
            "source_type": e.get("SourceType"),
            "categories": e.get("EventCategories") or [],
            "message": clip(e.get("Message"), 1000),
            "source_arn": e.get("SourceArn"),
        }
        for e in events
        if in_window(e.get("Date"), start, end)  # the window is the evidence's, whatever the API honours
    ]
    items.reverse()  # RDS lists oldest first: events of the same second stay in their order, newest first
    items.sort(key=lambda i: _time_key(i.get("date")), reverse=True)
    section.items = items


def ecs_section(client, caller, section, start, end):
    req = section.request
    resource = f"ECS service {req['service']!r} in cluster {req['cluster']!r}"
    answer = caller(client, "describe_services", resource, cluster=req["cluster"], services=[req["service"]])
    section.read_anything = True
    services = answer.get("services") or []
    if not services:
        reason = ", ".join(f.get("reason", "?") for f in answer.get("failures") or []) or "not found"
        section.read_anything = False
        section.errors.append(
            {
                "call": "DescribeServices",
                "code": reason.upper().replace(" ", "_") if reason else None,
                "message": f"no such service ({reason})",
                "resource": resource,
                "attempts": 1,
            }
        )
        return
    service = services[0]
    section.items = [
        {"id": e.get("id"), "created_at": _iso(e.get("createdAt")), "message": clip(e.get("message"), 1000)}
        for e in service.get("events") or []
        if in_window(e.get("createdAt"), start, end)
    ]
    section.items.sort(key=lambda i: _time_key(i.get("created_at")), reverse=True)
    deployments = [ecs.deployment_summary(d, _iso) for d in service.get("deployments") or []]
    section.extra["service"] = {
        "status": service.get("status"),
        "desired_count": service.get("desiredCount"),
        "running_count": service.get("runningCount"),
        "pending_count": service.get("pendingCount"),
        "task_definition": service.get("taskDefinition"),
    }
    section.extra["deployments"] = cap(deployments, section.max_items)
    section.extra["stopped_tasks"] = cap([], section.max_items)
    listing = Section("ecs.stopped_tasks", {}, section.max_items)  # its own ``more``, not the events'
    try:
        arns = _pages(
            caller,
            client,
            "list_tasks",
            resource,
            "taskArns",
            listing,
            token_in="nextToken",  # noqa: S106
            cluster=req["cluster"],
            serviceName=service.get("serviceName") or req["service"],
            desiredStatus="STOPPED",
            maxResults=100,
        )
        tasks = []
        for offset in range(0, min(len(arns), MAX_PAGES * 100), 100):
            page = caller(client, "describe_tasks", resource, cluster=req["cluster"], tasks=arns[offset : offset + 100])
            tasks.extend(page.get("tasks") or [])
    except StepAWSError as err:
        section.fail(err)
        return
    stopped = [
        {
            "task_arn": t.get("taskArn"),
            "task_definition": t.get("taskDefinitionArn"),
            "started_by": t.get("startedBy"),
            "stop_code": t.get("stopCode"),
            "stopped_reason": clip(t.get("stoppedReason"), 1000),
            "stopped_at": _iso(t.get("stoppedAt") or t.get("executionStoppedAt")),
            "containers": [
                {"name": c.get("name"), "exit_code": c.get("exitCode"), "reason": clip(c.get("reason"), 500)}
                for c in t.get("containers") or []
            ],
        }
        for t in tasks
        if in_window(t.get("stoppedAt") or t.get("executionStoppedAt") or t.get("createdAt"), start, end)
    ]
    stopped.sort(key=lambda t: _time_key(t.get("stopped_at")), reverse=True)
    section.extra["stopped_tasks"] = cap(stopped, section.max_items, listing.more)


def codepipeline_section(client, caller, section, start, end):
    name = section.request["pipeline"]
    resource = f"CodePipeline pipeline {name!r}"
    executions = []
    token, asked = None, {None}
    for page_number in range(1, MAX_PAGES + 1):
        params = {"pipelineName": name, "maxResults": 100}
        if token:
            params["nextToken"] = token
        page = caller(client, "list_pipeline_executions", resource, **params)
        section.read_anything = True
        found = page.get("pipelineExecutionSummaries") or []
        executions.extend(found)
        token = page.get("nextToken")
        # newest first: once a page reaches before the window, older pages are not needed
        older = [e for e in found if _time_key(e.get("lastUpdateTime") or e.get("startTime")) < start.timestamp()]
        if not token or token in asked or older:
            break
        asked.add(token)
        if page_number == MAX_PAGES:
            section.more = True
    items = []
    for e in executions:
        if not (in_window(e.get("lastUpdateTime"), start, end) or in_window(e.get("startTime"), start, end)):
            continue
        items.append(
            {
                "execution_id": e.get("pipelineExecutionId"),
                "status": e.get("status"),
                "status_summary": clip(e.get("statusSummary"), 500),
                "start_time": _iso(e.get("startTime")),
                "last_update_time": _iso(e.get("lastUpdateTime")),
                "trigger": e.get("trigger"),
                "stop_trigger": e.get("stopTrigger"),
                "source_revisions": [
                    {
                        "action": r.get("actionName"),
                        "revision_id": r.get("revisionId"),
                        "summary": clip(r.get("revisionSummary"), 300),
                        "url": r.get("revisionUrl"),
                    }
                    for r in e.get("sourceRevisions") or []
                ],
            }
        )
    items.sort(key=lambda i: _time_key(i.get("start_time")), reverse=True)
    section.items = items


def lambda_section(client, caller, section, start, end):
    req = section.request
    function = req["function"]
    resource = f"Lambda function {function!r}"
    versions = _pages(
        caller,
        client,
        "list_versions_by_function",
        resource,
        "Versions",
        section,
        token_in="Marker",  # noqa: S106
        token_out="NextMarker",  # noqa: S106
        FunctionName=function,
        MaxItems=50,
    )
    routed = set()
    if req["alias"]:
        try:
            alias = caller(
                client, "get_alias", f"{resource} alias {req['alias']!r}", FunctionName=function, Name=req["alias"]
            )
        except StepAWSError as err:
            section.fail(err)
        else:
            weights = ((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")) or {}
            routed = {alias.get("FunctionVersion"), *weights}
            section.extra["alias"] = {
                "name": alias.get("Name"),
                "arn": alias.get("AliasArn"),
                "function_version": alias.get("FunctionVersion"),
                "additional_version_weights": weights,
                "revision_id": alias.get("RevisionId"),
                "description": clip(alias.get("Description"), 300),
            }
    items = []
    for v in versions:
        if v.get("Version") == "$LATEST":
            continue
        routed_here = v.get("Version") in routed
        if not routed_here and not in_window(v.get("LastModified"), start, end):
            continue
        items.append(
            {
                "version": v.get("Version"),
                "last_modified": _iso(v.get("LastModified")),
                "code_sha256": v.get("CodeSha256"),
                "description": clip(v.get("Description"), 300),
                "runtime": v.get("Runtime"),
                "state": v.get("State"),
                "last_update_status": v.get("LastUpdateStatus"),
                "alias_routes_here": routed_here,
            }
        )
    items.sort(key=lambda i: int(i["version"]) if str(i["version"]).isdigit() else -1, reverse=True)
    section.items = items


def alarms_section(client, caller, section, start, end):
    names = section.request["names"]
    resource = f"CloudWatch alarms {', '.join(names)}"
    found = {}
    try:
        for offset in range(0, len(names), 100):
            page = caller(client, "describe_alarms", resource, AlarmNames=names[offset : offset + 100])
            for alarm in (page.get("MetricAlarms") or []) + (page.get("CompositeAlarms") or []):
                found[alarm.get("AlarmName")] = alarm
        section.read_anything = True
    except StepAWSError as err:
        section.fail(err)
        return
    section.extra["alarms"] = [
        {
            "name": name,
            "state": found[name].get("StateValue"),
            "reason": clip(found[name].get("StateReason"), 500),
            "updated_at": _iso(found[name].get("StateUpdatedTimestamp")),
        }
        for name in names
        if name in found
    ]
    section.extra["missing"] = [name for name in names if name not in found]
    items = []
    for name in names:
        if name not in found:
            continue
        try:
            history = _pages(
                caller,
                client,
                "describe_alarm_history",
                f"CloudWatch alarm {name!r}",
                "AlarmHistoryItems",
                section,
                AlarmName=name,
                StartDate=start,
                EndDate=end,
                MaxRecords=100,
                ScanBy="TimestampDescending",
            )
        except StepAWSError as err:
            section.fail(err)
            continue
        for h in history:
            data = h.get("HistoryData")
            try:
                data = json.loads(data) if isinstance(data, str) else data
            except ValueError:
                data = clip(data)
            items.append(
                bounded(
                    {
                        "alarm_name": h.get("AlarmName") or name,
                        "timestamp": _iso(h.get("Timestamp")),
                        "type": h.get("HistoryItemType"),
                        "summary": clip(h.get("HistorySummary"), 500),
                        "data": data,
                    },
                    ("alarm_name", "timestamp", "type", "summary"),
                )
            )
    items = [i for i in items if in_window(i.get("timestamp"), start, end)]
    items.sort(key=lambda i: _time_key(i.get("timestamp")), reverse=True)
    section.items = items


READERS = {
    "cloudtrail": ("cloudtrail", cloudtrail_section),
    "guardduty": ("guardduty", guardduty_section),
    "rds": ("rds", rds_section),
    "ecs": ("ecs", ecs_section),
    "codepipeline": ("codepipeline", codepipeline_section),
    "lambda": ("lambda", lambda_section),
    "alarms": ("cloudwatch", alarms_section),
}


def read_section(name, request, make_client, budget, max_items, start, end):
    """One section's result; a failed call is an ``errors`` entry, never an exception."""
    service, reader = READERS[name]
    section = Section(name, request, max_items)
    caller = Caller(budget)
    try:
        reader(make_client(service), caller, section, start, end)
    except StepAWSError as err:
        section.fail(err)
    result = section.result()
    result["calls"] = caller.calls
    return result


def gather(requests, make_client, budget, max_items, start, end):
    """Every requested section, read concurrently; results in ``SECTIONS`` order."""
    names = [n for n in SECTIONS if n in requests]
    if len(names) == 1:
        return [read_section(names[0], requests[names[0]], make_client, budget, max_items, start, end)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = [pool.submit(read_section, n, requests[n], make_client, budget, max_items, start, end) for n in names]
        return [f.result() for f in futures]


def summary_lines(sections):
    """One line per section, for people and for ``after``."""
    lines = []
    for s in sections:
        line = f"{s['section']}: {s['count']} item(s)"
        if s["truncated"]:
            line += f", {s['left_out']}{'+' if s['more'] else ''} left out"
        if s["errors"]:
            line += "; " + "; ".join(_error_text(e) for e in s["errors"])
        lines.append(line)
    return lines
