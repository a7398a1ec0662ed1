"""The Alertmanager webhook source (extensions/eda/plugins/event_source/alertmanager_webhook.py) on 127.0.0.1:
no token or HMAC, no start; a request without the token, with a wrong one or a bad signature gets 401 and is
journaled; a good one becomes one event."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib.util
import json
import urllib.error
import urllib.request

import pytest

pytest.importorskip("aiohttp")

from sandbox import REPO_ROOT, free_port

SOURCE_PATH = REPO_ROOT / "extensions" / "eda" / "plugins" / "event_source" / "alertmanager_webhook.py"
_spec = importlib.util.spec_from_file_location("alertmanager_webhook", SOURCE_PATH)
src = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(src)

TOKEN = "s3cret-token"
SECRET = "hmac-secret"
NOTIFICATION = {
    "version": "4",
    "groupKey": '{}:{alertname="ShopApiDown"}',
    "status": "firing",
    "receiver": "firebreak",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "ShopApiDown", "service": "shop-api"},
            "startsAt": "2026-12-06T16:04:34.123Z",
        }
    ],
}


def post(url, body, headers):
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def serve_and_post(args, requests, tmp_path):
    """Start the source, send ``requests`` [(body, headers)], return (statuses, events, journal states)."""
    port = free_port()
    args = {"port": port, "spool": str(tmp_path / "spool"), **args}

    async def scenario():
        queue = asyncio.Queue()
        task = asyncio.create_task(src.main(queue, args))
        for _ in range(50):
            await asyncio.sleep(0.05)
            started = tmp_path / "spool" / "journal.jsonl"
            if started.exists() and '"started"' in started.read_text():
                break
        statuses = []
        for body, headers in requests:
            status, _ = await asyncio.to_thread(post, f"http://127.0.0.1:{port}/alerts", body, headers)
            statuses.append(status)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        events = []
        while not queue.empty():
            events.append(queue.get_nowait())
        return statuses, events

    statuses, events = asyncio.run(scenario())
    lines = (tmp_path / "spool" / "journal.jsonl").read_text().splitlines()
    return statuses, events, [json.loads(line) for line in lines]


def test_token_required(tmp_path):
    body = json.dumps(NOTIFICATION).encode()
    statuses, events, journal = serve_and_post(
        {"token": TOKEN},
        [
            (body, {}),
            (body, {"Authorization": "Bearer wrong"}),
            (body, {"Authorization": f"Basic {TOKEN}"}),
            (body, {"Authorization": f"Bearer {TOKEN}"}),
        ],
        tmp_path,
    )
    assert statuses == [401, 401, 401, 202]
    assert [r.get("reason") for r in journal if r["state"] == "refused"] == [
        "no bearer token",
        "wrong bearer token",
        "no bearer token",
    ]
    (event,) = events
    assert event["payload"] == NOTIFICATION and event["alert"] == NOTIFICATION["alerts"][0]
    assert event["firebreak"]["status"] == "firing"
    assert event["firebreak"]["alert_name"] == "ShopApiDown"
    assert event["firebreak"]["incident_id"].startswith("ALERT-ShopApiDown-20261206T160434Z-")
    assert [r["state"] for r in journal if r.get("message_id") == event["firebreak"]["message_id"]] == [
        "received",
        "queued",
    ]
    assert "Authorization" not in json.dumps(event)


def test_hmac_required(tmp_path):
    body = json.dumps(NOTIFICATION).encode()
    good = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    statuses, events, journal = serve_and_post(
        {"hmac_secret": SECRET},
        [
            (body, {}),
            (body, {"X-Firebreak-Signature": "sha256=" + "0" * 64}),
            (body + b" ", {"X-Firebreak-Signature": good}),  # the body changed after signing
            (body, {"X-Firebreak-Signature": good}),
        ],
        tmp_path,
    )
    assert statuses == [401, 401, 401, 202]
    assert len(events) == 1
    assert [r["reason"] for r in journal if r["state"] == "refused"] == [
        "no X-Firebreak-Signature signature",
        "wrong signature",
        "wrong signature",
    ]


def test_bad_bodies_are_refused(tmp_path):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    statuses, events, _ = serve_and_post(
        {"token": TOKEN, "max_body_bytes": 4096},
        [(b"{not json", auth), (b'{"alerts": "no"}', auth), (b"x" * 5000, auth)],
        tmp_path,
    )
    assert statuses == [400, 400, 413]
    assert events == []


def test_does_not_start_without_a_token_or_secret(tmp_path):
    with pytest.raises(ValueError, match="needs a token or an hmac_secret"):
        asyncio.run(src.main(asyncio.Queue(), {"port": free_port(), "spool": str(tmp_path / "j")}))


# -- one event per alert: incident, severity, target, repeats (src.describe_alert, src.AlertDecider) ----------------


def k8s_alert(alertname="KubeDeploymentReplicasMismatch", status="firing", severity="warning", **labels):
    return {
        "status": status,
        "labels": {"alertname": alertname, "severity": severity, "namespace": "shop", **labels},
        "annotations": {"summary": "Deployment has not matched the expected number of replicas."},
        "startsAt": "2026-12-06T16:04:34.123Z",
        "endsAt": "2026-12-06T16:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "fingerprint": "3d2c1b0a99887766",
    }


def notification(*alerts):
    return {
        "version": "4",
        "groupKey": '{}:{namespace="shop"}',
        "status": "firing",
        "receiver": "firebreak",
        "alerts": list(alerts),
    }


@pytest.mark.parametrize(
    ("label", "severity"),
    [
        ("critical", "P1"),
        ("page", "P1"),
        ("high", "P2"),
        ("error", "P2"),
        ("warning", "P3"),
        ("info", "P4"),
        ("none", "P4"),
        ("P2", "P2"),
        ("p1", "P1"),
        ("", "P3"),
        ("shrug", "P3"),
    ],
)
def test_the_severity_label_maps_to_p1_p4(label, severity):
    assert src.alert_severity({"severity": label}) == (label, severity)


@pytest.mark.parametrize(
    ("labels", "target"),
    [
        ({"deployment": "api", "pod": "web-7d9f8b6c5d-x2v4q"}, ("api", "deployment")),
        ({"workload": "api"}, ("api", "workload")),
        ({"horizontalpodautoscaler": "api-hpa"}, ("api-hpa", "horizontalpodautoscaler")),
        ({"pod": "shop-api-7d9f8b6c5d-x2v4q"}, ("shop-api", "pod")),
        ({"pod": "db-0"}, ("", "")),  # a StatefulSet's pod: nothing guessed
        ({}, ("", "")),
    ],
)
def test_the_target_workload_comes_from_the_labels(labels, target):
    assert src.workload_target(labels) == target


def test_an_alert_names_its_incident_severity_and_target():
    info = src.describe_alert(k8s_alert(deployment="api", severity="critical", cluster="prod-eu"), notification())
    assert info["kind"] == "alertmanager_alert" and info["status"] == "firing"
    assert (info["alert_name"], info["severity"], info["severity_label"]) == (
        "KubeDeploymentReplicasMismatch",
        "P1",
        "critical",
    )
    assert (info["namespace"], info["workload"], info["cluster"]) == ("shop", "api", "prod-eu")
    assert info["ends_at"] == ""  # Go's zero time: still firing
    assert info["fingerprint"] == "3d2c1b0a99887766"
    # no fingerprint (an old Alertmanager): the labels' hash, stable
    bare = {k: v for k, v in k8s_alert().items() if k != "fingerprint"}
    assert src.fingerprint(bare) == src.fingerprint(dict(bare)) != ""


def test_repeats_and_the_resolved_alert_are_the_open_incident_a_new_firing_later_is_not(tmp_path):
    decider = src.AlertDecider({"spool": str(tmp_path / "spool"), "incident_window": 600})
    try:
        first = decider.decide(k8s_alert(deployment="api"), notification())["firebreak"]
        again = decider.decide(k8s_alert(deployment="api"), notification())["firebreak"]  # Alertmanager's resend
        resolved = decider.decide(k8s_alert(deployment="api", status="resolved"), notification())["firebreak"]
        later = dict(k8s_alert(deployment="api"), startsAt="2026-12-06T18:00:00Z")
        fresh = decider.decide(later, notification())["firebreak"]
        other = decider.decide(dict(k8s_alert(deployment="web"), fingerprint="aa"), notification())["firebreak"]
    finally:
        decider.journal.close()
    assert first["incident_id"].startswith("ALERT-KubeDeploymentReplicasMismatch-20261206T160434Z-")
    assert first["repeat"] is False
    assert (again["incident_id"], again["repeat"]) == (first["incident_id"], True)
    assert (resolved["incident_id"], resolved["repeat"], resolved["status"]) == (first["incident_id"], True, "resolved")
    assert fresh["repeat"] is False and fresh["incident_id"] != first["incident_id"]  # beyond the window
    assert other["repeat"] is False and other["incident_id"] != first["incident_id"]
    assert len({e["message_id"] for e in (first, again, resolved, fresh, other)}) == 5
    assert first["spool"] == str((tmp_path / "spool").absolute())
    # the decision survives a restart: the journal is replayed (the SQS source's Journal)
    decider = src.AlertDecider({"spool": str(tmp_path / "spool"), "incident_window": 600})
    try:
        replayed = decider.decide(later, notification())["firebreak"]
    finally:
        decider.journal.close()
    assert (replayed["incident_id"], replayed["repeat"]) == (fresh["incident_id"], True)


def test_a_notification_of_two_alerts_is_two_events(tmp_path):
    body = json.dumps(
        notification(k8s_alert(deployment="api"), dict(k8s_alert(deployment="web"), fingerprint="b"))
    ).encode()
    statuses, events, journal = serve_and_post(
        {"token": TOKEN}, [(body, {"Authorization": f"Bearer {TOKEN}"})], tmp_path
    )
    assert statuses == [202]
    assert [e["firebreak"]["workload"] for e in events] == ["api", "web"]
    assert len({e["firebreak"]["incident_id"] for e in events}) == 2
    assert [r["state"] for r in journal if r["state"] in ("received", "queued")] == ["received", "queued"] * 2
