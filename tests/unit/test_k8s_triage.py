"""Triage summaries (plugins/module_utils/k8s/triage.py), without a cluster."""

from __future__ import annotations

import sys

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s import triage as t


def test_events_sorted_filtered_and_bounded():
    events = [
        {
            "lastTimestamp": "2026-11-24T13:00:03Z",
            "involvedObject": {"kind": "Pod", "name": "api-1"},
            "reason": "BackOff",
        },
        {
            "lastTimestamp": "2026-11-24T13:00:01Z",
            "involvedObject": {"kind": "Pod", "name": "api-1"},
            "reason": "Pulling",
        },
        {"eventTime": "2026-11-24T13:00:02Z", "involvedObject": {"kind": "Pod", "name": "web-1"}, "reason": "Other"},
    ]
    assert [e["reason"] for e in t.events_summary(events)] == ["Pulling", "Other", "BackOff"]
    assert [e["reason"] for e in t.events_summary(events, {"api-1"}, limit=1)] == ["BackOff"]


def test_nodes_not_ready_and_pressure():
    nodes = [
        {
            "metadata": {"name": "a"},
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]},
        },
        {
            "metadata": {"name": "b"},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "True"}]},
        },
    ]
    a, b = t.nodes_summary(nodes)
    assert a["ready"] is False and a["problems"][0]["reason"] == "KubeletNotReady"
    assert b["ready"] and b["unschedulable"] and [p["type"] for p in b["problems"]] == ["DiskPressure"]


def test_crashing_containers_and_clip():
    pods = [
        {
            "metadata": {"name": "api-1"},
            "status": {
                "containerStatuses": [
                    {"name": "api", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
                    {"name": "side", "restartCount": 0, "state": {"running": {}}},
                ]
            },
        }
    ]
    found = t.crashing_containers(pods)
    assert found == [
        {
            "pod": "api-1",
            "container": "api",
            "restarts": 3,
            "reason": "CrashLoopBackOff",
            "exit_code": None,
            "previous": True,
        }
    ]
    assert t.clip("x" * 600).endswith("[truncated]") and len(t.clip("x" * 600)) == 500
