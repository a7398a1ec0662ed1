# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A fan-out target's AWS session: assume the target's role, named after the incident and the operator.

Pure decisions (``session_name``, ``account_of``, ``renewal_reason``, ``validate_request``) are unit-tested without
AWS; ``assume`` takes a boto3 STS client and a ``step.Caller``.
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepError

# RoleSessionName: [\w+=,.@-]{2,64} (AWS STS API reference, AssumeRole).
SESSION_NAME_MAX = 64
_SESSION_NAME_BAD = re.compile(r"[^\w+=,.@-]", re.ASCII)
_ROLE_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?P<path>[\w+=,.@/-]{1,512})$")
# DurationSeconds: 900 s up to the role's maximum session duration (at most 12 h).
MIN_DURATION = 900
MAX_DURATION = 43200
# A session assumed with another assumed role's credentials (role chaining) lasts at most one hour.
CHAINED_MAX_DURATION = 3600


class SessionInputError(StepError):
    """A request that cannot be an AssumeRole call (bad role ARN, duration, renewal window)."""


def _clean(text):
    return _SESSION_NAME_BAD.sub("-", str(text or "").strip()).strip("-")


def session_name(incident_id, operator, prefix="firebreak"):
    """``<prefix>-<incident>-<operator>``, every character AWS refuses replaced by ``-``, at most 64 characters.

    The incident id is kept whole where it fits (it is what CloudTrail searches are made by); the operator is cut
    first, then the incident id.  Never shorter than 2 characters."""
    prefix, incident, user = _clean(prefix), _clean(incident_id), _clean(operator)
    head = "-".join(part for part in (prefix, incident) if part)
    name = f"{head}-{user}" if user else head
    if len(name) > SESSION_NAME_MAX:
        room = SESSION_NAME_MAX - len(head) - 1
        name = f"{head}-{user[:room]}" if room >= 2 and user else head[:SESSION_NAME_MAX]
    name = name.rstrip("-") or "firebreak"
    return name if len(name) >= 2 else f"{name}-x"


def account_of(role_arn):
    """The 12-digit account of a role ARN, or None when it is not one."""
    match = _ROLE_ARN.match(str(role_arn or ""))
    return match.group("account") if match else None


def validate_request(role_arn, duration_seconds, renew_minutes):
    """Raise ``SessionInputError`` naming the bad value, before any call."""
    if not _ROLE_ARN.match(str(role_arn or "")):
        raise SessionInputError(
            f"role_arn {role_arn!r} is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>): set "
            "firebreak_assume_role_arn in the target's host vars"
        )
    if not MIN_DURATION <= int(duration_seconds) <= MAX_DURATION:
        raise SessionInputError(
            f"duration_seconds {duration_seconds} is outside {MIN_DURATION}..{MAX_DURATION} (AssumeRole's range; the "
            "role's own maximum session duration may be lower)"
        )
    if int(renew_minutes) < 0 or int(renew_minutes) * 60 >= int(duration_seconds):
        raise SessionInputError(
            f"renew_minutes {renew_minutes} must be at least 0 and shorter than the session ({duration_seconds} s): "
            "every use would assume the role again"
        )


def parse_expiration(value):
    """An aware UTC datetime from a session's expiration (datetime or ISO 8601), or None."""
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def renewal_reason(current, role_arn, name, now, renew_minutes):
    """Why the session in ``current`` (the host's ``firebreak_aws_session`` fact) cannot be used, or None when it
    can: another role or session name, no credentials, or fewer than ``renew_minutes`` left."""
    if not isinstance(current, dict) or not current.get("access_key"):
        return "no session yet"
    if current.get("role_arn") != role_arn:
        return f"the session is for {current.get('role_arn')}, not {role_arn}"
    if current.get("session_name") != name:
        return f"the session is named {current.get('session_name')}, not {name}"
    expiration = parse_expiration(current.get("expiration"))
    if expiration is None:
        return "the session's expiration is unknown"
    left = (expiration - now).total_seconds()
    if left < renew_minutes * 60:
        return f"{max(0, int(left // 60))} min left, fewer than {renew_minutes}"
    return None


def assume(client, caller, role_arn, name, duration_seconds, external_id=None):
    """AssumeRole; returns the session (credentials and what names it)."""
    params = {"RoleArn": role_arn, "RoleSessionName": name, "DurationSeconds": int(duration_seconds)}
    if external_id:
        params["ExternalId"] = external_id
    answer = caller(client, "assume_role", role_arn, **params)
    creds = answer["Credentials"]
    expiration = parse_expiration(creds["Expiration"])
    assumed = answer.get("AssumedRoleUser") or {}
    return {
        "access_key": creds["AccessKeyId"],
        "secret_key": creds["SecretAccessKey"],
        "session_token": creds["SessionToken"],
        "expiration": expiration.isoformat().replace("+00:00", "Z"),
        "role_arn": role_arn,
        "session_name": name,
        "assumed_role_arn": assumed.get("Arn"),
    }
