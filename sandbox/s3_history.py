"""Versioned S3 histories with a real point in time between "before" and "after" (tests and bench).

moto lists ``LastModified`` to the second (truncated), so a restore time must sit in a second of its
own: ``TimeSplit`` waits until a fresh second begins, takes the time half-way into it, and waits for
the next second before the "after" writes. Everything written before ``split()`` lists at or before
the time, everything after it lists after.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import time

UNICODE_KEY = "docs/sp ace+plus%25 ü-名前.txt"


def wait_for_second(offset: float = 0.0) -> float:
    """Sleep until ``offset`` seconds into the next whole second; returns that moment (epoch)."""
    now = time.time()
    moment = int(now) + 1 + offset
    time.sleep(moment - now)
    return moment


def split() -> str:
    """The restore time (ISO 8601, UTC) between writes made before and after this call."""
    moment = wait_for_second(0.5)
    at = datetime.datetime.fromtimestamp(moment, datetime.UTC)
    wait_for_second(0.05)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def versioned_bucket(s3, name: str) -> str:
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def put(s3, bucket: str, key: str, body: bytes, **extra) -> str:
    return s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)["VersionId"]


def delete(s3, bucket: str, key: str) -> str:
    return s3.delete_object(Bucket=bucket, Key=key)["VersionId"]


def build_docs_history(s3, bucket: str, prefix: str = "docs/") -> dict:
    """The standard history under ``prefix``: returns ``{"time", "expected", "versions"}``.

    ``expected`` maps each key to the body it had at the time (None: absent then).
    """
    p = prefix
    versions: dict[str, list[str]] = {}

    def rec(key, version_id):
        versions.setdefault(key, []).append(version_id)

    rec(
        f"{p}a.txt",
        put(
            s3,
            bucket,
            f"{p}a.txt",
            b"A1",
            ContentType="text/plain",
            Metadata={"rev": "1"},
            Tagging="state=good&owner=shop",
        ),
    )
    rec(f"{p}a.txt.bak", put(s3, bucket, f"{p}a.txt.bak", b"BAK1"))
    rec(f"{p}deleted.txt", put(s3, bucket, f"{p}deleted.txt", b"D1", ContentType="text/csv"))
    rec(f"{p}recreated.txt", put(s3, bucket, f"{p}recreated.txt", b"R1"))
    rec(UNICODE_KEY.replace("docs/", p, 1), put(s3, bucket, UNICODE_KEY.replace("docs/", p, 1), b"U1"))
    rec(f"{p}unchanged.txt", put(s3, bucket, f"{p}unchanged.txt", b"same"))
    rec(f"{p}gone-before.txt", put(s3, bucket, f"{p}gone-before.txt", b"G1"))
    rec(f"{p}gone-before.txt", delete(s3, bucket, f"{p}gone-before.txt"))
    at = split()
    rec(
        f"{p}a.txt",
        put(
            s3,
            bucket,
            f"{p}a.txt",
            b"A2-corrupt",
            ContentType="application/octet-stream",
            Metadata={"rev": "2"},
            Tagging="state=bad",
        ),
    )
    rec(f"{p}a.txt.bak", put(s3, bucket, f"{p}a.txt.bak", b"BAK2"))
    rec(f"{p}deleted.txt", delete(s3, bucket, f"{p}deleted.txt"))
    rec(f"{p}deleted.txt", delete(s3, bucket, f"{p}deleted.txt"))  # deleted twice: two markers
    rec(f"{p}recreated.txt", delete(s3, bucket, f"{p}recreated.txt"))
    rec(f"{p}recreated.txt", put(s3, bucket, f"{p}recreated.txt", b"R2"))
    rec(f"{p}recreated.txt", delete(s3, bucket, f"{p}recreated.txt"))
    rec(UNICODE_KEY.replace("docs/", p, 1), put(s3, bucket, UNICODE_KEY.replace("docs/", p, 1), b"U2"))
    rec(f"{p}new.txt", put(s3, bucket, f"{p}new.txt", b"N2"))
    expected = {
        f"{p}a.txt": b"A1",
        f"{p}a.txt.bak": b"BAK1",
        f"{p}deleted.txt": b"D1",
        f"{p}recreated.txt": b"R1",
        UNICODE_KEY.replace("docs/", p, 1): b"U1",
        f"{p}unchanged.txt": b"same",
        f"{p}gone-before.txt": None,
        f"{p}new.txt": None,
    }
    return {"time": at, "expected": expected, "versions": versions}


def delete_many_times(s3, bucket: str, key: str, times: int, concurrency: int = 16) -> None:
    """Stack ``times`` delete markers on ``key`` (each DeleteObject adds one, as in AWS)."""
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: delete(s3, bucket, key), range(times)))


def version_list(s3, bucket: str, prefix: str = "") -> dict[str, list[tuple[str, bool]]]:
    """``{key: [(version_id, is_delete_marker), ...]}`` newest first, read with full pagination."""
    found: dict[str, list] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        entries = [(v, False) for v in page.get("Versions", [])] + [(m, True) for m in page.get("DeleteMarkers", [])]
        for item, marker in entries:
            found.setdefault(item["Key"], []).append(
                (item["LastModified"], item["IsLatest"], item["VersionId"], marker)
            )
    return {
        key: [(vid, marker) for _, _, vid, marker in sorted(items, key=lambda i: (i[0], i[1]), reverse=True)]
        for key, items in found.items()
    }


def body(s3, bucket: str, key: str) -> bytes | None:
    """The current body of ``key`` (None when it is deleted or absent)."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    except Exception as exc:  # moto answers a delete marker with 404 but not always NoSuchKey
        if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
