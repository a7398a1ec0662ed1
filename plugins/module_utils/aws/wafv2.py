# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""WAFv2 IP-set blocking: the API layer and the decisions of ``wafv2_ip_block``.

``community.aws.wafv2_ip_set`` replaces the whole address list and does not retry
``WAFOptimisticLockException``: two responders blocking at once un-block each other.  Here every
write is a read-merge-update with the lock token of the read; a conflict (someone wrote in between)
re-reads and merges again, a bounded number of times.  Nothing another writer put in the set is ever
dropped: the list written is always the list just read plus (or minus) exactly this step's CIDRs.

An IP set blocks nothing by itself: ``block_rules`` finds the rules of a web ACL that BLOCK on the
set (directly, or as one branch of an ``OrStatement``), and the module refuses a set no rule uses.

All calls go through ``step.Caller`` (bounded retries naming the call and the error code).
"""

from __future__ import annotations

import random
import re
import time

from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    StepAWSError,
    StepError,
    advance_or_fail,
)

MAX_ADDRESSES = 10000  # AWS WAF quota: addresses per IP set
LOCK_CONFLICT = "WAFOptimisticLockException"
NOT_FOUND = "WAFNonexistentItemException"

_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:\d{12}:(?P<scope>regional|global)/(?P<kind>ipset|webacl)/"
    r"(?P<name>[\w-]{1,128})/(?P<id>[a-f0-9-]{1,128})$"
)


class WAFInputError(StepError):
    """Bad input or a resource that does not exist or may not be used; nothing was changed."""


class WAFGoneError(WAFInputError):
    """The IP set does not exist (any more): a release reports it as gone and goes on."""


def parse_arn(arn, kind):
    """``{"scope", "name", "id"}`` of a WAFv2 IP set (``kind="ipset"``) or web ACL ARN, else None."""
    match = _ARN_RE.match(str(arn or ""))
    if not match or match.group("kind") != kind:
        return None
    scope = "REGIONAL" if match.group("scope") == "regional" else "CLOUDFRONT"
    return {"scope": scope, "name": match.group("name"), "id": match.group("id"), "arn": str(arn)}


def looks_like_arn(value):
    return str(value or "").startswith("arn:")


# --------------------------------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------------------------------


def _references(statement, arn):
    """Whether ``statement`` blocks on IP set ``arn`` when it matches: directly or in an OR."""
    if not isinstance(statement, dict):
        return False
    ref = statement.get("IPSetReferenceStatement")
    if ref is not None:
        return ref.get("ARN") == arn
    branches = (statement.get("OrStatement") or {}).get("Statements") or []
    return any(_references(branch, arn) for branch in branches)


def block_rules(web_acl, ip_set_arn):
    """Names of the web ACL's rules whose action is Block on ``ip_set_arn`` (in priority order)."""
    rules = sorted(web_acl.get("Rules") or [], key=lambda rule: rule.get("Priority", 0))
    return [
        rule["Name"]
        for rule in rules
        if "Block" in (rule.get("Action") or {}) and _references(rule.get("Statement"), ip_set_arn)
    ]


def other_uses(web_acl, ip_set_arn):
    """Rules that reference the set without blocking plainly on it (Count/Allow actions, NOT/AND)."""
    uses = []
    for rule in web_acl.get("Rules") or []:
        if rule["Name"] in block_rules(web_acl, ip_set_arn):
            continue
        if ip_set_arn in repr(rule.get("Statement")):
            uses.append(f"{rule['Name']} ({', '.join(rule.get('Action') or rule.get('OverrideAction') or {}) or '?'})")
    return uses


def ip_set_arns_in(web_acl):
    """Every IP set ARN the web ACL's rules reference, anywhere in their statements."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("IPSetReferenceStatement")
            if isinstance(ref, dict) and ref.get("ARN"):
                found.append(ref["ARN"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(web_acl.get("Rules") or [])
    return list(dict.fromkeys(found))


def match_ip_set(value, arns):
    """The ARN among ``arns`` whose name, id or ARN is ``value``, else None."""
    for arn in arns:
        parsed = parse_arn(arn, "ipset")
        if parsed and value in (arn, parsed["name"], parsed["id"]):
            return arn
    return None


# --------------------------------------------------------------------------------------------------
# API layer
# --------------------------------------------------------------------------------------------------


def _not_found(err, message):
    if isinstance(err, StepAWSError) and err.code == NOT_FOUND:
        raise WAFInputError(message) from None
    raise err


def find_in_listing(caller, client, method, key, value, scope, what):
    """``{"name", "id", "arn"}`` of the IP set or web ACL named ``value`` (name, id or ARN)."""
    matches, params, asked = [], {"Scope": scope, "Limit": 100}, {None}
    while True:
        page = caller(client, method, f"{what}s in scope {scope}", **params)
        for item in page.get(key) or []:
            if value in (item.get("Name"), item.get("Id"), item.get("ARN")):
                matches.append({"name": item["Name"], "id": item["Id"], "arn": item["ARN"]})
        if not page.get("NextMarker") or not page.get(key):
            break
        advance_or_fail(client, method, f"{what}s in scope {scope}", asked, page["NextMarker"], "its NextMarker")
        params["NextMarker"] = page["NextMarker"]
    if not matches:
        raise WAFGoneError(f"{what} {value!r} does not exist in scope {scope}")
    if len(matches) > 1:
        raise WAFInputError(f"{what} name {value!r} is ambiguous in scope {scope}: give its ARN")
    return matches[0]


def get_web_acl(caller, client, ref, scope):
    """``(web_acl, lock_token)``."""
    try:
        answer = caller(client, "get_web_acl", f"web ACL {ref['name']!r}", Name=ref["name"], Scope=scope, Id=ref["id"])
    except StepAWSError as err:
        _not_found(err, f"web ACL {ref['arn']!r} does not exist in scope {scope}")
    return answer["WebACL"], answer.get("LockToken")


def web_acl_for_resource(caller, client, resource_arn):
    try:
        answer = caller(client, "get_web_acl_for_resource", f"resource {resource_arn!r}", ResourceArn=resource_arn)
    except StepAWSError as err:
        _not_found(err, f"resource {resource_arn!r} does not exist or cannot have a web ACL")
    web_acl = answer.get("WebACL")
    if not web_acl:
        raise WAFInputError(f"resource {resource_arn!r} is not protected by any web ACL: blocking there blocks nothing")
    return web_acl


def get_ip_set(caller, client, ref, scope):
    """``(ip_set, lock_token)``."""
    try:
        answer = caller(client, "get_ip_set", f"IP set {ref['name']!r}", Name=ref["name"], Scope=scope, Id=ref["id"])
    except StepAWSError as err:
        if err.code == NOT_FOUND:
            raise WAFGoneError(f"IP set {ref['arn']!r} does not exist in scope {scope}") from None
        raise
    return answer["IPSet"], answer["LockToken"]


def update_ip_set(caller, client, ip_set, scope, addresses, lock_token):
    params = {
        "Name": ip_set["Name"],
        "Scope": scope,
        "Id": ip_set["Id"],
        "Addresses": list(addresses),
        "LockToken": lock_token,
    }
    if ip_set.get("Description"):
        params["Description"] = ip_set["Description"]  # UpdateIPSet would otherwise clear it
    return caller(client, "update_ip_set", f"IP set {ip_set['Name']!r}", **params)


def tag_resource(caller, client, arn, tags):
    if tags:
        caller(
            client,
            "tag_resource",
            f"IP set {arn!r}",
            ResourceARN=arn,
            Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
        )


def read_merge_update(caller, client, ref, scope, plan, lock_retries, first=None, sleep=time.sleep):
    """Apply ``plan(addresses) -> new list or None`` to the IP set with its lock token.

    Reads the set (or uses ``first = (ip_set, token)``, a read just made), asks ``plan`` for the list to
    write (``None``: nothing to change), writes it with the read's lock token and, on
    ``WAFOptimisticLockException`` (someone wrote in between), reads again and re-plans, up to
    ``lock_retries`` times.  Returns ``(ip_set as read last, written list or None, conflicts)``."""
    conflicts = 0
    while True:
        ip_set, token = first if first is not None else get_ip_set(caller, client, ref, scope)
        first = None
        new = plan(ip_set)
        if new is None:
            return ip_set, None, conflicts
        try:
            update_ip_set(caller, client, ip_set, scope, new, token)
            return ip_set, new, conflicts
        except StepAWSError as err:
            if err.code != LOCK_CONFLICT or conflicts >= lock_retries:
                if err.code == LOCK_CONFLICT:
                    err.args = (f"{err} (gave up after {conflicts + 1} lock conflicts; nothing of ours was written)",)
                raise
            conflicts += 1
            sleep(random.uniform(0.02, 0.1) * min(conflicts, 10))  # noqa: S311 - jitter, not cryptography
