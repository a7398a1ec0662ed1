"""ansible-rulebook against the sandbox, for the tests (tests/integration/test_eda_*.py)
and ``make bench`` (bench/eda.py): the rulebook process with its spool, a fresh alarm queue, the seeded alarm's
EventBridge event, and readers for the source's journal, the incident timeline and the fault proxy's log.

``sandbox`` below is a running sandbox (``sandbox.Sandbox`` or the tests' ``aws`` fixture): ``env()``, ``client()``,
``proxy``.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml

from sandbox import REGION, REPO_ROOT, free_port
from sandbox.alarm import alarm_event as eventbridge_alarm

BIN = Path(sys.executable).parent
RULEBOOK = REPO_ROOT / "extensions" / "eda" / "rulebooks" / "service_down.yml"
ROUTES = REPO_ROOT / "extensions" / "eda" / "rulebooks" / "incidents.yml"  # every AWS route of docs/event-driven.md
KUBERNETES = REPO_ROOT / "extensions" / "eda" / "rulebooks" / "kubernetes.yml"  # the Alertmanager routes
SANDBOX_VARS = REPO_ROOT / "extensions" / "eda" / "rulebooks" / "vars" / "sandbox.yml"
ALARM = "firebreak-ecs-running-below-desired"
ACCOUNT = "123456789012"


def rulebook_available() -> bool:
    """ansible-rulebook is installed and a Java 17+ runtime (its rules engine) is found."""
    return (BIN / "ansible-rulebook").exists() and bool(shutil.which("java") or os.environ.get("JAVA_HOME"))


def alarm_event(aws, state="ALARM", later=0):
    """The seeded alarm's state change as EventBridge delivers it (sandbox/alarm.py), ``later`` seconds from now."""
    alarm = aws.client("cloudwatch").describe_alarms(AlarmNames=[ALARM])["MetricAlarms"][0]
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=later)
    return eventbridge_alarm(alarm, state, when)


def guardduty_event(
    user="deploy-bot",
    key_id="AKIAEXAMPLE123",
    severity=8.0,
    finding_id=None,
    finding_type="UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom",
    account=ACCOUNT,
    region=REGION,
):
    """A GuardDuty finding on an IAM user's access key, as EventBridge delivers it (GuardDuty user guide, "CloudWatch
    Events event format"): a new event id each call; the finding's id (its incident) random unless given."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": account,
        "time": "2026-12-06T16:10:00Z",
        "region": region,
        "resources": [],
        "detail": {
            "schemaVersion": "2.0",
            "accountId": account,
            "region": region,
            "id": finding_id or uuid.uuid4().hex,
            "type": finding_type,
            "title": f"API calls of {user} from a known malicious address.",
            "severity": severity,
            "createdAt": "2026-12-06T16:05:00.000Z",
            "resource": {
                "resourceType": "AccessKey",
                "accessKeyDetails": {"accessKeyId": key_id, "userName": user, "userType": "IAMUser"},
            },
            "service": {"eventFirstSeen": "2026-12-06T16:04:00.000Z", "eventLastSeen": "2026-12-06T16:09:00.000Z"},
        },
    }


class Rulebook:
    """One ansible-rulebook process (own session, so the whole group can be killed) and its spool."""

    def __init__(
        self, sandbox, tmp_path, queue, visibility=60, source_dir=False, rulebook=RULEBOOK, variables=None, env=None
    ):
        self.tmp = tmp_path
        self.spool = tmp_path / "spool"
        self.incidents = tmp_path / "incidents"
        merged = yaml.safe_load(SANDBOX_VARS.read_text())
        # one source per rulebook here: the SQS source's or the webhook's spool
        merged.update(
            firebreak_alarm_queue=queue, firebreak_eda_spool=str(self.spool), firebreak_webhook_spool=str(self.spool)
        )
        merged["firebreak_alarm_visibility_timeout"] = visibility
        merged.update(variables or {})
        self.vars_file = tmp_path / "vars.yml"
        self.vars_file.write_text(yaml.safe_dump(merged))
        self.rulebook = rulebook
        self.args = []
        if source_dir:  # the source by file name from the development directory (-S), not through the collection
            self.rulebook = tmp_path / f"{Path(rulebook).stem}_S.yml"
            self.rulebook.write_text(
                Path(rulebook)
                .read_text()
                .replace("firebreak.runbooks.aws_sqs_durable:", "aws_sqs_durable:")
                .replace("firebreak.runbooks.alertmanager_webhook:", "alertmanager_webhook:")
            )
            self.args = ["-S", str(REPO_ROOT / "extensions" / "eda" / "plugins" / "event_source")]
        self.env = {
            **os.environ,
            **sandbox.env(),
            "FIREBREAK_INCIDENTS_DIR": str(self.incidents),
            "ANSIBLE_NOCOLOR": "1",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        self.env.update(env or {})
        if "FIREBREAK_WEBHOOK_TOKEN" in self.env:  # the webhook's token, from the environment (kubernetes.yml)
            self.args += ["--env-vars", "FIREBREAK_WEBHOOK_TOKEN"]
        self.env.pop("FIREBREAK_TIMELINE", None)
        self.env.pop("FIREBREAK_INCIDENT_ID", None)
        self.proc = None
        self.log = None

    def start(self, name="rulebook"):
        self.log = self.tmp / f"{name}.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [
                    *(str(BIN / "ansible-rulebook"), "-r", str(self.rulebook), "-i", "inventories/sandbox"),
                    *("--vars", str(self.vars_file), "-v", *self.args),
                ],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_for(lambda: "started" in self.states(), 60, "the source did not start")
        return self

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def journal(self):
        path = self.spool / "journal.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def states(self, message_id=None):
        return [r["state"] for r in self.journal() if message_id is None or r.get("message_id") == message_id]

    def wait_for(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.05)
        log = self.log.read_text()[-4000:] if self.log and self.log.exists() else ""
        raise AssertionError(f"{what}\njournal: {self.journal()}\nlog tail:\n{log}")


def alertmanager_rulebook(sandbox, tmp_path, token, name="rulebook") -> tuple[Rulebook, int]:
    """kubernetes.yml (the Alertmanager routes) started against ``sandbox``: its webhook on a free loopback port,
    the bearer token ``token`` from the environment (FIREBREAK_WEBHOOK_TOKEN). Returns the running rulebook and the
    webhook's port; the caller kills it (``rulebook.kill()``)."""
    port = free_port()
    rulebook = Rulebook(
        sandbox,
        tmp_path,
        "unused",  # no SQS source in kubernetes.yml
        rulebook=KUBERNETES,
        variables={"firebreak_webhook_port": port},
        env={"FIREBREAK_WEBHOOK_TOKEN": token},
    ).start(name)
    return rulebook, port


def make_alarm_queue(aws, visibility=60, max_receive=3):
    """A fresh queue (and its DLQ) for one test: (sqs client, name, url)."""
    sqs = aws.client("sqs")
    name = f"firebreak-alarms-{uuid.uuid4().hex[:8]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive}),
        },
    )["QueueUrl"]
    return sqs, name, url


def in_queue(sqs, url):
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def timeline(rulebook, incident_id):
    path = rulebook.incidents / incident_id / "timeline.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def rollbacks(records):
    return [r for r in records if r["event"] == "task_changed" and r.get("action", "").endswith("ecs_service_rollback")]


def proxy_seq(aws) -> int:
    """The fault proxy's last log sequence number (its log survives sandbox resets: filter by it)."""
    entries = aws.proxy.log()
    return entries[-1]["seq"] if entries else 0


def proxy_calls(aws, service, action, after_seq=0):
    """The proxied calls of ``service``/``action`` logged after ``after_seq``, oldest first."""
    return [e for e in aws.proxy.log() if e["seq"] > after_seq and e["service"] == service and e["action"] == action]


def proxy_time(entry) -> float:
    return datetime.datetime.fromisoformat(entry["time"]).timestamp()


def record_time(record) -> float:
    return datetime.datetime.fromisoformat(record["ts"].replace("Z", "+00:00")).timestamp()


def verified_timeline(rulebook, incident_id):
    """The incident's timeline, its hash chain verified (raises on a broken chain)."""
    if str(REPO_ROOT / "collections") not in sys.path:
        sys.path.insert(0, str(REPO_ROOT / "collections"))
    from ansible_collections.firebreak.runbooks.plugins.module_utils.record import timeline as tl

    return tl.verify_timeline(str(rulebook.incidents / incident_id / "timeline.jsonl"))


def storm_events(aws, count=50, spread=10.0):
    """``count`` state changes of the seeded alarm to ALARM, as EventBridge delivers them: distinct event ids,
    state-change times spread evenly over less than ``spread`` seconds from now."""
    step = spread / count
    return [alarm_event(aws, later=i * step) for i in range(count)]


def send_all(sqs, url, events):
    """Put ``events`` on the queue, ten per SendMessageBatch call, in order; returns the message ids."""
    ids = []
    for start in range(0, len(events), 10):
        entries = [
            {"Id": str(i), "MessageBody": json.dumps(event)} for i, event in enumerate(events[start : start + 10])
        ]
        response = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert not response.get("Failed"), response
        ids += [m["MessageId"] for m in sorted(response["Successful"], key=lambda m: int(m["Id"]))]
    return ids


def runs_settled(rulebook, incident_id) -> bool:
    """Every playbook run on the incident's timeline has ended. The callback writes a task's record when the next
    one starts, so a run's last records (its confirmation) land after the source already deleted the message."""
    path = rulebook.incidents / incident_id / "timeline.jsonl"
    if not path.exists():
        return False
    events = [r["event"] for r in timeline(rulebook, incident_id)]
    return events.count("playbook_start") == events.count("playbook_end") > 0
