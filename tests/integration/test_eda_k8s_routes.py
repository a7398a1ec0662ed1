"""ansible-rulebook with extensions/eda/rulebooks/kubernetes.yml against the sandbox's Kubernetes API test server: an
Alertmanager notification (the webhook receiver, its bearer token required) about the drill's bad rollout starts
k8s_service_down on the Deployment its labels name; the rollout is undone and verified, one incident timeline holds
the alert, the run and the report, and the resolved notification is recorded on it without a second run. A request
without the token is refused (401, journaled) and starts nothing.

Needs a Java 17+ runtime (ansible-rulebook's rules engine); skipped without one. One rulebook run (~40 s)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from sandbox.drills import k8s_service_down as drill
from sandbox.rulebook import alertmanager_rulebook, rulebook_available, runs_settled, timeline, verified_timeline
from tests.integration.k8s_api import deployment, image

pytestmark = pytest.mark.integration

if not rulebook_available():
    pytest.skip("ansible-rulebook and a Java 17+ runtime are needed", allow_module_level=True)

TOKEN = "sandbox-webhook-token"


def notification(status="firing"):
    """Alertmanager's webhook payload (version 4) of the kubernetes-mixin's replicas alert on shop/api."""
    alert = {
        "status": status,
        "labels": {
            "alertname": "KubeDeploymentReplicasMismatch",
            "severity": "critical",
            "namespace": drill.NAMESPACE,
            "deployment": drill.NAME,
            "cluster": "sandbox",
        },
        "annotations": {"summary": "Deployment has not matched the expected number of replicas."},
        "startsAt": "2026-12-06T16:04:34.123Z",
        "endsAt": "2026-12-06T16:40:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "fingerprint": "5b1f0c2d3e4a6978",
    }
    return {
        "version": "4",
        "groupKey": '{}:{alertname="KubeDeploymentReplicasMismatch"}',
        "status": status,
        "receiver": "firebreak",
        "alerts": [alert],
    }


def post(port, body, token=None):
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/alerts", data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def test_an_alertmanager_alert_recovers_the_deployment_and_a_request_without_the_token_is_refused(kube, tmp_path):
    context = drill.inject(kube)
    assert image(deployment(kube, drill.NAMESPACE, drill.NAME)) == drill.BAD_IMAGE
    rulebook, port = alertmanager_rulebook(kube, tmp_path, TOKEN)
    try:
        # no token, then a wrong one: refused, journaled, nothing dispatched
        assert post(port, notification())[0] == 401
        assert post(port, notification(), token="wrong")[0] == 401
        refused = [r["reason"] for r in rulebook.journal() if r["state"] == "refused"]
        assert refused == ["no bearer token", "wrong bearer token"]
        assert "received" not in rulebook.states()

        status, answer = post(port, notification(), token=TOKEN)
        assert status == 202, answer
        (incident,) = answer["incident_ids"]
        assert incident.startswith("ALERT-KubeDeploymentReplicasMismatch-20261206T160434Z-")
        rulebook.wait_for(lambda: (rulebook.incidents / incident / "report.md").exists(), 240, "no report")
        rulebook.wait_for(lambda: runs_settled(rulebook, incident), 60, "k8s_service_down did not end")

        # the resolved notification: the same incident, recorded, never acted on
        status, answer = post(port, notification("resolved"), token=TOKEN)
        assert (status, answer["incident_ids"]) == (202, [incident])
        rulebook.wait_for(
            lambda: (
                sum(r["event"] == "playbook_start" for r in timeline(rulebook, incident)) == 2
                and runs_settled(rulebook, incident)
            ),
            120,
            "the resolved alert was not recorded",
        )
    finally:
        rulebook.kill()

    checks = drill.verify(kube, context)  # the good image, every replica available, past the bad revision
    assert any(drill.GOOD_IMAGE in line for line in checks)
    assert [p.name for p in rulebook.incidents.iterdir() if p.is_dir() and not p.name.startswith(".")] == [incident]
    verified_timeline(rulebook, incident)
    path = rulebook.incidents / incident / "timeline.jsonl"
    assert drill.verify_record(path, path.with_name("report.md"))
    records = timeline(rulebook, incident)
    runs = [str(r.get("playbook", "")) for r in records if r["event"] == "playbook_start"]
    assert len(runs) == 2 and "eda_k8s_service_down" in runs[0] and "eda_alert" in runs[1], runs
    declared = [
        r["details"]["lifecycle"]
        for r in records
        if r.get("action") == "firebreak.runbooks.incident_lifecycle"
        and (r.get("details") or {}).get("lifecycle", {}).get("event") == "declared"
    ]
    assert [(d["severity"], d["type"]) for d in declared] == [("P1", "k8s_service_down")]  # severity: critical
    notes = [str(r.get("msg") or "").strip() for r in records if r["event"] == "note"]
    alerts = [n for n in notes if n.startswith("Alert received")]
    assert len(alerts) == 2, alerts
    assert "acting: k8s_service_down" in alerts[0] and "KubeDeploymentReplicasMismatch is firing" in alerts[0]
    assert "recorded, not acted on" in alerts[1] and "is resolved" in alerts[1]
    assert "a repeat within the incident window" in alerts[1]
    undone = [
        r for r in records if r.get("action") == "firebreak.runbooks.k8s_rollout_undo" and r["event"] == "task_changed"
    ]
    assert len(undone) == 1
    states = rulebook.states()
    assert states.count("received") == 2 and states.count("refused") == 2
