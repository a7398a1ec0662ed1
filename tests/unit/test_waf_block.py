"""waf_block: CIDR normalisation, refusals and merge plans (module_utils/network.py) and the WAFv2
decisions (module_utils/aws/wafv2.py), without AWS."""

from __future__ import annotations

import sys

import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import network, wafv2
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError

IP_SET_ARN = "arn:aws:wafv2:us-east-1:123456789012:regional/ipset/blocklist/af7ab5ee-e53c-46fe-a48f-9c51339cea50"


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("203.0.113.66", "203.0.113.66/32"),
        ("203.0.113.66/32", "203.0.113.66/32"),
        ("10.0.0.5/24", "10.0.0.0/24"),
        (" 198.51.100.7/24 ", "198.51.100.0/24"),
        ("2001:0DB8:0000:0000::1", "2001:db8::1/128"),
        ("2001:DB8:BEEF:1::/48", "2001:db8:beef::/48"),
    ],
)
def test_normalise(given, normal):
    assert network.normalise_cidr(given) == normal


@pytest.mark.parametrize("bad", ["203.0.113.300", "not-an-ip", "10.0.0.0/33", "", None, "1.2.3.4/-1", "::g"])
def test_invalid_cidr_names_the_value(bad):
    with pytest.raises(ValueError, match=r"invalid CIDR"):
        network.parse_cidr(bad)


def test_normalise_all_reports_rewrites_drops_duplicates_and_names_all_invalid():
    normal, rewritten = network.normalise_all(["10.0.0.5/24", "10.0.0.0/24", "1.2.3.4", "2001:DB8::1"])
    assert normal == ["10.0.0.0/24", "1.2.3.4/32", "2001:db8::1/128"]
    assert rewritten == {"10.0.0.5/24": "10.0.0.0/24", "2001:DB8::1": "2001:db8::1/128"}
    with pytest.raises(ValueError) as err:
        network.normalise_all(["1.2.3.4", "x", "1.2.3.999"], "addresses")
    assert "'x'" in str(err.value) and "'1.2.3.999'" in str(err.value) and "addresses" in str(err.value)


def test_check_blockable_refuses_everything_and_allow_listed_ranges_unless_forced():
    allow = [("10.20.0.0/16", "a CIDR of vpc-1"), ("2001:db8::/32", "allow_list")]
    refusals = network.check_blockable(
        ["0.0.0.0/0", "::/0", "10.20.1.5/32", "10.0.0.0/8", "2001:db8:1::/48", "203.0.113.1/32"], allow
    )
    assert refusals == [
        "0.0.0.0/0 would block every IPv4 address",
        "::/0 would block every IPv6 address",
        "10.20.1.5/32 overlaps the allow-listed range 10.20.0.0/16 (a CIDR of vpc-1)",
        "10.0.0.0/8 overlaps the allow-listed range 10.20.0.0/16 (a CIDR of vpc-1)",
        "2001:db8:1::/48 overlaps the allow-listed range 2001:db8::/32 (allow_list)",
    ]
    assert network.check_blockable(["0.0.0.0/0", "10.20.1.5/32"], allow, force=True) == []


def test_plan_additions_skips_covered_addresses_and_never_rewrites_existing():
    existing = ["10.0.0.0/8", "2001:DB8::1/128", "garbage"]
    plan = network.plan_additions(
        existing, ["10.1.2.3/32", "2001:db8::1/128", "2001:db8::/32", "2001:db8::5/128", "1.1.1.1/32", "1.1.1.1/32"]
    )
    assert plan["add"] == ["2001:db8::/32", "1.1.1.1/32"]
    assert plan["covered"] == {
        "10.1.2.3/32": "10.0.0.0/8",
        "2001:db8::1/128": "2001:db8::1/128",
        "2001:db8::5/128": "2001:db8::/32",
    }


def test_plan_additions_of_ten_thousand_is_fast():
    existing = [f"10.{i // 256}.{i % 256}.0/24" for i in range(5000)]
    wanted = [f"198.{i // 65536}.{(i // 256) % 256}.{i % 256}/32" for i in range(10000)]
    plan = network.plan_additions(existing, wanted)
    assert len(plan["add"]) == 10000


def test_plan_removals_uses_the_stored_spelling_and_reports_missing():
    plan = network.plan_removals(
        ["192.0.2.10/32", "2001:DB8::1/128", "198.51.100.99/32"], ["2001:db8::1/128", "203.0.113.0/28"]
    )
    assert plan == {
        "remove": ["2001:DB8::1/128"],
        "kept": ["192.0.2.10/32", "198.51.100.99/32"],
        "missing": ["203.0.113.0/28"],
    }


def test_parse_arn():
    assert wafv2.parse_arn(IP_SET_ARN, "ipset") == {
        "scope": "REGIONAL",
        "name": "blocklist",
        "id": "af7ab5ee-e53c-46fe-a48f-9c51339cea50",
        "arn": IP_SET_ARN,
    }
    assert wafv2.parse_arn(IP_SET_ARN, "webacl") is None
    assert wafv2.parse_arn("blocklist", "ipset") is None
    cloudfront = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/edge/0123abcd"
    assert wafv2.parse_arn(cloudfront, "webacl")["scope"] == "CLOUDFRONT"


def _rule(name, statement, action=None, priority=0):
    return {"Name": name, "Priority": priority, "Statement": statement, "Action": action or {"Block": {}}}


def test_block_rules_count_plain_and_or_blocks_only():
    ref = {"IPSetReferenceStatement": {"ARN": IP_SET_ARN}}
    acl = {
        "Rules": [
            _rule("count", ref, {"Count": {}}, 0),
            _rule("not", {"NotStatement": {"Statement": ref}}, priority=1),
            _rule(
                "and",
                {"AndStatement": {"Statements": [ref, {"GeoMatchStatement": {"CountryCodes": ["NZ"]}}]}},
                priority=2,
            ),
            _rule(
                "or", {"OrStatement": {"Statements": [{"IPSetReferenceStatement": {"ARN": "other"}}, ref]}}, priority=4
            ),
            _rule("plain", ref, priority=3),
        ]
    }
    assert wafv2.block_rules(acl, IP_SET_ARN) == ["plain", "or"]
    assert wafv2.ip_set_arns_in(acl) == [IP_SET_ARN, "other"]
    assert [use.split(" ")[0] for use in wafv2.other_uses(acl, IP_SET_ARN)] == ["count", "not", "and"]
    assert wafv2.match_ip_set("blocklist", [IP_SET_ARN]) == IP_SET_ARN
    assert wafv2.match_ip_set("nope", [IP_SET_ARN]) is None


class FakeCaller:
    """Stands in for step.Caller: answers GetIPSet from a list of reads and fails UpdateIPSet ``conflicts`` times."""

    def __init__(self, reads, conflicts):
        self.reads, self.conflicts, self.written = list(reads), conflicts, []

    def __call__(self, client, method, resource=None, **params):
        if method == "get_ip_set":
            return {"IPSet": self.reads.pop(0), "LockToken": f"t{len(self.reads)}"}
        if method == "update_ip_set":
            if self.conflicts:
                self.conflicts -= 1
                raise StepAWSError("UpdateIPSet", wafv2.LOCK_CONFLICT, "changed meanwhile", resource)
            self.written.append(params)
            return {"NextLockToken": "n"}
        raise AssertionError(method)


def _set(addresses):
    return {"Name": "blocklist", "Id": "id", "ARN": IP_SET_ARN, "Description": "kept", "Addresses": addresses}


def test_read_merge_update_re_reads_after_a_conflict_and_keeps_the_other_writer():
    caller = FakeCaller([_set(["192.0.2.10/32"]), _set(["192.0.2.10/32", "198.51.100.99/32"])], conflicts=1)

    def plan(current):
        return current["Addresses"] + ["203.0.113.66/32"]

    ref = wafv2.parse_arn(IP_SET_ARN, "ipset")
    _, written, conflicts = wafv2.read_merge_update(caller, None, ref, "REGIONAL", plan, 3, sleep=lambda _: None)
    assert conflicts == 1
    assert written == ["192.0.2.10/32", "198.51.100.99/32", "203.0.113.66/32"]
    assert caller.written[0]["LockToken"] == "t0" and caller.written[0]["Description"] == "kept"


def test_read_merge_update_gives_up_after_the_bound():
    caller = FakeCaller([_set([])] * 3, conflicts=5)
    ref = wafv2.parse_arn(IP_SET_ARN, "ipset")
    with pytest.raises(StepAWSError, match="gave up after 3 lock conflicts"):
        wafv2.read_merge_update(caller, None, ref, "REGIONAL", lambda s: ["1.1.1.1/32"], 2, sleep=lambda _: None)
    assert caller.written == []


def test_a_listing_whose_next_marker_comes_round_again_fails_instead_of_listing_for_ever():
    """WAFv2 answers a NextMarker even on the last page, so the loop ends on an empty page; a marker that repeats
    with items would have listed for ever."""
    from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import Caller

    sent = []

    class Lister:
        class meta:
            method_to_api_mapping = {"list_ip_sets": "ListIPSets"}

        def list_ip_sets(self, **params):
            sent.append(params.get("NextMarker"))
            assert len(sent) < 10, "still listing"
            marker = "m2" if params.get("NextMarker") == "m1" else "m1"
            return {"IPSets": [{"Name": f"other-{len(sent)}", "Id": "x", "ARN": "arn"}], "NextMarker": marker}

    with pytest.raises(StepAWSError, match=r"^ListIPSets failed for IP sets in scope REGIONAL: ListingDidNotAdvance"):
        wafv2.find_in_listing(Caller(), Lister(), "list_ip_sets", "IPSets", "blocklist", "REGIONAL", "IP set")
    assert sent == [None, "m1", "m2"]
