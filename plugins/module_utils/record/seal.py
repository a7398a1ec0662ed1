# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Seals: the timeline's chain head recorded outside the file, so a cut tail or a rewritten chain is found.

A hash chain alone proves only that the file is consistent with itself: removing the last lines, or
rewriting every record and every hash, still verifies.  A seal is ``{incident_id, seq, hash, sealed_at,
operator}`` of the chain head at one moment, printed in the run's output and, where configured, stored
in an S3 bucket with Object Lock retention (COMPLIANCE: nobody, the responder included, can change or
delete it before the retention ends).  ``check_seals`` compares a timeline with every seal it is given:
fewer records than a seal's ``seq``, or another hash at that ``seq``, is a failure naming the seal.
"""

from __future__ import annotations

import datetime
import hashlib
import json

from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError, iso_utc

SEAL_VERSION = 1
DEFAULT_PREFIX = "firebreak/seals"
SEAL_FIELDS = ("incident_id", "seq", "hash", "sealed_at", "operator", "records", "first_hash", "version")


class SealError(Exception):
    """A seal cannot be written or read; the message names it."""


def make_seal(records, operator=None, now=None):
    """The seal of the verified ``records``' head."""
    if not records:
        raise SealError("an empty timeline cannot be sealed")
    head = records[-1]
    return {
        "version": SEAL_VERSION,
        "incident_id": head.get("incident_id"),
        "seq": head["seq"],
        "hash": head["hash"],
        "records": len(records),
        "first_hash": records[0]["hash"],
        "sealed_at": iso_utc(now or datetime.datetime.now(datetime.UTC)),
        "operator": operator,
    }


def seal_key(prefix, incident_id, seq, head_hash):
    """``<prefix>/<incident_id>/seal-<seq>-<hash12>.json``: listing a prefix lists an incident's seals in order."""
    prefix = (prefix or DEFAULT_PREFIX).strip("/")
    return f"{prefix}/{incident_id}/seal-{int(seq):09d}-{head_hash[:12]}.json"


def parse_seal(value, source="seal"):
    """A seal from a dict or its JSON text (as printed in a run's output); raises ``SealError``."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("SEAL "):
            text = text[5:]
        try:
            value = json.loads(text)
        except ValueError:
            raise SealError(
                f"{source}: not a seal (expected the JSON printed by incident_seal): {text[:80]!r}"
            ) from None
    if not isinstance(value, dict) or not isinstance(value.get("seq"), int) or not isinstance(value.get("hash"), str):
        raise SealError(f"{source}: not a seal (needs an integer seq and a hash)")
    return dict(value, source=value.get("source") or source)


def describe(seal):
    who = seal.get("operator")
    if isinstance(who, dict):
        who = who.get("user")
    return "seal {} (seq {}, hash {}..., sealed {} by {})".format(
        seal.get("source") or "?", seal["seq"], seal["hash"][:12], seal.get("sealed_at") or "?", who or "unknown"
    )


def check_seals(records, seals, incident_id=None):
    """Problems found comparing the verified ``records`` with every seal (an empty list when all hold)."""
    problems = []
    for seal in seals:
        if incident_id and seal.get("incident_id") not in (None, incident_id):
            problems.append(f"{describe(seal)} is for incident {seal.get('incident_id')!r}, not {incident_id!r}")
            continue
        seq = seal["seq"]
        if seq > len(records):
            problems.append(
                f"{describe(seal)}: the timeline has only {len(records)} records, the seal covers {seq}: "
                "records were removed after it was sealed"
            )
        elif records[seq - 1]["hash"] != seal["hash"]:
            problems.append(
                f"{describe(seal)}: the record at seq {seq} has hash {records[seq - 1]['hash'][:12]}..., "
                "not the sealed one: the chain was rewritten after it was sealed"
            )
    return problems


def _body(seal):
    return (json.dumps({k: seal.get(k) for k in SEAL_FIELDS}, sort_keys=True) + "\n").encode("utf-8")


def put_seal(s3, caller, bucket, prefix, seal, retention_days, mode):
    """Store ``seal`` under Object Lock retention; returns ``(key, version_id, changed)``.

    A head already sealed under the same key with the same hash is not written again."""
    key = seal_key(prefix, seal["incident_id"], seal["seq"], seal["hash"])
    try:
        caller(s3, "head_object", f"seal s3://{bucket}/{key}", Bucket=bucket, Key=key)
        return key, None, False
    except StepAWSError as exc:
        if exc.code not in ("404", "NoSuchKey", "NotFound"):
            raise
    lock = caller(s3, "get_object_lock_configuration", f"bucket {bucket!r}", Bucket=bucket)
    if (lock.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled") != "Enabled":
        raise SealError(
            f"bucket {bucket!r} does not have Object Lock enabled: a seal there could be changed afterwards; "
            "use a bucket created with Object Lock"
        )
    body = _body(seal)
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=int(retention_days))
    answer = caller(
        s3,
        "put_object",
        f"seal s3://{bucket}/{key}",
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType="application/json",
        ContentMD5=_md5(body),
        ObjectLockMode=mode,
        ObjectLockRetainUntilDate=until,
        Metadata={"incident": str(seal["incident_id"]), "seq": str(seal["seq"])},
    )
    return key, answer.get("VersionId"), True


def _md5(body):
    import base64

    return base64.b64encode(hashlib.md5(body).digest()).decode("ascii")  # noqa: S324 - S3's Content-MD5


def list_seals(s3, caller, bucket, prefix, incident_id):
    """Every seal of ``incident_id`` stored in ``bucket`` (each object version, so an overwrite is seen)."""
    base = f"{(prefix or DEFAULT_PREFIX).strip('/')}/{incident_id}/"
    seals = []
    for page in caller.paginate_multi(
        s3,
        "list_object_versions",
        f"seals s3://{bucket}/{base}",
        {"KeyMarker": "NextKeyMarker", "VersionIdMarker": "NextVersionIdMarker"},
        Bucket=bucket,
        Prefix=base,
    ):
        for version in page.get("Versions") or []:
            key = version["Key"]
            got = caller(
                s3,
                "get_object",
                f"seal s3://{bucket}/{key}",
                Bucket=bucket,
                Key=key,
                VersionId=version["VersionId"],
            )
            seals.append(parse_seal(got["Body"].read().decode("utf-8"), source=f"s3://{bucket}/{key}"))
    return seals


def s3_client(endpoint_url=None, region=None, budget=60):
    """A boto3 S3 client for the controller (environment credentials), botocore retries off."""
    import boto3
    from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import client_config

    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url or None, region_name=region or None, config=client_config(budget)
    )
