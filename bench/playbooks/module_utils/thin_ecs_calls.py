# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark floor (not part of the collection): the ECS step modules' AWS calls, in the same order, and nothing else.

Shared by the two floor modules in ``bench/playbooks/library``: ``thin_ecs`` (AnsibleModule + boto3) and
``thin_aws_ecs`` (AnsibleAWSModule, the framework every step module must use). ``bench/ecs.py`` checks in the fault
proxy's log that each makes the same calls as the step it is the floor of.
"""

from __future__ import annotations

import time

ARGUMENT_SPEC = dict(
    kind=dict(type="str", required=True, choices=["rollback", "restart", "scale", "one"]),
    cluster=dict(type="str", required=True),
    service=dict(type="str", required=True),
    desired_count=dict(type="int"),
    revisions=dict(type="int", default=5),
    task_definition=dict(type="str"),
)


def make_calls(p, ecs, elbv2_client):
    """The step's calls: ``ecs`` a client, ``elbv2_client()`` makes the ELBv2 client when first needed."""
    elbv2 = []

    def health(service):
        if not elbv2:
            elbv2.append(elbv2_client())
        return [elbv2[0].describe_target_health(TargetGroupArn=lb["targetGroupArn"]) for lb in service["loadBalancers"]]

    cluster, name = p["cluster"], p["service"]
    if p["kind"] == "one":  # the floor of a scenario's first mutating call: that call and nothing else
        ecs.update_service(cluster=cluster, service=name, taskDefinition=p["task_definition"])
        return
    service = ecs.describe_services(cluster=cluster, services=[name], include=["TAGS"])["services"][0]
    health(service)
    arn, at = service["serviceArn"], time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    family, revision = service["taskDefinition"].rsplit("/", 1)[-1].split(":")
    if p["kind"] == "rollback":
        listed = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE", sort="DESC")["taskDefinitionArns"]
        lower = sorted((int(a.rsplit(":", 1)[1]), a) for a in listed if int(a.rsplit(":", 1)[1]) < int(revision))
        target = lower[-1][1]
        good = f"{family}:{lower[-1][0]}"
        ecs.tag_resource(
            resourceArn=arn, tags=[{"key": "firebreak:rollback-pending", "value": f"from={revision} to={good}"}]
        )
        ecs.update_service(cluster=cluster, service=name, taskDefinition=target, forceNewDeployment=False)
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "firebreak:rolled-back-to", "value": good}])
        ecs.untag_resource(resourceArn=arn, tagKeys=["firebreak:rollback-pending"])
    elif p["kind"] == "restart":
        ecs.update_service(cluster=cluster, service=name, forceNewDeployment=True)
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "firebreak:restarted-at", "value": at}])
    else:
        ecs.update_service(cluster=cluster, service=name, desiredCount=p["desired_count"], forceNewDeployment=False)
        ecs.tag_resource(
            resourceArn=arn, tags=[{"key": "firebreak:scaled-from", "value": str(service["desiredCount"])}]
        )
    service = ecs.describe_services(cluster=cluster, services=[name], include=["TAGS"])["services"][0]
    health(service)
    if p["kind"] == "rollback":
        arns = []
        for status in ("ACTIVE", "INACTIVE"):
            arns += ecs.list_task_definitions(familyPrefix=family, status=status, sort="DESC")["taskDefinitionArns"]
        for one in sorted(arns, key=lambda a: -int(a.rsplit(":", 1)[1]))[: p["revisions"]]:
            ecs.describe_task_definition(taskDefinition=one)
