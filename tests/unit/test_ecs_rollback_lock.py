"""The rollback lock of ecs_service_rollback (found by the load proof, issue 20 item 3: two responders running
service_down on one service at once both read the bad revision and both called UpdateService).

The lock holds across machines: an S3 object taken with a conditional write (containment/lock.py), behind a local
file lock (the fast path of one machine). An in-process stand-in for S3 decides conditional writes and deletes under
one lock, as S3 does (exactly one of two conditional writers of a key wins), and can hold calls at a barrier to force
the races: two takers at once, two takeovers of one stale lock, a lock deleted between a taker's write and its read.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import subprocess
import sys
import threading
from pathlib import Path

import botocore.exceptions
import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.containment import lock as lk
from ansible_collections.firebreak.runbooks.plugins.module_utils.containment.ledger import LedgerError
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import Caller
from ansible_collections.firebreak.runbooks.plugins.modules.ecs_service_rollback import RollbackLock

ARN = "arn:aws:ecs:us-east-1:123456789012:service/shop/shop-api"
BUCKET = "evidence"
KEY = "ecs-rollback/svc/shop-api%3A4"
FULL_KEY = lk.S3_PREFIX + KEY


def _error(code, status, operation):
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


class FakeS3:
    """Objects by key with ETags; conditional PutObject/DeleteObject decided under one lock. ``barrier``: the calls
    named in ``hold`` (e.g. ``{"GetObject"}``) wait there until every party has arrived (a race forced). ``after``:
    ``{operation: fn}`` run once after that call answered (something another run does meanwhile)."""

    def __init__(self):
        self.objects = {}
        self.lock = threading.Lock()
        self.calls = []
        self.hold, self.barrier, self.after = set(), None, {}
        self.down = False

    def _enter(self, operation):
        self.calls.append(operation)
        if self.down:
            raise _error("InternalError", 500, operation)
        if operation in self.hold:
            self.barrier.wait(timeout=10)

    def _then(self, operation):
        hook = self.after.pop(operation, None)
        if hook:
            hook()

    def put_object(self, Bucket, Key, Body, IfNoneMatch=None, IfMatch=None, **kwargs):
        self._enter("PutObject")
        assert IfNoneMatch == "*" or IfMatch, "every lock write is conditional"
        assert kwargs.get("ContentMD5"), "an Object Lock bucket needs Content-MD5"
        with self.lock:
            found = self.objects.get(Key)
            if IfNoneMatch == "*" and found is not None:
                raise _error("PreconditionFailed", 412, "PutObject")
            if IfMatch and found is None:
                raise _error("NoSuchKey", 404, "PutObject")
            if IfMatch and found[1] != IfMatch:
                raise _error("PreconditionFailed", 412, "PutObject")
            etag = '"' + hashlib.md5(Body).hexdigest() + '"'  # noqa: S324 - S3's ETag
            self.objects[Key] = (bytes(Body), etag)
        self._then("PutObject")
        return {"ETag": etag}

    def get_object(self, Bucket, Key):
        self._enter("GetObject")
        with self.lock:
            found = self.objects.get(Key)
        if found is None:
            raise _error("NoSuchKey", 404, "GetObject")
        self._then("GetObject")
        return {"Body": io.BytesIO(found[0]), "ETag": found[1]}

    def delete_object(self, Bucket, Key, IfMatch=None):
        self._enter("DeleteObject")
        with self.lock:
            found = self.objects.get(Key)
            if IfMatch and found is None:
                raise _error("NoSuchKey", 404, "DeleteObject")
            if IfMatch and found[1] != IfMatch:
                raise _error("PreconditionFailed", 412, "DeleteObject")
            self.objects.pop(Key, None)
        return {}

    def body(self, key=FULL_KEY):
        return json.loads(self.objects[key][0])


def s3lock(fake, budget=2):
    return lk.S3Lock(Caller(budget), fake, BUCKET, KEY)


def body(incident, ttl=600, now=None):
    return lk.lock_body(ttl, now=now, incident_id=incident, step="test")


def stale_body(incident):
    return body(incident, ttl=600, now=lk.utc_now() - datetime.timedelta(seconds=601))


def race(*fns):
    """Run ``fns`` in threads at once; their results in order."""
    results = [None] * len(fns)

    def run(i):
        results[i] = fns[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    return results


def test_two_takers_at_once_one_wins_and_the_other_is_told_who_and_since_when():
    fake = FakeS3()
    fake.hold = {"PutObject"}  # both write at once
    fake.barrier = threading.Barrier(2, action=fake.hold.clear)
    a, b = s3lock(fake), s3lock(fake)
    ta, tb = race(lambda: a.take(body("INC-A")), lambda: b.take(body("INC-B")))
    assert sorted([ta.held, tb.held]) == [False, True], "exactly one taker holds the lock"
    winner, loser = (ta, tb) if ta.held else (tb, ta)
    assert loser.holder["incident_id"] == fake.body()["incident_id"], "the loser names the holder"
    assert loser.holder["owner"] == fake.body()["owner"]
    text = lk.describe_holder(loser.holder)
    assert text.startswith(f"incident {loser.holder['incident_id']} (operator ") and " since " in text
    assert loser.holder["at"] in text and loser.holder["host"] in text
    assert winner.scope == "everywhere" and winner.where == f"s3://{BUCKET}/{FULL_KEY}"


def test_a_stale_lock_taken_over_by_two_runs_at_once_goes_to_exactly_one():
    fake = FakeS3()
    dead = stale_body("INC-DEAD")
    dead["host"] = "another-host"  # not this machine: only its age makes it stale
    data = json.dumps(dead).encode()
    fake.objects[FULL_KEY] = (data, '"' + hashlib.md5(data).hexdigest() + '"')  # noqa: S324
    # both read the stale lock before either writes
    fake.hold = {"GetObject"}
    fake.barrier = threading.Barrier(2, action=fake.hold.clear)
    a, b = s3lock(fake), s3lock(fake)
    ta, tb = race(lambda: a.take(body("INC-A")), lambda: b.take(body("INC-B")))
    assert sorted([ta.held, tb.held]) == [False, True], "If-Match on the stale ETag: one takeover wins"
    winner, loser = (ta, tb) if ta.held else (tb, ta)
    assert winner.took_over["incident_id"] == "INC-DEAD"
    assert loser.holder["owner"] == fake.body()["owner"], "the loser reads the new holder, not the dead one"
    assert fake.body()["incident_id"] in ("INC-A", "INC-B")


def test_a_fresh_lock_is_not_taken_over_and_an_expired_one_is():
    fake = FakeS3()
    first = s3lock(fake)
    assert first.take(body("INC-A", ttl=600)).held
    assert not s3lock(fake).take(body("INC-B")).held
    assert fake.body()["incident_id"] == "INC-A", "a fresh lock is never overwritten"
    later = lk.S3Lock(Caller(2), fake, BUCKET, KEY, clock=lambda: lk.utc_now() + datetime.timedelta(seconds=601))
    taken = later.take(body("INC-B"))
    assert taken.held and taken.took_over["incident_id"] == "INC-A"
    assert fake.body()["incident_id"] == "INC-B"
    # the first run comes back: its release must not delete the lock that is now INC-B's
    assert first.release() is False
    assert fake.body()["incident_id"] == "INC-B"
    assert later.release() is True
    assert FULL_KEY not in fake.objects


def test_release_deletes_only_our_lock_and_twice_is_harmless():
    fake = FakeS3()
    mine = s3lock(fake)
    assert mine.take(body("INC-A")).held
    assert mine.release() is True and FULL_KEY not in fake.objects
    assert mine.release() is False, "released already: no call"
    assert fake.calls.count("DeleteObject") == 1
    assert s3lock(fake).take(body("INC-B")).held, "released: the next run takes it"


def test_a_lock_deleted_between_the_refused_write_and_the_read_is_taken():
    fake = FakeS3()
    holder = s3lock(fake)
    assert holder.take(body("INC-A")).held
    taker = s3lock(fake)
    # INC-A releases right after the taker's write was refused, before the taker reads the lock
    original = fake.put_object

    def put_then_release(**kw):
        try:
            return original(**kw)
        except botocore.exceptions.ClientError:
            holder.release()
            raise

    fake.put_object = put_then_release
    taken = taker.take(body("INC-B"))
    assert taken.held and taken.took_over is None
    assert fake.body()["incident_id"] == "INC-B"
    assert fake.calls == ["PutObject", "PutObject", "DeleteObject", "GetObject", "PutObject"]


def test_a_stale_lock_deleted_before_the_takeover_write_is_taken_fresh():
    fake = FakeS3()
    dead = stale_body("INC-DEAD")
    dead["host"] = "another-host"
    data = json.dumps(dead).encode()
    fake.objects[FULL_KEY] = (data, '"' + hashlib.md5(data).hexdigest() + '"')  # noqa: S324
    fake.after["GetObject"] = lambda: fake.objects.pop(FULL_KEY)  # someone cleans it up meanwhile
    taken = s3lock(fake).take(body("INC-B"))
    assert taken.held and fake.body()["incident_id"] == "INC-B"
    assert fake.calls == ["PutObject", "GetObject", "PutObject", "PutObject"], "If-Match 404, then If-None-Match"


def test_a_lock_left_on_this_machine_by_a_process_that_is_gone_is_taken_over_at_once():
    fake = FakeS3()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = body("INC-DEAD")  # fresh, this host
    dead["pid"] = int(gone.stdout)
    data = json.dumps(dead).encode()
    fake.objects[FULL_KEY] = (data, '"' + hashlib.md5(data).hexdigest() + '"')  # noqa: S324
    assert lk.process_gone(dead) and not lk.process_gone(body("INC-LIVE")), "our own pid runs"
    assert lk.process_gone(dict(dead, host="another-host")) is False, "another machine's pid says nothing"
    taken = s3lock(fake).take(body("INC-B"))
    assert taken.held and taken.took_over["incident_id"] == "INC-DEAD"


def test_a_bucket_that_cannot_be_written_is_an_error_naming_the_lock():
    fake = FakeS3()
    fake.down = True
    with pytest.raises(LedgerError, match=rf"rollback lock s3://{BUCKET}/{FULL_KEY}.*PutObject.*InternalError"):
        s3lock(fake, budget=0).take(body("INC-A"))


# --------------------------------------------------------------------------------------------- the module's lock


def test_two_hosts_share_the_bucket_lock_one_host_needs_no_call(tmp_path):
    fake = FakeS3()
    caller = Caller(2)
    host_a = RollbackLock(ARN, "shop-api:4", root=tmp_path / "a", s3=(caller, fake, BUCKET))
    host_b = RollbackLock(ARN, "shop-api:4", root=tmp_path / "b", s3=(caller, fake, BUCKET))
    first = host_a.take(incident_id="INC-A", **{"from": "shop-api:4"})
    assert first.held and first.scope == "everywhere"
    second = host_b.take(incident_id="INC-B")
    assert not second.held and second.holder["incident_id"] == "INC-A"
    assert not [p for p in (tmp_path / "b").rglob("*") if p.is_file()], "the loser keeps no local lock"
    calls = len(fake.calls)
    same_host = RollbackLock(ARN, "shop-api:4", root=tmp_path / "a", s3=(caller, fake, BUCKET)).take(incident_id="X")
    assert not same_host.held and same_host.scope == "host" and same_host.holder["incident_id"] == "INC-A"
    assert len(fake.calls) == calls, "the local lock answers a run of the same machine without a call"
    host_a.release()
    assert fake.objects == {} and not [p for p in (tmp_path / "a").rglob("*") if p.is_file()]
    assert host_b.take(incident_id="INC-B").held, "released: the other host may roll back (it reads the service)"


def test_without_a_bucket_the_lock_is_local_one_run_per_service_and_revision(tmp_path):
    first, second = RollbackLock(ARN, "shop-api:4", root=tmp_path), RollbackLock(ARN, "shop-api:4", root=tmp_path)
    taken = first.take(incident_id="INC-A")
    assert taken.held and taken.scope == "host" and taken.where.startswith(str(tmp_path))
    refused = second.take(incident_id="INC-B")
    assert refused.held is False and refused.holder["incident_id"] == "INC-A"
    assert RollbackLock(ARN, "shop-api:5", root=tmp_path).take().held, "another revision is another rollback"
    other = "arn:aws:ecs:us-east-1:123456789012:service/shop/shop-web"
    assert RollbackLock(other, "shop-api:4", root=tmp_path).take().held
    first.release()
    assert second.take(incident_id="INC-B").held
    second.release()
    second.release()  # twice: nothing left to remove, no error


def test_a_local_lock_past_its_expiry_or_from_an_older_version_is_taken_over(tmp_path):
    dead = RollbackLock(ARN, "shop-api:4", root=tmp_path)
    assert dead.take(incident_id="INC-DEAD").held
    path = Path(dead.local.where)
    path.write_text(json.dumps(dict(json.loads(path.read_text()), expires="2000-01-01T00:00:00Z")))
    taken = RollbackLock(ARN, "shop-api:4", root=tmp_path).take(incident_id="INC-B")
    assert taken.held and json.loads(path.read_text())["incident_id"] == "INC-B"
    # a lock file of the previous version ("{}", no expiry): its age decides (10 minutes)
    path.write_text("{}")
    assert not RollbackLock(ARN, "shop-api:4", root=tmp_path).take().held
    old = lk.utc_now() + datetime.timedelta(seconds=601)
    later = RollbackLock(ARN, "shop-api:4", root=tmp_path)
    later.local.clock = lambda: old
    assert later.take().held


def test_a_bucket_that_cannot_be_written_fails_the_take_naming_the_call_and_keeps_no_local_lock(tmp_path):
    fake = FakeS3()
    fake.down = True
    host = RollbackLock(ARN, "shop-api:4", root=tmp_path, s3=(Caller(0), fake, BUCKET))
    with pytest.raises(LedgerError) as failed:
        host.take(incident_id="INC-A")
    details = failed.value.fail_result()
    assert (details["aws_operation"], details["aws_error_code"]) == ("PutObject", "InternalError"), details
    assert f"s3://{BUCKET}/{lk.S3_PREFIX}ecs-rollback/" in details["resource"]
    assert not [p for p in tmp_path.rglob("*") if p.is_file()], "the local lock is released with the failure"


def test_a_local_directory_that_cannot_be_written_leaves_the_bucket_lock_alone_in_charge(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    fake = FakeS3()
    first = RollbackLock(ARN, "shop-api:4", root=blocker / ".claims", s3=(Caller(2), fake, BUCKET))
    taken = first.take(incident_id="INC-A")
    assert taken.held and taken.scope == "everywhere"
    refused = RollbackLock(ARN, "shop-api:4", root=blocker / ".claims", s3=(Caller(2), fake, BUCKET))
    assert not refused.take(incident_id="INC-B").held
    with pytest.raises(LedgerError, match="cannot write claim"):
        RollbackLock(ARN, "shop-api:4", root=blocker / ".claims").take(incident_id="INC-C")
