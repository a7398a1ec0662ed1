#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: elbv2_target_drain
short_description: Deregister load balancer targets (given ones, or all in an Availability Zone) and wait for draining
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Performs the step "reduce traffic (deregister targets)" of an incident in one call, for one or more ALB/NLB
    target groups. With O(state=contained) it deregisters the given O(targets), or every target in
    O(availability_zone), and waits until they have finished draining (the target group's deregistration delay).
  - The result's RV(containment) (one entry per target group) records exactly which targets (id and port) were
    deregistered; the target groups are tagged with the incident.
  - With O(state=released) it registers again exactly the targets the given O(containments) deregistered, with
    their ports; a target someone registered again meanwhile is left alone and reported.
  - Each drained target is claimed in the containment ledger (item C(<id>:<port>) on the target group ARN), also a
    target another incident already drained; a release registers a target again only when no other unreleased
    incident still claims it (RV(kept) says for whom), so a target drained by two incidents comes back with the last
    release.
  - Safety, it refuses to deregister every registered target of a target group (the service would go down)
    unless O(allow_empty=true).
  - Re-runs change nothing; in check mode nothing is changed. Bad input (an unknown target group, a malformed
    target, a bad zone) fails naming the value before anything is changed.
options:
  target_groups:
    description: Target group ARNs or names.
    type: list
    elements: str
    required: true
  targets:
    description:
      - The targets to deregister, each a dict with C(id) (instance id, IP address or Lambda ARN) and optionally
        C(port) (without it, every port of that id). Required with O(state=contained) unless O(availability_zone).
    type: list
    elements: raw
    default: []
  availability_zone:
    description:
      - Deregister every target in this Availability Zone (instances by their placement, IP targets by the subnet of
        the target group's VPC holding them, or their registered zone).
    type: str
  allow_empty:
    description: Allow deregistering every registered target of a target group.
    type: bool
    default: false
  wait:
    description: Wait until the deregistered targets have finished draining (with O(state=contained)).
    type: bool
    default: true
  wait_timeout:
    description: How long to wait, in seconds. A timeout warns and reports what is still draining.
    type: int
    default: 300
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.INCIDENT
  - firebreak.runbooks.step.CONTAINMENT
  - firebreak.runbooks.step.CLAIMS
  - firebreak.runbooks.step.ATTRIBUTES
notes:
  - O(incident_id) is required with O(state=contained) outside check mode.
  - moto (the sandbox) deregisters targets at once (no C(draining) state, no deregistration delay) and reports every
    registered target healthy.
seealso:
  - module: community.aws.elb_target
"""

EXAMPLES = r"""
- name: Take the targets in the failing zone out of the load balancer
  firebreak.runbooks.elbv2_target_drain:
    target_groups: [shop-api-tg]
    availability_zone: us-east-1a
    incident_id: INC-2026-042

- name: Drain one instance from two target groups
  firebreak.runbooks.elbv2_target_drain:
    target_groups: [web-tg, admin-tg]
    targets:
      - id: i-0123456789abcdef0
    incident_id: INC-2026-042

- name: Put them back
  firebreak.runbooks.elbv2_target_drain:
    target_groups: [shop-api-tg]
    state: released
    incident_id: INC-2026-042
    containments: "{{ lookup('firebreak.runbooks.containments', 'alb_drain', incident_id='INC-2026-042',
      wantlist=True) }}"
"""

RETURN = r"""
msg:
  description: What was done.
  returned: always
  type: str
  sample: "deregistered 1 target(s) from 1 target group(s); drained"
before:
  description: Registered targets (C(id), C(port), C(state)) per target group ARN before the step.
  returned: always
  type: dict
after:
  description: Registered targets per target group ARN after the step (predicted in check mode).
  returned: always
  type: dict
not_registered:
  description: Requested targets that are not registered in a target group (already drained, or never there).
  returned: when O(state=contained)
  type: dict
step_kind: {description: "The kind of step, see C(docs/contract.md).", returned: always, type: str, sample: containment}
predicted: {description: C(true) in check mode (RV(after) is then a prediction)., returned: always, type: bool}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str, sample: GetAlias}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
pending:
  description: Targets still draining when O(wait_timeout) passed, per target group ARN.
  returned: when O(state=contained)
  type: dict
containment:
  description:
    - One entry per target group whose targets were deregistered, C(changed.deregistered) listing C(id), C(port)
      (and C(availability_zone) when registered with one), C(changed.tags) the tags set on the target group.
    - Empty when nothing changed.
  returned: always
  type: list
  elements: dict
release:
  description:
    - One entry per released containment, with C(releases), C(restored) and C(left_alone); C(gone=true) when its
      target group no longer exists.
    - C(left_alone.kept_for_others) lists the targets kept drained because another unreleased incident claims them.
  returned: when O(state=released)
  type: list
  elements: dict
kept:
  description:
    - Targets (C(<id>:<port>)) left drained because another unreleased incident still claims them, with who, per
      target group ARN. The last claimant's release registers them again.
  returned: when O(state=released)
  type: dict
  sample: {"arn:aws:elasticloadbalancing:us-east-1:1234:targetgroup/shop-api-tg/0123": {"10.20.1.10:8000": ["INC-B"]}}
gone:
  description: Target groups (ARNs) deleted meanwhile; their entries were recorded as released, the others released.
  returned: when O(state=released)
  type: list
  elements: str
diff:
  description: Registered targets per target group before and after, when run with C(--diff).
  returned: when diff mode is on
  type: dict
"""

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import elbv2_drain as drain
from ansible_collections.firebreak.runbooks.plugins.module_utils.containment import ledger
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    INCIDENT_OPTION,
    RETRY_BUDGET_OPTION,
    Caller,
    StepAWSError,
    aws_client,
    containment_entry,
    incident_tags,
    release_entry,
    run_aws_step,
)

ARGUMENT_SPEC = dict(
    target_groups=dict(type="list", elements="str", required=True),
    **ledger.CONTAINMENT_OPTIONS,
    targets=dict(type="list", elements="raw", default=[]),
    availability_zone=dict(type="str"),
    allow_empty=dict(type="bool", default=False),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=300),
    **ledger.CLAIMS_OPTIONS,
    **RETRY_BUDGET_OPTION,
    **INCIDENT_OPTION,
)


def claims_ledger(module, caller):
    return ledger.for_module(module, caller)


def bookkeeping(module, record):
    ledger.bookkeeping(module, "the targets were changed", record)


def item(target):
    return f"{target['id']}:{target.get('port')}"


def target_of(value):
    """``{"id", "port"}`` from an item ``<id>:<port>`` (the id may hold colons: an IPv6 address, a Lambda ARN)."""
    ident, _, port = value.rpartition(":")
    return {"id": ident, "port": int(port) if port.isdigit() else None}


def drained_by_others(state, current, requested, zone, zone_of):
    """Targets another incident drained (claimed in the ledger, not registered now) that this request covers."""
    now = {item(t) for t in current}
    found = []
    for key, kinds in state.items():
        value = ledger.unpart(key)
        if not kinds[ledger.CLAIM] or value in now:
            continue
        target = target_of(value)
        hit = any(w["id"] == target["id"] and w["port"] in (None, target["port"]) for w in requested or [])
        if zone and zone_of is not None and zone_of(target) == zone:
            hit = True
        if hit:
            found.append(target)
    return found


def _view(targets):
    return sorted(({"id": t["id"], "port": t["port"]} for t in targets), key=lambda t: (t["id"], t["port"] or 0))


def read_groups(elbv2, caller, refs):
    groups = []
    for ref in refs:
        group = drain.describe_target_group(elbv2, caller, drain.validate_target_group(ref))
        groups.append(group)
    return groups


def contain(module, elbv2, caller):
    params = module.params
    incident_id = params.get("incident_id")
    requested = drain.normalize_targets(params["targets"])
    zone = drain.validate_zone(params["availability_zone"]) if params["availability_zone"] else None
    if not requested and not zone:
        raise drain.DrainInputError("give targets or availability_zone: which targets to deregister")
    if not incident_id and not module.check_mode:
        raise drain.DrainInputError("incident_id is required to drain targets (state=contained)")
    if params["wait_timeout"] < 0:
        raise drain.DrainInputError(f"wait_timeout must be >= 0, got {params['wait_timeout']}")

    groups = read_groups(elbv2, caller, params["target_groups"])
    plans, before, after, not_registered = [], {}, {}, {}
    ec2 = None
    for group in groups:
        arn = group["TargetGroupArn"]
        current = drain.registered(drain.target_health(elbv2, caller, arn))
        # the ledger of this target group: targets another incident drained are claimed too (not changed)
        state = claims_ledger(module, caller).state(arn) if incident_id and not module.check_mode else {}
        zone_of = None
        if zone:
            ec2 = ec2 or aws_client(module, "ec2")
            known = [target_of(ledger.unpart(k)) for k, v in state.items() if v[ledger.CLAIM]]
            zone_of = zone_lookup(ec2, caller, group, current + known)
        selected, missing = drain.select_targets(current, requested, zone, zone_of)
        others = drained_by_others(state, current, requested, zone, zone_of)
        missing = [w for w in missing if not any(w["id"] == t["id"] for t in others)]
        before[arn] = _view(current)
        keys = {(t["id"], t["port"]) for t in selected}
        after[arn] = [t for t in before[arn] if (t["id"], t["port"]) not in keys]
        if missing:
            not_registered[arn] = missing
        if selected and not after[arn] and not params["allow_empty"]:
            raise drain.DrainInputError(
                f"draining {len(selected)} target(s) would leave target group {group['TargetGroupName']!r} with no "
                "registered target (the service would go down); set allow_empty=true if that is intended"
            )
        if selected or others:
            plans.append((group, selected, others))

    result = {
        "changed": bool(plans),
        "before": before,
        "after": after,
        "not_registered": not_registered,
        "pending": {},
        "containment": [],
    }
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    total = sum(len(selected) for _, selected, _ in plans)
    if module.check_mode:
        result["msg"] = f"check mode: would deregister {total} target(s) from {len(plans)} target group(s)"
        return result

    entries = []
    claims = claims_ledger(module, caller)
    try:
        for group, selected, others in plans:
            arn = group["TargetGroupArn"]
            recorded = [{k: v for k, v in t.items() if k != "zone"} for t in selected]
            claimed = list(dict.fromkeys(item(t) for t in recorded + others))
            # the claims first: another incident's release must see them before the targets are deregistered
            new_claims = claims.claim(incident_id, drain.STEP, arn, claimed)
            if not recorded and not new_claims:
                continue
            tags = {}
            if recorded:
                tags = drain.plan_tags(drain.tags_of(elbv2, caller, arn), incident_tags(incident_id, drain.STEP))
                drain.add_tags(elbv2, caller, arn, {k: v["value"] for k, v in tags.items()})
                drain.deregister(elbv2, caller, arn, recorded)
                added = [item(t) for t in recorded]
                bookkeeping(module, lambda arn=arn, added=added: claims.mark_added(incident_id, drain.STEP, arn, added))
            changed = {"deregistered": recorded}
            if tags:
                changed["tags"] = tags
            entries.append(
                containment_entry(
                    incident_id,
                    drain.STEP,
                    arn,
                    changed,
                    target_group_name=group["TargetGroupName"],
                    claimed=claimed,
                )
            )
    except (StepAWSError, ledger.LedgerError) as err:
        module.fail_json(
            msg=f"draining failed after {len(entries)} target group(s): {err}",
            changed=bool(entries),
            containment=entries,
            before=before,
            **(err.result() if isinstance(err, StepAWSError) else {}),
        )
    result["containment"] = entries
    result["changed"] = bool(entries)
    if params["wait"]:
        for entry in entries:
            if not entry["changed"]["deregistered"]:
                continue  # only claimed (another incident drained them): nothing to wait for
            pending = drain.wait_drained(
                elbv2, caller, entry["resource"], entry["changed"]["deregistered"], params["wait_timeout"]
            )
            if pending:
                result["pending"][entry["resource"]] = pending
        if result["pending"]:
            module.warn(f"still draining after {params['wait_timeout']}s: {result['pending']}")
    for group in groups:
        arn = group["TargetGroupArn"]
        result["after"][arn] = _view(drain.registered(drain.target_health(elbv2, caller, arn)))
    state = "; drained" if params["wait"] and not result["pending"] else ""
    result["msg"] = f"deregistered {total} target(s) from {len(entries)} target group(s){state}"
    shared = sum(len(e["claimed"]) - len(e["changed"]["deregistered"]) for e in entries)
    if shared:
        result["msg"] += f"; claimed {shared} target(s) another incident had already drained"
    if not entries:
        result["msg"] = "no change: none of the targets is registered"
    return result


def zone_lookup(ec2, caller, group, current):
    """``target -> Availability Zone`` for the targets of ``group``."""
    zones = {}
    if group.get("TargetType") == "instance":
        zones = drain.instance_zones(ec2, caller, {t["id"] for t in current})
    subnets = None

    def zone_of(target):
        nonlocal subnets
        if target.get("availability_zone") and target["availability_zone"] != "all":
            return target["availability_zone"]
        if target["id"] in zones:
            return zones[target["id"]]
        if group.get("TargetType") == "ip":
            if subnets is None:
                subnets = drain.vpc_subnets(ec2, caller, group.get("VpcId")) if group.get("VpcId") else []
            return drain.zone_of_ip(target["id"], subnets)
        return None

    return zone_of


def release(module, elbv2, caller):
    params = module.params
    incident_id = params.get("incident_id")
    groups, gone_refs = {}, {}
    for ref in params["target_groups"]:
        try:
            group = drain.describe_target_group(elbv2, caller, drain.validate_target_group(ref))
        except drain.DrainInputError as err:
            gone_refs[ref] = str(err)  # deleted meanwhile: its entries are reported gone, the rest released
            continue
        groups[group["TargetGroupArn"]] = group
    entries, gone = [], []
    for entry in params["containments"]:
        if not isinstance(entry, dict) or not entry.get("id") or not isinstance(entry.get("changed"), dict):
            raise drain.DrainInputError(f"containments: not a containment entry: {str(entry)[:200]!r}")
        arn = str(entry.get("resource") or "")
        name = arn.split("/")[1] if arn.count("/") >= 2 else None
        if entry.get("step") == drain.STEP and arn not in groups and (arn in gone_refs or name in gone_refs):
            gone.append(entry)
            continue
        if entry.get("step") != drain.STEP or entry.get("resource") not in groups:
            module.warn(
                f"ignoring containment {entry['id']}: step {entry.get('step')!r}, resource {entry.get('resource')!r}"
            )
            continue
        entries.append(entry)
    before, after, releases, total, kept_all = {}, {}, [], 0, {}
    settles = []
    for entry in entries:
        arn = entry["resource"]
        current = drain.registered(drain.target_health(elbv2, caller, arn))
        before[arn] = _view(current)
        owner = entry.get("incident_id") or incident_id
        ours = [item(t) for t in entry["changed"].get("deregistered") or []]
        claimed = list(dict.fromkeys(list(entry.get("claimed") or []) + ours))
        selection = {"remove": ours, "kept": {}}
        if owner:
            # what no other unreleased incident still claims (the ledger); the rest stays drained, for whom is said
            selection = claims_ledger(module, caller).select(owner, arn, claimed, ours)
            settles.append((owner, arn, claimed, selection["remove"]))
        removable = set(selection["remove"])
        wanted = [t for t in entry["changed"].get("deregistered") or [] if item(t) in removable]
        wanted += [target_of(i) for i in selection["remove"] if i not in ours]
        to_register, restored, left = drain.decide_release({"deregistered": wanted}, current)
        if selection["kept"]:
            kept_all[arn] = selection["kept"]
        tags_now = drain.tags_of(elbv2, caller, arn) if entry["changed"].get("tags") else {}
        remove = [
            k
            for k, v in (entry["changed"].get("tags") or {}).items()
            if v.get("previous") is None and tags_now.get(k) == v["value"]
        ]
        total += len(to_register)
        if not module.check_mode:
            try:
                if to_register:
                    drain.register(elbv2, caller, arn, to_register)
                drain.remove_tags(elbv2, caller, arn, remove)
            except StepAWSError as err:
                module.fail_json(
                    msg=f"releasing {entry['id']} on {arn} failed: {err}",
                    changed=bool(releases),
                    release=releases,
                    **err.result(),
                )
        after[arn] = _view(current + [dict(t, state="initial") for t in to_register])
        releases.append(
            release_entry(
                entry.get("incident_id") or incident_id,
                drain.STEP,
                arn,
                [entry["id"]],
                restored={"registered": restored},
                left_alone=dict(
                    {"targets": left} if left else {},
                    **({"kept_for_others": selection["kept"]} if selection["kept"] else {}),
                ),
            )
        )
    if not module.check_mode:
        for owner, arn, claimed, removed in settles:
            bookkeeping(
                module,
                lambda owner=owner, arn=arn, claimed=claimed, removed=removed: claims_ledger(module, caller).settle(
                    owner, arn, claimed, removed=removed
                ),
            )
    for entry in gone:
        owner = entry.get("incident_id") or incident_id
        items = list(
            dict.fromkeys(
                list(entry.get("claimed") or []) + [item(t) for t in entry["changed"].get("deregistered") or []]
            )
        )
        if owner and not module.check_mode:
            bookkeeping(
                module,
                lambda owner=owner, entry=entry, items=items: claims_ledger(module, caller).drop(
                    owner, entry["resource"], items
                ),
            )
        releases.append(
            release_entry(
                entry.get("incident_id") or incident_id,
                drain.STEP,
                entry["resource"],
                [entry["id"]],
                restored={"registered": []},
                left_alone={},
                gone=True,
            )
        )
    gone_arns = list(dict.fromkeys(e["resource"] for e in gone))
    result = {
        "changed": bool(total),
        "before": before,
        "after": after,
        "release": releases,
        "gone": gone_arns,
        "kept": kept_all,
    }
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    verb = "would register" if module.check_mode else "registered"
    left = sum(len(r["left_alone"].get("targets", [])) for r in releases)
    result["msg"] = f"{verb} {total} target(s) again in {len(releases)} target group(s)" + (
        f"; left alone {left} registered again meanwhile" if left else ""
    )
    for kept in kept_all.values():
        for value, who in kept.items():
            result["msg"] += f"; kept {value} for {', '.join(who)} (still claimed)"
    if gone_arns:
        result["msg"] += f"; gone (recorded as released): {', '.join(gone_arns)}"
    if not entries and not gone:
        result["msg"] = "nothing to release"
    return result


def run(module, result):
    caller = Caller(module.params["retry_budget"])
    elbv2 = aws_client(module, "elbv2")
    return contain(module, elbv2, caller) if module.params["state"] == "contained" else release(module, elbv2, caller)


def main():
    run_aws_step(run, "containment", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
