"""nacl_block: rule-number placement and exact removal (module_utils/aws/nacl.py), without AWS."""

from __future__ import annotations

import sys

import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import nacl


def _entry(number, action, cidr, egress=False, protocol="-1"):
    key = "Ipv6CidrBlock" if ":" in cidr else "CidrBlock"
    return {"RuleNumber": number, "RuleAction": action, key: cidr, "Egress": egress, "Protocol": protocol}


def _acl(*entries):
    default = [_entry(32767, "deny", "0.0.0.0/0"), _entry(32767, "deny", "0.0.0.0/0", egress=True)]
    return {"NetworkAclId": "acl-1", "Entries": [*entries, *default]}


def test_new_denies_go_below_the_first_allow_on_free_numbers():
    acl = _acl(_entry(100, "allow", "0.0.0.0/0"), _entry(99, "allow", "198.51.100.0/24", protocol="6"))
    plan = nacl.plan_entries(acl, ["203.0.113.0/24", "2001:db8::/32"], egress=False)
    assert plan["add"] == [
        {"rule_number": 98, "cidr": "203.0.113.0/24", "egress": False},
        {"rule_number": 97, "cidr": "2001:db8::/32", "egress": False},
    ]


def test_directions_are_numbered_separately():
    acl = _acl(_entry(100, "allow", "0.0.0.0/0"), _entry(200, "allow", "0.0.0.0/0", egress=True))
    assert nacl.plan_entries(acl, ["203.0.113.0/24"], egress=True)["add"][0]["rule_number"] == 199


def test_a_cidr_an_earlier_deny_covers_changes_nothing():
    acl = _acl(_entry(100, "allow", "0.0.0.0/0"), _entry(50, "deny", "203.0.113.0/24"))
    plan = nacl.plan_entries(acl, ["203.0.113.9/32", "192.0.2.1/32"], egress=False)
    assert plan["covered"] == {"203.0.113.9/32": "rule 50 (203.0.113.0/24)"}
    assert plan["add"] == [{"rule_number": 99, "cidr": "192.0.2.1/32", "egress": False}]


def test_a_deny_after_the_allow_does_not_count_as_covering():
    acl = _acl(_entry(100, "allow", "0.0.0.0/0"), _entry(150, "deny", "203.0.113.0/24"))
    assert nacl.plan_entries(acl, ["203.0.113.9/32"], egress=False)["add"][0]["rule_number"] == 99


def test_no_room_below_the_first_allow_names_the_acl():
    acl = _acl(_entry(1, "allow", "0.0.0.0/0"))
    with pytest.raises(ValueError, match=r"acl-1: no free ingress rule number below its first ALLOW \(rule 1\)"):
        nacl.plan_entries(acl, ["203.0.113.0/24"], egress=False)


def test_the_entry_quota_is_checked():
    acl = _acl(*[_entry(100 + i, "allow", f"10.0.{i}.0/24") for i in range(19)])
    with pytest.raises(ValueError, match=r"over the quota of 20"):
        nacl.plan_entries(acl, ["203.0.113.0/24", "192.0.2.0/24"], egress=False)


def test_removal_deletes_only_unchanged_entries():
    acl = _acl(_entry(98, "deny", "198.51.100.0/24"), _entry(97, "deny", "192.0.2.66/32"))
    recorded = [
        {"rule_number": 98, "cidr": "203.0.113.0/24", "egress": False},
        {"rule_number": 97, "cidr": "192.0.2.66/32", "egress": False},
        {"rule_number": 96, "cidr": "192.0.2.77/32", "egress": False},
    ]
    delete, left = nacl.plan_removal(acl, recorded)
    assert delete == [recorded[1]]
    assert left == {"replaced": [dict(recorded[0], now="deny 198.51.100.0/24")], "already_removed": [recorded[2]]}
