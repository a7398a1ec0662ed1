"""ec2_instance_isolate against the sandbox: evidence first, every interface quarantined, exact release.

Every test reads the resulting state back from moto (interfaces' groups, protection attributes, tags,
snapshots, evidence objects, target registrations), not only what the module said.
"""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/ec2_isolate/isolate.yml"
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
INCIDENT = "INC-ISOLATE-1"
MUTATING = {
    "ModifyNetworkInterfaceAttribute",
    "ModifyInstanceAttribute",
    "CreateSnapshots",
    "CreateSnapshot",
    "CreateTags",
    "DeleteTags",
    "CreateSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "RevokeSecurityGroupEgress",
    "DeregisterTargets",
    "RegisterTargets",
    "PutObject",
    "DetachInstances",
    "AttachInstances",
}


def result_of(run, task="Isolate") -> dict:
    data = json.JSONDecoder().raw_decode(run.stdout[run.stdout.index("{") :])[0]
    for play in data["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                return entry["hosts"]["localhost"]
    raise AssertionError(f"task {task!r} not in the output:\n{run.output[-3000:]}")


def isolate(run_playbook, check=False, diff=False, **options):
    options.setdefault("incident_id", INCIDENT)
    extra = {f"iso_{key}": value for key, value in options.items()}
    run = run_playbook(PLAYBOOK, extra_vars=extra, check=check, diff=diff, env=JSON_OUTPUT)
    return run, result_of(run)


def seeded(aws) -> dict:
    return aws.manifest["aws"]["evidence"]


def eni_groups(aws) -> dict:
    ids = seeded(aws)["eni_ids"]
    enis = aws.client("ec2").describe_network_interfaces(NetworkInterfaceIds=ids)["NetworkInterfaces"]
    return {e["NetworkInterfaceId"]: sorted(g["GroupId"] for g in e["Groups"]) for e in enis}


def protection(aws, instance_id) -> dict:
    ec2 = aws.client("ec2")
    out = {}
    for attr in ("disableApiTermination", "disableApiStop"):
        answer = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute=attr)
        out[attr] = answer[attr[0].upper() + attr[1:]]["Value"]
    return out


def instance_tags(aws, instance_id) -> dict:
    instance = aws.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def incident_snapshots(aws, incident=INCIDENT) -> list[dict]:
    return aws.client("ec2").describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:firebreak:incident", "Values": [incident]}]
    )["Snapshots"]


def registered(aws) -> list[str]:
    arn = seeded(aws)["target_group_arn"]
    health = aws.client("elbv2").describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    return sorted(f"{d['Target']['Id']}:{d['Target']['Port']}" for d in health)


def snapshot_state(aws) -> dict:
    """Everything the step may change, to compare before/after check mode or a refused run."""
    iid = seeded(aws)["instance_id"]
    ec2 = aws.client("ec2")
    return {
        "enis": eni_groups(aws),
        "protection": protection(aws, iid),
        "tags": instance_tags(aws, iid),
        "snapshots": len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]),
        "groups": sorted(g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]),
        "targets": registered(aws),
        "objects": aws.client("s3")
        .list_objects_v2(Bucket=aws.manifest["aws"]["s3"]["evidence_bucket"])
        .get("KeyCount", 0),
    }


def mutating_calls(aws) -> list[str]:
    return [e["action"] for e in aws.proxy.log() if e["action"] in MUTATING]


def test_check_mode_with_diff_changes_nothing(aws, run_playbook):
    state = snapshot_state(aws)
    aws.proxy.clear_log()
    run, result = isolate(
        run_playbook,
        check=True,
        diff=True,
        instance_id=seeded(aws)["instance_id"],
        evidence_bucket=aws.manifest["aws"]["s3"]["evidence_bucket"],
        deregister_targets=True,
    )
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert "would" in result["msg"] and "snapshot 2 volume(s)" in result["msg"], result["msg"]
    quarantine = seeded(aws)["security_groups"]["quarantine"]
    assert all(v == [quarantine] for v in result["diff"]["after"]["network_interfaces"].values())
    assert result["diff"]["before"]["network_interfaces"] == eni_groups(aws)
    assert result["containment"] == []
    assert not mutating_calls(aws), mutating_calls(aws)
    assert snapshot_state(aws) == state


def test_isolate_moves_every_interface_snapshots_and_stores_evidence_then_rerun_is_a_no_op(aws, run_playbook):
    seed = seeded(aws)
    iid = seed["instance_id"]
    bucket = aws.manifest["aws"]["s3"]["evidence_bucket"]
    quarantine = seed["security_groups"]["quarantine"]
    before_groups = eni_groups(aws)
    assert before_groups == {eni: sorted(groups) for eni, groups in seed["eni_groups"].items()}
    aws.proxy.clear_log()

    run, result = isolate(run_playbook, instance_id=iid, evidence_bucket=bucket, deregister_targets=True)
    assert run.returncode == 0, run.output
    assert result["changed"] is True

    # every interface, not only the primary one, is in the quarantine group alone
    assert eni_groups(aws) == {eni: [quarantine] for eni in seed["eni_ids"]}
    assert protection(aws, iid) == {"disableApiTermination": True, "disableApiStop": True}
    tags = instance_tags(aws, iid)
    assert tags["firebreak:incident"] == INCIDENT and tags["firebreak:step"] == "ec2_isolate"
    assert f"{iid}:8080" not in registered(aws)

    # connection tracking: every interface went through the allow-all group first, then to quarantine
    moves = [e["action"] for e in aws.proxy.log() if e["action"] == "ModifyNetworkInterfaceAttribute"]
    assert len(moves) == 2 * len(seed["eni_ids"])
    untrack = result["containment"][0]["changed"]["untrack_group_id"]
    group = aws.client("ec2").describe_security_groups(GroupIds=[untrack])["SecurityGroups"][0]
    assert any(r["IpProtocol"] == "-1" for r in group["IpPermissions"])
    quarantine_group = aws.client("ec2").describe_security_groups(GroupIds=[quarantine])["SecurityGroups"][0]
    assert quarantine_group["IpPermissions"] == [] and quarantine_group["IpPermissionsEgress"] == []

    # snapshots of both volumes, tagged with the incident and the instance
    snaps = incident_snapshots(aws)
    assert sorted(s["VolumeId"] for s in snaps) == seed["volume_ids"]
    for snap in snaps:
        snap_tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
        assert snap_tags["firebreak:instance-id"] == iid and snap_tags["firebreak:step"] == "ec2_isolate"
    recorded = {s["volume_id"]: s["snapshot_id"] for s in result["evidence"]["snapshots"]}
    assert recorded == {s["VolumeId"]: s["SnapshotId"] for s in snaps}

    # evidence objects: content matches the recorded SHA-256; the screenshot is recorded as unavailable
    s3 = aws.client("s3")
    objects = {o["key"]: o for o in result["evidence"]["objects"]}
    assert {k.rsplit("/", 1)[1] for k in objects} == {"instance.json", "console-output.txt"}
    for key, obj in objects.items():
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == obj["sha256"]
        assert key.startswith(f"incidents/{INCIDENT}/ec2/{iid}/")
    described = json.loads(
        s3.get_object(Bucket=bucket, Key=f"incidents/{INCIDENT}/ec2/{iid}/instance.json")["Body"].read()
    )
    assert {e["network_interface_id"]: e["groups"] for e in described["network_interfaces"]} == before_groups
    assert result["evidence"]["screenshot"]["available"] is False
    assert "GetConsoleScreenshot" in result["evidence"]["screenshot"]["reason"]

    # the containment records each interface's own previous groups, flags before, targets left
    changed = result["containment"][0]["changed"]
    assert changed["groups"] == before_groups
    assert changed["protection"] == {"disableApiTermination": False, "disableApiStop": False}
    assert {"target_group_arn": seed["target_group_arn"], "id": iid, "port": 8080} in changed["target_groups"]
    # any other registration found is one of the instance's own addresses (an IP target group)
    addresses = {ip for eni in result["evidence"]["network_interfaces"] for ip in eni["private_ips"]}
    assert all(t["id"] in addresses for t in changed["target_groups"] if t["id"] != iid), changed["target_groups"]
    assert result["containment"][0]["incident_id"] == INCIDENT and result["containment"][0]["resource"] == iid

    aws.proxy.clear_log()
    run, again = isolate(run_playbook, instance_id=iid, evidence_bucket=bucket, deregister_targets=True)
    assert run.returncode == 0, run.output
    assert again["changed"] is False, again["msg"]
    assert again["containment"] == []
    assert not mutating_calls(aws), mutating_calls(aws)
    assert len(incident_snapshots(aws)) == 2


def test_release_restores_each_interface_and_leaves_changes_made_meanwhile(aws, run_playbook):
    seed = seeded(aws)
    iid = seed["instance_id"]
    primary, secondary = seed["eni_ids"]
    run, result = isolate(run_playbook, instance_id=iid, deregister_targets=True)
    assert run.returncode == 0, run.output
    [entry] = result["containment"]

    # meanwhile a responder moves the second interface to the management group by hand
    aws.client("ec2").modify_network_interface_attribute(
        NetworkInterfaceId=secondary, Groups=[seed["security_groups"]["mgmt"]]
    )

    run, released = isolate(run_playbook, instance_id=iid, state="released", containments=[entry])
    assert run.returncode == 0, run.output
    assert released["changed"] is True
    groups = eni_groups(aws)
    assert groups[primary] == sorted(seed["eni_groups"][primary])
    assert groups[secondary] == [seed["security_groups"]["mgmt"]], "a change made meanwhile must be left alone"
    release = released["release"][0]
    assert release["releases"] == [entry["id"]]
    assert release["left_alone"]["groups"][secondary]["groups_now"] == [seed["security_groups"]["mgmt"]]
    assert protection(aws, iid) == {"disableApiTermination": False, "disableApiStop": False}
    assert "firebreak:incident" not in instance_tags(aws, iid)
    assert f"{iid}:8080" in registered(aws)

    run, again = isolate(run_playbook, instance_id=iid, state="released", containments=[entry])
    assert run.returncode == 0, run.output
    assert again["changed"] is False
    assert eni_groups(aws)[secondary] == [seed["security_groups"]["mgmt"]]


def test_release_of_nothing_changes_nothing(aws, run_playbook):
    run, result = isolate(run_playbook, instance_id=seeded(aws)["instance_id"], state="released", containments=[])
    assert run.returncode == 0, run.output
    assert result["changed"] is False and result["release"] == []


def _with_rules(aws):
    return aws.manifest["aws"]["network"]["security_groups"]["app"]


@first_case_in_make_test
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"instance_id": "i-0123456789abcdef0"}, "EC2 instance 'i-0123456789abcdef0' does not exist"),
        ({"instance_id": "web-1"}, "'web-1' is not an EC2 instance id"),
        ({"quarantine_group_id": "sg-0123456789abcdef0"}, "security group 'sg-0123456789abcdef0' does not exist"),
        ({"quarantine_group_id": _with_rules}, "has rules; a quarantine group must have no inbound and no outbound"),
        ({"evidence_bucket": "no-such-evidence-bucket"}, "S3 bucket 'no-such-evidence-bucket' does not exist"),
        ({"incident_id": ""}, "incident_id is required"),
        (
            {"deregister_targets": True, "target_group_arns": ["arn:aws:elasticloadbalancing:bogus"]},
            "'arn:aws:elasticloadbalancing:bogus' is not a target group ARN",
        ),
    ],
    ids=[
        "unknown-instance",
        "malformed-instance",
        "unknown-group",
        "group-with-rules",
        "no-bucket",
        "no-incident",
        "bad-tg",
    ],
)
def test_bad_input_fails_naming_the_value_and_changes_nothing(aws, run_playbook, options, expected):
    options = {key: (value(aws) if callable(value) else value) for key, value in options.items()}
    options.setdefault("instance_id", seeded(aws)["instance_id"])
    if options.get("incident_id") == "":
        options["incident_id"] = None
    state = snapshot_state(aws)
    aws.proxy.clear_log()
    extra = {f"iso_{k}": v for k, v in options.items() if v is not None}
    if "incident_id" in options and options["incident_id"] is None:
        run = run_playbook(
            PLAYBOOK,
            extra_vars=extra,
            env={**JSON_OUTPUT, "FIREBREAK_INCIDENT_ID": "", "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer"},
        )
    else:
        extra.setdefault("iso_incident_id", INCIDENT)
        run = run_playbook(PLAYBOOK, extra_vars=extra, env=JSON_OUTPUT)
    result = result_of(run)
    assert run.returncode != 0
    assert expected in result["msg"], result["msg"]
    assert result.get("changed") is False
    assert not mutating_calls(aws), mutating_calls(aws)
    assert snapshot_state(aws) == state


@pytest.mark.proof
def test_permanent_5xx_fails_fast_naming_the_call_and_the_code(aws, run_playbook):
    aws.proxy.add_rule(
        {
            "service": "ec2",
            "action": "DescribeNetworkInterfaces",
            "fault": "error",
            "status": 503,
            "code": "ServiceUnavailable",
        }
    )
    state = snapshot_state_without_enis(aws)
    started = time.monotonic()
    run, result = isolate(run_playbook, instance_id=seeded(aws)["instance_id"], retry_budget=8)
    elapsed = time.monotonic() - started
    assert run.returncode != 0
    assert "DescribeNetworkInterfaces failed" in result["msg"] and "ServiceUnavailable" in result["msg"], result["msg"]
    assert result["aws_error_code"] == "ServiceUnavailable"
    assert elapsed < 60, elapsed
    assert snapshot_state_without_enis(aws) == state


def snapshot_state_without_enis(aws) -> dict:
    iid = seeded(aws)["instance_id"]
    return {
        "protection": protection(aws, iid),
        "tags": instance_tags(aws, iid),
        "snapshots": len(incident_snapshots(aws)),
    }


def test_auto_scaling_instance_is_detached_with_its_count_and_attached_again_on_release(aws, run_playbook):
    network = aws.manifest["aws"]["network"]
    ec2, autoscaling = aws.client("ec2"), aws.client("autoscaling")
    ec2.create_launch_template(
        LaunchTemplateName="web-lt",
        LaunchTemplateData={
            "ImageId": "ami-0abcdef1234567890",
            "InstanceType": "t3.small",
            "SecurityGroupIds": [network["security_groups"]["app"]],
        },
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web-asg",
        LaunchTemplate={"LaunchTemplateName": "web-lt"},
        MinSize=0,
        MaxSize=4,
        DesiredCapacity=2,
        VPCZoneIdentifier=network["subnet_ids"][0],
    )
    iid = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web-asg"])["AutoScalingGroups"][0][
        "Instances"
    ][0]["InstanceId"]

    run, result = isolate(
        run_playbook, instance_id=iid, detach_from_asg=True, decrement_desired_capacity=True, snapshots=False
    )
    assert run.returncode == 0, run.output
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web-asg"])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 1
    assert iid not in [i["InstanceId"] for i in group["Instances"]]
    assert result["containment"][0]["changed"]["auto_scaling_group"] == {"name": "web-asg", "decremented": True}

    run, released = isolate(run_playbook, instance_id=iid, state="released", containments=result["containment"])
    assert run.returncode == 0, run.output
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web-asg"])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 2 and iid in [i["InstanceId"] for i in group["Instances"]]
    assert released["release"][0]["restored"]["auto_scaling_group"] == "web-asg"


def test_an_untrack_group_that_does_not_allow_all_is_refused(aws, run_playbook):
    network = aws.manifest["aws"]["network"]
    aws.client("ec2").create_security_group(GroupName="firebreak-untrack", Description="wrong", VpcId=network["vpc_id"])
    state = snapshot_state(aws)
    aws.proxy.clear_log()
    run, result = isolate(run_playbook, instance_id=seeded(aws)["instance_id"])
    assert run.returncode != 0
    assert "'firebreak-untrack'" in result["msg"] and "cannot untrack flows" in result["msg"], result["msg"]
    assert not mutating_calls(aws) and snapshot_state(aws) == state


@pytest.mark.proof
def test_a_failure_part_way_reports_what_was_changed_and_both_entries_release(aws, run_playbook):
    seed = seeded(aws)
    iid = seed["instance_id"]
    before = eni_groups(aws)
    rule = aws.proxy.add_rule(
        {"service": "ec2", "action": "ModifyNetworkInterfaceAttribute", "fault": "error", "status": 500}
    )
    run, failed = isolate(run_playbook, instance_id=iid, retry_budget=2)
    assert run.returncode != 0
    assert "ModifyNetworkInterfaceAttribute failed" in failed["msg"], failed["msg"]
    assert failed["changed"] is True
    assert failed["containment"][0]["changed"]["protection"] == {
        "disableApiTermination": False,
        "disableApiStop": False,
    }
    assert "groups" not in failed["containment"][0]["changed"] or not failed["containment"][0]["changed"]["groups"]
    assert eni_groups(aws) == before
    assert protection(aws, iid) == {"disableApiTermination": True, "disableApiStop": True}
    aws.proxy.remove_rule(rule)

    run, done = isolate(run_playbook, instance_id=iid)
    assert run.returncode == 0, run.output
    assert done["containment"][0]["changed"]["groups"] == before
    assert "protection" not in done["containment"][0]["changed"]
    assert len(incident_snapshots(aws)) == 2, "the snapshots of the failed run are reused"

    entries = failed["containment"] + done["containment"]
    run, released = isolate(run_playbook, instance_id=iid, state="released", containments=entries)
    assert run.returncode == 0, run.output
    assert eni_groups(aws) == before
    assert protection(aws, iid) == {"disableApiTermination": False, "disableApiStop": False}
    assert sorted(r["releases"][0] for r in released["release"]) == sorted(e["id"] for e in entries)
