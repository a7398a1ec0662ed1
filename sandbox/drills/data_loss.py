"""Drill: objects of the versioned uploads bucket deleted and overwritten (seeds/incident-procedures.md, "Data Loss
or Corruption"; seeds/serverless-neptune-runbook.md, "Data Recovery").

The fault: after a recorded point in time, a bad job deletes ``uploads/avatar.png`` and overwrites
``uploads/report.csv`` in the seeded ``firebreak-sandbox-uploads`` bucket (versioning on), and writes a new key
``uploads/junk.tmp``. The runbook (``playbooks/data_loss.yml``) must freeze writes to the bucket, restore the prefix
``uploads/`` to its state at that time and pass the integrity check (two objects were there before the fault;
the new key stays and is reported, so three now; the two damaged keys must exist). ``verify`` checks the bytes of both
keys.

The drill runs with ``data_loss_freeze_writes: false``: the sandbox evaluates a bucket policy's Deny without the
request's principal (docs/sandbox.md, "S3 bucket policies"), so the freeze would refuse the restore's own
DeleteObject/CopyObject, which AWS exempts (the caller is always exempt). The freeze itself is exercised by
tests/integration/test_data_loss.py (placed, planned in check mode, gated in production).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

PLAYBOOK = "playbooks/data_loss.yml"
DESCRIPTION = "S3 objects deleted and overwritten by a bad job: freeze writes, restore versions, check integrity"
BUCKET = "firebreak-sandbox-uploads"
DELETED = "uploads/avatar.png"
OVERWRITTEN = "uploads/report.csv"
CREATED = "uploads/junk.tmp"


def _body(s3, key: str, **kwargs) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key, **kwargs)["Body"].read()


def inject(sandbox) -> dict:
    """Record the time, then delete one key, overwrite another and add a third; return the extra vars."""
    s3 = sandbox.client("s3")
    good = {key: _body(s3, key) for key in (DELETED, OVERWRITTEN)}
    time.sleep(1.1)  # S3 keeps LastModified to the second here: the fault is strictly after the time
    since = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.1)
    s3.delete_object(Bucket=BUCKET, Key=DELETED)
    s3.put_object(Bucket=BUCKET, Key=OVERWRITTEN, Body=b"id,total\n")
    s3.put_object(Bucket=BUCKET, Key=CREATED, Body=b"junk")
    return {
        "data_loss_bucket": BUCKET,
        "data_loss_prefix": "uploads/",
        "data_loss_since": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data_loss_expect_prefix": "uploads/",
        "data_loss_expect_count": 3,
        "data_loss_expect_keys": [DELETED, OVERWRITTEN],
        "data_loss_freeze_writes": False,  # the sandbox gap above
        "_drill": {
            "bucket": BUCKET,
            "good": {key: body.decode("latin-1") for key, body in good.items()},
            "created": CREATED,
            "fault": f"{DELETED} deleted, {OVERWRITTEN} overwritten, {CREATED} written in s3://{BUCKET} after {since}",
        },
    }


def frozen_by(s3, bucket: str) -> list[str]:
    """The Sids of the freeze statements in the bucket policy (none without a policy)."""
    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchBucketPolicy":
            return []
        raise
    return [st.get("Sid", "") for st in policy.get("Statement", []) if st.get("Effect") == "Deny"]


def verify(sandbox, context: dict) -> list[str]:
    """Check in moto that both damaged keys hold their bytes of before the fault and writes are frozen."""
    drill = context["_drill"]
    s3 = sandbox.client("s3")
    for key, body in drill["good"].items():
        try:
            now = _body(s3, key)
        except s3.exceptions.NoSuchKey:
            raise AssertionError(f"{key} is still deleted in s3://{drill['bucket']}: it was not restored") from None
        assert now == body.encode("latin-1"), f"{key} holds {now!r}, expected its bytes before the fault {body!r}"
    return [f"{', '.join(sorted(drill['good']))} restored to their bytes before the fault in s3://{drill['bucket']}"]
