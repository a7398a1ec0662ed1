# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""S3 point-in-time restore of versioned objects: the per-key plan (pure) and the API layer.

Pure half (unit-tested without AWS)
    ``collect_versions`` folds ``ListObjectVersions`` pages into one history per key (a key's versions
    may span pages, and a page may hold only delete markers); ``plan_key`` decides, for one key's
    history and a point in time, what restores it:

    ``unchanged``             the key is already as it was (same version current, or absent both then and now)
    ``remove_delete_marker``  only delete markers were added after the time: delete those markers by
                              VersionId (never a data version), which makes the old version current again
    ``copy``                  the key was overwritten (or deleted, recreated and deleted again) after the
                              time: copy the newest version at or before the time over it
    ``absent_at_time``        the key did not exist at the time but does now: reported (with
                              ``delete_absent`` the plan says ``add_delete_marker`` instead)
    ``needs_restore_request`` the version to copy is archived (GLACIER/DEEP_ARCHIVE) and not restored:
                              a RestoreObject request must come first; nothing is copied
    ``missing``               an explicitly named key has no versions at all

API half
    ``Restorer`` lists (one ``ListObjectVersions`` pass over the prefix, or one per named key), plans,
    and runs the changed keys' actions in a bounded thread pool: one DeleteObject per delete marker, one
    CopyObject per copy (UploadPartCopy above ``multipart_threshold``), preceded by a HeadObject of the
    version to copy when the encryption must be kept (ListObjectVersions does not report it). Unchanged
    keys cost no call. Every call goes through ``step.Caller`` (bounded retries naming the call).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import urllib.parse

from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError, StepError, iso_utc

COPY_LIMIT = 5 * 1024**3  # CopyObject copies at most 5 GB; above it, UploadPartCopy
DEFAULT_PART_SIZE = 512 * 1024**2
MIN_PART_SIZE = 5 * 1024**2
MAX_PARTS = 10000
ARCHIVED = frozenset(("GLACIER", "DEEP_ARCHIVE"))
ACTIONS = (
    "unchanged",
    "remove_delete_marker",
    "copy",
    "absent_at_time",
    "add_delete_marker",
    "needs_restore_request",
    "missing",
)
CHANGING = frozenset(("remove_delete_marker", "copy", "add_delete_marker"))
# Metadata that a multipart copy must set itself (UploadPartCopy copies bytes only).
_HEAD_TO_CREATE = (
    "ContentType",
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "Expires",
    "WebsiteRedirectLocation",
)


class S3RestoreError(StepError):
    """Bad input or a state that forbids the restore; nothing was changed."""


# --------------------------------------------------------------------------------------------------
# Pure: histories and the per-key plan
# --------------------------------------------------------------------------------------------------


def _entry(item, delete_marker):
    return {
        "version_id": item.get("VersionId"),
        "last_modified": item.get("LastModified"),
        "is_latest": bool(item.get("IsLatest")),
        "delete_marker": delete_marker,
        "etag": item.get("ETag"),
        "size": item.get("Size"),
        "storage_class": item.get("StorageClass"),
        "restore_status": item.get("RestoreStatus"),
    }


def collect_versions(pages, keep=None):
    """``{key: [entry, ...]}`` (newest first) from ListObjectVersions pages.

    ``keep(key)`` filters keys (exact matching for a named key: the listing's prefix ``a.txt`` also
    returns ``a.txt.bak``). Pages may split one key's versions, or hold only delete markers.
    """
    histories = {}
    order = 0
    for page in pages:
        for kind, delete_marker in (("Versions", False), ("DeleteMarkers", True)):
            for item in page.get(kind) or []:
                key = item.get("Key")
                if keep is not None and not keep(key):
                    continue
                entry = _entry(item, delete_marker)
                entry["_order"] = order
                order += 1
                histories.setdefault(key, []).append(entry)
    return {key: sort_history(entries) for key, entries in histories.items()}


def sort_history(entries):
    """Newest first: by LastModified, the listed latest first on a tie, then listing order
    (S3 lists each key's versions newest first; botocore splits versions and markers apart)."""

    def rank(entry):
        moment = entry["last_modified"]
        stamp = moment.timestamp() if hasattr(moment, "timestamp") else 0.0
        return (-stamp, 0 if entry["is_latest"] else 1, entry.get("_order", 0))

    return sorted(entries, key=rank)


def _describe(entry):
    if entry is None:
        return None
    return {
        "version_id": entry["version_id"],
        "delete_marker": entry["delete_marker"],
        "last_modified": iso_utc(entry["last_modified"]) if entry.get("last_modified") else None,
    }


def _archived(entry):
    """True when the version's data cannot be read until a RestoreObject request completes."""
    if entry.get("storage_class") not in ARCHIVED:
        return False
    status = entry.get("restore_status") or {}
    restored = status.get("RestoreExpiryDate") and not status.get("IsRestoreInProgress")
    return not restored


def _same_content(a, b):
    return a is not None and b is not None and a.get("etag") == b.get("etag") and a.get("size") == b.get("size")


def plan_key(key, history, at, *, delete_absent=False, target=None, explicit=False):
    """What restores ``key`` (history newest first) to its state at ``at`` (aware datetime).

    ``target`` is ``None`` for an in-place restore, else the destination's current object
    (``{"etag", "size"}``) or ``{}`` when the destination key does not exist. Returns a dict with
    ``key``, ``action``, ``reason``, ``current``, ``restore_version`` and, for marker removal,
    ``delete_markers`` (the marker version ids to delete, newest first).
    """
    history = history or []
    plan = {"key": key, "current": _describe(history[0]) if history else None, "restore_version": None}
    if not history:
        reason = "no versions or delete markers" if explicit else "nothing listed"
        return dict(plan, action="missing", reason=f"{reason} for this exact key")
    newer = [e for e in history if e["last_modified"] > at]
    older = [e for e in history if e["last_modified"] <= at]
    then = older[0] if older else None
    current = history[0]
    existed = then is not None and not then["delete_marker"]
    plan["then"] = _describe(then)

    if not existed:
        why = "did not exist at the time" if then is None else "was deleted at the time"
        if target is not None:
            if target:
                return dict(plan, action="absent_at_time", reason=f"{why}; the destination object is left alone")
            return dict(plan, action="unchanged", reason=f"{why}; absent at the destination too")
        if current["delete_marker"]:
            return dict(plan, action="unchanged", reason=f"{why} and is deleted now")
        if delete_absent:
            return dict(plan, action="add_delete_marker", reason=f"{why}: a delete marker hides it")
        return dict(plan, action="absent_at_time", reason=f"{why} but exists now (left alone; see delete_absent)")

    plan["restore_version"] = _describe(then)
    plan["restore_version"].update(etag=then["etag"], size=then["size"], storage_class=then["storage_class"])

    if target is not None:
        if _same_content(target, then):
            return dict(plan, action="unchanged", reason="the destination already holds that version's content")
        return _copy_or_archived(plan, then, "copy to the destination")

    if current is then:
        return dict(plan, action="unchanged", reason="the version of that time is current")
    if not current["delete_marker"] and _same_content(current, then):
        return dict(plan, action="unchanged", reason="the current version has that version's content (restored)")
    if all(e["delete_marker"] for e in newer):
        return dict(
            plan,
            action="remove_delete_marker",
            delete_markers=[e["version_id"] for e in newer],
            reason=f"deleted after the time: remove {len(newer)} delete marker(s)",
        )
    why = "recreated and deleted again after the time" if current["delete_marker"] else "overwritten after the time"
    return _copy_or_archived(plan, then, why)


def _copy_or_archived(plan, then, why):
    if _archived(then):
        return dict(
            plan,
            action="needs_restore_request",
            reason=f"{why}, but version {then['version_id']} is in {then['storage_class']}: "
            "restore it (RestoreObject) first, then re-run",
        )
    return dict(plan, action="copy", reason=f"{why}: copy version {then['version_id']}")


def destination_key(key, prefix, target_prefix):
    """The destination key of ``key``: ``prefix`` replaced by ``target_prefix`` (or prepended)."""
    if target_prefix is None:
        return key
    if prefix and key.startswith(prefix):
        return target_prefix + key[len(prefix) :]
    return target_prefix + key


def summarize(plans, limit):
    """``(counts, actions, truncated)``: counts by action, the changed and reported keys' plans
    (at most ``limit`` per action; unchanged keys are only counted), and how many were left out."""
    counts = dict.fromkeys(ACTIONS, 0)
    reported, truncated = [], {}
    per_action = {}
    for plan in plans:
        action = plan["action"]
        counts[action] = counts.get(action, 0) + 1
        if action == "unchanged":
            continue
        per_action[action] = per_action.get(action, 0) + 1
        if per_action[action] <= limit:
            reported.append(plan)
        else:
            truncated[action] = truncated.get(action, 0) + 1
    return counts, reported, truncated


def part_ranges(size, part_size):
    """``[(first, last), ...]`` byte ranges for UploadPartCopy (at most 10,000 parts)."""
    part_size = max(MIN_PART_SIZE, int(part_size), -(-int(size) // MAX_PARTS))
    ranges, start = [], 0
    while start < size:
        end = min(size, start + part_size) - 1
        ranges.append((start, end))
        start = end + 1
    return ranges


def encryption_args(head):
    """CopyObject/CreateMultipartUpload arguments that keep a version's server-side encryption."""
    sse = head.get("ServerSideEncryption")
    if not sse:
        return {}
    args = {"ServerSideEncryption": sse}
    if head.get("SSEKMSKeyId"):
        args["SSEKMSKeyId"] = head["SSEKMSKeyId"]
    if head.get("BucketKeyEnabled") is not None and sse.startswith("aws:kms"):
        args["BucketKeyEnabled"] = bool(head["BucketKeyEnabled"])
    return args


# --------------------------------------------------------------------------------------------------
# API layer
# --------------------------------------------------------------------------------------------------


class Restorer:
    """Lists, plans and restores one bucket's keys with a ``Caller`` and an S3 client."""

    def __init__(
        self,
        caller,
        s3,
        bucket,
        at,
        *,
        concurrency=16,
        multipart_threshold=COPY_LIMIT,
        part_size=DEFAULT_PART_SIZE,
        keep_encryption=True,
    ):
        self.caller = caller
        self.s3 = s3
        self.bucket = bucket
        self.at = at
        self.concurrency = max(1, int(concurrency))
        self.multipart_threshold = int(multipart_threshold)
        self.part_size = int(part_size)
        self.keep_encryption = keep_encryption
        self.list_calls = 0
        self._lock = threading.Lock()

    # -- reading -----------------------------------------------------------------------------
    def versioning(self):
        answer = self.caller(self.s3, "get_bucket_versioning", f"bucket {self.bucket!r}", Bucket=self.bucket)
        return answer.get("Status")

    def _pages(self, prefix, stop_after=None):
        params = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": 1000}
        resource = f"bucket {self.bucket!r} prefix {prefix!r}"
        pages = self.caller.paginate_multi(
            self.s3,
            "list_object_versions",
            resource,
            {"KeyMarker": "NextKeyMarker", "VersionIdMarker": "NextVersionIdMarker"},
            **params,
        )
        for page in pages:
            with self._lock:
                self.list_calls += 1
            yield page
            if stop_after is not None and page.get("IsTruncated"):
                listed = [i.get("Key") for k in ("Versions", "DeleteMarkers") for i in page.get(k) or []]
                if listed and min(listed) > stop_after:
                    return  # sorted by key: the exact key's versions are all behind us

    def list_prefix(self, prefix):
        """Every key's history under ``prefix`` (complete pagination)."""
        return collect_versions(self._pages(prefix or ""))

    def list_key(self, key):
        """The history of exactly ``key`` (``[]`` if it has none)."""
        histories = collect_versions(self._pages(key, stop_after=key), keep=lambda k: k == key)
        return histories.get(key, [])

    def list_keys(self, keys):
        """``{key: history}`` for named keys, listed concurrently."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(self.concurrency, len(keys) or 1)) as pool:
            return dict(zip(keys, pool.map(self.list_key, keys), strict=True))

    # -- acting ------------------------------------------------------------------------------
    def remove_markers(self, key, marker_ids):
        removed = []
        for version_id in marker_ids:
            self.caller(
                self.s3,
                "delete_object",
                f"delete marker {version_id!r} of s3://{self.bucket}/{key}",
                Bucket=self.bucket,
                Key=key,
                VersionId=version_id,
            )
            removed.append(version_id)
        return {"removed_delete_markers": removed}

    def add_marker(self, key):
        answer = self.caller(self.s3, "delete_object", f"s3://{self.bucket}/{key}", Bucket=self.bucket, Key=key)
        return {"new_version_id": answer.get("VersionId")}

    def copy(self, key, version, dest_bucket, dest_key):
        """Copy ``version`` (a plan's ``restore_version``) of ``key`` to ``dest_bucket``/``dest_key``."""
        source = {"Bucket": self.bucket, "Key": key, "VersionId": version["version_id"]}
        where = f"s3://{self.bucket}/{key} version {version['version_id']!r}"
        head = {}
        size = int(version.get("size") or 0)
        multipart = size > self.multipart_threshold
        if self.keep_encryption or multipart:
            head = self.caller(self.s3, "head_object", where, **source)
            size = int(head.get("ContentLength", size))
            multipart = size > self.multipart_threshold
        extra = encryption_args(head) if self.keep_encryption else {}
        storage_class = version.get("storage_class")
        if storage_class and storage_class not in ARCHIVED and storage_class != "STANDARD":
            extra["StorageClass"] = storage_class
        if multipart:
            return self._multipart_copy(source, where, head, extra, size, dest_bucket, dest_key)
        answer = self.caller(
            self.s3,
            "copy_object",
            where,
            Bucket=dest_bucket,
            Key=dest_key,
            CopySource=source,
            MetadataDirective="COPY",
            TaggingDirective="COPY",
            **extra,
        )
        etag = (answer.get("CopyObjectResult") or {}).get("ETag")
        return {"new_version_id": answer.get("VersionId"), "etag": etag, "multipart": False}

    def _multipart_copy(self, source, where, head, extra, size, dest_bucket, dest_key):
        create = {name: head[name] for name in _HEAD_TO_CREATE if head.get(name) is not None}
        create["Metadata"] = head.get("Metadata") or {}
        tags = self.caller(self.s3, "get_object_tagging", where, **source).get("TagSet") or []
        if tags:
            create["Tagging"] = urllib.parse.urlencode([(t["Key"], t["Value"]) for t in tags])
        upload = self.caller(
            self.s3, "create_multipart_upload", where, Bucket=dest_bucket, Key=dest_key, **create, **extra
        )
        upload_id = upload["UploadId"]
        parts = []
        try:
            for number, (first, last) in enumerate(part_ranges(size, self.part_size), start=1):
                answer = self.caller(
                    self.s3,
                    "upload_part_copy",
                    f"{where} bytes {first}-{last}",
                    Bucket=dest_bucket,
                    Key=dest_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=source,
                    CopySourceRange=f"bytes={first}-{last}",
                )
                parts.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})
            done = self.caller(
                self.s3,
                "complete_multipart_upload",
                where,
                Bucket=dest_bucket,
                Key=dest_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except StepAWSError:
            with contextlib.suppress(StepAWSError):
                self.caller(
                    self.s3, "abort_multipart_upload", where, Bucket=dest_bucket, Key=dest_key, UploadId=upload_id
                )
            raise
        return {
            "new_version_id": done.get("VersionId"),
            "etag": done.get("ETag"),
            "multipart": True,
            "parts": len(parts),
        }

    def act(self, plan, dest_bucket=None, dest_key=None):
        """Carry out one key's plan; returns what was done (merged into the plan by the caller)."""
        action = plan["action"]
        if action == "remove_delete_marker":
            return self.remove_markers(plan["key"], plan["delete_markers"])
        if action == "add_delete_marker":
            return self.add_marker(plan["key"])
        if action == "copy":
            return self.copy(plan["key"], plan["restore_version"], dest_bucket or self.bucket, dest_key or plan["key"])
        return {}

    def act_all(self, plans, dest_of):
        """Run the changed plans in a bounded pool; returns ``(done, failed)`` lists of plans."""
        work = [p for p in plans if p["action"] in CHANGING]
        done, failed = [], []
        if not work:
            return done, failed

        def one(plan):
            dest_bucket, dest_key = dest_of(plan["key"])
            try:
                plan.update(self.act(plan, dest_bucket, dest_key))
                plan["status"] = "done"
            except StepAWSError as err:
                plan.update(
                    status="failed",
                    error=str(err),
                    aws_operation=err.operation,
                    aws_error_code=err.code,
                    attempts=err.attempts,
                )
            return plan

        with concurrent.futures.ThreadPoolExecutor(max_workers=min(self.concurrency, len(work))) as pool:
            for plan in pool.map(one, work):
                (done if plan["status"] == "done" else failed).append(plan)
        return done, failed


def destination_state(caller, s3, bucket, keys_or_prefix, prefix_mode, concurrency=16):
    """``{dest_key: {"etag", "size"}}`` of existing destination objects (current versions only)."""
    found = {}
    if prefix_mode:
        resource = f"bucket {bucket!r} prefix {keys_or_prefix!r}"
        tokens = {"token_in": "ContinuationToken", "token_out": "NextContinuationToken"}
        for page in caller.paginate(s3, "list_objects_v2", resource, **tokens, Bucket=bucket, Prefix=keys_or_prefix):
            for item in page.get("Contents") or []:
                found[item["Key"]] = {"etag": item.get("ETag"), "size": item.get("Size")}
        return found

    def head(key):
        try:
            answer = caller(s3, "head_object", f"s3://{bucket}/{key}", Bucket=bucket, Key=key)
        except StepAWSError as err:
            if err.code in ("404", "NoSuchKey", "NotFound"):
                return key, None
            raise
        return key, {"etag": answer.get("ETag"), "size": answer.get("ContentLength")}

    with concurrent.futures.ThreadPoolExecutor(max_workers=min(concurrency, len(keys_or_prefix) or 1)) as pool:
        for key, state in pool.map(head, keys_or_prefix):
            if state is not None:
                found[key] = state
    return found
