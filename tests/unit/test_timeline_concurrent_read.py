"""A reader of a timeline that another process is appending to (found while building the load proof, issue 20 item
3, where eight responders write one incident's timeline while the report verifies it; reproduced with a writer
process appending 25 KB records while the reader verified: one verify in about thirty failed): the writer appends
under an exclusive ``flock``, and a reader that did not take the lock could meet a record half copied into the file
and fail the whole verification with "the last line is incomplete" although nothing was torn. The reader takes the
records the writers had finished when it began."""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.record import timeline as tl  # noqa: E402


def record(msg: str) -> dict:
    return {"incident_id": "INC-READ", "event": "note", "msg": msg, "details": {"pad": "x" * 20000}}


def test_a_reader_never_meets_a_record_half_written(tmp_path):
    path = tmp_path / "timeline.jsonl"
    tl.append_record(str(path), record("first"))
    # the next record's line, as the writer makes it (appended to a copy)
    copy = tmp_path / "copy.jsonl"
    shutil.copy(path, copy)
    tl.append_record(str(copy), record("second"))
    line = copy.read_bytes()[path.stat().st_size :]
    assert line.endswith(b"\n") and len(line) > 20000

    # a writer in the middle of its append: the lock held, half of the line in the file
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, line[: len(line) // 2])
    seen = {}

    def read():
        try:
            seen["records"] = [r["msg"] for r in tl.verify_timeline(str(path))]
        except tl.TimelineError as exc:
            seen["error"] = str(exc)

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.3)
    os.write(fd, line[len(line) // 2 :])
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    reader.join(10)
    assert not reader.is_alive()
    assert seen == {"records": ["first", "second"]}, seen


def test_records_appended_after_the_read_began_are_left_for_the_next_read(tmp_path):
    path = tmp_path / "timeline.jsonl"
    for n in range(3):
        tl.append_record(str(path), record(f"note {n}"))
    records = tl.iter_verified(str(path))
    assert next(records)["msg"] == "note 0"
    tl.append_record(str(path), record("later"))
    assert [r["msg"] for r in records] == ["note 1", "note 2"]
    assert [r["msg"] for r in tl.verify_timeline(str(path))] == ["note 0", "note 1", "note 2", "later"]
