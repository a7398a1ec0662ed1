"""Drill: a security breach (seeds/incident-procedures.md "Security Breach Detected"; k8s-playbooks.md security).

The fault: GuardDuty is switched on and reports what the sandbox's canned CloudTrail history shows: the seeded user
``ci-deployer`` had its key used from ``203.0.113.66`` (CreateAccessKey, GetSecretValue), the uploads bucket was made
public and the instance tagged ``firebreak:compromised`` (``bastion-1``) talks to a command-and-control domain; the
deploy pipeline ``app-deploy`` exists and is live. The runbook (``playbooks/security_breach.yml``) must copy the
CloudTrail and access logs into the evidence bucket, then disable the user's keys, block the address in the WAF IP
set, isolate the instance, lock the bucket and freeze the pipeline, behind one gate (approved here).
"""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.drills import frame_record

PLAYBOOK = "playbooks/security_breach.yml"
DESCRIPTION = "GuardDuty: a user's key used from an attacker's address, a public bucket, a C2 instance: contain all"
GATE = "security-breach-containment"
ATTACKER = "203.0.113.66/32"
PIPELINE = "app-deploy"


def _pipeline(sandbox) -> None:
    """The seeds' deploy-app pipeline (Source, Build, Deploy) on CodePipeline, unless it exists."""
    cp = sandbox.client("codepipeline")
    if PIPELINE in [p["name"] for p in cp.list_pipelines()["pipelines"]]:
        return
    iam = sandbox.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    try:
        role = iam.get_role(RoleName="codepipeline-role")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="codepipeline-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]

    def action(category, provider, configuration, inputs=(), outputs=()):
        return {
            "name": f"{category.lower()}-action",
            "actionTypeId": {"category": category, "owner": "AWS", "provider": provider, "version": "1"},
            "configuration": configuration,
            "inputArtifacts": [{"name": n} for n in inputs],
            "outputArtifacts": [{"name": n} for n in outputs],
        }

    stages = [
        {"name": "Source", "actions": [action("Source", "S3", {"S3Bucket": "b", "S3ObjectKey": "k"}, outputs=["src"])]},
        {"name": "Build", "actions": [action("Build", "CodeBuild", {"ProjectName": "app"}, ["src"], ["img"])]},
        {
            "name": "Deploy",
            "actions": [action("Deploy", "ECS", {"ClusterName": "shop", "ServiceName": "shop-api"}, ["img"])],
        },
    ]
    cp.create_pipeline(
        pipeline={
            "name": PIPELINE,
            "roleArn": role,
            "artifactStore": {"type": "S3", "location": "firebreak-sandbox-uploads"},
            "stages": stages,
        }
    )


def inject(sandbox) -> dict:
    """Switch GuardDuty on (its findings name the user, the bucket and the instance), create the pipeline; return
    the playbook's extra vars and, under ``_drill``, what ``verify`` needs."""
    manifest = (sandbox.manifest or {}).get("aws") or {}
    if not manifest.get("evidence"):
        raise RuntimeError("the sandbox has no AWS seed (manifest['aws']['evidence']); was it started with AWS?")
    guardduty = sandbox.client("guardduty")
    if not guardduty.list_detectors()["DetectorIds"]:
        guardduty.create_detector(Enable=True)
    _pipeline(sandbox)
    evidence, s3 = manifest["evidence"], manifest["s3"]
    user = manifest["iam"]["compromised_user"]
    return {
        "security_breach_principal": user,
        "security_breach_addresses": [ATTACKER],
        "security_breach_waf_ip_set": manifest["waf"]["ip_set"]["name"],
        "security_breach_instance": evidence["instance_id"],
        "security_breach_bucket": s3["uploads_bucket"],
        "security_breach_pipelines": [PIPELINE],
        "security_breach_evidence_sources": [
            {"bucket": evidence["log_bucket"], "prefix": evidence["cloudtrail_prefix"]},
            {"bucket": evidence["log_bucket"], "prefix": evidence["access_log_prefix"]},
        ],
        "security_breach_evidence_bucket": s3["evidence_bucket"],
        "firebreak_gate_approvals": {GATE: "yes"},
        "firebreak_gate_approver": "drill",
        "incident_gate_allow_unpinned": True,
        "_drill": {
            "user": user,
            "address": ATTACKER,
            "ip_set": manifest["waf"]["ip_set"],
            "scope": manifest["waf"]["scope"],
            "instance": evidence["instance_id"],
            "eni_ids": evidence["eni_ids"],
            "bucket": s3["uploads_bucket"],
            "evidence_bucket": s3["evidence_bucket"],
            "log_objects": sorted(evidence["log_objects"]),
            "pipeline": PIPELINE,
            "fault": f"GuardDuty: {user}'s key used from {ATTACKER}; {s3['uploads_bucket']} public; "
            f"{evidence['instance_id']} talks to a C2 domain",
        },
    }


def state(sandbox, drill: dict) -> dict:
    """The state the containment changes, read from moto."""
    ec2 = sandbox.client("ec2")
    keys = sandbox.client("iam").list_access_keys(UserName=drill["user"])["AccessKeyMetadata"]
    ip_set = sandbox.client("wafv2").get_ip_set(
        Name=drill["ip_set"]["name"], Scope=drill["scope"], Id=drill["ip_set"]["id"]
    )["IPSet"]
    enis = ec2.describe_network_interfaces(NetworkInterfaceIds=drill["eni_ids"])["NetworkInterfaces"]
    s3 = sandbox.client("s3")
    try:
        bpa = s3.get_public_access_block(Bucket=drill["bucket"])["PublicAccessBlockConfiguration"]
    except s3.exceptions.ClientError:
        bpa = None
    stages = sandbox.client("codepipeline").get_pipeline_state(name=drill["pipeline"])["stageStates"]
    return {
        "keys": sorted((k["AccessKeyId"], k["Status"]) for k in keys),
        "addresses": sorted(ip_set["Addresses"]),
        "groups": {e["NetworkInterfaceId"]: sorted(g["GroupId"] for g in e["Groups"]) for e in enis},
        "bpa": bpa,
        "transitions": {
            s["stageName"]: s["inboundTransitionState"]["enabled"] for s in stages if "inboundTransitionState" in s
        },
    }


def verify(sandbox, context: dict) -> list[str]:
    """Check in moto that everything named is contained and the logs are in the evidence bucket."""
    drill = context["_drill"]
    now = state(sandbox, drill)
    active = [key for key, status in now["keys"] if status != "Inactive"]
    assert not active, f"{drill['user']} still has active access keys {active}"
    assert drill["address"] in now["addresses"], f"{drill['address']} is not in the WAF IP set {now['addresses']}"
    groups = {group for ids in now["groups"].values() for group in ids}
    assert len(groups) == 1, f"{drill['instance']}'s interfaces are not isolated: {now['groups']}"
    assert now["bpa"] and all(now["bpa"].values()), f"{drill['bucket']} Block Public Access: {now['bpa']}"
    assert not any(now["transitions"].values()), f"{drill['pipeline']} still deploys: {now['transitions']}"
    copied = [
        obj["Key"]
        for page in sandbox.client("s3").get_paginator("list_objects_v2").paginate(Bucket=drill["evidence_bucket"])
        for obj in page.get("Contents", [])
    ]
    missing = [key for key in drill["log_objects"] if not any(c.endswith(key) for c in copied)]
    assert not missing, f"logs not copied into {drill['evidence_bucket']}: {missing}"
    return [
        f"{drill['user']}: {len(now['keys'])} access key(s) inactive",
        f"{drill['address']} in WAF IP set {drill['ip_set']['name']}",
        f"{drill['instance']}: every interface in {sorted(groups)[0]}",
        f"{drill['bucket']}: Block Public Access on",
        f"{drill['pipeline']}: transitions disabled",
        f"{len(drill['log_objects'])} log object(s) copied into {drill['evidence_bucket']}",
    ]


def verify_record(timeline: Path, report: Path) -> list[str]:
    """The frame's record: declared and resolved (real), the gate's approval, and a report naming the severity."""
    frame = frame_record(timeline, report, gate=GATE)
    return [
        *frame.summary(),
        f"report {Path(report).name} verifies and names severity {frame.declared['severity']}",
    ]
