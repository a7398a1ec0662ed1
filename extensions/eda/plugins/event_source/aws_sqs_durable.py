"""firebreak.runbooks.aws_sqs_durable: an SQS event source that loses no alert and acts on none twice.

ansible.eda.aws_sqs_queue deletes a message as soon as it has read it, so a crash between the read and
the run loses the alert.  This source deletes a message only after the run it started has confirmed,
in writing, that it recorded the event; until then the message stays in flight (its visibility timeout
kept alive while the run is pending) and comes back if this process dies.

Protocol (see docs/event-driven.md):

1. receive a message; decide (allowed? duplicate? which incident?) and append the decision to the
   spool's journal (``<spool>/journal.jsonl``, fsynced) *before* the event goes to the rules engine;
2. put the event on the queue, with ``firebreak.message_id``, ``firebreak.spool`` and the incident id;
3. the playbook the rule runs records the event in the incident timeline and then writes
   ``<spool>/acks/<message_id>.json`` (module ``firebreak.runbooks.incident_event_ack``, created exclusively:
   a second run for the same message finds it and does not act);
4. the source sees the acknowledgement, deletes the message, journals ``deleted``.

A message whose run never confirms becomes visible again (after ``ack_timeout``, or at once when this
process dies) and is dispatched again; a message acknowledged but not yet deleted when the process died is
deleted on redelivery without a second dispatch.  Messages that cannot be parsed are left to the queue's
redrive policy (dead-letter queue after ``maxReceiveCount``).  Events from accounts or sources that are
not allowed are refused: journaled, deleted, never dispatched.

The event put on the queue::

    {"body": <the EventBridge event>,
     "firebreak": {"message_id", "receive_count", "spool", "incident_id", "dedupe_key", "repeat",
                   "kind", "account", "region", "source", "detail_type", "time",
                   "alarm_name", "alarm_arn", "state", "previous_state", "state_time", "dimensions",
                   "metric_namespace", "metric_name" (the alarm's first metric with a metricStat),
                   for a GuardDuty finding "finding_id", "finding_type", "finding_title", "finding_severity",
                   "severity" (P1-P4), "resource_type", "access_key_id", "principal", "principal_type",
                   "instance_id", "buckets"; for an ECS deployment state change "event_name", "event_type",
                   "deployment_id", "reason", "service_arn", "cluster", "service";
                   and for a batch of repeats (``repeat_batch_seconds``) "batch", "batch_size"}}
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

DOCUMENTATION = r"""
---
short_description: Receive events from an SQS queue, deleting each only after its run confirmed it.
description:
  - An ansible-rulebook event source for EventBridge events (for example CloudWatch alarm state changes)
    delivered to an SQS queue, at least once and acted on once.
  - Each message is journaled in O(spool) before it is dispatched and deleted only when the run it started
    wrote its acknowledgement (module C(firebreak.runbooks.incident_event_ack)).
  - Credentials come from the usual boto3 chain (environment, profile, instance role).
options:
  queue_name:
    description: Name of the queue (or give O(queue_url)).
    type: str
  queue_url:
    description: URL of the queue.
    type: str
  queue_owner_account:
    description: Account that owns the queue, when it is not the caller's.
    type: str
  region:
    description: AWS region of the queue.
    type: str
  endpoint_url:
    description: Endpoint to use instead of AWS's (the local sandbox).
    type: str
  allowed_accounts:
    description:
      - Accounts whose events are accepted; the event's C(account) and the account of every ARN in its
        C(resources) must be listed. Other events are refused, journaled and deleted. Required.
    type: list
    elements: str
    required: true
  allowed_sources:
    description: Event sources accepted (the EventBridge C(source) field).
    type: list
    elements: str
    default: [aws.cloudwatch]
  allowed_regions:
    description: Regions accepted; empty accepts any.
    type: list
    elements: str
    default: []
  spool:
    description:
      - Directory of the journal and the acknowledgements; one source per spool (it is locked).
      - The playbooks the rulebook runs must be able to write its C(acks/) directory.
    type: str
    default: incidents/.eda/<queue name>
  visibility_timeout:
    description: Seconds a received message stays invisible; renewed while its run is pending.
    type: int
    default: 60
  ack_timeout:
    description:
      - Seconds to wait for the run's acknowledgement before letting the message become visible again
        (it is then dispatched again, up to the queue's C(maxReceiveCount)).
    type: int
    default: 900
  wait_seconds:
    description: Long-poll duration of each receive (0-20).
    type: int
    default: 5
  max_messages:
    description:
      - Messages per receive (1-10). The messages of one batch wait, unrenewed, while the rules engine takes
        the ones before them; keep 1 unless the engine takes events faster than O(visibility_timeout).
    type: int
    default: 1
  incident_window:
    description:
      - Seconds within which further events with the same dedupe key (an alarm's ARN) belong to the same
        incident (C(firebreak.repeat=true)); measured from the last such event.
    type: int
    default: 3600
  incident_prefix:
    description: Prefix of derived incident ids.
    type: str
    default: ALARM
  repeat_batch_seconds:
    description:
      - Repeats of an open incident (C(firebreak.repeat=true)), per alarm state, are held this many seconds
        from the first of them and dispatched together as one event whose C(firebreak.batch) lists every
        message (an alert storm: one recording run per batch instead of one per alert). The run confirms the
        batch's first message (C(firebreak.message_id)); the source then deletes every message of the batch.
      - 0 dispatches every repeat on its own.
    type: float
    default: 0
  repeat_batch_max:
    description: Repeats per batch at most; a full batch is dispatched at once.
    type: int
    default: 25
  ack_poll:
    description: Seconds between looks for acknowledgements.
    type: float
    default: 0.25
  retention_days:
    description:
      - Journal records and confirmations older than this are dropped when the source starts (SQS keeps a
        message 14 days at most).
    type: int
    default: 14
"""

EXAMPLES = r"""
- firebreak.runbooks.aws_sqs_durable:
    queue_name: firebreak-alarms
    region: eu-west-1
    allowed_accounts: ["111122223333"]
    allowed_sources: [aws.cloudwatch]
    visibility_timeout: 60
"""

logger = logging.getLogger("firebreak.runbooks.aws_sqs_durable")

MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
ACCOUNT = re.compile(r"^[0-9]{12}$")
ARN_ACCOUNT = re.compile(r"^arn:[^:]+:[^:]*:[^:]*:([0-9]{12})?:")
ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"
GUARDDUTY_DETAIL_TYPE = "GuardDuty Finding"
ECS_DEPLOYMENT_DETAIL_TYPE = "ECS Deployment State Change"


class SourceConfigError(ValueError):
    """The rulebook gave this source arguments it cannot work with."""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: Any) -> datetime.datetime | None:
    """An AWS timestamp (``2026-12-06T16:04:34Z``, ``2026-12-06T16:04:34.123+0000``) as aware UTC, else None."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    text = re.sub(r"([+-][0-9]{2})([0-9]{2})$", r"\1:\2", text)
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.astimezone(datetime.timezone.utc)


def ack_path(spool: str | os.PathLike, message_id: str) -> Path:
    """Where the run acknowledges ``message_id`` (the module incident_event_ack computes the same path)."""
    if not MESSAGE_ID.match(message_id or ""):
        raise ValueError(f"not an SQS message id: {message_id!r}")
    return Path(spool) / "acks" / f"{message_id}.json"


def unwrap(body_text: str) -> dict:
    """The EventBridge event in an SQS body (delivered directly, or through SNS). Raises ValueError."""
    body = json.loads(body_text)
    if isinstance(body, dict) and body.get("Type") == "Notification" and isinstance(body.get("Message"), str):
        body = json.loads(body["Message"])
    if not isinstance(body, dict):
        raise ValueError("the message body is not a JSON object")
    return body


def describe(event: dict) -> dict:
    """The fields the rules and the journal use, normalised (no dashes, no nesting)."""
    detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
    info = {
        "kind": "event",
        "account": str(event.get("account", "")),
        "region": str(event.get("region", "")),
        "source": str(event.get("source", "")),
        "detail_type": str(event.get("detail-type", "")),
        "time": str(event.get("time", "")),
        "event_id": str(event.get("id", "")),
    }
    if info["source"] == "aws.cloudwatch" and info["detail_type"] == ALARM_DETAIL_TYPE:
        state = detail.get("state") if isinstance(detail.get("state"), dict) else {}
        previous = detail.get("previousState") if isinstance(detail.get("previousState"), dict) else {}
        resources = event.get("resources") or []
        alarm_arn = next((r for r in resources if isinstance(r, str) and ":alarm:" in r), "")
        metrics = (detail.get("configuration") or {}).get("metrics") or []
        # the first metric with a metricStat: a metric-math alarm lists its expression first
        stats = [m["metricStat"] for m in metrics if isinstance(m, dict) and isinstance(m.get("metricStat"), dict)]
        metric = (stats[0].get("metric") or {}) if stats else {}
        metric = metric if isinstance(metric, dict) else {}
        dimensions = metric.get("dimensions") or {}
        info.update(
            kind="cloudwatch_alarm",
            dimensions={str(k): str(v) for k, v in dimensions.items()} if isinstance(dimensions, dict) else {},
            metric_namespace=str(metric.get("namespace", "")),
            metric_name=str(metric.get("name", "")),
            alarm_name=str(detail.get("alarmName", "")),
            alarm_arn=alarm_arn,
            state=str(state.get("value", "")),
            previous_state=str(previous.get("value", "")),
            state_time=str(state.get("timestamp", "") or info["time"]),
        )
    elif info["source"] == "aws.guardduty" and info["detail_type"] == GUARDDUTY_DETAIL_TYPE:
        info.update(guardduty_finding(detail))
    elif info["source"] == "aws.ecs" and info["detail_type"] == ECS_DEPLOYMENT_DETAIL_TYPE:
        info.update(ecs_deployment(detail, event.get("resources") or []))
    return info


def finding_severity(score) -> tuple[str, str]:
    """GuardDuty's severity score as its label (Low 1.0-3.9, Medium 4.0-6.9, High 7.0-8.9, Critical 9.0-10.0, the
    GuardDuty user guide's bands) and the incident severity it declares (Critical P1, High P2, Medium P3, Low P4)."""
    try:
        value = float(score)
    except (TypeError, ValueError):
        return "Unknown", "P3"
    for floor, label, severity in ((9.0, "Critical", "P1"), (7.0, "High", "P2"), (4.0, "Medium", "P3")):
        if value >= floor:
            return label, severity
    return "Low", "P4"


def guardduty_finding(detail: dict) -> dict:
    """A GuardDuty finding's fields the routes use: its id and type, the severity, and the resource it names (an
    access key and its IAM principal, an EC2 instance, S3 buckets)."""
    resource = detail.get("resource") if isinstance(detail.get("resource"), dict) else {}
    key = resource.get("accessKeyDetails") if isinstance(resource.get("accessKeyDetails"), dict) else {}
    instance = resource.get("instanceDetails") if isinstance(resource.get("instanceDetails"), dict) else {}
    buckets = resource.get("s3BucketDetails") if isinstance(resource.get("s3BucketDetails"), list) else []
    service = detail.get("service") if isinstance(detail.get("service"), dict) else {}
    label, severity = finding_severity(detail.get("severity"))
    return {
        "kind": "guardduty_finding",
        "finding_id": str(detail.get("id", "")),
        "finding_type": str(detail.get("type", "")),
        "finding_title": str(detail.get("title", ""))[:200],
        "finding_severity": label,
        "severity": severity,
        "resource_type": str(resource.get("resourceType", "")),
        "access_key_id": str(key.get("accessKeyId", "")),
        "principal": str(key.get("userName", "")),
        "principal_type": str(key.get("userType", "")),
        "instance_id": str(instance.get("instanceId", "")),
        "buckets": [str(b.get("name", "")) for b in buckets if isinstance(b, dict) and b.get("name")],
        "state_time": str(service.get("eventFirstSeen", "") or detail.get("createdAt", "")),
    }


def ecs_deployment(detail: dict, resources: list) -> dict:
    """An ECS deployment state change: the event name (``SERVICE_DEPLOYMENT_FAILED`` ...), the deployment, and the
    cluster and service from the service ARN in ``resources`` (``arn:aws:ecs:<region>:<account>:service/<cluster>/
    <service>``)."""
    service_arn = next((r for r in resources if isinstance(r, str) and ":service/" in r), "")
    parts = service_arn.split(":service/", 1)[1].split("/") if service_arn else []
    return {
        "kind": "ecs_deployment",
        "event_name": str(detail.get("eventName", "")),
        "event_type": str(detail.get("eventType", "")),
        "deployment_id": str(detail.get("deploymentId", "")),
        "reason": str(detail.get("reason", ""))[:500],
        "service_arn": service_arn,
        "cluster": parts[0] if len(parts) == 2 else "",
        "service": parts[-1] if parts else "",
        "state_time": str(detail.get("updatedAt", "")),
    }


def refusal(event: dict, info: dict, accounts: set, sources: set, regions: set) -> str | None:
    """Why this event is not accepted, or None."""
    if info["source"] not in sources:
        return f"source {info['source']!r} is not allowed (allowed: {sorted(sources)})"
    if info["account"] not in accounts:
        return f"account {info['account']!r} is not allowed"
    if regions and info["region"] not in regions:
        return f"region {info['region']!r} is not allowed"
    resources = event.get("resources") or []
    if not isinstance(resources, list):
        return "resources is not a list"
    for arn in resources:
        match = ARN_ACCOUNT.match(str(arn))
        if match is None:
            return f"resource {str(arn)[:200]!r} is not an ARN"
        if match.group(1) and match.group(1) not in accounts:
            return f"resource {arn} belongs to account {match.group(1)}, which is not allowed"
    if info["kind"] == "cloudwatch_alarm" and (not info["alarm_arn"] or not info["state"]):
        return "an alarm state change without the alarm's ARN or state"
    return None


def dedupe_key(info: dict, message_id: str) -> str:
    """What makes later events the same incident: an alarm's ARN, a GuardDuty finding's id (GuardDuty updates one
    finding as the activity goes on), the ECS service of a deployment event; else the event itself."""
    if info["kind"] == "cloudwatch_alarm":
        return info["alarm_arn"]
    if info["kind"] == "guardduty_finding" and info.get("finding_id"):
        return f"guardduty:{info['finding_id']}"
    if info["kind"] == "ecs_deployment" and info.get("service_arn"):
        return info["service_arn"]
    return info["event_id"] or message_id


def derive_incident_id(prefix: str, info: dict, key: str, when: datetime.datetime) -> str:
    """``ALARM-<alarm name>-<UTC time of the state change>-<8 hex of the alarm ARN>``: readable, path-safe."""
    name = info.get("alarm_name") or info.get("alert_name") or info.get("finding_type") or info.get("event_name")
    name = name or info.get("detail_type")
    name = name or "event"
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:64] or "event"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]
    return f"{prefix}-{name}-{when.strftime('%Y%m%dT%H%M%SZ')}-{digest}"


def incident_for(journal: "Journal", prefix: str, info: dict, key: str, when: datetime.datetime, window: float):
    """(incident id, repeat): the open incident of ``key`` when its last event is within ``window`` seconds of
    ``when``, else a new incident derived from ``info`` and ``when``. Shared with alertmanager_webhook."""
    known = journal.incidents.get(key)
    if known and abs(when.timestamp() - known["last"]) <= window:
        return known["incident_id"], True
    return derive_incident_id(prefix, info, key, when), False


class Journal:
    """The spool: an append-only, fsynced JSON-lines journal of decisions, and the acknowledgements directory.

    One source owns a spool at a time (an exclusive lock on ``journal.lock``).  On open the journal is
    replayed to rebuild what each message's last state was and which incident each dedupe key is in.
    """

    def __init__(self, spool: str | os.PathLike, retention_days: int = 14):
        self.spool = Path(spool).absolute()
        self.acks = self.spool / "acks"
        self.acks.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = self.spool / "journal.jsonl"
        self._lock_fd = os.open(self.spool / "journal.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._lock_fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise SourceConfigError(f"another source is using the spool {self.spool}") from None
            raise
        self.messages: dict[str, dict] = {}
        self.event_ids: dict[str, str] = {}
        self.incidents: dict[str, dict] = {}
        self._replay(retention_days)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)

    def _replay(self, retention_days: int) -> None:
        if not self.path.exists():
            return
        cutoff = time.time() - retention_days * 86400
        kept, dropped, unterminated = [], 0, False
        with open(self.path, "rb") as handle:
            for line in handle:
                try:
                    rec = json.loads(line)
                except ValueError:
                    dropped += 1  # a torn last line after a crash
                    continue
                if not isinstance(rec, dict):
                    dropped += 1
                    continue
                if rec.get("epoch", 0) < cutoff:
                    dropped += 1
                    continue
                if not line.endswith(b"\n"):
                    unterminated = True
                    line += b"\n"
                kept.append(line)
                self._apply(rec)
        for ack in self.acks.glob("*.json"):  # SQS keeps a message 14 days at most: older confirmations are spent
            with contextlib.suppress(OSError):
                if ack.stat().st_mtime < cutoff:
                    ack.unlink()
        if dropped or unterminated:  # rewritten whole, so the next append starts on a line of its own
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "wb") as handle:
                handle.writelines(kept)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)

    def _apply(self, rec: dict) -> None:
        mid = rec.get("message_id")
        if mid:
            self.messages[mid] = {**self.messages.get(mid, {}), **rec}
        if rec.get("event_id") and mid:
            self.event_ids.setdefault(rec["event_id"], mid)
        if rec.get("state") == "received" and rec.get("dedupe_key") and rec.get("incident_id"):
            when = parse_time(rec.get("event_time"))
            prev = self.incidents.get(rec["dedupe_key"])
            last = when.timestamp() if when else rec.get("epoch", 0)
            if prev and prev["incident_id"] == rec["incident_id"]:
                last = max(last, prev["last"])
            self.incidents[rec["dedupe_key"]] = {"incident_id": rec["incident_id"], "last": last}

    def append(self, state: str, message_id: str | None = None, **fields: Any) -> dict:
        rec = {"ts": _now(), "epoch": round(time.time(), 3), "state": state}
        if message_id:
            rec["message_id"] = message_id
        rec.update({k: v for k, v in fields.items() if v is not None})
        line = (json.dumps(rec, sort_keys=True, default=str) + "\n").encode("utf-8")
        os.write(self._fd, line)
        os.fsync(self._fd)
        self._apply(rec)
        return rec

    def acknowledgement(self, message_id: str) -> dict | None:
        """The run's acknowledgement of ``message_id``, or None when there is none (yet)."""
        try:
            text = ack_path(self.spool, message_id).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            ack = json.loads(text)
        except ValueError:
            ack = {}
        return ack if isinstance(ack, dict) else {}

    def close(self) -> None:
        for fd in (self._fd, self._lock_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


class DurableSQSSource:
    """The receive loop and the acknowledgement loop around one queue and one journal."""

    def __init__(self, queue: Any, args: dict, client: Any = None):
        self.queue = queue
        self.args = args
        name = args.get("queue_name") or args.get("name")
        if not name and not args.get("queue_url"):
            raise SourceConfigError("give queue_name or queue_url")
        self.queue_name = name or str(args["queue_url"]).rstrip("/").rsplit("/", 1)[-1]
        accounts = args.get("allowed_accounts")
        if not accounts or not isinstance(accounts, list):
            raise SourceConfigError("allowed_accounts is required: the accounts whose events may start runbooks")
        self.accounts = {str(a) for a in accounts}
        bad = sorted(a for a in self.accounts if not ACCOUNT.match(a))
        if bad:
            raise SourceConfigError(f"allowed_accounts must be 12-digit account ids, not {bad}")
        self.sources = {str(s) for s in args.get("allowed_sources", ["aws.cloudwatch"])}
        self.regions = {str(r) for r in args.get("allowed_regions", []) or []}
        self.visibility = int(args.get("visibility_timeout", 60))
        self.ack_timeout = float(args.get("ack_timeout", 900))
        self.wait_seconds = max(0, min(20, int(args.get("wait_seconds", 5))))
        self.max_messages = max(1, min(10, int(args.get("max_messages", 1))))
        self.window = float(args.get("incident_window", 3600))
        self.prefix = str(args.get("incident_prefix", "ALARM"))
        self.ack_poll = float(args.get("ack_poll", 0.25))
        self.batch_seconds = max(0.0, float(args.get("repeat_batch_seconds", 0) or 0))
        self.batch_max = max(1, min(100, int(args.get("repeat_batch_max", 25))))
        if self.visibility < 2:
            raise SourceConfigError("visibility_timeout must be at least 2 seconds")
        spool = args.get("spool") or os.path.join("incidents", ".eda", self.queue_name)
        self.journal = Journal(spool, int(args.get("retention_days", 14)))
        self.client = client or self._client()
        self.queue_url = args.get("queue_url") or self._queue_url()
        # message id -> {"receipt": handle, "since": monotonic, "extended": monotonic}
        self.inflight: dict[str, dict] = {}
        # repeats held for one dispatch: (incident id, alarm state) -> {"opened": monotonic, "members": [...]}
        self.batches: dict[tuple, dict] = {}
        # message id -> the batch's first message, whose confirmation confirms it (dispatched batches)
        self.batch_lead: dict[str, str] = {}

    # -- AWS ------------------------------------------------------------------------------------
    def _client(self) -> Any:
        import boto3
        from botocore.config import Config

        kwargs: dict[str, Any] = {}
        for arg, kwarg in (
            ("region", "region_name"),
            ("endpoint_url", "endpoint_url"),
            ("access_key", "aws_access_key_id"),
            ("secret_key", "aws_secret_access_key"),
            ("session_token", "aws_session_token"),
        ):
            if self.args.get(arg):
                kwargs[kwarg] = self.args[arg]
        config = Config(
            retries={"mode": "standard", "max_attempts": 4},
            connect_timeout=5,
            read_timeout=self.wait_seconds + 10,
        )
        return boto3.client("sqs", config=config, **kwargs)

    def _queue_url(self) -> str:
        kwargs = {"QueueName": self.queue_name}
        if self.args.get("queue_owner_account"):
            kwargs["QueueOwnerAWSAccountId"] = str(self.args["queue_owner_account"])
        return self.client.get_queue_url(**kwargs)["QueueUrl"]

    def check_queue(self) -> dict:
        """Journal the queue's redrive policy: without one, a poison message is retried until it expires."""
        attrs = self.client.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["RedrivePolicy", "VisibilityTimeout"]
        ).get("Attributes", {})
        policy = attrs.get("RedrivePolicy")
        if not policy:
            logger.warning(
                "queue %s has no redrive policy: a message no run confirms is retried until it expires; "
                "give it a dead-letter queue (docs/event-driven.md)",
                self.queue_name,
            )
        self.journal.append("started", queue=self.queue_url, redrive_policy=policy, pid=os.getpid())
        return attrs

    def _delete_call(self, receipt: str) -> str | None:
        """Delete one message; the error as text, or None when it is gone."""
        try:
            self.client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
        except Exception as exc:  # journaled by the caller
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            return f"{code}: {exc}"[:500]
        return None

    async def _delete(self, message_id: str, receipt: str) -> bool:
        error = await asyncio.to_thread(self._delete_call, receipt)
        if error:
            # Journaled; if the message comes back, handle() finds the acknowledgement and deletes it then.
            self.journal.append("delete_failed", message_id, error=error)
            logger.warning("deleting message %s failed: %s", message_id, error)
            return False
        self.journal.append("deleted", message_id)
        return True

    def _renew_call(self, receipt: str) -> str | None:
        try:
            self.client.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=receipt, VisibilityTimeout=self.visibility
            )
        except Exception as exc:  # a redelivery is handled in handle()
            return str(exc)[:500]
        return None

    # -- one message ----------------------------------------------------------------------------
    async def handle(self, message: dict) -> dict | None:
        """Decide about one received message; returns the event dispatched, or None."""
        mid = message.get("MessageId", "")
        receipt = message.get("ReceiptHandle", "")
        count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1") or 1)
        if not MESSAGE_ID.match(mid):
            logger.error("ignoring a message with an unexpected id %r", mid[:200])
            return None
        if mid in self.inflight:
            # Visible again while its run is still pending here (the renewal came late): keep waiting for
            # that run, with the newest receipt handle (the only one a delete accepts now).
            self.inflight[mid].update(receipt=receipt, extended=time.monotonic())
            self.journal.append("still_pending", mid, receive_count=count)
            return None
        if self.journal.acknowledgement(mid) is not None:
            self.journal.append("duplicate", mid, receive_count=count, reason="already acknowledged by its run")
            await self._delete(mid, receipt)
            return None
        previous = self.journal.messages.get(mid, {})
        lead = previous.get("batch")
        if lead and lead != mid and self.journal.acknowledgement(lead) is not None:
            reason = f"already acknowledged by the run of its batch ({lead})"
            self.journal.append("duplicate", mid, receive_count=count, reason=reason)
            await self._delete(mid, receipt)
            return None
        if previous.get("state") in ("deleted", "refused", "duplicate"):
            self.journal.append("duplicate", mid, receive_count=count, reason=f"already {previous['state']}")
            await self._delete(mid, receipt)
            return None
        try:
            event = unwrap(message.get("Body", ""))
        except ValueError as exc:
            # Poison: never dispatched, never deleted here; the redrive policy moves it to the DLQ.
            self.journal.append("poison", mid, receive_count=count, reason=str(exc)[:300])
            return None
        info = describe(event)
        why = refusal(event, info, self.accounts, self.sources, self.regions)
        if why:
            self.journal.append(
                "refused",
                mid,
                receive_count=count,
                reason=why,
                account=info["account"],
                source=info["source"],
                event_id=info["event_id"] or None,
            )
            logger.warning("refused message %s: %s", mid, why)
            await self._delete(mid, receipt)
            return None
        first = self.journal.event_ids.get(info["event_id"]) if info["event_id"] else None
        if first and first != mid:
            reason = f"event {info['event_id']} came as {first}"
            self.journal.append("duplicate", mid, receive_count=count, reason=reason)
            await self._delete(mid, receipt)
            return None

        key = dedupe_key(info, mid)
        if previous.get("state") in ("received", "queued", "unconfirmed", "still_pending") and previous.get(
            "incident_id"
        ):
            # Dispatched before but never confirmed (the process died, or the run did): dispatch again with the
            # same decision, so the redelivery is not taken for a repeat of itself.
            incident_id, repeat, redelivery = previous["incident_id"], bool(previous.get("repeat")), True
        else:
            when = parse_time(info.get("state_time") or info["time"]) or datetime.datetime.now(datetime.timezone.utc)
            incident_id, repeat = incident_for(self.journal, self.prefix, info, key, when, self.window)
            redelivery = False
        firebreak = {
            **info,
            "message_id": mid,
            "receive_count": count,
            "spool": str(self.journal.spool),
            "incident_id": incident_id,
            "dedupe_key": key,
            "repeat": repeat,
            "redelivery": redelivery,
        }
        batch = None
        if repeat and self.batch_seconds > 0:
            held = self.batches.get((incident_id, info.get("state", "")))
            batch = held["members"][0][1]["message_id"] if held else mid
        self.journal.append(
            "received",
            mid,
            receive_count=count,
            incident_id=incident_id,
            dedupe_key=key,
            repeat=repeat,
            redelivery=redelivery,
            event_id=info["event_id"] or None,
            event_time=info.get("state_time") or info["time"],
            kind=info["kind"],
            account=info["account"],
            source=info["source"],
            alarm=info.get("alarm_name"),
            alarm_state=info.get("state"),
            batch=batch,
        )
        now = time.monotonic()
        self.inflight[mid] = {"receipt": receipt, "since": now, "extended": now}
        if batch is not None:
            key = (incident_id, info.get("state", ""))
            held = self.batches.setdefault(key, {"opened": now, "members": []})
            held["members"].append((event, firebreak))
            if len(held["members"]) >= self.batch_max:
                return await self.flush(key)
            return None
        dispatched = {"body": event, "firebreak": firebreak}
        await self.queue.put(dispatched)
        self.journal.append("queued", mid, incident_id=incident_id)
        return dispatched

    async def flush(self, key: tuple) -> dict | None:
        """Dispatch the repeats held for ``key`` (incident id, alarm state) as one event: the first one's, with
        ``batch`` listing all of them."""
        held = self.batches.pop(key, None)
        if not held:
            return None
        event, first = held["members"][0]
        lead = first["message_id"]
        keys = (
            "message_id",
            "receive_count",
            "redelivery",
            "event_id",
            "state",
            "previous_state",
            "state_time",
            "time",
        )
        batch = [{k: fb.get(k) for k in keys} for _, fb in held["members"]]
        dispatched = {"body": event, "firebreak": {**first, "batch": batch, "batch_size": len(batch)}}
        for _, fb in held["members"]:
            self.batch_lead[fb["message_id"]] = lead
        await self.queue.put(dispatched)
        for _, fb in held["members"]:
            self.journal.append("queued", fb["message_id"], incident_id=key[0], batch=lead)
        return dispatched

    async def flush_due(self) -> None:
        now = time.monotonic()
        for key in [k for k, held in self.batches.items() if now - held["opened"] >= self.batch_seconds]:
            await self.flush(key)

    # -- loops ----------------------------------------------------------------------------------
    def receive(self) -> list[dict]:
        response = self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.max_messages,
            WaitTimeSeconds=self.wait_seconds,
            VisibilityTimeout=self.visibility,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        )
        return response.get("Messages", [])

    async def receive_loop(self) -> None:
        while True:
            try:
                messages = await asyncio.to_thread(self.receive)
            except Exception as exc:  # keep polling; boto3 already retried
                logger.error("receiving from %s failed: %s", self.queue_name, exc)
                await asyncio.sleep(min(5.0, self.visibility / 4))
                continue
            for message in messages:
                await self.handle(message)

    async def settle(self) -> None:
        """Delete what was acknowledged; renew the visibility of what is pending; give up after ack_timeout.

        Runs in the event loop (only the AWS calls go to threads), so it never races handle()."""
        await self.flush_due()
        now = time.monotonic()
        held = {fb["message_id"] for batch in self.batches.values() for _, fb in batch["members"]}
        for mid, entry in list(self.inflight.items()):
            ack = None if mid in held else self.journal.acknowledgement(self.batch_lead.get(mid, mid))
            if ack is not None:
                self.batch_lead.pop(mid, None)
                self.journal.append(
                    "acked", mid, incident_id=ack.get("incident_id"), run=ack.get("run"), acked_at=ack.get("acked_at")
                )
                del self.inflight[mid]
                await self._delete(mid, entry["receipt"])
            elif now - entry["since"] > self.ack_timeout:
                self.journal.append("unconfirmed", mid, waited=round(now - entry["since"], 1))
                logger.warning("no run confirmed message %s in %ss; it will be delivered again", mid, self.ack_timeout)
                del self.inflight[mid]
                self.batch_lead.pop(mid, None)
            elif now - entry["extended"] > self.visibility / 3:
                entry["extended"] = now
                error = await asyncio.to_thread(self._renew_call, entry["receipt"])
                if error:
                    logger.warning("renewing the visibility of %s failed: %s", mid, error)

    async def settle_loop(self) -> None:
        while True:
            await self.settle()
            await asyncio.sleep(self.ack_poll)

    async def run(self) -> None:
        await asyncio.to_thread(self.check_queue)
        tasks = [asyncio.create_task(self.receive_loop()), asyncio.create_task(self.settle_loop())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)
            if self.inflight:
                self.journal.append("stopped", pending=sorted(self.inflight))
            self.journal.close()


async def main(queue: asyncio.Queue, args: dict[str, Any]) -> None:
    """ansible-rulebook's entry point."""
    args = {k: v for k, v in args.items() if k != "eda_feedback_queue"}
    source = DurableSQSSource(queue, args)
    await source.run()


if __name__ == "__main__":

    class _PrintQueue:
        async def put(self, event: dict) -> None:
            print(json.dumps(event, indent=2))

    import sys

    asyncio.run(main(_PrintQueue(), json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}))
