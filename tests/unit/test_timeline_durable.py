"""The durable copy of the timeline (record/durable.py, the write-through in record/timeline.py's append).

An in-process stand-in for S3 keeps objects and honours ``If-None-Match: *`` atomically (as S3 does: exactly
one of two writers of a key wins, the other gets 412 PreconditionFailed).  Writers are separate local files
(separate containers) sharing one bucket.
"""

from __future__ import annotations

import io
import sys
import threading
from pathlib import Path

import botocore.exceptions
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.record import durable as dur  # noqa: E402
from ansible_collections.firebreak.runbooks.plugins.module_utils.record import report as rp  # noqa: E402
from ansible_collections.firebreak.runbooks.plugins.module_utils.record import timeline as tl  # noqa: E402
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import Caller  # noqa: E402

INCIDENT = "INC-DURABLE-1"
BUCKET = "evidence"


def _error(code, status, operation):
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


class FakeS3:
    """Objects by key; conditional PutObject decided under a lock.  ``down``: every call answers 500.
    ``hold``: a key whose PutObjects wait until ``hold_count`` of them have arrived (a race forced)."""

    def __init__(self, object_lock=True):
        self.objects = {}
        self.lock = threading.Lock()
        self.object_lock = object_lock
        self.down = False
        self.calls = []
        self.hold = None
        self.hold_count = 2
        self.arrived = threading.Barrier(2)
        self.put_answers = []

    def _check(self, operation):
        self.calls.append(operation)
        if self.down:
            raise _error("InternalError", 500, operation)

    def get_object_lock_configuration(self, Bucket):
        self._check("GetObjectLockConfiguration")
        return {"ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled"}} if self.object_lock else {}

    def put_object(self, Bucket, Key, Body, IfNoneMatch=None, **kwargs):
        self._check("PutObject")
        assert IfNoneMatch == "*", "every record is written conditionally"
        assert kwargs.get("ContentMD5"), "an Object Lock bucket needs Content-MD5"
        if Key == self.hold:
            self.arrived.wait(timeout=10)
        with self.lock:
            if Key in self.objects:
                self.put_answers.append((Key, "PreconditionFailed"))
                raise _error("PreconditionFailed", 412, "PutObject")
            self.objects[Key] = bytes(Body)
            self.put_answers.append((Key, "ok"))
        return {"VersionId": "v1"}

    def get_object(self, Bucket, Key, **kwargs):
        self._check("GetObject")
        with self.lock:
            if Key not in self.objects:
                raise _error("NoSuchKey", 404, "GetObject")
            return {"Body": io.BytesIO(self.objects[Key])}

    def list_objects_v2(self, Bucket, Prefix, StartAfter="", ContinuationToken=None, **kwargs):
        self._check("ListObjectsV2")
        with self.lock:
            keys = sorted(k for k in self.objects if k.startswith(Prefix) and k > StartAfter)
        start = int(ContinuationToken or 0)
        page = keys[start : start + 2]  # tiny pages: paging is exercised
        more = start + 2 < len(keys)
        answer = {"Contents": [{"Key": k} for k in page], "IsTruncated": more}
        if more:
            answer["NextContinuationToken"] = str(start + 2)
        return answer

    def records(self):
        prefix = dur.timeline_prefix(None, INCIDENT)
        return [self.objects[k] for k in sorted(self.objects) if k.startswith(prefix)]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def writer(s3, clock=None, **kwargs):
    return dur.DurableTimeline(
        s3,
        BUCKET,
        INCIDENT,
        caller=Caller(budget=0.5, sleep=lambda _s: None),
        clock=clock or Clock(),
        **kwargs,
    )


def note(msg):
    return {"incident_id": INCIDENT, "event": "note", "msg": msg, "operator": {"user": "t", "source": "local"}}


def verify_bucket(s3):
    """The durable copy, verified as one chain from seq 1."""
    return dur.read_durable_records(writer(s3), tl._check_stored)


def test_each_record_is_written_through_as_it_goes(tmp_path):
    s3 = FakeS3()
    path = tmp_path / "a" / "timeline.jsonl"
    w = writer(s3)
    for i in range(3):
        tl.append_record(path, note(f"a{i}"), expect_incident=INCIDENT, durable=w)
        assert len(s3.records()) == i + 1, "written through at once, not at the end"
    local = tl.verify_timeline(path)
    assert [line.rstrip(b"\n") for line in s3.records()] == path.read_bytes().splitlines()
    assert [r["hash"] for r in verify_bucket(s3)] == [r["hash"] for r in local]
    assert dur.record_key(None, INCIDENT, 2) == f"firebreak/timelines/{INCIDENT}/000000000002.json"


def test_the_next_job_in_an_empty_container_continues_the_chain(tmp_path):
    s3 = FakeS3()
    first = tmp_path / "job1" / "timeline.jsonl"
    for i in range(5):
        tl.append_record(first, note(f"job1-{i}"), expect_incident=INCIDENT, durable=writer(s3))
    second = tmp_path / "job2" / "timeline.jsonl"  # another container: no local file
    rec = tl.append_record(second, note("job2"), expect_incident=INCIDENT, durable=writer(s3))
    assert rec["seq"] == 6
    records = tl.verify_timeline(second)
    assert [r["msg"] for r in records] == [f"job1-{i}" for i in range(5)] + ["job2"]
    assert second.read_bytes().startswith(first.read_bytes())
    assert len(verify_bucket(s3)) == 6


def test_two_writers_at_the_same_seq_one_wins_the_other_lands_next(tmp_path):
    """The race: both jobs hold seq 3 locally and put seq 4 at the same moment.  Exactly one PutObject of
    seq 4 succeeds; the loser copies it in and lands at 5.  No record lost, none forked."""
    s3 = FakeS3()
    base = tmp_path / "base.jsonl"
    for i in range(3):
        tl.append_record(base, note(f"base{i}"), expect_incident=INCIDENT, durable=writer(s3))
    paths = [tmp_path / f"job{n}" / "timeline.jsonl" for n in (1, 2)]
    writers = [writer(s3), writer(s3)]
    for path in paths:  # both containers have caught up with seq 3
        path.parent.mkdir()
        path.write_bytes(base.read_bytes())
    s3.hold = dur.record_key(None, INCIDENT, 4)
    results = {}

    def job(n):
        results[n] = tl.append_record(paths[n], note(f"job{n}"), expect_incident=INCIDENT, durable=writers[n])

    threads = [threading.Thread(target=job, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    key4 = dur.record_key(None, INCIDENT, 4)
    assert sorted(answer for key, answer in s3.put_answers if key == key4) == ["PreconditionFailed", "ok"]
    assert sorted(r["seq"] for r in results.values()) == [4, 5]
    assert sum(w.conflicts for w in writers) == 1
    stored = verify_bucket(s3)
    assert [r["seq"] for r in stored] == [1, 2, 3, 4, 5]
    assert sorted(r["msg"] for r in stored[3:]) == ["job0", "job1"]
    winner = min(results, key=lambda n: results[n]["seq"])
    loser = 1 - winner
    # the loser's file holds the whole chain (it copied the winner's record in); the winner's ends at 4
    assert [r["hash"] for r in tl.verify_timeline(paths[loser])] == [r["hash"] for r in stored]
    assert [r["hash"] for r in tl.verify_timeline(paths[winner])] == [r["hash"] for r in stored[:4]]
    # and the winner's next record follows the loser's: one chain
    rec = tl.append_record(paths[winner], note("after"), expect_incident=INCIDENT, durable=writers[winner])
    assert rec["seq"] == 6 and rec["prev_hash"] == stored[4]["hash"]
    assert len(verify_bucket(s3)) == 6


def test_many_writers_at_once_lose_nothing(tmp_path):
    s3 = FakeS3()
    per_writer, writers = 5, 4

    def job(n):
        path = tmp_path / f"c{n}" / "timeline.jsonl"
        w = writer(s3)
        for i in range(per_writer):
            tl.append_record(path, note(f"w{n}-{i}"), expect_incident=INCIDENT, durable=w)

    threads = [threading.Thread(target=job, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    stored = verify_bucket(s3)
    assert sorted(r["msg"] for r in stored) == sorted(f"w{n}-{i}" for n in range(writers) for i in range(per_writer))


def test_a_failed_write_through_keeps_the_record_here_notes_it_and_catches_up(tmp_path):
    s3 = FakeS3()
    clock = Clock()
    w = writer(s3, clock=clock, retry_after=30)
    path = tmp_path / "timeline.jsonl"
    tl.append_record(path, note("before"), expect_incident=INCIDENT, durable=w)
    s3.down = True
    rec = tl.append_record(path, note("during"), expect_incident=INCIDENT, durable=w)  # does not raise
    assert rec["seq"] == 2 and rec["msg"] == "during"
    records = tl.verify_timeline(path)
    assert [r["event"] for r in records] == ["note", "note", "note"]
    gap = records[2]
    assert gap["details"]["durable"] == {"kept": False, "location": w.location, "from_seq": 2}
    assert "is incomplete from seq 2" in gap["msg"] and "InternalError" in gap["msg"]
    assert w.warnings == [gap["msg"]]
    calls = len(s3.calls)
    tl.append_record(path, note("still down"), expect_incident=INCIDENT, durable=w)
    assert len(s3.calls) == calls, "resting after a failure: no call, no note per record"
    assert len(tl.verify_timeline(path)) == 4 and len(s3.records()) == 1
    s3.down = False
    clock.now += 31
    tl.append_record(path, note("after"), expect_incident=INCIDENT, durable=w)
    local = tl.verify_timeline(path)
    assert [r["hash"] for r in verify_bucket(s3)] == [r["hash"] for r in local], "the bucket caught up"
    assert w.failed is None


def test_a_fork_is_refused_and_named(tmp_path):
    s3 = FakeS3()
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    tl.append_record(a, note("one"), expect_incident=INCIDENT, durable=writer(s3))
    b.write_bytes(a.read_bytes())
    tl.append_record(a, note("a-two"), expect_incident=INCIDENT, durable=writer(s3))
    tl.append_record(b, note("b-two local only"), expect_incident=INCIDENT)  # written without the bucket
    w = writer(s3)
    rec = tl.append_record(b, note("b-three"), expect_incident=INCIDENT, durable=w)
    assert rec["seq"] == 3
    assert isinstance(w.failed, dur.DurableFork)
    assert "forked" in w.warnings[0] and "seq 2" in w.warnings[0]
    assert not w.active(), "a fork does not heal by waiting"
    assert [r["msg"] for r in verify_bucket(s3)] == ["one", "a-two"], "the bucket's chain is left intact"


def test_a_bucket_without_object_lock_is_not_used(tmp_path):
    s3 = FakeS3(object_lock=False)
    w = writer(s3)
    tl.append_record(tmp_path / "t.jsonl", note("x"), expect_incident=INCIDENT, durable=w)
    assert s3.records() == []
    assert "does not have Object Lock enabled" in w.warnings[0]


def test_reading_the_durable_copy_finds_a_removed_record(tmp_path):
    s3 = FakeS3()
    for i in range(4):
        tl.append_record(tmp_path / "t.jsonl", note(f"n{i}"), expect_incident=INCIDENT, durable=writer(s3))
    del s3.objects[dur.record_key(None, INCIDENT, 2)]
    with pytest.raises(dur.DurableError, match="seq 2 is missing but 2 later record"):
        verify_bucket(s3)
    s3.objects[dur.record_key(None, INCIDENT, 2)] = s3.objects[dur.record_key(None, INCIDENT, 3)]
    with pytest.raises(tl.TimelineVerifyError, match="seq 2: found seq 3"):
        verify_bucket(s3)


# ---------------------------------------------------------------------------------------------- the report


@pytest.fixture
def report_action(monkeypatch):
    from ansible_collections.firebreak.runbooks.plugins.action import incident_report as action

    s3 = FakeS3()
    monkeypatch.setattr(action, "s3_client", lambda *args, **kwargs: s3)
    args = {"seal_bucket": BUCKET, "durable": True, "durable_prefix": dur.DEFAULT_PREFIX, "retry_budget": 1}
    return action.ActionModule._durable, args, s3


def test_the_report_reads_the_whole_chain_from_the_bucket_without_a_local_file(tmp_path, report_action):
    durable_of, args, s3 = report_action
    for i in range(3):
        tl.append_record(tmp_path / "job1.jsonl", note(f"n{i}"), expect_incident=INCIDENT, durable=writer(s3))
    records, durable = durable_of(dict(args, incident_id=INCIDENT), str(tmp_path / "absent.jsonl"), None)
    assert [r["msg"] for r in records] == ["n0", "n1", "n2"]
    assert durable["used"] and durable["complete"] and durable["records"] == 3 and durable["gap_from"] is None
    markdown, _json, facts = rp.render(records, "absent.jsonl", durable=durable)
    assert facts["timeline"]["durable"] == durable
    assert "**Durable copy**: `s3://evidence/firebreak/timelines/INC-DURABLE-1/`, complete (3 records" in markdown


def test_the_report_says_the_durable_copy_is_incomplete(tmp_path, report_action):
    durable_of, args, s3 = report_action
    path = tmp_path / "t.jsonl"
    w = writer(s3)
    tl.append_record(path, note("kept"), expect_incident=INCIDENT, durable=w)
    s3.down = True
    tl.append_record(path, note("local only"), expect_incident=INCIDENT, durable=w)
    s3.down = False
    local = tl.verify_timeline(path)
    records, durable = durable_of(args, str(path), local)
    assert records == local and not durable["used"]
    assert durable["complete"] is False and durable["records"] == 1 and durable["expected"] == 3
    assert durable["gap_from"] == 2 and durable["gap_notes"] == [3]
    markdown = rp.render(records, str(path), durable=durable)[0]
    assert "**incomplete**: it holds 1 of the 3 records (the write-through failed from seq 2" in markdown


def test_the_report_refuses_a_local_file_that_forked_from_the_bucket(tmp_path, report_action):
    durable_of, args, s3 = report_action
    tl.append_record(tmp_path / "a.jsonl", note("bucket"), expect_incident=INCIDENT, durable=writer(s3))
    tl.append_record(tmp_path / "b.jsonl", note("elsewhere"), expect_incident=INCIDENT)
    with pytest.raises(dur.DurableFork, match="hold different records at seq 1"):
        durable_of(args, str(tmp_path / "b.jsonl"), tl.verify_timeline(tmp_path / "b.jsonl"))


def test_a_failure_while_reading_the_bucket_keeps_the_file_one_chain_and_the_fork_is_named_later(tmp_path):
    """A new container whose bucket fails while it reads another job's records: the record is still written (to
    the file, which verifies), the gap is noted; once the bucket answers, the two chains are found forked."""
    s3 = FakeS3()
    for i in range(4):
        tl.append_record(tmp_path / "other.jsonl", note(f"o{i}"), expect_incident=INCIDENT, durable=writer(s3))
    path = tmp_path / "mine.jsonl"
    clock = Clock()
    w = writer(s3, clock=clock)
    real_get, gets = s3.get_object, []

    def get_then_fail(**kwargs):
        gets.append(kwargs["Key"])
        if len(gets) > 2:
            raise _error("InternalError", 500, "GetObject")
        return real_get(**kwargs)

    s3.get_object = get_then_fail
    rec = tl.append_record(path, note("mine"), expect_incident=INCIDENT, durable=w)
    records = tl.verify_timeline(path)
    assert rec["seq"] == records[0]["seq"] == 1 and records[1]["details"]["durable"]["from_seq"] == 1
    s3.get_object = real_get
    clock.now += 60
    tl.append_record(path, note("later"), expect_incident=INCIDENT, durable=w)
    assert isinstance(w.failed, dur.DurableFork) and "have forked" in str(w.failed)
    assert [r["msg"] for r in verify_bucket(s3)] == ["o0", "o1", "o2", "o3"], "the bucket's chain is untouched"
    assert len(tl.verify_timeline(path)) == 4
