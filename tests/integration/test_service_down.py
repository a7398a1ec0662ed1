"""The service_down scenario end to end on the incident frame: inject the drill's fault, run the runbook, verify
recovery in moto, the lifecycle records, the gate, the symptom check, --check and a webhook that is down."""

from __future__ import annotations

import json
import re
import socket

import pytest

from sandbox.drills import service_down
from tests.integration.scenario_helpers import lifecycle, mutating_calls, records

pytestmark = [pytest.mark.integration, pytest.mark.drill]


def running(aws) -> str:
    service = aws.client("ecs").describe_services(cluster="shop", services=["shop-api"])["services"][0]
    return service["taskDefinition"].rsplit("/", 1)[-1]


def extra_vars(context: dict) -> dict:
    return {key: value for key, value in context.items() if not key.startswith("_")}


def test_scenario_recovers_the_service(aws, run_playbook):
    context = service_down.inject(aws)
    assert running(aws) == context["_drill"]["bad"] == "shop-api:4"

    run = run_playbook(service_down.PLAYBOOK, extra_vars=extra_vars(context))
    assert run.returncode == 0, run.output
    checks = service_down.verify(aws, context)
    assert running(aws) == "shop-api:3"
    assert any("shop-api:3" in line for line in checks)
    assert "rolled back shop-api from shop-api:4 to shop-api:3" in run.stdout
    assert_the_frame(run)
    notes = [r["msg"] for r in records(run) if r["event"] == "note" and r["msg"].startswith("Decision tree:")]
    [note] = notes
    assert note.startswith("Decision tree: rollback, because the newest deployment ecs-svc/"), note
    assert " on shop-api:4 is the suspect: 0 of 2 desired tasks running" in note, note
    assert "branch: rollback, because the newest deployment" in run.stdout

    state, seen = ecs_state(aws), len(records(run))
    aws.proxy.clear_log()
    again = run_playbook(service_down.PLAYBOOK, extra_vars=extra_vars(context))
    assert again.returncode == 0, again.output
    assert "changed=1 " in again.stdout, "a re-run of the scenario must change nothing but its report"
    changed = [r["action"] for r in records(again)[seen:] if r["event"] == "task_changed"]
    assert changed == ["firebreak.runbooks.incident_report"], changed  # the report now covers both runs
    assert ecs_state(aws) == state and mutating_calls(aws, MUTATING) == []


def test_the_rollback_evidence_shows_the_bad_state_before_and_the_healthy_state_after(aws, run_playbook):
    """The sandbox shows the bad revision as ECS and the ALB would (tasks stopping, targets unhealthy):
    the rollback module's captured before-state must say so, and its after-state must be healthy."""
    context = service_down.inject(aws)
    target_group = context["_drill"]["target_group_arn"]
    run = run_playbook(
        service_down.PLAYBOOK, extra_vars=extra_vars(context), env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
    )
    assert run.returncode == 0, run.output
    # Other steps print one-line JSON of their own; the callback's document is the one with "plays".
    decoder, text, data = json.JSONDecoder(), run.stdout, None
    for at in (i for i, ch in enumerate(text) if ch == "{" and (i == 0 or text[i - 1] == "\n")):
        doc = decoder.raw_decode(text, at)[0]
        if "plays" in doc:
            data = doc
            break
    assert data, run.output[-3000:]
    [result] = [
        entry["hosts"]["localhost"]
        for play in data["plays"]
        for entry in play["tasks"]
        if "Capture the before-state, roll back" in entry["task"]["name"]
    ]

    before = result["captured"]
    [health] = before["target_health"]
    assert (health["target_group_arn"], health["healthy"], health["unhealthy"]) == (target_group, 0, 2)
    assert {t["reason"] for t in health["targets"]} == {"Target.FailedHealthChecks"}
    summary = before["service"]
    assert summary["task_definition_revision"] == "shop-api:4"
    assert summary["running_count"] == 0
    assert summary["deployments"][0]["failed_tasks"] >= 2
    messages = [event["message"] for event in summary["events"]]
    assert any(m.startswith("(service shop-api) has started 2 tasks") for m in messages), messages

    [after] = result["target_health"]
    assert (after["healthy"], after["unhealthy"]) == (2, 0)
    found = aws.client("ecs").describe_services(cluster="shop", services=["shop-api"])["services"][0]
    assert (found["runningCount"], found["deployments"][0]["rolloutState"]) == (2, "COMPLETED")
    assert found["events"][0]["message"] == "(service shop-api) has reached a steady state."


def test_verify_fails_when_the_service_was_not_rolled_back(aws):
    context = service_down.inject(aws)
    with pytest.raises(AssertionError, match="still runs the bad revision shop-api:4"):
        service_down.verify(aws, context)


def test_scenario_refuses_a_non_local_endpoint(aws, run_playbook):
    context = service_down.inject(aws)
    run = run_playbook(
        service_down.PLAYBOOK,
        extra_vars=extra_vars(context),
        env={"FIREBREAK_AWS_ENDPOINT_URL": "https://ecs.us-east-1.amazonaws.com"},
    )
    assert run.returncode != 0
    assert "requires local endpoints" in run.stdout
    assert running(aws) == "shop-api:4"


# -- the frame ---------------------------------------------------------------------------------------------------

MUTATING = {"UpdateService", "TagResource", "UntagResource", "RegisterTaskDefinition", "DeregisterTaskDefinition"}
# what may run before the rollback: controller-side only (no module process before the first mitigating call)
CONTROLLER = {
    "ansible.builtin.validate_argument_spec",
    "ansible.builtin.assert",
    "ansible.builtin.include_role",
    "ansible.builtin.include_tasks",
    "ansible.builtin.set_fact",
    "ansible.builtin.debug",
    "firebreak.runbooks.incident_lifecycle",
    "firebreak.runbooks.incident_note",
}


def ecs_state(aws) -> dict:
    ecs = aws.client("ecs")
    service = ecs.describe_services(cluster="shop", services=["shop-api"], include=["TAGS"])["services"][0]
    arns = ecs.list_task_definitions(familyPrefix="shop-api")["taskDefinitionArns"]
    return {
        "task_definition": service["taskDefinition"],
        "desired": service["desiredCount"],
        "tags": sorted((t["key"], t["value"]) for t in service.get("tags") or []),
        "deployments": [(d["id"], d["taskDefinition"]) for d in service["deployments"]],
        "task_definitions": sorted(arns),
    }


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_healthy_service_is_refused_before_any_change_then_forced_with_a_recorded_reason(aws, run_playbook):
    before = ecs_state(aws)
    assert before["task_definition"].endswith("shop-api:3")
    aws.proxy.clear_log()
    run = run_playbook(service_down.PLAYBOOK)
    assert run.returncode != 0
    assert "shop-api does not look down: shop-api runs shop-api:3 with 2/2 tasks running" in run.stdout, run.stdout[
        -3000:
    ]
    assert "-e service_down_force=true -e service_down_force_reason=" in run.stdout
    assert ecs_state(aws) == before and mutating_calls(aws, MUTATING) == []
    assert not lifecycle(run, "resolved")

    reason = "checkout answers 500 since the 14:02 deploy; the ALB health check does not cover it"
    forced = run_playbook(
        service_down.PLAYBOOK, extra_vars={"service_down_force": True, "service_down_force_reason": reason}
    )
    assert forced.returncode == 0, forced.output[-4000:]
    assert ecs_state(aws)["task_definition"].endswith("shop-api:2")  # the previous ACTIVE revision
    [*_, rollback] = [r for r in records(forced) if r["action"] == "firebreak.runbooks.ecs_service_rollback"]
    assert rollback["details"]["symptom"]["forced"] is True
    assert rollback["details"]["symptom"]["force_reason"] == reason
    notes = [r["msg"] for r in records(forced) if r["event"] == "note" and "forced" in (r["msg"] or "")]
    assert notes and reason in notes[0]


def test_a_force_without_a_reason_and_bad_names_stop_before_any_call(aws, run_playbook):
    context = service_down.inject(aws)
    before = ecs_state(aws)
    for extra, message in (
        ({"service_down_cluster": "shop prod!"}, 'service_down_cluster "shop prod!" is not an ECS cluster name'),
        ({"service_down_service": "api/../x"}, 'service_down_service "api/../x" is not an ECS service name'),
        ({"service_down_force": True}, "service_down_force needs a reason"),
        ({"service_down_severity": "P9"}, "service_down_severity"),
    ):
        aws.proxy.clear_log()
        run = run_playbook(service_down.PLAYBOOK, extra_vars={**extra_vars(context), **extra})
        assert run.returncode != 0, extra
        assert message in " ".join(run.output.split()), (extra, run.output[-2000:])
        assert "Traceback" not in run.output
        assert aws.proxy.log() == [] and ecs_state(aws) == before


def test_the_gate_stops_a_non_interactive_run_where_the_policy_asks_and_an_approval_proceeds(aws, run_playbook):
    context = service_down.inject(aws)
    before = ecs_state(aws)
    policy = {
        "firebreak_environment": "production",
        "firebreak_gate_policy": {"production": {"rollback": "approval_required"}},
    }
    aws.proxy.clear_log()
    run = run_playbook(service_down.PLAYBOOK, extra_vars={**extra_vars(context), **policy})
    assert run.returncode != 0
    assert (
        "gate service-down-rollback not confirmed (approval_required in production): nothing was changed" in run.stdout
    )
    assert "would roll back shop-api from shop-api:4 to shop-api:3" in run.stdout  # the plan it showed
    assert ecs_state(aws) == before and mutating_calls(aws, MUTATING) == []

    digest = re.search(r'"service-down-rollback": "([0-9a-f]{12})"', run.stdout).group(1)
    approval = {"firebreak_gate_approvals": {"service-down-rollback": digest}, "firebreak_gate_approver": "alice"}
    approved = run_playbook(service_down.PLAYBOOK, extra_vars={**extra_vars(context), **policy, **approval})
    assert approved.returncode == 0, approved.output[-4000:]
    service_down.verify(aws, context)
    notes = [r["msg"] for r in records(approved) if r["event"] == "note" and "Gate service-down-rollback" in r["msg"]]
    assert notes and "approved by alice" in notes[-1]


def test_a_webhook_that_is_down_never_stops_the_mitigation(aws, run_playbook):
    context = service_down.inject(aws)
    url = f"http://127.0.0.1:{closed_port()}/services/SECRET-down"
    run = run_playbook(
        service_down.PLAYBOOK,
        extra_vars={
            **extra_vars(context),
            **{
                f"incident_{role}_post_{option}": value
                for role in ("declare", "update", "resolve")
                for option, value in (("timeout", 1), ("retries", 0))
            },
        },
        env={"FIREBREAK_CHAT_WEBHOOK_URL": url},
    )
    assert run.returncode == 0, run.output[-4000:]
    service_down.verify(aws, context)
    deliveries = lifecycle(run, "delivery")
    assert [(d["for_event"], d["delivered"]) for d in deliveries] == [
        ("declared", False),
        ("update", False),
        ("resolved", False),
    ]
    assert "SECRET" not in run.timeline.read_text()
    actions = [r["action"] for r in records(run) if r["event"].startswith("task_") and r["event"] != "task_skipped"]
    assert actions.index("firebreak.runbooks.ecs_service_rollback") < actions.index("ansible.builtin.uri")


def test_check_mode_changes_nothing_records_nothing_as_real_and_shows_the_whole_plan(aws, run_playbook):
    context = service_down.inject(aws)
    before = ecs_state(aws)
    aws.proxy.clear_log()
    run = run_playbook(service_down.PLAYBOOK, extra_vars=extra_vars(context), check=True, diff=True)
    assert run.returncode == 0, run.output[-4000:]
    assert ecs_state(aws) == before and mutating_calls(aws, MUTATING) == []
    entries = lifecycle(run)
    assert [e["event"] for e in entries] == ["declared", "update", "resolved"]
    assert all(e["_check_mode"] for e in entries), "a dry run's lifecycle must not count as real"
    assert not run.timeline.with_name("report.md").exists()
    for predicted in (
        "declared P2 investigating: shop-api down in shop",
        "Gate service-down-rollback passed without approval",
        "check mode: would roll back shop-api from shop-api:4 to shop-api:3",
        "symptom confirmed: 0 of 2 desired tasks running",
        "update: P2 monitoring",
        "resolved (P2)",
        "DRY RUN, nothing changed. check mode: would roll back shop-api from shop-api:4 to shop-api:3",
    ):
        assert predicted in run.stdout, (predicted, run.stdout[-4000:])
    # the verification's one round is shown too (it reads the still broken service: nothing was rolled back)
    assert re.search(r"target_health .*shop-api-tg", run.stdout), run.stdout[-3000:]
    # a real run afterwards is not fooled by the dry run's records: it declares the incident for real
    real = run_playbook(service_down.PLAYBOOK, extra_vars=extra_vars(context))
    assert real.returncode == 0, real.output[-3000:]
    assert [e["_check_mode"] for e in lifecycle(real, "declared")] == [True, False]


# -- the decision tree's other branches (no deployment to blame) ---------------------------------------------------


def targets_fail_health_checks(aws) -> None:
    """The service's targets fail their health checks while its tasks run (the app hangs): the ALB's answer to the
    first DescribeTargetHealth (the rollback module's capture), as AWS gives it; moto reports running IP targets
    healthy, so later reads (the verification) see them healthy again."""
    seeded = aws.manifest["aws"]["ecs"]
    described = [
        {
            "Target": {"Id": ip, "Port": 8000},
            "HealthCheckPort": "8000",
            "TargetHealth": {
                "State": "unhealthy",
                "Reason": "Target.ResponseCodeMismatch",
                "Description": "Health checks failed with these codes: [503]",
            },
        }
        for ip in seeded["target_ips"]
    ]
    aws.proxy.add_rule(
        {
            "service": "elasticloadbalancing",
            "action": "DescribeTargetHealth",
            "fault": "canned",
            "body": {"TargetHealthDescriptions": described},
            "count": 1,
        }
    )


def decision_notes(run) -> list[str]:
    return [r["msg"] for r in records(run) if r["event"] == "note" and (r["msg"] or "").startswith("Decision tree:")]


def test_no_deployment_to_blame_and_cpu_saturated_scales_out_recording_the_old_count(aws, run_playbook):
    import datetime as dt

    before = ecs_state(aws)
    assert before["desired"] == 2
    targets_fail_health_checks(aws)
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/ECS",
        MetricData=[
            {
                "MetricName": "CPUUtilization",
                "Dimensions": [{"Name": "ClusterName", "Value": "shop"}, {"Name": "ServiceName", "Value": "shop-api"}],
                "Timestamp": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30),
                "Value": 97.5,
                "Unit": "Percent",
            }
        ],
    )
    run = run_playbook(service_down.PLAYBOOK)
    assert run.returncode == 0, run.output[-4000:]

    after = ecs_state(aws)
    assert after["desired"] == 4 and after["task_definition"] == before["task_definition"]  # no rollback
    tags = dict(after["tags"])
    assert (tags["firebreak:scaled-from"], tags["firebreak:scaled-to"]) == ("2", "4")  # restorable
    service = aws.client("ecs").describe_services(cluster="shop", services=["shop-api"])["services"][0]
    assert service["runningCount"] == 4

    [note] = decision_notes(run)
    assert note.startswith("Decision tree: scale out, because resource exhaustion, no deployment to blame:"), note
    assert "CPU Maximum 97.5 > threshold 90.0" in note, note
    actions = [r["action"] for r in records(run) if r["event"] in ("task_changed", "task_failed")]
    assert actions.index("firebreak.runbooks.ecs_service_rollback") < actions.index(
        "firebreak.runbooks.ecs_service_scale"
    )  # the rollback module refused (its capture is the evidence), then the scale-out
    [resolved] = lifecycle(run, "resolved")
    assert resolved["summary"].startswith("scale out (resource exhaustion"), resolved["summary"]
    assert "branch: scale out, because resource exhaustion" in run.stdout


def test_no_deployment_to_blame_and_no_exhaustion_restarts_the_tasks(aws, run_playbook):
    before = ecs_state(aws)
    targets_fail_health_checks(aws)
    run = run_playbook(service_down.PLAYBOOK)
    assert run.returncode == 0, run.output[-4000:]

    after = ecs_state(aws)
    assert (after["task_definition"], after["desired"]) == (before["task_definition"], before["desired"])
    assert after["deployments"][0][0] != before["deployments"][0][0], "no new deployment: the tasks were not restarted"
    tags = dict(after["tags"])
    assert tags["firebreak:restarted-deployment"] == after["deployments"][0][0]
    assert tags["firebreak:restarted-for"].startswith("INC-TEST-test_no_deployment_to_blame")

    [note] = decision_notes(run)
    assert note.startswith("Decision tree: restart, because down or degraded (targetgroup/shop-api-tg/"), note
    assert "no resource exhaustion (CPU and memory under 90%)" in note, note
    assert [r["status"] for r in lifecycle(run, "resolved")] == ["resolved"]
    assert "branch: restart, because down or degraded" in run.stdout


def assert_the_frame(run) -> None:
    """The frame on a converge of the bad-deploy drill: declared, confirmed, mitigated first, verified, resolved,
    reported and sealed, in that order (folded into the converge test: one run fewer)."""

    declared, resolved = lifecycle(run, "declared"), lifecycle(run, "resolved")
    assert [(d["severity"], d["type"], d["status"], d["environment"]) for d in declared] == [
        ("P2", "service_down", "investigating", "sandbox")
    ]
    assert declared[0]["title"] == "shop-api down in shop" and declared[0]["services"] == ["shop-api"]
    assert declared[0]["roles"]["commander"]
    assert [u["status"] for u in lifecycle(run, "update")] == ["monitoring"]
    assert [(r["status"], r["severity"]) for r in resolved] == [("resolved", "P2")]
    assert "rolled back shop-api from shop-api:4 to shop-api:3" in resolved[0]["summary"]

    tasks = [r for r in records(run) if r["event"] in ("task_ok", "task_changed", "task_failed", "note")]
    actions = [r["action"] for r in tasks]
    first = actions.index("firebreak.runbooks.ecs_service_rollback")
    assert set(actions[:first]) <= CONTROLLER, actions[:first]  # no module process before the first mitigating call
    assert actions.index("firebreak.runbooks.incident_lifecycle") < first  # declared before it
    gate = [r for r in tasks[:first] if r["event"] == "note" and "Gate service-down-rollback" in (r["msg"] or "")]
    assert gate and "passed without approval (policy contain_suspected in sandbox" in gate[0]["msg"]
    rollback = tasks[first]["details"]
    assert rollback["symptom"]["confirmed"] is True and rollback["symptom"]["forced"] is False
    assert "0 of 2 desired tasks running" in rollback["symptom"]["signs"]
    # then verification (after the rollback), resolution, the report and the seal, in that order
    later = actions[first:]
    order = [
        later.index("firebreak.runbooks.health_verify"),
        next(
            i
            for i, r in enumerate(tasks[first:])
            if (r["details"] or {}).get("lifecycle", {}).get("event") == "resolved"
        ),
        later.index("firebreak.runbooks.incident_report"),
        later.index("firebreak.runbooks.incident_seal"),
    ]
    assert order == sorted(order), later
    checks = {
        c["kind"]: c["verdict"]
        for c in tasks[first + later.index("firebreak.runbooks.health_verify")]["details"]["checks"]
    }
    assert checks == {"target_health": "pass", "ecs": "pass"}
    report = run.timeline.with_name("report.md")
    assert report.is_file() and "P2" in report.read_text()
