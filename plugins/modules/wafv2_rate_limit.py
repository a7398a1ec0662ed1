#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: wafv2_rate_limit
short_description: Add a rate-based rule for an incident to a WAFv2 web ACL, and remove exactly it on release
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Containment step "rate-limit the attack at the WAF" (high authentication failures, credential stuffing), in one
    call. With O(state=contained) it adds a rate-based rule to a WAFv2 web ACL, or updates it when this incident's
    rule is already there with other settings. The rule counts O(limit) requests per O(evaluation_window) seconds
    per client address (the source IP, or the address in O(forwarded_ip_header) with O(aggregate_key=FORWARDED_IP)),
    only on requests whose URI path matches O(path) when given, and blocks (or counts, O(action=count)) the
    addresses over the limit.
  - The rule is named C(firebreak-rate-<incident id>) (or O(rule_name)), so each incident has its own rule.
    A new rule goes after every existing rule (the highest priority + 1) unless O(priority) is given; a priority
    another rule holds is refused, naming that rule. The other rules are never renumbered or changed.
  - C(UpdateWebACL) replaces the whole web ACL. The module reads it (C(GetWebACL)) with its lock token, writes back
    every rule and setting exactly as read plus (or minus) this one rule, with that token. When someone else wrote
    in between (C(WAFOptimisticLockException)) it reads again and plans again, up to O(lock_retries) times.
  - Before it writes, it records a claim in the containment ledger (O(claims_bucket) or O(claims_dir)) for the rule.
    A rule of that name that this incident did not add and that differs from the requested one is refused.
  - With O(state=released) it removes the rules recorded in O(containments) (this incident's entries, from the
    C(firebreak.runbooks.containments) lookup), again with the lock token, and leaves every other rule as it is.
    A rule another unreleased incident still claims (a shared O(rule_name)) stays and is reported in RV(kept). A
    web ACL that no longer exists is reported in RV(gone) and its entries are recorded as released.
  - RV(after) is read back from the API (C(GetWebACL)) after the write. RV(rule_in_place), RV(still_present) and
    RV(other_rules_unchanged) are computed from it, so a role verifies what the API holds, not the plan.
  - Check mode reads, decides and reports (with a diff) and makes no call that changes anything. Bad input fails
    with a message naming the value, before any call.
options:
  web_acl:
    description:
      - The web ACL, by ARN, name or id (a name or id is looked up in O(scope)).
      - With O(state=released) it may be omitted when all O(containments) concern one web ACL.
    type: str
  resource_arn:
    description:
      - Instead of O(web_acl), the protected resource (load balancer, API stage...) whose web ACL gets the rule.
    type: str
  scope:
    description:
      - V(REGIONAL) (ALB, API Gateway, AppSync, Cognito) or V(CLOUDFRONT) (call it in region us-east-1).
    type: str
    choices: [REGIONAL, CLOUDFRONT]
    default: REGIONAL
  limit:
    description:
      - Requests per O(evaluation_window) seconds from one client address above which the rule acts (10 to
        2,000,000,000). Required with O(state=contained).
    type: int
  evaluation_window:
    description:
      - The window in seconds over which requests are counted.
    type: int
    choices: [60, 120, 300, 600]
    default: 300
  aggregate_key:
    description:
      - V(IP) counts per source address; V(FORWARDED_IP) per the address in O(forwarded_ip_header) (behind a CDN or
        proxy that sets it).
    type: str
    choices: [IP, FORWARDED_IP]
    default: IP
  forwarded_ip_header:
    description:
      - The header holding the client address, with O(aggregate_key=FORWARDED_IP).
    type: str
    default: X-Forwarded-For
  forwarded_ip_fallback:
    description:
      - With O(aggregate_key=FORWARDED_IP), what a request whose header holds no valid address does (AWS WAF's
        C(FallbackBehavior)). V(MATCH) treats it as matching the statement (it is counted, and blocked over the
        limit), so a malformed header does not escape the limit; V(NO_MATCH) lets it through.
    type: str
    choices: [MATCH, NO_MATCH]
    default: MATCH
  path:
    description:
      - Count only requests whose URI path matches this (a scope-down statement), for example V(/login). Compared
        after URL decoding and lower-casing, so V(/LOGIN) counts as V(/login). Empty counts every request.
    type: str
  path_match:
    description:
      - How O(path) matches the URI path.
    type: str
    choices: [STARTS_WITH, EXACTLY, CONTAINS]
    default: STARTS_WITH
  action:
    description:
      - V(block) the addresses over the limit, or V(count) them only (to watch the rule before it blocks).
    type: str
    choices: [block, count]
    default: block
  rule_name:
    description:
      - The rule's name (and CloudWatch metric). Default C(firebreak-rate-<incident id>), with what a rule name cannot
        hold turned into C(-).
    type: str
  priority:
    description:
      - The rule's priority. Default after every existing rule (or the priority this incident's rule already has).
        A priority another rule holds is refused.
    type: int
  lock_retries:
    description:
      - How many times to re-read and plan again after a lock conflict before failing.
    type: int
    default: 10
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
  - O(incident_id) is required with O(state=contained) (it names the rule) unless O(rule_name) is given, and for
    the claims outside check mode.
  - AWS WAF checks the web ACL's capacity (WCUs) on the write; a rule that does not fit fails the step naming
    C(UpdateWebACL) and C(WAFLimitsExceededException), and nothing is changed.
  - moto (the sandbox) ignores an empty rule list in C(UpdateWebACL); the sandbox patches it (C(docs/sandbox.md)).
seealso:
  - module: firebreak.runbooks.wafv2_ip_block
"""

EXAMPLES = r"""
- name: Rate-limit the login endpoint on the load balancer's web ACL
  firebreak.runbooks.wafv2_rate_limit:
    web_acl: edge-acl
    limit: 100
    path: /login
    incident_id: INC-2041
  register: rate

- name: Behind CloudFront, count per client address from the forwarded header, and only count at first
  firebreak.runbooks.wafv2_rate_limit:
    web_acl: edge-acl
    limit: 300
    aggregate_key: FORWARDED_IP
    action: count
    incident_id: INC-2041

- name: Release exactly this incident's rule
  firebreak.runbooks.wafv2_rate_limit:
    state: released
    containments: >-
      {{ lookup('firebreak.runbooks.containments', 'waf_rate_limit', incident_id='INC-2041', wantlist=True) }}
    incident_id: INC-2041
"""

RETURN = r"""
msg:
  description: What was done.
  returned: always
  type: str
  sample: "added rate-based rule firebreak-rate-INC-2041 (100 requests per 300s per IP on /login, block) at priority 1"
web_acl:
  description: The web ACL (C(name), C(id), C(arn), C(scope)).
  returned: always
  type: dict
  sample: {"name": "edge-acl", "id": "0b2c...", "scope": "REGIONAL",
           "arn": "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/edge-acl/0b2c..."}
rule:
  description:
    - With O(state=contained), the rule as read back from the API after the write (in check mode, as it would be);
      a C(SearchString) is shown as text.
  returned: with O(state=contained)
  type: dict
  sample: {"Name": "firebreak-rate-INC-2041", "Priority": 1, "Action": {"Block": {}},
           "Statement": {"RateBasedStatement": {"Limit": 100, "EvaluationWindowSec": 300, "AggregateKeyType": "IP"}}}
rule_in_place:
  description: With O(state=contained), whether the web ACL as read back holds the rule exactly as requested.
  returned: with O(state=contained)
  type: bool
  sample: true
still_present:
  description: With O(state=released), names of rules this call removed that the web ACL as read back still has.
  returned: with O(state=released)
  type: list
  elements: str
  sample: []
other_rules_unchanged:
  description: Whether every other rule of the web ACL as read back is exactly as it was read before the write.
  returned: always
  type: bool
  sample: true
before:
  description: The web ACL's rules before the step (C(name), C(priority), C(action), C(statement) type), as read last.
  returned: always
  type: dict
  sample: {"rules": [{"name": "block-firebreak-blocklist", "priority": 0, "action": "Block",
                     "statement": "IPSetReferenceStatement"}]}
after:
  description: The web ACL's rules as read back after the step (in check mode, as they would be).
  returned: always
  type: dict
  sample: {"rules": [{"name": "block-firebreak-blocklist", "priority": 0, "action": "Block",
                     "statement": "IPSetReferenceStatement"},
                    {"name": "firebreak-rate-INC-2041", "priority": 1, "action": "Block",
                     "statement": "RateBasedStatement"}]}
removed:
  description: With O(state=released), the rule names this call removed (would remove, in check mode).
  returned: with O(state=released)
  type: list
  elements: str
  sample: ["firebreak-rate-INC-2041"]
kept:
  description: Rules this incident would have removed but another unreleased incident still claims, with who.
  returned: with O(state=released)
  type: dict
  sample: {}
gone:
  description: ARNs of web ACLs that no longer exist; their containments were recorded as released.
  returned: with O(state=released)
  type: list
  elements: str
  sample: []
left_alone:
  description: With O(state=released), C(already_removed) lists recorded rules no longer in the web ACL.
  returned: with O(state=released)
  type: dict
  sample: {"already_removed": []}
lock_conflicts:
  description: How many lock conflicts were met (each followed by a fresh read and plan).
  returned: always
  type: int
  sample: 0
containment:
  description:
    - What this call contained, for the incident timeline and the release (one entry, or none). C(changed.rule) is
      the rule's name, C(changed.created) whether this call added it, C(changed.previous) the rule it replaced
      when it updated this incident's rule. C(claimed) lists the ledger items (C(rule:<name>)).
  returned: always
  type: list
  elements: dict
  sample: [{"id": "5f1c0e2a9b7d4c31", "incident_id": "INC-2041", "step": "waf_rate_limit",
            "resource": "arn:aws:wafv2:...", "changed": {"rule": "firebreak-rate-INC-2041", "created": true},
            "claimed": ["rule:firebreak-rate-INC-2041"]}]
release:
  description:
    - The release record (the ids of the containment entries undone, the rules removed and left alone); with
      C(gone=true) when the web ACL no longer exists.
  returned: with O(state=released) when there were entries to release
  type: list
  elements: dict
  sample: [{"releases": ["5f1c0e2a9b7d4c31"], "restored": {"removed": ["firebreak-rate-INC-2041"]}, "left_alone": {}}]
ignored_entries:
  description: Ids of O(containments) entries ignored (another step, incident or web ACL).
  returned: with O(state=released)
  type: list
  elements: str
  sample: []
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: containment}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str, sample: UpdateWebACL}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
diff:
  description: The rules before and after, with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {"rules": []}, "after": {"rules": [{"name": "firebreak-rate-INC-2041", "priority": 0}]}}
"""

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import wafv2
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws.wafv2 import WAFGoneError, WAFInputError
from ansible_collections.firebreak.runbooks.plugins.module_utils.containment import ledger
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime import step
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import run_aws_step

STEP = "waf_rate_limit"

ARGUMENT_SPEC = dict(
    web_acl=dict(type="str"),
    resource_arn=dict(type="str"),
    scope=dict(type="str", choices=["REGIONAL", "CLOUDFRONT"], default="REGIONAL"),
    **ledger.CONTAINMENT_OPTIONS,
    limit=dict(type="int"),
    evaluation_window=dict(type="int", choices=[60, 120, 300, 600], default=300),
    aggregate_key=dict(type="str", choices=["IP", "FORWARDED_IP"], default="IP"),
    forwarded_ip_header=dict(type="str", default="X-Forwarded-For"),
    forwarded_ip_fallback=dict(type="str", choices=["MATCH", "NO_MATCH"], default="MATCH"),
    path=dict(type="str"),
    path_match=dict(type="str", choices=["STARTS_WITH", "EXACTLY", "CONTAINS"], default="STARTS_WITH"),
    action=dict(type="str", choices=["block", "count"], default="block"),
    rule_name=dict(type="str"),
    priority=dict(type="int"),
    lock_retries=dict(type="int", default=10),
    **ledger.CLAIMS_OPTIONS,
    **step.RETRY_BUDGET_OPTION,
    **step.INCIDENT_OPTION,
)


def item(name):
    """The ledger item of a rule."""
    return f"rule:{name}"


def rules_state(rules):
    return {"rules": [wafv2.rule_summary(rule) for rule in sorted(rules or [], key=lambda r: r.get("Priority", 0))]}


def identity(web_acl, scope):
    return {"name": web_acl["Name"], "id": web_acl["Id"], "arn": web_acl["ARN"], "scope": scope}


def describe(rule):
    rate = rule["Statement"]["RateBasedStatement"]
    key = "IP" if rate["AggregateKeyType"] == "IP" else rate["ForwardedIPConfig"]["HeaderName"]
    scoped = rate.get("ScopeDownStatement", {}).get("ByteMatchStatement")
    where = f" on {wafv2.plain(scoped['SearchString'])}" if scoped else ""
    action = next(iter(rule["Action"])).lower()
    return f"{rate['Limit']} requests per {rate['EvaluationWindowSec']}s per {key}{where}, {action}"


class Step:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.scope = module.params["scope"]
        self.caller = step.Caller(module.params["retry_budget"])
        self._clients = {}

    def client(self, service):
        if service not in self._clients:
            self._clients[service] = step.aws_client(self.module, service)
        return self._clients[service]

    @property
    def ledger(self):
        if not hasattr(self, "_ledger"):
            self._ledger = ledger.for_module(self.module, self.caller, self.client)
        return self._ledger

    def after_write(self, record):
        """Ledger bookkeeping after the web ACL was written: a failure is a warning, the change stands."""
        ledger.bookkeeping(self.module, "the web ACL was written", record)

    def web_acl_ref(self, value):
        parsed = wafv2.parse_arn(value, "webacl")
        if parsed:
            if parsed["scope"] != self.scope:
                raise WAFInputError(f"web_acl {value!r} is in scope {parsed['scope']}, not {self.scope} (scope)")
            return parsed
        if wafv2.looks_like_arn(value):
            raise WAFInputError(f"web_acl {value!r} is not a WAFv2 web ACL ARN")
        return wafv2.find_in_listing(
            self.caller, self.client("wafv2"), "list_web_acls", "WebACLs", value, self.scope, "web ACL"
        )

    def resolve(self):
        if self.params["web_acl"]:
            return self.web_acl_ref(self.params["web_acl"])
        if self.params["resource_arn"]:
            acl = wafv2.web_acl_for_resource(self.caller, self.client("wafv2"), self.params["resource_arn"])
            return {"name": acl["Name"], "id": acl["Id"], "arn": acl["ARN"]}
        raise WAFInputError("web_acl or resource_arn is required: which web ACL gets the rate-based rule?")

    def read(self, ref):
        try:
            return wafv2.get_web_acl(self.caller, self.client("wafv2"), ref, self.scope)
        except WAFInputError as err:
            raise WAFGoneError(str(err)) from None

    def write(self, ref, plan, first):
        return wafv2.locked_update(
            lambda: self.read(ref),
            lambda acl, rules, token: wafv2.update_web_acl(
                self.caller, self.client("wafv2"), acl, self.scope, rules, token
            ),
            plan,
            self.params["lock_retries"],
            first=first,
        )

    # -- contained --------------------------------------------------------------------------------
    def wanted_rule(self):
        params = self.params
        if params["limit"] is None:
            raise WAFInputError("limit is required with state=contained (requests per evaluation window)")
        wafv2.check_rate_options(
            params["limit"],
            params["evaluation_window"],
            params["aggregate_key"],
            params["forwarded_ip_header"],
            params["path"] or None,
            params["path_match"],
            params["priority"],
        )
        name = params["rule_name"] or wafv2.rate_rule_name(params["incident_id"])
        if not name:
            raise WAFInputError(
                f"incident_id {params['incident_id']!r} cannot name the rule (give incident_id or rule_name)"
            )
        wafv2.check_rule_name(name, "rule_name" if params["rule_name"] else "the rule name from incident_id")
        statement = wafv2.rate_statement(
            params["limit"],
            params["evaluation_window"],
            params["aggregate_key"],
            params["forwarded_ip_header"],
            params["forwarded_ip_fallback"],
            params["path"] or None,
            params["path_match"],
        )
        return wafv2.rate_rule(name, None, statement, params["action"])

    def contained(self):
        params = self.params
        incident = params["incident_id"]
        if params["lock_retries"] < 0:
            raise WAFInputError(f"lock_retries must be >= 0, got {params['lock_retries']}")
        wanted = self.wanted_rule()
        if not incident and not self.module.check_mode:
            raise WAFInputError("incident_id is required with state=contained (the claim and the record name it)")
        ref = self.resolve()
        first = self.read(ref)
        acl = first[0]
        name = wanted["Name"]
        state = self.ledger.state(acl["ARN"]).get(ledger.part(item(name)), {ledger.CLAIM: set(), ledger.ADDED: set()})
        others = sorted(ledger.unpart(k) for k in state[ledger.CLAIM] if ledger.unpart(k) != incident)
        ours = ledger.part(incident) in state[ledger.CLAIM] | state[ledger.ADDED] if incident else False
        decided = {}

        def plan(current):
            rules = current.get("Rules") or []
            rule, existing = wafv2.place_rate_rule(rules, wanted, params["priority"])
            if existing is not None and not wafv2.same_rule(existing, rule) and not ours:
                who = f"claimed by {', '.join(others)}" if others else "not added by this incident"
                raise WAFInputError(
                    f"web ACL {current['Name']!r} already has a rule {name!r} with other settings, {who}: not "
                    "changed; give another rule_name"
                )
            decided.update(rules=rules, rule=rule, existing=existing)
            if existing is not None and wafv2.same_rule(existing, rule):
                return None
            return wafv2.with_rule(rules, rule)

        plan(acl)
        new_claims, conflicts = 0, 0
        if not self.module.check_mode:
            new_claims = self.ledger.claim(incident, STEP, acl["ARN"], [item(name)])
            acl, written, conflicts = self.write(ref, plan, first)
            if written is not None and decided["existing"] is None:
                self.after_write(lambda: self.ledger.mark_added(incident, STEP, acl["ARN"], [item(name)]))
        before_rules = decided["rules"]
        changing = decided["existing"] is None or not wafv2.same_rule(decided["existing"], decided["rule"])
        if self.module.check_mode or not changing:
            after_rules = wafv2.with_rule(before_rules, decided["rule"]) if changing else before_rules
        else:
            after_rules = self.read(ref)[0].get("Rules") or []
        found = next((r for r in after_rules if r.get("Name") == name), None)
        result = {
            "changed": bool(changing or new_claims),
            "web_acl": identity(acl, self.scope),
            "rule": wafv2.plain(found) if found else {},
            "rule_in_place": wafv2.same_rule(found, decided["rule"]),
            "other_rules_unchanged": wafv2.others_of(before_rules, name) == wafv2.others_of(after_rules, name),
            "before": rules_state(before_rules),
            "after": rules_state(after_rules),
            "lock_conflicts": conflicts,
            "containment": [],
        }
        if self.module._diff:
            result["diff"] = {"before": result["before"], "after": result["after"]}
        if changing or new_claims:
            changed = {"rule": name, "created": decided["existing"] is None}
            if decided["existing"] is not None and changing:
                changed["previous"] = wafv2.plain(decided["existing"])
            result["containment"].append(
                step.containment_entry(
                    incident,
                    STEP,
                    acl["ARN"],
                    changed,
                    scope=self.scope,
                    web_acl_name=acl["Name"],
                    priority=decided["rule"]["Priority"],
                    claimed=[item(name)],
                )
            )
        prefix = "check mode: would " if self.module.check_mode else ""
        what = describe(decided["rule"])
        at = f"at priority {decided['rule']['Priority']} of web ACL {acl['Name']}"
        if decided["existing"] is None:
            result["msg"] = f"{prefix}{'add' if prefix else 'added'} rate-based rule {name} ({what}) {at}"
        elif changing:
            result["msg"] = f"{prefix}{'update' if prefix else 'updated'} rate-based rule {name} ({what}) {at}"
        elif new_claims:
            result["msg"] = f"claimed rate-based rule {name} ({what}) {at}, already in place: no change to the web ACL"
        else:
            result["msg"] = f"no change: rate-based rule {name} ({what}) is in place {at}"
        if conflicts:
            result["msg"] += f"; {conflicts} lock conflicts resolved by re-reading"
        return result

    # -- released ---------------------------------------------------------------------------------
    def released(self):
        params = self.params
        incident = params["incident_id"]
        entries, ours = wafv2.release_selection(params, STEP)
        for entry in ours:
            if not isinstance((entry.get("changed") or {}).get("rule"), str):
                raise WAFInputError(f"containment {entry.get('id')!r} has no changed.rule: not a waf_rate_limit entry")
        if params["web_acl"] or params["resource_arn"]:
            ref = self.resolve_for_release(ours)
        else:
            resources = sorted({e["resource"] for e in ours})
            if len(resources) > 1:
                raise WAFInputError(
                    f"containments concern {len(resources)} web ACLs ({', '.join(resources)}): give web_acl"
                )
            ref = wafv2.parse_arn(resources[0], "webacl") if resources else None
        if ref is None:
            return self.nothing("nothing to release: no waf_rate_limit containment of this incident", entries)
        mine = [e for e in ours if e["resource"] == ref["arn"]]
        skipped = [e.get("id") for e in entries if e not in mine]
        names = list(dict.fromkeys(e["changed"]["rule"] for e in mine))
        created = [item(e["changed"]["rule"]) for e in mine if e["changed"].get("created")]
        owner = incident or (mine[0].get("incident_id") if mine else None)
        try:
            first = self.read(ref)
        except WAFGoneError as err:
            return self.released_gone(ref, mine, skipped, owner, [item(n) for n in names], str(err))
        selection = (
            self.ledger.select(owner, ref["arn"], [item(n) for n in names], created)
            if mine
            else {"remove": [], "kept": {}}
        )
        removable = [i.split(":", 1)[1] for i in selection["remove"]]
        decided = {}

        def plan(current):
            rules = current.get("Rules") or []
            present = [n for n in removable if any(r.get("Name") == n for r in rules)]
            decided.update(rules=rules, remove=present, missing=[n for n in removable if n not in present])
            return wafv2.without_rules(rules, present) if present else None

        if self.module.check_mode:
            plan(first[0])
            acl, conflicts = first[0], 0
        else:
            try:
                acl, _written, conflicts = self.write(ref, plan, first)
            except WAFGoneError as err:
                return self.released_gone(ref, mine, skipped, owner, [item(n) for n in names], str(err))
        before_rules = decided["rules"]
        after_rules = wafv2.without_rules(before_rules, decided["remove"])
        if not self.module.check_mode:
            if decided["remove"]:
                after_rules = self.read(ref)[0].get("Rules") or []
            if mine:
                self.after_write(
                    lambda: self.ledger.settle(owner, ref["arn"], [item(n) for n in names], removed=selection["remove"])
                )
        listed = {r.get("Name") for r in after_rules}
        kept = {i.split(":", 1)[1]: who for i, who in selection["kept"].items()}
        left_alone = {"already_removed": decided["missing"]}
        if kept:
            left_alone["kept_for_others"] = kept
        untouched = {r.get("Name"): wafv2.plain(r) for r in before_rules if r.get("Name") not in decided["remove"]}
        result = {
            "changed": bool(decided["remove"]),
            "web_acl": identity(acl, self.scope),
            "before": rules_state(before_rules),
            "after": rules_state(after_rules),
            "removed": decided["remove"],
            "still_present": [n for n in decided["remove"] if n in listed],
            "other_rules_unchanged": untouched == {r.get("Name"): wafv2.plain(r) for r in after_rules},
            "kept": kept,
            "gone": [],
            "left_alone": left_alone,
            "ignored_entries": skipped,
            "lock_conflicts": conflicts,
        }
        if self.module._diff:
            result["diff"] = {"before": result["before"], "after": result["after"]}
        if mine:
            result["release"] = wafv2.release_records(
                owner, STEP, acl["ARN"], mine, decided["remove"], left_alone=left_alone
            )
        prefix = "check mode: would remove" if self.module.check_mode else "removed"
        if not mine:
            result["msg"] = f"nothing to release on web ACL {acl['Name']}: no containment entry of this incident"
        elif decided["remove"]:
            result["msg"] = (
                f"{prefix} rule {', '.join(decided['remove'])} from web ACL {acl['Name']}; other rules untouched"
            )
        else:
            result["msg"] = f"no rule to remove from web ACL {acl['Name']}"
        if kept:
            result["msg"] += "; kept " + "; ".join(f"{n} for {', '.join(who)}" for n, who in kept.items())
            result["msg"] += " (still claimed)"
        if decided["missing"]:
            result["msg"] += f"; already removed: {', '.join(decided['missing'])}"
        return result

    def resolve_for_release(self, ours):
        value = self.params["web_acl"]
        if value:
            known = {e["resource"] for e in ours}
            for arn in known:
                parsed = wafv2.parse_arn(arn, "webacl")
                if parsed and value in (arn, parsed["name"], parsed["id"]):
                    return parsed
        try:
            return self.resolve()
        except WAFGoneError:
            if ours:
                raise
            return None

    def nothing(self, msg, entries):
        return {
            "changed": False,
            "msg": msg,
            "web_acl": {},
            "before": rules_state([]),
            "after": rules_state([]),
            "removed": [],
            "still_present": [],
            "other_rules_unchanged": True,
            "kept": {},
            "gone": [],
            "left_alone": {},
            "ignored_entries": [e.get("id") for e in entries],
            "lock_conflicts": 0,
        }

    def released_gone(self, ref, mine, skipped, owner, claimed, reason):
        """The web ACL no longer exists: its entries are recorded as released (gone) and the claims dropped."""
        if mine and not self.module.check_mode:
            self.after_write(lambda: self.ledger.drop(owner, ref["arn"], claimed))
        result = self.nothing(
            f"gone: {reason}; its {len(mine)} containment(s) recorded as released, nothing to remove", []
        )
        result.update(
            web_acl={"name": ref["name"], "id": ref["id"], "arn": ref["arn"], "scope": self.scope},
            gone=[ref["arn"]],
            ignored_entries=skipped,
        )
        if mine:
            result["release"] = wafv2.release_records(owner, STEP, ref["arn"], mine, [], gone=True, reason=reason)
        return result


def run(module, result):
    runner = Step(module)
    return runner.contained() if module.params["state"] == "contained" else runner.released()


def main():
    run_aws_step(run, "containment", ARGUMENT_SPEC, mutually_exclusive=[("web_acl", "resource_arn")])


if __name__ == "__main__":
    main()
