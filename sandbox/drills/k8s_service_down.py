"""Drill: a Kubernetes workload is down after a bad image rollout (seeds/k8s-playbooks.md, "Service Downtime").

The fault: the seeded Deployment ``shop/api`` (revision 3, ``registry.local/api:2.2.0``) is updated to an image
tag beginning ``bad`` that the sandbox Kubernetes API test server never pulls (docs/sandbox-kubernetes.md): the
newest ReplicaSet's pod stays in ``ImagePullBackOff`` and the rollout exceeds its (short) progress deadline. The
runbook (``playbooks/k8s_service_down.yml``) must triage, find the bad rollout, undo it to revision 3's template and
verify the rollout. ``verify`` reads the Deployment back from the server; ``verify_record`` checks the timeline.
The drill runs non-interactively: the sandbox's gate policy runs a rollback ungated (docs/frame.md).
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from sandbox.drills import frame_record

PLAYBOOK = "playbooks/k8s_service_down.yml"
DESCRIPTION = "Kubernetes Deployment on a bad image (ImagePullBackOff): triage, rollout undo, verify the rollout"
# A re-run on the recovered service refuses with these words (every pod ready, the rollout complete: nothing to
# do, nothing changed): what Molecule's check and idempotence runs end in (sandbox/drill_molecule.py rerun_refused)
RERUN_REFUSAL = "does not look down"
NAMESPACE, NAME = "shop", "api"
GOOD_IMAGE = "registry.local/api:2.2.0"
BAD_IMAGE = "registry.local/api:bad-2.3.0"
DEPLOYMENT = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{NAME}"


def _call(sandbox, method: str, path: str, body=None, content_type="application/json") -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(sandbox.kube_url + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read() or b"{}")


def _image(deployment: dict) -> str:
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def _progressing(deployment: dict) -> str | None:
    for cond in (deployment.get("status") or {}).get("conditions") or []:
        if cond["type"] == "Progressing":
            return cond.get("reason")
    return None


def inject(sandbox, deadline: int = 2) -> dict:
    """Roll the seeded Deployment onto a bad image with a short progress deadline; wait until it is stuck and return
    the playbook's extra vars and, under ``_drill``, what ``verify`` needs."""
    before = _call(sandbox, "GET", DEPLOYMENT)
    if _image(before) != GOOD_IMAGE:
        raise RuntimeError(f"the sandbox's {NAMESPACE}/{NAME} runs {_image(before)}, expected the seeded {GOOD_IMAGE}")
    container = before["spec"]["template"]["spec"]["containers"][0]["name"]
    body = {
        "spec": {
            "progressDeadlineSeconds": deadline,
            "template": {"spec": {"containers": [{"name": container, "image": BAD_IMAGE}]}},
        }
    }
    _call(sandbox, "PATCH", DEPLOYMENT, body, "application/strategic-merge-patch+json")
    limit = time.monotonic() + deadline + 20
    while _progressing(stuck := _call(sandbox, "GET", DEPLOYMENT)) != "ProgressDeadlineExceeded":
        if time.monotonic() > limit:
            raise RuntimeError(f"fault injection failed: {NAMESPACE}/{NAME} did not exceed its progress deadline")
        time.sleep(0.2)
    bad_revision = int(stuck["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
    return {
        "k8s_service_down_namespace": NAMESPACE,
        "k8s_service_down_workload": NAME,
        "k8s_service_down_wait_timeout": 60,
        "k8s_service_down_health_timeout": 60,
        "_drill": {
            "namespace": NAMESPACE,
            "name": NAME,
            "good_image": GOOD_IMAGE,
            "bad_image": BAD_IMAGE,
            "bad_revision": bad_revision,
            "fault": f"Deployment {NAMESPACE}/{NAME} rolled out on image {BAD_IMAGE} (revision {bad_revision}):"
            " ImagePullBackOff, progress deadline exceeded",
        },
    }


def verify(sandbox, context: dict) -> list[str]:
    """Check on the API server that the Deployment runs the good image again, fully available."""
    drill = context["_drill"]
    found = _call(sandbox, "GET", f"/apis/apps/v1/namespaces/{drill['namespace']}/deployments/{drill['name']}")
    running = _image(found)
    assert running != drill["bad_image"], (
        f"{drill['namespace']}/{drill['name']} still runs the bad image {drill['bad_image']}: it was not rolled back"
    )
    assert running == drill["good_image"], f"{drill['name']} runs {running}, expected {drill['good_image']}"
    status, desired = found.get("status") or {}, found["spec"].get("replicas", 1)
    assert status.get("availableReplicas", 0) == desired and not status.get("unavailableReplicas"), (
        f"{drill['name']}: {status.get('availableReplicas', 0)}/{desired} replicas available"
    )
    assert status.get("updatedReplicas", 0) == desired, f"{drill['name']}: the rollout is not complete ({status})"
    revision = int(found["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
    assert revision > drill["bad_revision"], f"{drill['name']} is at revision {revision}, not past the bad one"
    return [
        f"Deployment {drill['namespace']}/{drill['name']} runs {running}, not the bad {drill['bad_image']}",
        f"{status['availableReplicas']}/{desired} replicas available at revision {revision}",
    ]


def verify_record(timeline: Path, report: Path) -> list[str]:
    """Check the frame's record: declared and resolved, the gate's decision, the triage and the undo, a report
    naming the severity."""
    frame = frame_record(timeline, report)
    actions = [rec.get("action") for rec in frame.records if not rec.get("check_mode")]
    assert "firebreak.runbooks.k8s_triage_info" in actions, f"no triage in {timeline}"
    undo = [
        rec
        for rec in frame.records
        if rec.get("action") == "firebreak.runbooks.k8s_rollout_undo" and rec["event"] == "task_changed"
    ]
    assert undo, f"no rollout undo changed anything in {timeline}"
    return [
        *frame.summary(),
        f"report {Path(report).name} verifies the chain and names severity {frame.declared['severity']}",
    ]
