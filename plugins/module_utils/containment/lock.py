# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A lock every responder's run sees: one S3 object taken with a conditional write, for a step that must not run twice
on one resource at once (the ECS rollback: two responders, or two incidents, rolling one service back from one
revision would update it twice).

take
    ``PutObject`` with ``If-None-Match: *``: S3 lets exactly one writer create the key (the others get 412
    PreconditionFailed, or 409 ConditionalRequestConflict while a write of the key is in flight). The body says who
    holds it: ``owner`` (a random token of this run), ``incident_id``, ``operator``, ``host``, ``pid``, ``at`` and
    ``expires`` (UTC), and what it is for.
held by another
    The loser reads the object. While ``expires`` is ahead, the lock is held: the caller gets the holder's body (who,
    since when) and does nothing. A lock deleted between the write and the read (released meanwhile) is tried again.
stale
    A lock past its ``expires`` (or written on this machine by a process that is gone) was left by a run that died.
    It is taken over with ``PutObject`` ``If-Match: <the ETag read>``: of two runs taking over one stale lock, the
    first write changes the ETag and the second gets 412, reads the new holder and backs off. Every body carries its
    own ``owner`` token and time, so two bodies never share an ETag. A lock of this machine whose process is gone is
    adopted as it is (its ETag kept for the release, no write): the local lock, taken first, orders this machine's
    runs.
release
    ``DeleteObject`` with ``If-Match: <our ETag>``: a lock taken over meanwhile (ours had expired) is someone else's
    and stays; a lock already gone is no error.

The local lock (``LocalLock``) is the same thing as a file created with ``O_EXCL`` in the local claim directory: it
orders runs on one machine without a call to S3 and is what holds when no bucket is configured.
"""

from __future__ import annotations

import base64
import datetime
import getpass
import hashlib
import json
import os
import socket
import uuid

from ansible_collections.firebreak.runbooks.plugins.module_utils.containment.ledger import (
    LedgerError,
    LocalStore,
    part,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError, iso_utc, utc_now

S3_PREFIX = "firebreak/locks/"
TAKEN_CODES = frozenset(("PreconditionFailed", "ConditionalRequestConflict", "412", "409"))
GONE_CODES = frozenset(("NoSuchKey", "NotFound", "404"))
# How many times one take may find the lock changing under it (released, taken over) before it gives up.
MAX_ROUNDS = 5


def lock_key(*parts):
    return "/".join(part(p) for p in parts)


def whoami():
    """``operator`` and ``host`` for a lock body: the user (AWX's job user when the job passes it in the environment)
    and this machine."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in a container
        user = os.environ.get("USER") or "unknown"
    return {"operator": os.environ.get("FIREBREAK_OPERATOR") or user, "host": socket.gethostname(), "pid": os.getpid()}


def lock_body(ttl, now=None, **fields):
    """The JSON body of a lock taken now for ``ttl`` seconds; ``fields`` add what it is for and who holds it."""
    now = now or utc_now()
    body = dict(whoami(), owner=uuid.uuid4().hex, **fields)
    body.update(at=iso_utc(now), expires=iso_utc(now + datetime.timedelta(seconds=ttl)))
    return body


def expired(body, now=None):
    """True when ``body``'s ``expires`` is past (an unreadable or missing one counts as past: the lock is junk)."""
    now = now or utc_now()
    try:
        expires = datetime.datetime.fromisoformat(str(body["expires"]).replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError):
        return True
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=datetime.UTC)
    return expires <= now


def process_gone(body):
    """True when ``body`` was written on this machine by a process that no longer runs (its lock is abandoned)."""
    pid = body.get("pid")
    if body.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it runs (as another user)
        return False
    return False


def abandoned(body, now=None):
    """A lock another run may take over: past its ``expires``, or left on this machine by a process that is gone."""
    return expired(body, now) or process_gone(body)


def describe_holder(body):
    """``incident INC-1 (operator alice on host jump-1, pid 4242) since 2026-12-07T04:50:00Z``."""
    who = f"operator {body.get('operator') or '?'} on host {body.get('host') or '?'}"
    if body.get("pid") is not None:
        who += f", pid {body['pid']}"
    incident = body.get("incident_id")
    head = f"incident {incident} ({who})" if incident else f"a run without an incident id ({who})"
    return f"{head} since {body.get('at') or '?'}"


class Taken:
    """The answer of a take: ``held`` (this run holds the lock now), ``holder`` (the body of the run that holds it,
    when not ``held``), ``took_over`` (the stale body this run replaced), ``where`` (the lock's location), ``scope``
    (``everywhere``: the bucket; ``host``: the local directory only)."""

    def __init__(self, held, where, scope, holder=None, took_over=None):
        self.held, self.where, self.scope, self.holder, self.took_over = held, where, scope, holder, took_over

    def summary(self):
        out = {"scope": self.scope, "where": self.where, "held": self.held}
        if self.holder is not None:
            out["holder"] = self.holder
        if self.took_over is not None:
            out["took_over"] = self.took_over
        return out


class S3Lock:
    """One lock object ``s3://bucket/firebreak/locks/<key>``; every call through ``caller`` (bounded retries)."""

    scope = "everywhere"

    def __init__(self, caller, client, bucket, key, prefix=S3_PREFIX, max_rounds=MAX_ROUNDS, clock=utc_now):
        self.caller, self.client, self.bucket = caller, client, bucket
        self.key = prefix + key
        self.max_rounds = max_rounds
        self.clock = clock
        self.etag = None

    @property
    def where(self):
        return f"s3://{self.bucket}/{self.key}"

    def _put(self, data, **condition):
        answer = self.caller(
            self.client,
            "put_object",
            f"rollback lock {self.where}",
            Bucket=self.bucket,
            Key=self.key,
            Body=data,
            ContentType="application/json",
            ContentMD5=base64.b64encode(hashlib.md5(data).digest()).decode("ascii"),  # noqa: S324 - S3's integrity
            **condition,
        )
        return answer.get("ETag")

    def _read(self):
        """``(body, etag)`` of the lock now, or ``(None, None)`` when there is none."""
        try:
            answer = self.caller(
                self.client, "get_object", f"rollback lock {self.where}", Bucket=self.bucket, Key=self.key
            )
        except StepAWSError as err:
            if err.code in GONE_CODES:
                return None, None
            raise
        raw = answer["Body"].read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        return (body if isinstance(body, dict) else {}), answer.get("ETag")

    def take(self, body):
        """Take the lock with ``body`` (a dict, see ``lock_body``). Raises ``LedgerError`` when S3 cannot be read or
        written (naming the call), or when the lock kept changing under this run for ``max_rounds`` rounds."""
        data = json.dumps(body, sort_keys=True).encode("utf-8")
        try:
            for _round in range(self.max_rounds):
                try:
                    self.etag = self._put(data, IfNoneMatch="*")
                    return Taken(True, self.where, self.scope)
                except StepAWSError as err:
                    if err.code not in TAKEN_CODES:
                        raise
                current, etag = self._read()
                if current is None:
                    continue  # released between our write and our read: try again
                if not abandoned(current, self.clock()):
                    return Taken(False, self.where, self.scope, holder=current)
                if not expired(current, self.clock()):
                    # left on this machine by a process that is gone: the local lock (taken first) orders this
                    # machine's runs, so this run adopts the lock as it is (no new version in the bucket)
                    self.etag = etag
                    return Taken(True, self.where, self.scope, took_over=current)
                try:
                    self.etag = self._put(data, IfMatch=etag)
                    return Taken(True, self.where, self.scope, took_over=current)
                except StepAWSError as err:
                    if err.code not in TAKEN_CODES | GONE_CODES:
                        raise
                    # another run took it over first (or it was released): look again
        except StepAWSError as err:
            raise LedgerError(f"cannot take the rollback lock {self.where}: {err}", err) from None
        raise LedgerError(f"cannot take the rollback lock {self.where}: it changed hands {self.max_rounds} times")

    def release(self):
        """Delete the lock if it is still ours (``If-Match`` our ETag). True when deleted; False when it was gone or
        another run had taken it over (ours had expired). Raises ``LedgerError`` when S3 cannot be written."""
        if self.etag is None:
            return False
        etag, self.etag = self.etag, None
        try:
            self.caller(
                self.client,
                "delete_object",
                f"rollback lock {self.where}",
                Bucket=self.bucket,
                Key=self.key,
                IfMatch=etag,
            )
        except StepAWSError as err:
            if err.code in TAKEN_CODES | GONE_CODES:
                return False
            raise LedgerError(f"cannot release the rollback lock {self.where}: {err}", err) from None
        return True


class LocalLock:
    """The same lock as a file in the local claim directory (``O_EXCL``): orders the runs of one machine only. A file
    past its ``expires`` (or older than ``stale`` seconds, when its body is unreadable) is taken over."""

    scope = "host"

    def __init__(self, root, key, stale, clock=utc_now):
        self.store = LocalStore(root)
        self.key = key
        self.stale = stale
        self.clock = clock
        self.held = False

    @property
    def where(self):
        return self.store._path(self.key)

    def _read(self):
        try:
            with open(self.where, encoding="utf-8") as handle:
                raw = handle.read()
            mtime = os.path.getmtime(self.where)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise LedgerError(f"cannot read the rollback lock {self.where}: {exc.strerror}") from None
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict) or "expires" not in body:
            # a lock written by an older version (or cut short): its age decides
            made = datetime.datetime.fromtimestamp(mtime, datetime.UTC)
            body = dict(body if isinstance(body, dict) else {}, at=iso_utc(made))
            body["expires"] = iso_utc(made + datetime.timedelta(seconds=self.stale))
        return body

    def take(self, body):
        text = json.dumps(body, sort_keys=True)
        for _round in range(2):
            if self.store.create(self.key, text):
                self.held = True
                return Taken(True, self.where, self.scope)
            current = self._read()
            if current is None:
                continue  # released meanwhile: try again
            if not abandoned(current, self.clock()):
                return Taken(False, self.where, self.scope, holder=current)
            self.store.delete(self.key)  # stale: the next round creates it (O_EXCL: one run wins)
        return Taken(False, self.where, self.scope, holder=self._read() or {})

    def release(self):
        if self.held:
            self.store.delete(self.key)
            self.held = False
            return True
        return False
