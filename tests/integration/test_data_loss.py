"""The data_loss scenario (S3 path) end to end on the incident frame: inject the drill's fault, run the runbook,
verify the restored bytes and the integrity check in moto, the lifecycle records, the refusal without a symptom,
bad input, --check, the production gate before the write freeze, and a re-run that changes nothing."""

from __future__ import annotations

import json
import time

import pytest

from sandbox.drills import data_loss

pytestmark = [pytest.mark.integration, pytest.mark.drill]
BUCKET = data_loss.BUCKET


def extra_vars(context: dict, **more) -> dict:
    return {**{key: value for key, value in context.items() if not key.startswith("_")}, **more}


def records(run) -> list[dict]:
    return [json.loads(line) for line in run.timeline.read_text().splitlines()]


def lifecycle(run, event=None) -> list[dict]:
    found = []
    for rec in records(run):
        entry = (rec.get("details") or {}).get("lifecycle") if isinstance(rec.get("details"), dict) else None
        if rec.get("action") == "firebreak.runbooks.incident_lifecycle" and entry and event in (None, entry["event"]):
            found.append(dict(entry, _check_mode=rec.get("check_mode")))
    return found


def bucket_state(aws) -> dict:
    """Every version and delete marker of the uploads bucket, and its policy."""
    s3 = aws.client("s3")
    listing = s3.list_object_versions(Bucket=BUCKET)
    return {
        "versions": sorted((v["Key"], v["VersionId"], v["IsLatest"]) for v in listing.get("Versions", [])),
        "markers": sorted((m["Key"], m["VersionId"], m["IsLatest"]) for m in listing.get("DeleteMarkers", [])),
        "frozen_by": data_loss.frozen_by(s3, BUCKET),
    }


def writes(aws) -> list[tuple[str, str]]:
    """Mutating S3 calls on the uploads bucket (the report's seal may write to the evidence bucket)."""
    return [
        (e["method"], e["path"])
        for e in aws.proxy.log()
        if e["service"] == "s3" and e["method"] not in ("GET", "HEAD") and BUCKET in (e.get("path") or "")
    ]


def test_scenario_restores_the_objects_checks_integrity_and_a_rerun_changes_nothing(aws, run_playbook):
    context = data_loss.inject(aws)
    with pytest.raises(AssertionError, match=r"uploads/avatar\.png is still deleted"):
        data_loss.verify(aws, context)

    run = run_playbook(data_loss.PLAYBOOK, extra_vars=extra_vars(context))
    assert run.returncode == 0, run.output[-4000:]
    data_loss.verify(aws, context)
    assert "integrity check passed on s3://firebreak-sandbox-uploads: 3 object(s) under" in run.stdout
    assert "2 required key(s) present" in run.stdout
    assert "left for a person:" in run.stdout
    # the key written after the time stays (reported, not hidden)
    assert aws.client("s3").get_object(Bucket=BUCKET, Key=data_loss.CREATED)["Body"].read() == b"junk"

    declared, resolved = lifecycle(run, "declared"), lifecycle(run, "resolved")
    assert [(d["severity"], d["type"]) for d in declared] == [("P1", "data_loss")]
    assert declared[0]["services"] == [BUCKET]
    assert [r["status"] for r in resolved] == ["resolved"]
    assert "integrity check passed" in resolved[0]["summary"]
    [restore] = [
        r
        for r in records(run)
        if r["action"] == "firebreak.runbooks.s3_object_restore"
        and r["event"] == "task_changed"
        and not r.get("check_mode")
    ]
    assert restore["details"]["counts"]["remove_delete_marker"] == 1 and restore["details"]["counts"]["copy"] == 1
    assert run.timeline.with_name("report.md").is_file()

    state, seen = bucket_state(aws), len(records(run))
    aws.proxy.clear_log()
    again = run_playbook(data_loss.PLAYBOOK, extra_vars=extra_vars(context))
    assert again.returncode == 0, again.output[-4000:]
    changed = [r["action"] for r in records(again)[seen:] if r["event"] == "task_changed"]
    assert changed == ["firebreak.runbooks.incident_report"], changed
    assert bucket_state(aws) == state and writes(aws) == []


def test_no_loss_since_the_time_is_refused_then_forced_with_a_recorded_reason(aws, run_playbook):
    before = bucket_state(aws)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    variables = {"data_loss_prefix": "uploads/", "data_loss_since": since, "data_loss_freeze_writes": False}
    aws.proxy.clear_log()
    run = run_playbook(data_loss.PLAYBOOK, extra_vars=variables)
    assert run.returncode != 0
    text = " ".join(run.stdout.split())
    assert f"No object was deleted or overwritten since {since}; nothing was changed" in text, text[-3000:]
    assert "-e data_loss_force=true -e data_loss_force_reason=" in text
    assert bucket_state(aws) == before and writes(aws) == []
    assert not lifecycle(run, "resolved")

    reason = "the data owner says rows are wrong; the versions do not show it"
    forced = run_playbook(
        data_loss.PLAYBOOK, extra_vars={**variables, "data_loss_force": True, "data_loss_force_reason": reason}
    )
    assert forced.returncode == 0, forced.output[-4000:]
    notes = [r["msg"] for r in records(forced) if r["event"] == "note" and "forced by the operator" in (r["msg"] or "")]
    assert notes and reason in notes[0]
    assert bucket_state(aws) == before  # nothing to restore: the force changes nothing here


def test_bad_input_stops_before_any_call(aws, run_playbook):
    context = data_loss.inject(aws)
    before = bucket_state(aws)
    for extra, message in (
        ({"data_loss_bucket": "Bad_Bucket!"}, 'data_loss_bucket "Bad_Bucket!" is not an S3 bucket name'),
        ({"data_loss_since": "yesterday"}, 'data_loss_since "yesterday" is not a point in time'),
        ({"data_loss_whole_bucket": True}, "Give exactly one of data_loss_prefix, data_loss_keys"),
        ({"data_loss_force": True}, "data_loss_force needs a reason"),
        ({"data_loss_severity": "P9"}, "data_loss_severity"),
    ):
        aws.proxy.clear_log()
        run = run_playbook(data_loss.PLAYBOOK, extra_vars=extra_vars(context, **extra))
        assert run.returncode != 0, extra
        assert message in " ".join(run.output.split()), (extra, run.output[-2000:])
        assert "Traceback" not in run.output
        assert aws.proxy.log() == [] and bucket_state(aws) == before


def test_check_mode_with_the_freeze_changes_nothing_and_shows_the_plan(aws, run_playbook):
    context = data_loss.inject(aws)
    before = bucket_state(aws)
    aws.proxy.clear_log()
    run = run_playbook(
        data_loss.PLAYBOOK, extra_vars=extra_vars(context, data_loss_freeze_writes=True), check=True, diff=True
    )
    assert run.returncode == 0, run.output[-4000:]
    assert bucket_state(aws) == before and writes(aws) == []
    assert "DRY RUN, nothing changed." in run.stdout
    assert "1 key(s) deleted, 1 overwritten, 1 created after" in " ".join(run.stdout.split())
    assert "firebreak.runbooks.s3_write_freeze" in run.stdout or "s3_write_freeze" in run.stdout
    assert all(e["_check_mode"] for e in lifecycle(run))
    assert not run.timeline.with_name("report.md").exists()


def test_production_without_approval_stops_before_the_write_freeze(aws, run_playbook):
    context = data_loss.inject(aws)
    before = bucket_state(aws)
    aws.proxy.clear_log()
    run = run_playbook(
        data_loss.PLAYBOOK,
        extra_vars=extra_vars(context, data_loss_freeze_writes=True, firebreak_environment="production"),
    )
    assert run.returncode != 0
    text = " ".join(run.stdout.split())
    assert "gate data-loss-write-freeze not confirmed (approval_required in production): nothing was changed" in text
    assert bucket_state(aws) == before and writes(aws) == []


def test_the_freeze_is_placed_before_the_restore(aws, run_playbook):
    """With the freeze (the default) the Deny statement is in the bucket policy before the restore's first call.
    The sandbox then refuses the restore's own writes (docs/sandbox.md "S3 bucket policies": no principal in the
    request context, so the caller's exemption is not seen); AWS exempts the caller. The run stops there with the
    freeze in place, saying so."""
    context = data_loss.inject(aws)
    run = run_playbook(data_loss.PLAYBOOK, extra_vars=extra_vars(context, data_loss_freeze_writes=True))
    assert data_loss.frozen_by(aws.client("s3"), BUCKET), run.output[-3000:]
    actions = [
        r["action"] for r in records(run) if r["event"] in ("task_changed", "task_failed") and not r.get("check_mode")
    ]
    assert actions.index("firebreak.runbooks.s3_write_freeze") < actions.index("firebreak.runbooks.s3_object_restore")
    [entry] = [
        r for r in records(run) if r["action"] == "firebreak.runbooks.s3_write_freeze" and r["event"] == "task_changed"
    ]
    assert entry["details"]["containment"], entry["details"]
    assert run.returncode != 0 and "403" in run.stdout  # the sandbox gap, above
