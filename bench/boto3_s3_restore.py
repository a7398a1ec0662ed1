"""The baseline for the S3 restore benchmark: a plain sequential boto3 loop doing the same restore.

    python bench/boto3_s3_restore.py BUCKET PREFIX TIME [WORKERS]

With WORKERS > 1 the per-key calls run on a thread pool of that size instead (the listing stays
sequential): no Ansible, no checks, no result, the least a concurrent client must spend against this
sandbox, which the benchmark reports as the floor for the module.

Reads the endpoint and credentials from the environment. Lists every version under PREFIX, and for
each key: removes the delete markers newer than TIME when only markers came after it, or copies the
newest version at or before TIME over the key (reading it first for its encryption, as the module
does with ``keep_encryption``), one call after another. Unchanged keys cost no call.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import os
import sys

import boto3
from botocore.config import Config


def main(bucket: str, prefix: str, when: str, workers: str = "1") -> int:
    at = datetime.datetime.fromisoformat(when.replace("Z", "+00:00"))
    pool_size = max(1, int(workers))
    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["FIREBREAK_AWS_ENDPOINT_URL"],
        config=Config(max_pool_connections=max(10, pool_size + 2)),
    )
    history: dict[str, list] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Versions", []):
            history.setdefault(item["Key"], []).append((item["LastModified"], item["IsLatest"], False, item))
        for item in page.get("DeleteMarkers", []):
            history.setdefault(item["Key"], []).append((item["LastModified"], item["IsLatest"], True, item))

    def restore(item):
        key, entries = item
        entries.sort(key=lambda e: (e[0], e[1]), reverse=True)
        older = [e for e in entries if e[0] <= at]
        newer = [e for e in entries if e[0] > at]
        if not older or older[0][2] or not newer:
            return  # absent then, or unchanged
        then = older[0][3]
        if all(e[2] for e in newer):
            for entry in newer:
                s3.delete_object(Bucket=bucket, Key=key, VersionId=entry[3]["VersionId"])
            return
        current = entries[0]
        if not current[2] and current[3]["ETag"] == then["ETag"]:
            return
        source = {"Bucket": bucket, "Key": key, "VersionId": then["VersionId"]}
        head = s3.head_object(**source)
        extra = {}
        if head.get("ServerSideEncryption"):
            extra["ServerSideEncryption"] = head["ServerSideEncryption"]
            if head.get("SSEKMSKeyId"):
                extra["SSEKMSKeyId"] = head["SSEKMSKeyId"]
        s3.copy_object(Bucket=bucket, Key=key, CopySource=source, **extra)

    if pool_size == 1:
        for item in history.items():
            restore(item)
    else:
        with concurrent.futures.ThreadPoolExecutor(pool_size) as pool:
            list(pool.map(restore, history.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
