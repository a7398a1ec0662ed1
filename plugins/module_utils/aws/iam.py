# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""IAM credential quarantine: the API layer and the decisions of ``iam_credential_quarantine``.

Deactivating an access key does not end what was already issued with it: temporary credentials
(``GetSessionToken``, ``AssumeRole``, IRSA web identity) stay valid until they expire.  AWS's answer,
the console's "Revoke active sessions", is an inline policy denying everything to requests whose
``aws:TokenIssueTime`` is earlier than now (``deny_policy_document``).  Requests signed with a long-term
key carry no ``aws:TokenIssueTime``, so the policy does not lock out a key this step leaves active.

Pure decisions (``plan_principal``, ``plan_release``, ``caller_principal``) are unit-tested without AWS.
"""

from __future__ import annotations

import json
import re

from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError, StepError, iso_utc

NOT_FOUND = "NoSuchEntity"
MARKER = "Marker"  # IAM listings page with Marker in and out
DENY_POLICY_PREFIX = "firebreak-revoke-issued-"
QUARANTINE_AUTO = ("AWSCompromisedKeyQuarantineV2", "AWSDenyAll")
_POLICY_NAME_BAD = re.compile(r"[^\w+=,.@-]")


class IAMInputError(StepError):
    """Bad input, or a principal that does not exist or may not be quarantined; nothing was changed."""


def deny_policy_name(incident_id):
    """``firebreak-revoke-issued-<incident>`` (characters IAM refuses replaced, at most 128)."""
    return (DENY_POLICY_PREFIX + _POLICY_NAME_BAD.sub("-", str(incident_id or "check-mode")))[:128]


def deny_policy_document(before):
    """Deny every action to credentials issued before ``before`` (an aware datetime)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "FirebreakRevokeIssuedBefore",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": iso_utc(before.replace(microsecond=0))}},
            }
        ],
    }


def caller_principal(arn):
    """``("user", name)`` or ``("role", name)`` for an STS caller ARN, else ``(None, None)``.

    ``arn:aws:iam::1:user/path/alice`` (and moto's ``arn:aws:sts::1:user/alice``) is user ``alice``;
    ``arn:aws:sts::1:assumed-role/responder/session`` is role ``responder``."""
    resource = str(arn or "").split(":", 5)[-1]
    if resource.startswith("user/"):
        return "user", resource.rsplit("/", 1)[-1]
    if resource.startswith("assumed-role/"):
        parts = resource.split("/")
        return "role", parts[1] if len(parts) > 1 else None
    if resource.startswith("role/"):
        return "role", resource.rsplit("/", 1)[-1]
    return None, None


def quarantine_arn(value, partition="aws"):
    """The policy ARN for an explicit quarantine policy (an ARN or an AWS managed policy name)."""
    text = str(value).strip()
    if text.startswith("arn:"):
        return text
    return f"arn:{partition}:iam::aws:policy/{text}"


def plan_principal(kind, name, keys, requested_keys, inline_policies, attached, deny_name, quarantine):
    """What quarantining one principal changes.

    ``keys`` is ``{access_key_id: status}``; ``requested_keys`` the ids asked for (empty: every key);
    ``inline_policies`` the inline policy names and ``attached`` the attached policy ARNs present;
    ``deny_name`` the inline policy to add (None: no revocation); ``quarantine`` a policy ARN to attach (or
    None).  Returns ``{"deactivate": [...], "put_inline": [...], "attach": [...]}``.  Raises
    ``IAMInputError`` naming a requested key the principal does not have."""
    if kind == "user":
        unknown = [key for key in requested_keys if key not in keys]
        if unknown:
            raise IAMInputError(f"access key {', '.join(unknown)} does not belong to user {name!r}")
        wanted = requested_keys or sorted(keys)
        deactivate = [key for key in wanted if keys.get(key) == "Active"]
    else:
        deactivate = []
    put_inline = [deny_name] if deny_name and deny_name not in inline_policies else []
    attach = [quarantine] if quarantine and quarantine not in attached else []
    return {"deactivate": deactivate, "put_inline": put_inline, "attach": attach}


def plan_release(changed, keys, inline_policies, attached):
    """What releasing one containment entry changes, and what is left alone.

    ``changed`` is the entry's ``changed`` (``deactivated``, ``inline_policies``, ``attached_policies``);
    ``keys``/``inline_policies``/``attached`` the principal's state now. A key someone re-enabled or
    deleted meanwhile is left alone; so is a policy someone removed."""
    reactivate, left = [], {}
    for key in changed.get("deactivated") or []:
        status = keys.get(key)
        if status == "Inactive":
            reactivate.append(key)
        elif status == "Active":
            left.setdefault("keys_already_active", []).append(key)
        else:
            left.setdefault("keys_deleted", []).append(key)
    delete_inline = []
    for policy in changed.get("inline_policies") or []:
        if policy in inline_policies:
            delete_inline.append(policy)
        else:
            left.setdefault("inline_policies_already_removed", []).append(policy)
    detach = []
    for arn in changed.get("attached_policies") or []:
        if arn in attached:
            detach.append(arn)
        else:
            left.setdefault("policies_already_detached", []).append(arn)
    return {"reactivate": reactivate, "delete_inline": delete_inline, "detach": detach}, left


def claim_items(kind, keys, requested_keys, plan, quarantine):
    """What an incident claims on a principal (the containment ledger's items): ``key:<id>`` for every key it
    wants off (deactivated now, or already inactive), ``policy:<arn>`` for the quarantine policy.  The
    inline deny policy is named per incident, so no other incident shares it."""
    items = []
    if kind == "user":
        wanted = requested_keys or sorted(keys)
        items += [f"key:{key}" for key in wanted if keys.get(key) == "Inactive" or key in plan["deactivate"]]
    if quarantine:
        items.append(f"policy:{quarantine}")
    return items


def changed_items(changed):
    """The ledger items of what a containment entry changed itself."""
    return [f"key:{key}" for key in changed.get("deactivated") or []] + [
        f"policy:{arn}" for arn in changed.get("attached_policies") or []
    ]


def releasable(changed, remove):
    """The part of an entry's ``changed`` a release may undo: the keys and policies in ``remove`` (what no
    other incident still claims), and the incident's own inline deny policy."""
    return {
        "deactivated": [item[4:] for item in remove if item.startswith("key:")],
        "inline_policies": list(changed.get("inline_policies") or []),
        "attached_policies": [item[7:] for item in remove if item.startswith("policy:")],
    }


# --------------------------------------------------------------------------------------------------
# API layer: one principal at a time (the module runs principals on a thread pool)
# --------------------------------------------------------------------------------------------------


class Principal:
    """Reads and changes one IAM user or role through a ``step.Caller``."""

    def __init__(self, caller, client, kind, name):
        self.caller, self.client, self.kind, self.name = caller, client, kind, name
        self.what = f"{kind} {name!r}"
        self.param = {"UserName": name} if kind == "user" else {"RoleName": name}

    def call(self, method, **params):
        try:
            return self.caller(self.client, method, self.what, **params)
        except StepAWSError as err:
            if err.code == NOT_FOUND and method in ("get_user", "get_role"):
                raise IAMInputError(f"{self.what} does not exist") from None
            raise

    def describe(self):
        key = "User" if self.kind == "user" else "Role"
        return self.call(f"get_{self.kind}", **self.param)[key]

    def access_keys(self):
        if self.kind != "user":
            return {}
        keys = {}
        for page in self.caller.paginate(
            self.client, "list_access_keys", self.what, token_in=MARKER, token_out=MARKER, **self.param
        ):
            for key in page.get("AccessKeyMetadata") or []:
                keys[key["AccessKeyId"]] = key["Status"]
            if not page.get("IsTruncated"):
                break
        return keys

    def last_used(self, key_id):
        used = self.call("get_access_key_last_used", AccessKeyId=key_id).get("AccessKeyLastUsed") or {}
        date = used.get("LastUsedDate")
        return {
            "service": used.get("ServiceName"),
            "region": used.get("Region"),
            "date": iso_utc(date) if hasattr(date, "astimezone") else date,
        }

    def _listing(self, method, key, field=None):
        found = []
        for page in self.caller.paginate(
            self.client, method, self.what, token_in=MARKER, token_out=MARKER, **self.param
        ):
            found += [item[field] if field else item for item in page.get(key) or []]
            if not page.get("IsTruncated"):
                break
        return found

    def inline_policies(self):
        return self._listing(f"list_{self.kind}_policies", "PolicyNames")

    def attached_policies(self):
        return self._listing(f"list_attached_{self.kind}_policies", "AttachedPolicies", "PolicyArn")

    def mfa_devices(self):
        if self.kind != "user":
            return []
        return [
            {
                "serial_number": d["SerialNumber"],
                "enabled_date": iso_utc(d["EnableDate"]) if d.get("EnableDate") else None,
            }
            for d in self._listing("list_mfa_devices", "MFADevices")
        ]

    def login_profile(self):
        if self.kind != "user":
            return None
        try:
            profile = self.caller(self.client, "get_login_profile", self.what, **self.param)["LoginProfile"]
        except StepAWSError as err:
            if err.code == NOT_FOUND:
                return {"exists": False}
            raise
        created = profile.get("CreateDate")
        return {
            "exists": True,
            "created": iso_utc(created) if hasattr(created, "astimezone") else created,
            "reset_required": bool(profile.get("PasswordResetRequired")),
        }

    def set_key_status(self, key_id, status):
        self.call("update_access_key", AccessKeyId=key_id, Status=status, **self.param)

    def put_inline(self, policy_name, document):
        self.call(f"put_{self.kind}_policy", PolicyName=policy_name, PolicyDocument=json.dumps(document), **self.param)

    def delete_inline(self, policy_name):
        self.call(f"delete_{self.kind}_policy", PolicyName=policy_name, **self.param)

    def attach(self, arn):
        self.call(f"attach_{self.kind}_policy", PolicyArn=arn, **self.param)

    def detach(self, arn):
        self.call(f"detach_{self.kind}_policy", PolicyArn=arn, **self.param)

    def tag(self, tags):
        if tags:
            self.call(f"tag_{self.kind}", Tags=[{"Key": k, "Value": v} for k, v in tags.items()], **self.param)
