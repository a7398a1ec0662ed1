# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark floor (not part of the collection): the ECS step modules' AWS calls, in the same order, and nothing else.

AnsibleModule + boto3, no retries, no decisions beyond what the calls need, no docs. ``bench/ecs.py`` checks in the
fault proxy's log that it makes the same calls as the step it is the floor of.
"""

from __future__ import annotations

import time

import boto3
from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kind=dict(type="str", required=True, choices=["rollback", "restart", "scale"]),
            cluster=dict(type="str", required=True),
            service=dict(type="str", required=True),
            desired_count=dict(type="int"),
            revisions=dict(type="int", default=5),
            region=dict(type="str"),
            endpoint_url=dict(type="str"),
        )
    )
    p = module.params
    ecs = boto3.client("ecs", region_name=p["region"], endpoint_url=p["endpoint_url"])
    elbv2 = []

    def health(service):
        if not elbv2:
            elbv2.append(boto3.client("elbv2", region_name=p["region"], endpoint_url=p["endpoint_url"]))
        return [elbv2[0].describe_target_health(TargetGroupArn=lb["targetGroupArn"]) for lb in service["loadBalancers"]]

    cluster, name = p["cluster"], p["service"]
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
    module.exit_json(changed=True)


if __name__ == "__main__":
    main()
