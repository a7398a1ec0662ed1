#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_object_restore
short_description: Restore versioned S3 objects to their state at a point in time
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Performs the step "restore the data from object versions" of a data incident in one call. It lists the
    versions and delete markers of one key, a list of keys, every key under a prefix, or (with
    O(whole_bucket=true)) every key of the bucket, decides per key what
    brings it back to its state at O(time), acts on the keys that need it in a bounded thread pool, and
    verifies the result by listing again.
  - A key whose newer entries are only delete markers gets those markers removed (C(DeleteObject) with the
    marker's C(VersionId)); a data version is never deleted.
  - A key overwritten after O(time) (or deleted, recreated and deleted again) gets the newest version at or
    before O(time) copied over it with C(CopyObject), keeping its metadata, tags, content type, storage class
    and (with O(keep_encryption)) server-side encryption. Objects larger than O(multipart_threshold) are
    copied part by part (C(UploadPartCopy)).
  - A key that did not exist at O(time) is reported; with O(delete_absent=true) a delete marker hides it.
  - A version in C(GLACIER) or C(DEEP_ARCHIVE) that is not restored is reported as needing a restore
    request and is never copied.
  - Keys already in their state at O(time) cost no call. A re-run after a restore reports no change.
  - With O(target_bucket) or O(target_prefix) the versions are copied to another location instead (a
    non-destructive restore to check first); the source is never changed.
  - In check mode the module lists and returns the full plan but changes nothing.
  - Bad input (a bucket that does not exist or is not versioned, a prefix or key with no versions, a time
    that is unparseable or in the future) fails with a message naming the value, before anything is changed.
options:
  bucket:
    description:
      - The versioned bucket to restore from.
    type: str
    required: true
  keys:
    description:
      - Exact keys to restore (C(a.txt) never matches C(a.txt.bak)). Mutually exclusive with O(prefix).
      - Give O(keys), a non-empty O(prefix), or O(whole_bucket=true).
    type: list
    elements: str
  prefix:
    description:
      - Restore every key under this prefix. Mutually exclusive with O(keys).
      - An empty prefix is refused; to restore every key of the bucket, set O(whole_bucket=true) instead.
    type: str
  whole_bucket:
    description:
      - Restore every key of O(bucket) (ransomware, or a bad job over the whole bucket). Give neither O(prefix)
        nor O(keys) with it.
      - The keys are listed in one complete C(ListObjectVersions) pass over the bucket.
    type: bool
    default: false
  time:
    description:
      - The point in time, ISO 8601 with or without an offset (naive means UTC, C(Z) accepted) or epoch seconds.
      - Each key is brought back to the newest version or delete marker at or before this time.
    type: str
    required: true
  target_bucket:
    description:
      - Copy the restored versions to this bucket instead of restoring in place. Defaults to O(bucket) when
        only O(target_prefix) is given.
    type: str
  target_prefix:
    description:
      - Destination prefix when restoring to another location. With O(prefix), O(prefix) is replaced by it in
        each key; with O(keys), it is put in front of each key.
      - In the source bucket it must not lie under O(prefix) (the copies would be listed as sources).
    type: str
  delete_absent:
    description:
      - In place, put a delete marker on keys that did not exist at O(time) but exist now (the data stays in
        their versions). Without it such keys are only reported.
    type: bool
    default: false
  concurrency:
    description:
      - How many keys are listed or restored at once.
    type: int
    default: 16
  keep_encryption:
    description:
      - Read each version to copy (C(HeadObject)) and copy it with the same server-side encryption (SSE-S3 or
        SSE-KMS with its key). C(ListObjectVersions) does not report encryption, so this costs one read per
        copied key.
      - With V(false) copies get the destination bucket's default encryption.
    type: bool
    default: true
  multipart_threshold:
    description:
      - Objects larger than this many bytes are copied with a multipart copy. C(CopyObject) accepts at most
        5 GB.
    type: int
    default: 5368709120
  part_size:
    description:
      - Part size in bytes of a multipart copy (at least 5 MiB; raised as needed to stay within 10,000 parts).
    type: int
    default: 536870912
  report_limit:
    description:
      - At most this many keys per action are listed in RV(actions); RV(counts) always counts every key.
      - The default keeps the result within the incident timeline's 64 KiB per record.
    type: int
    default: 25
  wait:
    description:
      - After acting, list the changed keys again and fail unless each is in its state at O(time).
    type: bool
    default: true
  wait_timeout:
    description:
      - How long the verification may take, in seconds (S3 is strongly consistent; this bounds the listing).
    type: int
    default: 300
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.ATTRIBUTES
notes:
  - Idempotence compares the current object's ETag and size with the version of O(time); the verification
    also accepts the copy it just made as the current version. A multipart copy gets a new ETag, so a re-run
    copies objects above O(multipart_threshold) again (harmless, but reported as a change). Objects encrypted
    with SSE-KMS also get a new ETag on copy.
  - Objects encrypted with customer-provided keys (SSE-C) cannot be read without the key and fail.
  - moto (the sandbox) lists times to the second only; versions written within one second of O(time) may
    be placed on either side of it there.
seealso:
  - module: amazon.aws.s3_object
"""

EXAMPLES = r"""
- name: Restore every object under uploads/ to 09:30 UTC
  firebreak.runbooks.s3_object_restore:
    bucket: shop-uploads
    prefix: uploads/
    time: "2026-11-24T09:30:00Z"
  register: restore

- name: First restore a copy elsewhere, to check it
  firebreak.runbooks.s3_object_restore:
    bucket: shop-uploads
    prefix: uploads/
    time: "2026-11-24T10:30:00+01:00"
    target_prefix: restore-check/uploads/

- name: Ransomware over the whole bucket - first check the plan (run with --check), then restore every key
  firebreak.runbooks.s3_object_restore:
    bucket: shop-uploads
    whole_bucket: true
    time: "2026-11-24T09:30:00Z"
    delete_absent: true

- name: Restore two keys, hiding keys created after the time
  firebreak.runbooks.s3_object_restore:
    bucket: shop-uploads
    keys:
      - uploads/report.csv
      - uploads/contract.pdf
    time: "2026-11-24T09:30:00Z"
    delete_absent: true
"""

RETURN = r"""
msg:
  description: What was done.
  returned: always
  type: str
  sample: "restored 2 of 3 key(s) in shop-uploads under 'uploads/' to 2026-11-24T09:30:00Z (copy: 1, ...)"
bucket:
  description: The source bucket.
  returned: always
  type: str
  sample: shop-uploads
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: recovery}
containment: {description: Always empty here., returned: always, type: list, elements: dict, sample: []}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str, sample: GetAlias}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
resource:
  description: What the failed call was about (for failed keys, the bucket and the keys).
  returned: on an AWS error
  type: str
attempts: {description: How many attempts the failed call made., returned: on an AWS error, type: int}
time:
  description: The point in time, UTC ISO 8601.
  returned: always
  type: str
  sample: "2026-11-24T09:30:00Z"
target:
  description: The destination when not restoring in place (C(bucket), C(prefix)); null in place.
  returned: always
  type: dict
  sample: {"bucket": "shop-uploads", "prefix": "restore-check/uploads/"}
counts:
  description: Number of keys per action (C(unchanged), C(remove_delete_marker), C(copy), C(absent_at_time),
    C(add_delete_marker), C(needs_restore_request), C(missing)).
  returned: always
  type: dict
  sample: {"unchanged": 1, "copy": 1, "remove_delete_marker": 1, "absent_at_time": 0, "add_delete_marker": 0,
    "needs_restore_request": 0, "missing": 0}
actions:
  description:
    - The plan of each key that is not unchanged (at most O(report_limit) per action), with what was done.
    - Each has C(key), C(action), C(reason), C(current) and C(then) (the current entry and the one at O(time),
      each C(version_id), C(delete_marker), C(last_modified)), C(restore_version) (the version copied, or the
      one made current again), and after acting C(status) (C(done) or C(failed)), C(new_version_id),
      C(removed_delete_markers), C(target_key), C(multipart), C(error).
  returned: always
  type: list
  elements: dict
  sample: [{"key": "uploads/report.csv", "action": "copy", "status": "done", "new_version_id": "3HL4kqtJlcpXroDTDmJ"}]
truncated:
  description: Per action, how many keys were left out of RV(actions) by O(report_limit).
  returned: always
  type: dict
  sample: {"copy": 2400}
list_calls:
  description: C(ListObjectVersions) calls made to plan (not counting the verification).
  returned: always
  type: int
  sample: 3
before:
  description: The examined keys before the step (the destination's keys when restoring elsewhere).
  returned: always
  type: dict
  contains:
    keys:
      description: Keys examined.
      returned: always
      type: int
      sample: 3
    present:
      description: Keys whose current entry is a data version.
      returned: always
      type: int
      sample: 2
    deleted:
      description: Keys whose current entry is a delete marker, or that do not exist.
      returned: always
      type: int
      sample: 1
after:
  description: The same counts after the step (read back when O(wait=true); predicted in check mode).
  returned: always
  type: dict
  contains:
    keys:
      description: Keys examined.
      returned: always
      type: int
      sample: 3
    present:
      description: Keys whose current entry is a data version.
      returned: always
      type: int
      sample: 3
    deleted:
      description: Keys whose current entry is a delete marker, or that do not exist.
      returned: always
      type: int
      sample: 0
errors:
  description:
    - Keys whose action failed, each with C(key), C(action), C(error), C(aws_operation) and C(aws_error_code).
    - Every changing key is tried; when any failed the step fails (after the others were restored, which stay in
      C(counts), C(actions) and C(after)), its message naming the keys, the call, the code and the bucket.
  returned: always
  type: list
  elements: dict
  sample: []
failed_keys:
  description: The keys whose action failed (all of them; C(errors) has the details).
  returned: when a key failed
  type: list
  elements: str
  sample: ["uploads/avatar.png"]
diff:
  description: The reported keys' current entries before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {"uploads/report.csv": "version abc"}, "after": {"uploads/report.csv": "version xyz"}}
"""

import time

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import evidence, s3_restore
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    RETRY_BUDGET_OPTION,
    Caller,
    StepAWSError,
    StepError,
    aws_client,
    iso_utc,
    parse_time,
    run_aws_step,
    utc_now,
)

ARGUMENT_SPEC = dict(
    bucket=dict(type="str", required=True),
    keys=dict(type="list", elements="str", no_log=False),
    prefix=dict(type="str"),
    whole_bucket=dict(type="bool", default=False),
    time=dict(type="str", required=True),
    target_bucket=dict(type="str"),
    target_prefix=dict(type="str"),
    delete_absent=dict(type="bool", default=False),
    concurrency=dict(type="int", default=16),
    keep_encryption=dict(type="bool", default=True, no_log=False),
    multipart_threshold=dict(type="int", default=s3_restore.COPY_LIMIT),
    part_size=dict(type="int", default=s3_restore.DEFAULT_PART_SIZE),
    report_limit=dict(type="int", default=25),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=300),
    **RETRY_BUDGET_OPTION,
)


class InputError(StepError):
    """Bad input or a bucket that cannot be restored; nothing was changed."""


class VerifyError(StepError):
    """The keys were acted on but are not in their state at the time."""


def scope(params):
    """The prefix to list: ``""`` for the whole bucket, the prefix, or None with named keys.

    An empty prefix with no keys is refused unless ``whole_bucket`` asks for every key in so many words."""
    bucket, prefix, keys = params["bucket"], params["prefix"], params["keys"]
    if params.get("whole_bucket"):
        if keys is not None or prefix:
            given = f"keys {keys!r}" if keys is not None else f"prefix {prefix!r}"
            raise InputError(
                f"whole_bucket=true restores every key of bucket {bucket!r}, but {given} was given too: "
                "give either whole_bucket=true or a prefix or keys"
            )
        return ""
    if keys is None and not prefix:
        given = "no prefix" if prefix is None else f"prefix {prefix!r} is empty"
        raise InputError(
            f"{given} and no keys: give a non-empty prefix or keys, or whole_bucket=true to restore every key of "
            f"bucket {bucket!r} (role: s3_version_restore_whole_bucket: true)"
        )
    return prefix


def validate(params, now):
    """Everything checkable without AWS; returns the parsed time."""
    params = dict(params, prefix=scope(params))
    for option in ("bucket", "target_bucket"):
        if params[option] is not None:
            try:
                evidence.validate_bucket_name(params[option], option)
            except evidence.EvidenceInputError as e:
                raise InputError(str(e)) from None
    try:
        at = parse_time(params["time"])
    except ValueError as e:
        raise InputError(f"time: {e}") from None
    if at > now:
        raise InputError(f"time {params['time']!r} ({iso_utc(at)}) is in the future (now {iso_utc(now)})")
    if params["keys"] is not None:
        empty = [k for k in params["keys"] if not k]
        if not params["keys"] or empty:
            raise InputError(f"keys must be a non-empty list of non-empty keys, got {params['keys']!r}")
    for option, low in (("concurrency", 1), ("report_limit", 0), ("wait_timeout", 0), ("multipart_threshold", 1)):
        if params[option] < low:
            raise InputError(f"{option} must be >= {low}, got {params[option]}")
    if params["part_size"] < s3_restore.MIN_PART_SIZE:
        raise InputError(f"part_size must be >= {s3_restore.MIN_PART_SIZE} (5 MiB), got {params['part_size']}")
    target_bucket = params["target_bucket"] or (params["bucket"] if params["target_prefix"] is not None else None)
    target_prefix = params["target_prefix"] or ""
    in_place = target_bucket is None or (
        target_bucket == params["bucket"] and target_prefix == ("" if params["keys"] is not None else params["prefix"])
    )
    same_bucket = not in_place and target_bucket == params["bucket"]
    if same_bucket and params["prefix"] == "":
        raise InputError(
            f"target_prefix {target_prefix!r} lies in bucket {params['bucket']!r}, which is restored whole: the "
            "copies would be listed as sources; give another target_bucket"
        )
    if same_bucket and params["prefix"] is not None and target_prefix.startswith(params["prefix"]):
        raise InputError(
            f"target_prefix {target_prefix!r} lies under prefix {params['prefix']!r} in bucket "
            f"{params['bucket']!r}: the copies would be listed as sources"
        )
    if not in_place and params["delete_absent"]:
        raise InputError("delete_absent applies to an in-place restore only (not with target_bucket/target_prefix)")
    return at, (None if in_place else {"bucket": target_bucket, "prefix": target_prefix})


def _label(entry):
    if not entry:
        return "absent"
    return f"{'delete marker' if entry.get('delete_marker') else 'version'} {entry.get('version_id')}"


def _label_after(plan):
    if plan["action"] == "add_delete_marker":
        return "delete marker"
    return _label(plan["restore_version"])


def predicted_after(plans, before_present):
    """``{keys, present, deleted}`` predicted from the plan (check mode, or without waiting)."""
    present = dict(before_present)
    for plan in plans:
        if plan["action"] in ("copy", "remove_delete_marker"):
            present[plan.get("target_key", plan["key"])] = True
        elif plan["action"] == "add_delete_marker":
            present[plan["key"]] = False
    count = sum(1 for v in present.values() if v)
    return {"keys": len(present), "present": count, "deleted": len(present) - count}


def run(module, result=None):
    try:
        params = dict(module.params, prefix=scope(module.params))
        at, target = validate(params, utc_now())
    except InputError as e:
        module.fail_json(msg=str(e), changed=False)
    bucket, prefix, keys = params["bucket"], params["prefix"], params["keys"]

    caller = Caller(params["retry_budget"])
    s3 = aws_client(module, "s3", pool=params["concurrency"])
    restorer = s3_restore.Restorer(
        caller,
        s3,
        bucket,
        at,
        concurrency=params["concurrency"],
        multipart_threshold=params["multipart_threshold"],
        part_size=params["part_size"],
        keep_encryption=params["keep_encryption"],
    )

    status = restorer.versioning()
    if status not in ("Enabled", "Suspended"):
        raise InputError(f"bucket {bucket!r} has never had versioning enabled: there are no versions to restore")

    if keys is not None:
        histories = restorer.list_keys(list(dict.fromkeys(keys)))
        names = list(histories)
        without = [k for k in names if not histories[k]]
        if len(without) == len(names):
            raise InputError(f"no versions of key(s) {without!r} in bucket {bucket!r}")
    else:
        histories = restorer.list_prefix(prefix)
        names = sorted(histories)
        if not names:
            raise InputError(
                f"no versions in bucket {bucket!r}"
                if prefix == ""
                else f"no versions under prefix {prefix!r} in bucket {bucket!r}"
            )
    list_calls = restorer.list_calls

    def dest_of(key):
        if target is None:
            return bucket, key
        return target["bucket"], s3_restore.destination_key(key, prefix if keys is None else None, target["prefix"])

    dest_state = None
    if target is not None:
        if keys is None:
            dest_state = s3_restore.destination_state(caller, s3, target["bucket"], target["prefix"], True)
        else:
            dest_keys = [dest_of(k)[1] for k in names]
            dest_state = s3_restore.destination_state(
                caller, s3, target["bucket"], dest_keys, False, params["concurrency"]
            )

    plans = []
    for key in names:
        dest = dest_state.get(dest_of(key)[1], {}) if dest_state is not None else None
        plan = s3_restore.plan_key(
            key, histories[key], at, delete_absent=params["delete_absent"], target=dest, explicit=keys is not None
        )
        if target is not None:
            plan["target_key"] = dest_of(key)[1]
        plans.append(plan)

    if target is None:
        before_present = {k: bool(histories[k]) and not histories[k][0]["delete_marker"] for k in names}
    else:
        before_present = {dest_of(k)[1]: dest_of(k)[1] in dest_state for k in names}
    count = sum(before_present.values())
    before = {"keys": len(names), "present": count, "deleted": len(names) - count}

    changing = [p for p in plans if p["action"] in s3_restore.CHANGING]
    result = {
        "changed": bool(changing),
        "bucket": bucket,
        "time": iso_utc(at),
        "target": target,
        "list_calls": list_calls,
        "before": before,
        "errors": [],
    }
    if module._diff:
        shown = changing[: params["report_limit"]]
        result["diff"] = {
            "before": {p["key"]: _label(p["current"]) for p in shown},
            "after": {p.get("target_key", p["key"]): _label_after(p) for p in shown},
        }

    if keys is not None:
        where = f"{bucket} ({len(names)} named key(s))"
    else:
        where = f"{bucket} (the whole bucket)" if prefix == "" else f"{bucket} under {prefix!r}"
    if module.check_mode or not changing:
        result["after"] = predicted_after(plans, before_present)
        finish(result, plans, params["report_limit"])
        verb = "check mode: would restore" if module.check_mode else "nothing to restore:"
        result["msg"] = f"{verb} {len(changing)} of {len(names)} key(s) in {where} to {iso_utc(at)} ({_brief(result)})"
        return result

    done, failed = restorer.act_all(plans, dest_of)
    result["changed"] = bool(done)
    result["errors"] = [
        {
            "key": p["key"],
            "action": p["action"],
            "error": p["error"],
            "aws_operation": p.get("aws_operation"),
            "aws_error_code": p.get("aws_error_code"),
        }
        for p in failed
    ]

    verified = None
    if params["wait"] and done:
        try:
            present = verify(module, restorer, caller, s3, done, target, prefix)
            after = dict(before_present, **present)
            count = sum(after.values())
            result["after"] = {"keys": len(after), "present": count, "deleted": len(after) - count}
        except (VerifyError, StepAWSError) as e:
            verified = str(e)
            result["after"] = predicted_after(done, before_present)
    else:
        result["after"] = predicted_after(done, before_present)
    finish(result, plans, params["report_limit"])
    result["msg"] = (
        f"restored {len(done)} of {len(names)} key(s) in {where} to {iso_utc(at)} ({_brief(result)})"
        + (f"; {len(failed)} failed" if failed else "")
        + ("; verified" if params["wait"] and done and verified is None else "")
    )
    if failed:
        # every key was tried; the step fails naming the keys, the call, the code and the bucket, with the
        # keys that were restored still in the result (counts, actions, after)
        result.update(failure_of(failed, target["bucket"] if target is not None else bucket))
        result["msg"] += f": {result.pop('failure')}"
    if verified is not None:
        result["msg"] += f"{'; ' if failed else ': '}{verified}"
    if failed or verified is not None:
        module.fail_json(**result)
    return result


def failure_of(failed, bucket):
    """The contract's failure keys for keys whose action failed (the first failure's call and code), and the text
    naming them: ``N key(s) failed in bucket B: [keys] (Operation Code); first failure: key: error``."""
    first = failed[0]
    keys = [p["key"] for p in failed]
    calls = ", ".join(dict.fromkeys(f"{p.get('aws_operation')} {p.get('aws_error_code')}" for p in failed))
    shown = keys[:10] + ([f"... {len(keys) - 10} more"] if len(keys) > 10 else [])
    return {
        "aws_operation": first.get("aws_operation"),
        "aws_error_code": first.get("aws_error_code"),
        "resource": f"bucket {bucket!r} key(s) {shown!r}",
        "attempts": first.get("attempts"),
        "failed_keys": keys,
        "failure": (
            f"{len(keys)} key(s) failed in bucket {bucket!r}: {shown!r} ({calls}); "
            f"first failure: {first['key']!r}: {first['error']}"
        ),
    }


def _brief(result):
    return ", ".join(f"{a}: {n}" for a, n in result["counts"].items() if n) or "no keys"


def finish(result, plans, limit):
    counts, reported, truncated = s3_restore.summarize(plans, limit)
    result.update(counts=counts, actions=reported, truncated=truncated)


def verify(module, restorer, caller, s3, done, target, prefix):
    """List again until each changed key is in its state at the time (or the timeout).

    Returns ``{name: present}`` for the changed keys (destination keys when restoring elsewhere)."""
    deadline = time.monotonic() + module.params["wait_timeout"]
    while True:
        wrong, present = [], {}
        if target is None:
            # One listing pass over the prefix when that takes fewer calls than one listing per key.
            if prefix is not None and len(done) > restorer.list_calls:
                histories = restorer.list_prefix(prefix)
            else:
                histories = restorer.list_keys([p["key"] for p in done])
            for plan in done:
                history = histories.get(plan["key"], [])
                again = s3_restore.plan_key(plan["key"], history, restorer.at)
                present[plan["key"]] = bool(history) and not history[0]["delete_marker"]
                if plan["action"] == "add_delete_marker":
                    ok = not present[plan["key"]]
                elif plan["action"] == "copy":
                    # our copy is the current version (a multipart or SSE-KMS copy has another ETag)
                    made = plan.get("new_version_id")
                    ok = again["action"] == "unchanged" or (
                        present[plan["key"]] and made is not None and history[0]["version_id"] == made
                    )
                else:
                    ok = again["action"] == "unchanged"
                if not ok:
                    wrong.append(plan["key"])
        else:
            state = s3_restore.destination_state(
                caller, s3, target["bucket"], [p["target_key"] for p in done], False, restorer.concurrency
            )
            for plan in done:
                found, want = state.get(plan["target_key"]), plan["restore_version"]
                present[plan["target_key"]] = found is not None
                same = found is not None and found["size"] == want["size"]
                if not same or (not plan.get("multipart") and found["etag"] != want["etag"]):
                    wrong.append(plan["key"])
        if not wrong:
            return present
        if time.monotonic() >= deadline:
            raise VerifyError(
                f"verification failed: {len(wrong)} key(s) are not in their state at the time: {wrong[:10]!r}"
            )
        time.sleep(1)


def main():
    run_aws_step(
        run,
        "recovery",
        ARGUMENT_SPEC,
        mutually_exclusive=[("keys", "prefix")],
    )


if __name__ == "__main__":
    main()
