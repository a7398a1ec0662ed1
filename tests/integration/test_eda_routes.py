"""ansible-rulebook with extensions/eda/rulebooks/incidents.yml (every route of docs/event-driven.md) against the
sandbox: a GuardDuty finding delivered as AWS delivers it (EventBridge -> SQS) starts security_breach against the
principal and instance it names, and the gate policy of the environment decides what runs unattended. In production
(containment approval_required) the scenario records its plan at the gate and stops with nothing changed; in the
sandbox's policy (a confirmed symptom passes) it contains at once. An update of the same finding is the same
incident, recorded and not acted on; an event no route takes is recorded only.

Needs a Java 17+ runtime (ansible-rulebook's rules engine); skipped without one.
"""

from __future__ import annotations

import json
import uuid

import pytest

from sandbox import REGION
from sandbox.drills import security_breach
from sandbox.rulebook import (
    ACCOUNT,
    ROUTES,
    Rulebook,
    guardduty_event,
    make_alarm_queue,
    rulebook_available,
    runs_settled,
    timeline,
    verified_timeline,
)

pytestmark = pytest.mark.integration

if not rulebook_available():
    pytest.skip("ansible-rulebook and a Java 17+ runtime are needed", allow_module_level=True)


def finding(user, key_id, severity=8.0, finding_id=None):
    return guardduty_event(user=user, key_id=key_id, severity=severity, finding_id=finding_id)


def ecs_deployment_failed(cluster, service):
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECS Deployment State Change",
        "source": "aws.ecs",
        "account": ACCOUNT,
        "time": "2026-12-06T16:20:00Z",
        "region": REGION,
        "resources": [f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{service}"],
        "detail": {"eventType": "ERROR", "eventName": "SERVICE_DEPLOYMENT_FAILED", "deploymentId": "ecs-svc/1"},
    }


def incidents_of(rulebook):
    return sorted({r["incident_id"] for r in rulebook.journal() if r.get("state") == "received"})


def key_statuses(aws, user):
    return {
        k["AccessKeyId"]: k["Status"] for k in aws.client("iam").list_access_keys(UserName=user)["AccessKeyMetadata"]
    }


def scenario_runs(records, name):
    return [r for r in records if r["event"] == "playbook_start" and name in str(r.get("playbook", ""))]


def test_in_production_a_finding_plans_the_containment_and_the_gate_waits_for_a_person(aws, tmp_path):
    sqs, name, url = make_alarm_queue(aws)
    context = security_breach.inject(aws)
    drill = context["_drill"]
    before = security_breach.state(aws, drill)
    key_id = next(iter(key_statuses(aws, drill["user"])))
    rulebook = Rulebook(aws, tmp_path, name, rulebook=ROUTES, variables={"firebreak_environment": "production"})
    rulebook.start()
    try:
        first = finding(drill["user"], key_id)
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(first))
        rulebook.wait_for(lambda: "deleted" in rulebook.states(), 120, "the finding was not confirmed")
        (incident,) = incidents_of(rulebook)
        assert incident.startswith("ALARM-UnauthorizedAccess-IAMUser-MaliciousIPCaller.Custom-20261206T160400Z-")
        rulebook.wait_for(lambda: runs_settled(rulebook, incident), 240, "security_breach did not end")

        # an update of the same finding (GuardDuty re-sends it as activity goes on) and an event no route acts on
        sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps(
                {**finding(drill["user"], key_id, 8.5), "detail": {**first["detail"], "severity": 8.5}}
            ),
        )
        ecs = aws.manifest["aws"]["ecs"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(ecs_deployment_failed(ecs["cluster"], ecs["service"])))
        rulebook.wait_for(lambda: rulebook.states().count("deleted") == 3, 120, "the later events were not recorded")
        rulebook.wait_for(lambda: all(runs_settled(rulebook, i) for i in incidents_of(rulebook)), 120, "runs left")
    finally:
        rulebook.kill()

    # nothing changed: the plan waits at the gate for a person
    assert security_breach.state(aws, drill) == before
    records = timeline(rulebook, incident)
    verified_timeline(rulebook, incident)
    assert len(scenario_runs(records, "security_breach")) == 1  # the update did not start a second run
    notes = " ".join(str(r.get("msg") or "") for r in records if r["event"] == "note")
    assert "GuardDuty finding" in notes and drill["user"] in notes and "acting: security_breach" in notes
    assert "a repeat within the incident window" in notes
    gate = [r for r in records if "security-breach-containment" in json.dumps(r)]
    assert gate, "the gate's plan is not on the timeline"
    text = json.dumps(records)
    assert "not confirmed" in text and "firebreak_gate_approvals" in text
    # the ECS deployment failure has its own incident and starts bad_deploy, which sees no failed rollout on a
    # healthy service and refuses: a clear refusal, not a rollback on the event's word
    (other,) = [i for i in incidents_of(rulebook) if i != incident]
    assert "SERVICE_DEPLOYMENT_FAILED" in other
    other_records = timeline(rulebook, other)
    other_notes = " ".join(str(r.get("msg") or "") for r in other_records if r["event"] == "note")
    service = aws.manifest["aws"]["ecs"]["service"]
    assert "acting: bad_deploy" in other_notes and f"ECS SERVICE_DEPLOYMENT_FAILED of service {service}" in other_notes
    assert "shows no failed deploy" in json.dumps(other_records) and "Nothing was changed" in json.dumps(other_records)
    changed = {r["action"] for r in other_records if r["event"] == "task_changed" and not r.get("check_mode")}
    assert changed == {"firebreak.runbooks.incident_event_ack"}, changed  # only the confirmation to the source


def test_where_the_policy_lets_a_confirmed_breach_through_the_finding_is_contained_unattended(aws, tmp_path):
    sqs, name, url = make_alarm_queue(aws)
    context = security_breach.inject(aws)
    drill = context["_drill"]
    key_id = next(iter(key_statuses(aws, drill["user"])))
    rulebook = Rulebook(aws, tmp_path, name, rulebook=ROUTES).start()  # the sandbox inventory's policy
    try:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(finding(drill["user"], key_id, severity=9.2)))
        rulebook.wait_for(lambda: "deleted" in rulebook.states(), 120, "the finding was not confirmed")
        (incident,) = incidents_of(rulebook)
        rulebook.wait_for(lambda: runs_settled(rulebook, incident), 240, "security_breach did not end")
    finally:
        rulebook.kill()
    assert set(key_statuses(aws, drill["user"]).values()) == {"Inactive"}
    records = timeline(rulebook, incident)
    verified_timeline(rulebook, incident)
    declared = [
        (r.get("details") or {}).get("lifecycle")
        for r in records
        if r.get("action") == "firebreak.runbooks.incident_lifecycle"
        and ((r.get("details") or {}).get("lifecycle") or {}).get("event") == "declared"
    ]
    assert declared and declared[0]["severity"] == "P1", declared  # a Critical finding declares a P1
