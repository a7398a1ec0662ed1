"""firebreak.runbooks.alertmanager_webhook: Alertmanager's webhook receiver, authenticated, one event per alert.

Unlike ansible.eda.webhook, which accepts anyone when no token is configured, this source does not start
without a bearer token or an HMAC secret, compares both in constant time, listens on 127.0.0.1 unless told
otherwise, caps the body size, and journals every refusal.  Alertmanager retries a notification that was
not answered with 2xx, so a refused or failed delivery is not lost on its side.

Each alert of a notification becomes one event, decided as the SQS source decides (its ``Journal`` and
``incident_for``, loaded from aws_sqs_durable.py beside this file): the incident id from the alert's fingerprint
and ``startsAt``, a repeat of the same fingerprint within ``incident_window`` is the open incident
(``repeat: true``), journaled in ``<spool>/journal.jsonl`` before it goes to the rules engine.  The event::

    {"payload": <the notification>, "alert": <this alert>,
     "firebreak": {"kind": "alertmanager_alert", "message_id", "receive_count", "spool", "incident_id",
                   "dedupe_key", "repeat", "redelivery", "status" (firing/resolved), "alert_name", "fingerprint",
                   "starts_at", "ends_at", "state_time", "severity" (P1-P4), "severity_label", "namespace",
                   "workload", "workload_from", "pod", "hpa", "cluster", "labels", "summary", "receiver",
                   "group_key", "source": "alertmanager", "detail_type", "account", "region", "time"}}
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import importlib.util
import json
import logging
import os
import re
import uuid
from pathlib import Path
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
  spool:
    description:
      - Directory of the journal (C(journal.jsonl): every refusal, every alert and the incident it was given) and of
        the confirmations (C(acks/)) the playbooks write; one source per spool (it is locked).
    type: str
    default: incidents/.eda/alertmanager
  incident_window:
    description:
      - Seconds within which further notifications of the same alert (its fingerprint) belong to the same incident
        (C(firebreak.repeat=true)): Alertmanager's resends, the resolved notification, a flap.
    type: int
    default: 3600
  incident_prefix:
    description: Prefix of derived incident ids.
    type: str
    default: ALERT
"""

EXAMPLES = r"""
- firebreak.runbooks.alertmanager_webhook:
    port: 5001
    token: "{{ FIREBREAK_WEBHOOK_TOKEN }}"   # ansible-rulebook --env-vars FIREBREAK_WEBHOOK_TOKEN
    spool: /var/lib/firebreak/eda/alertmanager
"""

logger = logging.getLogger("firebreak.runbooks.alertmanager_webhook")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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


def _durable():
    """The SQS source's module (its Journal and incident_for), loaded from the file beside this one: ansible-rulebook
    runs a source file by path, so the two are not a package."""
    path = Path(__file__).resolve().with_name("aws_sqs_durable.py")
    spec = importlib.util.spec_from_file_location("firebreak_runbooks_eda_aws_sqs_durable", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Alertmanager's severity label (the kubernetes-mixin uses critical, warning, info) -> the incident's severity
# (incident-procedures.md: P1 critical ... P4 low). An unknown or missing label is P3.
SEVERITIES = {
    "critical": "P1",
    "page": "P1",
    "emergency": "P1",
    "high": "P2",
    "error": "P2",
    "major": "P2",
    "warning": "P3",
    "warn": "P3",
    "medium": "P3",
    "minor": "P3",
    "info": "P4",
    "low": "P4",
    "none": "P4",
}
# <deployment>-<pod-template-hash>-<5 characters>: a Deployment's pod (ReplicaSet name + suffix)
DEPLOYMENT_POD = re.compile(
    r"^(?P<name>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-[bcdfghjklmnpqrstvwxz2456789]{6,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$"
)


def alert_severity(labels: dict) -> tuple[str, str]:
    """(the alert's severity label, the incident severity P1-P4)."""
    label = str(labels.get("severity", "")).strip()
    if re.fullmatch(r"[Pp][1-4]", label):
        return label, label.upper()
    return label, SEVERITIES.get(label.lower(), "P3")


def workload_target(labels: dict) -> tuple[str, str]:
    """(workload name, where it came from): the ``deployment`` label, else ``workload``, else the
    ``horizontalpodautoscaler`` (its name; the playbook reads its scaleTargetRef), else a Deployment pod's name
    without its ReplicaSet hash and suffix; ("", "") when none says."""
    for label in ("deployment", "workload", "horizontalpodautoscaler"):
        if labels.get(label):
            return str(labels[label]), label
    match = DEPLOYMENT_POD.match(str(labels.get("pod", "")))
    return (match.group("name"), "pod") if match else ("", "")


def fingerprint(alert: dict) -> str:
    """Alertmanager's fingerprint of the alert, else a hash of its labels (the same alert, the same key)."""
    given = str(alert.get("fingerprint", "")).strip()
    if given:
        return given
    labels = alert.get("labels") if isinstance(alert.get("labels"), dict) else {}
    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def describe_alert(alert: dict, payload: dict) -> dict:
    """The fields the rules, the journal and the playbooks use, of one alert of a notification."""
    labels = alert.get("labels") if isinstance(alert.get("labels"), dict) else {}
    labels = {str(k): str(v) for k, v in labels.items()}
    annotations = alert.get("annotations") if isinstance(alert.get("annotations"), dict) else {}
    status = str(alert.get("status") or payload.get("status") or "")
    severity_label, severity = alert_severity(labels)
    workload, source = workload_target(labels)
    starts = str(alert.get("startsAt", ""))
    ends = str(alert.get("endsAt", ""))
    if ends.startswith("0001-"):  # Go's zero time: still firing
        ends = ""
    return {
        "kind": "alertmanager_alert",
        "source": "alertmanager",
        "detail_type": "Alertmanager alert",
        "account": "",
        "region": "",
        "time": _now(),
        "event_id": "",
        "status": status,
        "alert_name": labels.get("alertname", ""),
        "fingerprint": fingerprint(alert),
        "starts_at": starts,
        "ends_at": ends,
        "state_time": starts,
        "severity": severity,
        "severity_label": severity_label,
        "namespace": labels.get("namespace", ""),
        "workload": workload,
        "workload_from": source,
        "pod": labels.get("pod", ""),
        "hpa": labels.get("horizontalpodautoscaler", ""),
        "cluster": labels.get("cluster", ""),
        "labels": labels,
        "summary": str(annotations.get("summary") or annotations.get("description") or "")[:500],
        "receiver": str(payload.get("receiver", "")),
        "group_key": str(payload.get("groupKey", "")),
    }


def valid_alerts(payload: dict) -> list[dict]:
    """The alerts of a notification that can be decided: a dict with labels and a startsAt."""
    return [a for a in payload.get("alerts", []) if isinstance(a, dict) and isinstance(a.get("labels"), dict)]


class AlertDecider:
    """Decides each alert's incident with the SQS source's journal: the same spool format, the same repeat rule."""

    def __init__(self, args: dict, durable=None):
        self.durable = durable or _durable()
        spool = args.get("spool") or os.path.join("incidents", ".eda", "alertmanager")
        self.journal = self.durable.Journal(spool, int(args.get("retention_days", 14)))
        self.window = float(args.get("incident_window", 3600))
        self.prefix = str(args.get("incident_prefix", "ALERT"))

    def decide(self, alert: dict, payload: dict, remote: str | None = None) -> dict:
        """The event of one alert, journaled ``received`` before it is returned."""
        info = describe_alert(alert, payload)
        key = f"alertmanager:{info['fingerprint']}"
        when = self.durable.parse_time(info["starts_at"]) or datetime.datetime.now(datetime.timezone.utc)
        incident_id, repeat = self.durable.incident_for(self.journal, self.prefix, info, key, when, self.window)
        mid = f"am-{uuid.uuid4().hex}"
        firebreak = {
            **info,
            "message_id": mid,
            "receive_count": 1,
            "spool": str(self.journal.spool),
            "incident_id": incident_id,
            "dedupe_key": key,
            "repeat": repeat,
            "redelivery": False,
        }
        self.journal.append(
            "received",
            mid,
            incident_id=incident_id,
            dedupe_key=key,
            repeat=repeat,
            event_time=info["starts_at"] or None,
            kind=info["kind"],
            source=info["source"],
            alert=info["alert_name"],
            alert_status=info["status"],
            remote=remote,
        )
        return {"payload": payload, "alert": alert, "firebreak": firebreak}


async def main(queue: asyncio.Queue, args: dict[str, Any]) -> None:
    """ansible-rulebook's entry point."""
    from aiohttp import web

    args = {k: v for k, v in args.items() if k != "eda_feedback_queue"}
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
    decider = AlertDecider(args)
    journal = decider.journal

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
        alerts = valid_alerts(payload)
        if not alerts:
            journal.append("refused", reason="no alert with labels", remote=remote, path=request.path)
            return web.json_response({"error": "no alert with labels in the notification"}, status=400)
        incidents = []
        for alert in alerts:
            event = decider.decide(alert, payload, remote)
            await queue.put(event)
            journal.append("queued", event["firebreak"]["message_id"], incident_id=event["firebreak"]["incident_id"])
            incidents.append(event["firebreak"]["incident_id"])
        return web.json_response({"accepted": len(alerts), "incident_ids": incidents}, status=202)

    app = web.Application(client_max_size=max_body)
    app.router.add_post("/{endpoint:.*}", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, str(args.get("host", "127.0.0.1")), int(args["port"]))
    await site.start()
    journal.append("started", host=str(args.get("host", "127.0.0.1")), port=int(args["port"]), pid=os.getpid())
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        journal.close()
