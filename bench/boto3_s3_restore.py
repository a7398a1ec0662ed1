"""The baseline for the S3 restore benchmark: a plain sequential boto3 loop doing the same restore.

    python bench/boto3_s3_restore.py BUCKET PREFIX TIME

Reads the endpoint and credentials from the environment. Lists every version under PREFIX, and for
each key: removes the delete markers newer than TIME when only markers came after it, or copies the
newest version at or before TIME over the key (reading it first for its encryption, as the module
does with ``keep_encryption``), one call after another. Unchanged keys cost no call.
"""

from __future__ import annotations

import datetime
import os
import sys

import boto3


def main(bucket: str, prefix: str, when: str) -> int:
    at = datetime.datetime.fromisoformat(when.replace("Z", "+00:00"))
    s3 = boto3.client("s3", endpoint_url=os.environ["FIREBREAK_AWS_ENDPOINT_URL"])
    history: dict[str, list] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Versions", []):
            history.setdefault(item["Key"], []).append((item["LastModified"], item["IsLatest"], False, item))
        for item in page.get("DeleteMarkers", []):
            history.setdefault(item["Key"], []).append((item["LastModified"], item["IsLatest"], True, item))
    for key, entries in history.items():
        entries.sort(key=lambda e: (e[0], e[1]), reverse=True)
        older = [e for e in entries if e[0] <= at]
        newer = [e for e in entries if e[0] > at]
        if not older or older[0][2] or not newer:
            continue  # absent then, or unchanged
        then = older[0][3]
        if all(e[2] for e in newer):
            for entry in newer:
                s3.delete_object(Bucket=bucket, Key=key, VersionId=entry[3]["VersionId"])
            continue
        current = entries[0]
        if not current[2] and current[3]["ETag"] == then["ETag"]:
            continue
        source = {"Bucket": bucket, "Key": key, "VersionId": then["VersionId"]}
        head = s3.head_object(**source)
        extra = {}
        if head.get("ServerSideEncryption"):
            extra["ServerSideEncryption"] = head["ServerSideEncryption"]
            if head.get("SSEKMSKeyId"):
                extra["SSEKMSKeyId"] = head["SSEKMSKeyId"]
        s3.copy_object(Bucket=bucket, Key=key, CopySource=source, **extra)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
