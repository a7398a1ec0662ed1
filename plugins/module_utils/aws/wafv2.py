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
    release_entry,
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


def release_selection(params, step_name):
    """The release's first decision, the same for ``wafv2_ip_block`` and ``wafv2_rate_limit``: ``(entries, ours)``,
    the containment entries given (mappings only) and those of ``step_name`` and the incident (any incident when
    none is given) that name a resource.  A negative ``lock_retries`` is refused before anything is read."""
    if params["lock_retries"] < 0:
        raise WAFInputError(f"lock_retries must be >= 0, got {params['lock_retries']}")
    incident = params["incident_id"]
    entries = [e for e in params["containments"] if isinstance(e, dict)]
    ours = [
        e
        for e in entries
        if e.get("step") == step_name and (not incident or e.get("incident_id") == incident) and e.get("resource")
    ]
    return entries, ours


def release_records(owner, step_name, arn, mine, removed, **extra):
    """The module's ``release`` value: one record releasing the entries ``mine`` on ``arn``, what was removed, and
    ``extra`` (``left_alone``, or ``gone``/``reason`` when the resource no longer exists)."""
    released_ids = [e.get("id") for e in mine if e.get("id")]
    return [release_entry(owner, step_name, arn, released_ids=released_ids, restored={"removed": removed}, **extra)]


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


def locked_update(read, write, plan, lock_retries, first=None, sleep=time.sleep):
    """Optimistic locking for any WAFv2 object: read it with its lock token, plan, write with that token.

    ``read() -> (obj, token)`` (or ``first``, a read just made), ``plan(obj) -> new value or None`` (nothing to
    change), ``write(obj, new, token)``.  On ``WAFOptimisticLockException`` (someone wrote in between) it reads
    again and re-plans, up to ``lock_retries`` times.  Returns ``(obj as read last, written value or None,
    conflicts)``."""
    conflicts = 0
    while True:
        obj, token = first if first is not None else read()
        first = None
        new = plan(obj)
        if new is None:
            return obj, None, conflicts
        try:
            write(obj, new, token)
            return obj, new, conflicts
        except StepAWSError as err:
            if err.code != LOCK_CONFLICT or conflicts >= lock_retries:
                if err.code == LOCK_CONFLICT:
                    err.args = (f"{err} (gave up after {conflicts + 1} lock conflicts; nothing of ours was written)",)
                raise
            conflicts += 1
            sleep(random.uniform(0.02, 0.1) * min(conflicts, 10))  # noqa: S311 - jitter, not cryptography


def read_merge_update(caller, client, ref, scope, plan, lock_retries, first=None, sleep=time.sleep):
    """Apply ``plan(addresses) -> new list or None`` to the IP set with its lock token.

    Reads the set (or uses ``first = (ip_set, token)``, a read just made), asks ``plan`` for the list to
    write (``None``: nothing to change), writes it with the read's lock token and, on
    ``WAFOptimisticLockException`` (someone wrote in between), reads again and re-plans, up to
    ``lock_retries`` times.  Returns ``(ip_set as read last, written list or None, conflicts)``."""
    return locked_update(
        lambda: get_ip_set(caller, client, ref, scope),
        lambda ip_set, new, token: update_ip_set(caller, client, ip_set, scope, new, token),
        plan,
        lock_retries,
        first=first,
        sleep=sleep,
    )


# --------------------------------------------------------------------------------------------------
# Rate-based rules (``wafv2_rate_limit``): decisions
# --------------------------------------------------------------------------------------------------

RATE_WINDOWS = (60, 120, 300, 600)  # EvaluationWindowSec values AWS accepts
RATE_LIMIT_MIN = 10  # RateBasedStatement.Limit bounds (AWS WAF API reference)
RATE_LIMIT_MAX = 2000000000
SEARCH_STRING_MAX = 200  # ByteMatchStatement.SearchString, bytes
RATE_RULE_PREFIX = "firebreak-rate-"
_RULE_NAME_RE = re.compile(r"^[\w-]{1,128}$")
_HEADER_RE = re.compile(r"^[A-Za-z0-9-]{1,255}$")
PATH_MATCHES = ("STARTS_WITH", "EXACTLY", "CONTAINS")
# UpdateWebACL replaces the whole web ACL: every field the read returned is written back as it was
_WEB_ACL_FIELDS = (
    "DefaultAction",
    "Description",
    "VisibilityConfig",
    "DataProtectionConfig",
    "CustomResponseBodies",
    "CaptchaConfig",
    "ChallengeConfig",
    "TokenDomains",
    "AssociationConfig",
    "OnSourceDDoSProtectionConfig",
    "ApplicationConfig",
)


def rate_rule_name(incident_id):
    """``firebreak-rate-<incident>``: the incident id with what a rule name cannot hold turned into ``-``."""
    slug = re.sub(r"[^\w-]", "-", str(incident_id or "")).strip("-")
    return (RATE_RULE_PREFIX + slug)[:128] if slug else ""


def check_rule_name(name, option="rule_name"):
    if not isinstance(name, str) or not _RULE_NAME_RE.match(name):
        raise WAFInputError(
            f"{option} {name!r} is not a WAF rule name (1 to 128 letters, digits, '_' or '-'); nothing changed"
        )
    return name


def check_rate_options(limit, window, aggregate_key, forwarded_header, path, path_match, priority):
    """Refuse bad values before any call, naming them."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not RATE_LIMIT_MIN <= limit <= RATE_LIMIT_MAX:
        raise WAFInputError(
            f"limit {limit!r} is out of range: a rate-based rule counts {RATE_LIMIT_MIN} to {RATE_LIMIT_MAX} requests "
            "per evaluation window"
        )
    if window not in RATE_WINDOWS:
        raise WAFInputError(f"evaluation_window {window!r} is not one of {', '.join(map(str, RATE_WINDOWS))} seconds")
    if aggregate_key == "FORWARDED_IP" and not _HEADER_RE.match(str(forwarded_header or "")):
        raise WAFInputError(f"forwarded_ip_header {forwarded_header!r} is not an HTTP header name")
    if path is not None:
        if not isinstance(path, str) or not path.startswith("/"):
            raise WAFInputError(f"path {path!r} is not a URI path (it starts with '/')")
        if len(path.encode("utf-8")) > SEARCH_STRING_MAX:
            raise WAFInputError(f"path {path[:40]!r}... is longer than {SEARCH_STRING_MAX} bytes")
        if path_match not in PATH_MATCHES:
            raise WAFInputError(f"path_match {path_match!r} is not one of {', '.join(PATH_MATCHES)}")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int) or priority < 0):
        raise WAFInputError(f"priority {priority!r} is not an integer >= 0")


def rate_statement(limit, window=300, aggregate_key="IP", forwarded_header="X-Forwarded-For", fallback="MATCH",
                   path=None, path_match="STARTS_WITH"):  # fmt: skip
    """A ``RateBasedStatement``: ``limit`` requests per ``window`` seconds per client address (the source IP, or
    the address in ``forwarded_header``), counted only on requests whose URI path matches ``path`` when given
    (compared lower-cased, after URL decoding, so ``/LOGIN`` and ``/%6cogin`` count as ``/login``)."""
    statement = {"Limit": limit, "EvaluationWindowSec": window, "AggregateKeyType": aggregate_key}
    if aggregate_key == "FORWARDED_IP":
        statement["ForwardedIPConfig"] = {"HeaderName": forwarded_header, "FallbackBehavior": fallback}
    if path:
        statement["ScopeDownStatement"] = {
            "ByteMatchStatement": {
                "SearchString": path.lower().encode("utf-8"),
                "FieldToMatch": {"UriPath": {}},
                "TextTransformations": [{"Priority": 0, "Type": "URL_DECODE"}, {"Priority": 1, "Type": "LOWERCASE"}],
                "PositionalConstraint": path_match,
            }
        }
    return {"RateBasedStatement": statement}


def rate_rule(name, priority, statement, action):
    """The rule (``action``: ``block`` or ``count``), with its own CloudWatch metric named like it."""
    return {
        "Name": name,
        "Priority": priority,
        "Statement": statement,
        "Action": {"Block": {}} if action == "block" else {"Count": {}},
        "VisibilityConfig": {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": name},
    }


def plain(value):
    """``value`` for comparing and reporting: bytes (a ``SearchString``) as text, ``None`` members dropped."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return value


_COMPARED = ("Name", "Priority", "Statement", "Action", "VisibilityConfig")


def same_rule(a, b):
    """Whether two rules are the same in what this step sets (name, priority, statement, action, metric)."""
    if a is None or b is None:
        return a is b
    return {k: plain(a.get(k)) for k in _COMPARED} == {k: plain(b.get(k)) for k in _COMPARED}


def rule_summary(rule):
    """``{"name", "priority", "action", "statement"}``: what a rule is, in one line of a result."""
    action = rule.get("Action") or rule.get("OverrideAction") or {}
    statement = rule.get("Statement") or {}
    return {
        "name": rule.get("Name"),
        "priority": rule.get("Priority"),
        "action": next(iter(action), None),
        "statement": next(iter(statement), None),
    }


def others_of(rules, name):
    """The rules other than ``name``, by name, as plain dicts (for comparing before and after)."""
    return {rule.get("Name"): plain(rule) for rule in rules or [] if rule.get("Name") != name}


def place_rate_rule(rules, wanted, priority=None):
    """Where ``wanted`` (a rule without its priority decided) goes among ``rules``.

    Returns ``(rule with its priority, existing rule of that name or None)``.  The rule keeps the priority it has
    when it exists and no ``priority`` is asked for; a new rule goes after every existing rule (the highest
    priority + 1), so it never pre-empts a rule already there.  A ``priority`` another rule holds is refused,
    naming that rule: the other rules are never renumbered."""
    existing = next((rule for rule in rules or [] if rule.get("Name") == wanted["Name"]), None)
    taken = {rule.get("Priority"): rule.get("Name") for rule in rules or [] if rule.get("Name") != wanted["Name"]}
    if priority is None:
        priority = existing["Priority"] if existing else max([-1, *(p for p in taken if p is not None)]) + 1
    elif priority in taken:
        raise WAFInputError(
            f"priority {priority} is held by rule {taken[priority]!r} of the web ACL; give another priority or none "
            "(the rule then goes after the last rule); the other rules are never renumbered"
        )
    return dict(wanted, Priority=priority), existing


def with_rule(rules, rule):
    """``rules`` with ``rule`` in place of the one of its name (or added), in priority order."""
    kept = [r for r in rules or [] if r.get("Name") != rule["Name"]]
    return sorted([*kept, rule], key=lambda r: r.get("Priority", 0))


def without_rules(rules, names):
    return [rule for rule in rules or [] if rule.get("Name") not in set(names)]


# --------------------------------------------------------------------------------------------------
# Rate-based rules: calls
# --------------------------------------------------------------------------------------------------


def _input_members(client):
    try:
        return set(client.meta.service_model.operation_model("UpdateWebACL").input_shape.members)
    except Exception:  # a client without the model (tests): the fields above
        return set(_WEB_ACL_FIELDS) | {"Name", "Scope", "Id", "Rules", "LockToken"}


def update_web_acl(caller, client, web_acl, scope, rules, lock_token):
    """``UpdateWebACL`` with ``rules`` and every other field as read (the call replaces the whole web ACL)."""
    members = _input_members(client)
    params = {
        "Name": web_acl["Name"],
        "Scope": scope,
        "Id": web_acl["Id"],
        "Rules": list(rules),
        "LockToken": lock_token,
    }
    for key in _WEB_ACL_FIELDS:
        value = web_acl.get(key)
        if key in members and value not in (None, "", {}, []):
            params[key] = value
    return caller(client, "update_web_acl", f"web ACL {web_acl['Name']!r}", **params)
