"""The pipeline_incident scenario end to end on the incident frame: inject the drill's failed executions, preview
with --check, pause (queue disabled, running executions stopped, the failed ones' ARNs in the timeline), re-run
(nothing changes), resume after the fix (queue re-enabled, the executions to re-drive listed and never started,
verified, resolved), the production gate before the pause, and the refusal without a symptom.

moto never runs an execution, so it cannot fail one: the drill stops them (ABORTED), which the runbook counts as
failed as it counts FAILED and TIMED_OUT; moto has no RedriveExecution (and the step never starts an execution), so
the re-drive is a list for a person."""

from __future__ import annotations

import pytest

from sandbox.drills import pipeline_incident as drill
from tests.integration.scenario_helpers import lifecycle, mutating_calls, records
from tests.integration.snapshot import differences, snapshot

pytestmark = [pytest.mark.integration, pytest.mark.drill]
MUTATING = {"StopExecution", "StartExecution", "UpdateJobQueue", "TagResource", "UntagResource", "RedriveExecution"}
SERVICES = ("states", "batch")  # whose mutating calls count


def extra_vars(context: dict, **more) -> dict:
    return {**{key: value for key, value in context.items() if not key.startswith("_")}, **more}


def pipeline(aws) -> dict:
    """What the scenario may change: the queue's state and tags, every execution's status, the machine's tags."""
    manifest = aws.manifest["aws"]
    queue = aws.client("batch").describe_job_queues(jobQueues=[manifest["batch"]["job_queue_name"]])["jobQueues"][0]
    tags = aws.client("stepfunctions").list_tags_for_resource(
        resourceArn=manifest["stepfunctions"]["state_machine_arn"]
    )["tags"]
    return {
        "queue": (queue["state"], sorted((queue.get("tags") or {}).items())),
        "executions": drill.executions(aws),
        "machine_tags": sorted((t["key"], t["value"]) for t in tags),
    }


def arn(aws, name: str) -> str:
    machine = aws.manifest["aws"]["stepfunctions"]["state_machine_arn"]
    return machine.replace(":stateMachine:", ":execution:") + ":" + name


def test_pause_preview_rerun_and_resume_with_the_redrive_list(aws, run_playbook):
    context = drill.inject(aws)
    before, whole = pipeline(aws), snapshot(aws)
    assert before["queue"][0] == "ENABLED"
    with pytest.raises(AssertionError, match="DISABLED"):
        drill.verify(aws, context)

    # --check: the whole preview, nothing changed
    aws.proxy.clear_log()
    preview = run_playbook(drill.PLAYBOOK, extra_vars=extra_vars(context), check=True, diff=True)
    assert preview.returncode == 0, preview.output[-4000:]
    assert mutating_calls(aws, MUTATING, services=SERVICES) == []
    assert pipeline(aws) == before and differences(whole, snapshot(aws)) == []
    text = " ".join(preview.stdout.split())
    assert "DRY RUN, nothing changed. check mode: would stop 2 execution(s) of results-pipeline" in text
    assert "disable results-queue" in text and "left for a person: deploy the fix" in text
    assert not preview.timeline.with_name("report.md").exists()

    # the pause
    run = run_playbook(drill.PLAYBOOK, extra_vars=extra_vars(context))
    assert run.returncode == 0, run.output[-4000:]
    drill.verify(aws, context)
    paused = pipeline(aws)
    assert paused["queue"][0] == "DISABLED" and ("firebreak:step", "pipeline_pause") in paused["queue"][1]
    seeded = context["_drill"]["seeded"]
    assert {n: s for n, s in paused["executions"].items() if n in seeded} == {n: "ABORTED" for n in seeded}
    stops = [e for e in aws.proxy.log() if e["action"] == "StopExecution"]
    assert sorted(e["params"]["executionArn"] for e in stops) == sorted(arn(aws, n) for n in seeded)
    assert all(e["params"]["error"].startswith("firebreak.IncidentPause.") for e in stops)

    [declared] = lifecycle(run, "declared", real=True)
    assert (declared["type"], declared["severity"]) == ("pipeline_incident", "P2")
    assert declared["services"] == ["results-pipeline", "results-queue"]
    assert [u["status"] for u in lifecycle(run, "update", real=True)] == ["identified"]
    assert lifecycle(run, "resolved", real=True) == []  # open until the resume
    [pause] = [
        r
        for r in records(run)
        if r["action"] == "firebreak.runbooks.stepfunctions_batch_pause"
        and r["event"] == "task_changed"
        and not r.get("check_mode")
    ]
    kinds = {e["kind"]: e for e in pause["details"]["containment"]}
    assert kinds["job_queue"]["changed"]["disabled"] is True
    assert sorted(x["name"] for x in kinds["state_machine"]["changed"]["stopped_executions"]) == sorted(seeded)
    notes = [r["msg"] for r in records(run) if r["event"] == "note" and not r.get("check_mode")]
    [evidence] = [n for n in notes if "Failed execution ARNs:" in n]
    assert all(failed in evidence for failed in context["_drill"]["failed"])
    [listed] = [n for n in notes if n.startswith("To re-drive after the fix")]
    everything = context["_drill"]["failed"] + [arn(aws, n) for n in seeded]
    assert all(a in listed for a in everything), listed
    assert any(n.startswith("Gate pipeline-pause") for n in notes), notes
    report = run.timeline.with_name("report.md")
    assert report.is_file() and all(a in report.read_text() for a in context["_drill"]["failed"])

    # a re-run changes nothing in AWS
    seen = len(records(run))
    aws.proxy.clear_log()
    again = run_playbook(drill.PLAYBOOK, extra_vars=extra_vars(context))
    assert again.returncode == 0, again.output[-4000:]
    assert mutating_calls(aws, MUTATING, services=SERVICES) == [] and pipeline(aws) == paused
    changed = [r["action"] for r in records(again)[seen:] if r["event"] == "task_changed"]
    assert changed == ["firebreak.runbooks.incident_report"], changed

    # after the fix: resume
    seen = len(records(again))
    aws.proxy.clear_log()
    resumed = run_playbook(drill.PLAYBOOK, extra_vars=extra_vars(context, pipeline_incident_resume=True))
    assert resumed.returncode == 0, resumed.output[-4000:]
    now = pipeline(aws)
    assert now["queue"] == ("ENABLED", [("firebreak:sandbox", "true")]) or now["queue"][0] == "ENABLED"
    assert ("firebreak:incident", lifecycle(run, "declared", real=True)[0]["incident_id"]) not in now["queue"][1]
    assert now["executions"] == paused["executions"]  # nothing started, nothing re-driven
    made = mutating_calls(aws, MUTATING, services=SERVICES)
    assert "StartExecution" not in made and "RedriveExecution" not in made
    text = " ".join(resumed.stdout.split())
    assert "re-enabled 1 queue(s); 2 execution(s) listed for re-drive (not started)" in text, text[-3000:]
    assert "to re-drive (by a person):" in text and all(a in text for a in everything)
    assert "left for a person: re-drive the executions listed above" in text
    [final] = [r["msg"] for r in records(resumed) if r["event"] == "note" and r["msg"].startswith("Pipeline resumed")]
    assert all(a in final for a in everything)
    resolutions = lifecycle(resumed, "resolved", real=True)
    assert len(resolutions) == 1, ([e["event"] for e in lifecycle(resumed, real=True)], resumed.stdout[-6000:])
    [resolved] = resolutions
    assert "4 execution(s) to re-drive by hand" in resolved["summary"], resolved["summary"]
    assert "check(s) passed" in resolved["summary"]
    [verified] = [
        r
        for r in records(resumed)[seen:]
        if r["action"] == "firebreak.runbooks.health_verify" and r["event"] in ("task_ok", "task_changed")
    ]
    assert {c["kind"] for c in verified["details"]["checks"]} == {"batch", "stepfunctions"}
    assert all(c["verdict"] == "pass" for c in verified["details"]["checks"])
    assert all(a in report.read_text() for a in everything)


def test_production_without_approval_stops_before_the_pause(aws, run_playbook):
    context = drill.inject(aws)
    before = pipeline(aws)
    aws.proxy.clear_log()
    run = run_playbook(drill.PLAYBOOK, extra_vars=extra_vars(context, firebreak_environment="production"))
    assert run.returncode != 0
    text = " ".join(run.stdout.split())
    assert "gate pipeline-pause not confirmed (approval_required in production): nothing was changed" in text, text[
        -3000:
    ]
    assert "firebreak_gate_approvals" in text
    assert mutating_calls(aws, MUTATING, services=SERVICES) == [] and pipeline(aws) == before
    assert not any(
        r["action"] == "firebreak.runbooks.stepfunctions_batch_pause" and not r.get("check_mode")
        for r in records(run)
        if r["event"] in ("task_changed", "task_ok")
    )


def test_bad_input_and_a_healthy_pipeline_are_refused_before_any_change(aws, run_playbook):
    before, whole = pipeline(aws), snapshot(aws)
    aws.proxy.clear_log()
    bad = run_playbook(drill.PLAYBOOK, extra_vars={"pipeline_incident_job_queue": "results queue!"})
    assert bad.returncode != 0 and "Traceback" not in bad.output
    assert 'pipeline_incident_job_queue "results queue!" is not a Batch job queue name' in " ".join(bad.output.split())
    assert aws.proxy.log() == []

    # the seeded executions are RUNNING, none failed in the window and the queue has no backlog: refused
    since = drill.datetime.now(drill.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    run = run_playbook(drill.PLAYBOOK, extra_vars={"pipeline_incident_since": since})
    assert run.returncode != 0
    text = " ".join(run.stdout.split())
    assert "results-pipeline / results-queue does not look broken:" in text, text[-3000:]
    assert "0 RUNNABLE job(s)" in text and "Nothing was changed." in text
    assert "-e pipeline_incident_force=true -e pipeline_incident_force_reason=" in text
    assert (
        mutating_calls(aws, MUTATING, services=SERVICES) == []
        and pipeline(aws) == before
        and differences(whole, snapshot(aws)) == []
    )
    assert lifecycle(run, "resolved", real=True) == []
