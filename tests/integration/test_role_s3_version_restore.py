"""The s3_version_restore role: converge, idempotence, check mode, against the sandbox."""

from __future__ import annotations

import re

import pytest

from sandbox import s3_history

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/s3/role.yml"
BUCKET = "role-restore"
RECAP = re.compile(
    r"^localhost\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)",
    re.M,
)


def recap(run) -> dict:
    match = RECAP.search(run.stdout)
    assert match, f"no PLAY RECAP for localhost in the output:\n{run.output[-3000:]}"
    return {key: int(value) for key, value in match.groupdict().items()}


@pytest.fixture
def history(aws):
    s3 = aws.client("s3")
    s3_history.versioned_bucket(s3, BUCKET)
    built = s3_history.build_docs_history(s3, BUCKET)
    built["s3"] = s3
    built["vars"] = {
        "s3_version_restore_bucket": BUCKET,
        "s3_version_restore_prefix": "docs/",
        "s3_version_restore_time": built["time"],
    }
    return built


def test_check_mode_changes_nothing(history, run_playbook):
    s3 = history["s3"]
    before = s3_history.version_list(s3, BUCKET)
    run = run_playbook(PLAYBOOK, extra_vars=history["vars"], check=True, diff=True)
    assert run.returncode == 0, run.output
    assert recap(run)["failed"] == 0 and recap(run)["changed"] == 1
    assert "would restore 5 of 8 key(s)" in run.stdout
    assert s3_history.version_list(s3, BUCKET) == before


def test_converge_then_idempotence(history, run_playbook):
    s3 = history["s3"]
    first = run_playbook(PLAYBOOK, extra_vars=history["vars"])
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    for key, expected in history["expected"].items():
        if key != "docs/new.txt":
            assert s3_history.body(s3, BUCKET, key) == expected, key
    versions = s3_history.version_list(s3, BUCKET)

    second = run_playbook(PLAYBOOK, extra_vars=history["vars"])
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0 and recap(second)["failed"] == 0, second.stdout
    assert s3_history.version_list(s3, BUCKET) == versions


def test_role_rejects_keys_and_prefix_together_before_changing_anything(history, run_playbook):
    s3 = history["s3"]
    before = s3_history.version_list(s3, BUCKET)
    run = run_playbook(PLAYBOOK, extra_vars={**history["vars"], "s3_version_restore_keys": ["docs/a.txt"]})
    assert run.returncode != 0
    assert "exactly one of" in run.stdout
    assert s3_history.version_list(s3, BUCKET) == before


def test_role_fails_on_archived_versions_unless_allowed(aws, run_playbook):
    s3 = aws.client("s3")
    s3_history.versioned_bucket(s3, BUCKET)
    s3_history.put(s3, BUCKET, "cold/a", b"OLD", StorageClass="GLACIER")
    at = s3_history.split()
    s3_history.put(s3, BUCKET, "cold/a", b"NEW")
    extra = {"s3_version_restore_bucket": BUCKET, "s3_version_restore_prefix": "cold/", "s3_version_restore_time": at}
    run = run_playbook(PLAYBOOK, extra_vars=extra)
    assert run.returncode != 0 and "need a restore request first" in run.stdout, run.stdout
    allowed = run_playbook(PLAYBOOK, extra_vars={**extra, "s3_version_restore_allow_archived": True})
    assert allowed.returncode == 0, allowed.output
    assert s3_history.body(s3, BUCKET, "cold/a") == b"NEW"


def test_role_restores_the_whole_bucket_when_asked_check_converge_idempotence(aws, run_playbook):
    s3 = aws.client("s3")
    s3_history.versioned_bucket(s3, BUCKET)
    good = {}
    for prefix in ("uploads/", "logs/2026/11/", "img/", ""):
        for n in range(10):
            key = f"{prefix}k{n}"
            good[key] = key.encode()
            s3_history.put(s3, BUCKET, key, good[key])
    at = s3_history.split()
    for i, key in enumerate(sorted(good)):
        if i % 2:
            s3_history.put(s3, BUCKET, key, b"bad job output")
        else:
            s3_history.delete(s3, BUCKET, key)
    extra = {
        "s3_version_restore_bucket": BUCKET,
        "s3_version_restore_whole_bucket": True,
        "s3_version_restore_time": at,
    }
    versions = s3_history.version_list(s3, BUCKET)

    check = run_playbook(PLAYBOOK, extra_vars=extra, check=True)
    assert check.returncode == 0, check.output
    assert "would restore 40 of 40 key(s) in role-restore (the whole bucket)" in check.stdout, check.stdout
    assert s3_history.version_list(s3, BUCKET) == versions

    first = run_playbook(PLAYBOOK, extra_vars=extra)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    assert {key: s3_history.body(s3, BUCKET, key) for key in good} == good
    restored = s3_history.version_list(s3, BUCKET)

    second = run_playbook(PLAYBOOK, extra_vars=extra)
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0 and recap(second)["failed"] == 0, second.stdout
    assert s3_history.version_list(s3, BUCKET) == restored


def test_role_refuses_an_empty_prefix_and_no_keys_saying_how_to_ask_for_the_whole_bucket(history, run_playbook):
    s3 = history["s3"]
    before = s3_history.version_list(s3, BUCKET)
    run = run_playbook(PLAYBOOK, extra_vars={**history["vars"], "s3_version_restore_prefix": ""})
    assert run.returncode != 0
    assert "set s3_version_restore_whole_bucket: true to restore every key of the bucket" in run.stdout, run.stdout
    assert 'prefix=""' in run.stdout and "whole_bucket=false" in run.stdout
    assert s3_history.version_list(s3, BUCKET) == before


def test_role_names_a_bad_concurrency_alone(history, run_playbook):
    s3 = history["s3"]
    before = s3_history.version_list(s3, BUCKET)
    run = run_playbook(PLAYBOOK, extra_vars={**history["vars"], "s3_version_restore_concurrency": 0})
    assert run.returncode != 0
    (line,) = [line for line in run.stdout.splitlines() if line.startswith("fatal:")]
    assert "s3_version_restore_concurrency must be >= 1 (got 0)" in line and "prefix" not in line, line
    assert s3_history.version_list(s3, BUCKET) == before
