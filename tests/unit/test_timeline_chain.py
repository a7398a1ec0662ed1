"""Unit tests of the timeline chain logic (plugins/module_utils/record/timeline.py): no Ansible run."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.record import redaction as rd  # noqa: E402
from ansible_collections.firebreak.runbooks.plugins.module_utils.record import report as rp  # noqa: E402
from ansible_collections.firebreak.runbooks.plugins.module_utils.record import timeline as tl  # noqa: E402


def _append(path, n, **fields):
    out = []
    for i in range(n):
        out.append(
            tl.append_record(
                path,
                {"incident_id": "INC-UNIT", "event": "task_ok", "task": f"task {i}", "host": "h1", **fields},
            )
        )
    return out


def _lines(path):
    return Path(path).read_bytes().splitlines(keepends=True)


# ------------------------------------------------------------------ canonical form and hash


def test_hash_is_sha256_of_canonical_record_without_hash():
    rec = tl.new_record(seq=1, ts="2025-12-27T14:00:00.000Z", incident_id="INC-1", event="note", msg="é ✓")
    rec["prev_hash"] = tl.ZERO_HASH
    del rec["hash"]
    expected = hashlib.sha256(
        json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    ).hexdigest()
    assert tl.record_hash(rec) == expected
    rec["hash"] = expected
    assert tl.record_hash(rec) == expected  # the hash field itself is excluded


def test_canonical_json_keeps_unicode_and_sorts_keys():
    assert tl.canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_timestamp_is_utc_with_milliseconds_and_z():
    import datetime

    ts = tl.utc_timestamp(datetime.datetime(2025, 12, 27, 15, 0, 0, 123456, tzinfo=datetime.timezone.utc))
    assert ts == "2025-12-27T15:00:00.123Z"
    assert tl.parse_timestamp(ts).microsecond == 123000


def test_new_record_has_every_field_and_rejects_unknown():
    rec = tl.new_record(event="note")
    assert tuple(rec) == tl.FIELDS
    assert rec["host"] is None
    with pytest.raises(ValueError):
        tl.new_record(bogus=1)


# ------------------------------------------------------------------ append, tail, seq continuation


def test_append_builds_a_chain_and_seq_continues(tmp_path):
    path = tmp_path / "sub" / "dir" / "timeline.jsonl"  # parent dirs are created
    first = _append(path, 3)
    assert [r["seq"] for r in first] == [1, 2, 3]
    assert first[0]["prev_hash"] == tl.ZERO_HASH
    assert first[1]["prev_hash"] == first[0]["hash"]
    # a later "run" continues the sequence from the file, not from memory
    more = _append(path, 2)
    assert [r["seq"] for r in more] == [4, 5]
    assert more[0]["prev_hash"] == first[-1]["hash"]
    records = tl.verify_timeline(path)
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    # every line is the canonical form of its record
    for raw, rec in zip(_lines(path), records, strict=True):
        assert raw == (tl.canonical_json(rec) + "\n").encode()
        assert rec["ts"].endswith("Z")


def test_read_last_line_reads_only_the_tail(tmp_path, monkeypatch):
    path = tmp_path / "t.jsonl"
    big = "x" * 50_000
    _append(path, 40, msg=big)  # ~2 MB
    size = path.stat().st_size
    reads = []
    real_pread = os.pread

    def counting_pread(fd, n, offset):
        reads.append(n)
        return real_pread(fd, n, offset)

    monkeypatch.setattr(tl.os, "pread", counting_pread)
    fd = os.open(path, os.O_RDONLY)
    try:
        raw, _ = tl.read_last_line(fd)
    finally:
        os.close(fd)
    assert json.loads(raw)["seq"] == 40
    assert sum(reads) < 100_000 < size  # one record plus a chunk, not the whole file


def test_read_last_line_edge_cases(tmp_path):
    p = tmp_path / "e"
    p.write_bytes(b"")
    fd = os.open(p, os.O_RDONLY)
    assert tl.read_last_line(fd) == (None, None)
    os.close(fd)
    p.write_bytes(b'{"a":1}\n')
    fd = os.open(p, os.O_RDONLY)
    assert tl.read_last_line(fd)[0] == b'{"a":1}'
    os.close(fd)


def test_append_refuses_to_extend_a_damaged_tail(tmp_path):
    path = tmp_path / "t.jsonl"
    _append(path, 2)
    data = path.read_bytes().replace(b'"task 1"', b'"task X"')
    path.write_bytes(data)
    with pytest.raises(tl.TimelineError, match=r"seq 2: the last record does not match its hash"):
        _append(path, 1)
    path.write_bytes(data[:-10])  # a torn last line
    with pytest.raises(tl.TimelineError, match="not valid JSON"):
        _append(path, 1)


def test_append_to_unwritable_paths_names_the_path(tmp_path):
    a_dir = tmp_path / "is-a-dir.jsonl"
    a_dir.mkdir()
    with pytest.raises(tl.TimelineError, match=str(a_dir)):
        _append(a_dir, 1)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(tl.TimelineError, match=str(a_file)):
        _append(a_file / "timeline.jsonl", 1)


def test_concurrent_appends_from_threads_keep_the_chain(tmp_path):
    path = tmp_path / "t.jsonl"

    def worker(n):
        for i in range(25):
            tl.append_record(path, {"event": "note", "msg": f"w{n}-{i}"})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = tl.verify_timeline(path)
    assert len(records) == 150
    assert sorted(r["msg"] for r in records) == sorted(f"w{n}-{i}" for n in range(6) for i in range(25))


def test_concurrent_appends_from_processes_keep_the_chain(tmp_path):
    import multiprocessing

    path = str(tmp_path / "t.jsonl")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_proc_worker, args=(path, n)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert len(tl.verify_timeline(path)) == 4 * 30


def _proc_worker(path, n):
    for i in range(30):
        tl.append_record(path, {"event": "note", "msg": f"p{n}-{i}"})


# ------------------------------------------------------------------ verification


@pytest.fixture
def chain(tmp_path):
    path = tmp_path / "t.jsonl"
    _append(path, 6, details={"before": {"a": 1}, "after": {"a": 2}}, changed=True)
    return path


def test_verify_ok(chain):
    assert len(tl.verify_timeline(chain)) == 6


def test_verify_missing_file_names_it(tmp_path):
    with pytest.raises(tl.TimelineError, match=r"nope\.jsonl: timeline file not found"):
        tl.verify_timeline(tmp_path / "nope.jsonl")


def test_verify_empty_file(tmp_path):
    p = tmp_path / "empty.jsonl"
    p.write_bytes(b"")
    with pytest.raises(tl.TimelineError, match="empty"):
        tl.verify_timeline(p)


def test_verify_not_json_names_file_and_line(chain):
    lines = _lines(chain)
    lines[2] = b"this is not json\n"
    chain.write_bytes(b"".join(lines))
    with pytest.raises(tl.TimelineVerifyError, match=rf"{chain} line 3: not valid JSON") as err:
        tl.verify_timeline(chain)
    assert err.value.line == 3


def test_verify_non_json_file(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("just some notes\nmore\n")
    with pytest.raises(tl.TimelineVerifyError, match=rf"{p} line 1: not valid JSON"):
        tl.verify_timeline(p)


@pytest.mark.parametrize("lineno", [1, 3, 6])
def test_every_single_byte_edit_is_caught_at_its_seq(chain, lineno):
    """Change every byte of a line, one at a time: verification must fail at that line."""
    original = chain.read_bytes()
    lines = _lines(chain)
    offset = sum(len(x) for x in lines[: lineno - 1])
    line = lines[lineno - 1]
    for i in range(len(line)):
        for replacement in (b"0", b"x") if line[i : i + 1] not in (b"0", b"x") else (b"1",):
            data = bytearray(original)
            data[offset + i : offset + i + 1] = replacement
            chain.write_bytes(bytes(data))
            with pytest.raises(tl.TimelineVerifyError) as err:
                tl.verify_timeline(chain)
            msg = str(err.value)
            if line[i : i + 1] == b"\n":
                # the newline merges two lines: the merged line is not valid JSON
                assert f"line {lineno}:" in msg, (i, msg)
            else:
                assert f"line {lineno}:" in msg, (i, msg)
                assert f"seq {lineno}:" in msg or "not valid JSON" in msg, (i, msg)
    chain.write_bytes(original)
    tl.verify_timeline(chain)


def test_field_change_keeping_valid_json_fails_with_seq(chain):
    lines = _lines(chain)
    rec = json.loads(lines[3])
    rec["host"] = "attacker"
    lines[3] = (tl.canonical_json(rec) + "\n").encode()
    chain.write_bytes(b"".join(lines))
    with pytest.raises(tl.TimelineVerifyError, match=r"line 4: seq 4: hash does not match") as err:
        tl.verify_timeline(chain)
    assert err.value.seq == 4


def test_recomputed_hash_still_breaks_the_next_link(chain):
    lines = _lines(chain)
    rec = json.loads(lines[1])
    rec["msg"] = "rewritten"
    rec["hash"] = tl.record_hash(rec)
    lines[1] = (tl.canonical_json(rec) + "\n").encode()
    chain.write_bytes(b"".join(lines))
    with pytest.raises(tl.TimelineVerifyError, match=r"seq 3: prev_hash"):
        tl.verify_timeline(chain)


def test_removed_and_inserted_lines_are_seq_errors(chain):
    lines = _lines(chain)
    chain.write_bytes(b"".join(lines[:2] + lines[3:]))
    with pytest.raises(tl.TimelineVerifyError, match=r"line 3: seq 3: found seq 4"):
        tl.verify_timeline(chain)
    chain.write_bytes(b"".join([*lines[:2], lines[1], *lines[2:]]))
    with pytest.raises(tl.TimelineVerifyError, match=r"line 3: seq 3: found seq 2"):
        tl.verify_timeline(chain)


def test_torn_last_line_is_reported(chain):
    data = chain.read_bytes()
    chain.write_bytes(data[:-20])  # a write cut part-way through the last record
    with pytest.raises(tl.TimelineVerifyError, match=r"line 6: seq 6: the last line is incomplete"):
        tl.verify_timeline(chain)


def test_a_final_record_that_lost_only_its_newline_still_verifies(chain):
    data = chain.read_bytes()
    chain.write_bytes(data[:-1])  # a copy that dropped the final newline: the record itself is complete
    assert len(tl.verify_timeline(chain)) == 6


# ------------------------------------------------------------------ redaction


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db_password",
        "Passwd",
        "secret",
        "SecretAccessKey",
        "aws_secret_access_key",
        "access_key_secret",
        "token",
        "SessionToken",
        "aws_session_token",
        "x-auth-token",
        "private_key",
        "PrivateKey",
        "ssh-private-key",
        "session",
        "client_secret",
        "SecretString",
    ],
)
def test_secret_keys(key):
    assert rd.is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "AccessKeyId",
        "access_key_id",
        "aws_access_key_id",
        "SecretId",
        "secret_arn",
        "RoleSessionName",
        "TokenIssueTime",
        "UserName",
        "before",
        "after",
        "msg",
    ],
)
def test_not_secret_keys(key):
    assert not rd.is_secret_key(key)


def test_redact_masks_recursively_and_keeps_access_key_id():
    value = {
        "AccessKeyId": "AKIAIOSFODNN7EXAMPLE",
        "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG",
        "Credentials": {"AccessKeyId": "ASIA1", "SessionToken": "FQoGZXIvYXdz", "Expiration": "2025"},
        "users": [{"name": "a", "password": "hunter22"}, {"name": "b", "password": None}],
        "log": "connecting with password=hunter22 now",
        "other": "echo of wJalrXUtnFEMI/K7MDENG in free text",
        "_ansible_internal": 1,
    }
    out = rd.redact(value)
    text = json.dumps(out)
    assert "wJalrXUtnFEMI" not in text and "FQoGZXIvYXdz" not in text and "hunter22" not in text
    assert out["AccessKeyId"] == "AKIAIOSFODNN7EXAMPLE"
    assert out["Credentials"]["AccessKeyId"] == "ASIA1"
    assert out["Credentials"]["Expiration"] == "2025"
    assert out["users"][1]["password"] is None
    assert out["users"][0]["name"] == "a"
    assert "_ansible_internal" not in out


def test_scrub_text_patterns():
    assert "s3cr3t-value" not in rd.scrub_text('{"token": "s3cr3t-value"}')
    assert "s3cr3t-value" not in rd.scrub_text("password: s3cr3t-value")
    assert "s3cr3t-value" not in rd.scrub_text("aws_secret_access_key=s3cr3t-value")
    assert "AKIAIOSFODNN7EXAMPLE" in rd.scrub_text("AccessKeyId=AKIAIOSFODNN7EXAMPLE")
    assert rd.scrub_text("the password is short") == "the password is short"


def test_argv_lists_mask_the_value_after_a_secret_flag():
    out = rd.to_plain(["mysql", "--password", "hunter22", "--user", "root"])
    assert out == ["mysql", "--password", rd.MASK, "--user", "root"]


def test_result_details_drops_internals_and_honours_no_log():
    result = {
        "changed": True,
        "msg": "done",
        "invocation": {"module_args": {"password": "x"}},
        "stdout": "a\nb",
        "stdout_lines": ["a", "b"],
        "before": {"state": "Active"},
        "after": {"state": "Inactive"},
        "AccessKeyId": "AKIA1",
        "_ansible_no_log": False,
        "_ansible_verbose_always": True,
    }
    details, _ = tl.result_details(result)
    assert details == {
        "stdout": "a\nb",
        "before": {"state": "Active"},
        "after": {"state": "Inactive"},
        "AccessKeyId": "AKIA1",
    }
    assert tl.result_details(result, no_log=True)[0] == tl.NO_LOG_DETAILS
    assert tl.result_details({**result, "_ansible_no_log": True})[0] == tl.NO_LOG_DETAILS
    # a no_log loop item is censored, the others kept
    looped = {"results": [{"item": 1, "_ansible_no_log": True, "secretish": "x"}, {"item": 2, "rc": 0}]}
    details, _ = tl.result_details(looped)
    assert details["results"][0] == tl.NO_LOG_DETAILS
    assert details["results"][1] == {"item": 2, "rc": 0}


def test_details_size_is_capped_and_marked():
    big = {"before": {"blob": "x" * 200_000}, "after": {"items": list(range(20_000))}, "resource_id": "r-1"}
    details, _ = tl.result_details(big)
    assert details["truncated"] is True
    assert details["resource_id"] == "r-1"
    assert len(tl.canonical_json(details).encode()) <= tl.DETAILS_MAX_BYTES


def test_to_plain_handles_odd_values():
    import datetime

    out = rd.to_plain({"when": datetime.datetime(2025, 1, 1), "b": b"\xff", "s": {3, 1}, "n": float("nan"), 1: "k"})
    assert out == {"when": "2025-01-01T00:00:00", "b": "\ufffd", "s": [1, 3], "n": "nan", "1": "k"}
    tl.canonical_json(out)


# ------------------------------------------------------------------ classification and report


@pytest.mark.parametrize(
    ("details", "kind"),
    [
        ({"step_kind": "containment", "containment": []}, "containment"),
        ({"step_kind": "mitigation", "containment": []}, "mitigation"),
        ({"results": [{"skipped": True}, {"step_kind": "recovery"}]}, "recovery"),  # a loop's items
        ({"step_kind": "bogus"}, None),
        # records written before results carried step_kind: a containment entry still counts
        ({"containment": {"id": "abc", "step": "waf_block"}}, "containment"),
        ({"containment": [{"id": "abc"}]}, "containment"),
        ({"containment": []}, None),
        ({"rc": 0}, None),
        (None, None),
    ],
)
def test_record_step_kind_comes_from_the_result(details, kind):
    # the role and action names play no part: a bare module and any role count alike
    rec = {"event": "task_changed", "role": "waf_block", "action": "firebreak.runbooks.ecs_service_rollback"}
    assert tl.record_step_kind(dict(rec, details=details)) == kind
    assert tl.record_step_kind(dict(rec, event="note", details=details)) is None


def test_step_times_by_kind():
    def task(seq, kind, event="task_changed", changed=True, check_mode=False):
        return {
            "seq": seq,
            "event": event,
            "changed": changed,
            "check_mode": check_mode,
            "details": {"step_kind": kind},
        }

    recs = [
        task(1, "verification", event="task_ok", changed=False),  # before any mitigation: not recovery
        task(2, "mitigation", check_mode=True),  # a dry run counts for nothing
        task(3, "evidence"),
        task(4, "mitigation"),
        task(5, "containment"),
        task(6, "verification", event="task_failed", changed=False),
        task(7, "verification", event="task_ok", changed=False),
    ]
    times = rp.step_times(recs)
    assert {k: (v or {}).get("seq") for k, v in times.items()} == {"mitigation": 4, "containment": 5, "recovery": 7}
    # without a verification, the first changed recovery step (a restore) is the recovery
    times = rp.step_times([task(1, "containment"), task(2, "recovery")])
    assert {k: (v or {}).get("seq") for k, v in times.items()} == {"mitigation": 1, "containment": 1, "recovery": 2}


def test_format_duration():
    assert rp.format_duration(8100) == "2 hours 15 minutes"
    assert rp.format_duration(65) == "1 minute 5 seconds"
    assert rp.format_duration(12) == "12 seconds"
    assert rp.format_duration(0) == "0 seconds"


def _rec(seq, ts, event, **kw):
    return tl.new_record(
        seq=seq, ts=ts, event=event, incident_id="INC-R", operator={"user": "ana", "source": "local"}, **kw
    )


def test_render_report_sections_and_times():
    recs = [
        _rec(1, "2025-12-27T14:00:00.000Z", "playbook_start", playbook="playbooks/x.yml", check_mode=False),
        _rec(
            2,
            "2025-12-27T14:05:00.000Z",
            "note",
            msg="Decided to block",
            details={"kind": "decision", "severity": "P1"},
        ),
        _rec(
            3,
            "2025-12-27T14:06:00.000Z",
            "task_changed",
            task="Block IP (dry run)",
            role="waf_block",
            changed=True,
            check_mode=True,
            host="localhost",
            details={"step_kind": "containment", "containment": [{"id": "c0", "step": "waf_block"}]},
        ),
        _rec(
            4,
            "2025-12-27T14:10:00.000Z",
            "task_changed",
            task="Block IP",
            role="firebreak.runbooks.waf_block",
            changed=True,
            check_mode=False,
            host="localhost",
            details={
                "before": {"addresses": []},
                "after": {"addresses": ["203.0.113.66/32"]},
                "step_kind": "containment",
                "containment": [{"id": "c1", "step": "waf_block"}],
            },
        ),
        _rec(5, "2025-12-27T14:12:00.000Z", "task_failed", task="Roll back", role="ecs_rollback", msg="boom"),
        _rec(6, "2025-12-27T16:15:00.000Z", "playbook_end", playbook="playbooks/x.yml", details={"outcome": "failed"}),
    ]
    md = rp.render(recs, "/x/timeline.jsonl")[0]
    for heading in (
        "## Incident Summary",
        "## Timeline",
        "## Actions",
        "## Notes, Decisions and Communications",
        "## Time to Containment and Recovery",
        "## Follow-ups",
        "### Root Cause",
        "### Contributing Factors",
        "### What Went Well",
        "### What Didn't Go Well",
        "### Action Items",
        "## Timeline Verification",
    ):
        assert heading in md, heading
    assert "**Duration**: 2 hours 15 minutes" in md
    assert "**Severity**: P1" in md
    assert "**Time to containment**: 10 minutes" in md  # the check-mode change at 14:06 does not count
    assert "**Time to mitigation**: 10 minutes" in md
    assert "**Time to recovery**: not reached" in md
    assert '"203.0.113.66/32"' in md
    assert "14:05:00 UTC - #2 note decision: Decided to block" in md
    assert "[Owner: TBD] [Due: YYYY-MM-DD]" in md
    assert "1 failed" in md
