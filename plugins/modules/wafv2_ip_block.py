#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: wafv2_ip_block
short_description: Block addresses in a WAFv2 IP set without losing anyone else's, and release exactly them
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Containment step "block the attacker's addresses at the WAF", in one call. With O(state=contained) it adds
    O(addresses) to a WAFv2 IP set by reading the set, merging and writing it back with the lock token of the
    read. When someone else wrote in between (C(WAFOptimisticLockException)) it reads again and merges again, up
    to O(lock_retries) times. The list is never replaced, so no other writer's address is lost.
  - Addresses are validated and normalised first. Host bits are cleared (V(10.0.0.5/24) is V(10.0.0.0/24)), IPv6
    is written compressed in lower case, and a bare address gets V(/32) or V(/128). An IPv6 address cannot go
    into an IPv4 set, nor the reverse. An address already covered by a CIDR in the set changes nothing.
  - Refuses V(0.0.0.0/0), V(::/0) and any range overlapping O(allow_list) or the CIDRs of O(vpc_id), unless
    O(force=true). Refuses more addresses than an IP set holds (10,000) before any call.
  - An IP set blocks nothing unless a rule of a web ACL blocks on it. The module checks that a rule whose action
    is Block references the set. It checks the web ACL O(web_acl), or the one protecting O(resource_arn), or,
    without either, every web ACL of the scope. It fails when there is none.
  - Returns a C(containment) entry with exactly the addresses this call added. The addresses are the containment
    and an address cannot carry a tag; the IP set itself is tagged with the incident id only with
    O(tag_ip_set=true) (see there why not by default).
  - Before it writes, it records a claim in the containment ledger (O(claims_bucket) or O(claims_dir)) for each
    address the incident needs, including those already blocked by another incident.
  - With O(state=released) it removes the addresses recorded in O(containments) (this incident's entries, from
    the C(firebreak.runbooks.containments) lookup), again read-merge-update with the lock token. Addresses
    someone else added meanwhile stay and are reported in RV(left_alone). An address another unreleased incident
    still claims stays too (RV(kept) says for whom); the last claimant's release removes it. An IP set that no
    longer exists is reported in RV(gone) and its entries are recorded as released; the step does not fail.
  - RV(after) is read back from the API after the write, and RV(not_blocked) and RV(still_blocked) are computed
    from it, so a role can verify the result however large the set is.
  - Check mode reads, decides and reports (with a diff), and makes no call that changes anything. Bad input
    fails with a message naming the value, before anything is changed.
options:
  ip_set:
    description:
      - The IP set, by ARN, name or id. With O(state=released) it may be omitted when all O(containments) concern
        one IP set.
      - A name is looked up among the IP sets the web ACL references, else among all IP sets of O(scope).
    type: str
  scope:
    description:
      - V(REGIONAL) (ALB, API Gateway, AppSync, Cognito) or V(CLOUDFRONT) (call it in region us-east-1).
    type: str
    choices: [REGIONAL, CLOUDFRONT]
    default: REGIONAL
  addresses:
    description:
      - Addresses or CIDRs to block (IPv4 or IPv6, matching the set's version). Required with O(state=contained).
    type: list
    elements: str
    default: []
  web_acl:
    description:
      - The web ACL (ARN, name or id in O(scope)) that must block on the IP set.
    type: str
  resource_arn:
    description:
      - The protected resource (load balancer, API stage...). Its web ACL must block on the IP set.
    type: str
  allow_list:
    description:
      - Ranges never to block (the office, the VPN, health checkers). A requested CIDR overlapping one is refused
        unless O(force=true).
    type: list
    elements: str
    default: []
  vpc_id:
    description:
      - A VPC whose own CIDRs (IPv4 and IPv6) are added to O(allow_list).
    type: str
  force:
    description:
      - Block V(0.0.0.0/0), V(::/0) and allow-listed ranges anyway.
    type: bool
    default: false
  lock_retries:
    description:
      - How many times to re-read and merge again after a lock conflict before failing.
    type: int
    default: 10
  tag_ip_set:
    description:
      - Also tag the IP set C(firebreak:incident)/C(firebreak:step) after adding addresses (one more call,
        C(TagResource)).
      - Off by default because an IP set is usually shared, by several incidents and by hand edits. One incident
        tag on it is overwritten by the next incident's block, and outlives this incident's release, so it
        would misname who put what in the set. The C(containment) entry in the timeline is the exact record of
        the addresses this incident added.
    type: bool
    default: false
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
  - O(incident_id) is required with O(state=contained) outside check mode.
  - Rule order is not judged. An Allow rule evaluated before the Block rule still lets an address through.
  - moto (the sandbox) accepts invalid CIDRs and bogus IP set ARNs in rules; the module validates both itself.
seealso:
  - module: community.aws.wafv2_ip_set
"""

EXAMPLES = r"""
- name: Block the attacker's addresses on the load balancer's web ACL
  firebreak.runbooks.wafv2_ip_block:
    ip_set: firebreak-blocklist
    scope: REGIONAL
    resource_arn: "{{ alb_arn }}"
    vpc_id: "{{ vpc_id }}"
    allow_list: [198.51.100.0/24]
    addresses: [203.0.113.66, 203.0.113.0/28, "2001:db8:dead::/48"]
    incident_id: INC-2041
  register: waf

- name: Release exactly what this incident blocked
  firebreak.runbooks.wafv2_ip_block:
    state: released
    ip_set: firebreak-blocklist
    containments: "{{ lookup('firebreak.runbooks.containments', 'waf_block', incident_id='INC-2041', wantlist=True) }}"
    incident_id: INC-2041
"""

RETURN = r"""
msg:
  description: What was done.
  returned: always
  type: str
  sample: "added 2 addresses to IP set firebreak-blocklist (1 already covered)"
ip_set:
  description: The IP set.
  returned: always
  type: dict
  contains:
    name:
      description: Name.
      returned: always
      type: str
      sample: firebreak-blocklist
    id:
      description: Id.
      returned: always
      type: str
      sample: af7ab5ee-e53c-46fe-a48f-9c51339cea50
    arn:
      description: ARN.
      returned: always
      type: str
      sample: arn:aws:wafv2:us-east-1:123456789012:regional/ipset/firebreak-blocklist/af7ab5ee-e53c-46fe-a48f
    scope:
      description: V(REGIONAL) or V(CLOUDFRONT).
      returned: always
      type: str
      sample: REGIONAL
    ip_address_version:
      description: V(IPV4) or V(IPV6).
      returned: always
      type: str
      sample: IPV4
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: containment}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str, sample: GetAlias}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
block_rules:
  description: Web ACLs and their rules that block on the IP set, as C(web ACL name/rule name).
  returned: with O(state=contained)
  type: list
  elements: str
  sample: ["edge-acl/block-firebreak-blocklist"]
before:
  description: The IP set's addresses before the step (as read last, after any lock conflict).
  returned: always
  type: dict
  contains:
    address_count:
      description: Number of addresses.
      returned: always
      type: int
      sample: 1
    addresses:
      description: The addresses as stored.
      returned: when there are at most 1000
      type: list
      elements: str
      sample: ["192.0.2.10/32"]
after:
  description: The IP set's addresses as read back from the API after the step (in check mode, as they would be).
  returned: always
  type: dict
  contains:
    address_count:
      description: Number of addresses.
      returned: always
      type: int
      sample: 3
    addresses:
      description: The addresses as read back.
      returned: when there are at most 1000
      type: list
      elements: str
      sample: ["192.0.2.10/32", "203.0.113.66/32", "203.0.113.0/28"]
added:
  description:
    - The CIDRs this call added (would add, in check mode); the first 1000 when more were added (the full list
      is in RV(containment)).
  returned: with O(state=contained)
  type: list
  elements: str
  sample: ["203.0.113.66/32"]
added_count:
  description: How many CIDRs this call added (would add, in check mode).
  returned: with O(state=contained)
  type: int
  sample: 1
already_covered:
  description: Requested CIDRs left out because a listed (or another requested) CIDR covers them, with that CIDR.
  returned: with O(state=contained)
  type: dict
  sample: {"192.0.2.10/32": "192.0.2.10/32"}
normalised:
  description: Requested values that were rewritten (host bits, IPv6 spelling), with their normal form.
  returned: with O(state=contained)
  type: dict
  sample: {"203.0.113.5/28": "203.0.113.0/28"}
not_blocked:
  description:
    - Requested addresses that the set as read back after the write does not cover (empty when the block holds).
      The first 1000.
  returned: with O(state=contained)
  type: list
  elements: str
  sample: []
still_blocked:
  description: Addresses this call removed that the set as read back still lists (empty when the release holds).
  returned: with O(state=released)
  type: list
  elements: str
  sample: []
kept:
  description: Addresses this incident would have removed but another unreleased incident still claims, with who.
  returned: with O(state=released)
  type: dict
  sample: {"203.0.113.66/32": ["INC-2042"]}
gone:
  description: ARNs of IP sets that no longer exist; their containments were recorded as released.
  returned: with O(state=released)
  type: list
  elements: str
  sample: []
removed:
  description: The addresses this call removed (would remove, in check mode).
  returned: with O(state=released)
  type: list
  elements: str
  sample: ["203.0.113.66/32"]
left_alone:
  description:
    - With O(state=released), what was not touched. C(already_removed) lists recorded addresses no longer in the
      set. C(added_by_others) lists addresses added since the containment by someone else (when the containment
      recorded the set's earlier content). C(kept_for_others) is RV(kept), when not empty.
  returned: with O(state=released)
  type: dict
  sample: {"already_removed": [], "added_by_others": ["198.51.100.99/32"]}
lock_conflicts:
  description: How many lock conflicts were met (each followed by a fresh read and merge).
  returned: always
  type: int
  sample: 0
containment:
  description:
    - What this call contained, for the incident timeline and the release (one entry, or none). C(changed.added)
      lists exactly the addresses added. C(claimed) lists the addresses the incident claims (added, and those
      already blocking its other requests). C(existing) holds the set's addresses before, when there were at most
      2000.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "5f1c0e2a9b7d4c31", "incident_id": "INC-2041", "step": "waf_block", "resource": "arn:aws:wafv2:...",
            "changed": {"added": ["203.0.113.66/32"]}, "claimed": ["203.0.113.66/32"], "scope": "REGIONAL",
            "at": "2026-11-24T13:30:00Z"}]
release:
  description:
    - The release record (the ids of the containment entries undone, what was removed and left alone); with
      C(gone=true) when the IP set no longer exists.
  returned: with O(state=released) when there were entries to release
  type: list
  elements: dict
  sample: [{"releases": ["5f1c0e2a9b7d4c31"], "restored": {"removed": ["203.0.113.66/32"]},
            "left_alone": {"already_removed": [], "added_by_others": []}}]
ignored_entries:
  description: Ids of O(containments) entries ignored (another step, incident or IP set).
  returned: with O(state=released)
  type: list
  elements: str
  sample: []
diff:
  description: The address count and list (when at most 1000) before and after, with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {"address_count": 1, "addresses": ["192.0.2.10/32"]},
           "after": {"address_count": 2, "addresses": ["192.0.2.10/32", "203.0.113.66/32"]}}
"""

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import network, wafv2
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws.wafv2 import WAFGoneError, WAFInputError
from ansible_collections.firebreak.runbooks.plugins.module_utils.containment import ledger
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime import step
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import run_aws_step

STEP = "waf_block"
EXISTING_RECORD_LIMIT = 2000
LIST_LIMIT = 1000

ARGUMENT_SPEC = dict(
    ip_set=dict(type="str"),
    scope=dict(type="str", choices=["REGIONAL", "CLOUDFRONT"], default="REGIONAL"),
    addresses=dict(type="list", elements="str", default=[]),
    **ledger.CONTAINMENT_OPTIONS,
    web_acl=dict(type="str"),
    resource_arn=dict(type="str"),
    allow_list=dict(type="list", elements="str", default=[]),
    vpc_id=dict(type="str"),
    force=dict(type="bool", default=False),
    lock_retries=dict(type="int", default=10),
    tag_ip_set=dict(type="bool", default=False),
    **ledger.CLAIMS_OPTIONS,
    **step.RETRY_BUDGET_OPTION,
    **step.INCIDENT_OPTION,
)


def shown(values, limit=5):
    values = list(values)
    text = ", ".join(values[:limit])
    return text + (f" and {len(values) - limit} more" if len(values) > limit else "")


def addresses_state(addresses):
    """Count, and the list when short (a 10,000-entry list in every result slows the timeline)."""
    state = {"address_count": len(addresses)}
    if len(addresses) <= LIST_LIMIT:
        state["addresses"] = list(addresses)
    return state


def capped(values):
    values = list(values)
    return values[:LIST_LIMIT]


def identity(ip_set, scope):
    return {
        "name": ip_set["Name"],
        "id": ip_set["Id"],
        "arn": ip_set["ARN"],
        "scope": scope,
        "ip_address_version": ip_set.get("IPAddressVersion"),
    }


def claim_items(decided):
    """What an incident needs of the set: the CIDRs it adds and those already covering its other requests."""
    return list(dict.fromkeys(decided["add"] + list(decided["covered"].values())))


class Step:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.scope = module.params["scope"]
        self.caller = step.Caller(module.params["retry_budget"])
        self._clients = {}

    def after_write(self, record):
        ledger.bookkeeping(self.module, "the IP set was written", record)

    def client(self, service):
        if service not in self._clients:
            self._clients[service] = step.aws_client(self.module, service)
        return self._clients[service]

    @property
    def ledger(self):
        if not hasattr(self, "_ledger"):
            self._ledger = ledger.for_module(self.module, self.caller, self.client)
        return self._ledger

    def read_back(self, ref):
        """The IP set's addresses as the API answers after the write (what a role verifies)."""
        return list(wafv2.get_ip_set(self.caller, self.client("wafv2"), ref, self.scope)[0].get("Addresses") or [])

    # -- resolving --------------------------------------------------------------------------------
    def web_acl_ref(self, value):
        parsed = wafv2.parse_arn(value, "webacl")
        if parsed:
            return parsed
        if wafv2.looks_like_arn(value):
            raise WAFInputError(f"web_acl {value!r} is not a WAFv2 web ACL ARN")
        return wafv2.find_in_listing(
            self.caller, self.client("wafv2"), "list_web_acls", "WebACLs", value, self.scope, "web ACL"
        )

    def web_acls(self):
        """The web ACLs to check: O(web_acl), the one of O(resource_arn), or all of the scope."""
        wafv2_client = self.client("wafv2")
        if self.params["web_acl"]:
            ref = self.web_acl_ref(self.params["web_acl"])
            return [wafv2.get_web_acl(self.caller, wafv2_client, ref, self.scope)[0]]
        if self.params["resource_arn"]:
            return [wafv2.web_acl_for_resource(self.caller, wafv2_client, self.params["resource_arn"])]
        acls, params, asked = [], {"Scope": self.scope, "Limit": 100}, {None}
        while True:
            page = self.caller(wafv2_client, "list_web_acls", f"web ACLs in scope {self.scope}", **params)
            for item in page.get("WebACLs") or []:
                ref = {"name": item["Name"], "id": item["Id"], "arn": item["ARN"]}
                acls.append(wafv2.get_web_acl(self.caller, wafv2_client, ref, self.scope)[0])
            if not page.get("NextMarker") or not page.get("WebACLs"):
                return acls
            marker = page["NextMarker"]
            step.advance_or_fail(
                wafv2_client, "list_web_acls", f"web ACLs in scope {self.scope}", asked, marker, "its NextMarker"
            )
            params["NextMarker"] = marker

    def ip_set_ref(self, value, known_arns=()):
        parsed = wafv2.parse_arn(value, "ipset")
        if parsed:
            if parsed["scope"] != self.scope:
                raise WAFInputError(f"ip_set {value!r} is in scope {parsed['scope']}, not {self.scope} (scope)")
            return parsed
        if wafv2.looks_like_arn(value):
            raise WAFInputError(f"ip_set {value!r} is not a WAFv2 IP set ARN")
        arn = wafv2.match_ip_set(value, known_arns)
        if arn:
            return wafv2.parse_arn(arn, "ipset")
        return wafv2.find_in_listing(
            self.caller, self.client("wafv2"), "list_ip_sets", "IPSets", value, self.scope, "IP set"
        )

    def vpc_allow_list(self, vpc_id):
        try:
            answer = self.caller(self.client("ec2"), "describe_vpcs", f"VPC {vpc_id!r}", VpcIds=[vpc_id])
        except step.StepAWSError as err:
            if err.code in ("InvalidVpcID.NotFound", "InvalidVpcID.Malformed"):
                raise WAFInputError(f"vpc_id {vpc_id!r} does not exist") from None
            raise
        ranges = []
        for vpc in answer.get("Vpcs") or []:
            for assoc in vpc.get("CidrBlockAssociationSet") or []:
                ranges.append((assoc["CidrBlock"], f"a CIDR of {vpc_id}"))
            for assoc in vpc.get("Ipv6CidrBlockAssociationSet") or []:
                if assoc.get("Ipv6CidrBlock"):
                    ranges.append((assoc["Ipv6CidrBlock"], f"a CIDR of {vpc_id}"))
            if vpc.get("CidrBlock"):
                ranges.append((vpc["CidrBlock"], f"a CIDR of {vpc_id}"))
        if not ranges:
            raise WAFInputError(f"vpc_id {vpc_id!r} does not exist")
        return ranges

    # -- contained --------------------------------------------------------------------------------
    def validate_contained(self):
        params = self.params
        try:
            requested, rewritten = network.normalise_all(params["addresses"], "addresses")
            allow, _ = network.normalise_all(params["allow_list"], "allow_list")
        except ValueError as err:
            raise WAFInputError(str(err)) from None
        if not requested:
            raise WAFInputError("addresses: nothing to block (give at least one address or CIDR)")
        if len(requested) > wafv2.MAX_ADDRESSES:
            raise WAFInputError(
                f"addresses: {len(requested)} distinct addresses given, but an IP set holds at most "
                f"{wafv2.MAX_ADDRESSES}; the first over the limit is {requested[wafv2.MAX_ADDRESSES]}"
            )
        refusals = network.check_blockable(requested, [(cidr, "allow_list") for cidr in allow], params["force"])
        if refusals:
            raise WAFInputError(f"refusing to block: {'; '.join(refusals)} (force=true overrides)")
        if params["lock_retries"] < 0:
            raise WAFInputError(f"lock_retries must be >= 0, got {params['lock_retries']}")
        if not params["ip_set"]:
            raise WAFInputError("ip_set is required with state=contained")
        if not params["incident_id"] and not self.module.check_mode:
            raise WAFInputError("incident_id is required with state=contained (the release needs it)")
        return requested, rewritten

    def contained(self):
        params = self.params
        requested, rewritten = self.validate_contained()
        if params["vpc_id"] and not params["force"]:
            refusals = network.check_blockable(requested, self.vpc_allow_list(params["vpc_id"]))
            if refusals:
                raise WAFInputError(f"refusing to block: {'; '.join(refusals)} (force=true overrides)")

        acls = self.web_acls()
        known = [arn for acl in acls for arn in wafv2.ip_set_arns_in(acl)]
        ref = self.ip_set_ref(params["ip_set"], known)
        wafv2_client = self.client("wafv2")
        first = wafv2.get_ip_set(self.caller, wafv2_client, ref, self.scope)
        ip_set = first[0]
        rules = [f"{acl['Name']}/{rule}" for acl in acls for rule in wafv2.block_rules(acl, ip_set["ARN"])]
        if not rules:
            where = (
                f"web ACL {acls[0]['Name']!r}"
                if len(acls) == 1
                else f"any of the {len(acls)} web ACLs in scope {self.scope}"
            )
            others = [use for acl in acls for use in wafv2.other_uses(acl, ip_set["ARN"])]
            detail = f" (it is referenced without a plain Block by: {', '.join(others)})" if others else ""
            raise WAFInputError(
                f"IP set {ip_set['Name']!r} is not referenced by a Block rule of {where}{detail}: adding addresses "
                "to it would block nothing; add a Block rule on it to the web ACL protecting the target"
            )
        version = ip_set.get("IPAddressVersion", "IPV4")
        wrong = [cidr for cidr in requested if network.version_of(cidr) != version]
        if wrong:
            raise WAFInputError(
                f"addresses {shown(wrong)} are not {version} but IP set {ip_set['Name']!r} holds {version} only"
            )

        decided = {}
        touch = {"wanted": False}

        def plan(current):
            existing = list(current.get("Addresses") or [])
            additions = network.plan_additions(existing, requested)
            total = len(existing) + len(additions["add"])
            if total > wafv2.MAX_ADDRESSES:
                raise WAFInputError(
                    f"IP set {current['Name']!r} holds {len(existing)} addresses; adding {len(additions['add'])} "
                    f"would make {total}, over the limit of {wafv2.MAX_ADDRESSES}"
                )
            decided.update(existing=existing, **additions)
            if additions["add"]:
                return existing + additions["add"]
            return existing if touch["wanted"] else None

        plan(ip_set)  # the items this incident needs: what it adds and what already covers the rest
        new_claims = 0
        if self.module.check_mode:
            conflicts = 0
        else:
            # the claims first: another incident's release must see them before the addresses are in place
            new_claims = self.ledger.claim(params["incident_id"], STEP, ip_set["ARN"], claim_items(decided))
            # New claims on addresses already blocked (nothing to add): the set is written back unchanged with the
            # lock token of a read made after the claims, so a release that selected before they existed cannot
            # write its removal over them (its lock token is stale: it reads the set and the claims again), and one
            # that wrote first makes this write conflict: the re-read finds the address gone and adds it back.
            touch["wanted"] = bool(new_claims)
            ip_set, _written, conflicts = wafv2.read_merge_update(
                self.caller, wafv2_client, ref, self.scope, plan, params["lock_retries"], first=first
            )
            items = claim_items(decided)  # again: a lock conflict may have re-planned
            self.after_write(lambda: self.ledger.claim(params["incident_id"], STEP, ip_set["ARN"], items))
            if decided["add"]:
                self.after_write(
                    lambda: self.ledger.mark_added(params["incident_id"], STEP, ip_set["ARN"], decided["add"])
                )
        added = decided["add"]
        before = decided["existing"]
        after = before + added if self.module.check_mode else self.read_back(ref)
        uncovered = network.plan_additions(after, requested)["add"]
        result = {
            "changed": bool(added or new_claims),
            "ip_set": identity(ip_set, self.scope),
            "block_rules": rules,
            "before": addresses_state(before),
            "after": addresses_state(after),
            "added": capped(added),
            "added_count": len(added),
            "already_covered": decided["covered"],
            "normalised": rewritten,
            "not_blocked": capped(uncovered),
            "lock_conflicts": conflicts,
            "containment": [],
        }
        if self.module._diff:
            result["diff"] = {"before": addresses_state(before), "after": addresses_state(after)}
        if added or new_claims:
            # also when this incident only claimed addresses already blocked: its release must drop the claims
            extra = {
                "scope": self.scope,
                "ip_set_name": ip_set["Name"],
                "block_rules": rules,
                "claimed": claim_items(decided),
            }
            if len(before) <= EXISTING_RECORD_LIMIT:
                extra["existing"] = before
            result["containment"].append(
                step.containment_entry(params["incident_id"], STEP, ip_set["ARN"], {"added": added}, **extra)
            )
            if added and params["tag_ip_set"] and not self.module.check_mode:
                try:
                    wafv2.tag_resource(
                        self.caller, wafv2_client, ip_set["ARN"], step.incident_tags(params["incident_id"], STEP)
                    )
                except step.StepAWSError as err:
                    self.module.warn(f"the addresses are blocked, but tagging the IP set failed: {err}")
        covered = f" ({len(decided['covered'])} already covered)" if decided["covered"] else ""
        prefix = "check mode: would add" if self.module.check_mode else "added"
        if added:
            result["msg"] = f"{prefix} {len(added)} addresses to IP set {ip_set['Name']}{covered}"
        elif new_claims:
            result["msg"] = (
                f"claimed {new_claims} addresses already blocked in IP set {ip_set['Name']} (blocked by another "
                "incident or by hand): no address added, the claim keeps them blocked for this incident"
            )
        else:
            result["msg"] = f"no change: every address is already covered in IP set {ip_set['Name']}"
        if conflicts:
            result["msg"] += f"; {conflicts} lock conflicts resolved by re-reading"
        return result

    # -- released ---------------------------------------------------------------------------------
    def released(self):
        params = self.params
        incident = params["incident_id"]
        entries, ours = wafv2.release_selection(params, STEP)
        nothing = None
        if params["ip_set"]:
            try:
                ref = self.ip_set_ref(params["ip_set"], [e["resource"] for e in ours])
            except WAFGoneError as err:
                if ours:
                    raise
                nothing = f"nothing to release: no waf_block containment of this incident ({err})"
        else:
            resources = sorted({e["resource"] for e in ours})
            if len(resources) > 1:
                raise WAFInputError(f"containments concern {len(resources)} IP sets ({shown(resources)}): give ip_set")
            if not resources:
                nothing = "nothing to release: no waf_block containment of this incident"
        if nothing:
            return {
                "changed": False,
                "msg": nothing,
                "ip_set": {},
                "before": addresses_state([]),
                "after": addresses_state([]),
                "removed": [],
                "still_blocked": [],
                "kept": {},
                "gone": [],
                "left_alone": {},
                "ignored_entries": [e.get("id") for e in entries],
                "lock_conflicts": 0,
            }
        if not params["ip_set"]:
            ref = self.ip_set_ref(resources[0])
        mine = [e for e in ours if e["resource"] == ref["arn"]]
        skipped = [e.get("id") for e in entries if e not in mine]
        for entry in mine:
            added = (entry.get("changed") or {}).get("added")
            if not isinstance(added, list):
                raise WAFInputError(f"containment {entry.get('id')!r} has no changed.added list: not a waf_block entry")
        recorded = list(dict.fromkeys(network.normalise_cidr(c) for e in mine for c in e["changed"]["added"]))
        claimed = list(
            dict.fromkeys(
                network.normalise_cidr(c) for e in mine for c in (e.get("claimed") or []) + e["changed"]["added"]
            )
        )
        owner = incident or (mine[0].get("incident_id") if mine else None)
        existing_then = None
        if mine and all(isinstance(e.get("existing"), list) for e in mine):
            existing_then = {network.normalise_cidr(c) for e in mine for c in e["existing"]}
        wafv2_client = self.client("wafv2")
        try:
            first = wafv2.get_ip_set(self.caller, wafv2_client, ref, self.scope)
        except WAFGoneError as err:
            return self.released_gone(ref, mine, skipped, owner, claimed, str(err))
        # what no other unreleased incident still claims (the ledger); the rest is kept, for whom is said. Selected
        # after every read of the set: a write that conflicts (another run wrote meanwhile, a containment that has
        # just claimed an address among them) re-reads the claims too, never only the addresses.
        selection = {"remove": [], "kept": {}}
        decided = {}

        def plan(current):
            existing = list(current.get("Addresses") or [])
            if mine:
                selection.update(self.ledger.select(owner, ref["arn"], claimed, recorded))
            removals = network.plan_removals(existing, selection["remove"])
            decided.update(existing=existing, **removals)
            if not removals["remove"]:
                return None
            gone = set(removals["remove"])
            return [cidr for cidr in existing if cidr not in gone]

        if self.module.check_mode:
            plan(first[0])
            ip_set, conflicts = first[0], 0
        else:
            try:
                ip_set, _written, conflicts = wafv2.read_merge_update(
                    self.caller, wafv2_client, ref, self.scope, plan, params["lock_retries"], first=first
                )
            except step.StepAWSError as err:
                if err.code != wafv2.NOT_FOUND:
                    raise
                return self.released_gone(ref, mine, skipped, owner, claimed, str(err))
        before = decided["existing"]
        gone = set(decided["remove"])
        after = [cidr for cidr in before if cidr not in gone]
        if not self.module.check_mode:
            if gone:
                after = self.read_back(ref)
            if mine:
                self.after_write(lambda: self.ledger.settle(owner, ref["arn"], claimed, removed=selection["remove"]))
        listed = {network.normalise_cidr(c) for c in after if _parses(c)}
        still = [cidr for cidr in decided["remove"] if network.normalise_cidr(cidr) in listed]
        kept = selection["kept"]
        left_alone = {"already_removed": decided["missing"]}
        if existing_then is not None:
            left_alone["added_by_others"] = [
                cidr
                for cidr in decided["kept"]
                if _parses(cidr) and network.normalise_cidr(cidr) not in existing_then and cidr not in kept
            ]
        if kept:
            left_alone["kept_for_others"] = kept
        result = {
            "changed": bool(gone),
            "ip_set": identity(ip_set, self.scope),
            "before": addresses_state(before),
            "after": addresses_state(after),
            "removed": decided["remove"],
            "still_blocked": capped(still),
            "kept": kept,
            "gone": [],
            "left_alone": left_alone,
            "ignored_entries": skipped,
            "lock_conflicts": conflicts,
        }
        if self.module._diff:
            result["diff"] = {"before": addresses_state(before), "after": addresses_state(after)}
        if mine:
            result["release"] = wafv2.release_records(
                owner, STEP, ip_set["ARN"], mine, decided["remove"], left_alone=left_alone
            )
        prefix = "check mode: would remove" if self.module.check_mode else "removed"
        others = left_alone.get("added_by_others")
        tail = f"; left alone {len(others)} added by others meanwhile" if others else ""
        if kept:
            tail += "; kept " + "; ".join(f"{cidr} for {', '.join(who)}" for cidr, who in list(kept.items())[:5])
            tail += f" and {len(kept) - 5} more" if len(kept) > 5 else ""
            tail += " (still claimed)"
        if decided["missing"]:
            tail += f"; {len(decided['missing'])} recorded addresses were already gone"
        if not mine:
            result["msg"] = f"nothing to release on IP set {ip_set['Name']}: no containment entry of this incident"
        else:
            result["msg"] = f"{prefix} {len(gone)} addresses from IP set {ip_set['Name']}{tail}"
        return result

    def released_gone(self, ref, mine, skipped, owner, claimed, reason):
        """The IP set no longer exists: nothing to undo. Its entries are recorded as released (gone) and the
        incident's claims on it dropped, so the release of the incident's other containments goes on."""
        if mine and not self.module.check_mode:
            self.after_write(lambda: self.ledger.drop(owner, ref["arn"], claimed))
        result = {
            "changed": False,
            "msg": f"gone: {reason}; its {len(mine)} containment(s) recorded as released, nothing to remove",
            "ip_set": {"name": ref["name"], "id": ref["id"], "arn": ref["arn"], "scope": self.scope},
            "before": addresses_state([]),
            "after": addresses_state([]),
            "removed": [],
            "still_blocked": [],
            "kept": {},
            "gone": [ref["arn"]],
            "left_alone": {},
            "ignored_entries": skipped,
            "lock_conflicts": 0,
        }
        if mine:
            result["release"] = wafv2.release_records(owner, STEP, ref["arn"], mine, [], gone=True, reason=reason)
        return result


def _parses(cidr):
    try:
        network.normalise_cidr(cidr)
    except ValueError:
        return False
    return True


def run(module, result):
    runner = Step(module)
    return runner.contained() if module.params["state"] == "contained" else runner.released()


def main():
    run_aws_step(run, "containment", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
