"""Further event-driven routes end to end (ansible-rulebook + Java against the sandbox), apart from make test
(pytest.mark.proof: each rulebook run costs a minute here):

- incidents.yml: a Step Functions ExecutionsFailed alarm (EventBridge -> SQS) pauses the failing pipeline
  (pipeline_incident: the queue disabled, the running executions stopped); an ALB 5xx alarm on a load balancer
  the rulebook maps to no service is recorded on its own incident and refused by eda_high_error_rate, nothing
  changed.
- kubernetes.yml: Alertmanager's KubeHpaMaxedOut on an HPA at its maximum scales its Deployment out
  (performance_degradation's Kubernetes path), the HPA's bounds raised; KubeDeploymentRolloutStuck on the drill's
  bad rollout starts bad_deploy on Kubernetes: deploys frozen, the rollout undone.
"""

from __future__ import annotations

import json
import urllib.request

import pytest

from sandbox.alarm import alarm_event
from sandbox.drills import k8s_service_down, pipeline_incident
from sandbox.drills.bad_deploy import FREEZE_PARAMETER
from sandbox.rulebook import (
    ACCOUNT,
    ROUTES,
    Rulebook,
    alertmanager_rulebook,
    make_alarm_queue,
    rulebook_available,
    runs_settled,
    timeline,
    verified_timeline,
)
from tests.integration.k8s_api import call, deployment, get, image, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.proof]

if not rulebook_available():
    pytest.skip("ansible-rulebook and a Java 17+ runtime are needed", allow_module_level=True)

REGION = "us-east-1"


def cloudwatch_alarm(name, namespace, metric, dimensions):
    """An alarm's state change to ALARM as EventBridge delivers it (the alarm need not exist: the source reads the
    event, the scenario reads the resources)."""
    return alarm_event(
        {
            "AlarmArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}",
            "AlarmName": name,
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        }
    )


def incidents_of(rulebook):
    return {r.get("alarm"): r["incident_id"] for r in rulebook.journal() if r.get("state") == "received"}


def changed(records):
    return sorted({r["action"] for r in records if r["event"] == "task_changed" and not r.get("check_mode")})


def test_a_step_functions_alarm_pauses_the_pipeline_and_an_unmapped_alb_alarm_is_refused(aws, tmp_path):
    context = pipeline_incident.inject(aws)
    sqs, name, url = make_alarm_queue(aws)
    machine = aws.manifest["aws"]["stepfunctions"]["state_machine_arn"]
    variables = {"firebreak_pipeline_job_queues": {"results-pipeline": "results-queue"}}
    rulebook = Rulebook(aws, tmp_path, name, rulebook=ROUTES, variables=variables).start()
    try:
        events = [
            cloudwatch_alarm("results-pipeline-failed", "AWS/States", "ExecutionsFailed", {"StateMachineArn": machine}),
            cloudwatch_alarm(
                "shop-alb-5xx", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", {"LoadBalancer": "app/unknown/1"}
            ),
        ]
        for event in events:
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
        rulebook.wait_for(lambda: rulebook.states().count("deleted") == 2, 180, "the alarms were not confirmed")
        found = incidents_of(rulebook)
        rulebook.wait_for(lambda: all(runs_settled(rulebook, i) for i in found.values()), 300, "runs left")
    finally:
        rulebook.kill()

    assert pipeline_incident.verify(aws, context)  # the queue DISABLED, nothing RUNNING
    pipeline = timeline(rulebook, found["results-pipeline-failed"])
    verified_timeline(rulebook, found["results-pipeline-failed"])
    starts = [str(r.get("playbook")) for r in pipeline if r["event"] == "playbook_start"]
    assert len(starts) == 1 and "eda_pipeline_incident" in starts[0]
    assert "firebreak.runbooks.incident_event_ack" in changed(pipeline) and len(changed(pipeline)) > 1

    refused = timeline(rulebook, found["shop-alb-5xx"])
    text = json.dumps(refused)
    assert "acting: high_error_rate" in text and "has no ECS service" in text and "nothing was changed" in text
    assert changed(refused) == ["firebreak.runbooks.incident_event_ack"]  # only the confirmation


def send_alert(port, token, labels, starts="2026-12-06T17:00:00Z"):
    """POST one firing alert as Alertmanager does; the incident id the source answers."""
    body = {
        "version": "4",
        "groupKey": "{}:{}",
        "status": "firing",
        "receiver": "firebreak",
        "alerts": [{"status": "firing", "labels": labels, "startsAt": starts, "fingerprint": "77aa"}],
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        (incident,) = json.loads(response.read())["incident_ids"]
    return incident


def alert_until_settled(rulebook, port, token, labels):
    """One firing alert to the running rulebook; waits for its incident's report and for its runs to end, then
    kills the rulebook (also when the wait fails). The incident id."""
    try:
        incident = send_alert(port, token, labels)
        rulebook.wait_for(lambda: (rulebook.incidents / incident / "report.md").exists(), 300, "no report")
        rulebook.wait_for(lambda: runs_settled(rulebook, incident), 60, "the run did not end")
    finally:
        rulebook.kill()
    return incident


def declarations(records):
    """The ``declared`` lifecycle events of a timeline's records."""
    return [
        r["details"]["lifecycle"]
        for r in records
        if r.get("action") == "firebreak.runbooks.incident_lifecycle"
        and (r.get("details") or {}).get("lifecycle", {}).get("event") == "declared"
    ]


def test_a_stuck_rollout_alert_freezes_deploys_and_undoes_the_rollout(aws, kube, tmp_path):
    context = k8s_service_down.inject(kube)
    token = "proof-token"
    rulebook, port = alertmanager_rulebook(kube, tmp_path, token)
    labels = {"alertname": "KubeDeploymentRolloutStuck", "severity": "high", "namespace": "shop", "deployment": "api"}
    incident = alert_until_settled(rulebook, port, token, labels)
    assert image(deployment(kube, "shop", "api")) == k8s_service_down.GOOD_IMAGE
    assert k8s_service_down.verify(kube, context)
    frozen = json.loads(kube.client("ssm").get_parameter(Name=FREEZE_PARAMETER)["Parameter"]["Value"])
    assert frozen["frozen"] is True and frozen["incident_id"] == incident
    records = timeline(rulebook, incident)
    verified_timeline(rulebook, incident)
    declared = declarations(records)
    assert [(d["severity"], d["type"]) for d in declared] == [("P2", "bad_deploy")]  # severity: high


def test_an_hpa_at_its_maximum_is_raised_and_its_deployment_scaled_out(kube, tmp_path):
    before = deployment(kube, "shop", "api")["spec"]["replicas"]
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
            "minReplicas": 1,
            "maxReplicas": before,
        },
    }
    path = "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers"
    call(kube, "POST", path, hpa)
    wait_for(lambda: (get(kube, f"{path}/api").get("status") or {}).get("currentReplicas") == before, what="HPA status")
    token = "proof-token"
    rulebook, port = alertmanager_rulebook(kube, tmp_path, token)
    labels = {
        "alertname": "KubeHpaMaxedOut",
        "severity": "warning",
        "namespace": "shop",
        "horizontalpodautoscaler": "api",
    }
    incident = alert_until_settled(rulebook, port, token, labels)
    target = -(-before * 3 // 2)  # ceil(max x 1.5)
    target = max(target, before + 1)
    stored = get(kube, f"{path}/api")
    assert (stored["spec"]["minReplicas"], stored["spec"]["maxReplicas"]) == (target, target)
    assert deployment(kube, "shop", "api")["spec"]["replicas"] == target
    records = timeline(rulebook, incident)
    verified_timeline(rulebook, incident)
    declared = declarations(records)
    assert [d["severity"] for d in declared] == ["P3"]  # warning
    assert "KubeHpaMaxedOut" in json.dumps(records) and "of at most" in json.dumps(records)
