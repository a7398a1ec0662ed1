# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The durable copy of an incident timeline: one S3 object per record, written as the run goes.

An AWX job's execution environment is thrown away when the job ends, and the timeline file with it.
With an evidence bucket configured, ``append_record`` (record/timeline.py) writes every record through
to ``s3://<bucket>/<prefix>/<incident_id>/<seq, 12 digits>.json`` (the record's canonical line), with a
**conditional write**: ``PutObject`` with ``If-None-Match: *``, which S3 refuses (412 PreconditionFailed,
or 409 ConditionalRequestConflict while another write of that key is in flight) once the key exists.
The sequence number is therefore taken by exactly one writer: a writer that loses reads the records it
lacks from the bucket, verifies that they continue its own chain, appends them to its local file and tries
again at the next number.  The next job of the incident, in an empty container, starts the same way: its
first write finds seq 1 taken, it reads the chain from the bucket, and continues it.

The local file stays the working copy (the report, the containment lookup and the seal read it).  A failed
write-through never stops the run: the record is kept in the local file, the failure is noted in the
timeline right after it, and the records the bucket lacks are copied there once it answers again.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import re
import time

from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import Caller, StepAWSError

DEFAULT_PREFIX = "firebreak/timelines"
# Seconds one S3 call may take, retries included (throttling, 5xx, connection errors).
DEFAULT_BUDGET = 5
# How many times one record may lose its sequence number to another writer before giving up.
MAX_CONFLICTS = 50
# After a failure, how long the write-through rests before it tries again (records meanwhile stay local).
RETRY_AFTER_SECONDS = 60
TAKEN_CODES = frozenset(("PreconditionFailed", "ConditionalRequestConflict", "412", "409"))
NOT_FOUND_CODES = frozenset(("NoSuchKey", "404", "NotFound"))
SEQ_DIGITS = 12


class DurableError(Exception):
    """The durable copy cannot be written or read; the message names the object."""


class DurableFork(DurableError):
    """The bucket holds another record at a sequence number the local file already has."""


def timeline_prefix(prefix, incident_id):
    return f"{(prefix or DEFAULT_PREFIX).strip('/')}/{incident_id}/"


def record_key(prefix, incident_id, seq):
    return f"{timeline_prefix(prefix, incident_id)}{int(seq):0{SEQ_DIGITS}d}.json"


def key_seq(key):
    """The sequence number of a record key, or None for another object under the prefix."""
    name = key.rsplit("/", 1)[-1]
    stem = name[: -len(".json")] if name.endswith(".json") else ""
    return int(stem) if stem.isdigit() and len(stem) == SEQ_DIGITS else None


def is_local_endpoint(url):
    """True for an endpoint on 127.0.0.1 or localhost (the sandbox)."""
    return bool(re.match(r"^https?://(127\.0\.0\.1|localhost)(:[0-9]+)?(/.*)?$", url or ""))


def open_durable(bucket, incident_id, endpoint_url=None, region=None, retention_days=None, refuse=None, **kwargs):
    """A ``DurableTimeline`` for the controller (environment credentials).  With ``refuse`` (why the bucket must
    not be reached) no client is made, and every write-through fails with that reason (noted, not fatal)."""
    if refuse:
        return DurableTimeline(None, bucket, incident_id, retention_days=retention_days, refuse=refuse, **kwargs)
    try:
        from ansible_collections.firebreak.runbooks.plugins.module_utils.record.seal import s3_client

        s3 = s3_client(endpoint_url, region, kwargs.get("budget", DEFAULT_BUDGET))
    except Exception as exc:  # no boto3, bad endpoint: noted at the first record
        return DurableTimeline(
            None, bucket, incident_id, retention_days=retention_days, refuse=f"cannot make an S3 client: {exc}"
        )
    return DurableTimeline(s3, bucket, incident_id, retention_days=retention_days, **kwargs)


class DurableTimeline:
    """The write-through to one incident's durable copy.

    ``s3`` is a boto3 S3 client (or a stand-in with ``put_object``, ``get_object``, ``list_objects_v2`` and
    ``get_object_lock_configuration``).  State kept per process: ``synced`` (the local file has been
    reconciled with the bucket once), ``failed`` (why the write-through is resting), ``noted`` (the failure
    was noted in the timeline).
    """

    def __init__(
        self,
        s3,
        bucket,
        incident_id,
        prefix=DEFAULT_PREFIX,
        retention_days=None,
        retention_mode="COMPLIANCE",
        budget=DEFAULT_BUDGET,
        max_conflicts=MAX_CONFLICTS,
        retry_after=RETRY_AFTER_SECONDS,
        clock=time.monotonic,
        caller=None,
        refuse=None,
    ):
        self.s3 = s3
        self.bucket = bucket
        self.incident_id = incident_id
        self.prefix = prefix or DEFAULT_PREFIX
        self.retention_days = retention_days
        self.retention_mode = retention_mode
        self.max_conflicts = max_conflicts
        self.retry_after = retry_after
        self.clock = clock
        self.caller = caller or Caller(budget)
        self.synced = False
        self.lock_checked = False
        self.failed = None
        self.failed_at = None
        self.noted = False
        self.warnings = []  # messages for the operator (the callback prints them)
        self.refuse = refuse
        self.conflicts = 0  # sequence numbers lost to other writers (a measure of contention)

    # ------------------------------------------------------------------ naming

    @property
    def location(self):
        return f"s3://{self.bucket}/{timeline_prefix(self.prefix, self.incident_id)}"

    def uri(self, seq):
        return f"s3://{self.bucket}/{record_key(self.prefix, self.incident_id, seq)}"

    # ------------------------------------------------------------------ state

    def active(self):
        """True when the write-through should be tried now (not resting after a failure)."""
        if self.failed is None:
            return True
        if isinstance(self.failed, DurableFork):
            return False  # a fork is not healed by waiting
        return self.clock() - self.failed_at >= self.retry_after

    def fail(self, error):
        error = error if isinstance(error, DurableError) else DurableError(str(error))
        if isinstance(error, DurableFork) and not isinstance(self.failed, DurableFork):
            self.noted = False  # a fork is news even during an outage: note it
        self.failed = error
        self.failed_at = self.clock()
        self.synced = False  # reconcile again before the next write

    def recovered(self):
        self.failed = None
        self.failed_at = None
        self.noted = False

    # ------------------------------------------------------------------ calls

    def _call(self, method, what, passthrough=(), **params):
        try:
            return self.caller(self.s3, method, what, **params)
        except StepAWSError as exc:
            if exc.code in passthrough:
                raise
            raise DurableError(f"{what}: {exc}") from None
        except Exception as exc:  # a stand-in or botocore failing otherwise: still only "not kept durably"
            raise DurableError(f"{what}: {type(exc).__name__}: {exc}") from None

    def check_bucket(self):
        """Object Lock must be on: a durable copy that can be changed afterwards is no evidence."""
        if self.refuse:
            raise DurableError(self.refuse)
        if self.lock_checked:
            return
        answer = self._call("get_object_lock_configuration", f"bucket {self.bucket!r}", Bucket=self.bucket)
        if (answer.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled") != "Enabled":
            raise DurableError(
                f"bucket {self.bucket!r} does not have Object Lock enabled: a timeline kept there could be changed "
                "afterwards; use a bucket created with Object Lock"
            )
        self.lock_checked = True

    def put(self, seq, data):
        """Write the record ``data`` (its canonical line and newline) at ``seq`` unless the key exists.

        True when written; False when another writer holds ``seq`` (412 PreconditionFailed, or 409
        ConditionalRequestConflict: S3's answer while a concurrent conditional write of the key is under way).
        Raises ``DurableError`` when S3 cannot be written within the budget."""
        params = {
            "Bucket": self.bucket,
            "Key": record_key(self.prefix, self.incident_id, seq),
            "Body": data,
            "IfNoneMatch": "*",
            "ContentType": "application/json",
            "ContentMD5": base64.b64encode(hashlib.md5(data).digest()).decode("ascii"),  # noqa: S324 - S3's
        }
        if self.retention_days:
            params["ObjectLockMode"] = self.retention_mode
            params["ObjectLockRetainUntilDate"] = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
                days=int(self.retention_days)
            )
        try:
            self._call("put_object", f"timeline record {self.uri(seq)}", passthrough=TAKEN_CODES, **params)
        except StepAWSError as exc:
            if exc.code in TAKEN_CODES:
                self.conflicts += 1
                return False
            raise DurableError(f"timeline record {self.uri(seq)}: {exc}") from None
        return True

    def get(self, seq):
        """The bytes stored at ``seq``, or None when there is no such record."""
        what = f"timeline record {self.uri(seq)}"
        try:
            answer = self._call(
                "get_object",
                what,
                passthrough=NOT_FOUND_CODES,
                Bucket=self.bucket,
                Key=record_key(self.prefix, self.incident_id, seq),
            )
        except StepAWSError as exc:
            if exc.code in NOT_FOUND_CODES:
                return None
            raise DurableError(f"{what}: {exc}") from None
        try:
            return answer["Body"].read()
        except Exception as exc:  # a body cut off mid-read
            raise DurableError(f"{what}: cannot read the body: {exc}") from None

    def seqs_after(self, seq=0):
        """The sequence numbers stored after ``seq``, in order (one listing, paged)."""
        base = timeline_prefix(self.prefix, self.incident_id)
        params = {"Bucket": self.bucket, "Prefix": base}
        if seq:
            params["StartAfter"] = record_key(self.prefix, self.incident_id, seq)
        found = []
        while True:
            page = self._call("list_objects_v2", f"timeline {self.location}", **params)
            for item in page.get("Contents") or []:
                number = key_seq(item["Key"])
                if number is not None and number > seq:
                    found.append(number)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return sorted(found)
            params["ContinuationToken"] = token

    def head(self):
        """The highest sequence number stored (0 when the durable copy is empty)."""
        seqs = self.seqs_after(0)
        return seqs[-1] if seqs else 0

    def read_after(self, seq, prev_hash, check):
        """The stored records after ``seq`` as ``[(raw_line_bytes, record)]``, each checked by
        ``check(record, raw, where, expected_seq, expected_prev)`` to continue the chain from ``prev_hash``.

        Stops at the first missing number (a record that a writer is still putting in place is picked up at
        its next try)."""
        out = []
        expected_prev = prev_hash
        for number in self.seqs_after(seq):
            if number != seq + len(out) + 1:
                break
            data = self.get(number)
            if data is None:
                break
            raw = data[:-1] if data.endswith(b"\n") else data
            try:
                rec = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise DurableError(f"{self.uri(number)}: not a timeline record (not valid JSON)") from None
            if not isinstance(rec, dict):
                raise DurableError(f"{self.uri(number)}: not a timeline record")
            check(rec, raw, self.uri(number), number, expected_prev)
            expected_prev = rec["hash"]
            out.append((raw, rec))
        return out


def read_durable_records(durable, check):
    """Every record of the durable copy, verified as one chain from seq 1 (``check`` as in ``read_after``).

    Raises ``DurableError`` for a gap (a stored number after a missing one) and lets ``check``'s own
    error through for a record that breaks the chain."""
    from ansible_collections.firebreak.runbooks.plugins.module_utils.record.timeline import ZERO_HASH

    seqs = durable.seqs_after(0)
    records = durable.read_after(0, ZERO_HASH, check)
    if len(records) != len(seqs):
        missing = len(records) + 1
        raise DurableError(
            f"{durable.location}: seq {missing} is missing but {len(seqs) - len(records)} later record(s) are stored "
            f"(up to seq {seqs[-1]}): a record was removed from the durable copy"
        )
    return [rec for _raw, rec in records]
