"""firebreak.runbooks.alertmanager_webhook: Alertmanager's webhook receiver, authenticated.

Unlike ansible.eda.webhook, which accepts anyone when no token is configured, this source does not start
without a bearer token or an HMAC secret, compares both in constant time, listens on 127.0.0.1 unless told
otherwise, caps the body size, and journals every refusal.  Alertmanager retries a notification that was
not answered with 2xx, so a refused or failed delivery is not lost on its side.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import json
import logging
import os
import re
from typing import Any

DOCUMENTATION = r"""
---
short_description: Receive Alertmanager notifications over HTTP, with a required token or HMAC.
description:
  - An ansible-rulebook event source for Alertmanager's webhook receiver (payload version 4).
  - Requests without the bearer O(token) or a valid O(hmac_secret) signature get 401 and are journaled.
options:
  host:
    description: Address to listen on.
    type: str
    default: 127.0.0.1
  port:
    description: TCP port to listen on.
    type: int
    required: true
  token:
    description:
      - Bearer token the sender must present (C(Authorization) header; Alertmanager's
        C(http_config.authorization.credentials)). O(token) or O(hmac_secret) is required.
    type: str
  hmac_secret:
    description: Secret of the HMAC signature of the body (for relays that sign).
    type: str
  hmac_header:
    description: Header carrying the signature, C(sha256=<hex>) or bare hex.
    type: str
    default: X-Firebreak-Signature
  hmac_algo:
    description: Hash of the HMAC.
    type: str
    default: sha256
  max_body_bytes:
    description: Larger requests get 413.
    type: int
    default: 1048576
  journal:
    description: JSON-lines file where refusals and accepted notifications are recorded.
    type: str
    default: incidents/.eda/alertmanager-webhook.jsonl
"""

EXAMPLES = r"""
- firebreak.runbooks.alertmanager_webhook:
    port: 5001
    token: "{{ alertmanager_webhook_token }}"
"""

logger = logging.getLogger("firebreak.runbooks.alertmanager_webhook")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Journal:
    """Append-only, fsynced JSON lines."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)

    def append(self, state: str, **fields: Any) -> None:
        rec = {"ts": _now(), "state": state, **{k: v for k, v in fields.items() if v is not None}}
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, (json.dumps(rec, sort_keys=True, default=str) + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)


def check_auth(
    headers: Any, body: bytes, token: str | None, secret: bytes | None, header: str, algo: str
) -> str | None:
    """Why the request is not authenticated, or None. Every configured check must pass."""
    if token is not None:
        scheme, _, given = str(headers.get("Authorization", "")).strip().partition(" ")
        if scheme.lower() != "bearer" or not given:
            return "no bearer token"
        if not hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8")):
            return "wrong bearer token"
    if secret is not None:
        signature = str(headers.get(header, "")).strip()
        if not signature:
            return f"no {header} signature"
        if signature.startswith(f"{algo}="):
            signature = signature[len(algo) + 1 :]
        expected = hmac.new(secret, body, algo).hexdigest()
        if not hmac.compare_digest(signature.lower().encode("ascii", "replace"), expected.encode("ascii")):
            return "wrong signature"
    return None


def describe(payload: dict) -> dict:
    """Normalised fields of an Alertmanager notification, for rules and the journal."""
    alerts = [a for a in payload.get("alerts", []) if isinstance(a, dict)]
    names = sorted({str((a.get("labels") or {}).get("alertname", "")) for a in alerts} - {""})
    starts = sorted(str(a.get("startsAt", "")) for a in alerts if a.get("startsAt"))
    group_key = str(payload.get("groupKey", ""))
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", names[0] if names else "alert").strip("-.")[:64] or "alert"
    stamp = re.sub(r"[^0-9T]", "", starts[0][:19]) + "Z" if starts else ""
    digest = hashlib.sha256(group_key.encode("utf-8")).hexdigest()[:8]
    return {
        "kind": "alertmanager",
        "status": str(payload.get("status", "")),
        "receiver": str(payload.get("receiver", "")),
        "group_key": group_key,
        "alert_names": names,
        "dedupe_key": group_key,
        "incident_id": f"ALERT-{name}-{stamp}-{digest}" if stamp else f"ALERT-{name}-{digest}",
    }


async def main(queue: asyncio.Queue, args: dict[str, Any]) -> None:
    """ansible-rulebook's entry point."""
    from aiohttp import web

    token = args.get("token")
    secret = args.get("hmac_secret")
    if not token and not secret:
        raise ValueError("alertmanager_webhook needs a token or an hmac_secret: it does not accept anonymous alerts")
    if "port" not in args:
        raise ValueError("alertmanager_webhook needs a port")
    algo = str(args.get("hmac_algo", "sha256"))
    if algo not in hashlib.algorithms_guaranteed:
        raise ValueError(f"unsupported hmac_algo {algo}")
    header = str(args.get("hmac_header", "X-Firebreak-Signature"))
    secret_bytes = str(secret).encode("utf-8") if secret else None
    token = str(token) if token else None
    max_body = int(args.get("max_body_bytes", 1024 * 1024))
    journal = Journal(str(args.get("journal") or os.path.join("incidents", ".eda", "alertmanager-webhook.jsonl")))

    async def receive(request: web.Request) -> web.Response:
        remote = request.remote
        if request.content_length is not None and request.content_length > max_body:
            journal.append("refused", reason="body too large", remote=remote, path=request.path)
            raise web.HTTPRequestEntityTooLarge(max_size=max_body, actual_size=request.content_length)
        body = await request.read()
        why = check_auth(request.headers, body, token, secret_bytes, header, algo)
        if why:
            journal.append("refused", reason=why, remote=remote, path=request.path)
            logger.warning("refused a webhook request from %s: %s", remote, why)
            return web.json_response({"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"})
        try:
            payload = json.loads(body)
        except ValueError:
            journal.append("refused", reason="body is not JSON", remote=remote, path=request.path)
            return web.json_response({"error": "body is not JSON"}, status=400)
        if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
            journal.append("refused", reason="not an Alertmanager notification", remote=remote, path=request.path)
            return web.json_response({"error": "not an Alertmanager notification (no alerts list)"}, status=400)
        info = describe(payload)
        journal.append("received", remote=remote, **{k: info[k] for k in ("status", "group_key", "incident_id")})
        await queue.put({"payload": payload, "meta": {"endpoint": request.path.lstrip("/")}, "firebreak": info})
        return web.json_response({"accepted": len(payload["alerts"]), "incident_id": info["incident_id"]}, status=202)

    app = web.Application(client_max_size=max_body)
    app.router.add_post("/{endpoint:.*}", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, str(args.get("host", "127.0.0.1")), int(args["port"]))
    await site.start()
    journal.append("started", host=str(args.get("host", "127.0.0.1")), port=int(args["port"]))
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
