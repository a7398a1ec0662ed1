# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Triage summaries (seed "Check Infrastructure"): events, nodes, crashing containers. Pure, bounded."""

from __future__ import annotations

MAX_LINE = 500
NODE_PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


def clip(text, limit=MAX_LINE):
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 12] + " [truncated]"


def event_time(event: dict) -> str:
    return (
        event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("series") or {}).get("lastObservedTime")
        or event.get("firstTimestamp")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def events_summary(events: list[dict], names: set[str] | None = None, limit: int = 20) -> list[dict]:
    """The most recent ``limit`` events (of objects named in ``names``, when given), oldest first."""
    chosen = []
    for event in events:
        involved = event.get("involvedObject") or {}
        if names is not None and involved.get("name") not in names:
            continue
        chosen.append(
            {
                "time": event_time(event),
                "type": event.get("type"),
                "reason": event.get("reason"),
                "object": f"{involved.get('kind')}/{involved.get('name')}",
                "message": clip(event.get("message")),
                "count": event.get("count", 1),
            }
        )
    chosen.sort(key=lambda e: e["time"])
    return chosen[-limit:] if limit else []


def nodes_summary(nodes: list[dict]) -> list[dict]:
    """Each node's readiness, the conditions that are not normal, and whether it is cordoned."""
    found = []
    for node in nodes:
        conditions = (node.get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        problems = []
        for cond in conditions:
            bad = (cond.get("type") == "Ready" and cond.get("status") != "True") or (
                cond.get("type") in NODE_PRESSURE and cond.get("status") == "True"
            )
            if bad:
                problems.append(
                    {
                        "type": cond.get("type"),
                        "status": cond.get("status"),
                        "reason": cond.get("reason"),
                        "message": clip(cond.get("message"), 200),
                    }
                )
        found.append(
            {
                "name": (node.get("metadata") or {}).get("name"),
                "ready": bool(ready and ready.get("status") == "True"),
                "unschedulable": bool((node.get("spec") or {}).get("unschedulable", False)),
                "problems": problems,
            }
        )
    return found


def crashing_containers(pods: list[dict], limit: int = 5) -> list[dict]:
    """Containers that crash (CrashLoopBackOff, restarts, or terminated with an error): whose logs to read."""
    found = []
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            state = cs.get("state") or {}
            waiting = (state.get("waiting") or {}).get("reason")
            terminated = state.get("terminated") or {}
            last = (cs.get("lastState") or {}).get("terminated") or {}
            crashing = (
                waiting in ("CrashLoopBackOff", "RunContainerError")
                or cs.get("restartCount", 0) > 0
                or (terminated and terminated.get("exitCode", 0) != 0)
            )
            if crashing:
                found.append(
                    {
                        "pod": pod["metadata"]["name"],
                        "container": cs.get("name"),
                        "restarts": cs.get("restartCount", 0),
                        "reason": waiting or terminated.get("reason") or last.get("reason"),
                        "exit_code": terminated.get("exitCode", last.get("exitCode")),
                        "previous": cs.get("restartCount", 0) > 0 and not state.get("running"),
                    }
                )
    return found[:limit]
