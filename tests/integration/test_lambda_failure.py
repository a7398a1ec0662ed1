"""The lambda_failure scenario end to end on the incident frame: inject the drill's fault (a bad version behind the
alias), run the runbook, verify the alias in moto, the lifecycle and action records, --check, the gate, bad input,
the alarm path (symptom and recovery) and the limits path (old values recorded and restorable)."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

from sandbox.drills import lambda_failure
from tests.integration.scenario_helpers import lifecycle, records

pytestmark = [pytest.mark.integration, pytest.mark.drill]

PLAYBOOK = lambda_failure.PLAYBOOK


def extra_vars(context: dict) -> dict:
    return {key: value for key, value in context.items() if not key.startswith("_")}


def lambda_state(aws) -> dict:
    client = aws.client("lambda")
    alias = client.get_alias(FunctionName="thumbnailer", Name="live")
    config = client.get_function_configuration(FunctionName="thumbnailer")
    concurrency = client.get_function_concurrency(FunctionName="thumbnailer").get("ReservedConcurrentExecutions")
    tags = client.list_tags(Resource=aws.manifest["aws"]["lambda"]["function_arn"])["Tags"]
    return {
        "alias": alias["FunctionVersion"],
        "routing": (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {},
        "memory": config["MemorySize"],
        "timeout": config["Timeout"],
        "concurrency": concurrency,
        "tags": tags,
    }


READS = ("Describe", "Get", "List")


def mutating_calls(aws) -> list[tuple[str, str, str]]:
    """Calls that change something (rest-json Lambda by method; query APIs by action name)."""
    found = []
    for entry in aws.proxy.log():
        if entry["service"] == "lambda" and entry["method"] in ("PUT", "POST", "DELETE"):
            found.append((entry["service"], entry["method"], entry["path"]))
        elif entry["service"] == "monitoring" and not str(entry.get("action", "")).startswith(
            ("Describe", "Get", "List")
        ):
            found.append((entry["service"], entry.get("action"), ""))
    return found


def _check_changes_nothing(aws, run_playbook, context, timeline):
    """--check --diff on the injected fault, in its own timeline: the plan shown, nothing changed."""
    before = lambda_state(aws)
    aws.proxy.clear_log()
    run = run_playbook(PLAYBOOK, extra_vars=extra_vars(context), check=True, diff=True, timeline=timeline)
    assert run.returncode == 0, run.output[-4000:]
    assert lambda_state(aws) == before and mutating_calls(aws) == []
    assert "DRY RUN, nothing changed. check mode: would roll back alias live of thumbnailer from 3 to 2" in run.stdout
    entries = lifecycle(run)
    assert [e["event"] for e in entries] == ["declared", "update", "resolved"]
    assert all(e["_check_mode"] for e in entries)
    assert not run.timeline.with_name("report.md").exists()


def test_check_changes_nothing_then_scenario_rolls_the_alias_back_and_a_rerun_changes_nothing(
    aws, run_playbook, tmp_path
):
    context = lambda_failure.inject(aws)
    assert lambda_failure.alias_version(aws) == context["_drill"]["bad"] == "3"
    _check_changes_nothing(aws, run_playbook, context, tmp_path / "check" / "timeline.jsonl")

    run = run_playbook(PLAYBOOK, extra_vars=extra_vars(context))
    assert run.returncode == 0, run.output[-4000:]
    lambda_failure.verify(aws, context)
    assert lambda_state(aws)["alias"] == "2"
    assert "rolled back alias live of thumbnailer from 3 to 2" in run.stdout
    assert "left for a person: read the function's logs" in run.stdout

    declared, resolved = lifecycle(run, "declared"), lifecycle(run, "resolved")
    assert [(d["severity"], d["type"], d["environment"]) for d in declared] == [("P2", "lambda_failure", "sandbox")]
    assert declared[0]["title"] == "Lambda thumbnailer:live failing"
    assert [u["status"] for u in lifecycle(run, "update")] == ["monitoring"]
    assert len(resolved) == 1 and "from 3 to 2" in resolved[0]["summary"]
    tasks = [r for r in records(run) if r["event"] in ("task_ok", "task_changed", "task_failed", "note")]
    actions = [r["action"] for r in tasks]
    changed = [r for r in tasks if r["action"] == "firebreak.runbooks.lambda_alias_rollback" and not r["check_mode"]]
    assert [r["event"] for r in changed] == ["task_changed"]
    assert changed[0]["details"]["before"]["function_version"] == "3"
    assert changed[0]["details"]["after"]["function_version"] == "2"
    first = tasks.index(changed[0])
    assert actions.index("firebreak.runbooks.aws_triage_info") < first  # the read-only triage came first
    assert actions.index("firebreak.runbooks.incident_lifecycle") < first  # declared before the change
    gate = [r["msg"] for r in tasks[:first] if r["event"] == "note" and "Gate lambda-failure-rollback" in r["msg"]]
    assert gate and "passed without approval" in gate[0]
    assert actions.index("firebreak.runbooks.incident_report") < actions.index("firebreak.runbooks.incident_seal")
    report = run.timeline.with_name("report.md")
    assert report.is_file() and "P2" in report.read_text()
    lambda_failure.verify_record(run.timeline, report)

    state, seen = lambda_state(aws), len(records(run))
    aws.proxy.clear_log()
    again = run_playbook(PLAYBOOK, extra_vars=extra_vars(context))
    assert again.returncode == 0, again.output[-4000:]
    assert "changed=1 " in again.stdout, "a re-run must change nothing but its report"
    again_changed = [r["action"] for r in records(again)[seen:] if r["event"] == "task_changed"]
    assert again_changed == ["firebreak.runbooks.incident_report"], again_changed
    assert lambda_state(aws) == state and mutating_calls(aws) == []


def test_verify_fails_when_the_alias_was_not_rolled_back(aws):
    context = lambda_failure.inject(aws)
    with pytest.raises(AssertionError, match="still points at the bad version 3"):
        lambda_failure.verify(aws, context)


def test_bad_input_stops_before_any_call(aws, run_playbook):
    context = lambda_failure.inject(aws)
    before = lambda_state(aws)
    for extra, message in (
        (
            {"lambda_failure_function": "thumb nailer!"},
            'lambda_failure_function "thumb nailer!" is not a Lambda function',
        ),
        ({"lambda_failure_alias": "42"}, 'lambda_failure_alias "42" is not a Lambda alias name'),
        ({"lambda_failure_version": "v2"}, 'lambda_failure_version "v2" is not a published version number'),
        ({"lambda_failure_alarm": "bad\tname"}, "is not a CloudWatch alarm name"),
        ({"lambda_failure_cause": "limits"}, "lambda_failure_cause=limits needs at least one limit"),
        ({"lambda_failure_force": True}, "lambda_failure_force needs a reason"),
        ({"lambda_failure_cause": "oops"}, "lambda_failure_cause"),
    ):
        aws.proxy.clear_log()
        run = run_playbook(PLAYBOOK, extra_vars={**extra_vars(context), **extra})
        assert run.returncode != 0, extra
        assert message in " ".join(run.output.split()), (extra, run.output[-2000:])
        assert "Traceback" not in run.output
        assert aws.proxy.log() == [] and lambda_state(aws) == before


def test_the_gate_stops_a_production_run_without_approval_and_an_approval_proceeds(aws, run_playbook):
    context = lambda_failure.inject(aws)
    before = lambda_state(aws)
    policy = {
        "firebreak_environment": "production",
        "firebreak_gate_policy": {"production": {"rollback": "approval_required"}},
    }
    aws.proxy.clear_log()
    run = run_playbook(PLAYBOOK, extra_vars={**extra_vars(context), **policy})
    assert run.returncode != 0
    assert "gate lambda-failure-rollback not confirmed (approval_required in production): nothing was changed" in (
        run.stdout
    ), run.stdout[-3000:]
    assert "would roll back alias live of thumbnailer from 3 to 2" in run.stdout
    assert lambda_state(aws) == before and mutating_calls(aws) == []

    digest = re.search(r'"lambda-failure-rollback": "([0-9a-f]{12})"', run.stdout).group(1)
    approval = {"firebreak_gate_approvals": {"lambda-failure-rollback": digest}, "firebreak_gate_approver": "alice"}
    approved = run_playbook(PLAYBOOK, extra_vars={**extra_vars(context), **policy, **approval})
    assert approved.returncode == 0, approved.output[-4000:]
    lambda_failure.verify(aws, context)


def test_an_alarm_in_ok_is_refused_then_forced_with_a_recorded_reason(aws, run_playbook):
    context = lambda_failure.inject(aws)
    alarm = lambda_failure.add_alarm(aws, "OK")
    before = lambda_state(aws)
    aws.proxy.clear_log()
    run = run_playbook(PLAYBOOK, extra_vars={**extra_vars(context), "lambda_failure_alarm": alarm})
    assert run.returncode != 0
    text = " ".join(run.stdout.split())
    assert "thumbnailer:live does not look failing: alarm thumbnailer-errors is OK" in text, run.stdout[-3000:]
    assert "-e lambda_failure_force=true -e lambda_failure_force_reason=" in text
    assert lambda_state(aws) == before and mutating_calls(aws) == []

    reason = "callers see 502s the alarm does not count"
    forced = run_playbook(
        PLAYBOOK,
        extra_vars={
            **extra_vars(context),
            "lambda_failure_alarm": alarm,
            "lambda_failure_force": True,
            "lambda_failure_force_reason": reason,
            "lambda_failure_health_timeout": 30,
        },
    )
    assert forced.returncode == 0, forced.output[-4000:]
    lambda_failure.verify(aws, context)
    notes = [r["msg"] for r in records(forced) if r["event"] == "note" and "forced by the operator" in (r["msg"] or "")]
    assert notes and reason in notes[0]


def flip_alarm_when_rolled_back(aws, version: str, stop: threading.Event) -> None:
    """Stand in for CloudWatch: the errors alarm goes back to OK once the alias serves the good version."""
    while not stop.is_set():
        if lambda_failure.alias_version(aws) == version:
            aws.client("cloudwatch").set_alarm_state(
                AlarmName=lambda_failure.ALARM, StateValue="OK", StateReason="errors stopped"
            )
            return
        time.sleep(0.5)


def test_an_alarm_in_alarm_confirms_the_symptom_and_its_return_to_ok_is_the_recovery(aws, run_playbook):
    context = lambda_failure.inject(aws)
    alarm = lambda_failure.add_alarm(aws, "ALARM")
    stop = threading.Event()
    watcher = threading.Thread(target=flip_alarm_when_rolled_back, args=(aws, context["_drill"]["good"], stop))
    watcher.start()
    try:
        run = run_playbook(
            PLAYBOOK,
            extra_vars={**extra_vars(context), "lambda_failure_alarm": alarm, "lambda_failure_health_timeout": 60},
        )
    finally:
        stop.set()
        watcher.join()
    assert run.returncode == 0, run.output[-4000:]
    lambda_failure.verify(aws, context)
    [verify] = [r for r in records(run) if r["action"] == "firebreak.runbooks.health_verify" and not r["check_mode"]]
    assert [(c["kind"], c["verdict"]) for c in verify["details"]["checks"]] == [("alarm", "pass")]
    [resolved] = lifecycle(run, "resolved")
    assert "from 3 to 2" in resolved["summary"]


def test_the_limits_path_raises_records_the_old_values_and_they_can_be_put_back(aws, run_playbook):
    before = lambda_state(aws)
    limits = {"lambda_failure_cause": "limits", "lambda_failure_memory_size": 1024, "lambda_failure_timeout": 60}
    aws.proxy.clear_log()
    refused = run_playbook(PLAYBOOK, extra_vars=limits)  # no alarm: nothing shows the errors
    assert refused.returncode != 0
    assert "no alarm was given (lambda_failure_alarm)" in " ".join(refused.stdout.split())
    assert lambda_state(aws) == before and mutating_calls(aws) == []

    alarm = lambda_failure.add_alarm(aws, "ALARM")
    aws.client("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="throttles")
    run = run_playbook(
        PLAYBOOK,
        extra_vars={**limits, "lambda_failure_alarm": alarm, "lambda_failure_health_timeout": 0},
    )
    # the sandbox alarm does not recover by itself: the raise is done, the verification says the alarm is not OK
    assert run.returncode != 0
    after = lambda_state(aws)
    assert (after["memory"], after["timeout"], after["alias"]) == (1024, 60, before["alias"])
    notes = [r["msg"] for r in records(run) if r["event"] == "note" and "Raised the limits" in (r["msg"] or "")]
    assert notes, [r.get("msg") for r in records(run) if r["event"] == "note"]
    previous = json.loads(re.search(r"lambda_limits_raise_previous=(\{.*\}) \(docs", notes[0]).group(1))
    assert previous == {
        "memory_size": {"old": before["memory"], "new": 1024},
        "timeout": {"old": before["timeout"], "new": 60},
    }
    assert "thumbnailer-errors" in run.stdout and "ALARM" in run.stdout

    # the alarm back to OK: a re-run verifies and resolves, changing nothing in AWS
    aws.client("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="recovered")
    aws.proxy.clear_log()
    again = run_playbook(PLAYBOOK, extra_vars={**limits, "lambda_failure_alarm": alarm})
    assert again.returncode == 0, again.output[-4000:]
    assert lambda_state(aws) == after and [c for c in mutating_calls(aws) if c[0] == "lambda"] == []
    assert lifecycle(again, "resolved")
