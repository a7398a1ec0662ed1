"""s3_object_restore against the sandbox (moto behind the fault proxy).

Every test asserts object bodies and version lists read back from moto, not only what the module said.
"""

from __future__ import annotations

import datetime
import json
import time

import pytest

from sandbox import s3_history
from sandbox.s3_history import UNICODE_KEY
from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

RESTORE = "tests/integration/playbooks/s3/restore.yml"
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
BUCKET = "restore-test"


def result_of(run, task: str = "Restore") -> dict:
    data = json.loads(run.stdout[run.stdout.index("{") :])
    for play in data["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                return entry["hosts"]["localhost"]
    raise AssertionError(f"task {task!r} not in the output:\n{run.output[-3000:]}")


def restore(run_playbook, check=False, diff=False, env=None, **options):
    extra = {f"s3_{key}": value for key, value in options.items()}
    extra.setdefault("s3_bucket", BUCKET)
    run = run_playbook(RESTORE, extra_vars=extra, check=check, diff=diff, env={**JSON_OUTPUT, **(env or {})})
    return run, result_of(run)


def s3_calls(aws, since=0):
    """(method, path) of every S3 request through the proxy after ``since`` (a log seq)."""
    return [(e["method"], e["path"]) for e in aws.proxy.log() if e["service"] == "s3" and e["seq"] > since]


def mutating(aws, since=0):
    return [c for c in s3_calls(aws, since) if c[0] in ("PUT", "POST", "DELETE")]


def mark(aws) -> int:
    log = aws.proxy.log()
    return log[-1]["seq"] if log else 0


@pytest.fixture
def history(aws):
    s3 = aws.client("s3")
    s3_history.versioned_bucket(s3, BUCKET)
    built = s3_history.build_docs_history(s3, BUCKET)
    built["s3"] = s3
    return built


def test_check_mode_returns_the_full_plan_and_changes_nothing(aws, history, run_playbook):
    s3 = history["s3"]
    before = s3_history.version_list(s3, BUCKET)
    seq = mark(aws)
    run, result = restore(run_playbook, check=True, diff=True, prefix="docs/", time=history["time"])
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert result["counts"] == {
        "unchanged": 2,
        "remove_delete_marker": 1,
        "copy": 4,
        "absent_at_time": 1,
        "add_delete_marker": 0,
        "needs_restore_request": 0,
        "missing": 0,
    }, result["counts"]
    plans = {p["key"]: p for p in result["actions"]}
    assert plans["docs/deleted.txt"]["action"] == "remove_delete_marker"
    assert len(plans["docs/deleted.txt"]["delete_markers"]) == 2
    assert plans["docs/recreated.txt"]["action"] == "copy"
    assert "recreated and deleted again" in plans["docs/recreated.txt"]["reason"]
    assert plans["docs/recreated.txt"]["restore_version"]["version_id"] == history["versions"]["docs/recreated.txt"][0]
    assert plans["docs/new.txt"]["action"] == "absent_at_time"
    assert set(plans) == {
        "docs/a.txt",
        "docs/a.txt.bak",
        "docs/deleted.txt",
        "docs/recreated.txt",
        UNICODE_KEY,
        "docs/new.txt",
    }
    assert "docs/a.txt" in result["diff"]["before"]
    assert "check mode" in result["msg"]
    assert s3_history.version_list(s3, BUCKET) == before
    assert mutating(aws, seq) == []


def test_restore_prefix_in_place_then_rerun_is_a_no_op(aws, history, run_playbook):
    s3 = history["s3"]
    run, result = restore(run_playbook, prefix="docs/", time=history["time"])
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert result["counts"]["copy"] == 4 and result["counts"]["remove_delete_marker"] == 1
    assert result["errors"] == []
    for key, expected in history["expected"].items():
        if key == "docs/new.txt":
            assert s3_history.body(s3, BUCKET, key) == b"N2", "absent_at_time keys are left alone by default"
        else:
            assert s3_history.body(s3, BUCKET, key) == expected, key
    versions = s3_history.version_list(s3, BUCKET)
    # the deleted key: both markers removed, its old data version current again, nothing else touched
    assert versions["docs/deleted.txt"] == [(history["versions"]["docs/deleted.txt"][0], False)]
    # recreated and deleted again: the copy is a new version on top; R2 and the markers stay in history
    assert len(versions["docs/recreated.txt"]) == 5 and versions["docs/recreated.txt"][0][1] is False
    # metadata, content type and tags of the version of that time
    head = s3.head_object(Bucket=BUCKET, Key="docs/a.txt")
    assert head["ContentType"] == "text/plain" and head["Metadata"] == {"rev": "1"}
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=BUCKET, Key="docs/a.txt")["TagSet"]}
    assert tags == {"state": "good", "owner": "shop"}
    assert s3.head_object(Bucket=BUCKET, Key="docs/deleted.txt")["ContentType"] == "text/csv"
    assert result["after"]["present"] == 7 and result["before"]["present"] == 5

    seq = mark(aws)
    run, again = restore(run_playbook, prefix="docs/", time=history["time"])
    assert run.returncode == 0, run.output
    assert again["changed"] is False, again["actions"]
    assert again["counts"]["unchanged"] == 7 and again["counts"]["absent_at_time"] == 1
    assert mutating(aws, seq) == []
    assert s3_history.version_list(s3, BUCKET) == versions


def whole_bucket_history(s3, bucket: str) -> tuple[str, dict[str, bytes]]:
    """Keys under several prefixes and at the top level; after the time a third is overwritten ("encrypted"),
    a third deleted, and ransom notes created.  Returns (time, {key: body at the time})."""
    good = {}
    for prefix in ("uploads/", "reports/2026/", "img/", ""):
        for n in range(12):
            key = f"{prefix}file-{n:02d}.dat"
            good[key] = f"good {key}".encode()
            s3_history.put(s3, bucket, key, good[key])
    at = s3_history.split()
    for i, key in enumerate(sorted(good)):
        if i % 3 == 0:
            s3_history.put(s3, bucket, key, b"ENCRYPTED " + good[key][::-1])
        elif i % 3 == 1:
            s3_history.delete(s3, bucket, key)
    for note in ("README-RANSOM.txt", "uploads/README-RANSOM.txt"):
        s3_history.put(s3, bucket, note, b"pay up")
    return at, good


def test_whole_bucket_check_then_restore_then_rerun_changes_nothing(aws, run_playbook):
    s3 = aws.client("s3")
    s3_history.versioned_bucket(s3, BUCKET)
    at, good = whole_bucket_history(s3, BUCKET)
    versions = s3_history.version_list(s3, BUCKET)
    expected_counts = {"copy": 16, "remove_delete_marker": 16, "unchanged": 16, "add_delete_marker": 2}

    seq = mark(aws)
    run, planned = restore(run_playbook, check=True, whole_bucket=True, delete_absent=True, time=at)
    assert run.returncode == 0, run.output
    assert planned["changed"] is True
    assert {k: n for k, n in planned["counts"].items() if n} == expected_counts, planned["counts"]
    assert "would restore 34 of 50 key(s) in restore-test (the whole bucket)" in planned["msg"], planned["msg"]
    assert mutating(aws, seq) == []
    assert s3_history.version_list(s3, BUCKET) == versions

    run, result = restore(run_playbook, whole_bucket=True, delete_absent=True, time=at)
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["errors"] == []
    assert {k: n for k, n in result["counts"].items() if n} == expected_counts, result["counts"]
    for key, body in good.items():
        assert s3_history.body(s3, BUCKET, key) == body, key
    for note in ("README-RANSOM.txt", "uploads/README-RANSOM.txt"):
        assert s3_history.body(s3, BUCKET, note) is None, note
        assert len(s3_history.version_list(s3, BUCKET, note)[note]) == 2  # hidden, its data kept
    assert result["before"]["present"] == 34 and result["after"]["present"] == 48
    restored = s3_history.version_list(s3, BUCKET)

    seq = mark(aws)
    run, again = restore(run_playbook, whole_bucket=True, delete_absent=True, time=at)
    assert run.returncode == 0, run.output
    assert again["changed"] is False, again["actions"]
    assert again["counts"]["unchanged"] == 50
    assert mutating(aws, seq) == []
    assert s3_history.version_list(s3, BUCKET) == restored


def test_exact_keys_only_and_unchanged_keys_cost_no_call(aws, history, run_playbook):
    s3 = history["s3"]
    seq = mark(aws)
    run, result = restore(run_playbook, keys=["docs/a.txt", UNICODE_KEY, "docs/unchanged.txt"], time=history["time"])
    assert run.returncode == 0, run.output
    assert result["counts"]["copy"] == 2 and result["counts"]["unchanged"] == 1
    assert s3_history.body(s3, BUCKET, "docs/a.txt") == b"A1"
    assert s3_history.body(s3, BUCKET, UNICODE_KEY) == b"U1"
    assert s3_history.body(s3, BUCKET, "docs/a.txt.bak") == b"BAK2", "a.txt must never restore a.txt.bak"
    writes = mutating(aws, seq)
    assert len(writes) == 2, writes  # one CopyObject per changed key, none for the unchanged one
    assert not any("unchanged" in path for _, path in s3_calls(aws, seq) if True), "no call names the unchanged key"


def test_delete_absent_puts_a_marker_on_keys_created_after_the_time(aws, history, run_playbook):
    s3 = history["s3"]
    run, result = restore(
        run_playbook, keys=["docs/new.txt", "docs/gone-before.txt"], time=history["time"], delete_absent=True
    )
    assert run.returncode == 0, run.output
    assert result["counts"]["add_delete_marker"] == 1 and result["counts"]["unchanged"] == 1
    assert s3_history.body(s3, BUCKET, "docs/new.txt") is None
    assert [marker for _, marker in s3_history.version_list(s3, BUCKET, "docs/new.txt")["docs/new.txt"]] == [
        True,
        False,
    ]


def test_restore_into_another_prefix_leaves_the_source_alone(aws, history, run_playbook):
    s3 = history["s3"]
    source_before = s3_history.version_list(s3, BUCKET, "docs/")
    run, result = restore(run_playbook, prefix="docs/", time=history["time"], target_prefix="check/docs/")
    assert run.returncode == 0, run.output
    assert result["target"] == {"bucket": BUCKET, "prefix": "check/docs/"}
    assert s3_history.version_list(s3, BUCKET, "docs/") == source_before
    for key, expected in history["expected"].items():
        assert s3_history.body(s3, BUCKET, "check/" + key) == expected, key
    assert s3.head_object(Bucket=BUCKET, Key="check/docs/a.txt")["Metadata"] == {"rev": "1"}
    run, again = restore(run_playbook, prefix="docs/", time=history["time"], target_prefix="check/docs/")
    assert run.returncode == 0 and again["changed"] is False, again


def test_restore_into_another_bucket(aws, history, run_playbook):
    s3 = history["s3"]
    s3.create_bucket(Bucket="restore-check")
    run, _ = restore(
        run_playbook, keys=["docs/a.txt", "docs/deleted.txt"], time=history["time"], target_bucket="restore-check"
    )
    assert run.returncode == 0, run.output
    assert s3_history.body(s3, "restore-check", "docs/a.txt") == b"A1"
    assert s3_history.body(s3, "restore-check", "docs/deleted.txt") == b"D1"
    assert s3_history.body(s3, BUCKET, "docs/deleted.txt") is None, "the source stays deleted"


def test_pagination_a_page_of_delete_markers_only_and_a_boundary_inside_one_keys_versions(aws, run_playbook):
    """docs/0-deleted was deleted 1000 times: the first page (1000 entries) holds only its delete markers,
    its data version is on the second page, and docs/a.txt after it must still be restored."""
    s3 = aws.client("s3")
    s3_history.versioned_bucket(s3, BUCKET)
    s3_history.put(s3, BUCKET, "docs/0-deleted", b"gone")
    s3_history.delete_many_times(s3, BUCKET, "docs/0-deleted", 1000)
    v1 = s3_history.put(s3, BUCKET, "docs/a.txt", b"A1")
    at = s3_history.split()
    s3_history.put(s3, BUCKET, "docs/a.txt", b"A2")
    first = s3.list_object_versions(Bucket=BUCKET, Prefix="docs/")
    assert first["IsTruncated"] and not first.get("Versions"), "precondition: a page of delete markers only"
    assert first["NextKeyMarker"] == "docs/0-deleted", "precondition: the page ends inside one key's versions"
    run, result = restore(run_playbook, prefix="docs/", time=at, wait=False)
    assert run.returncode == 0, run.output
    assert result["list_calls"] == 2
    assert result["counts"]["copy"] == 1 and result["counts"]["unchanged"] == 1
    [plan] = result["actions"]
    assert plan["key"] == "docs/a.txt" and plan["restore_version"]["version_id"] == v1
    assert s3_history.body(s3, BUCKET, "docs/a.txt") == b"A1"
    assert s3_history.body(s3, BUCKET, "docs/0-deleted") is None


def test_multipart_copy_above_a_lowered_threshold_keeps_metadata_and_tags(aws, run_playbook):
    s3 = aws.client("s3")
    s3_history.versioned_bucket(s3, BUCKET)
    big = bytes(range(256)) * (11 * 4096)  # 11 MiB
    s3_history.put(
        s3, BUCKET, "big/blob.bin", big, ContentType="application/x-blob", Metadata={"rev": "1"}, Tagging="state=good"
    )
    at = s3_history.split()
    s3_history.put(s3, BUCKET, "big/blob.bin", b"truncated")
    run, result = restore(run_playbook, prefix="big/", time=at, multipart_threshold=6 * 1024**2, part_size=5 * 1024**2)
    assert run.returncode == 0, run.output
    [plan] = result["actions"]
    assert plan["multipart"] is True and plan["parts"] == 3
    assert s3_history.body(s3, BUCKET, "big/blob.bin") == big
    head = s3.head_object(Bucket=BUCKET, Key="big/blob.bin")
    assert head["ContentType"] == "application/x-blob" and head["Metadata"] == {"rev": "1"}
    tags = s3.get_object_tagging(Bucket=BUCKET, Key="big/blob.bin")["TagSet"]
    assert tags == [{"Key": "state", "Value": "good"}]


def test_encryption_of_the_version_is_kept(aws, run_playbook):
    s3 = aws.client("s3")
    kms_key = aws.client("kms").create_key(Description="restore test")["KeyMetadata"]["Arn"]
    s3_history.versioned_bucket(s3, BUCKET)
    s3_history.put(s3, BUCKET, "enc/kms.txt", b"K1", ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key)
    s3_history.put(s3, BUCKET, "enc/s3.txt", b"S1", ServerSideEncryption="AES256")
    at = s3_history.split()
    s3_history.put(s3, BUCKET, "enc/kms.txt", b"K2")
    s3_history.put(s3, BUCKET, "enc/s3.txt", b"S2")
    run, _ = restore(run_playbook, prefix="enc/", time=at)
    assert run.returncode == 0, run.output
    kms = s3.head_object(Bucket=BUCKET, Key="enc/kms.txt")
    assert kms["ServerSideEncryption"] == "aws:kms" and kms["SSEKMSKeyId"] == kms_key
    assert s3.head_object(Bucket=BUCKET, Key="enc/s3.txt")["ServerSideEncryption"] == "AES256"
    assert s3_history.body(s3, BUCKET, "enc/kms.txt") == b"K1"


def test_archived_versions_are_reported_never_copied(aws, run_playbook):
    s3 = aws.client("s3")
    s3_history.versioned_bucket(s3, BUCKET)
    s3_history.put(s3, BUCKET, "cold/archive.tar", b"OLD", StorageClass="DEEP_ARCHIVE")
    at = s3_history.split()
    s3_history.put(s3, BUCKET, "cold/archive.tar", b"NEW")
    seq = mark(aws)
    run, result = restore(run_playbook, prefix="cold/", time=at)
    assert run.returncode == 0, run.output
    assert result["changed"] is False
    assert result["counts"]["needs_restore_request"] == 1
    assert "DEEP_ARCHIVE" in result["actions"][0]["reason"]
    assert mutating(aws, seq) == []
    assert s3_history.body(s3, BUCKET, "cold/archive.tar") == b"NEW"


@first_case_in_make_test
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"bucket": "no-such-bucket", "prefix": "docs/"}, "no-such-bucket"),
        ({"prefix": "nothing-here/"}, "no versions under prefix 'nothing-here/'"),
        ({"keys": ["docs/missing.txt"]}, "docs/missing.txt"),
        ({"prefix": "docs/", "time": "2999-01-01T00:00:00Z"}, "(2999-01-01T00:00:00Z) is in the future"),
        ({"prefix": "docs/", "time": "yesterday at noon"}, "unparseable time 'yesterday at noon'"),
        ({"prefix": "docs/", "target_prefix": "docs/copy/"}, "target_prefix 'docs/copy/' lies under prefix 'docs/'"),
        ({"bucket": "plain-bucket", "prefix": "docs/"}, "bucket 'plain-bucket' has never had versioning enabled"),
        ({"prefix": "docs/", "target_bucket": "no-such-target"}, "no-such-target"),
        ({"prefix": ""}, "prefix '' is empty and no keys: give a non-empty prefix or keys, or whole_bucket=true"),
        ({}, "no prefix and no keys: give a non-empty prefix or keys, or whole_bucket=true"),
        ({"whole_bucket": True, "prefix": "docs/"}, "but prefix 'docs/' was given too"),
        ({"whole_bucket": True, "keys": ["docs/a.txt"]}, "but keys ['docs/a.txt'] was given too"),
        ({"whole_bucket": True, "target_prefix": "copy/"}, "which is restored whole: the copies would be listed"),
        (
            {"bucket": "s3://restore-test", "prefix": "docs/"},
            "bucket: 's3://restore-test' is not a valid S3 bucket name: characters '/:' are not allowed",
        ),
        (
            {"prefix": "docs/", "target_bucket": "Restore_Copy"},
            "target_bucket: 'Restore_Copy' is not a valid S3 bucket name: characters 'CR_' are not allowed",
        ),
        ({"keys": {"docs/a.txt": "v1"}}, 'keys: expected a list, got the mapping {"docs/a.txt": "v1"}'),
    ],
    ids=[
        "unknown-bucket",
        "empty-prefix",
        "unknown-key",
        "future",
        "unparseable",
        "target-under-prefix",
        "unversioned",
        "unknown-target",
        "empty-prefix-without-whole-bucket",
        "nothing-named",
        "whole-bucket-and-prefix",
        "whole-bucket-and-keys",
        "whole-bucket-into-itself",
        "bucket-name-with-scheme",
        "target-bucket-name-uppercase",
        "mapping-for-keys",
    ],
)
def test_bad_input_fails_naming_the_value_and_changes_nothing(aws, history, run_playbook, options, expected):
    s3 = history["s3"]
    s3.create_bucket(Bucket="plain-bucket")
    s3.put_object(Bucket="plain-bucket", Key="docs/x", Body=b"x")
    before = s3_history.version_list(s3, BUCKET)
    seq = mark(aws)
    options.setdefault("time", history["time"])
    run, result = restore(run_playbook, **options)
    assert run.returncode != 0, "the task must fail"
    assert expected in result["msg"], result["msg"]
    assert result.get("changed") is False
    assert mutating(aws, seq) == []
    assert s3_history.version_list(s3, BUCKET) == before


def test_a_key_whose_copy_keeps_failing_fails_the_run_naming_it_and_the_others_are_restored(aws, history, run_playbook):
    s3 = history["s3"]
    # CopyObject is a PUT carrying x-amz-copy-source; only the copy onto docs/a.txt fails, every time
    aws.proxy.add_rule({"service": "s3", "method": "PUT", "path": r"/docs/a\.txt$", "fault": "error", "status": 500})
    run, result = restore(run_playbook, prefix="docs/", time=history["time"], retry_budget=5)
    assert run.returncode != 0
    assert "1 failed" in result["msg"] and "first failure: 'docs/a.txt'" in result["msg"], result["msg"]
    # the contract's failure keys: the call, the code, the bucket and the key, after every key was tried
    assert f"1 key(s) failed in bucket {BUCKET!r}: ['docs/a.txt'] (CopyObject InternalError)" in result["msg"]
    assert (result["aws_operation"], result["aws_error_code"]) == ("CopyObject", "InternalError"), result
    assert BUCKET in result["resource"] and "docs/a.txt" in result["resource"], result["resource"]
    assert result["failed_keys"] == ["docs/a.txt"] and result["attempts"] >= 1
    assert [e["key"] for e in result["errors"]] == ["docs/a.txt"]
    assert result["errors"][0]["aws_operation"] == "CopyObject"
    # the keys that were restored stay in the result
    restored = {a["key"] for a in result["actions"] if a.get("status") == "done"}
    assert {"docs/deleted.txt", "docs/recreated.txt"} <= restored, result["actions"]
    assert result["changed"] is True
    assert s3_history.body(s3, BUCKET, "docs/a.txt") == b"A2-corrupt"
    for key in ("docs/deleted.txt", "docs/recreated.txt"):
        assert s3_history.body(s3, BUCKET, key) == history["expected"][key], key


@pytest.mark.proof
def test_permanent_5xx_on_the_listing_fails_within_the_budget_naming_call_and_code(aws, history, run_playbook):
    aws.proxy.add_rule({"service": "s3", "method": "GET", "query": "versions", "fault": "error", "status": 500})
    seq = mark(aws)
    started = time.monotonic()
    budget = 12  # the default (60 s) is bounded the same way: tests/unit/test_step.py, with a fake clock
    run, result = restore(run_playbook, prefix="docs/", time=history["time"], retry_budget=budget)
    elapsed = time.monotonic() - started
    assert run.returncode != 0
    # the budget bounds the module's retrying; ansible-playbook's start-up comes on top
    listing = [e for e in aws.proxy.log() if e["seq"] > seq and e["status"] == 500]
    first, last = (datetime.datetime.fromisoformat(listing[i]["time"]) for i in (0, -1))
    assert len(listing) > 1 and (last - first).total_seconds() < budget, listing
    assert elapsed < budget + 30, elapsed  # start-up of ansible-playbook on a loaded machine
    assert "ListObjectVersions" in result["msg"] and "InternalError" in result["msg"], result["msg"]
    assert result["aws_error_code"] == "InternalError"
    assert s3_history.body(history["s3"], BUCKET, "docs/a.txt") == b"A2-corrupt"
