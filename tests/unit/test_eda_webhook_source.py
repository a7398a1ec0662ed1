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
    args = {"port": port, "journal": str(tmp_path / "webhook.jsonl"), **args}

    async def scenario():
        queue = asyncio.Queue()
        task = asyncio.create_task(src.main(queue, args))
        for _ in range(50):
            await asyncio.sleep(0.05)
            if (tmp_path / "webhook.jsonl").exists():
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
    lines = (tmp_path / "webhook.jsonl").read_text().splitlines()
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
    assert event["payload"] == NOTIFICATION
    assert event["firebreak"]["status"] == "firing"
    assert event["firebreak"]["alert_names"] == ["ShopApiDown"]
    assert event["firebreak"]["incident_id"].startswith("ALERT-ShopApiDown-20261206T160434Z-")
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
        asyncio.run(src.main(asyncio.Queue(), {"port": free_port(), "journal": str(tmp_path / "j")}))
