"""The film generation service's GPU workers (seed ``incident-procedures.md`` "Film Generation Service Down": workers
on EC2 named ``gpu-worker``, taking jobs from SQS): a launch template and the Auto Scaling group that runs them.

``seed(make_client, network)`` returns::

    {"launch_template_id", "launch_template_name", "asg_name", "asg_arn", "min_size", "desired_capacity",
     "max_size", "instance_ids", "instance_type"}

The instances carry ``Name=gpu-worker`` (the seed's ``describe-instances --filters Name=tag:Name,Values=gpu-worker``
finds them) and ``Role=gpu-worker``. Three calls, about 40 ms with moto warm: seeded on every reset.
Instance refresh (``StartInstanceRefresh``, ``DescribeInstanceRefreshes``, ``CancelInstanceRefresh``) is not in moto
5.2.5; the fault proxy answers it (``sandbox/autoscaling_refresh.py``).
"""

from __future__ import annotations

NAME = "gpu-worker"
INSTANCE_TYPE = "g5.xlarge"
AMI_ID = "ami-0abcdef1234567890"  # moto accepts any AMI id; AWS's documented example
SIZES = {"MinSize": 1, "DesiredCapacity": 3, "MaxSize": 6}
SANDBOX_TAG = {"Key": "firebreak:sandbox", "Value": "true"}


def seed(make_client, network) -> dict:
    ec2, autoscaling = make_client("ec2"), make_client("autoscaling")
    instance_tags = [{"Key": "Name", "Value": NAME}, {"Key": "Role", "Value": NAME}, SANDBOX_TAG]
    template = ec2.create_launch_template(
        LaunchTemplateName=NAME,
        LaunchTemplateData={
            "ImageId": AMI_ID,
            "InstanceType": INSTANCE_TYPE,
            "SecurityGroupIds": [network["security_groups"]["app"]],
            "TagSpecifications": [{"ResourceType": "instance", "Tags": instance_tags}],
        },
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [SANDBOX_TAG]}],
    )["LaunchTemplate"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=NAME,
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "$Latest"},
        VPCZoneIdentifier=",".join(network["subnet_ids"]),
        HealthCheckType="EC2",
        HealthCheckGracePeriod=300,
        Tags=[
            {"Key": "Name", "Value": NAME, "PropagateAtLaunch": True},
            {"Key": "Role", "Value": NAME, "PropagateAtLaunch": True},
            {**SANDBOX_TAG, "PropagateAtLaunch": True},
        ],
        **SIZES,
    )
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[NAME])["AutoScalingGroups"][0]
    return {
        "launch_template_id": template["LaunchTemplateId"],
        "launch_template_name": NAME,
        "asg_name": NAME,
        "asg_arn": group["AutoScalingGroupARN"],
        "min_size": group["MinSize"],
        "desired_capacity": group["DesiredCapacity"],
        "max_size": group["MaxSize"],
        "instance_ids": sorted(i["InstanceId"] for i in group["Instances"]),
        "instance_type": INSTANCE_TYPE,
    }
