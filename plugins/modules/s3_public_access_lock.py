#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_public_access_lock
short_description: Turn on S3 Block Public Access for a bucket during an incident, and release it exactly
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Containment step for public S3 objects (seed plan "Challenge 04", detection "public S3 objects").
  - With O(state=contained), turns on all four Block Public Access settings of the bucket (C(BlockPublicAcls),
    C(IgnorePublicAcls), C(BlockPublicPolicy), C(RestrictPublicBuckets)), tags the bucket with the incident and
    returns a RV(containment) entry recording the previous configuration (C(null) when none was configured),
    the settings it turned on and the tags it added.
  - With O(state=released), undoes exactly what the given O(containments) entries of this bucket say. It turns off
    again only the settings they turned on and that are still on, deletes the configuration again when there was
    none before, and removes the incident tags they added. A setting someone turned off meanwhile, or a tag
    someone changed, is left alone and reported in the C(left_alone) of RV(release).
  - One module call reads the bucket, decides, changes it and reads it back. A re-run changes nothing. In check
    mode nothing is changed and the result (with a diff) says what would be. Bad input (an invalid or unknown
    bucket, a missing incident id) fails naming the value before anything is changed.
options:
  bucket:
    description:
      - Name (or C(arn:aws:s3:::name)) of the bucket.
    type: str
    required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.INCIDENT
  - firebreak.runbooks.step.CONTAINMENT
  - firebreak.runbooks.step.ATTRIBUTES
  - firebreak.runbooks.step.CLAIMS
notes:
  - O(incident_id) is required with O(state=contained) (except in check mode).
  - S3 has no per-tag call on buckets; the tag set is read, merged and written back. A tag written by someone else
    between the read and the write (milliseconds) would be lost; the step reads the tags back and warns.
  - The account-level Block Public Access (S3 Control) is neither read nor changed.
  - Existing public object ACLs stay on the objects; C(IgnorePublicAcls) makes S3 ignore them while the block is on.
seealso:
  - module: amazon.aws.s3_bucket
"""

EXAMPLES = r"""
- name: Block public access to the uploads bucket
  firebreak.runbooks.s3_public_access_lock:
    bucket: firebreak-sandbox-uploads
    incident_id: INC-2041
  register: lock

- name: Release what this incident locked
  firebreak.runbooks.s3_public_access_lock:
    bucket: firebreak-sandbox-uploads
    state: released
    incident_id: INC-2041
    containments: >-
      {{ lookup('firebreak.runbooks.containments', 's3_public_block', incident_id='INC-2041', wantlist=True) }}
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "turned on IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets on firebreak-sandbox-uploads"
bucket:
  description: The bucket acted on.
  returned: always
  type: str
  sample: firebreak-sandbox-uploads
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: containment}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str, sample: GetAlias}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
policy_is_public:
  description: Whether the bucket policy grants public access (S3's evaluation), read before acting.
  returned: always
  type: bool
  sample: false
before:
  description: The bucket before the step.
  returned: always
  type: dict
  contains:
    public_access_block:
      description: The four settings, or C(null) when no configuration exists.
      returned: always
      type: dict
      sample:
        BlockPublicAcls: true
        IgnorePublicAcls: false
        BlockPublicPolicy: false
        RestrictPublicBuckets: false
    tags:
      description: The bucket's incident tags (C(firebreak:incident), C(firebreak:step)) only.
      returned: always
      type: dict
      sample: {}
after:
  description: The bucket after the step (read back), or in check mode the predicted state.
  returned: always
  type: dict
  contains:
    public_access_block:
      description: The four settings, or C(null) when no configuration exists.
      returned: always
      type: dict
      sample:
        BlockPublicAcls: true
        IgnorePublicAcls: true
        BlockPublicPolicy: true
        RestrictPublicBuckets: true
    tags:
      description: The bucket's incident tags only.
      returned: always
      type: dict
      sample: {"firebreak:incident": "INC-2041", "firebreak:step": "s3_public_block"}
containment:
  description:
    - With O(state=contained), when something was (or in check mode would be) changed, the containment entry the
      timeline records and the release reads back.
    - C(changed) has C(public_access_block_before) (C(null) for none configured), C(turned_on) and C(tags_added).
  returned: always
  type: list
  elements: dict
  sample:
    - incident_id: INC-2041
      step: s3_public_block
      resource: arn:aws:s3:::firebreak-sandbox-uploads
      changed:
        public_access_block_before: null
        turned_on: [BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets]
        tags_added: {"firebreak:incident": "INC-2041", "firebreak:step": "s3_public_block"}
      at: "2026-11-24T13:30:00Z"
      id: 0123456789abcdef
release:
  description:
    - With O(state=released), what was undone (C(restored)), the ids of the released entries (C(releases)) and
      what was left alone because someone changed it meanwhile (C(left_alone)); C(gone=true) when the bucket no
      longer exists.
  returned: when state is released
  type: list
  elements: dict
  sample:
    - incident_id: INC-2041
      step: s3_public_block
      resource: arn:aws:s3:::firebreak-sandbox-uploads
      releases: [0123456789abcdef]
      restored: {"public_access_block": null, "turned_off": [BlockPublicAcls], "tags_removed": ["firebreak:incident"]}
      left_alone: {"BlockPublicPolicy": "turned off by someone else meanwhile (left off)"}
      at: "2026-11-24T15:00:00Z"
kept:
  description:
    - With O(state=released), the settings left on because another unreleased incident still claims them (the
      containment ledger), with who. The last claimant's release turns them off.
  returned: when state is released
  type: dict
  sample: {"BlockPublicAcls": ["INC-2042"]}
gone:
  description:
    - With O(state=released), the bucket when it no longer exists (its entries are recorded as released and nothing
      fails), else empty.
  returned: when state is released
  type: list
  elements: str
  sample: []
diff:
  description: Before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {"public_access_block": null}, "after": {"public_access_block": {"BlockPublicAcls": true}}}
"""

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import s3_public_access as s3pa
from ansible_collections.firebreak.runbooks.plugins.module_utils.containment import ledger
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime import step
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import run_aws_step

ARGUMENT_SPEC = dict(
    bucket=dict(type="str", required=True),
    **ledger.CONTAINMENT_OPTIONS,
    **ledger.CLAIMS_OPTIONS,
    **step.INCIDENT_OPTION,
    **step.RETRY_BUDGET_OPTION,
)

TAG_KEYS = tuple(step.incident_tags("x", s3pa.STEP))


def claims_ledger(module, caller):
    return ledger.for_module(module, caller)


def bookkeeping(module, record):
    ledger.bookkeeping(module, "the bucket was changed", record)


def view(configuration, tags):
    return {"public_access_block": configuration, "tags": s3pa.incident_tag_view(tags, TAG_KEYS)}


def contain(module, caller, s3, bucket, result):
    incident_id = module.params["incident_id"]
    configuration = s3pa.read_configuration(caller, s3, bucket)
    tags = s3pa.read_tags(caller, s3, bucket)
    result["policy_is_public"] = s3pa.read_policy_is_public(caller, s3, bucket)
    wanted = step.incident_tags(incident_id or "(check mode: no incident id)", s3pa.STEP)
    decision = s3pa.decide_contain(configuration, tags, wanted)
    claimed = s3pa.setting_items(s3pa.SETTINGS)  # the incident needs all four on, whoever turned them on
    new_claims = 0
    if not module.check_mode and incident_id:
        # the claims first: another incident's release must see them before the settings are turned on
        new_claims = claims_ledger(module, caller).claim(incident_id, s3pa.STEP, s3pa.bucket_arn(bucket), claimed)
    changed = bool(decision["turn_on"] or decision["tags_added"] or new_claims)
    result.update(changed=changed, before=view(configuration, tags))
    predicted = view(decision["after"], decision["after_tags"])
    result["containment"] = []
    if changed:
        result["containment"] = [
            step.containment_entry(
                incident_id,
                s3pa.STEP,
                s3pa.bucket_arn(bucket),
                s3pa.containment_changed(configuration, decision),
                claimed=claimed,
            )
        ]
    what = ", ".join(decision["turn_on"]) or "no setting (all four already on)"
    if module.check_mode or not (decision["turn_on"] or decision["tags_added"]):
        result["after"] = predicted if module.check_mode else result["before"]
        prefix = "check mode: would turn on" if module.check_mode else "no change:"
        if not changed:
            result["msg"] = f"no change: Block Public Access is fully on for {bucket} and tagged for the incident"
        else:
            result["msg"] = f"{prefix} {what} on {bucket}"
        return result

    # Act: settings first (the containment), then the tags (the record on the resource).
    result["changed"] = True  # from here on a failure reports what may have been changed
    if decision["turn_on"]:
        s3pa.write_configuration(caller, s3, bucket, decision["after"])
        bookkeeping(
            module,
            lambda: claims_ledger(module, caller).mark_added(
                incident_id, s3pa.STEP, s3pa.bucket_arn(bucket), s3pa.setting_items(decision["turn_on"])
            ),
        )
    if decision["tags_added"]:
        s3pa.write_tags(caller, s3, bucket, decision["after_tags"])
    after_config = s3pa.read_configuration(caller, s3, bucket)
    after_tags = s3pa.read_tags(caller, s3, bucket)
    result["after"] = view(after_config, after_tags)
    if s3pa.effective(after_config) != s3pa.FULL_BLOCK:
        module.fail_json(
            msg=f"Block Public Access on {bucket} reads back as {after_config} after turning it on", **result
        )
    lost = sorted(set(tags) - set(after_tags))
    if lost:
        module.warn(f"tags {lost} of {bucket} disappeared while the incident tags were written (a concurrent writer?)")
    result["msg"] = f"turned on {what} on {bucket}" if decision["turn_on"] else f"tagged {bucket} for the incident"
    return result


def release(module, caller, s3, bucket, result):
    entries = s3pa.entries_for(module.params["containments"], bucket)
    try:
        configuration = s3pa.read_configuration(caller, s3, bucket)
    except s3pa.S3PublicAccessError as err:
        # the bucket is gone: nothing to restore; its entries are recorded as released and the release goes on
        owner = module.params["incident_id"] or (entries[0].get("incident_id") if entries else None)
        if entries and owner and not module.check_mode:
            items = list(dict.fromkeys(i for e in entries for i in (e.get("claimed") or [])))
            bookkeeping(module, lambda: claims_ledger(module, caller).drop(owner, s3pa.bucket_arn(bucket), items))
        result.update(before={}, after={}, gone=[bucket] if entries else [], msg=f"gone: {err}; nothing to restore")
        result["release"] = [
            step.release_entry(
                module.params["incident_id"],
                s3pa.STEP,
                s3pa.bucket_arn(bucket),
                [e.get("id") for e in entries if e.get("id")],
                {},
                {},
                gone=True,
                reason=str(err),
            )
        ]
        return result
    result["gone"] = []
    owner = module.params["incident_id"] or (entries[0].get("incident_id") if entries else None)
    ours = s3pa.setting_items([n for e in entries for n in e["changed"].get("turned_on") or []])
    claimed = list(dict.fromkeys([i for e in entries for i in e.get("claimed") or []] + ours))
    selection = {"remove": ours, "kept": {}}
    if entries and owner:
        # what no other unreleased incident still claims (the ledger); the rest is kept, for whom is said
        selection = claims_ledger(module, caller).select(owner, s3pa.bucket_arn(bucket), claimed, ours)
    result["kept"] = {item.split(":", 1)[1]: who for item, who in selection["kept"].items()}
    tags = s3pa.read_tags(caller, s3, bucket)
    result["policy_is_public"] = s3pa.read_policy_is_public(caller, s3, bucket)
    result["before"] = view(configuration, tags)
    removable = [item.split(":", 1)[1] for item in selection["remove"]]
    decision = s3pa.decide_release(entries, configuration, tags, removable)
    for name, who in result["kept"].items():
        decision["left_alone"][name] = f"still claimed by {', '.join(who)}: left on"

    def settle():
        if entries and owner and not module.check_mode:
            bookkeeping(
                module,
                lambda: claims_ledger(module, caller).settle(
                    owner, s3pa.bucket_arn(bucket), claimed, removed=selection["remove"]
                ),
            )

    restored = {
        "public_access_block": decision["after"],
        "turned_off": decision["turn_off"],
        "tags_removed": decision["tags_removed"],
    }
    result["changed"] = decision["changed"]
    result["release"] = [
        step.release_entry(
            module.params["incident_id"],
            s3pa.STEP,
            s3pa.bucket_arn(bucket),
            [e.get("id") for e in entries if e.get("id")],
            restored,
            decision["left_alone"],
        )
    ]
    predicted = view(decision["after"], decision["after_tags"])
    if not entries:
        result.update(after=result["before"], msg=f"nothing to release on {bucket}: no containment entry for it")
        return result
    if module.check_mode or not decision["changed"]:
        settle()
        result["after"] = predicted if module.check_mode else result["before"]
        verb = "check mode: would restore" if module.check_mode else "no change needed to restore"
        result["msg"] = f"{verb} the recorded Block Public Access of {bucket}" + _left(decision)
        return result

    if decision["delete_configuration"]:
        s3pa.write_configuration(caller, s3, bucket, None)
    elif decision["turn_off"]:
        s3pa.write_configuration(caller, s3, bucket, decision["after"])
    if decision["tags_removed"]:
        s3pa.write_tags(caller, s3, bucket, decision["after_tags"])
    settle()
    result["after"] = view(s3pa.read_configuration(caller, s3, bucket), s3pa.read_tags(caller, s3, bucket))
    result["msg"] = f"restored the recorded Block Public Access of {bucket}" + _left(decision)
    return result


def _left(decision):
    if not decision["left_alone"]:
        return ""
    return "; left alone (changed meanwhile): " + ", ".join(sorted(decision["left_alone"]))


def run(module, result):
    """The whole step; ``result`` is filled as it goes, so a failure after a change reports it."""
    params = module.params
    bucket = s3pa.validate_bucket(params["bucket"])
    if params["state"] == "contained" and not params["incident_id"] and not module.check_mode:
        raise s3pa.S3PublicAccessError("incident_id is required to contain (it tags the bucket and names the entry)")
    if params["state"] == "released":
        s3pa.entries_for(params["containments"], bucket)  # validate the entries before any call
    result.update(changed=False, bucket=bucket)
    s3 = step.aws_client(module, "s3")
    caller = step.Caller(params["retry_budget"])
    if params["state"] == "contained":
        result = contain(module, caller, s3, bucket, result)
    else:
        result = release(module, caller, s3, bucket, result)
    return result


def main():
    run_aws_step(run, "containment", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
