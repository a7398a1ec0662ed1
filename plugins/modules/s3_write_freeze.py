#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_write_freeze
short_description: Stop writes and deletes to an S3 bucket with a bucket policy statement, and release it exactly
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Containment step of the data loss scenario ("stop writes first").
  - With O(state=contained), adds one Deny statement to the bucket policy (its C(Sid) is C(FirebreakWriteFreeze)
    followed by the incident id's letters and digits and a digest of the id) that denies C(s3:PutObject),
    C(s3:DeleteObject), C(s3:DeleteObjectVersion), C(s3:ReplicateObject), C(s3:ReplicateDelete),
    C(s3:PutLifecycleConfiguration), C(s3:PutBucketVersioning), C(s3:PutBucketPolicy) and C(s3:DeleteBucketPolicy)
    on the bucket and its objects to every principal except the responders. Reads are not denied.
  - The responders are exempted with the condition C(ArnNotLike) on C(aws:PrincipalArn), which for a role is the
    role's ARN whatever the session. The caller (C(sts:GetCallerIdentity)) is always exempt, an assumed role as
    C(role/<name>) and C(role/*/<name>) (with any path), so the responder never locks themself out; add the other
    responders' roles in O(exempt_principal_arns).
  - Every other statement of the policy is kept as it is. The policy before is returned (RV(policy_before)) and
    recorded in the RV(containment) entry, the evidence of what the bucket allowed.
  - With O(state=released), removes only this incident's statement (named in O(containments)); the rest of the
    policy stays equal to what it was, and the policy is deleted when no other statement is left.
  - Before it freezes, the step records a claim in the containment ledger (O(claims_bucket) or O(claims_dir)). A
    release while another unreleased incident also freezes the bucket says so in RV(kept); that incident's own
    statement keeps the bucket frozen.
  - One module call reads the caller and the policy, decides, writes and reads the policy back. A re-run changes
    nothing. In check mode nothing is changed and the result (with a diff) says what would be. Bad input fails
    naming the value before anything is changed.
options:
  bucket:
    description:
      - Name (or C(arn:aws:s3:::name)) of the bucket.
    type: str
    required: true
  exempt_principal_arns:
    description:
      - IAM ARNs (users, roles, the account root) that keep write access during the freeze, besides the caller.
        Wildcards are allowed as C(ArnLike) takes them (C(arn:aws:iam::123456789012:role/Responder*)); a bare C(*)
        is refused.
      - For a role give the role's ARN (C(arn:aws:iam::<account>:role/<path><name>)), not a session's.
    type: list
    elements: str
    default: []
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
  - S3 has no conditional write of a bucket policy. The step reads it, adds (or removes) its statement and writes
    it back, then reads it back and fails when its statement is not as written (a concurrent writer); a statement
    someone else wrote in the milliseconds between the read and the write would be lost.
  - Requests that carry no C(aws:PrincipalArn) (AWS service principals such as server access log delivery,
    anonymous requests) are denied the frozen actions too. Existing lifecycle rules keep running (S3 applies them
    itself); the freeze stops new ones.
  - While the bucket is frozen, only the exempt principals (and the account's root user) can change its policy; a
    responder of another incident whose role is not exempt cannot add their own freeze; exempt the responder roles.
  - AWS permissions are C(sts:GetCallerIdentity), C(s3:GetBucketPolicy), C(s3:PutBucketPolicy) and
    C(s3:DeleteBucketPolicy).
seealso:
  - module: firebreak.runbooks.s3_public_access_lock
  - module: firebreak.runbooks.s3_object_restore
"""

EXAMPLES = r"""
- name: Stop writes to the media bucket (reads go on)
  firebreak.runbooks.s3_write_freeze:
    bucket: firebreak-sandbox-media
    incident_id: INC-2041
    exempt_principal_arns:
      - arn:aws:iam::123456789012:role/IncidentResponder
  register: freeze

- name: Release this incident's freeze
  firebreak.runbooks.s3_write_freeze:
    bucket: firebreak-sandbox-media
    state: released
    incident_id: INC-2041
    containments: >-
      {{ lookup('firebreak.runbooks.containments', 's3_write_freeze', incident_id='INC-2041', wantlist=True) }}
"""

RETURN = r"""
msg:
  description: What was done or why nothing was done.
  returned: always
  type: str
  sample: "froze writes to firebreak-sandbox-media (statement FirebreakWriteFreezeINC20415c1b3a4e)"
bucket:
  description: The bucket acted on.
  returned: always
  type: str
  sample: firebreak-sandbox-media
sid:
  description: The Sid of this incident's freeze statement.
  returned: always
  type: str
  sample: FirebreakWriteFreezeINC20415c1b3a4e
exempt:
  description: With O(state=contained), the C(aws:PrincipalArn) values the statement exempts (the caller first).
  returned: when state is contained
  type: list
  elements: str
  sample: ["arn:aws:iam::123456789012:role/IncidentResponder", "arn:aws:iam::123456789012:role/*/IncidentResponder"]
policy_before:
  description: The bucket policy text as S3 answered it before the step, C(null) when the bucket had none.
  returned: always
  type: str
  sample: null
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: containment}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
before:
  description: The bucket policy before the step.
  returned: always
  type: dict
  contains:
    policy:
      description: The policy document, or C(null) when there is none.
      returned: always
      type: dict
    frozen_by:
      description: The Sids of the firebreak freeze statements in it (every incident's).
      returned: always
      type: list
      elements: str
after:
  description: The bucket policy after the step (read back), or in check mode the predicted one.
  returned: always
  type: dict
  contains:
    policy:
      description: The policy document, or C(null) when there is none.
      returned: always
      type: dict
    frozen_by:
      description: The Sids of the firebreak freeze statements in it.
      returned: always
      type: list
      elements: str
containment:
  description:
    - With O(state=contained), when the statement was (or in check mode would be) added or changed, or a claim was
      recorded, the containment entry the timeline records and the release reads back.
    - C(changed) has C(sid), C(statement), C(statement_before) (the statement with that Sid before, when the exempt
      list changed), C(policy_before) (the policy text, C(null) for none) and C(statement_was_object).
  returned: always
  type: list
  elements: dict
  sample:
    - incident_id: INC-2041
      step: s3_write_freeze
      resource: arn:aws:s3:::firebreak-sandbox-media
      changed:
        sid: FirebreakWriteFreezeINC20415c1b3a4e
        statement: {"Sid": "FirebreakWriteFreezeINC20415c1b3a4e", "Effect": "Deny"}
        statement_before: null
        policy_before: null
        statement_was_object: false
      claimed: [freeze]
      at: "2026-11-24T13:30:00Z"
      id: 0123456789abcdef
release:
  description:
    - With O(state=released), what was undone (C(restored)), the ids of the released entries (C(releases)) and what
      was left alone (C(left_alone)); C(gone=true) when the bucket no longer exists.
  returned: when state is released
  type: list
  elements: dict
  sample:
    - incident_id: INC-2041
      step: s3_write_freeze
      resource: arn:aws:s3:::firebreak-sandbox-media
      releases: [0123456789abcdef]
      restored: {"removed_statement": "FirebreakWriteFreezeINC20415c1b3a4e", "policy_deleted": true}
      left_alone: {}
      at: "2026-11-24T15:00:00Z"
kept:
  description:
    - With O(state=released), C(freeze) with the other unreleased incidents that still freeze the bucket (their own
      statements keep it frozen), else empty.
  returned: when state is released
  type: dict
  sample: {"freeze": ["INC-2042"]}
gone:
  description: With O(state=released), the bucket when it no longer exists, else empty.
  returned: when state is released
  type: list
  elements: str
  sample: []
diff:
  description: Before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {"policy": null}, "after": {"policy": {"Version": "2012-10-17"}}}
"""

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import s3_write_freeze as wf
from ansible_collections.firebreak.runbooks.plugins.module_utils.containment import ledger
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime import step
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import run_aws_step

ARGUMENT_SPEC = dict(
    bucket=dict(type="str", required=True),
    exempt_principal_arns=dict(type="list", elements="str", default=[]),
    **ledger.CONTAINMENT_OPTIONS,
    **ledger.CLAIMS_OPTIONS,
    **step.INCIDENT_OPTION,
    **step.RETRY_BUDGET_OPTION,
)


def claims_ledger(module, caller):
    return ledger.for_module(module, caller)


def bookkeeping(module, record):
    ledger.bookkeeping(module, "the bucket policy was changed", record)


def contain(module, caller, s3, bucket, exempt_requested, result):
    incident_id = module.params["incident_id"]
    sid = wf.statement_sid(incident_id or "(check mode: no incident id)")
    identity = wf.caller_arn(caller, step.aws_client(module, "sts"))
    exempt = wf.exempt_list(exempt_requested, identity)
    text = wf.read_policy(caller, s3, bucket)
    document = wf.parse_policy(text, bucket)
    statement = wf.freeze_statement(bucket, sid, exempt)
    decision = wf.decide_freeze(document, statement)
    result.update(sid=sid, exempt=exempt, policy_before=text, before=wf.view(document))
    arn = wf.bucket_arn(bucket)
    new_claims = 0
    if not module.check_mode and incident_id:
        # the claim first: another incident's release must see it before the bucket is frozen
        new_claims = claims_ledger(module, caller).claim(incident_id, wf.STEP, arn, [wf.LEDGER_ITEM])
    acting = decision["action"] != "none"
    result["changed"] = bool(acting or new_claims)
    result["containment"] = []
    if result["changed"]:
        result["containment"] = [
            step.containment_entry(
                incident_id,
                wf.STEP,
                arn,
                wf.containment_changed(text, document, decision, statement),
                claimed=[wf.LEDGER_ITEM],
            )
        ]
    if module.check_mode or not acting:
        result["after"] = wf.view(decision["after"]) if module.check_mode else result["before"]
        if not result["changed"]:
            result["msg"] = f"no change: writes to {bucket} are already frozen by statement {sid}"
        elif module.check_mode:
            verb = "add" if decision["action"] == "add" else "update"
            result["msg"] = f"check mode: would {verb} statement {sid} freezing writes to {bucket}"
        else:
            result["msg"] = f"no change to the policy of {bucket} (statement {sid} in place); claim recorded"
        return result

    result["changed"] = True  # from here on a failure reports what may have been changed
    wf.write_policy(caller, s3, bucket, decision["after"])
    bookkeeping(module, lambda: claims_ledger(module, caller).mark_added(incident_id, wf.STEP, arn, [wf.LEDGER_ITEM]))
    after = wf.parse_policy(wf.read_policy(caller, s3, bucket), bucket)
    result["after"] = wf.view(after)
    if statement not in wf.statements(after):
        module.fail_json(msg=f"the policy of {bucket} reads back without statement {sid} as written", **result)
    lost = [s.get("Sid") for s in wf.statements(document) if s.get("Sid") != sid and s not in wf.statements(after)]
    if lost:
        module.warn(f"statements {lost} of {bucket} changed while the freeze was written (a concurrent writer?)")
    verb = "froze" if decision["action"] == "add" else "updated the freeze of"
    result["msg"] = f"{verb} writes to {bucket} (statement {sid}; exempt: {', '.join(exempt)})"
    return result


def release(module, caller, s3, bucket, result):
    entries = wf.entries_for(module.params["containments"], bucket)
    owner = module.params["incident_id"] or (entries[0].get("incident_id") if entries else None)
    sid = entries[0]["changed"]["sid"] if entries else wf.statement_sid(owner or "(no incident id)")
    arn = wf.bucket_arn(bucket)
    ids = [e.get("id") for e in entries if e.get("id")]
    result.update(sid=sid, gone=[], kept={})
    try:
        text = wf.read_policy(caller, s3, bucket)
    except wf.BucketGone as err:
        # nothing to restore; the entries are recorded as released and the release goes on
        if entries and owner and not module.check_mode:
            bookkeeping(module, lambda: claims_ledger(module, caller).drop(owner, arn, [wf.LEDGER_ITEM]))
        result.update(before={}, after={}, policy_before=None, gone=[bucket] if entries else [])
        result["msg"] = f"gone: {err}; nothing to restore"
        result["release"] = [step.release_entry(owner, wf.STEP, arn, ids, {}, {}, gone=True, reason=str(err))]
        return result
    document = wf.parse_policy(text, bucket)
    result.update(policy_before=text, before=wf.view(document))
    if not entries:
        result.update(after=result["before"], msg=f"nothing to release on {bucket}: no containment entry for it")
        result["release"] = [step.release_entry(owner, wf.STEP, arn, [], {}, {})]
        return result

    selection = {"remove": [wf.LEDGER_ITEM], "kept": {}}
    if owner:
        selection = claims_ledger(module, caller).select(owner, arn, [wf.LEDGER_ITEM], [wf.LEDGER_ITEM])
    result["kept"] = dict(selection["kept"])
    decision = wf.decide_release(document, sid, bool(entries[0]["changed"].get("statement_was_object")))
    left_alone = {}
    if decision["action"] == "none":
        left_alone[sid] = "not in the bucket policy (removed by someone else meanwhile)"
    others = [s for s in wf.freeze_sids(decision["after"]) if s != sid]
    for who in result["kept"].get(wf.LEDGER_ITEM, []):
        left_alone[f"freeze for {who}"] = "still claimed: the bucket stays frozen by that incident's own statement"
    if result["kept"] and not others:
        module.warn(
            f"{', '.join(result['kept'][wf.LEDGER_ITEM])} still claim the freeze of {bucket} but no other freeze "
            "statement is in its policy: the bucket is no longer frozen once this statement goes"
        )
    restored = {"removed_statement": sid if decision["action"] != "none" else None}
    restored["policy_deleted"] = decision["action"] == "delete"
    result["changed"] = decision["action"] != "none"
    result["release"] = [step.release_entry(owner, wf.STEP, arn, ids, restored, left_alone)]

    def settle():
        if owner and not module.check_mode:
            bookkeeping(
                module,
                lambda: claims_ledger(module, caller).settle(owner, arn, [wf.LEDGER_ITEM], removed=selection["remove"]),
            )

    kept = ""
    if result["kept"]:
        kept = f"; the bucket stays frozen for {', '.join(result['kept'][wf.LEDGER_ITEM])} (still claimed)"
    if module.check_mode or not result["changed"]:
        settle()
        result["after"] = wf.view(decision["after"]) if module.check_mode else result["before"]
        if module.check_mode and result["changed"]:
            result["msg"] = f"check mode: would remove statement {sid} from the policy of {bucket}" + kept
        else:
            result["msg"] = f"no change: statement {sid} is not in the policy of {bucket}" + kept
        return result

    wf.write_policy(caller, s3, bucket, decision["after"])
    settle()
    after = wf.parse_policy(wf.read_policy(caller, s3, bucket), bucket)
    result["after"] = wf.view(after)
    if sid in wf.freeze_sids(after):
        module.fail_json(msg=f"the policy of {bucket} still reads back with statement {sid}", **result)
    done = "deleted the policy of" if decision["action"] == "delete" else "removed the freeze statement from"
    result["msg"] = f"{done} {bucket} (statement {sid}; every other statement kept)" + kept
    return result


def run(module, result):
    """The whole step; ``result`` is filled as it goes, so a failure after a change reports it."""
    params = module.params
    bucket = wf.validate_bucket(params["bucket"])
    exempt = wf.validate_principals(params["exempt_principal_arns"])
    if params["state"] == "contained" and not params["incident_id"] and not module.check_mode:
        raise wf.WriteFreezeError("incident_id is required to freeze (it names the statement and the entry)")
    if params["state"] == "released":
        wf.entries_for(params["containments"], bucket)  # validate the entries before any call
    result.update(changed=False, bucket=bucket)
    s3 = step.aws_client(module, "s3")
    caller = step.Caller(params["retry_budget"])
    if params["state"] == "contained":
        return contain(module, caller, s3, bucket, exempt, result)
    return release(module, caller, s3, bucket, result)


def main():
    run_aws_step(run, "containment", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
