"""wafv2_ip_block against the sandbox: merged addresses read back from moto, lock conflicts, release.

Every test asserts the IP set's addresses in moto, not only what the module said.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

BLOCK = "tests/integration/playbooks/waf/block.yml"
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
MUTATING = {"UpdateIPSet", "TagResource", "UntagResource", "CreateIPSet", "UpdateWebACL", "DeleteIPSet"}
SEEDED = ["192.0.2.10/32"]


def addresses(aws) -> list[str]:
    ip_set = aws.manifest["aws"]["waf"]["ip_set"]
    return aws.client("wafv2").get_ip_set(Name=ip_set["name"], Scope="REGIONAL", Id=ip_set["id"])["IPSet"]["Addresses"]


def tags(aws) -> dict:
    arn = aws.manifest["aws"]["waf"]["ip_set"]["arn"]
    listed = aws.client("wafv2").list_tags_for_resource(ResourceARN=arn)["TagInfoForResource"]["TagList"]
    return {t["Key"]: t["Value"] for t in listed}


def result_of(run, task: str = "Block") -> dict:
    data = json.JSONDecoder().raw_decode(run.stdout[run.stdout.index("{") :])[0]
    for play in data["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                return entry["hosts"]["localhost"]
    raise AssertionError(f"task {task!r} not in the output:\n{run.output[-3000:]}")


def block(aws, run_playbook, check=False, diff=False, **options):
    waf = aws.manifest["aws"]["waf"]
    extra = {"waf_ip_set": waf["ip_set"]["name"], "waf_resource_arn": waf["associated_resource_arn"]}
    extra.update({f"waf_{key}": value for key, value in options.items()})
    extra = {key: value for key, value in extra.items() if value is not None}
    run = run_playbook(BLOCK, extra_vars=extra, check=check, diff=diff, env=JSON_OUTPUT)
    return run, result_of(run)


def mutating_calls(aws) -> list[str]:
    return [e["action"] for e in aws.proxy.log() if e["service"] == "wafv2" and e["action"] in MUTATING]


def test_block_merges_normalised_addresses_keeps_existing_and_reruns_unchanged(aws, run_playbook):
    aws.proxy.clear_log()
    run, result = block(
        aws, run_playbook, addresses=["203.0.113.66", "198.51.100.7/24", "192.0.2.10", "203.0.113.66/32"]
    )
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert addresses(aws) == [*SEEDED, "203.0.113.66/32", "198.51.100.0/24"]
    assert result["added"] == ["203.0.113.66/32", "198.51.100.0/24"]
    assert result["already_covered"] == {"192.0.2.10/32": "192.0.2.10/32"}
    assert result["normalised"] == {"198.51.100.7/24": "198.51.100.0/24"}
    assert result["block_rules"] == ["edge-acl/block-firebreak-blocklist"]
    assert result["before"] == {"address_count": 1, "addresses": SEEDED}
    [entry] = result["containment"]
    assert entry["changed"] == {"added": ["203.0.113.66/32", "198.51.100.0/24"]}
    assert entry["resource"] == aws.manifest["aws"]["waf"]["ip_set"]["arn"] and entry["step"] == "waf_block"
    # the shared IP set is not tagged by default: the containment entry is the record (3 calls in all)
    assert mutating_calls(aws) == ["UpdateIPSet"] and "firebreak:incident" not in tags(aws)

    aws.proxy.clear_log()
    run, again = block(aws, run_playbook, addresses=["203.0.113.66", "198.51.100.99"])  # covered by the /24
    assert run.returncode == 0, run.output
    assert again["changed"] is False and again["containment"] == []
    assert again["already_covered"] == {"203.0.113.66/32": "203.0.113.66/32", "198.51.100.99/32": "198.51.100.0/24"}
    assert addresses(aws) == [*SEEDED, "203.0.113.66/32", "198.51.100.0/24"]
    assert not mutating_calls(aws)


def test_tag_ip_set_tags_the_set_with_the_incident_but_not_in_check_mode(aws, run_playbook):
    aws.proxy.clear_log()
    run, result = block(aws, run_playbook, check=True, tag_ip_set=True, addresses=["203.0.113.70"])
    assert run.returncode == 0, run.output
    assert result["changed"] is True and not mutating_calls(aws) and "firebreak:incident" not in tags(aws)

    run, result = block(aws, run_playbook, tag_ip_set=True, addresses=["203.0.113.70"])
    assert run.returncode == 0, run.output
    assert mutating_calls(aws) == ["UpdateIPSet", "TagResource"]
    assert tags(aws)["firebreak:incident"] == result["containment"][0]["incident_id"]
    assert tags(aws)["firebreak:step"] == "waf_block"
    assert addresses(aws) == [*SEEDED, "203.0.113.70/32"]


def test_check_mode_with_diff_changes_nothing(aws, run_playbook):
    aws.proxy.clear_log()
    run, result = block(aws, run_playbook, check=True, diff=True, addresses=["203.0.113.66"])
    assert run.returncode == 0, run.output
    assert result["changed"] is True and result["added"] == ["203.0.113.66/32"]
    assert result["diff"] == {
        "before": {"address_count": 1, "addresses": SEEDED},
        "after": {"address_count": 2, "addresses": [*SEEDED, "203.0.113.66/32"]},
    }
    assert "would add" in result["msg"]
    assert addresses(aws) == SEEDED
    assert "firebreak:incident" not in tags(aws)
    assert not mutating_calls(aws)


def test_ipv6_is_normalised_and_goes_to_an_ipv6_set_only(aws, run_playbook):
    waf = aws.manifest["aws"]["waf"]
    client = aws.client("wafv2")
    v6 = client.create_ip_set(
        Name="blocklist-v6", Scope="REGIONAL", IPAddressVersion="IPV6", Addresses=["2001:DB8:BEEF::/48"]
    )["Summary"]
    acl = client.get_web_acl(Name="edge-acl", Scope="REGIONAL", Id=waf["web_acl"]["id"])
    rules = acl["WebACL"]["Rules"] + [
        {
            "Name": "block-v6",
            "Priority": 1,
            "Statement": {"IPSetReferenceStatement": {"ARN": v6["ARN"]}},
            "Action": {"Block": {}},
            "VisibilityConfig": {
                "SampledRequestsEnabled": False,
                "CloudWatchMetricsEnabled": False,
                "MetricName": "v6",
            },
        }
    ]
    client.update_web_acl(
        Name="edge-acl",
        Scope="REGIONAL",
        Id=waf["web_acl"]["id"],
        DefaultAction={"Allow": {}},
        Rules=rules,
        VisibilityConfig=acl["WebACL"]["VisibilityConfig"],
        LockToken=acl["LockToken"],
    )
    run, result = block(
        aws, run_playbook, ip_set=v6["ARN"], addresses=["2001:0DB8:DEAD:0000::1", "2001:db8:beef:1::/64"]
    )
    assert run.returncode == 0, run.output
    assert result["added"] == ["2001:db8:dead::1/128"]
    assert result["already_covered"] == {"2001:db8:beef:1::/64": "2001:db8:beef::/48"}
    stored = client.get_ip_set(Name="blocklist-v6", Scope="REGIONAL", Id=v6["Id"])["IPSet"]["Addresses"]
    assert stored == ["2001:DB8:BEEF::/48", "2001:db8:dead::1/128"]

    run, result = block(aws, run_playbook, addresses=["2001:db8::1"])  # into the IPv4 set
    assert run.returncode != 0
    assert "2001:db8::1/128" in result["msg"] and "IPV4" in result["msg"]
    assert addresses(aws) == SEEDED


@first_case_in_make_test
@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"addresses": ["203.0.113.300"]}, "'203.0.113.300'"),
        ({"addresses": ["203.0.113.1", "not-an-ip"]}, "'not-an-ip'"),
        ({"addresses": ["0.0.0.0/0"]}, "0.0.0.0/0"),
        ({"addresses": ["::/0"], "ip_set": None}, "::/0"),
        ({"addresses": ["198.51.100.5"], "allow_list": ["198.51.100.0/24"]}, "198.51.100.5/32"),
        ({"addresses": ["10.20.1.5"], "vpc_id": "VPC"}, "10.20.1.5/32"),
        ({"addresses": ["203.0.113.9"], "ip_set": "no-such-set"}, "'no-such-set'"),
        ({"addresses": ["203.0.113.9"], "web_acl": "no-such-acl", "resource_arn": None}, "'no-such-acl'"),
    ],
    ids=["bad-octet", "not-an-ip", "all-ipv4", "all-ipv6", "allow-list", "vpc-cidr", "unknown-ip-set", "unknown-acl"],
)
def test_bad_input_names_the_value_and_changes_nothing(aws, run_playbook, options, named):
    if options.get("vpc_id") == "VPC":
        options = dict(options, vpc_id=aws.manifest["aws"]["network"]["vpc_id"])
    if "ip_set" in options and options["ip_set"] is None:
        options = dict(options, ip_set="firebreak-blocklist")
    aws.proxy.clear_log()
    run, result = block(aws, run_playbook, **options)
    assert run.returncode != 0
    assert result.get("failed") is True
    assert named in result["msg"], result["msg"]
    assert addresses(aws) == SEEDED
    assert not mutating_calls(aws)


def test_more_than_ten_thousand_addresses_fail_before_any_call(aws, run_playbook, tmp_path):
    many = [f"198.18.{i // 256}.{i % 256}" for i in range(10001)]
    waf = aws.manifest["aws"]["waf"]
    vars_file = tmp_path / "many.json"
    vars_file.write_text(json.dumps({"waf_ip_set": waf["ip_set"]["name"], "waf_addresses": many}))
    aws.proxy.clear_log()
    run = run_playbook(BLOCK, env=JSON_OUTPUT, args=["-e", f"@{vars_file}"])
    result = result_of(run)
    assert run.returncode != 0
    assert "10001 distinct addresses" in result["msg"] and "198.18.39.16/32" in result["msg"], result["msg"]
    assert not [e for e in aws.proxy.log() if e["service"] == "wafv2"], "no call may be made"
    assert addresses(aws) == SEEDED


def test_an_ip_set_no_block_rule_uses_is_refused(aws, run_playbook):
    unused = aws.client("wafv2").create_ip_set(
        Name="unused-list", Scope="REGIONAL", IPAddressVersion="IPV4", Addresses=[]
    )["Summary"]
    aws.proxy.clear_log()
    run, result = block(aws, run_playbook, ip_set="unused-list", addresses=["203.0.113.9"])
    assert run.returncode != 0
    assert "'unused-list' is not referenced by a Block rule of web ACL 'edge-acl'" in result["msg"]
    assert "would block nothing" in result["msg"]
    stored = aws.client("wafv2").get_ip_set(Name="unused-list", Scope="REGIONAL", Id=unused["Id"])["IPSet"]
    assert stored["Addresses"] == []
    assert not mutating_calls(aws)


def test_contained_without_an_incident_id_is_refused(aws, run_playbook):
    waf = aws.manifest["aws"]["waf"]
    extra = {"waf_ip_set": waf["ip_set"]["name"], "waf_addresses": ["203.0.113.9"]}
    run = run_playbook(
        BLOCK,
        extra_vars=extra,
        env={**JSON_OUTPUT, "FIREBREAK_INCIDENT_ID": "", "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer"},
    )
    assert run.returncode != 0
    assert "incident_id is required" in result_of(run)["msg"]
    assert addresses(aws) == SEEDED


def test_lock_conflicts_are_resolved_by_reading_again(aws, run_playbook):
    aws.proxy.add_rule(
        {"service": "wafv2", "action": "UpdateIPSet", "fault": "error", "status": 400,
         "code": "WAFOptimisticLockException", "count": 3}
    )  # fmt: skip
    aws.proxy.clear_log()
    run, result = block(aws, run_playbook, addresses=["203.0.113.66"])
    assert run.returncode == 0, run.output
    assert result["lock_conflicts"] == 3
    reads = [e for e in aws.proxy.log() if e["action"] == "GetIPSet"]
    assert len(reads) == 5, "each conflict is followed by a fresh read (and the set is read back after the write)"
    assert addresses(aws) == [*SEEDED, "203.0.113.66/32"]


def test_endless_lock_conflicts_fail_bounded_and_change_nothing(aws, run_playbook):
    aws.proxy.add_rule(
        {"service": "wafv2", "action": "UpdateIPSet", "fault": "error", "status": 400,
         "code": "WAFOptimisticLockException"}
    )  # fmt: skip
    run, result = block(aws, run_playbook, addresses=["203.0.113.66"], lock_retries=2)
    assert run.returncode != 0
    assert "UpdateIPSet" in result["msg"] and "WAFOptimisticLockException" in result["msg"]
    assert "gave up after 3 lock conflicts" in result["msg"]
    assert addresses(aws) == SEEDED


@pytest.mark.proof
def test_permanent_5xx_fails_within_the_budget_naming_call_and_code(aws, run_playbook):
    rule = aws.proxy.add_rule({"service": "wafv2", "action": "GetIPSet", "fault": "error", "status": 500})
    started = time.monotonic()
    run, result = block(aws, run_playbook, addresses=["203.0.113.66"], retry_budget=3)
    elapsed = time.monotonic() - started
    assert run.returncode != 0
    assert elapsed < 60
    assert "GetIPSet" in result["msg"] and "InternalFailure" in result["msg"], result["msg"]
    assert result["aws_error_code"] == "InternalFailure"
    aws.proxy.remove_rule(rule)
    assert addresses(aws) == SEEDED


def test_release_removes_only_what_was_added_and_reports_others(aws, run_playbook):
    run, contained = block(aws, run_playbook, addresses=["203.0.113.66", "203.0.113.0/28"])
    assert run.returncode == 0, run.output
    [entry] = contained["containment"]
    # meanwhile another responder adds an address, and removes one of ours by hand
    waf = aws.manifest["aws"]["waf"]["ip_set"]
    client = aws.client("wafv2")
    current = client.get_ip_set(Name=waf["name"], Scope="REGIONAL", Id=waf["id"])
    client.update_ip_set(
        Name=waf["name"],
        Scope="REGIONAL",
        Id=waf["id"],
        Addresses=[a for a in current["IPSet"]["Addresses"] if a != "203.0.113.0/28"] + ["198.51.100.99/32"],
        LockToken=current["LockToken"],
    )
    aws.proxy.clear_log()
    run, check = block(aws, run_playbook, check=True, state="released", containments=[entry], addresses=[])
    assert run.returncode == 0 and check["changed"] is True, run.output
    assert not mutating_calls(aws)

    run, released = block(aws, run_playbook, state="released", containments=[entry], addresses=[])
    assert run.returncode == 0, run.output
    assert released["changed"] is True
    assert released["removed"] == ["203.0.113.66/32"]
    assert released["left_alone"] == {"already_removed": ["203.0.113.0/28"], "added_by_others": ["198.51.100.99/32"]}
    assert released["release"][0]["releases"] == [entry["id"]]
    assert addresses(aws) == [*SEEDED, "198.51.100.99/32"]

    run, again = block(aws, run_playbook, state="released", containments=[entry], addresses=[])
    assert run.returncode == 0 and again["changed"] is False, run.output
    assert addresses(aws) == [*SEEDED, "198.51.100.99/32"]


def test_release_skips_entries_of_other_incidents(aws, run_playbook):
    run, contained = block(aws, run_playbook, addresses=["203.0.113.66"])
    entry = dict(contained["containment"][0], incident_id="INC-OTHER")
    run, released = block(aws, run_playbook, state="released", containments=[entry], addresses=[])
    assert run.returncode == 0, run.output
    assert released["changed"] is False, released
    assert released["ignored_entries"] == [entry["id"]], released
    assert addresses(aws) == [*SEEDED, "203.0.113.66/32"]
