"""The shared network every seeded area sits on: a 2-AZ VPC and its security groups.

``seed(make_client)`` returns::

    {"vpc_id", "cidr", "azs": [..], "subnet_ids": [..], "internet_gateway_id",
     "security_groups": {"alb", "app", "db", "quarantine"}}

``quarantine`` is the isolation group incident runbooks move a compromised ENI into: no ingress
and no egress.
"""

from __future__ import annotations

VPC_CIDR = "10.20.0.0/16"
SUBNETS = (("us-east-1a", "10.20.1.0/24"), ("us-east-1b", "10.20.2.0/24"))
TAG = {"Key": "firebreak:sandbox", "Value": "true"}


def _tags(resource_type: str, name: str, **extra: str) -> list[dict]:
    tags = [{"Key": "Name", "Value": name}, TAG, *({"Key": k, "Value": v} for k, v in extra.items())]
    return [{"ResourceType": resource_type, "Tags": tags}]


def seed(make_client) -> dict:
    ec2 = make_client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock=VPC_CIDR, TagSpecifications=_tags("vpc", "firebreak-sandbox"))["Vpc"]["VpcId"]
    igw_id = ec2.create_internet_gateway(TagSpecifications=_tags("internet-gateway", "firebreak-sandbox"))[
        "InternetGateway"
    ]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)

    subnet_ids = []
    for index, (zone, cidr) in enumerate(SUBNETS, start=1):
        subnet = ec2.create_subnet(
            VpcId=vpc_id,
            CidrBlock=cidr,
            AvailabilityZone=zone,
            TagSpecifications=_tags("subnet", f"firebreak-sandbox-{index}", Tier="app"),
        )["Subnet"]
        subnet_ids.append(subnet["SubnetId"])

    groups: dict[str, str] = {}
    descriptions = {
        "alb": "public load balancer: HTTP/HTTPS from anywhere",
        "app": "application tasks and instances: from the load balancer",
        "db": "Aurora PostgreSQL: from the application",
        "quarantine": "isolation for compromised instances: no ingress, no egress",
    }
    for role, description in descriptions.items():
        groups[role] = ec2.create_security_group(
            GroupName=f"firebreak-{role}",
            Description=description,
            VpcId=vpc_id,
            TagSpecifications=_tags("security-group", f"firebreak-{role}", Role=role),
        )["GroupId"]

    def from_group(port: int, source: str) -> dict:
        return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "UserIdGroupPairs": [{"GroupId": source}]}

    ec2.authorize_security_group_ingress(
        GroupId=groups["alb"],
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
            for port in (80, 443)
        ],
    )
    ec2.authorize_security_group_ingress(GroupId=groups["app"], IpPermissions=[from_group(8000, groups["alb"])])
    ec2.authorize_security_group_ingress(GroupId=groups["db"], IpPermissions=[from_group(5432, groups["app"])])
    ec2.revoke_security_group_egress(
        GroupId=groups["quarantine"], IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    return {
        "vpc_id": vpc_id,
        "cidr": VPC_CIDR,
        "azs": [zone for zone, _ in SUBNETS],
        "subnet_ids": subnet_ids,
        "internet_gateway_id": igw_id,
        "security_groups": groups,
    }
