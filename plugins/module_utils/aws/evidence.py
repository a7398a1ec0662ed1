# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Evidence in S3: copying log objects into an evidence bucket, and writing captured evidence there.

Every object written here carries its SHA-256 twice: as S3's own checksum (``ChecksumSHA256``, which
S3 verifies on upload, so what lands is what was hashed) and as the metadata ``firebreak-sha256``
(hex, what the timeline records).  An object already in the evidence bucket with the same source and
the same SHA-256 is not written again (idempotent re-runs; an Object Lock bucket would keep every
extra version).

Pure decisions (``evidence_key``, ``plan_copies``, ``validate_bucket_name``) are unit-tested without
AWS; the API helpers take a boto3 S3 client and a ``step.Caller``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError, StepError

SHA256_METADATA = "firebreak-sha256"
SOURCE_METADATA = "firebreak-source"
SOURCE_ETAG_METADATA = "firebreak-source-etag"
INCIDENT_METADATA = "firebreak-incident"

# Objects up to this size are read once, hashed and uploaded with their checksum (S3 verifies it);
# larger ones are hashed while streaming and copied server-side.
INLINE_LIMIT = 64 * 1024 * 1024
COPY_LIMIT = 5 * 1024 * 1024 * 1024  # CopyObject's limit for one request
CHUNK = 1024 * 1024

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BUCKET_BAD_CHARS = re.compile(r"[^a-z0-9.-]")
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


class EvidenceInputError(StepError, ValueError):
    """A bad value, found before anything was changed."""


def bucket_name_problem(name):
    """Why ``name`` is not a general purpose bucket name AWS would accept, or None.

    AWS's rules: 3-63 characters; lowercase letters, digits, ``.`` and ``-``; beginning and ending with a
    letter or digit; no two adjacent periods; not formatted as an IP address; not beginning with
    ``xn--``, ``sthree-`` or ``amzn-s3-demo-``; not ending with ``-s3alias``, ``--ol-s3``, ``.mrap``,
    ``--x-s3`` or ``--table-s3``.  Checked before any call: botocore refuses some of these names itself
    (with a ParamValidationError that reads like a failed connection) and sends others."""
    if not isinstance(name, str):
        return f"a {type(name).__name__}, not a name"
    bad = sorted(set(_BUCKET_BAD_CHARS.findall(name)))
    if bad:
        return f"characters {''.join(bad)!r} are not allowed (only lowercase letters, digits, '.' and '-')"
    if not 3 <= len(name) <= 63:
        return f"{len(name)} characters, AWS allows 3 to 63"
    if not _BUCKET_RE.match(name):
        return "it must begin and end with a lowercase letter or a digit"
    if ".." in name:
        return "two adjacent periods are not allowed"
    if re.match(r"^\d+\.\d+\.\d+\.\d+$", name):
        return "it must not be formatted as an IP address"
    for prefix in _BUCKET_RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f"the prefix {prefix!r} is reserved by AWS"
    for suffix in _BUCKET_RESERVED_SUFFIXES:
        if name.endswith(suffix):
            return f"the suffix {suffix!r} is reserved by AWS"
    return None


def validate_bucket_name(value, option="bucket"):
    """The bucket name, or ``EvidenceInputError`` naming the option, the value and the rule it breaks."""
    text = str(value or "").strip()
    problem = bucket_name_problem(text)
    if problem:
        raise EvidenceInputError(f"{option}: {value!r} is not a valid S3 bucket name: {problem}")
    return text


def normalize_prefix(value):
    """``''`` or a prefix ending in ``/`` (``logs`` -> ``logs/``); a leading ``/`` is dropped."""
    text = str(value or "").strip().lstrip("/")
    if text and not text.endswith("/"):
        text += "/"
    return text


def evidence_key(dest_prefix, source_bucket, source_key):
    """Where a copied object goes: ``<dest_prefix><source_bucket>/<source_key>`` (the source stays visible)."""
    return f"{normalize_prefix(dest_prefix)}{source_bucket}/{source_key}"


def sha256_b64(hex_digest):
    """S3's ``ChecksumSHA256`` (base64 of the digest) for a hex digest."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def strip_etag(etag):
    return str(etag or "").strip('"')


def plan_copies(sources, existing):
    """Decide, per source object, whether to copy it.

    ``sources``: ``[{"key", "dest_key", "size", "etag", "version_id"}]`` from the source listing;
    ``existing``: ``{dest_key: {"size", "sha256", "source_etag"}}`` for the evidence objects already
    there (from their metadata).  An evidence object with the same size, the same source ETag and a
    recorded SHA-256 is already copied; anything else is (re)copied.

    Returns ``(to_copy, already)``: lists of the source dicts, ``already`` items gaining ``sha256``.
    """
    to_copy, already = [], []
    for source in sources:
        found = existing.get(source["dest_key"])
        if (
            found
            and found.get("sha256")
            and found.get("size") == source["size"]
            and strip_etag(found.get("source_etag")) == strip_etag(source.get("etag"))
        ):
            already.append(dict(source, sha256=found["sha256"]))
        else:
            to_copy.append(source)
    return to_copy, already


def existing_evidence(s3, caller, bucket, key):
    """``{"size", "sha256", "source_etag"}`` of an evidence object, or ``None`` when absent."""
    try:
        head = caller(s3, "head_object", f"s3://{bucket}/{key}", Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except StepAWSError as err:
        if err.code in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    metadata = head.get("Metadata") or {}
    sha = metadata.get(SHA256_METADATA)
    if not sha and head.get("ChecksumSHA256") and "-" not in head["ChecksumSHA256"]:
        sha = base64.b64decode(head["ChecksumSHA256"]).hex()
    return {
        "size": head.get("ContentLength"),
        "sha256": sha,
        "source_etag": metadata.get(SOURCE_ETAG_METADATA),
        "version_id": head.get("VersionId"),
    }


def put_evidence(s3, caller, bucket, key, body, incident_id=None, source=None, content_type=None, replace=True):
    """Write ``body`` (bytes) as evidence unless an object with the same SHA-256 is already there
    (or, with ``replace=False``, any object under that key).

    Returns ``{"bucket", "key", "size", "sha256", "version_id", "changed"}``."""
    digest = hashlib.sha256(body).hexdigest()
    found = existing_evidence(s3, caller, bucket, key)
    record = {"bucket": bucket, "key": key, "size": len(body), "sha256": digest}
    if found and found.get("sha256") == digest:
        return dict(record, version_id=found.get("version_id"), changed=False)
    if found and not replace:
        return dict(
            record,
            size=found.get("size"),
            sha256=found.get("sha256"),
            version_id=found.get("version_id"),
            changed=False,
        )
    metadata = {SHA256_METADATA: digest}
    if incident_id:
        metadata[INCIDENT_METADATA] = str(incident_id)
    if source:
        metadata[SOURCE_METADATA] = str(source)[:1024]
    params = {
        "Bucket": bucket,
        "Key": key,
        "Body": body,
        "ChecksumAlgorithm": "SHA256",
        "ChecksumSHA256": sha256_b64(digest),
        "Metadata": metadata,
    }
    if content_type:
        params["ContentType"] = content_type
    answer = caller(s3, "put_object", f"s3://{bucket}/{key}", **params)
    return dict(record, version_id=answer.get("VersionId"), changed=True)


def check_bucket(s3, caller, bucket, option="bucket"):
    """Fail with ``EvidenceInputError`` naming the bucket when it does not exist or is not reachable."""
    try:
        caller(s3, "head_bucket", f"bucket {bucket!r}", Bucket=bucket)
    except StepAWSError as err:
        if err.code in ("404", "NoSuchBucket", "NotFound"):
            raise EvidenceInputError(f"{option}: S3 bucket {bucket!r} does not exist") from None
        if err.code in ("403", "AccessDenied", "Forbidden"):
            raise EvidenceInputError(f"{option}: S3 bucket {bucket!r} is not accessible (403)") from None
        raise


# --------------------------------------------------------------------------------------------------
# Copying objects into the evidence bucket
# --------------------------------------------------------------------------------------------------


def list_objects(s3, caller, bucket, prefix, limit=None):
    """``[{"key", "size", "etag", "last_modified"}]`` under ``prefix`` (at most ``limit + 1``: the
    caller tells "too many" from "exactly the limit")."""
    found = []
    params = {"Bucket": bucket}
    if prefix:
        params["Prefix"] = prefix
    try:
        for page in caller.paginate(
            s3,
            "list_objects_v2",
            f"s3://{bucket}/{prefix}",
            token_in="ContinuationToken",  # noqa: S106 - a pagination token's name
            token_out="NextContinuationToken",  # noqa: S106
            **params,
        ):
            for obj in page.get("Contents") or []:
                if obj["Key"].endswith("/") and not obj.get("Size"):
                    continue  # a "folder" placeholder
                found.append(
                    {
                        "key": obj["Key"],
                        "size": obj.get("Size", 0),
                        "etag": strip_etag(obj.get("ETag")),
                        "last_modified": obj.get("LastModified"),
                    }
                )
                if limit is not None and len(found) > limit:
                    return found
    except StepAWSError as err:
        if err.code in ("NoSuchBucket", "404"):
            raise EvidenceInputError(f"S3 bucket {bucket!r} does not exist") from None
        raise
    return found


def copy_object(s3, caller, source_bucket, source, bucket, incident_id, inline_limit=INLINE_LIMIT):
    """Copy one object into the evidence bucket, hashing it on the way; returns the record.

    Up to ``inline_limit`` bytes: read once, hashed, uploaded with ``ChecksumSHA256`` (S3 rejects the
    upload if the bytes differ from the hash). Larger: hashed while streaming, then copied server-side
    (``CopyObject``, at most 5 GiB) with S3 computing its own SHA-256, which must match ours."""
    key, dest_key = source["key"], source["dest_key"]
    where = f"s3://{source_bucket}/{key}"
    answer = caller(s3, "get_object", where, Bucket=source_bucket, Key=key)
    digest = hashlib.sha256()
    chunks = []
    size = 0
    body = answer["Body"]
    try:
        for chunk in iter(lambda: body.read(CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
            if size <= inline_limit:
                chunks.append(chunk)
            else:
                chunks = None
    finally:
        body.close()
    sha = digest.hexdigest()
    version = answer.get("VersionId")
    etag = strip_etag(answer.get("ETag")) or source.get("etag")
    metadata = {
        SHA256_METADATA: sha,
        SOURCE_METADATA: f"{where}" + (f"?versionId={version}" if version and version != "null" else ""),
        SOURCE_ETAG_METADATA: etag or "",
    }
    if incident_id:
        metadata[INCIDENT_METADATA] = str(incident_id)
    dest = f"s3://{bucket}/{dest_key}"
    if chunks is not None:
        put = caller(
            s3,
            "put_object",
            dest,
            Bucket=bucket,
            Key=dest_key,
            Body=b"".join(chunks),
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=sha256_b64(sha),
            Metadata=metadata,
        )
        stored_checksum, dest_version = put.get("ChecksumSHA256"), put.get("VersionId")
    else:
        if size > COPY_LIMIT:
            raise EvidenceInputError(f"{where} is {size} bytes: larger than one CopyObject (5 GiB) allows")
        copy_source = {"Bucket": source_bucket, "Key": key}
        if version and version != "null":
            copy_source["VersionId"] = version
        put = caller(
            s3,
            "copy_object",
            dest,
            Bucket=bucket,
            Key=dest_key,
            CopySource=copy_source,
            MetadataDirective="REPLACE",
            Metadata=metadata,
            ChecksumAlgorithm="SHA256",
        )
        stored_checksum, dest_version = (put.get("CopyObjectResult") or {}).get("ChecksumSHA256"), put.get("VersionId")
    if stored_checksum and "-" not in stored_checksum and stored_checksum != sha256_b64(sha):
        raise EvidenceInputError(f"{dest}: S3 stored SHA-256 {stored_checksum}, but the bytes read hash to {sha}")
    return {
        "key": key,
        "dest_key": dest_key,
        "size": size,
        "sha256": sha,
        "etag": etag,
        "source_version_id": version,
        "version_id": dest_version,
        "copied": True,
    }


def manifest_body(source_bucket, prefix, records):
    """The evidence manifest (deterministic JSON: same objects and hashes, same bytes)."""
    return json.dumps(
        {
            "source": f"s3://{source_bucket}/{prefix}",
            "objects": [
                {k: r.get(k) for k in ("key", "dest_key", "size", "sha256", "etag")}
                for r in sorted(records, key=lambda r: r["key"])
            ],
        },
        indent=1,
        sort_keys=True,
    ).encode("utf-8")
