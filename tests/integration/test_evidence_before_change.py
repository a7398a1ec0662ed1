"""Evidence before the change (docs/frame.md): for each scenario that copies evidence before it contains, a permanent
500 on the evidence PutObject stops the run before anything is changed, with a failed step naming the call, the code
and the evidence object in the timeline and a message saying how to proceed; `evidence_optional_reason` goes on
without the copy and records its reason (timeline and report); once the bucket recovers, a re-run of the same
incident copies the evidence and reaches the end state of an undisturbed run.

Proof (``make proof``): four scenario runs per scenario (about 4-6 minutes each with -n 2). The cheap case in
``make test`` is tests/integration/test_role_evidence_capture.py::test_a_failed_copy_stops_and_the_override_goes_on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.drills import credential_compromise, security_breach
from tests.integration.proof_faults import support as ps
from tests.integration.snapshot import differences, snapshot

pytestmark = [pytest.mark.proof, pytest.mark.integration]

# Every scenario whose evidence copy protects a change (the others are listed in docs/frame.md with why not).
SCENARIOS = {"credential_compromise": credential_compromise, "security_breach": security_breach}
BUDGET = 6  # the copy's retry budget in these runs (seconds): a permanent 500 fails within it
REASON = "active compromise: the attacker is still using the key, containment cannot wait for the bucket"


def extra_vars(context: dict, **more) -> dict:
    return {
        **{k: v for k, v in context.items() if not k.startswith("_")},
        "evidence_capture_retry_budget": BUDGET,
        **more,
    }


def put_500(aws, bucket: str) -> str:
    """The evidence upload (PutObject under the incidents' prefix) answering 500 for ever; claims and seals aside."""
    return aws.proxy.add_rule(
        {"service": "s3", "method": "PUT", "path": f"^/{bucket}/incidents/", "fault": "error", "status": 500}
    )


def records(timeline: Path) -> list[dict]:
    return [json.loads(line) for line in timeline.read_text().splitlines()] if timeline.exists() else []


def evidence_keys(aws, bucket: str) -> list[str]:
    pages = aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="incidents/")
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def comparable(state: dict) -> dict:
    """An end state whose secret versions are in no particular order: their ids (normalized away) ordered them."""
    out = dict(state)
    if isinstance(out.get("secretsmanager"), list):
        out["secretsmanager"] = [
            (name, sorted(versions, key=repr) if isinstance(versions, list) else versions)
            for name, versions in out["secretsmanager"]
        ]
    return out


def fresh(aws, drill) -> dict:
    aws.reset_aws()
    aws.reset_kubernetes()
    return drill.inject(aws)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xdist_group(f"evidence-{n}")) for n in SCENARIOS])
def test_a_failed_evidence_copy_stops_before_the_change_and_a_rerun_recovers(name, aws, kube, run_playbook, tmp_path):
    drill = SCENARIOS[name]

    # the undisturbed run: its end state is what the recovered re-run must reach
    context = fresh(aws, drill)
    bucket = context["_drill"]["evidence_bucket"]
    base = run_playbook(
        drill.PLAYBOOK,
        extra_vars=extra_vars(context),
        timeline=tmp_path / "base" / "timeline.jsonl",
        env={"FIREBREAK_INCIDENT_ID": f"INC-PROOF-EVB-{name}"},
    )
    assert base.returncode == 0, base.output[-4000:]
    undisturbed = ps.end_state(aws)

    # a permanent 500 on the evidence PutObject: the run stops before the change, nothing changed
    context = fresh(aws, drill)
    before = snapshot(aws)
    rule = put_500(aws, bucket)
    timeline = tmp_path / "incident" / "timeline.jsonl"
    incident = {"FIREBREAK_INCIDENT_ID": f"INC-PROOF-EVF-{name}"}
    failed = run_playbook(drill.PLAYBOOK, extra_vars=extra_vars(context), timeline=timeline, env=incident)
    assert failed.returncode != 0, f"{name} went on although the evidence PutObject always answered 500"
    assert differences(before, snapshot(aws)) == [], differences(before, snapshot(aws))
    done = records(timeline)
    [step] = [r for r in done if r["event"] == "task_failed" and (r.get("details") or {}).get("aws_operation")]
    details = step["details"]
    assert (details["aws_operation"], details["aws_error_code"]) == ("PutObject", "InternalError"), details
    assert details["resource"].startswith(f"s3://{bucket}/incidents/INC-PROOF-EVF-{name}/s3/"), details
    [stop] = [r for r in done if r["event"] == "task_failed" and "Evidence not preserved" in (r.get("msg") or "")]
    text = " ".join(stop["msg"].split())
    for said in (
        "PutObject answered InternalError for s3://" + bucket,
        "was not started; nothing was changed",
        "fix the evidence bucket",
        "-e evidence_optional_reason=",
    ):
        assert said in text, (said, text)
    assert "Active compromise and containment cannot wait?" in text
    assert not [r for r in done if r["event"] == "task_changed"], [
        r["task"] for r in done if r["event"] == "task_changed"
    ]
    assert not [r for r in done if (r.get("details") or {}).get("lifecycle", {}).get("event") == "resolved"]

    # the bucket recovers: a re-run of the same incident copies the evidence and ends as the undisturbed run did
    aws.proxy.remove_rule(rule)
    again = run_playbook(drill.PLAYBOOK, extra_vars=extra_vars(context), timeline=timeline, env=incident)
    assert again.returncode == 0, again.output[-4000:]
    drill.verify(aws, context)
    assert ps.state_differences(comparable(undisturbed), comparable(ps.end_state(aws))) == []


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xdist_group(f"evidence-{n}")) for n in SCENARIOS])
def test_the_override_contains_without_the_copy_and_records_why(name, aws, kube, run_playbook, tmp_path):
    drill = SCENARIOS[name]
    context = fresh(aws, drill)
    facts = context["_drill"]
    bucket = facts["evidence_bucket"]
    before = drill.state(aws, facts)
    put_500(aws, bucket)
    run = run_playbook(
        drill.PLAYBOOK,
        extra_vars=extra_vars(context, evidence_optional_reason=REASON),
        env={"FIREBREAK_INCIDENT_ID": f"INC-PROOF-EVO-{name}"},  # short: the deny policy's name carries it
    )
    assert run.returncode == 0, run.output[-4000:]
    after = drill.state(aws, facts)
    assert after != before  # contained
    assert after["keys"] and {status for _key, status in after["keys"]} == {"Inactive"}, after
    assert evidence_keys(aws, bucket) == []  # nothing could be copied
    done = records(run.timeline)
    notes = [r for r in done if r["event"] == "note" and "evidence_optional_reason" in (r.get("msg") or "")]
    assert notes and REASON in notes[0]["msg"] and "PutObject answered InternalError" in notes[0]["msg"], notes
    first_change = next(i for i, r in enumerate(done) if r["event"] == "task_changed" and not r.get("check_mode"))
    assert done.index(notes[0]) < first_change  # the decision is recorded before the change it lets through
    report = run.timeline.with_name("report.md").read_text()
    assert REASON in report
    assert "copy the evidence NOT preserved" in " ".join(run.stdout.split())
