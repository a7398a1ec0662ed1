"""A snapshot of the sandbox's mutable state (AWS through the fault proxy, Kubernetes through the test server), to
compare before and after a run that must change nothing.  A few dozen calls; the read calls go into the proxy log
like any other, so take the snapshot outside the window a test reads from that log."""

from __future__ import annotations

import json
import urllib.request


def _safe(fn):
    """``fn()``, or the error code when the sandbox has no such resource or call (then compared as such)."""
    try:
        return fn()
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
        return {"error": code or type(exc).__name__}


def _waf(box) -> dict:
    waf = box.client("wafv2")
    out = {}
    for scope in ("REGIONAL", "CLOUDFRONT"):
        for ip_set in _safe(lambda s=scope: waf.list_ip_sets(Scope=s, Limit=100)["IPSets"]) or []:
            if not isinstance(ip_set, dict) or "Id" not in ip_set:
                continue
            got = waf.get_ip_set(Name=ip_set["Name"], Scope=scope, Id=ip_set["Id"])["IPSet"]
            out[f"{scope}/{ip_set['Name']}"] = sorted(got["Addresses"])
        for acl in _safe(lambda s=scope: waf.list_web_acls(Scope=s, Limit=100)["WebACLs"]) or []:
            if isinstance(acl, dict) and "Id" in acl:
                got = waf.get_web_acl(Name=acl["Name"], Scope=scope, Id=acl["Id"])["WebACL"]
                out[f"acl:{scope}/{acl['Name']}"] = sorted(r["Name"] for r in got.get("Rules", []))
    return out


def _nacl(box) -> dict:
    acls = box.client("ec2").describe_network_acls()["NetworkAcls"]
    return {
        acl["NetworkAclId"]: {
            "entries": sorted(
                (e["RuleNumber"], e["Egress"], e["RuleAction"], e.get("CidrBlock", ""), e.get("Protocol", ""))
                for e in acl["Entries"]
            ),
            "subnets": sorted(a["SubnetId"] for a in acl.get("Associations", [])),
        }
        for acl in acls
    }


def _ec2(box) -> dict:
    out = {}
    for res in box.client("ec2").describe_instances()["Reservations"]:
        for inst in res["Instances"]:
            out[inst["InstanceId"]] = {
                "state": inst["State"]["Name"],
                "groups": sorted(g["GroupId"] for g in inst.get("SecurityGroups", [])),
            }
    return out


def _iam(box) -> dict:
    iam = box.client("iam")
    out = {}
    for user in iam.list_users()["Users"]:
        name = user["UserName"]
        out[name] = {
            "keys": sorted(
                (k["AccessKeyId"], k["Status"]) for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
            ),
            "inline": sorted(iam.list_user_policies(UserName=name)["PolicyNames"]),
            "attached": sorted(
                p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]
            ),
        }
    for role in iam.list_roles()["Roles"]:
        name = role["RoleName"]
        out[f"role:{name}"] = {
            "inline": sorted(iam.list_role_policies(RoleName=name)["PolicyNames"]),
            "attached": sorted(
                p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
            ),
        }
    return out


def _s3(box) -> dict:
    s3 = box.client("s3")
    out = {}
    for bucket in s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        versions = _safe(lambda n=name: s3.list_object_versions(Bucket=n))
        out[name] = {
            "policy": _safe(lambda n=name: json.loads(s3.get_bucket_policy(Bucket=n)["Policy"])),
            "bpa": _safe(lambda n=name: s3.get_public_access_block(Bucket=n)["PublicAccessBlockConfiguration"]),
            "versions": len(versions.get("Versions", [])) if "error" not in versions else versions,
            "markers": len(versions.get("DeleteMarkers", [])) if "error" not in versions else None,
        }
    return out


def _ecs(box) -> dict:
    ecs = box.client("ecs")
    out = {}
    for cluster in ecs.list_clusters()["clusterArns"]:
        arns = ecs.list_services(cluster=cluster)["serviceArns"]
        for svc in ecs.describe_services(cluster=cluster, services=arns)["services"] if arns else []:
            out[f"{cluster}/{svc['serviceName']}"] = {
                "task_definition": svc["taskDefinition"],
                "desired": svc["desiredCount"],
            }
    return out


def _rds(box) -> dict:
    rds = box.client("rds")
    clusters = {c["DBClusterIdentifier"]: c["Status"] for c in rds.describe_db_clusters()["DBClusters"]}
    instances = {i["DBInstanceIdentifier"]: i["DBInstanceStatus"] for i in rds.describe_db_instances()["DBInstances"]}
    return {"clusters": clusters, "instances": instances}


def _ssm(box) -> dict:
    params = box.client("ssm").describe_parameters(MaxResults=50).get("Parameters", [])
    return {p["Name"]: p.get("Version") for p in params}


def _secrets(box) -> dict:
    sm = box.client("secretsmanager")
    return {
        s["Name"]: sorted(
            (v, tuple(sorted(stages)))
            for v, stages in (sm.describe_secret(SecretId=s["ARN"]).get("VersionIdsToStages") or {}).items()
        )
        for s in sm.list_secrets()["SecretList"]
    }


def _pipelines(box) -> dict:
    cp = box.client("codepipeline")
    out = {}
    for pipe in cp.list_pipelines().get("pipelines", []):
        state = cp.get_pipeline_state(name=pipe["name"])
        out[pipe["name"]] = {
            s["stageName"]: (s.get("inboundTransitionState") or {}).get("enabled") for s in state["stageStates"]
        }
    return out


def _k8s(box) -> dict:
    if not box.kube_url:
        return {}
    with urllib.request.urlopen(box.kube_url + "/apis/apps/v1/deployments", timeout=10) as resp:
        items = json.loads(resp.read())["items"]
    return {
        f"{d['metadata']['namespace']}/{d['metadata']['name']}": {
            "replicas": d["spec"].get("replicas"),
            "images": [c["image"] for c in d["spec"]["template"]["spec"]["containers"]],
            "annotations": sorted((d["spec"]["template"]["metadata"].get("annotations") or {}).items()),
        }
        for d in items
    }


AREAS = {
    "waf": _waf,
    "nacl": _nacl,
    "ec2": _ec2,
    "iam": _iam,
    "s3": _s3,
    "ecs": _ecs,
    "rds": _rds,
    "ssm": _ssm,
    "secretsmanager": _secrets,
    "codepipeline": _pipelines,
    "kubernetes": _k8s,
}


def snapshot(box) -> dict:
    """The sandbox's mutable state, area by area (an area that cannot be read records its error)."""
    return {area: _safe(lambda fn=fn: fn(box)) for area, fn in AREAS.items()}


def differences(before: dict, after: dict) -> list[str]:
    """Area/key paths that differ between two snapshots (empty when nothing changed)."""
    found = []
    for area in sorted(set(before) | set(after)):
        a, b = before.get(area), after.get(area)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    found.append(f"{area}/{key}: {a.get(key)!r} -> {b.get(key)!r}")
        else:
            found.append(f"{area}: {a!r} -> {b!r}")
    return found
