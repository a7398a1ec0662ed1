"""Network ACLs in the sandbox answer a missing ACL, entry or association as AWS does (sandbox/moto_main.py),
so that nacl_block's handling of ``InvalidNetworkAclID.NotFound`` is exercised; moto 5.2.5 alone answers
``InvalidRouteTableID.NotFound``, a 500, or changes the association before failing (docs/sandbox.md)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_ec2_nacl_block import SEEDED, block, entries

pytestmark = pytest.mark.integration

MISSING = "acl-0123456789abcdef0"


def error_of(call, **params):
    with pytest.raises(ClientError) as err:
        call(**params)
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


def default_acl(ec2, vpc):
    (found,) = ec2.describe_network_acls(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "default", "Values": ["true"]}]
    )["NetworkAcls"]
    return found


def associations(ec2, vpc):
    return sorted(
        (a["SubnetId"], a["NetworkAclId"])
        for acl in ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkAcls"]
        for a in acl["Associations"]
    )


def test_a_missing_network_acl_entry_or_association_is_answered_as_aws_does_and_nothing_changes(aws):
    ec2 = aws.client("ec2")
    vpc = aws.manifest["aws"]["network"]["vpc_id"]
    acl = default_acl(ec2, vpc)
    acl_id = acl["NetworkAclId"]
    linked = associations(ec2, vpc)
    entry = {"Protocol": "-1", "RuleAction": "deny", "Egress": False, "CidrBlock": "203.0.113.0/24"}

    code, message = error_of(ec2.describe_network_acls, NetworkAclIds=[MISSING])
    assert code == "InvalidNetworkAclID.NotFound" and MISSING in message
    code, message = error_of(ec2.describe_network_acls, NetworkAclIds=[acl_id, MISSING])
    assert code == "InvalidNetworkAclID.NotFound" and MISSING in message
    code, message = error_of(ec2.replace_network_acl_entry, NetworkAclId=MISSING, RuleNumber=100, **entry)
    assert code == "InvalidNetworkAclID.NotFound" and MISSING in message
    code, message = error_of(ec2.create_network_acl_entry, NetworkAclId=MISSING, RuleNumber=90, **entry)
    assert code == "InvalidNetworkAclID.NotFound" and MISSING in message
    code, message = error_of(ec2.delete_network_acl_entry, NetworkAclId=MISSING, RuleNumber=100, Egress=False)
    assert code == "InvalidNetworkAclID.NotFound" and MISSING in message

    # an entry that is not there: AWS's InvalidNetworkAclEntry.NotFound, not a 500
    code, message = error_of(ec2.replace_network_acl_entry, NetworkAclId=acl_id, RuleNumber=4242, **entry)
    assert (code, message) == ("InvalidNetworkAclEntry.NotFound", "no ingress entry with number 4242")
    code, message = error_of(ec2.delete_network_acl_entry, NetworkAclId=acl_id, RuleNumber=4242, Egress=True)
    assert (code, message) == ("InvalidNetworkAclEntry.NotFound", "no egress entry with number 4242")
    assert entries(aws) == SEEDED and entries(aws, egress=True) == SEEDED

    # a missing ACL for an association: refused before the subnet loses its association
    association = acl["Associations"][0]["NetworkAclAssociationId"]
    code, message = error_of(ec2.replace_network_acl_association, AssociationId=association, NetworkAclId=MISSING)
    assert code == "InvalidNetworkAclID.NotFound" and MISSING in message
    code, message = error_of(
        ec2.replace_network_acl_association, AssociationId="aclassoc-00000000000000000", NetworkAclId=acl_id
    )
    assert code == "InvalidAssociationID.NotFound"
    assert associations(ec2, vpc) == linked


def test_nacl_block_release_reports_a_network_acl_deleted_meanwhile_naming_it_and_releases_the_rest(aws, run_playbook):
    ec2 = aws.client("ec2")
    network = aws.manifest["aws"]["network"]
    vpc, (first, second) = network["vpc_id"], network["subnet_ids"][:2]
    default = default_acl(ec2, vpc)
    # the first subnet gets its own network ACL
    own = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    (assoc,) = [a["NetworkAclAssociationId"] for a in default["Associations"] if a["SubnetId"] == first]
    moved = ec2.replace_network_acl_association(AssociationId=assoc, NetworkAclId=own)["NewAssociationId"]

    run, contained = block(aws, run_playbook, subnets=[first, second], cidrs=["203.0.113.0/24"])
    assert run.returncode == 0, run.output
    assert sorted(e["resource"] for e in contained["containment"]) == sorted([own, default["NetworkAclId"]])

    # meanwhile the subnet goes back to the default ACL and its own ACL is deleted
    ec2.replace_network_acl_association(AssociationId=moved, NetworkAclId=default["NetworkAclId"])
    ec2.delete_network_acl(NetworkAclId=own)

    run, released = block(aws, run_playbook, state="released", containments=contained["containment"])
    assert run.returncode == 0, run.output
    assert released["left_alone"][own] == {"network_acl_deleted": True}
    assert f"gone (recorded as released): {own}" in released["msg"], released["msg"]
    assert "changed meanwhile" not in released["msg"]
    assert released["removed"][default["NetworkAclId"]] == [
        {"rule_number": 99, "cidr": "203.0.113.0/24", "egress": False}
    ]
    assert entries(aws) == SEEDED  # the rest was released
