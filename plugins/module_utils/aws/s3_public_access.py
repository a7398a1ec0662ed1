# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""S3 Block Public Access for one bucket: the API layer and the pure decisions (containment and release).

The step turns on all four Block Public Access settings of a bucket and records, per setting, what it
was before (``None`` for the whole configuration when none was configured).  Release undoes exactly
what a containment entry says it turned on: a setting the step turned on and that is still on is
turned off again; one that someone turned off meanwhile is left alone and reported; when the bucket
had no configuration at all before and nothing else is on afterwards, the configuration is deleted
again (so "none configured" is restored, not "four settings off").

The account-level Block Public Access (``s3control``) is not read or changed: it is not per bucket.
"""

from __future__ import annotations

import re

from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError, StepError

STEP = "s3_public_block"

# The four settings, in AWS's order, as S3 names them.
SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
FULL_BLOCK = dict.fromkeys(SETTINGS, True)

NO_CONFIGURATION_CODE = "NoSuchPublicAccessBlockConfiguration"
NO_BUCKET_CODES = ("NoSuchBucket", "404", "NotFound")
NO_TAGS_CODE = "NoSuchTagSet"
NO_POLICY_CODE = "NoSuchBucketPolicy"

# S3 bucket naming rules (general purpose buckets): 3-63 characters, lowercase letters, digits, dots
# and hyphens, beginning and ending with a letter or digit, not formatted as an IP address.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


class S3PublicAccessError(StepError):
    """Bad input or a state the step refuses to act on; nothing was changed."""


def validate_bucket(name):
    """The bucket name, or ``S3PublicAccessError`` naming it (checked before any call)."""
    text = str(name or "").strip()
    if text.startswith("arn:aws") and ":s3:::" in text:
        text = text.split(":s3:::", 1)[1]
    if not _BUCKET_RE.match(text) or ".." in text or _IP_RE.match(text):
        raise S3PublicAccessError(
            f"invalid S3 bucket name {name!r}: expected 3-63 lowercase letters, digits, dots and hyphens "
            "(a bucket name or arn:aws:s3:::name)"
        )
    return text


def bucket_arn(bucket):
    return f"arn:aws:s3:::{bucket}"


# --------------------------------------------------------------------------------------------------
# API layer (one call each, through the step's bounded Caller)
# --------------------------------------------------------------------------------------------------


def read_configuration(caller, s3, bucket):
    """The bucket's Block Public Access settings as a dict, or ``None`` when none is configured.

    Raises ``S3PublicAccessError`` naming the bucket when it does not exist."""
    try:
        answer = caller(s3, "get_public_access_block", f"bucket {bucket!r}", Bucket=bucket)
    except StepAWSError as err:
        if err.code == NO_CONFIGURATION_CODE:
            return None
        if err.code in NO_BUCKET_CODES:
            raise S3PublicAccessError(f"S3 bucket {bucket!r} does not exist") from None
        raise
    config = answer.get("PublicAccessBlockConfiguration") or {}
    return {name: bool(config.get(name, False)) for name in SETTINGS}


def read_tags(caller, s3, bucket):
    """The bucket's tags as a dict (``{}`` when it has none)."""
    try:
        answer = caller(s3, "get_bucket_tagging", f"bucket {bucket!r}", Bucket=bucket)
    except StepAWSError as err:
        if err.code == NO_TAGS_CODE:
            return {}
        if err.code in NO_BUCKET_CODES:
            raise S3PublicAccessError(f"S3 bucket {bucket!r} does not exist") from None
        raise
    return {tag["Key"]: tag["Value"] for tag in answer.get("TagSet") or []}


def read_policy_is_public(caller, s3, bucket):
    """Whether the bucket policy grants public access (S3's own evaluation); False without a policy."""
    try:
        answer = caller(s3, "get_bucket_policy_status", f"bucket {bucket!r}", Bucket=bucket)
    except StepAWSError as err:
        if err.code == NO_POLICY_CODE:
            return False
        raise
    return bool((answer.get("PolicyStatus") or {}).get("IsPublic", False))


def write_configuration(caller, s3, bucket, configuration):
    """Put ``configuration`` (a dict of the four settings), or delete the configuration for ``None``."""
    if configuration is None:
        caller(s3, "delete_public_access_block", f"bucket {bucket!r}", Bucket=bucket)
    else:
        config = {name: bool(configuration.get(name, False)) for name in SETTINGS}
        caller(
            s3, "put_public_access_block", f"bucket {bucket!r}", Bucket=bucket, PublicAccessBlockConfiguration=config
        )


def write_tags(caller, s3, bucket, tags):
    """Replace the bucket's tag set with ``tags`` (S3 has no per-tag call); deletes it when empty."""
    if tags:
        tag_set = [{"Key": key, "Value": value} for key, value in sorted(tags.items())]
        caller(s3, "put_bucket_tagging", f"bucket {bucket!r}", Bucket=bucket, Tagging={"TagSet": tag_set})
    else:
        caller(s3, "delete_bucket_tagging", f"bucket {bucket!r}", Bucket=bucket)


# --------------------------------------------------------------------------------------------------
# Decisions (pure)
# --------------------------------------------------------------------------------------------------


def effective(configuration):
    """The four settings with ``None`` (no configuration) read as all off."""
    configuration = configuration or {}
    return {name: bool(configuration.get(name, False)) for name in SETTINGS}


def decide_contain(configuration, tags, wanted_tags):
    """What containing the bucket changes.

    Returns ``{"turn_on": [settings], "tags_added": {key: value}, "after": configuration,
    "after_tags": tags}``; nothing to do when both ``turn_on`` and ``tags_added`` are empty.
    """
    current = effective(configuration)
    turn_on = [name for name in SETTINGS if not current[name]]
    tags_added = {key: value for key, value in (wanted_tags or {}).items() if (tags or {}).get(key) != value}
    return {
        "turn_on": turn_on,
        "tags_added": tags_added,
        "after": dict(FULL_BLOCK),
        "after_tags": dict(tags or {}, **tags_added),
    }


def containment_changed(configuration, decision):
    """The ``changed`` part of the containment entry: exactly what the step changed."""
    return {
        "public_access_block_before": None if configuration is None else effective(configuration),
        "turned_on": list(decision["turn_on"]),
        "tags_added": dict(decision["tags_added"]),
    }


def entries_for(containments, bucket):
    """The containment entries of this step for ``bucket`` (others are not this release's business)."""
    arn = bucket_arn(bucket)
    found = []
    for entry in containments or []:
        if not isinstance(entry, dict):
            raise S3PublicAccessError(f"containments must be a list of containment entries, got {entry!r}")
        if entry.get("step", STEP) != STEP:
            continue
        if entry.get("resource") not in (arn, bucket):
            continue
        changed = entry.get("changed")
        if not isinstance(changed, dict) or "turned_on" not in changed:
            raise S3PublicAccessError(
                f"containment entry {entry.get('id')!r} for bucket {bucket!r} has no 'changed.turned_on': "
                "not an s3_public_block containment"
            )
        found.append(entry)
    return sorted(found, key=lambda e: str(e.get("at") or ""))


def setting_items(names):
    """The containment ledger's items for Block Public Access settings."""
    return [f"setting:{name}" for name in names]


def decide_release(entries, configuration, tags, removable=None):
    """What releasing ``entries`` (oldest first) changes on a bucket now in ``configuration``/``tags``.

    ``removable``: the settings this release may turn off (the ledger's selection: what no other unreleased
    incident claims, including settings a released incident turned on); None: those the entries turned on.

    Returns ``{"after": configuration or None, "turn_off": [...], "left_alone": {...},
    "delete_configuration": bool, "tags_removed": [...], "after_tags": {...}, "changed": bool}``.
    """
    owned = []
    for entry in entries:
        for name in entry["changed"].get("turned_on") or []:
            if name in SETTINGS and name not in owned:
                owned.append(name)
    if removable is not None:
        owned = [name for name in SETTINGS if name in removable]
    had_none = bool(entries) and entries[0]["changed"].get("public_access_block_before") is None
    current = effective(configuration)
    turn_off = [name for name in SETTINGS if name in owned and current[name]]
    left_alone = {}
    for name in owned:
        if not current[name]:
            left_alone[name] = "turned off by someone else meanwhile (left off)"
    after = dict(current, **dict.fromkeys(turn_off, False))
    delete = configuration is not None and had_none and not any(after.values())
    final = None if (configuration is None or delete) else after

    added = {}
    for entry in entries:
        added.update(entry["changed"].get("tags_added") or {})
    tags = dict(tags or {})
    tags_removed = sorted(key for key, value in added.items() if tags.get(key) == value)
    for key, value in sorted(added.items()):
        if key in tags and tags[key] != value:
            left_alone[f"tag {key}"] = f"changed by someone else meanwhile to {tags[key]!r} (left as is)"
    after_tags = {key: value for key, value in tags.items() if key not in tags_removed}
    return {
        "after": final,
        "turn_off": turn_off,
        "delete_configuration": delete,
        "left_alone": left_alone,
        "tags_removed": tags_removed,
        "after_tags": after_tags,
        "changed": bool(turn_off or delete or tags_removed),
    }


def incident_tag_view(tags, keys):
    """Only the tags of ``keys`` (what before/after show of a bucket's tags)."""
    return {key: tags[key] for key in sorted(keys) if key in (tags or {})}
