"""s3_evidence_copy against the sandbox: every object copied with its SHA-256, idempotent, check mode."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/evidence_capture/copy.yml"
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
INCIDENT = "INC-EVIDENCE-1"


def result_of(run, task="Copy") -> dict:
    data = json.loads(run.stdout[run.stdout.index("{") :])
    for play in data["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                return entry["hosts"]["localhost"]
    raise AssertionError(f"task {task!r} not in the output:\n{run.output[-3000:]}")


def copy(aws, run_playbook, check=False, diff=False, **options):
    seed = aws.manifest["aws"]["evidence"]
    options.setdefault("source_bucket", seed["log_bucket"])
    options.setdefault("evidence_bucket", aws.manifest["aws"]["s3"]["evidence_bucket"])
    options.setdefault("incident_id", INCIDENT)
    extra = {f"copy_{key}": value for key, value in options.items()}
    run = run_playbook(PLAYBOOK, extra_vars=extra, check=check, diff=diff, env=JSON_OUTPUT)
    return run, result_of(run)


def evidence_keys(aws) -> list[str]:
    bucket = aws.manifest["aws"]["s3"]["evidence_bucket"]
    return sorted(o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=bucket).get("Contents", []))


def puts(aws) -> list[str]:
    return [e["action"] for e in aws.proxy.log() if e["method"] in ("PUT", "POST", "DELETE") and e["service"] == "s3"]


def test_check_mode_lists_what_would_be_copied_and_copies_nothing(aws, run_playbook):
    seed = aws.manifest["aws"]["evidence"]
    aws.proxy.clear_log()
    run, result = copy(aws, run_playbook, check=True, diff=True, source_prefix=seed["cloudtrail_prefix"])
    assert run.returncode == 0, run.output
    assert result["changed"] is True and "would copy 3 of 3" in result["msg"]
    assert [o["copied"] for o in result["objects"]] == [True, True, True]
    assert len(result["diff"]["after"]["evidence_keys"]) == 3
    assert evidence_keys(aws) == []
    assert not puts(aws), puts(aws)


def test_copy_records_every_object_sha256_and_a_rerun_copies_nothing(aws, run_playbook):
    seed = aws.manifest["aws"]["evidence"]
    bucket = aws.manifest["aws"]["s3"]["evidence_bucket"]
    s3 = aws.client("s3")
    run, result = copy(aws, run_playbook, concurrency=4)
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert {o["key"]: o["size"] for o in result["objects"]} == seed["log_objects"]
    for obj in result["objects"]:
        source = s3.get_object(Bucket=seed["log_bucket"], Key=obj["key"])["Body"].read()
        stored = s3.get_object(Bucket=bucket, Key=obj["dest_key"])
        body = stored["Body"].read()
        assert body == source
        assert hashlib.sha256(body).hexdigest() == obj["sha256"]
        assert stored["Metadata"]["firebreak-sha256"] == obj["sha256"]
        assert stored["Metadata"]["firebreak-incident"] == INCIDENT
        assert obj["dest_key"] == f"incidents/{INCIDENT}/s3/{seed['log_bucket']}/{obj['key']}"
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=result["manifest"]["key"])["Body"].read())
    assert {o["key"]: o["sha256"] for o in manifest["objects"]} == {o["key"]: o["sha256"] for o in result["objects"]}

    # the timeline holds every object's size and SHA-256
    records = [json.loads(line) for line in run.timeline.read_text().splitlines()]
    details = next(r["details"] for r in records if r.get("action") == "firebreak.runbooks.s3_evidence_copy")
    assert {o["key"]: (o["size"], o["sha256"]) for o in details["objects"]} == {
        o["key"]: (o["size"], o["sha256"]) for o in result["objects"]
    }

    keys = evidence_keys(aws)
    aws.proxy.clear_log()
    run, again = copy(aws, run_playbook)
    assert run.returncode == 0, run.output
    assert again["changed"] is False, again["msg"]
    assert [o["copied"] for o in again["objects"]] == [False] * len(seed["log_objects"])
    assert {o["key"]: o["sha256"] for o in again["objects"]} == {o["key"]: o["sha256"] for o in result["objects"]}
    assert evidence_keys(aws) == keys
    assert not puts(aws), puts(aws)


def test_a_source_object_changed_since_is_copied_again(aws, run_playbook):
    seed = aws.manifest["aws"]["evidence"]
    run, _first = copy(aws, run_playbook, source_prefix=seed["access_log_prefix"])
    assert run.returncode == 0, run.output
    key = sorted(seed["log_objects"])[-1]
    aws.client("s3").put_object(Bucket=seed["log_bucket"], Key=key, Body=b"rewritten by the attacker\n")
    run, second = copy(aws, run_playbook, source_prefix=seed["access_log_prefix"])
    assert run.returncode == 0, run.output
    copied = [o["key"] for o in second["objects"] if o["copied"]]
    assert copied == [key]
    assert second["objects"][-1]["sha256"] == hashlib.sha256(b"rewritten by the attacker\n").hexdigest()


@first_case_in_make_test
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"source_bucket": "no-such-log-bucket"}, "S3 bucket 'no-such-log-bucket' does not exist"),
        ({"evidence_bucket": "no-such-evidence"}, "S3 bucket 'no-such-evidence' does not exist"),
        ({"evidence_bucket": "Bad_Bucket"}, "evidence_bucket: 'Bad_Bucket' is not a valid S3 bucket name"),
        ({"max_objects": 2}, "more than max_objects=2 objects"),
        ({"modified_after": "yesterday"}, "modified_after: unparseable time 'yesterday'"),
    ],
    ids=["no-source", "no-evidence", "bad-name", "too-many", "bad-time"],
)
def test_bad_input_fails_naming_the_value_and_copies_nothing(aws, run_playbook, options, expected):
    aws.proxy.clear_log()
    run, result = copy(aws, run_playbook, **options)
    assert run.returncode != 0
    assert expected in result["msg"], result["msg"]
    assert evidence_keys(aws) == []
    assert not puts(aws), puts(aws)


def test_time_window_selects_objects(aws, run_playbook):
    run, result = copy(aws, run_playbook, check=True, modified_before="2001-01-01T00:00:00Z")
    assert run.returncode == 0, run.output
    assert result["objects"] == [] and result["changed"] is False


@pytest.mark.proof
def test_permanent_5xx_fails_fast_naming_the_call_and_the_code(aws, run_playbook):
    rule = aws.proxy.add_rule(
        {"service": "s3", "method": "GET", "fault": "error", "status": 500, "code": "InternalError"}
    )
    started = time.monotonic()
    run, result = copy(aws, run_playbook, retry_budget=8)
    assert run.returncode != 0
    assert time.monotonic() - started < 60
    assert "ListObjectsV2 failed" in result["msg"] and "InternalError" in result["msg"], result["msg"]
    aws.proxy.remove_rule(rule)
    assert evidence_keys(aws) == []


def test_a_permanent_5xx_on_the_upload_fails_naming_putobject_the_code_and_the_bucket(aws, run_playbook):
    bucket = aws.manifest["aws"]["s3"]["evidence_bucket"]
    path = f"^/{bucket}/incidents/"
    rule = aws.proxy.add_rule({"service": "s3", "method": "PUT", "path": path, "fault": "error", "status": 500})
    run, result = copy(aws, run_playbook, retry_budget=4)
    aws.proxy.remove_rule(rule)
    assert run.returncode != 0
    assert (result["aws_operation"], result["aws_error_code"]) == ("PutObject", "InternalError"), result
    assert result["resource"].startswith(f"s3://{bucket}/incidents/{INCIDENT}/"), result["resource"]
    assert result["attempts"] >= 1 and result["changed"] is False
    assert result["failed_objects"] and all("PutObject" in f["error"] for f in result["failed_objects"])
    assert "could not be copied" in result["msg"] and "PutObject" in result["msg"], result["msg"]
    assert evidence_keys(aws) == []
