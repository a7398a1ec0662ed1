"""The k8s_node_drain role against the Kubernetes API test server: check mode, converge on a NotReady node,
idempotence, release from the timeline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.k8s_api import get, patch, wait_for

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/k8s/role_drain.yml"
NODE = "sandbox-node-1"
RECAP = re.compile(
    r"^localhost\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=\d+\s+failed=(?P<failed>\d+)", re.M
)


def recap(run) -> dict:
    match = RECAP.search(run.stdout)
    assert match, f"no PLAY RECAP for localhost in the output:\n{run.output[-3000:]}"
    return {key: int(value) for key, value in match.groupdict().items()}


def state(box) -> tuple[bool, dict, list[str]]:
    node = get(box, f"/api/v1/nodes/{NODE}")
    annotations = {k: v for k, v in (node["metadata"].get("annotations") or {}).items() if k.startswith("firebreak")}
    pods = get(box, f"/api/v1/pods?fieldSelector=spec.nodeName%3D{NODE}")["items"]
    return bool(node["spec"].get("unschedulable")), annotations, sorted(p["metadata"]["name"] for p in pods)


def not_ready(box) -> None:
    """The KubeNodeNotReady symptom: the node's Ready condition turns False (the node controller taints it)."""
    node = get(box, f"/api/v1/nodes/{NODE}")
    conditions = [
        dict(c, status="False", reason="KubeletNotReady") if c["type"] == "Ready" else c
        for c in node["status"]["conditions"]
    ]
    patch(box, f"/api/v1/nodes/{NODE}/status", {"status": {"conditions": conditions}}, "application/merge-patch+json")
    wait_for(
        lambda: any(
            t["key"] == "node.kubernetes.io/not-ready"
            for t in get(box, f"/api/v1/nodes/{NODE}")["spec"].get("taints") or []
        ),
        what="the node controller to taint the NotReady node",
    )


def test_check_mode_changes_nothing(kube, run_playbook):
    not_ready(kube)
    before = state(kube)
    run = run_playbook(PLAYBOOK, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert recap(run)["failed"] == 0
    assert state(kube) == before


def test_converge_idempotence_then_release_from_the_timeline(kube, run_playbook, tmp_path):
    not_ready(kube)
    timeline = tmp_path / "incident" / "timeline.jsonl"
    first = run_playbook(PLAYBOOK, timeline=timeline)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    cordoned, annotations, pods = state(kube)
    assert cordoned and annotations["firebreak.io/cordoned-by"].startswith("INC-TEST-")
    assert [p for p in pods if not p.startswith("fluentd-")] == [], pods

    second = run_playbook(PLAYBOOK, timeline=timeline)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0 and recap(second)["failed"] == 0, second.stdout
    assert state(kube) == (cordoned, annotations, pods)

    check = run_playbook(PLAYBOOK, timeline=timeline, check=True, extra_vars={"k8s_state": "released"})
    assert check.returncode == 0, check.output
    assert state(kube) == (cordoned, annotations, pods), "a check-mode release changed the node"

    released = run_playbook(PLAYBOOK, timeline=timeline, extra_vars={"k8s_state": "released"})
    assert released.returncode == 0, released.output
    assert recap(released)["changed"] == 1, released.stdout
    assert state(kube)[:2] == (False, {})

    again = run_playbook(PLAYBOOK, timeline=timeline, extra_vars={"k8s_state": "released"})
    assert again.returncode == 0, again.output
    assert recap(again)["changed"] == 0, again.stdout
    assert state(kube)[:2] == (False, {})

    records = [json.loads(line) for line in Path(timeline).read_text().splitlines() if line.strip()]
    containments = [c for r in records for c in (r.get("details") or {}).get("containment") or []]
    assert [c["resource"] for c in containments] == [f"node/{NODE}"]
    releases = [e for r in records for e in (r.get("details") or {}).get("release") or []]
    assert releases[0]["releases"] == [containments[0]["id"]] and releases[0]["restored"] == {"uncordoned": True}
