"""ec2_nacl_block against the sandbox: DENY entries read back from moto, below the allow rules, release."""

from __future__ import annotations

import json

import pytest

from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/nacl/block.yml"
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
MUTATING = {"CreateNetworkAclEntry", "DeleteNetworkAclEntry", "ReplaceNetworkAclEntry", "CreateTags"}


def result_of(run, task: str = "Block") -> dict:
    data = json.loads(run.stdout[run.stdout.index("{") :])
    for play in data["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                return entry["hosts"]["localhost"]
    raise AssertionError(f"task {task!r} not in the output:\n{run.output[-3000:]}")


def block(aws, run_playbook, check=False, diff=False, **options):
    extra = {"nacl_subnets": aws.manifest["aws"]["network"]["subnet_ids"]}
    extra.update({f"nacl_{key}": value for key, value in options.items()})
    run = run_playbook(PLAYBOOK, extra_vars=extra, check=check, diff=diff, env=JSON_OUTPUT)
    return run, result_of(run)


def acl(aws) -> dict:
    vpc = aws.manifest["aws"]["network"]["vpc_id"]
    acls = aws.client("ec2").describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkAcls"]
    assert len(acls) == 1, "the seeded VPC has its default network ACL only"
    return acls[0]


def entries(aws, egress=False) -> dict:
    return {
        e["RuleNumber"]: (e["RuleAction"], e.get("CidrBlock") or e.get("Ipv6CidrBlock"))
        for e in acl(aws)["Entries"]
        if e["Egress"] == egress
    }


SEEDED = {100: ("allow", "0.0.0.0/0"), 32767: ("deny", "0.0.0.0/0")}


def mutating(aws) -> list[str]:
    return [e["action"] for e in aws.proxy.log() if e["service"] == "ec2" and e["action"] in MUTATING]


def test_deny_entries_go_below_the_allow_rule_and_rerun_is_a_no_op(aws, run_playbook):
    client = aws.client("ec2")
    acl_id = acl(aws)["NetworkAclId"]
    client.create_network_acl_entry(  # someone's entry at 99 already: not to collide with
        NetworkAclId=acl_id, RuleNumber=99, Protocol="6", RuleAction="allow", Egress=False, CidrBlock="198.51.100.0/24",
        PortRange={"From": 443, "To": 443},
    )  # fmt: skip
    run, result = block(aws, run_playbook, cidrs=["203.0.113.7/24", "192.0.2.66"], direction="both")
    assert run.returncode == 0, run.output
    assert entries(aws) == {
        **SEEDED,
        99: ("allow", "198.51.100.0/24"),
        98: ("deny", "203.0.113.0/24"),
        97: ("deny", "192.0.2.66/32"),
    }
    assert entries(aws, egress=True) == {**SEEDED, 99: ("deny", "203.0.113.0/24"), 98: ("deny", "192.0.2.66/32")}
    assert result["normalised"] == {"203.0.113.7/24": "203.0.113.0/24"}
    entry = result["containment"][0]
    assert entry["resource"] == acl_id and len(entry["changed"]["entries"]) == 4
    tags = {t["Key"]: t["Value"] for t in acl(aws)["Tags"]}
    assert tags["firebreak:incident"] == entry["incident_id"]

    aws.proxy.clear_log()
    run, again = block(aws, run_playbook, cidrs=["203.0.113.9", "192.0.2.66"], direction="both")
    assert run.returncode == 0, run.output
    assert again["changed"] is False and again["containment"] == []
    assert again["already_covered"][acl_id]["ingress"]["203.0.113.9/32"] == "rule 98 (203.0.113.0/24)"
    assert again["already_covered"][acl_id]["egress"]["203.0.113.9/32"] == "rule 99 (203.0.113.0/24)"
    assert not mutating(aws)


def test_check_mode_with_diff_changes_nothing(aws, run_playbook):
    aws.proxy.clear_log()
    run, result = block(aws, run_playbook, check=True, diff=True, cidrs=["203.0.113.0/24"])
    assert run.returncode == 0, run.output
    assert result["changed"] is True and "would add" in result["msg"]
    assert entries(aws) == SEEDED
    assert not mutating(aws)


@first_case_in_make_test
@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"cidrs": ["203.0.113.300"]}, "'203.0.113.300'"),
        ({"cidrs": ["0.0.0.0/0"]}, "0.0.0.0/0 would block every IPv4 address"),
        ({"cidrs": ["10.20.1.0/24"]}, "10.20.1.0/24 overlaps the allow-listed range 10.20.0.0/16"),
        ({"cidrs": ["198.51.100.9"], "allow_list": ["198.51.100.0/24"]}, "198.51.100.9/32 overlaps"),
        ({"cidrs": ["203.0.113.1"], "subnets": ["subnet-00000000000000000"]}, "subnet subnet-00000000000000000"),
    ],
    ids=["bad-octet", "everything", "vpc-cidr", "allow-list", "unknown-subnet"],
)
def test_bad_input_names_the_value_and_changes_nothing(aws, run_playbook, options, named):
    aws.proxy.clear_log()
    run, result = block(aws, run_playbook, **options)
    assert run.returncode != 0
    assert named in result["msg"], result["msg"]
    assert entries(aws) == SEEDED
    assert not mutating(aws)


def test_release_removes_exactly_the_recorded_entries_and_leaves_replaced_ones(aws, run_playbook):
    run, contained = block(aws, run_playbook, cidrs=["203.0.113.0/24", "192.0.2.66"])
    assert run.returncode == 0, run.output
    acl_id = acl(aws)["NetworkAclId"]
    client = aws.client("ec2")
    # meanwhile another responder replaces our rule 98 with their own deny, and adds one at 50
    client.replace_network_acl_entry(
        NetworkAclId=acl_id, RuleNumber=98, Protocol="-1", RuleAction="deny", Egress=False, CidrBlock="198.51.100.0/24"
    )
    client.create_network_acl_entry(
        NetworkAclId=acl_id, RuleNumber=50, Protocol="-1", RuleAction="deny", Egress=False, CidrBlock="198.51.100.7/32"
    )
    run, released = block(aws, run_playbook, state="released", containments=contained["containment"])
    assert run.returncode == 0, run.output
    assert released["changed"] is True
    assert entries(aws) == {**SEEDED, 98: ("deny", "198.51.100.0/24"), 50: ("deny", "198.51.100.7/32")}
    assert released["left_alone"][acl_id]["replaced"][0]["rule_number"] == 98
    assert released["release"][0]["releases"] == [contained["containment"][0]["id"]]

    run, again = block(aws, run_playbook, state="released", containments=contained["containment"])
    assert run.returncode == 0 and again["changed"] is False, run.output
