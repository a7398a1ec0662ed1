#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ec2_nacl_block
short_description: Deny CIDRs on the network ACLs of subnets or a VPC, below the allow rules; release exactly them
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Containment step "block suspicious sources" where there is no WAF (seed ecs-fargate-plan.md, "tighten SG/NACL
    to block suspicious sources"), in one call.
  - With O(state=contained) it adds a DENY entry (all protocols) for each of O(cidrs) to the network ACL of each
    of O(subnets), or to every network ACL of O(vpc_id). Each entry gets a rule number below the ACL's first
    ALLOW entry of that direction, so it takes effect, and never a number already in use. A CIDR an earlier
    DENY already covers changes nothing.
  - CIDRs are validated and normalised (host bits cleared, IPv6 compressed). V(0.0.0.0/0), V(::/0), the VPC's
    own CIDRs and O(allow_list) are refused unless O(force=true). The entry quota per direction
    (O(max_entries)) is checked before any change.
  - Returns one C(containment) entry per network ACL changed, listing exactly the entries added. Tags the
    ACLs with the incident id.
  - With O(state=released) it deletes exactly the entries recorded in O(containments). An entry someone replaced
    or removed meanwhile is left alone and reported in RV(left_alone). An entry another unreleased incident still
    claims in the containment ledger (O(claims_bucket) or O(claims_dir)) stays (RV(kept) says for whom); the last
    claimant's release deletes it. A network ACL deleted meanwhile is reported in RV(gone).
  - Before it adds entries it records a claim per entry the incident needs, including DENY entries already there.
  - RV(after) is read back from the API after the change, and the role verifies it.
  - Check mode reads, decides and reports (with a diff) and changes nothing. Bad input fails naming the value,
    before any change.
options:
  subnets:
    description:
      - Subnet ids whose network ACLs get the entries.
    type: list
    elements: str
    default: []
  vpc_id:
    description:
      - A VPC whose every network ACL gets the entries (used when O(subnets) is empty).
    type: str
  cidrs:
    description:
      - Addresses or CIDRs to deny (IPv4 or IPv6). Required with O(state=contained).
    type: list
    elements: str
    default: []
  direction:
    description:
      - Deny inbound traffic from the CIDRs, outbound traffic to them, or both.
    type: str
    choices: [ingress, egress, both]
    default: ingress
  allow_list:
    description:
      - Ranges never to deny (the office, the VPN). The VPC's own CIDRs are always included.
    type: list
    elements: str
    default: []
  force:
    description:
      - Deny V(0.0.0.0/0), V(::/0) and allow-listed ranges anyway.
    type: bool
    default: false
  max_entries:
    description:
      - The quota of numbered entries per direction of a network ACL (20 unless raised with AWS).
    type: int
    default: 20
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
  - Network ACLs are stateless. Denying inbound traffic from a CIDR does not stop replies to connections the
    instances open to it; use O(direction=both) for that.
  - A network ACL shared by several subnets is changed once, for all of them.
seealso:
  - module: amazon.aws.ec2_vpc_nacl
"""

EXAMPLES = r"""
- name: Deny the attacker's range on the application subnets
  firebreak.runbooks.ec2_nacl_block:
    subnets: [subnet-0123456789abcdef0, subnet-0fedcba9876543210]
    cidrs: [203.0.113.0/24]
    direction: both
    incident_id: INC-2041

- name: Release what the incident denied
  firebreak.runbooks.ec2_nacl_block:
    state: released
    containments: "{{ lookup('firebreak.runbooks.containments', 'nacl_block', incident_id='INC-2041', wantlist=True) }}"
    incident_id: INC-2041
"""

RETURN = r"""
msg:
  description: What was done.
  returned: always
  type: str
  sample: "added 2 DENY entries to 1 network ACL(s)"
network_acls:
  description: The network ACL ids acted on.
  returned: always
  type: list
  elements: str
  sample: [acl-0123456789abcdef0]
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: containment}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str, sample: GetAlias}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
added:
  description: Per network ACL, the entries added (C(rule_number), C(cidr), C(egress)).
  returned: with O(state=contained)
  type: dict
  sample: {"acl-0123456789abcdef0": [{"rule_number": 99, "cidr": "203.0.113.0/24", "egress": false}]}
already_covered:
  description: Per network ACL and direction, requested CIDRs an earlier DENY already covers, with that rule.
  returned: with O(state=contained)
  type: dict
  sample: {"acl-0123456789abcdef0": {"ingress": {"203.0.113.7/32": "rule 99 (203.0.113.0/24)"}}}
normalised:
  description: Requested values that were rewritten, with their normal form.
  returned: with O(state=contained)
  type: dict
  sample: {"203.0.113.7/24": "203.0.113.0/24"}
removed:
  description: Per network ACL, the entries deleted.
  returned: with O(state=released)
  type: dict
  sample: {"acl-0123456789abcdef0": [{"rule_number": 99, "cidr": "203.0.113.0/24", "egress": false}]}
left_alone:
  description:
    - Per network ACL, recorded entries found C(replaced) or C(already_removed) and not touched, or
      C(network_acl_deleted).
  returned: with O(state=released)
  type: dict
  sample: {}
kept:
  description:
    - With O(state=released), per network ACL, the entries (C(<direction> <rule> <cidr>)) left in place because another
      unreleased incident still claims them, with who (also in RV(left_alone) as C(kept_for_others)).
  returned: with O(state=released)
  type: dict
  sample: {"acl-0123456789abcdef0": {"ingress 99 203.0.113.0/24": ["INC-2042"]}}
gone:
  description: Network ACLs deleted meanwhile; their entries were recorded as released (C(gone=true)).
  returned: with O(state=released)
  type: list
  elements: str
  sample: []
before:
  description: Per network ACL, its numbered entries before the step (C(rule_number), C(action), C(cidr), C(egress)).
  returned: always
  type: dict
  sample: {"acl-0123456789abcdef0": [{"rule_number": 100, "action": "allow", "cidr": "0.0.0.0/0", "egress": false}]}
after:
  description: The same, read back from the API after the step (in check mode, as it would be).
  returned: always
  type: dict
  sample: {"acl-0123456789abcdef0": [{"rule_number": 99, "action": "deny", "cidr": "203.0.113.0/24", "egress": false},
           {"rule_number": 100, "action": "allow", "cidr": "0.0.0.0/0", "egress": false}]}
containment:
  description: One entry per network ACL changed; C(changed.entries) lists exactly the entries added.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "5f1c0e2a9b7d4c31", "step": "nacl_block", "resource": "acl-0123456789abcdef0",
            "changed": {"entries": [{"rule_number": 99, "cidr": "203.0.113.0/24", "egress": false}]}}]
release:
  description: One release record per network ACL (C(releases), C(restored), C(left_alone)).
  returned: with O(state=released)
  type: list
  elements: dict
  sample: []
ignored_entries:
  description: Ids of O(containments) entries ignored (another step or incident).
  returned: with O(state=released)
  type: list
  elements: str
  sample: []
diff:
  description: RV(before) and RV(after), with C(--diff).
  returned: when diff mode is on
  type: dict
  sample: {"before": {}, "after": {}}
"""

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import nacl, network
from ansible_collections.firebreak.runbooks.plugins.module_utils.containment import ledger
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime import step
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import run_aws_step

STEP = "nacl_block"


class NACLInputError(step.StepError):
    """Bad input; nothing was changed."""


ARGUMENT_SPEC = dict(
    subnets=dict(type="list", elements="str", default=[]),
    vpc_id=dict(type="str"),
    cidrs=dict(type="list", elements="str", default=[]),
    direction=dict(type="str", choices=["ingress", "egress", "both"], default="ingress"),
    allow_list=dict(type="list", elements="str", default=[]),
    force=dict(type="bool", default=False),
    max_entries=dict(type="int", default=nacl.DEFAULT_MAX_ENTRIES),
    **ledger.CONTAINMENT_OPTIONS,
    **ledger.CLAIMS_OPTIONS,
    **step.RETRY_BUDGET_OPTION,
    **step.INCIDENT_OPTION,
)


def entries_of(acl):
    rows = [
        {
            "rule_number": e["RuleNumber"],
            "action": e.get("RuleAction"),
            "cidr": nacl.entry_cidr(e),
            "egress": bool(e.get("Egress")),
        }
        for e in acl.get("Entries") or []
        if e["RuleNumber"] < nacl.DEFAULT_RULE
    ]
    return sorted(rows, key=lambda r: (r["egress"], r["rule_number"]))


def with_entries(rows, add=(), remove=()):
    gone = {(r["egress"], r["rule_number"]) for r in remove}
    kept = [r for r in rows if (r["egress"], r["rule_number"]) not in gone]
    kept += [{"rule_number": a["rule_number"], "action": "deny", "cidr": a["cidr"], "egress": a["egress"]} for a in add]
    return sorted(kept, key=lambda r: (r["egress"], r["rule_number"]))


class Step:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.caller = step.Caller(module.params["retry_budget"])
        self.ec2 = step.aws_client(module, "ec2")
        self._ledger = None

    @property
    def ledger(self):
        if self._ledger is None:
            self._ledger = ledger.for_module(self.module, self.caller)
        return self._ledger

    def bookkeeping(self, record):
        ledger.bookkeeping(self.module, "the network ACLs were changed", record)

    def call(self, method, resource, not_found=(), **params):
        try:
            return self.caller(self.ec2, method, resource, **params)
        except step.StepAWSError as err:
            if err.code in not_found:
                raise NACLInputError(f"{resource} does not exist") from None
            raise

    def create_entry(self, acl_id, item, key):
        self.caller(
            self.ec2,
            "create_network_acl_entry",
            f"network ACL {acl_id}",
            NetworkAclId=acl_id,
            RuleNumber=item["rule_number"],
            Protocol="-1",
            RuleAction="deny",
            Egress=item["egress"],
            **{key: item["cidr"]},
        )

    def acls(self, filters, resource):
        found = []
        for page in self.caller.paginate(self.ec2, "describe_network_acls", resource, Filters=filters):
            found += page.get("NetworkAcls") or []
        return found

    def read_back(self, acl_ids):
        """``{acl id: entries}`` as the API answers now (what the role verifies); an ACL gone meanwhile is absent."""
        try:
            found = self.caller(
                self.ec2, "describe_network_acls", f"network ACLs {', '.join(acl_ids)}", NetworkAclIds=list(acl_ids)
            ).get("NetworkAcls")
        except step.StepAWSError as err:
            self.module.warn(f"reading the network ACLs back failed: {err}")
            return {}
        return {acl["NetworkAclId"]: entries_of(acl) for acl in found}

    def targets(self):
        """``(acls, vpc_ids)`` for O(subnets) or O(vpc_id); unknown ids fail naming them."""
        subnets = list(dict.fromkeys(s.strip() for s in self.params["subnets"] if s and s.strip()))
        if subnets:
            found = []
            for page in self.caller.paginate(
                self.ec2,
                "describe_subnets",
                f"subnets {', '.join(subnets)}",
                Filters=[{"Name": "subnet-id", "Values": subnets}],
            ):
                found += page.get("Subnets") or []
            missing = [s for s in subnets if s not in {f["SubnetId"] for f in found}]
            if missing:
                raise NACLInputError(f"subnet {', '.join(missing)} does not exist")
            acls = self.acls(
                [{"Name": "association.subnet-id", "Values": subnets}], f"network ACLs of {', '.join(subnets)}"
            )
            vpcs = sorted({f["VpcId"] for f in found})
        elif self.params["vpc_id"]:
            vpc = self.params["vpc_id"]
            self.call(
                "describe_vpcs", f"VPC {vpc!r}", ("InvalidVpcID.NotFound", "InvalidVpcID.Malformed"), VpcIds=[vpc]
            )
            acls = self.acls([{"Name": "vpc-id", "Values": [vpc]}], f"network ACLs of {vpc}")
            vpcs = [vpc]
        else:
            raise NACLInputError("give subnets or vpc_id")
        unique = {acl["NetworkAclId"]: acl for acl in acls}
        return [unique[k] for k in sorted(unique)], vpcs

    def vpc_ranges(self, vpc_ids):
        answer = self.caller(self.ec2, "describe_vpcs", f"VPCs {', '.join(vpc_ids)}", VpcIds=list(vpc_ids))
        ranges = []
        for vpc in answer.get("Vpcs") or []:
            for assoc in vpc.get("CidrBlockAssociationSet") or []:
                ranges.append((assoc["CidrBlock"], f"a CIDR of {vpc['VpcId']}"))
            for assoc in vpc.get("Ipv6CidrBlockAssociationSet") or []:
                if assoc.get("Ipv6CidrBlock"):
                    ranges.append((assoc["Ipv6CidrBlock"], f"a CIDR of {vpc['VpcId']}"))
        return ranges

    # -- contained --------------------------------------------------------------------------------
    def contained(self):
        params = self.params
        try:
            cidrs, rewritten = network.normalise_all(params["cidrs"], "cidrs")
            allow, _ = network.normalise_all(params["allow_list"], "allow_list")
        except ValueError as err:
            raise NACLInputError(str(err)) from None
        if not cidrs:
            raise NACLInputError("cidrs: nothing to deny (give at least one address or CIDR)")
        refusals = network.check_blockable(cidrs, [(c, "allow_list") for c in allow], params["force"])
        if refusals:
            raise NACLInputError(f"refusing to deny: {'; '.join(refusals)} (force=true overrides)")
        if not 1 <= params["max_entries"] <= 40:
            raise NACLInputError(f"max_entries must be between 1 and 40, got {params['max_entries']}")
        if not params["incident_id"] and not self.module.check_mode:
            raise NACLInputError("incident_id is required with state=contained (the release needs it)")
        acls, vpcs = self.targets()
        if not acls:
            raise NACLInputError("no network ACL found for the given subnets or VPC")
        refusals = network.check_blockable(cidrs, self.vpc_ranges(vpcs), params["force"])
        if refusals:
            raise NACLInputError(f"refusing to deny: {'; '.join(refusals)} (force=true overrides)")
        directions = {"ingress": [False], "egress": [True], "both": [False, True]}[params["direction"]]

        plans = {}
        for acl in acls:
            add, covered, covering = [], {}, []
            for egress in directions:
                try:
                    plan = nacl.plan_entries(acl, cidrs, egress, params["max_entries"])
                except ValueError as err:
                    raise NACLInputError(str(err)) from None
                add += plan["add"]
                covering += plan["covering"]
                if plan["covered"]:
                    covered["egress" if egress else "ingress"] = plan["covered"]
            claimed = list(dict.fromkeys(nacl.claim_item(item) for item in add + covering))
            plans[acl["NetworkAclId"]] = (acl, add, covered, claimed)
        new_claims = {}
        if not self.module.check_mode:
            # the claims first: another incident's release must see them before the entries are in place
            for acl_id, (_acl, _add, _covered, claimed) in plans.items():
                new_claims[acl_id] = self.ledger.claim(params["incident_id"], STEP, acl_id, claimed)

        result = {
            "network_acls": sorted(plans),
            "added": {},
            "already_covered": {},
            "normalised": rewritten,
            "before": {},
            "after": {},
            "containment": [],
        }
        for acl_id, (acl, add, covered, claimed) in plans.items():
            done = []
            if not self.module.check_mode:
                for item in add:
                    key = "Ipv6CidrBlock" if network.version_of(item["cidr"]) == "IPV6" else "CidrBlock"
                    try:
                        self.create_entry(acl_id, item, key)
                    except step.StepAWSError as err:
                        # report what is already in place, so a person can release it
                        if done:
                            result["containment"].append(
                                step.containment_entry(params["incident_id"], STEP, acl_id, {"entries": done})
                            )
                        step.fail_step(self.module, err, changed=bool(result["containment"]), **result)
                    done.append(item)
                if add:
                    tags = step.incident_tags(params["incident_id"], STEP)
                    try:
                        self.caller(
                            self.ec2,
                            "create_tags",
                            f"network ACL {acl_id}",
                            Resources=[acl_id],
                            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
                        )
                    except step.StepAWSError as err:
                        self.module.warn(f"the entries are in place, but tagging {acl_id} failed: {err}")
                    added_items = [nacl.claim_item(item) for item in add]
                    self.bookkeeping(
                        lambda a=acl_id, i=added_items: self.ledger.mark_added(params["incident_id"], STEP, a, i)
                    )
            rows = entries_of(acl)
            result["before"][acl_id] = rows
            result["after"][acl_id] = with_entries(rows, add=add)  # check mode's prediction; read back below
            if add:
                result["added"][acl_id] = add
            if add or new_claims.get(acl_id):
                # also when this incident only claimed entries another put there: its release drops the claims
                result["containment"].append(
                    step.containment_entry(
                        params["incident_id"],
                        STEP,
                        acl_id,
                        {"entries": add},
                        vpc_id=acl.get("VpcId"),
                        claimed=claimed,
                    )
                )
            if covered:
                result["already_covered"][acl_id] = covered
        if not self.module.check_mode:
            result["after"].update(self.read_back(sorted(plans)))
        count = sum(len(v) for v in result["added"].values())
        result["changed"] = bool(count or any(new_claims.values()))
        prefix = "check mode: would add" if self.module.check_mode else "added"
        if count:
            result["msg"] = f"{prefix} {count} DENY entries to {len(result['added'])} network ACL(s)"
        else:
            result["msg"] = f"no change: every CIDR is already denied on {len(plans)} network ACL(s)"
        return result

    # -- released ---------------------------------------------------------------------------------
    def released(self):
        params = self.params
        incident = params["incident_id"]
        mine, ignored = [], []
        for entry in params["containments"]:
            if not isinstance(entry, dict):
                continue
            if (
                entry.get("step") != STEP
                or (incident and entry.get("incident_id") != incident)
                or not entry.get("resource")
            ):
                ignored.append(entry.get("id"))
                continue
            recorded = (entry.get("changed") or {}).get("entries")
            if not isinstance(recorded, list):
                raise NACLInputError(
                    f"containment {entry.get('id')!r} has no changed.entries list: not a nacl_block entry"
                )
            mine.append(entry)
        by_acl = {}
        for entry in mine:
            by_acl.setdefault(entry["resource"], []).append(entry)
        result = {
            "changed": False,
            "network_acls": sorted(by_acl),
            "removed": {},
            "left_alone": {},
            "before": {},
            "after": {},
            "release": [],
            "gone": [],
            "kept": {},
            "ignored_entries": ignored,
        }
        for acl_id, entries in sorted(by_acl.items()):
            try:
                found = self.caller(
                    self.ec2, "describe_network_acls", f"network ACL {acl_id}", NetworkAclIds=[acl_id]
                ).get("NetworkAcls")
            except step.StepAWSError as err:
                if err.code not in ("InvalidNetworkAclID.NotFound", "InvalidNetworkAclID.Malformed"):
                    raise
                found = []
            owner = incident or entries[0].get("incident_id")
            ours = [nacl.claim_item(item) for entry in entries for item in entry["changed"]["entries"]]
            claimed = list(dict.fromkeys([i for entry in entries for i in entry.get("claimed") or []] + ours))
            if not found:
                left = {"network_acl_deleted": True}
                delete = []
                rows = []
                if not self.module.check_mode:
                    self.bookkeeping(lambda a=acl_id, c=claimed, o=owner: self.ledger.drop(o, a, c))
            else:
                # what no other unreleased incident still claims (the ledger); the rest is kept, for whom is said
                selection = self.ledger.select(owner, acl_id, claimed, ours)
                recorded = [e for e in (nacl.entry_of_item(i) for i in selection["remove"]) if e is not None]
                delete, left = nacl.plan_removal(found[0], recorded)
                if selection["kept"]:
                    left["kept_for_others"] = selection["kept"]
                    result["kept"][acl_id] = selection["kept"]
                rows = entries_of(found[0])
            if not self.module.check_mode:
                for item in delete:
                    self.caller(
                        self.ec2,
                        "delete_network_acl_entry",
                        f"network ACL {acl_id}",
                        NetworkAclId=acl_id,
                        RuleNumber=item["rule_number"],
                        Egress=item["egress"],
                    )
                if found:
                    self.bookkeeping(
                        lambda a=acl_id, c=claimed, r=selection["remove"], o=owner: self.ledger.settle(
                            o, a, c, removed=r
                        )
                    )
            result["before"][acl_id] = rows
            result["after"][acl_id] = with_entries(rows, remove=delete)
            if found and not self.module.check_mode:
                result["after"].update(self.read_back([acl_id]))
            if not found:
                result["gone"].append(acl_id)
            if delete:
                result["removed"][acl_id] = delete
                result["changed"] = True
            if left:
                result["left_alone"][acl_id] = left
            result["release"].append(
                step.release_entry(
                    incident or entries[0].get("incident_id"),
                    STEP,
                    acl_id,
                    released_ids=[e["id"] for e in entries if e.get("id")],
                    restored={"removed": delete},
                    left_alone=left,
                    **({"gone": True} if not found else {}),
                )
            )
        count = sum(len(v) for v in result["removed"].values())
        prefix = "check mode: would remove" if self.module.check_mode else "removed"
        if not mine:
            result["msg"] = "nothing to release: no nacl_block containment of this incident"
        else:
            result["msg"] = f"{prefix} {count} DENY entries from {len(by_acl)} network ACL(s)"
            meanwhile = sorted(
                acl
                for acl, left in result["left_alone"].items()
                if set(left) - {"network_acl_deleted", "kept_for_others"}
            )
            for acl_id, kept in sorted(result["kept"].items()):
                shown = "; ".join(f"{item} for {', '.join(who)}" for item, who in kept.items())
                result["msg"] += f"; kept on {acl_id}: {shown} (still claimed)"
            if meanwhile:
                result["msg"] += f"; left alone entries changed meanwhile on {', '.join(meanwhile)}"
            if result["gone"]:
                result["msg"] += f"; gone (recorded as released): {', '.join(result['gone'])}"
        return result


def run(module, result):
    runner = Step(module)
    return runner.contained() if module.params["state"] == "contained" else runner.released()


def main():
    run_aws_step(run, "containment", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
