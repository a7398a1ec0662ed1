"""The routes of the rulebooks in extensions/eda/rulebooks/ without Java: each rule's condition is evaluated here in
Python (the subset the rulebooks use: ==, !=, in, and, or, parentheses, `is defined`; first match wins, as
ansible-rulebook's default match_multiple_rules: false) on events the event sources build (their own describe
functions), and the chosen action's extra_vars are rendered with ansible-rulebook's own renderer
(ansible_rulebook.util.substitute_variables, Jinja2 native, strict). The rules engine itself (Drools) runs in
tests/integration/test_eda_rulebook.py, test_eda_routes.py and test_eda_k8s_routes.py.

Also: every routed row of the routing table in docs/event-driven.md has a rule, and every rule a routed row."""

from __future__ import annotations

import importlib.util
import re

import pytest
import yaml

pytest.importorskip("ansible_rulebook")

from ansible_rulebook.util import substitute_variables

from sandbox import REPO_ROOT
from sandbox.alarm import alarm_event
from sandbox.rulebook import ACCOUNT, guardduty_event

RULEBOOKS = REPO_ROOT / "extensions" / "eda" / "rulebooks"
SOURCES = REPO_ROOT / "extensions" / "eda" / "plugins" / "event_source"
VARS = yaml.safe_load((RULEBOOKS / "vars" / "sandbox.yml").read_text())
REGION = "us-east-1"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"test_routes_{name}", SOURCES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sqs = _load("aws_sqs_durable")
webhook = _load("alertmanager_webhook")

LB = "app/shop-alb/0123456789abcdef"
VARIABLES = {
    **VARS,
    "FIREBREAK_WEBHOOK_TOKEN": "t0ken",
    "firebreak_load_balancer_services": {LB: {"cluster": "shop", "service": "shop-api", "scale_to": 6}},
    "firebreak_ecs_scale_out": {"shop/shop-worker": 5},
    "firebreak_pipeline_job_queues": {"results-pipeline": "results-queue"},
    "firebreak_database_backends": {"orders-db": {"cluster": "shop", "services": "shop-api,shop-worker"}},
    "firebreak_alarm_severities": {"shop-alb-5xx-critical": "P1"},
}

MISSING = object()


def _get(root, path):
    value = root
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def matches(condition: str, event: dict, variables: dict) -> bool:
    """Evaluate a rule's condition (the rulebooks' subset of ansible-rulebook's condition language)."""
    root = {"event": event, "vars": variables}
    expr = re.sub(r"\b((?:event|vars)(?:\.\w+)+) is defined", r'_defined("\1")', condition)
    expr = re.sub(r'(?<!["\w.])((?:event|vars)(?:\.\w+)+)', r'_get("\1")', expr)
    expr = re.sub(r"\bfalse\b", "False", re.sub(r"\btrue\b", "True", expr))
    return bool(
        eval(  # noqa: S307 - our own rulebooks' conditions, in a test
            expr,
            {"__builtins__": {}},
            {"_get": lambda p: _get(root, p), "_defined": lambda p: _get(root, p) is not MISSING},
        )
    )


def route(rulebook: str, event: dict, variables=VARIABLES):
    """(playbook the first matching rule runs, its rendered extra_vars)."""
    (ruleset,) = yaml.safe_load((RULEBOOKS / rulebook).read_text())
    for rule in ruleset["rules"]:
        if matches(rule["condition"], event, variables):
            action = rule.get("action") or rule["actions"][0]
            run = action["run_playbook"]
            return run["name"].removeprefix("firebreak.runbooks."), substitute_variables(
                run.get("extra_vars", {}), {**variables, "event": event}
            )
    raise AssertionError(f"no rule of {rulebook} matched {event}")


def alarm(name, namespace, metric, dimensions, state="ALARM", repeat=False):
    """An alarm's state change as the SQS source dispatches it (its describe(), plus the decision)."""
    described = {
        "AlarmArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}",
        "AlarmName": name,
        "Namespace": namespace,
        "MetricName": metric,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
    }
    body = alarm_event(described, state)
    info = sqs.describe(body)
    firebreak = {**info, "message_id": "m-1", "spool": "/tmp/s", "incident_id": "ALARM-x", "repeat": repeat}
    return {"body": body, "firebreak": firebreak}


def alert(alertname, status="firing", repeat=False, severity="warning", **labels):
    raw = {
        "status": status,
        "labels": {"alertname": alertname, "severity": severity, "namespace": "shop", **labels},
        "annotations": {"summary": "s"},
        "startsAt": "2026-12-06T16:04:34.123Z",
        "fingerprint": "0011223344556677",
    }
    payload = {"status": status, "receiver": "firebreak", "groupKey": "{}:{}", "alerts": [raw]}
    info = webhook.describe_alert(raw, payload)
    firebreak = {**info, "message_id": "am-1", "spool": "/tmp/s", "incident_id": "ALERT-x", "repeat": repeat}
    return {"payload": payload, "alert": raw, "firebreak": firebreak}


# -- CloudWatch alarms (incidents.yml) --------------------------------------------------------------------------


def test_an_alb_5xx_alarm_starts_high_error_rate_on_the_service_behind_the_load_balancer():
    playbook, xv = route(
        "incidents.yml", alarm("shop-alb-5xx", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", {"LoadBalancer": LB})
    )
    assert playbook == "eda_high_error_rate"
    assert xv == {
        "incident_id": "ALARM-x",
        "firebreak_environment": "sandbox",
        "high_error_rate_platform": "ecs",
        "high_error_rate_load_balancer": LB,
        "high_error_rate_cluster": "shop",
        "high_error_rate_service": "shop-api",
        "high_error_rate_alarms": ["shop-alb-5xx"],
        "high_error_rate_severity": "P2",
        "high_error_rate_title": "CloudWatch alarm shop-alb-5xx: HTTPCode_Target_5XX_Count",
    }
    # the alarm's severity from firebreak_alarm_severities; an unknown load balancer: no service (the wrapper refuses)
    _, xv = route(
        "incidents.yml",
        alarm("shop-alb-5xx-critical", "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", {"LoadBalancer": LB}),
    )
    assert xv["high_error_rate_severity"] == "P1"
    _, xv = route(
        "incidents.yml", alarm("x", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", {"LoadBalancer": "app/other/1"})
    )
    assert (xv["high_error_rate_cluster"], xv["high_error_rate_service"]) == ("", "")


def test_a_latency_alarm_starts_performance_degradation_with_the_alarms_own_metric():
    event = alarm("shop-p95", "AWS/ApplicationELB", "TargetResponseTime", {"LoadBalancer": LB})
    playbook, xv = route("incidents.yml", event)
    assert playbook == "eda_performance_degradation"
    assert (xv["performance_degradation_metric_namespace"], xv["performance_degradation_metric_name"]) == (
        "AWS/ApplicationELB",
        "TargetResponseTime",
    )
    assert xv["performance_degradation_metric_dimensions"] == f"LoadBalancer={LB}"
    assert (xv["performance_degradation_statistic"], xv["performance_degradation_threshold"]) == ("p95", 1.0)
    assert (xv["performance_degradation_ecs_cluster"], xv["performance_degradation_ecs_service"]) == (
        "shop",
        "shop-api",
    )
    assert xv["performance_degradation_ecs_desired_count"] == 6
    assert xv["performance_degradation_severity"] == "P2"


def test_an_ecs_cpu_alarm_scales_its_service_out_to_the_configured_count():
    dims = {"ClusterName": "shop", "ServiceName": "shop-worker"}
    playbook, xv = route("incidents.yml", alarm("worker-cpu", "AWS/ECS", "CPUUtilization", dims))
    assert playbook == "eda_performance_degradation"
    assert xv["performance_degradation_metric_dimensions"] == "ClusterName=shop,ServiceName=shop-worker"
    assert (xv["performance_degradation_statistic"], xv["performance_degradation_threshold"]) == ("Average", 80)
    assert (xv["performance_degradation_ecs_cluster"], xv["performance_degradation_ecs_service"]) == (
        "shop",
        "shop-worker",
    )
    assert xv["performance_degradation_ecs_desired_count"] == 5


def test_step_functions_failures_and_a_batch_backlog_start_pipeline_incident():
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:results-pipeline"
    playbook, xv = route(
        "incidents.yml", alarm("pipeline-failed", "AWS/States", "ExecutionsFailed", {"StateMachineArn": arn})
    )
    assert playbook == "eda_pipeline_incident"
    assert (xv["pipeline_incident_state_machine"], xv["pipeline_incident_job_queue"]) == (
        "results-pipeline",
        "results-queue",
    )
    playbook, xv = route(
        "incidents.yml", alarm("batch-backlog", "Firebreak/Batch", "RunnableJobs", {"JobQueue": "results-queue"})
    )
    assert playbook == "eda_pipeline_incident"
    assert (xv["pipeline_incident_state_machine"], xv["pipeline_incident_job_queue"]) == (
        "results-pipeline",
        "results-queue",
    )
    _, xv = route(
        "incidents.yml", alarm("batch-backlog", "Firebreak/Batch", "RunnableJobs", {"JobQueue": "other-queue"})
    )
    assert (xv["pipeline_incident_state_machine"], xv["pipeline_incident_job_queue"]) == ("", "other-queue")
    # a Batch metric without a JobQueue dimension is not a pipeline route
    assert route("incidents.yml", alarm("b", "Firebreak/Batch", "RunnableJobs", {}))[0] == "eda_alert"


def test_an_rds_connections_alarm_starts_database_unavailable_with_its_backends():
    playbook, xv = route(
        "incidents.yml", alarm("orders-conns", "AWS/RDS", "DatabaseConnections", {"DBClusterIdentifier": "orders-db"})
    )
    assert playbook == "eda_database_unavailable"
    assert (xv["database_unavailable_kind"], xv["database_unavailable_cluster"], xv["database_unavailable_cause"]) == (
        "cluster",
        "orders-db",
        "connections",
    )
    assert (xv["database_unavailable_ecs_cluster"], xv["database_unavailable_ecs_services"]) == (
        "shop",
        "shop-api,shop-worker",
    )
    assert xv["database_unavailable_severity"] == "P1"
    _, xv = route(
        "incidents.yml",
        alarm("reports-conns", "AWS/RDS", "DatabaseConnections", {"DBInstanceIdentifier": "reports-db"}),
    )
    assert (xv["database_unavailable_kind"], xv["database_unavailable_instance"]) == ("instance", "reports-db")
    assert xv["database_unavailable_ecs_services"] == ""  # no backends configured: the wrapper refuses


@pytest.mark.parametrize(
    ("state", "repeat", "namespace", "metric"),
    [
        ("OK", False, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"),  # resolved
        ("INSUFFICIENT_DATA", False, "AWS/RDS", "DatabaseConnections"),
        ("ALARM", True, "AWS/States", "ExecutionsFailed"),  # a repeat of the open incident
        ("ALARM", False, "AWS/ApplicationELB", "RequestCount"),  # no route
        ("ALARM", False, "AWS/RDS", "FreeStorageSpace"),
    ],
)
def test_resolved_repeated_or_unrouted_alarms_are_recorded_only(state, repeat, namespace, metric):
    event = alarm("a", namespace, metric, {"LoadBalancer": LB, "DBClusterIdentifier": "orders-db"}, state, repeat)
    assert route("incidents.yml", event) == ("eda_alert", {"incident_id": "ALARM-x"})


def test_the_earlier_routes_still_route():
    dims = {"ClusterName": "shop", "ServiceName": "shop-api"}
    assert route("incidents.yml", alarm("firebreak-ecs-running-below-desired", "AWS/ECS", "RunningTaskCount", dims))[
        0
    ] == ("eda_service_down")
    assert route("service_down.yml", alarm("firebreak-ecs-running-below-desired", "AWS/ECS", "RunningTaskCount", dims))[
        0
    ] == ("eda_service_down")
    body = guardduty_event(severity=9.1)
    finding = {
        "body": body,
        "firebreak": {**sqs.describe(body), "message_id": "m", "incident_id": "I", "repeat": False},
    }
    playbook, xv = route("incidents.yml", finding)
    assert playbook == "eda_security_breach" and xv["security_breach_severity"] == "P1"


# -- Alertmanager (kubernetes.yml) -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "labels", "workload"),
    [
        ("KubeDeploymentReplicasMismatch", {"deployment": "api"}, "api"),
        ("KubePodNotReady", {"pod": "api-7d9f8b6c5d-x2v4q"}, "api"),
        ("KubePodCrashLooping", {"pod": "api-7d9f8b6c5d-x2v4q", "container": "api"}, "api"),
    ],
)
def test_pods_not_ready_or_replicas_missing_start_k8s_service_down(name, labels, workload):
    playbook, xv = route("kubernetes.yml", alert(name, severity="critical", **labels))
    assert playbook == "eda_k8s_service_down"
    assert xv == {
        "incident_id": "ALERT-x",
        "firebreak_environment": "sandbox",
        "k8s_service_down_namespace": "shop",
        "k8s_service_down_workload": workload,
        "k8s_service_down_severity": "P1",
        "k8s_service_down_title": f"{name}: shop/{workload}",
    }


def test_an_hpa_at_its_maximum_starts_performance_degradation_on_the_hpa():
    playbook, xv = route("kubernetes.yml", alert("KubeHpaMaxedOut", horizontalpodautoscaler="api"))
    assert playbook == "eda_performance_degradation"
    assert (xv["eda_hpa_namespace"], xv["eda_hpa_name"], xv["eda_hpa_factor"]) == ("shop", "api", 1.5)
    assert xv["performance_degradation_severity"] == "P3"  # warning


def test_a_failed_rollout_starts_bad_deploy_on_kubernetes():
    playbook, xv = route("kubernetes.yml", alert("KubeDeploymentRolloutStuck", severity="high", deployment="api"))
    assert playbook == "eda_bad_deploy"
    assert (xv["bad_deploy_platform"], xv["bad_deploy_namespace"], xv["bad_deploy_workload"]) == (
        "kubernetes",
        "shop",
        "api",
    )
    assert xv["bad_deploy_severity"] == "P2"


@pytest.mark.parametrize(
    "event",
    [
        alert("KubeDeploymentReplicasMismatch", status="resolved", deployment="api"),
        alert("KubeDeploymentReplicasMismatch", repeat=True, deployment="api"),
        alert("KubePodNotReady", pod="db-0"),  # a StatefulSet's pod: no workload guessed
        alert("KubeHpaMaxedOut"),  # no HPA label
        alert("KubeCPUOvercommit"),  # no route
    ],
)
def test_resolved_repeated_or_unrouted_alerts_are_recorded_only(event):
    assert route("kubernetes.yml", event) == ("eda_alert", {"incident_id": "ALERT-x"})


# -- the routing table of docs/event-driven.md -------------------------------------------------------------------


def routing_table():
    text = (REPO_ROOT / "docs" / "event-driven.md").read_text()
    section = text.split("## Routing table", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| alert")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows if not set(row) <= set("|- ")]


def test_every_routed_row_has_a_rule_and_every_rule_a_routed_row():
    rows = routing_table()
    assert rows, "no routing table in docs/event-driven.md"
    routed = {
        name
        for alert_cell, delivered, scenario, status in rows
        if status.startswith("**routed**")
        for name in re.findall(r"eda_\w+(?=\.yml)", scenario)
    }
    rules = set()
    for path in RULEBOOKS.glob("*.yml"):
        (ruleset,) = yaml.safe_load(path.read_text())
        for rule in ruleset["rules"]:
            action = rule.get("action") or rule["actions"][0]
            rules.add(action["run_playbook"]["name"].removeprefix("firebreak.runbooks."))
    rules.discard("eda_alert")
    assert routed == rules, (
        f"routed rows without a rule: {routed - rules}; rules without a routed row: {rules - routed}"
    )
    # the alert names and metrics the rules route are named in the table
    table = " ".join(" ".join(row) for row in rows)
    for key in (
        "k8s_service_down_alerts",
        "performance_degradation_alerts",
        "bad_deploy_alerts",
        "high_error_rate_metrics",
        "performance_degradation_metrics",
        "pipeline_incident_metrics",
        "database_unavailable_metrics",
    ):
        for name in VARS[key]:
            assert f"`{name}`" in table, f"{key}: {name} is routed but not in the routing table"
