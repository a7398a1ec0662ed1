"""Auto Scaling instance refresh, answered by the fault proxy (moto 5.2.5 answers ``StartInstanceRefresh`` with a 500:
"The start_instance_refresh action has not been implemented").

Behaviour per the Auto Scaling API reference, kept per group by the proxy and cleared on its reset:

- ``StartInstanceRefresh``: the group must exist in moto (else ``ValidationError``, "AutoScalingGroup name not
  found"); ``Preferences.MinHealthyPercentage`` 0-100 (default 90) and ``Preferences.MaxHealthyPercentage`` 100-200;
  a refresh in ``Pending``, ``InProgress`` or ``Cancelling`` blocks another (400 ``InstanceRefreshInProgress``).
  Answers ``InstanceRefreshId``.
- ``DescribeInstanceRefreshes``: the group's refreshes, newest first, with ``Status``, ``PercentageComplete``,
  ``InstancesToUpdate``, ``StartTime``, ``EndTime``, ``Preferences``; ``InstanceRefreshIds.member.N`` filters.
- ``CancelInstanceRefresh``: the active refresh becomes ``Cancelled`` (400 ``ActiveInstanceRefreshNotFound`` when none).

A refresh replaces every instance the group had when it started: when it completes, the proxy asks moto to
``TerminateInstanceInAutoScalingGroup`` each of them without decrementing the desired capacity, and moto launches
the replacements (so the instance ids change, as on AWS). It is ``InProgress`` until ``proxy.instance_refresh_seconds``
(0 after a reset) have passed since its start, and completes at the first ``DescribeInstanceRefreshes`` after that
(``Successful``, ``PercentageComplete`` 100). A test that needs a refresh still running sets the seconds higher.
"""

from __future__ import annotations

import datetime as dt
import http.client
import re
import threading
import uuid
from urllib.parse import parse_qs, urlencode

ACTIVE = ("Pending", "InProgress", "Cancelling")
_INSTANCE_RE = re.compile(r"<InstanceId>([^<]+)</InstanceId>")


class State:
    """The proxy's instance refreshes: group name -> list of refreshes, newest first."""

    def __init__(self):
        self.lock = threading.Lock()
        self.refreshes: dict[str, list[dict]] = {}


def _form(req) -> dict:
    if not req.body:
        return {}
    return {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _moto(req, proxy, params: dict) -> str:
    """A query-protocol Auto Scaling call to moto with the caller's credential scope; the XML answer."""
    conn = http.client.HTTPConnection(proxy._up_host, proxy._up_port, timeout=30)
    try:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "Authorization": req.headers.get("Authorization") or "",
            "X-Amz-Date": req.headers.get("X-Amz-Date") or "",
        }
        conn.request("POST", "/", body=urlencode(dict(params, Version="2011-01-01")).encode(), headers=headers)
        response = conn.getresponse()
        payload = response.read().decode("utf-8", "replace")
    finally:
        conn.close()
    if response.status != 200:
        from sandbox.fault_proxy import BuiltinError

        raise BuiltinError(response.status, "InternalFailure", f"moto answered {response.status}: {payload[:200]}")
    return payload


def _group_instances(req, proxy, name: str) -> list[str]:
    from sandbox.fault_proxy import BuiltinError

    xml = _moto(req, proxy, {"Action": "DescribeAutoScalingGroups", "AutoScalingGroupNames.member.1": name})
    if "<AutoScalingGroupName>" not in xml:
        raise BuiltinError(
            400, "ValidationError", f"AutoScalingGroup name not found - AutoScalingGroup {name} not found"
        )
    return _INSTANCE_RE.findall(xml)


def _percentage(form: dict, key: str, low: int, high: int, default):
    from sandbox.fault_proxy import BuiltinError

    value = form.get(f"Preferences.{key}")
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise BuiltinError(400, "ValidationError", f"{key} must be an integer, got {value!r}") from None
    if not low <= number <= high:
        raise BuiltinError(400, "ValidationError", f"{key} must be between {low} and {high}, got {number}")
    return number


def _complete(req, proxy, name: str, refresh: dict) -> None:
    """Replace the instances the group had when the refresh started (moto launches the new ones)."""
    current = set(_group_instances(req, proxy, name))
    for instance_id in refresh["_instances"]:
        if instance_id in current:
            _moto(
                req,
                proxy,
                {
                    "Action": "TerminateInstanceInAutoScalingGroup",
                    "InstanceId": instance_id,
                    "ShouldDecrementDesiredCapacity": "false",
                },
            )
    refresh.update(
        Status="Successful",
        StatusReason="",
        PercentageComplete=100,
        InstancesToUpdate=0,
        EndTime=_iso(dt.datetime.now(dt.UTC)),
    )


def start_instance_refresh(req, proxy) -> dict:
    from sandbox.fault_proxy import BuiltinError

    form = _form(req)
    name = form.get("AutoScalingGroupName") or ""
    strategy = form.get("Strategy") or "Rolling"
    if strategy != "Rolling":
        raise BuiltinError(400, "ValidationError", f"Strategy must be Rolling, got {strategy!r}")
    preferences = {
        "MinHealthyPercentage": _percentage(form, "MinHealthyPercentage", 0, 100, 90),
        "InstanceWarmup": _percentage(form, "InstanceWarmup", 0, 1 << 31, None),
        "MaxHealthyPercentage": _percentage(form, "MaxHealthyPercentage", 100, 200, None),
        "SkipMatching": form.get("Preferences.SkipMatching", "false") == "true",
    }
    instances = _group_instances(req, proxy, name)
    state = proxy.instance_refreshes
    now = dt.datetime.now(dt.UTC)
    with state.lock:
        if any(r["Status"] in ACTIVE for r in state.refreshes.get(name, [])):
            raise BuiltinError(
                400,
                "InstanceRefreshInProgress",
                "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.",
            )
        refresh = {
            "InstanceRefreshId": str(uuid.uuid4()),
            "AutoScalingGroupName": name,
            "Status": "Pending",
            "StatusReason": "Waiting for instances to warm up before continuing.",
            "StartTime": _iso(now),
            "PercentageComplete": 0,
            "InstancesToUpdate": len(instances),
            "Preferences": {k: v for k, v in preferences.items() if v is not None},
            "Strategy": strategy,
            "_instances": instances,
            "_ready_at": now + dt.timedelta(seconds=float(getattr(proxy, "instance_refresh_seconds", 0) or 0)),
        }
        state.refreshes.setdefault(name, []).insert(0, refresh)
    return {"InstanceRefreshId": refresh["InstanceRefreshId"]}


def describe_instance_refreshes(req, proxy) -> dict:
    form = _form(req)
    name = form.get("AutoScalingGroupName") or ""
    wanted = {v for k, v in form.items() if k.startswith("InstanceRefreshIds.member.")}
    state = proxy.instance_refreshes
    with state.lock:
        refreshes = list(state.refreshes.get(name, []))
    now = dt.datetime.now(dt.UTC)
    for refresh in refreshes:
        if refresh["Status"] in ("Pending", "InProgress"):
            if now >= refresh["_ready_at"]:
                _complete(req, proxy, name, refresh)
            else:
                refresh.update(Status="InProgress", StatusReason="Waiting for instances to warm up before continuing.")
    shown = [
        {k: v for k, v in r.items() if not k.startswith("_") and v not in (None, "")}
        for r in refreshes
        if not wanted or r["InstanceRefreshId"] in wanted
    ]
    return {"InstanceRefreshes": shown}


def cancel_instance_refresh(req, proxy) -> dict:
    from sandbox.fault_proxy import BuiltinError

    name = _form(req).get("AutoScalingGroupName") or ""
    state = proxy.instance_refreshes
    with state.lock:
        active = next((r for r in state.refreshes.get(name, []) if r["Status"] in ACTIVE), None)
        if active is None:
            raise BuiltinError(
                400, "ActiveInstanceRefreshNotFound", f"No in progress or pending Instance Refresh found for {name}"
            )
        active.update(Status="Cancelled", StatusReason="Cancelled by a request", EndTime=_iso(dt.datetime.now(dt.UTC)))
    return {"InstanceRefreshId": active["InstanceRefreshId"]}


BUILTINS = {
    "autoscaling_start_instance_refresh": start_instance_refresh,
    "autoscaling_describe_instance_refreshes": describe_instance_refreshes,
    "autoscaling_cancel_instance_refresh": cancel_instance_refresh,
}

RULES = [
    {
        "service": "autoscaling",
        "action": action,
        "fault": "canned",
        "builtin": f"autoscaling_{snake}",
        "description": f"moto lacks {action} (500): instance refreshes kept by the proxy, per the API reference",
    }
    for action, snake in (
        ("StartInstanceRefresh", "start_instance_refresh"),
        ("DescribeInstanceRefreshes", "describe_instance_refreshes"),
        ("CancelInstanceRefresh", "cancel_instance_refresh"),
    )
]
