"""Drill: a deploy failed on Kubernetes and changed a ConfigMap (seeds/k8s-playbooks.md, "Deployment Failure").

The fault: the seeded ConfigMap ``shop/shop-config`` is marked as ``kubectl apply`` leaves it (its good content in
``kubectl.kubernetes.io/last-applied-configuration``), then the deploy edits it (``FEATURE_CHECKOUT_V2`` broken) and
rolls the seeded Deployment ``shop/api`` onto an image tag beginning ``bad`` that the sandbox Kubernetes API test
server never pulls (docs/sandbox-kubernetes.md): the newest ReplicaSet's pod stays in ``ImagePullBackOff`` and the
rollout exceeds its (short) progress deadline. The runbook (``playbooks/bad_deploy.yml``, platform ``kubernetes``)
must confirm the failed rollout, freeze deploys (the SSM flag), undo the rollout, roll the ConfigMap back and verify
the rollout. ``verify`` reads the Deployment and ConfigMap back from the server and the freeze flag from moto;
``verify_record`` checks the timeline. The freeze gate is approved in the extra vars (``firebreak_gate_approvals``),
so the drill runs non-interactively whatever the environment's policy.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from sandbox.drills import frame_record

PLAYBOOK = "playbooks/bad_deploy.yml"
DESCRIPTION = (
    "Kubernetes Deployment on a bad image with a broken ConfigMap: freeze deploys, undo, restore config, verify"
)
# A re-run on the recovered service refuses with these words (no failing rollout any more: nothing to do,
# nothing changed): what Molecule's check and idempotence runs end in (sandbox/drill_molecule.py rerun_refused)
RERUN_REFUSAL = "shows no failed deploy"
NAMESPACE, NAME, CONFIGMAP = "shop", "api", "shop-config"
GOOD_IMAGE = "registry.local/api:2.2.0"
BAD_IMAGE = "registry.local/api:bad-2.3.0"
DEPLOYMENT = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{NAME}"
CONFIGMAP_PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{CONFIGMAP}"
BROKEN = {"FEATURE_CHECKOUT_V2": "broken"}
FREEZE_PARAMETER = "/firebreak/deploy-freeze"
GATE = "bad-deploy-freeze"


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
    """Break the ConfigMap and roll the seeded Deployment onto a bad image; wait until it is stuck and return the
    playbook's extra vars and, under ``_drill``, what ``verify`` needs."""
    before = _call(sandbox, "GET", DEPLOYMENT)
    if _image(before) != GOOD_IMAGE:
        raise RuntimeError(f"the sandbox's {NAMESPACE}/{NAME} runs {_image(before)}, expected the seeded {GOOD_IMAGE}")
    config = _call(sandbox, "GET", CONFIGMAP_PATH)
    good = dict(config["data"])
    applied = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIGMAP, "namespace": NAMESPACE, "labels": config["metadata"].get("labels") or {}},
        "data": good,
    }
    annotation = {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied, sort_keys=True)}
    _call(sandbox, "PATCH", CONFIGMAP_PATH, {"metadata": {"annotations": annotation}}, "application/merge-patch+json")
    _call(sandbox, "PATCH", CONFIGMAP_PATH, {"data": BROKEN}, "application/merge-patch+json")

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
        "bad_deploy_platform": "kubernetes",
        "bad_deploy_namespace": NAMESPACE,
        "bad_deploy_workload": NAME,
        "bad_deploy_configmap": CONFIGMAP,
        "bad_deploy_wait_timeout": 60,
        "bad_deploy_health_timeout": 60,
        "firebreak_gate_approvals": {GATE: "yes"},
        "firebreak_gate_approver": "drill",
        "incident_gate_allow_unpinned": True,
        "_drill": {
            "namespace": NAMESPACE,
            "name": NAME,
            "configmap": CONFIGMAP,
            "good_config": good,
            "good_image": GOOD_IMAGE,
            "bad_image": BAD_IMAGE,
            "bad_revision": bad_revision,
            "parameter": FREEZE_PARAMETER,
            "fault": f"Deployment {NAMESPACE}/{NAME} rolled out on image {BAD_IMAGE} (revision {bad_revision}) with"
            f" ConfigMap {CONFIGMAP} edited: ImagePullBackOff, progress deadline exceeded",
        },
    }


def verify(sandbox, context: dict) -> list[str]:
    """Check on the API server that the Deployment runs the good image again, fully available, that the ConfigMap
    holds its good content again, and in moto that deploys are frozen."""
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
    config = _call(sandbox, "GET", f"/api/v1/namespaces/{drill['namespace']}/configmaps/{drill['configmap']}")
    assert config.get("data") == drill["good_config"], (
        f"ConfigMap {drill['configmap']} holds {sorted(config.get('data') or {})} = not its good content again"
    )
    flag = json.loads(sandbox.client("ssm").get_parameter(Name=drill["parameter"])["Parameter"]["Value"])
    assert flag.get("frozen") is True, f"deploys are not frozen: {drill['parameter']} holds {flag}"
    return [
        f"Deployment {drill['namespace']}/{drill['name']} runs {running}, not the bad {drill['bad_image']}",
        f"{status['availableReplicas']}/{desired} replicas available at revision {revision}",
        f"ConfigMap {drill['namespace']}/{drill['configmap']} holds its good content again",
        f"deploys frozen: {drill['parameter']} says frozen for incident {flag.get('incident_id')}",
    ]


def verify_record(timeline: Path, report: Path) -> list[str]:
    """Check the frame's record: declared and resolved, the freeze gate's decision, the freeze before the undo and
    the ConfigMap rollback, a report naming the severity."""
    frame = frame_record(timeline, report, gate=GATE)
    changed = [
        rec.get("action") for rec in frame.records if rec["event"] == "task_changed" and not rec.get("check_mode")
    ]
    for action in ("deploy_freeze", "k8s_rollout_undo", "k8s_config_rollback"):
        assert f"firebreak.runbooks.{action}" in changed, f"no {action} changed anything in {timeline}"
    freeze = changed.index("firebreak.runbooks.deploy_freeze")
    assert freeze < changed.index("firebreak.runbooks.k8s_rollout_undo"), "the rollout was undone before the freeze"
    return [
        *frame.summary(),
        "deploys frozen before the rollout undo and the ConfigMap rollback",
        f"report {Path(report).name} verifies the chain and names severity {frame.declared['severity']}",
    ]
