"""The k8s_service_down scenario end to end on the incident frame against the Kubernetes API test server: the
drill's bad image rollout undone and verified, the record, --check, the production gate on a NotReady node's
drain, a healthy workload refused then a forced restart, bad names."""

from __future__ import annotations

import json
import re

import pytest

from sandbox.drills import k8s_service_down as drill
from tests.integration.k8s_api import APPS, deployment, get, image, patch, wait_for
from tests.integration.scenario_helpers import lifecycle, records

pytestmark = [pytest.mark.integration, pytest.mark.drill]

PLAYBOOK = drill.PLAYBOOK
NODE = "sandbox-node-1"
QUICK = {"k8s_service_down_wait_timeout": 60, "k8s_service_down_health_timeout": 60}


def extra_vars(context: dict) -> dict:
    return {key: value for key, value in context.items() if not key.startswith("_")}


def cluster_state(box) -> dict:
    """What the scenario may change: the workloads' specs and annotations, ReplicaSets, nodes, NetworkPolicies."""
    api = deployment(box, "shop", "api")
    nodes = get(box, "/api/v1/nodes")["items"]
    return {
        "api": (api["spec"], api["metadata"].get("annotations")),
        "replicasets": sorted(
            (rs["metadata"]["name"], rs["spec"].get("replicas")) for rs in get(box, f"{APPS}/shop/replicasets")["items"]
        ),
        "nodes": sorted(
            (n["metadata"]["name"], bool(n["spec"].get("unschedulable")), json.dumps(n["metadata"].get("annotations")))
            for n in nodes
        ),
        "policies": sorted(
            p["metadata"]["name"]
            for p in get(box, "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies")["items"]
        ),
    }


def not_ready(box, node=NODE) -> None:
    found = get(box, f"/api/v1/nodes/{node}")
    conditions = [
        dict(c, status="False", reason="KubeletNotReady") if c["type"] == "Ready" else c
        for c in found["status"]["conditions"]
    ]
    patch(box, f"/api/v1/nodes/{node}/status", {"status": {"conditions": conditions}}, "application/merge-patch+json")
    wait_for(
        lambda: any(
            t["key"] == "node.kubernetes.io/not-ready"
            for t in get(box, f"/api/v1/nodes/{node}")["spec"].get("taints") or []
        ),
        what="the node controller to taint the NotReady node",
    )


def test_the_bad_rollout_is_triaged_undone_verified_resolved_reported_and_a_rerun_changes_nothing(
    aws, kube, run_playbook
):
    context = drill.inject(kube)
    assert image(deployment(kube, "shop", "api")) == drill.BAD_IMAGE

    run = run_playbook(PLAYBOOK, extra_vars=extra_vars(context))
    assert run.returncode == 0, run.output[-4000:]
    checks = drill.verify(kube, context)
    assert image(deployment(kube, "shop", "api")) == drill.GOOD_IMAGE
    assert any(drill.GOOD_IMAGE in line for line in checks)
    assert "cause: bad_rollout; step: rollout_undo" in run.stdout
    assert "left for a person: fix the bad build" in run.stdout

    # the record: declared, triage before the undo, the gate, verification, resolution, report and seal in order
    assert [(d["severity"], d["type"]) for d in lifecycle(run, "declared")] == [("P2", "k8s_service_down")]
    [resolved] = lifecycle(run, "resolved")
    assert "rolled back Deployment shop/api: from revision 4 to revision 3" in resolved["summary"]
    tasks = [r for r in records(run) if r["event"] in ("task_ok", "task_changed", "task_failed", "note")]
    actions = [r["action"] for r in tasks]
    triage = actions.index("firebreak.runbooks.k8s_triage_info")
    undo = actions.index("firebreak.runbooks.k8s_rollout_undo")
    assert triage < undo
    assert any("ImagePullBackOff" in line for line in tasks[triage]["details"]["summary"])
    assert tasks[undo]["event"] == "task_changed"
    gate = [r["msg"] for r in tasks[:undo] if r["event"] == "note" and "Gate k8s-service-down-rollout-undo" in r["msg"]]
    assert gate and "passed without approval" in gate[0]
    later = actions[undo:]
    order = [
        later.index("firebreak.runbooks.k8s_health_verify"),
        later.index("firebreak.runbooks.incident_report"),
        later.index("firebreak.runbooks.incident_seal"),
    ]
    assert order == sorted(order), later
    verify = tasks[undo + later.index("firebreak.runbooks.k8s_health_verify")]["details"]
    assert [c["verdict"] for c in verify["checks"]] == ["pass"]
    report = run.timeline.with_name("report.json")
    assert report.is_file() and "P2" in run.timeline.with_name("report.md").read_text()
    assert drill.verify_record(run.timeline, run.timeline.with_name("report.md"))

    # a re-run of the same incident: its undo is in its timeline, so the healthy workload is not refused; nothing
    # changes, the run says so, verifies and resolves again
    state = cluster_state(kube)
    again = run_playbook(PLAYBOOK, extra_vars=extra_vars(context))
    assert again.returncode == 0, again.output[-4000:]
    again_text = " ".join(again.stdout.split())
    assert "shop/api is healthy and this incident already ran its step (k8s_rollout_undo at" in again_text
    assert "cause: none; step: none" in again_text
    assert cluster_state(kube) == state
    assert not [r for r in records(again)[len(records(run)) :] if r["event"] == "task_changed" and "k8s" in r["action"]]
    assert len(lifecycle(again, "resolved", real=True)) == 2  # reopened by the re-run and resolved again

    # a new incident against the healthy (rolled back) workload is still refused, saying how to force
    other = run_playbook(
        PLAYBOOK,
        extra_vars=extra_vars(context),
        timeline=run.timeline.parent.parent / "INC-OTHER" / "timeline.jsonl",
        env={"FIREBREAK_INCIDENT_ID": "INC-OTHER"},
    )
    assert other.returncode != 0
    assert "shop/api does not look down" in " ".join(other.stdout.split()), other.stdout[-3000:]
    assert cluster_state(kube) == state


def test_check_mode_is_a_complete_preview_that_changes_nothing(aws, kube, run_playbook):
    context = drill.inject(kube)
    before = cluster_state(kube)
    run = run_playbook(PLAYBOOK, extra_vars=extra_vars(context), check=True, diff=True)
    assert run.returncode == 0, run.output[-4000:]
    assert "DRY RUN, nothing changed." in run.stdout
    assert "cause: bad_rollout; step: rollout_undo" in run.stdout
    assert cluster_state(kube) == before
    assert image(deployment(kube, "shop", "api")) == drill.BAD_IMAGE


def test_a_notready_node_in_production_stops_at_the_gate_then_an_approval_drains_it(aws, kube, run_playbook):
    not_ready(kube)
    before = cluster_state(kube)
    production = {**QUICK, "firebreak_environment": "production"}
    run = run_playbook(PLAYBOOK, extra_vars=production)
    assert run.returncode != 0
    text = " ".join(run.stdout.split())
    assert "gate k8s-service-down-drain not confirmed (approval_required in production): nothing was changed" in text, (
        run.stdout[-4000:]
    )
    assert cluster_state(kube) == before

    digest = re.search(r'"k8s-service-down-drain": "([0-9a-f]{12})"', run.stdout).group(1)
    approval = {"firebreak_gate_approvals": {"k8s-service-down-drain": digest}, "firebreak_gate_approver": "alice"}
    approved = run_playbook(PLAYBOOK, extra_vars={**production, **approval})
    assert approved.returncode == 0, approved.output[-4000:]
    node = get(kube, f"/api/v1/nodes/{NODE}")
    assert node["spec"].get("unschedulable") is True
    pods = get(kube, f"/api/v1/pods?fieldSelector=spec.nodeName%3D{NODE}")["items"]
    assert [p["metadata"]["name"] for p in pods if not p["metadata"]["name"].startswith("fluentd-")] == []
    assert "cause: node_not_ready; step: drain" in approved.stdout
    assert "left for a person: repair or replace node(s) sandbox-node-1" in " ".join(approved.stdout.split())
    notes = [r["msg"] for r in records(approved) if r["event"] == "note" and "Gate k8s-service-down-drain" in r["msg"]]
    assert notes and "approved by alice" in notes[-1]
    drains = [r for r in records(approved) if r.get("action") == "firebreak.runbooks.k8s_node_drain"]
    assert drains[-1]["event"] == "task_changed" and drains[-1]["details"]["containment"]


def test_a_healthy_workload_is_refused_then_a_forced_restart_records_its_reason(aws, kube, run_playbook):
    before = cluster_state(kube)
    run = run_playbook(PLAYBOOK, extra_vars=QUICK)
    assert run.returncode != 0
    text = " ".join(run.stdout.split())
    assert "Deployment shop/api does not look down" in text, run.stdout[-3000:]
    assert "-e k8s_service_down_force=true -e k8s_service_down_force_reason=" in text
    assert cluster_state(kube) == before
    assert not lifecycle(run, "resolved")

    reason = "checkout answers 500 although every pod is ready"
    forced = run_playbook(
        PLAYBOOK, extra_vars={**QUICK, "k8s_service_down_force": True, "k8s_service_down_force_reason": reason}
    )
    assert forced.returncode == 0, forced.output[-4000:]
    api = deployment(kube, "shop", "api")
    assert "kubectl.kubernetes.io/restartedAt" in api["spec"]["template"]["metadata"].get("annotations", {})
    assert image(api) == drill.GOOD_IMAGE
    notes = [r["msg"] for r in records(forced) if r["event"] == "note" and "forced" in (r["msg"] or "")]
    assert notes and reason in notes[0]
    assert lifecycle(forced, "resolved")


def test_bad_names_and_a_force_without_a_reason_stop_before_any_call(aws, kube, run_playbook):
    context = drill.inject(kube)
    before = cluster_state(kube)
    for extra, message in (
        ({"k8s_service_down_namespace": "Shop!"}, 'k8s_service_down_namespace "Shop!" is not a Kubernetes namespace'),
        (
            {"k8s_service_down_workload": "api/../x"},
            'k8s_service_down_workload "api/../x" is not a Kubernetes workload',
        ),
        ({"k8s_service_down_node": "node 1"}, 'k8s_service_down_node "node 1" is not a Kubernetes node name'),
        ({"k8s_service_down_force": True}, "k8s_service_down_force needs a reason"),
        ({"k8s_service_down_action": "delete"}, "k8s_service_down_action"),
    ):
        run = run_playbook(PLAYBOOK, extra_vars={**extra_vars(context), **extra})
        assert run.returncode != 0, extra
        assert message in " ".join(run.output.split()), (extra, run.output[-2000:])
        assert "Traceback" not in run.output
        assert (
            not [r for r in records(run) if r.get("action") == "firebreak.runbooks.k8s_triage_info"]
            if run.timeline.exists()
            else True
        )
        assert cluster_state(kube) == before
