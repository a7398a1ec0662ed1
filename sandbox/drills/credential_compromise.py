"""Drill: a compromised credential (seeds/ecs-fargate-plan.md 1-3 "IAM role misuse, leaked keys"; seeds/
eks-batch-stepfunctions-plan.md "IAM/IRSA misuse: revoke/rotate secrets"; incident-procedures.md security steps).

The fault (``inject``): the seeded user ``ci-deployer``'s key was used from ``203.0.113.66`` (the sandbox's canned
CloudTrail history: ConsoleLogin, CreateAccessKey, GetSecretValue of ``app/admin``, PutBucketPolicy); the ECS
service ``admin-api`` reads ``app/admin`` from its task definition and the Kubernetes Deployment ``shop/api`` reads
it too. The runbook (``playbooks/credential_compromise.yml``) must copy the CloudTrail logs into the evidence
bucket, deactivate the user's keys and revoke its sessions, rotate ``app/admin``, redeploy ``admin-api`` and restart
``shop/api``, behind one gate (approved here), and put the user's CloudTrail events in the report.

``inject_irsa`` is the IRSA variant: a role ``batch-irsa`` trusted by an EKS OIDC provider for the service account
``results/batch-runner``, whose CloudTrail events (AssumeRoleWithWebIdentity, then GetSecretValue from an unknown
address) the fault proxy answers.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

from sandbox.drills import frame_record

PLAYBOOK = "playbooks/credential_compromise.yml"
DESCRIPTION = "A CI user's key used from an attacker's address: keys off, sessions revoked, app/admin rotated"
GATE = "credential-compromise-containment"
READER = "admin-api"  # the ECS service whose task definition reads the secret
K8S_READER = ("shop", "Deployment", "api")
IRSA_ROLE = "batch-irsa"
OIDC_HOST = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
SERVICE_ACCOUNT = "system:serviceaccount:results:batch-runner"
IRSA_ADDRESS = "198.51.100.99"


def _reader(sandbox, secret_arn: str) -> None:
    """The ECS service ``admin-api`` in cluster ``shop``, reading the secret's ADMIN_PASS (unless it exists)."""
    ecs = sandbox.client("ecs")
    found = ecs.describe_services(cluster="shop", services=[READER])["services"]
    if any(s["status"] == "ACTIVE" for s in found):
        return
    ecs.register_task_definition(
        family=READER,
        containerDefinitions=[
            {
                "name": "app",
                "image": f"registry.local/{READER}:1.0.0",
                "memory": 256,
                "secrets": [{"name": "ADMIN_PASS", "valueFrom": f"{secret_arn}:ADMIN_PASS::"}],
            }
        ],
    )
    ecs.create_service(cluster="shop", serviceName=READER, taskDefinition=READER, desiredCount=1)


def _common(sandbox) -> dict:
    manifest = (sandbox.manifest or {}).get("aws") or {}
    if not manifest.get("evidence") or not manifest.get("secretsmanager"):
        raise RuntimeError("the sandbox has no AWS seed (manifest['aws']); was it started with AWS?")
    secret = manifest["secretsmanager"]
    _reader(sandbox, secret["arn"])
    return manifest


def inject(sandbox) -> dict:
    """The leaked user key (the canned CloudTrail history), an ECS and a Kubernetes reader of ``app/admin``;
    returns the playbook's extra vars and, under ``_drill``, what ``verify`` needs."""
    manifest = _common(sandbox)
    evidence, s3, secret = manifest["evidence"], manifest["s3"], manifest["secretsmanager"]
    user = manifest["iam"]["compromised_user"]
    return {
        "credential_compromise_user": user,
        "credential_compromise_secret": secret["name"],
        "credential_compromise_ecs_clusters": ["shop"],
        "credential_compromise_k8s_readers": ["/".join((K8S_READER[0], K8S_READER[2]))],
        "credential_compromise_evidence_sources": [
            {"bucket": evidence["log_bucket"], "prefix": evidence["cloudtrail_prefix"]},
        ],
        "credential_compromise_evidence_bucket": s3["evidence_bucket"],
        "credential_compromise_health_timeout": 60,
        "firebreak_gate_approvals": {GATE: "yes"},
        "firebreak_gate_approver": "drill",
        "incident_gate_allow_unpinned": True,
        "_drill": {
            "kind": "user",
            "principal": user,
            "secret": secret["name"],
            "secret_version": current_version(sandbox, secret["name"]),
            "reader": READER,
            "reader_deployment": primary_deployment(sandbox, READER),
            "k8s_reader": list(K8S_READER),
            "evidence_bucket": s3["evidence_bucket"],
            "log_objects": sorted(k for k in evidence["log_objects"] if evidence["cloudtrail_prefix"] in k),
            "fault": f"{user}'s key used from 203.0.113.66 (CreateAccessKey, GetSecretValue of {secret['name']})",
        },
    }


def _irsa_events(role_arn: str, secret: str) -> list[dict]:
    """CloudTrail events of the IRSA role, as LookupEvents answers them (newest first)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    session = "botocore-session-1764979200"
    specs = [
        (30, "AssumeRoleWithWebIdentity", "sts.amazonaws.com", True, [("AWS::IAM::Role", role_arn)], SERVICE_ACCOUNT),
        (
            25,
            "GetSecretValue",
            "secretsmanager.amazonaws.com",
            True,
            [("AWS::SecretsManager::Secret", secret)],
            session,
        ),
        (22, "ListBuckets", "s3.amazonaws.com", True, [], session),
    ]
    events = []
    for minutes, name, source, read_only, resources, username in specs:
        when = now - dt.timedelta(minutes=minutes)
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"firebreak-sandbox/irsa/{name}/{minutes}"))
        record = {
            "eventVersion": "1.09",
            "userIdentity": {"type": "WebIdentityUser" if name.startswith("Assume") else "AssumedRole"},
            "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": source,
            "eventName": name,
            "awsRegion": "us-east-1",
            "sourceIPAddress": IRSA_ADDRESS,
            "userAgent": "aws-cli/2.15.0",
            "eventID": event_id,
            "readOnly": read_only,
        }
        events.append(
            {
                "EventId": event_id,
                "EventName": name,
                "ReadOnly": "true" if read_only else "false",
                "EventTime": when.timestamp(),
                "EventSource": source,
                "Username": username,
                "Resources": [{"ResourceType": t, "ResourceName": n} for t, n in resources],
                "CloudTrailEvent": json.dumps(record),
            }
        )
    return sorted(events, key=lambda e: e["EventTime"], reverse=True)


def inject_irsa(sandbox) -> dict:
    """The IRSA variant: the role ``batch-irsa`` trusted by an EKS OIDC provider, its CloudTrail events answered
    by the fault proxy, the same readers of ``app/admin``."""
    manifest = _common(sandbox)
    secret = manifest["secretsmanager"]
    iam = sandbox.client("iam")
    provider = iam.create_open_id_connect_provider(
        Url=f"https://{OIDC_HOST}",
        ClientIDList=["sts.amazonaws.com"],
        ThumbprintList=["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"],
    )["OpenIDConnectProviderArn"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {f"{OIDC_HOST}:sub": SERVICE_ACCOUNT}},
            }
        ],
    }
    role = iam.create_role(RoleName=IRSA_ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    sandbox.proxy.add_rule(
        {
            "service": "cloudtrail",
            "action": "LookupEvents",
            "fault": "canned",
            "body": {"Events": _irsa_events(role["Arn"], secret["name"])},
            "description": f"CloudTrail events of the IRSA role {IRSA_ROLE} (moto lacks LookupEvents)",
        }
    )
    return {
        "credential_compromise_role": IRSA_ROLE,
        "credential_compromise_secret": secret["name"],
        "credential_compromise_ecs_clusters": ["shop"],
        "credential_compromise_k8s_readers": ["/".join(K8S_READER)],
        "credential_compromise_health_timeout": 60,
        "firebreak_gate_approvals": {GATE: "yes"},
        "firebreak_gate_approver": "drill",
        "incident_gate_allow_unpinned": True,
        "_drill": {
            "kind": "role",
            "principal": IRSA_ROLE,
            "role_arn": role["Arn"],
            "secret": secret["name"],
            "secret_version": current_version(sandbox, secret["name"]),
            "reader": READER,
            "reader_deployment": primary_deployment(sandbox, READER),
            "k8s_reader": list(K8S_READER),
            "fault": f"IRSA role {IRSA_ROLE} assumed for {SERVICE_ACCOUNT} from {IRSA_ADDRESS}; GetSecretValue",
        },
    }


def primary_deployment(sandbox, service: str) -> str:
    described = sandbox.client("ecs").describe_services(cluster="shop", services=[service])["services"][0]
    return next(d["id"] for d in described["deployments"] if d["status"] == "PRIMARY")


def current_version(sandbox, secret: str) -> str:
    stages = sandbox.client("secretsmanager").describe_secret(SecretId=secret)["VersionIdsToStages"]
    return next(version for version, labels in stages.items() if "AWSCURRENT" in labels)


def _kube(sandbox, path: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(sandbox.kube_url + path, timeout=10) as resp:
        return json.loads(resp.read())


def state(sandbox, drill: dict) -> dict:
    """What the scenario changes, read from moto and the Kubernetes API test server."""
    iam = sandbox.client("iam")
    if drill["kind"] == "user":
        keys = iam.list_access_keys(UserName=drill["principal"])["AccessKeyMetadata"]
        inline = iam.list_user_policies(UserName=drill["principal"])["PolicyNames"]
    else:
        keys, inline = [], iam.list_role_policies(RoleName=drill["principal"])["PolicyNames"]
    namespace, _kind, name = drill["k8s_reader"]
    deployment = _kube(sandbox, f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
    annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    return {
        "keys": sorted((k["AccessKeyId"], k["Status"]) for k in keys),
        "inline_policies": sorted(inline),
        "secret_version": current_version(sandbox, drill["secret"]),
        "ecs_primary": primary_deployment(sandbox, drill["reader"]),
        "k8s_restarted_at": annotations.get("kubectl.kubernetes.io/restartedAt"),
    }


def verify(sandbox, context: dict) -> list[str]:
    """Check in the sandbox that the credential is quarantined, the secret rotated and the readers redeployed."""
    drill = context["_drill"]
    now = state(sandbox, drill)
    active = [key for key, status in now["keys"] if status != "Inactive"]
    assert not active, f"{drill['principal']} still has active access keys {active}"
    deny = [p for p in now["inline_policies"] if p.startswith("firebreak-revoke-issued-")]
    assert deny, f"{drill['principal']}: no session revocation policy in {now['inline_policies']}"
    assert now["secret_version"] != drill["secret_version"], f"{drill['secret']} still at {drill['secret_version']}"
    assert now["ecs_primary"] != drill["reader_deployment"], f"ECS {drill['reader']} was not redeployed"
    assert now["k8s_restarted_at"], f"{'/'.join(drill['k8s_reader'])} was not restarted"
    lines = [
        f"{drill['kind']} {drill['principal']}: {len(now['keys'])} access key(s) inactive, sessions denied ({deny[0]})",
        f"{drill['secret']}: AWSCURRENT is a new version",
        f"ECS {drill['reader']} redeployed; {'/'.join(drill['k8s_reader'])} restarted at {now['k8s_restarted_at']}",
    ]
    if drill.get("evidence_bucket"):
        copied = [
            obj["Key"]
            for page in sandbox.client("s3").get_paginator("list_objects_v2").paginate(Bucket=drill["evidence_bucket"])
            for obj in page.get("Contents", [])
        ]
        missing = [key for key in drill["log_objects"] if not any(c.endswith(key) for c in copied)]
        assert not missing, f"logs not copied into {drill['evidence_bucket']}: {missing}"
        lines.append(f"{len(drill['log_objects'])} CloudTrail log object(s) copied into {drill['evidence_bucket']}")
    return lines


def verify_record(timeline: Path, report: Path) -> list[str]:
    """The frame's record: declared and resolved, the gate's decision, and what the credential did in the report."""
    frame = frame_record(timeline, report, gate=GATE, severity_in_report=False)
    did = [r["msg"] for r in frame.records if r["event"] == "note" and (r.get("msg") or "").startswith("What ")]
    assert did and "GetSecretValue" in did[-1], f"no record of what the credential did in {timeline}: {did}"
    assert "GetSecretValue" in frame.report, f"the report {report} does not list the credential's CloudTrail events"
    return [
        "declared and resolved in the timeline",
        f"gate: {frame.gates[-1].split(':', 1)[0]}",
        f"report {Path(report).name} verifies and lists what the credential did",
    ]
