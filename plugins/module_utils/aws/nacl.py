# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Network ACL blocking: the decisions of ``ec2_nacl_block`` (pure, unit-tested without AWS).

A network ACL evaluates its entries in rule-number order and the first match wins, so a DENY only blocks
when its number is lower than every ALLOW that would match the same traffic.  ``plan_entries`` places each
new DENY below the lowest-numbered ALLOW of its direction, on numbers no entry uses, counting down from
just under that ALLOW (the low numbers stay free for people); it leaves out a CIDR an earlier DENY
already covers.  The default rule (32767, ``*``) is not an entry one can number or remove.
"""

from __future__ import annotations

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import network

DEFAULT_RULE = 32767
MAX_RULE = 32766
DEFAULT_MAX_ENTRIES = 20  # AWS quota: rules per network ACL per direction (adjustable up to 40)


def entry_cidr(entry):
    return entry.get("CidrBlock") or entry.get("Ipv6CidrBlock")


def direction_entries(acl, egress):
    """The numbered entries of one direction (the default ``*`` rule left out)."""
    return [e for e in acl.get("Entries") or [] if bool(e.get("Egress")) == egress and e["RuleNumber"] < DEFAULT_RULE]


def first_allow(entries):
    numbers = [e["RuleNumber"] for e in entries if e.get("RuleAction") == "allow"]
    return min(numbers) if numbers else DEFAULT_RULE


def plan_entries(acl, cidrs, egress, max_entries=DEFAULT_MAX_ENTRIES):
    """New DENY entries for ``cidrs`` (normalised) in one direction of ``acl``.

    Returns ``{"add": [{"rule_number", "cidr", "egress"}], "covered": {cidr: "rule N (cidr)"}, "covering":
    [{"rule_number", "cidr", "egress"} of the entries that cover]}``; raises
    ``ValueError`` naming the ACL when the numbers below the first ALLOW or the entry quota run out."""
    entries = direction_entries(acl, egress)
    ceiling = first_allow(entries)
    used = {e["RuleNumber"] for e in entries}
    denies = []
    for entry in entries:
        if entry.get("RuleAction") == "deny" and entry["RuleNumber"] < ceiling and entry.get("Protocol") == "-1":
            try:
                denies.append((network.parse_cidr(entry_cidr(entry)), entry["RuleNumber"]))
            except ValueError:
                continue
    index = network.CoverIndex(net for net, _ in denies)
    numbers = {(net.version, int(net.network_address), net.prefixlen): number for net, number in denies}
    add, covered, covering = [], {}, []
    candidate = ceiling - 1
    direction = "egress" if egress else "ingress"
    for cidr in cidrs:
        net = network.parse_cidr(cidr)
        cover = index.cover(net)
        if cover is not None:
            number = numbers[(cover.version, int(cover.network_address), cover.prefixlen)]
            covered[cidr] = f"rule {number} ({cover})"
            covering.append({"rule_number": number, "cidr": str(cover), "egress": egress})
            continue
        while candidate >= 1 and candidate in used:
            candidate -= 1
        if candidate < 1:
            raise ValueError(
                f"network ACL {acl['NetworkAclId']}: no free {direction} rule number below its first ALLOW "
                f"(rule {ceiling}) for {cidr}; renumber its entries"
            )
        if len(entries) + len(add) + 1 > max_entries:
            raise ValueError(
                f"network ACL {acl['NetworkAclId']}: {direction} would hold {len(entries) + len(add) + 1} entries, "
                f"over the quota of {max_entries} (max_entries) when adding {cidr}"
            )
        add.append({"rule_number": candidate, "cidr": cidr, "egress": egress})
        used.add(candidate)
        index.add(net)
        numbers[(net.version, int(net.network_address), net.prefixlen)] = candidate
    return {"add": add, "covered": covered, "covering": covering}


def claim_item(item):
    """The containment ledger's item for a DENY entry: ``<direction> <rule number> <cidr>``."""
    return f"{'egress' if item['egress'] else 'ingress'} {item['rule_number']} {item['cidr']}"


def entry_of_item(text):
    """The entry (``rule_number``, ``cidr``, ``egress``) of a ledger item, else None."""
    parts = str(text).split(" ")
    if len(parts) != 3 or parts[0] not in ("ingress", "egress") or not parts[1].isdigit():
        return None
    return {"rule_number": int(parts[1]), "cidr": parts[2], "egress": parts[0] == "egress"}


def plan_removal(acl, recorded):
    """Which recorded entries (``rule_number``, ``cidr``, ``egress``) to delete, and which to leave alone.

    An entry is deleted only when the ACL still has, at that number and direction, a DENY of that CIDR; an
    entry someone replaced or removed meanwhile is left alone."""
    present = {(bool(e.get("Egress")), e["RuleNumber"]): e for e in acl.get("Entries") or []}
    delete, left = [], {}
    for item in recorded:
        entry = present.get((bool(item["egress"]), item["rule_number"]))
        if entry is None:
            left.setdefault("already_removed", []).append(item)
            continue
        same = entry.get("RuleAction") == "deny"
        try:
            same = same and network.normalise_cidr(entry_cidr(entry)) == network.normalise_cidr(item["cidr"])
        except ValueError:
            same = False
        if same:
            delete.append(item)
        else:
            left.setdefault("replaced", []).append(dict(item, now=f"{entry.get('RuleAction')} {entry_cidr(entry)}"))
    return delete, left
