# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""S3 write freeze: a Deny statement in the bucket policy that stops writes and deletes, not reads.

The data_loss scenario's first move ("stop writes first").  The step adds one statement per incident to
the bucket policy::

    {"Sid": "FirebreakWriteFreeze<incident, letters and digits><8 hex digits>",
     "Effect": "Deny", "Principal": "*",
     "Action": FROZEN_ACTIONS,
     "Resource": ["arn:aws:s3:::<bucket>", "arn:aws:s3:::<bucket>/*"],
     "Condition": {"ArnNotLike": {"aws:PrincipalArn": [<the responders>]}}}

Why these choices:

- ``FROZEN_ACTIONS`` are writes and deletes of data, and the bucket settings that would undo the freeze or
  make later writes destructive: ``s3:PutObject`` (also CopyObject into the bucket and every part of a
  multipart upload), ``s3:DeleteObject`` and ``s3:DeleteObjectVersion`` (also each key of DeleteObjects),
  ``s3:ReplicateObject``/``s3:ReplicateDelete`` (replication into the bucket), ``s3:PutLifecycleConfiguration``
  (a new expiration rule deletes in bulk), ``s3:PutBucketVersioning`` (suspended versioning makes the next
  overwrite final) and ``s3:PutBucketPolicy``/``s3:DeleteBucketPolicy`` (so a non-responder cannot lift the
  freeze).  Reads (``GetObject``, listings) are not denied: the service can go on serving, and the responders
  can copy evidence and restore versions.
- ``aws:PrincipalArn`` with ``ArnNotLike`` (not ``NotPrincipal``): for a role the request context carries the
  role's ARN (``arn:aws:iam::<account>:role/<path><name>``) whatever the session, so every session of a
  responder role is exempt; ``NotPrincipal`` would need each assumed-role session ARN.  ``ArnNotLike`` takes
  wildcards, so a role is exempted with and without a path (``role/<name>`` and ``role/*/<name>``: the
  assumed-role ARN that GetCallerIdentity answers does not show the path).  A request without the key (an AWS
  service principal such as log delivery, or an anonymous request) is denied: a negated condition operator
  matches when the key is absent.
- The caller (GetCallerIdentity) is always exempt, so the responder never locks themself out.  The bucket
  owner account's root user can always change the bucket policy (S3's own protection against lock-out).

Each incident has its own statement (the Sid carries the incident id), so a release removes exactly its own
and leaves every other statement as it was; the policy is deleted when nothing else is left.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws.s3_public_access import (
    bucket_arn,
    validate_bucket,
)
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError, StepError

__all__ = ["bucket_arn", "validate_bucket"]

STEP = "s3_write_freeze"
LEDGER_ITEM = "freeze"
SID_PREFIX = "FirebreakWriteFreeze"
POLICY_VERSION = "2012-10-17"

FROZEN_ACTIONS = (
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:ReplicateObject",
    "s3:ReplicateDelete",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketVersioning",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
)
CONDITION_OPERATOR = "ArnNotLike"
CONDITION_KEY = "aws:PrincipalArn"

NO_POLICY_CODE = "NoSuchBucketPolicy"
NO_BUCKET_CODES = ("NoSuchBucket", "404", "NotFound")

# A principal that may be exempted: an IAM or STS ARN of one account (wildcards allowed after the type).
_PRINCIPAL_RE = re.compile(r"^arn:aws(?:-[a-z]+)*:(?:iam|sts)::(\d{12}):([A-Za-z0-9+=,.@_/*?-]+)$")
_ASSUMED_ROLE_RE = re.compile(r"^arn:(aws(?:-[a-z]+)*):sts::(\d{12}):assumed-role/([^/]+)/.+$")


class WriteFreezeError(StepError):
    """Bad input, or a policy the step cannot read; nothing was changed."""


class BucketGone(WriteFreezeError):
    """The bucket does not exist (at release: reported in ``gone``)."""


# --------------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------------


def validate_principals(values):
    """The exempt principal ARNs, or ``WriteFreezeError`` naming the first bad one."""
    found = []
    for value in values or []:
        text = str(value or "").strip()
        match = _PRINCIPAL_RE.match(text)
        if not match or match.group(2).strip("*/") == "":
            raise WriteFreezeError(
                f"invalid exempt principal {value!r}: expected an IAM or STS ARN of one account such as "
                "arn:aws:iam::123456789012:role/IncidentResponder (a bare '*' would exempt everyone)"
            )
        if text not in found:
            found.append(text)
    return found


def caller_patterns(arn):
    """The ``aws:PrincipalArn`` values that match the caller of GetCallerIdentity.

    An assumed-role session (``arn:aws:sts::<account>:assumed-role/<name>/<session>``) is its role, with or
    without a path; any other ARN (a user, the root user, a federated user) is itself."""
    match = _ASSUMED_ROLE_RE.match(arn or "")
    if match:
        partition, account, name = match.groups()
        return [f"arn:{partition}:iam::{account}:role/{name}", f"arn:{partition}:iam::{account}:role/*/{name}"]
    return [arn]


def statement_sid(incident_id):
    """The Sid of the incident's freeze statement: letters and digits only (what IAM accepts in a Sid), with a
    digest of the exact id so that ``INC-1`` and ``INC1`` do not share one."""
    text = str(incident_id)
    readable = re.sub(r"[^A-Za-z0-9]", "", text)[:48]
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return f"{SID_PREFIX}{readable}{digest}"


def freeze_statement(bucket, sid, exempt):
    """The Deny statement for ``bucket`` that exempts the ARNs (or patterns) ``exempt``."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": list(FROZEN_ACTIONS),
        "Resource": [bucket_arn(bucket), f"{bucket_arn(bucket)}/*"],
        "Condition": {CONDITION_OPERATOR: {CONDITION_KEY: list(exempt)}},
    }


def exempt_list(exempt_principals, caller_arn):
    """The caller's patterns first, then the requested principals (no duplicates)."""
    return list(dict.fromkeys(caller_patterns(caller_arn) + list(exempt_principals or [])))


# --------------------------------------------------------------------------------------------------
# API layer
# --------------------------------------------------------------------------------------------------


def caller_arn(caller, sts):
    return caller(sts, "get_caller_identity", "the caller")["Arn"]


def read_policy(caller, s3, bucket):
    """The bucket policy text as S3 answers it, or ``None`` without one; ``BucketGone`` for no bucket."""
    try:
        answer = caller(s3, "get_bucket_policy", f"bucket {bucket!r}", Bucket=bucket)
    except StepAWSError as err:
        if err.code == NO_POLICY_CODE:
            return None
        if err.code in NO_BUCKET_CODES:
            raise BucketGone(f"S3 bucket {bucket!r} does not exist") from None
        raise
    return answer.get("Policy")


def write_policy(caller, s3, bucket, document):
    """Put ``document`` (a dict) as the bucket policy, or delete the policy for ``None``."""
    if document is None:
        caller(s3, "delete_bucket_policy", f"bucket {bucket!r}", Bucket=bucket)
    else:
        caller(s3, "put_bucket_policy", f"bucket {bucket!r}", Bucket=bucket, Policy=json.dumps(document))


# --------------------------------------------------------------------------------------------------
# Decisions (pure)
# --------------------------------------------------------------------------------------------------


def parse_policy(text, bucket):
    """The policy document (a dict) of ``text``; ``None`` for no policy."""
    if text is None:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        raise WriteFreezeError(f"the bucket policy of {bucket!r} is not JSON: {text[:200]!r}") from None
    if not isinstance(document, dict):
        raise WriteFreezeError(f"the bucket policy of {bucket!r} is not a JSON object: {text[:200]!r}")
    return document


def statements(document):
    """The statements of ``document`` as a list (a policy may hold one statement as an object)."""
    if not document:
        return []
    found = document.get("Statement")
    if isinstance(found, dict):
        return [found]
    return list(found or [])


def freeze_sids(document):
    """The Sids of every firebreak freeze statement in ``document`` (this incident's and others')."""
    return [s.get("Sid") for s in statements(document) if str(s.get("Sid") or "").startswith(SID_PREFIX)]


def view(document):
    """What before/after show: the policy and the freeze statements in it."""
    return {"policy": document, "frozen_by": freeze_sids(document)}


def decide_freeze(document, statement):
    """What freezing a bucket whose policy is ``document`` (``None``: no policy) changes.

    Returns ``{"action": "add"|"update"|"none", "after": document, "previous_statement": dict or None}``:
    the statement is appended (every other statement kept as it is, in its order), or replaces the statement
    with the same Sid when it differs (the exempt list changed), or nothing."""
    sid = statement["Sid"]
    current = statements(document)
    previous = next((s for s in current if s.get("Sid") == sid), None)
    if previous == statement:
        return {"action": "none", "after": document, "previous_statement": previous}
    after = copy.deepcopy(document) if document else {"Version": POLICY_VERSION}
    if previous is None:
        after["Statement"] = [*current, statement]
        action = "add"
    else:
        after["Statement"] = [statement if s.get("Sid") == sid else s for s in current]
        action = "update"
    return {"action": action, "after": after, "previous_statement": previous}


def decide_release(document, sid, statement_was_object=False):
    """What removing the statement ``sid`` from ``document`` changes.

    Returns ``{"action": "remove"|"delete"|"none", "after": document or None}``: every other statement stays
    exactly as it is; the policy is deleted when no statement is left (a policy without statements is not
    valid; also the case where there was none before the freeze).  ``statement_was_object``: the policy held its
    one statement as an object before the freeze, and it is given back that way when it is the one left."""
    current = statements(document)
    if not any(s.get("Sid") == sid for s in current):
        return {"action": "none", "after": document}
    rest = [s for s in current if s.get("Sid") != sid]
    if not rest:
        return {"action": "delete", "after": None}
    after = copy.deepcopy(document)
    after["Statement"] = rest[0] if (statement_was_object and len(rest) == 1) else rest
    return {"action": "remove", "after": after}


def containment_changed(policy_text, document, decision, statement):
    """The ``changed`` part of the containment entry: the statement, and the policy before (the evidence)."""
    return {
        "sid": statement["Sid"],
        "statement": statement,
        "statement_before": decision["previous_statement"],
        "policy_before": policy_text,
        "statement_was_object": isinstance((document or {}).get("Statement"), dict),
    }


def entries_for(containments, bucket):
    """The containment entries of this step for ``bucket``, oldest first (others are ignored)."""
    arn = bucket_arn(bucket)
    found = []
    for entry in containments or []:
        if not isinstance(entry, dict):
            raise WriteFreezeError(f"containments must be a list of containment entries, got {entry!r}")
        if entry.get("step", STEP) != STEP or entry.get("resource") not in (arn, bucket):
            continue
        changed = entry.get("changed")
        if not isinstance(changed, dict) or "sid" not in changed:
            raise WriteFreezeError(
                f"containment entry {entry.get('id')!r} for bucket {bucket!r} has no 'changed.sid': "
                "not an s3_write_freeze containment"
            )
        found.append(entry)
    return sorted(found, key=lambda e: str(e.get("at") or ""))
