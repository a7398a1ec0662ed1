"""Seed: a compromised instance to isolate with evidence, instance targets to drain, logs to preserve.

Seed plan "Security Breach Detected" (seeds/incident-procedures.md): "Isolate affected EC2 instances",
"Preserve evidence: copy CloudTrail logs to secure location", "Review access logs"; and the ECS plan's
"reduce traffic (deregister targets)" (seeds/ecs-fargate-plan.md, section 3).

``seed(make_client, manifest)`` adds, on the shared network and the ECS seed's ALB:

* ``bastion-1`` in the first subnet: TWO network interfaces with different groups (``app``; ``mgmt`` and
  ``app``) and TWO EBS volumes (root and a data volume), tagged compromised: isolation must move both
  interfaces and snapshot both volumes;
* ``firebreak-mgmt``, a security group for the second interface (SSH from the VPN range);
* ``web-instances-tg``, an instance target group on the ALB listener (path ``/admin/*``) with
  ``bastion-1`` and ``app-2`` registered on port 8080 (one per AZ);
* ``firebreak-sandbox-logs``: CloudTrail-like and ALB access log objects to copy into the evidence
  bucket (``s3.evidence_bucket`` of the platform seed).

Returns ``{"instance_id", "eni_ids", "volume_ids", "security_groups", "target_group_arn", "targets",
"log_bucket", "log_objects": {key: size}, "cloudtrail_prefix", "access_log_prefix"}``.
"""

from __future__ import annotations

import gzip
import json

AMI_ID = "ami-0abcdef1234567890"
LOG_BUCKET = "firebreak-sandbox-logs"
ACCOUNT = "123456789012"
CLOUDTRAIL_PREFIX = f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/11/24/"
ACCESS_LOG_PREFIX = f"alb/AWSLogs/{ACCOUNT}/elasticloadbalancing/us-east-1/2026/11/24/"
TAGS = [{"Key": "firebreak:sandbox", "Value": "true"}]


def _cloudtrail_file(index: int) -> bytes:
    records = [
        {
            "eventVersion": "1.08",
            "eventTime": f"2026-11-24T0{index}:1{n}:00Z",
            "eventSource": "ec2.amazonaws.com",
            "eventName": name,
            "awsRegion": "us-east-1",
            "sourceIPAddress": "198.51.100.23",
            "userIdentity": {"type": "IAMUser", "userName": "ci-deployer"},
        }
        for n, name in enumerate(("DescribeInstances", "RunInstances", "AuthorizeSecurityGroupIngress"))
    ]
    # mtime=0: the same bytes every seed, so the objects' SHA-256 are stable.
    return gzip.compress(json.dumps({"Records": records}).encode(), mtime=0)


def _access_log(index: int) -> bytes:
    line = (
        "http 2026-11-24T0{i}:15:0{n}.000000Z app/shop-alb/0 198.51.100.23:4431{n} 10.20.1.10:8000 0.001 0.002 0.000 "
        '200 200 120 512 "GET http://shop.example:80/admin/export HTTP/1.1" "curl/8.4" - -\n'
    )
    return "".join(line.format(i=index, n=n) for n in range(5)).encode()


def seed(make_client, manifest: dict) -> dict:
    network = manifest["network"]
    ec2 = make_client("ec2")
    subnet_id = network["subnet_ids"][0]
    mgmt = ec2.create_security_group(
        GroupName="firebreak-mgmt",
        Description="management: SSH from the VPN",
        VpcId=network["vpc_id"],
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "Name", "Value": "firebreak-mgmt"}, *TAGS]}
        ],
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=mgmt,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.99.0.0/16"}]}],
    )
    app = network["security_groups"]["app"]
    instance = ec2.run_instances(
        ImageId=AMI_ID,
        InstanceType="t3.small",
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet_id,
        SecurityGroupIds=[app],
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": "Name", "Value": "bastion-1"},
                    {"Key": "firebreak:compromised", "Value": "true"},
                    *TAGS,
                ],
            }
        ],
    )["Instances"][0]
    instance_id = instance["InstanceId"]
    zone = instance["Placement"]["AvailabilityZone"]
    eni2 = ec2.create_network_interface(SubnetId=subnet_id, Groups=[mgmt, app], Description="bastion-1 management")[
        "NetworkInterface"
    ]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=eni2, InstanceId=instance_id, DeviceIndex=1)
    data = ec2.create_volume(
        Size=4, AvailabilityZone=zone, TagSpecifications=[{"ResourceType": "volume", "Tags": TAGS}]
    )["VolumeId"]
    ec2.attach_volume(VolumeId=data, InstanceId=instance_id, Device="/dev/sdf")
    enis = [instance["NetworkInterfaces"][0]["NetworkInterfaceId"], eni2]
    volumes = sorted(
        v["VolumeId"]
        for v in ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])["Volumes"]
    )

    elbv2 = make_client("elbv2")
    tg_arn = elbv2.create_target_group(
        Name="web-instances-tg",
        Protocol="HTTP",
        Port=8080,
        VpcId=network["vpc_id"],
        TargetType="instance",
        HealthCheckPath="/health",
    )["TargetGroups"][0]["TargetGroupArn"]
    ecs = manifest.get("ecs") or {}
    if ecs.get("listener_arn"):
        elbv2.create_rule(
            ListenerArn=ecs["listener_arn"],
            Priority=10,
            Conditions=[{"Field": "path-pattern", "Values": ["/admin/*"]}],
            Actions=[{"Type": "forward", "TargetGroupArn": tg_arn}],
        )
    other = [i for i in (manifest.get("ec2") or {}).get("instances", []) if i.get("name") == "app-2"]
    targets = [{"id": instance_id, "port": 8080, "availability_zone": zone}]
    if other:
        targets.append({"id": other[0]["instance_id"], "port": 8080, "availability_zone": network["azs"][1]})
    elbv2.register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": t["id"], "Port": t["port"]} for t in targets])

    s3 = make_client("s3")
    s3.create_bucket(Bucket=LOG_BUCKET)
    objects = {}
    for index in (1, 2, 3):
        key = f"{CLOUDTRAIL_PREFIX}{ACCOUNT}_CloudTrail_us-east-1_20261124T0{index}00Z_sandbox{index}.json.gz"
        body = _cloudtrail_file(index)
        s3.put_object(Bucket=LOG_BUCKET, Key=key, Body=body)
        objects[key] = len(body)
    for index in (1, 2):
        key = f"{ACCESS_LOG_PREFIX}{ACCOUNT}_elasticloadbalancing_us-east-1_app.shop-alb_20261124T0{index}15Z.log"
        body = _access_log(index)
        s3.put_object(Bucket=LOG_BUCKET, Key=key, Body=body)
        objects[key] = len(body)
    return {
        "instance_id": instance_id,
        "availability_zone": zone,
        "eni_ids": enis,
        "eni_groups": {enis[0]: [app], eni2: sorted([mgmt, app])},
        "volume_ids": volumes,
        "security_groups": {"mgmt": mgmt, "app": app, "quarantine": network["security_groups"].get("quarantine")},
        "target_group_arn": tg_arn,
        "targets": targets,
        "log_bucket": LOG_BUCKET,
        "log_objects": objects,
        "cloudtrail_prefix": CLOUDTRAIL_PREFIX,
        "access_log_prefix": ACCESS_LOG_PREFIX,
    }
