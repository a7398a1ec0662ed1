# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Health verification: the checks of ``health_verify``, each a read and a pure verdict.

Every check kind has a reader (the API calls, through a ``Caller``) and a verdict function that takes what was
read and returns ``(verdict, values, message)``; the verdicts are unit-tested without AWS.  ``run_check`` puts
them together and returns the check's result: ``kind``, ``target``, ``verdict`` (``pass``/``fail``), ``values``
and ``message`` (naming the value that failed).
"""

from __future__ import annotations

import datetime
import math
import re
import time
import urllib.error

from ansible.module_utils.urls import open_url
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    StepError,
    iso_utc,
    parse_time,
    utc_now,
)

PASS, FAIL = "pass", "fail"

# The options each kind takes (beyond ``kind`` and ``name``), which of them are required, and the defaults.
# How a verification module polls (doc fragment firebreak.runbooks.step.VERIFY).
VERIFY_OPTIONS = {
    "interval": {"type": "int", "default": 10},
    "wait_timeout": {"type": "int", "default": 300},
    "fail_on_unhealthy": {"type": "bool", "default": True},
}
KIND_OPTIONS = {
    "target_health": ({"target_group_arn"}, {"min_healthy"}),
    "http": ({"url"}, {"expect_status", "body_regex", "probes", "max_p95_ms", "timeout", "validate_certs"}),
    "alarm": ({"alarm_names"}, set()),
    "metric": (
        {"namespace", "metric_name", "threshold"},
        {"dimensions", "statistic", "window", "period", "missing_data"},
    ),
    "ecs": ({"cluster", "service"}, set()),
    "rds": (set(), {"db_cluster", "db_instance", "since"}),
    "sqs": ({"queue_name"}, {"max_age", "window", "period"}),
    "stepfunctions": ({"state_machine_arn", "since"}, set()),
    "batch": ({"job_queue"}, {"max_runnable"}),
}
KINDS = tuple(KIND_OPTIONS)
DEFAULTS = {
    "min_healthy": 1,
    "expect_status": [200],
    "probes": 5,
    "timeout": 5.0,
    "validate_certs": True,
    "statistic": "p95",
    "window": 300,
    "period": 60,
    "missing_data": "fail",
    "max_runnable": 0,
}
FAILED_EXECUTIONS = ("FAILED", "TIMED_OUT", "ABORTED")
_PERCENTILE_RE = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")
_BASIC_STATISTICS = ("Average", "Sum", "Minimum", "Maximum", "SampleCount")


class CheckInputError(StepError, ValueError):
    """A check asked for something that cannot be verified (the message names the check and the value)."""


def normalize(checks):
    """The checks with their defaults applied; raises ``CheckInputError`` naming the check and the value."""
    if not checks:
        raise CheckInputError("checks is empty: give at least one check")
    out = []
    for index, raw in enumerate(checks):
        if not isinstance(raw, dict):
            raise CheckInputError(f"checks[{index}] is {raw!r}, not a check (a dict with a kind)")
        check = {key: value for key, value in raw.items() if value is not None}
        kind = check.get("kind")
        label = f"checks[{index}] ({kind})"
        if kind not in KIND_OPTIONS:
            raise CheckInputError(f"{label}: kind {kind!r} is not one of {', '.join(KINDS)}")
        required, optional = KIND_OPTIONS[kind]
        allowed = required | optional | {"kind", "name"}
        stray = sorted(set(check) - allowed)
        if stray:
            raise CheckInputError(f"{label}: option {stray[0]!r} does not apply to kind {kind!r}")
        missing = sorted(required - set(check))
        if missing:
            raise CheckInputError(f"{label}: kind {kind!r} needs {missing[0]!r}")
        for key in optional:
            if key not in check and key in DEFAULTS:
                check[key] = DEFAULTS[key]
        _validate(label, check)
        out.append(check)
    return out


def _validate(label, check):
    kind = check["kind"]
    for key in ("probes", "window", "period", "min_healthy", "max_runnable"):
        if key in check and check[key] < (0 if key in ("min_healthy", "max_runnable") else 1):
            raise CheckInputError(f"{label}: {key}={check[key]!r} is out of range")
    if kind == "http":
        if not re.match(r"^https?://", check["url"]):
            raise CheckInputError(f"{label}: url {check['url']!r} is not an http:// or https:// URL")
        if check.get("body_regex") is not None:
            try:
                re.compile(check["body_regex"])
            except re.error as e:
                raise CheckInputError(
                    f"{label}: body_regex {check['body_regex']!r} is not a regular expression: {e}"
                ) from None
    if kind == "metric":
        statistic = check["statistic"]
        if statistic not in _BASIC_STATISTICS and not _PERCENTILE_RE.match(statistic):
            raise CheckInputError(
                f"{label}: statistic {statistic!r} is not one of {', '.join(_BASIC_STATISTICS)} "
                "or a percentile such as p95"
            )
    if kind == "rds" and bool(check.get("db_cluster")) == bool(check.get("db_instance")):
        raise CheckInputError(f"{label}: give exactly one of db_cluster and db_instance")
    if "since" in check:
        try:
            check["since"] = iso_utc(parse_time(check["since"]))
        except ValueError as e:
            raise CheckInputError(f"{label}: since: {e}") from None


def target_of(check):
    """How a result and a message name what the check looked at."""
    if check.get("name"):
        return check["name"]
    kind = check["kind"]
    if kind == "target_health":
        return check["target_group_arn"]
    if kind == "http":
        return check["url"]
    if kind == "alarm":
        return ", ".join(check["alarm_names"])
    if kind == "metric":
        dims = ",".join(f"{k}={v}" for k, v in sorted((check.get("dimensions") or {}).items()))
        return f"{check['namespace']}/{check['metric_name']}" + (f"[{dims}]" if dims else "")
    if kind == "ecs":
        return f"{check['cluster']}/{check['service']}"
    if kind == "rds":
        return f"cluster {check['db_cluster']}" if check.get("db_cluster") else f"instance {check['db_instance']}"
    if kind == "sqs":
        return check["queue_name"]
    if kind == "stepfunctions":
        return check["state_machine_arn"]
    return check["job_queue"]


# --------------------------------------------------------------------------------------------------
# Pure verdicts: (verdict, values, message)
# --------------------------------------------------------------------------------------------------


def percentile(values, pct):
    """Nearest-rank percentile (``None`` for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def verdict_target_health(descriptions, min_healthy=1):
    states = {}
    for item in descriptions:
        state = (item.get("TargetHealth") or {}).get("State", "unknown")
        states[state] = states.get(state, 0) + 1
    healthy = states.get("healthy", 0)
    bad = {state: n for state, n in states.items() if state in ("unhealthy", "unavailable", "unhealthy.draining")}
    values = {"healthy": healthy, "total": len(descriptions), "states": states}
    if bad:
        return FAIL, values, f"{sum(bad.values())} target(s) not healthy: {bad}"
    if healthy < min_healthy:
        return FAIL, values, f"healthy targets {healthy} < min_healthy {min_healthy} (states {states})"
    return PASS, values, f"{healthy}/{len(descriptions)} targets healthy"


def verdict_http(probes, expect_status=(200,), body_regex=None, max_p95_ms=None):
    """``probes``: dicts with ``status`` (None when no answer), ``latency_ms``, ``body`` and ``error``."""
    statuses = [p.get("status") for p in probes]
    latencies = [p["latency_ms"] for p in probes if p.get("latency_ms") is not None]
    p95 = percentile(latencies, 95)
    values = {
        "probes": len(probes),
        "statuses": statuses,
        "p95_ms": round(p95, 1) if p95 is not None else None,
        "body_matched": None,
    }
    bad = [p for p in probes if p.get("status") not in expect_status]
    if bad:
        first = bad[0]
        why = (
            f"status {first.get('status')}" if first.get("status") is not None else f"no answer ({first.get('error')})"
        )
        return FAIL, values, f"{len(bad)}/{len(probes)} probes failed: {why}, expected {list(expect_status)}"
    if body_regex:
        pattern = re.compile(body_regex)
        matched = sum(1 for p in probes if pattern.search(p.get("body") or ""))
        values["body_matched"] = matched
        if matched < len(probes):
            return FAIL, values, f"body did not match {body_regex!r} in {len(probes) - matched}/{len(probes)} probes"
    if max_p95_ms is not None and p95 is not None and p95 > max_p95_ms:
        return FAIL, values, f"p95 latency {p95:.1f} ms > max_p95_ms {max_p95_ms}"
    return PASS, values, f"{len(probes)} probes answered {sorted(set(statuses))}, p95 {values['p95_ms']} ms"


def verdict_alarm(names, alarms):
    """``alarms``: DescribeAlarms' MetricAlarms and CompositeAlarms."""
    found = {a["AlarmName"]: a.get("StateValue") for a in alarms}
    values = {"states": {name: found.get(name) for name in names}}
    missing = [name for name in names if name not in found]
    if missing:
        return FAIL, values, f"alarm {missing[0]!r} does not exist"
    bad = [name for name in names if found[name] != "OK"]
    if bad:
        return FAIL, values, f"alarm {bad[0]!r} is {found[bad[0]]}, not OK"
    return PASS, values, f"{len(names)} alarm(s) OK"


def verdict_metric(datapoints, statistic, threshold, missing_data="fail"):
    """``datapoints``: ``(timestamp, value)`` with value ``None`` when the answer lacked the statistic.

    The most recent datapoint decides: it must be at most ``threshold``."""
    points = sorted(datapoints, key=lambda p: p[0])
    values = {"statistic": statistic, "threshold": threshold, "latest": None, "datapoints": len(points)}
    if not points:
        verdict = PASS if missing_data == "pass" else FAIL
        return verdict, values, f"no datapoints in the window (missing_data={missing_data})"
    timestamp, latest = points[-1]
    values.update(latest=latest, at=iso_utc(timestamp) if hasattr(timestamp, "astimezone") else timestamp)
    values["recent"] = [value for _ts, value in points[-5:]]
    if latest is None:
        return FAIL, values, f"the answer has no {statistic} value for the latest datapoint"
    if latest > threshold:
        return FAIL, values, f"{statistic} {latest} > threshold {threshold}"
    return PASS, values, f"{statistic} {latest} <= threshold {threshold}"


def verdict_ecs(service):
    deployments = service.get("deployments") or []
    primary = [d for d in deployments if d.get("status") == "PRIMARY"]
    rollout = primary[0].get("rolloutState") if primary else None
    values = {
        "status": service.get("status"),
        "desired": service.get("desiredCount"),
        "running": service.get("runningCount"),
        "pending": service.get("pendingCount"),
        "deployments": len(deployments),
        "rollout_state": rollout,
    }
    if service.get("status") != "ACTIVE":
        return FAIL, values, f"service status {service.get('status')}, not ACTIVE"
    if values["running"] != values["desired"]:
        return FAIL, values, f"running {values['running']} != desired {values['desired']}"
    if len(deployments) != 1:
        return FAIL, values, f"{len(deployments)} deployments, not one PRIMARY (a rollout is under way)"
    if rollout is not None and rollout != "COMPLETED":
        return FAIL, values, f"PRIMARY deployment rolloutState {rollout}, not COMPLETED"
    return PASS, values, f"steady: {values['running']}/{values['desired']} running, one deployment"


def verdict_rds(what, status, events):
    values = {"status": status, "failure_events": [e.get("Message") for e in events][:5]}
    if status != "available":
        return FAIL, values, f"{what} status {status}, not available"
    if events:
        return FAIL, values, f"{len(events)} failure event(s) since: {events[0].get('Message')}"
    return PASS, values, f"{what} available, no failure events"


def verdict_sqs(datapoints, max_age=None, visible=None):
    """``datapoints``: ``(timestamp, ApproximateAgeOfOldestMessage)``; ``visible`` the queue's
    ApproximateNumberOfMessages (read when there are no datapoints)."""
    ages = [value for _ts, value in sorted(datapoints, key=lambda p: p[0]) if value is not None]
    values = {"age_seconds": ages[-1] if ages else None, "recent": ages[-5:], "visible_messages": visible}
    if not ages:
        if visible == 0:
            values["age_seconds"] = 0
            return PASS, values, "queue is empty"
        return FAIL, values, f"no ApproximateAgeOfOldestMessage datapoints and {visible} visible messages"
    latest = ages[-1]
    falling = len(ages) > 1 and latest < ages[-2]
    values["falling"] = falling
    if max_age is not None:
        if latest > max_age:
            return FAIL, values, f"oldest message age {latest} s > max_age {max_age} s"
        return PASS, values, f"oldest message age {latest} s <= max_age {max_age} s"
    if latest == 0 or falling:
        return PASS, values, f"oldest message age {latest} s and falling" if latest else "oldest message age 0 s"
    return FAIL, values, f"oldest message age {latest} s is not falling (recent {ages[-5:]})"


def verdict_stepfunctions(executions, since):
    """``executions``: ListExecutions items; those started or stopped at or after ``since`` count."""
    since = parse_time(since)
    recent = [e for e in executions if _after(e.get("startDate"), since) or _after(e.get("stopDate"), since)]
    counts = {}
    for e in recent:
        counts[e.get("status")] = counts.get(e.get("status"), 0) + 1
    failed = [e for e in recent if e.get("status") in FAILED_EXECUTIONS]
    values = {"since": iso_utc(since), "counts": counts, "failed": [e.get("name") for e in failed][:10]}
    if failed:
        first = failed[0]
        return (
            FAIL,
            values,
            f"{len(failed)} execution(s) since {iso_utc(since)} failed: {first.get('name')} {first.get('status')}",
        )
    return PASS, values, f"{len(recent)} execution(s) since {iso_utc(since)}, none failed"


def verdict_batch(runnable, max_runnable=0):
    values = {"runnable": runnable, "max_runnable": max_runnable}
    if runnable > max_runnable:
        return FAIL, values, f"{runnable} RUNNABLE job(s) > max_runnable {max_runnable}"
    return PASS, values, f"{runnable} RUNNABLE job(s)"


def _after(value, since):
    if value is None:
        return False
    return parse_time(value) >= since


# --------------------------------------------------------------------------------------------------
# Readers (API calls through the step's Caller)
# --------------------------------------------------------------------------------------------------


def probe_http(url, timeout=5.0, validate_certs=True, clock=time.monotonic):
    """One GET: ``status``, ``latency_ms``, ``body`` (first 64 KiB) and ``error``."""
    headers = {"User-Agent": "firebreak.runbooks health_verify"}
    start = clock()
    try:
        answer = open_url(url, method="GET", headers=headers, timeout=timeout, validate_certs=validate_certs)
        with answer:
            body = answer.read(65536).decode("utf-8", "replace")
            status = answer.status
        error = None
    except urllib.error.HTTPError as e:
        status, body, error = e.code, e.read(65536).decode("utf-8", "replace"), None
    except (urllib.error.URLError, OSError, ValueError) as e:
        status, body, error = None, "", str(getattr(e, "reason", e))
    return {"status": status, "latency_ms": (clock() - start) * 1000.0, "body": body, "error": error}


def _metric_points(cloudwatch, caller, namespace, metric, dimensions, statistic, window, period, now):
    params = dict(
        Namespace=namespace,
        MetricName=metric,
        Dimensions=[{"Name": k, "Value": str(v)} for k, v in sorted((dimensions or {}).items())],
        StartTime=now - datetime.timedelta(seconds=window),
        EndTime=now,
        Period=period,
    )
    if statistic in _BASIC_STATISTICS:
        params["Statistics"] = [statistic]
    else:
        params["ExtendedStatistics"] = [statistic]
    answer = caller(cloudwatch, "get_metric_statistics", f"metric {namespace}/{metric}", **params)
    points = []
    for point in answer.get("Datapoints") or []:
        if statistic in _BASIC_STATISTICS:
            value = point.get(statistic)
        else:
            value = (point.get("ExtendedStatistics") or {}).get(statistic)
        points.append((point["Timestamp"], value))
    return points


def run_check(check, clients, caller, now=None):
    """Read and decide one (normalized) check; ``clients(service)`` gives a client."""
    kind = check["kind"]
    now = now or utc_now()
    if kind == "target_health":
        arn = check["target_group_arn"]
        answer = caller(clients("elbv2"), "describe_target_health", f"target group {arn}", TargetGroupArn=arn)
        verdict = verdict_target_health(answer.get("TargetHealthDescriptions") or [], check["min_healthy"])
    elif kind == "http":
        probes = [probe_http(check["url"], check["timeout"], check["validate_certs"]) for _ in range(check["probes"])]
        verdict = verdict_http(probes, check["expect_status"], check.get("body_regex"), check.get("max_p95_ms"))
    elif kind == "alarm":
        names = list(check["alarm_names"])
        answer = caller(clients("cloudwatch"), "describe_alarms", f"alarms {names}", AlarmNames=names)
        alarms = (answer.get("MetricAlarms") or []) + (answer.get("CompositeAlarms") or [])
        verdict = verdict_alarm(names, alarms)
    elif kind == "metric":
        points = _metric_points(
            clients("cloudwatch"),
            caller,
            check["namespace"],
            check["metric_name"],
            check.get("dimensions"),
            check["statistic"],
            check["window"],
            check["period"],
            now,
        )
        verdict = verdict_metric(points, check["statistic"], check["threshold"], check["missing_data"])
    elif kind == "ecs":
        resource = f"ECS service {check['service']!r} in cluster {check['cluster']!r}"
        answer = caller(
            clients("ecs"), "describe_services", resource, cluster=check["cluster"], services=[check["service"]]
        )
        services = answer.get("services") or []
        if not services:
            reason = (answer.get("failures") or [{}])[0].get("reason", "MISSING")
            verdict = (FAIL, {"status": None}, f"service not found ({reason})")
        else:
            verdict = verdict_ecs(services[0])
    elif kind == "rds":
        verdict = _rds(check, clients("rds"), caller)
    elif kind == "sqs":
        verdict = _sqs(check, clients, caller, now)
    elif kind == "stepfunctions":
        verdict = _stepfunctions(check, clients("stepfunctions"), caller)
    else:
        queue = check["job_queue"]
        runnable = 0
        for page in caller.paginate(
            clients("batch"),
            "list_jobs",
            f"job queue {queue}",
            token_in="nextToken",  # noqa: S106 - a pagination token name
            jobQueue=queue,
            jobStatus="RUNNABLE",
        ):
            runnable += len(page.get("jobSummaryList") or [])
        verdict = verdict_batch(runnable, check["max_runnable"])
    state, values, message = verdict
    return {"kind": kind, "target": target_of(check), "verdict": state, "values": values, "message": message}


def _rds(check, rds, caller):
    if check.get("db_cluster"):
        ident, source_type = check["db_cluster"], "db-cluster"
        answer = caller(rds, "describe_db_clusters", f"DB cluster {ident!r}", DBClusterIdentifier=ident)
        status = (answer.get("DBClusters") or [{}])[0].get("Status")
        what = f"cluster {ident}"
    else:
        ident, source_type = check["db_instance"], "db-instance"
        answer = caller(rds, "describe_db_instances", f"DB instance {ident!r}", DBInstanceIdentifier=ident)
        status = (answer.get("DBInstances") or [{}])[0].get("DBInstanceStatus")
        what = f"instance {ident}"
    events = []
    if check.get("since"):
        for page in caller.paginate(
            rds,
            "describe_events",
            f"events of {what}",
            token_in="Marker",  # noqa: S106
            SourceIdentifier=ident,
            SourceType=source_type,
            StartTime=parse_time(check["since"]),
            EventCategories=["failure"],
        ):
            # AWS filters by category; moto ignores the filter, so keep only failure events here too
            events.extend(e for e in page.get("Events") or [] if "failure" in (e.get("EventCategories") or []))
    return verdict_rds(what, status, events)


def _sqs(check, clients, caller, now):
    name = check["queue_name"]
    points = _metric_points(
        clients("cloudwatch"),
        caller,
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        {"QueueName": name},
        "Maximum",
        check["window"],
        check["period"],
        now,
    )
    visible = None
    if not points:
        sqs = clients("sqs")
        url = caller(sqs, "get_queue_url", f"queue {name!r}", QueueName=name)["QueueUrl"]
        attributes = caller(
            sqs, "get_queue_attributes", f"queue {name!r}", QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        ).get("Attributes", {})
        visible = int(attributes.get("ApproximateNumberOfMessages", 0))
    return verdict_sqs(points, check.get("max_age"), visible)


def _stepfunctions(check, sfn, caller):
    """The executions that count: the recent ones (newest first, until a page is wholly before ``since``) for
    the counts, and every FAILED, TIMED_OUT or ABORTED one, listed by status to the end: a listing is ordered
    by start, and an execution started long before ``since`` may have failed after it."""
    since = parse_time(check["since"])
    arn = check["state_machine_arn"]
    found = {}
    for status in (None, *FAILED_EXECUTIONS):
        extra = {"statusFilter": status} if status else {}
        for page in caller.paginate(
            sfn,
            "list_executions",
            f"state machine {arn}",
            token_in="nextToken",  # noqa: S106 - a pagination token name
            stateMachineArn=arn,
            **extra,
        ):
            items = page.get("executions") or []
            for item in items:
                found[item.get("executionArn") or item.get("name")] = item
            recent = any(_after(e.get("startDate"), since) or _after(e.get("stopDate"), since) for e in items)
            if status is None and items and not recent:
                break
    return verdict_stepfunctions(list(found.values()), since)


def summary(results):
    """``(passed, msg)`` for one round of check results."""
    failed = [r for r in results if r["verdict"] != PASS]
    if not failed:
        return True, f"all {len(results)} check(s) passed"
    text = "; ".join(f"{r['kind']} {r['target']}: {r['message']}" for r in failed)
    return False, f"{len(failed)}/{len(results)} check(s) failed: {text}"
