"""The timeline under accident and attack (issue: bounded records, full disk, damaged tail, paths).

Each test reproduces a failure found by trying the timeline as a hostile or unlucky user would.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.record import timeline as tl  # noqa: E402


def _rec(i=0, incident="INC-HARD", **fields):
    return {"incident_id": incident, "event": "task_ok", "task": f"task {i}", "host": "h1", **fields}


def _fill(path, n, **fields):
    return [tl.append_record(path, _rec(i, **fields)) for i in range(n)]


# ------------------------------------------------------------------ size caps


def test_a_huge_msg_is_capped_and_marked_and_the_incident_goes_on(tmp_path):
    path = tmp_path / "t.jsonl"
    _fill(path, 2)
    huge = "x" * (17 * 1024 * 1024)
    rec = tl.append_record(path, _rec(9, msg=huge))
    assert len(rec["msg"]) < tl.MSG_MAX_CHARS + 100
    assert rec["truncated"] == {"msg": len(huge)}
    line = path.read_bytes().splitlines()[-1]
    assert len(line) < tl.RECORD_MAX_BYTES
    # the next append (a note, another run) still works, and the chain verifies
    tl.append_record(path, _rec(10))
    records = tl.verify_timeline(path)
    assert [r["seq"] for r in records] == [1, 2, 3, 4]


def test_every_text_field_and_details_are_capped(tmp_path):
    path = tmp_path / "t.jsonl"
    long = "y" * 50_000
    rec = tl.append_record(
        path,
        _rec(
            task=long,
            play=long,
            host=long,
            role=long,
            action=long,
            playbook=long,
            details={"blob": "z" * 300_000, "items": list(range(100_000))},
            operator={"user": long, "source": "local"},
        ),
    )
    for field in ("task", "play", "host", "role", "action", "playbook"):
        assert len(rec[field]) <= tl.TEXT_MAX_CHARS + 64
        assert rec["truncated"][field] == len(long)
    assert rec["truncated"]["details"] > tl.DETAILS_MAX_BYTES
    assert rec["details"]["truncated"] is True
    assert "operator" in rec["truncated"]
    tl.verify_timeline(path)


def test_containment_entries_are_kept_whole_beyond_the_details_cap(tmp_path):
    path = tmp_path / "t.jsonl"
    added = [f"198.51.{i // 256}.{i % 256}/32" for i in range(10_000)]  # ~200 KB: a 10,000-address block
    details = {"containment": {"id": "abc", "changed": {"added": added}}, "noise": "n" * 100_000}
    rec = tl.append_record(path, _rec(details=details))
    assert rec["details"]["containment"]["changed"]["added"] == added
    assert rec["details"]["truncated"] is True  # the rest was cut
    tl.verify_timeline(path)


def test_the_verifier_refuses_an_oversized_record_the_writer_would_never_write(tmp_path):
    """The 17 MB line of the old writer: the writer refuses to extend it and the report fails on it."""
    path = tmp_path / "t.jsonl"
    _fill(path, 1)
    prev = tl.verify_timeline(path)[-1]
    rec = tl.new_record(**_rec(5, msg="x" * (tl.MSG_MAX_CHARS + 1000)))
    rec.update(seq=2, prev_hash=prev["hash"], ts=tl.utc_timestamp())
    rec["hash"] = tl.record_hash(rec)
    with path.open("ab") as fh:
        fh.write((tl.canonical_json(rec) + "\n").encode())
    with pytest.raises(tl.TimelineVerifyError, match=r"seq 2: msg: over its size cap"):
        tl.verify_timeline(path)
    big = tl.new_record(**_rec(6, msg="x" * (tl.RECORD_MAX_BYTES + 10)))
    with path.open("ab") as fh:
        fh.write((tl.canonical_json(big) + "\n").encode())
    with pytest.raises(tl.TimelineError, match=r"record cap"):
        tl.append_record(path, _rec(7))


def test_over_caps_names_the_field():
    assert tl.over_caps(tl.new_record(task="t" * (tl.TEXT_MAX_CHARS + 65))) == "task"
    assert tl.over_caps(tl.new_record(details={"a": "b" * (tl.DETAILS_MAX_BYTES + 100)})) == "details"
    assert tl.over_caps(tl.new_record(msg="ok")) is None


# ------------------------------------------------------------------ full disk: all or nothing


class _FullDisk:
    """``os.write`` that writes part of the buffer, then fails with ENOSPC (as a full disk does)."""

    def __init__(self, real, budget):
        self.real = real
        self.budget = budget

    def __call__(self, fd, data):
        if self.budget <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        part = bytes(data[: self.budget])
        self.budget -= len(part)
        return self.real(fd, part)


def test_a_write_that_fails_part_way_is_undone(tmp_path, monkeypatch):
    path = tmp_path / "t.jsonl"
    _fill(path, 3)
    before = path.read_bytes()
    monkeypatch.setattr(tl.os, "write", _FullDisk(os.write, 40))
    with pytest.raises(tl.TimelineError, match=r"no space left on device while appending seq 4; the partial write"):
        tl.append_record(path, _rec(3))
    monkeypatch.undo()
    assert path.read_bytes() == before  # ends on the last complete record
    tl.append_record(path, _rec(4))  # space freed: appends normally
    assert [r["seq"] for r in tl.verify_timeline(path)] == [1, 2, 3, 4]


def test_a_failed_undo_says_how_to_repair(tmp_path, monkeypatch):
    path = tmp_path / "t.jsonl"
    _fill(path, 1)
    size = path.stat().st_size
    monkeypatch.setattr(tl.os, "write", _FullDisk(os.write, 10))

    def no_truncate(fd, length):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(tl.os, "ftruncate", no_truncate)
    with pytest.raises(tl.TimelineError, match=rf"could not be undone.*truncate it to {size} bytes"):
        tl.append_record(path, _rec(1))


# ------------------------------------------------------------------ damaged tail


def test_a_lost_final_newline_is_restored_before_the_next_append(tmp_path):
    path = tmp_path / "t.jsonl"
    _fill(path, 3)
    path.write_bytes(path.read_bytes()[:-1])
    tl.append_record(path, _rec(3))
    lines = path.read_bytes().split(b"\n")
    assert len(lines) == 5 and lines[-1] == b""  # four lines, no two records glued on one
    assert [r["seq"] for r in tl.verify_timeline(path)] == [1, 2, 3, 4]


def test_a_torn_tail_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "t.jsonl"
    _fill(path, 3)
    torn = path.read_bytes()[:-30]
    path.write_bytes(torn)
    with pytest.raises(tl.TimelineError, match=r"last line is not valid JSON.*refusing to extend"):
        tl.append_record(path, _rec(3))
    assert path.read_bytes() == torn


# ------------------------------------------------------------------ paths


def test_a_dangling_symlink_is_not_followed(tmp_path):
    outside = tmp_path / "outside" / "created-here.jsonl"
    outside.parent.mkdir()
    link = tmp_path / "incidents" / "INC-1" / "timeline.jsonl"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    with pytest.raises(tl.TimelineError, match=r"is a symbolic link.*refusing to follow it"):
        tl.append_record(link, _rec())
    assert not outside.exists()


def test_a_symlink_to_another_incidents_timeline_is_not_followed(tmp_path):
    other = tmp_path / "incidents" / "INC-OTHER" / "timeline.jsonl"
    other.parent.mkdir(parents=True)
    _fill(other, 2, incident="INC-OTHER")
    before = other.read_bytes()
    link = tmp_path / "incidents" / "INC-1" / "timeline.jsonl"
    link.parent.mkdir(parents=True)
    link.symlink_to(other)
    with pytest.raises(tl.TimelineError, match=r"symbolic link"):
        tl.append_record(link, _rec(incident="INC-1"), expect_incident="INC-1")
    assert other.read_bytes() == before


def test_another_incidents_file_is_refused(tmp_path):
    """A directory symlink (or a wrong path) leading to another incident's file: the first record says whose."""
    path = tmp_path / "t.jsonl"
    _fill(path, 2, incident="INC-OTHER")
    before = path.read_bytes()
    with pytest.raises(tl.TimelineError, match=r"belongs to incident 'INC-OTHER'.*not 'INC-1'"):
        tl.append_record(path, _rec(incident="INC-1"), expect_incident="INC-1")
    assert path.read_bytes() == before
    tl.append_record(path, _rec(incident="INC-OTHER"), expect_incident="INC-OTHER")


def test_a_directory_is_not_a_timeline(tmp_path):
    (tmp_path / "t.jsonl").mkdir()
    with pytest.raises(tl.TimelineError, match=r"t.jsonl"):
        tl.append_record(tmp_path / "t.jsonl", _rec())


# ------------------------------------------------------------------ run ids


def test_run_id_is_kept_and_verified(tmp_path):
    path = tmp_path / "t.jsonl"
    rec = tl.append_record(path, _rec(event="playbook_start", run_id="r-1"))
    assert rec["run_id"] == "r-1"
    assert json.loads(path.read_text().splitlines()[0])["run_id"] == "r-1"
    tl.verify_timeline(path)
