#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_evidence_copy
short_description: Copy log objects (CloudTrail, access logs) into an evidence bucket, recording each SHA-256
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Performs the step "preserve evidence, copy CloudTrail logs to a secure location" of a security incident in one
    call. Every object under O(source_prefix) of O(source_bucket) (optionally only those last modified in a time
    window) is copied to O(evidence_bucket) under C(<evidence_prefix>/<incident_id>/s3/<source_bucket>/<key>).
  - Each object is hashed while it is read; the copy is uploaded with its C(ChecksumSHA256), so S3 rejects bytes
    that differ from what was hashed, and carries the hash, the source (with its version) and the source ETag as
    metadata. The result lists every object with its size and SHA-256, so the incident timeline holds them, and a
    manifest object listing them all is written beside the copies.
  - Copies run in a bounded pool of O(concurrency) threads.
  - Idempotent, an object already in the evidence bucket with the same size, the same source ETag and a recorded
    SHA-256 is not copied again; a re-run changes nothing.
  - In check mode the listings are read and the copies that would be made are reported; nothing is read or written.
  - Bad input (a bucket that does not exist, more objects than O(max_objects), an unparseable time) fails with a
    message naming the value before anything is copied.
options:
  source_bucket:
    description: The bucket holding the logs.
    type: str
    required: true
  source_prefix:
    description: Only objects whose key starts with this prefix. Empty means the whole bucket.
    type: str
    default: ""
  evidence_bucket:
    description: The evidence bucket (ideally with versioning and Object Lock).
    type: str
    required: true
  evidence_prefix:
    description:
      - Key prefix in the evidence bucket; copies go under C(<evidence_prefix>/<incident_id>/s3/<source_bucket>/).
    type: str
    default: incidents
  modified_after:
    description: Only objects last modified at or after this time (ISO 8601, naive means UTC, or epoch seconds).
    type: str
  modified_before:
    description: Only objects last modified before this time.
    type: str
  max_objects:
    description: Refuse (before copying anything) when more objects than this match.
    type: int
    default: 10000
  concurrency:
    description: How many objects are copied at once (1 to 32).
    type: int
    default: 8
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.INCIDENT
  - firebreak.runbooks.step.ATTRIBUTES
notes:
  - O(incident_id) is required outside check mode (the copies are filed under it).
  - Objects over 64 MiB are hashed while streaming and copied server-side; over 5 GiB they fail (one CopyObject).
  - moto (the sandbox) does not verify C(ChecksumSHA256) on upload; the tests hash the stored bytes themselves.
seealso:
  - module: firebreak.runbooks.ec2_instance_isolate
  - module: amazon.aws.s3_object
"""

EXAMPLES = r"""
- name: Preserve today's CloudTrail logs
  firebreak.runbooks.s3_evidence_copy:
    source_bucket: acme-cloudtrail
    source_prefix: AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/24/
    evidence_bucket: acme-incident-evidence
    incident_id: INC-2026-042
  register: preserved

- name: Only the hour around the breach
  firebreak.runbooks.s3_evidence_copy:
    source_bucket: acme-alb-logs
    source_prefix: alb/
    evidence_bucket: acme-incident-evidence
    modified_after: "2026-11-24T02:00:00Z"
    modified_before: "2026-11-24T04:00:00Z"
    incident_id: INC-2026-042
"""

RETURN = r"""
msg:
  description: What was done.
  returned: always
  type: str
  sample: "copied 3 of 5 objects from s3://acme-cloudtrail/AWSLogs/ to s3://acme-incident-evidence (2 already there)"
objects:
  description:
    - Every matching object, with C(key), C(dest_key), C(size), C(sha256), C(etag) and C(copied) (false when it was
      already in the evidence bucket; in check mode, whether it would be copied, and C(sha256) null when unknown).
  returned: always
  type: list
  elements: dict
  sample: [{"key": "AWSLogs/a.json.gz", "dest_key": "incidents/INC-1/s3/trail/AWSLogs/a.json.gz", "size": 254,
            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "copied": true}]
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: evidence}
containment: {description: Always empty here., returned: always, type: list, elements: dict, sample: []}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation:
  description:
    - The AWS API call that failed (for copies that failed, the first one's, for example C(PutObject); C(resource) then
      names the evidence object, C(s3://<evidence bucket>/<key>)).
  returned: on its failure
  type: str
  sample: PutObject
resource: {description: What the failed call was about., returned: on its failure, type: str}
attempts: {description: How many attempts the failed call made., returned: on its failure, type: int}
failed_objects:
  description: The source objects whose copy failed, each with C(key) and C(error).
  returned: when copies failed
  type: list
  elements: dict
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
manifest:
  description: The manifest object written beside the copies (C(bucket), C(key), C(sha256), C(size)).
  returned: when not in check mode and objects matched
  type: dict
before:
  description: C(objects) (matching source objects), C(bytes) and C(in_evidence) (already copied) before the step.
  returned: always
  type: dict
after:
  description: The same after the step, C(in_evidence) read back from the evidence bucket (ListObjectsV2).
  returned: always
  type: dict
missing_objects:
  description: Evidence keys not in the evidence bucket with their source's size when read back after the copy.
  returned: on that failure
  type: list
  elements: str
diff:
  description: The evidence keys before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
"""

import concurrent.futures

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import evidence as ev
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    INCIDENT_OPTION,
    RETRY_BUDGET_OPTION,
    Caller,
    StepAWSError,
    aws_client,
    parse_time,
    run_aws_step,
)

ARGUMENT_SPEC = dict(
    source_bucket=dict(type="str", required=True),
    source_prefix=dict(type="str", default=""),
    evidence_bucket=dict(type="str", required=True),
    evidence_prefix=dict(type="str", default="incidents"),
    modified_after=dict(type="str"),
    modified_before=dict(type="str"),
    max_objects=dict(type="int", default=10000),
    concurrency=dict(type="int", default=8),
    **RETRY_BUDGET_OPTION,
    **INCIDENT_OPTION,
)


def run(module, result=None):
    params = module.params
    source_bucket = ev.validate_bucket_name(params["source_bucket"], "source_bucket")
    bucket = ev.validate_bucket_name(params["evidence_bucket"], "evidence_bucket")
    incident_id = params.get("incident_id")
    if not incident_id and not module.check_mode:
        raise ev.EvidenceInputError("incident_id is required to file evidence (copies go under the incident)")
    if not 1 <= params["concurrency"] <= 32:
        raise ev.EvidenceInputError(f"concurrency must be between 1 and 32, got {params['concurrency']}")
    if params["max_objects"] < 1:
        raise ev.EvidenceInputError(f"max_objects must be >= 1, got {params['max_objects']}")
    window = {}
    for option in ("modified_after", "modified_before"):
        if params[option]:
            try:
                window[option] = parse_time(params[option])
            except ValueError as err:
                raise ev.EvidenceInputError(f"{option}: {err}") from None
    if len(window) == 2 and window["modified_after"] >= window["modified_before"]:
        raise ev.EvidenceInputError(
            f"modified_after {params['modified_after']!r} is not before modified_before {params['modified_before']!r}"
        )
    prefix = str(params["source_prefix"] or "").lstrip("/")
    base = f"{ev.normalize_prefix(params['evidence_prefix'])}{incident_id or '(incident)'}/s3/"

    caller = Caller(params["retry_budget"])
    s3 = aws_client(module, "s3", pool=params["concurrency"])
    ev.check_bucket(s3, caller, source_bucket, "source_bucket")
    ev.check_bucket(s3, caller, bucket, "evidence_bucket")
    listed = ev.list_objects(s3, caller, source_bucket, prefix)
    sources = []
    for obj in listed:
        modified = obj.get("last_modified")
        if "modified_after" in window and modified is not None and modified < window["modified_after"]:
            continue
        if "modified_before" in window and modified is not None and modified >= window["modified_before"]:
            continue
        sources.append(dict(obj, dest_key=ev.evidence_key(base, source_bucket, obj["key"])))
        if len(sources) > params["max_objects"]:
            raise ev.EvidenceInputError(
                f"more than max_objects={params['max_objects']} objects under s3://{source_bucket}/{prefix}: "
                "narrow source_prefix or the time window, or raise max_objects"
            )
    present = {o["key"]: o for o in ev.list_objects(s3, caller, bucket, f"{base}{source_bucket}/")}
    candidates = [s for s in sources if s["dest_key"] in present and present[s["dest_key"]]["size"] == s["size"]]

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=params["concurrency"])
    try:
        heads = pool.map(lambda s: (s["dest_key"], ev.existing_evidence(s3, caller, bucket, s["dest_key"])), candidates)
        existing = {key: found for key, found in heads if found}
        to_copy, already = ev.plan_copies(sources, existing)
        before = {
            "objects": len(sources),
            "bytes": sum(s["size"] for s in sources),
            "in_evidence": len(already),
        }
        result = {"changed": bool(to_copy), "before": before}
        if module._diff:
            result["diff"] = {
                "before": {"evidence_keys": sorted(s["dest_key"] for s in already)},
                "after": {"evidence_keys": sorted(s["dest_key"] for s in sources)},
            }
        records = [_record(s, copied=False) for s in already]
        if module.check_mode:
            records += [_record(dict(s, sha256=None), copied=True) for s in to_copy]
            result.update(
                objects=sorted(records, key=lambda r: r["key"]),
                after=dict(before, in_evidence=len(sources)),
                msg=f"check mode: would copy {len(to_copy)} of {len(sources)} objects from "
                f"s3://{source_bucket}/{prefix} to s3://{bucket}/{base}",
            )
            return result
        futures = {pool.submit(ev.copy_object, s3, caller, source_bucket, s, bucket, incident_id): s for s in to_copy}
        failed = []
        for future in concurrent.futures.as_completed(futures):
            try:
                records.append(future.result())
            except (StepAWSError, ev.EvidenceInputError) as err:
                failed.append({"key": futures[future]["key"], "error": str(err), "exception": err})
    finally:
        pool.shutdown(wait=True)

    records.sort(key=lambda r: r["key"])
    copied = sum(1 for r in records if r.get("copied"))
    result["objects"] = records
    if failed:
        # the first AWS failure names the call, its code and the evidence object (what a playbook branches on)
        failed.sort(key=lambda f: f["key"])
        first = next((f["exception"] for f in failed if isinstance(f["exception"], StepAWSError)), None)
        named = first.result() if first else {}
        module.fail_json(
            msg=f"{len(failed)} of {len(to_copy)} objects could not be copied to the evidence bucket; first: "
            f"{first or failed[0]['error']}",
            changed=bool(copied),
            failed_objects=[{k: f[k] for k in ("key", "error")} for f in failed],
            objects=records,
            before=before,
            **named,
        )
    if records:
        result["manifest"] = ev.put_evidence(
            s3,
            caller,
            bucket,
            f"{base}_manifests/{source_bucket}/{ev.normalize_prefix(prefix) or '_all/'}manifest.json",
            ev.manifest_body(source_bucket, prefix, records),
            incident_id,
            f"s3://{source_bucket}/{prefix}",
            "application/json",
        )
        result["changed"] = result["changed"] or result["manifest"]["changed"]
    # Read the copies back: what a role verifies is what the evidence bucket holds, not what was sent.
    landed = {o["key"]: o for o in ev.list_objects(s3, caller, bucket, f"{base}{source_bucket}/")}
    missing = [r["dest_key"] for r in records if landed.get(r["dest_key"], {}).get("size") != r["size"]]
    result["after"] = dict(before, in_evidence=len(records) - len(missing))
    if missing:
        module.fail_json(
            msg=f"{len(missing)} of {len(records)} copies are not in s3://{bucket} with their source's size after the "
            f"copy (read back with ListObjectsV2); first: {missing[0]}",
            **dict(result, changed=bool(copied), missing_objects=missing[:100]),
        )
    result["msg"] = (
        f"copied {copied} of {len(sources)} objects from s3://{source_bucket}/{prefix} to s3://{bucket}/{base}"
        f" ({len(already)} already there)"
    )
    return result


def _record(source, copied):
    return {
        "key": source["key"],
        "dest_key": source["dest_key"],
        "size": source["size"],
        "sha256": source.get("sha256"),
        "etag": source.get("etag"),
        "copied": copied,
    }


def main():
    run_aws_step(run, "evidence", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
