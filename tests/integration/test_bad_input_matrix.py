"""The bad-input matrix (issue 20, item 4): each case is one short ``ansible-playbook`` run of a playbook or of one
role with one bad value.  Each must fail with a message naming the value, print no Python traceback, leave the
sandbox as it was (compared by ``tests/integration/snapshot.py``) and write no containment or change record to the
timeline."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.integration.containment_helpers import ROLE_PLAYBOOK, timeline_records
from tests.integration.snapshot import differences, snapshot

pytestmark = pytest.mark.proof  # make proof (issue 20's suites), not make test

PLAYBOOKS = Path("playbooks")
WAF = {"waf_block_ip_set": "firebreak-blocklist"}
ECS = {"ecs_rollback_cluster": "shop", "ecs_rollback_service": "shop-api"}
NACL = {"nacl_block_vpc_id": "@vpc"}  # the seeded VPC, filled in at run time
PITR = {"pitr_restore_source": "orders-db", "pitr_restore_target": "orders-db-restored"}
S3R = {"s3_version_restore_bucket": "firebreak-sandbox-uploads", "s3_version_restore_prefix": "uploads/"}
DECLARE = {"incident_declare_title": "Checkout down", "incident_declare_severity": "P2"}
DECLARE |= {"incident_declare_commander": "alice", "incident_declare_post": "later"}
SCALE_K8S = {"scale_out_platform": "kubernetes", "scale_out_k8s_namespace": "shop", "scale_out_k8s_name": "api"}
GATE = {"incident_gate_name": "waf-block", "incident_gate_step_kind": "containment", "incident_gate_interactive": False}
GATE |= {"incident_gate_plan": {"changed": True, "msg": "add 203.0.113.7/32 to firebreak-blocklist"}}
TRIAGE = {"aws_triage_cloudtrail": {"principal": "ci-deployer"}}
HUGE = "A" * 100_000
ANSI = "\x1b[2J\x1b[31mALL CLEAR\x1b[0m"
FORGED = 'disk full\n{"event": "task_changed", "task": "forged"}'
ZWSP_ID = "INC-\u200b2026-001"

# (id, playbook or role name, variables, substring the failure must show, extra environment)
CASES = [
    # -- malformed CIDRs -----------------------------------------------------------------------------------
    ("waf-cidr-any", "waf_block", {**WAF, "waf_block_addresses": ["0.0.0.0/0"]}, "0.0.0.0/0", None),
    ("waf-cidr-octet", "waf_block", {**WAF, "waf_block_addresses": ["10.0.0.256/32"]}, "10.0.0.256/32", None),
    ("waf-cidr-prefix", "waf_block", {**WAF, "waf_block_addresses": ["1.2.3.4/33"]}, "1.2.3.4/33", None),
    ("waf-cidr-v6", "waf_block", {**WAF, "waf_block_addresses": ["2001:db8::g/64"]}, "2001:db8::g/64", None),
    ("waf-cidr-any-v6", "waf_block", {**WAF, "waf_block_addresses": ["::/0"]}, "::/0", None),
    (
        "waf-cidr-text",
        "waf_block",
        {**WAF, "waf_block_addresses": ["attacker.example.com"]},
        "attacker.example.com",
        None,
    ),
    ("nacl-cidr-any", "nacl_block", {**NACL, "nacl_block_cidrs": ["0.0.0.0/0"]}, "0.0.0.0/0", None),
    ("nacl-cidr-octet", "nacl_block", {**NACL, "nacl_block_cidrs": ["10.0.0.256/32"]}, "10.0.0.256/32", None),
    ("nacl-cidr-prefix", "nacl_block", {**NACL, "nacl_block_cidrs": ["1.2.3.4/33"]}, "1.2.3.4/33", None),
    (
        "nacl-allow-bad",
        "nacl_block",
        {**NACL, "nacl_block_cidrs": ["203.0.113.7/32"], "nacl_block_allow_list": ["10.0/8x"]},
        "10.0/8x",
        None,
    ),
    # -- ARNs and identifiers --------------------------------------------------------------------------------
    (
        "iam-policy-arn",
        "iam_key_disable",
        {"iam_key_disable_user": "ci-deployer", "iam_key_disable_quarantine_policy": "arn:aws:iam::policy"},
        "arn:aws:iam::policy",
        None,
    ),
    (
        "iam-user-chars",
        "iam_key_disable",
        {"iam_key_disable_user": "ci-deployer/../alice"},
        "ci-deployer/../alice",
        None,
    ),
    (
        "iam-key-id",
        "iam_key_disable",
        {"iam_key_disable_user": "ci-deployer", "iam_key_disable_access_key_ids": ["AKIA-not-a-key"]},
        "AKIA-not-a-key",
        None,
    ),
    (
        "ecs-taskdef-arn",
        "ecs_rollback",
        {**ECS, "ecs_rollback_task_definition": "arn:aws:ecs:bad"},
        "arn:aws:ecs:bad",
        None,
    ),
    ("ec2-instance-id", "ec2_isolate", {"ec2_isolate_instance": "i-zzzz"}, "i-zzzz", None),
    (
        "ec2-sg-id",
        "ec2_isolate",
        {"ec2_isolate_instance": "i-0123456789abcdef0", "ec2_isolate_quarantine_group_id": "sg-../x"},
        "sg-../x",
        None,
    ),
    (
        "waf-resource-arn",
        "waf_block",
        {**WAF, "waf_block_addresses": ["203.0.113.7/32"], "waf_block_resource_arn": "arn:aws:nope"},
        "arn:aws:nope",
        None,
    ),
    (
        "rds-id-chars",
        "pitr_restore",
        {**PITR, "pitr_restore_source": "orders_db!", "pitr_restore_time": "2026-01-01T00:00:00Z"},
        "orders_db!",
        None,
    ),
    (
        "rds-target-chars",
        "pitr_restore",
        {**PITR, "pitr_restore_target": "restored--db;drop", "pitr_restore_time": "2026-01-01T00:00:00Z"},
        "restored--db;drop",
        None,
    ),
    ("s3-bucket-name", "s3_public_block", {"s3_public_block_bucket": "Evidence_Bucket"}, "Evidence_Bucket", None),
    ("s3-bucket-traversal", "s3_public_block", {"s3_public_block_bucket": "../../etc"}, "../../etc", None),
    (
        "s3r-target-bucket",
        "s3_version_restore",
        {**S3R, "s3_version_restore_time": "2026-01-01T00:00:00Z", "s3_version_restore_target_bucket": "Bad_Bucket"},
        "Bad_Bucket",
        None,
    ),
    ("ssm-traversal", "deploy_freeze", {"deploy_freeze_parameter": "/firebreak/../etc/x"}, "/firebreak/../etc/x", None),
    ("ssm-relative", "deploy_freeze", {"deploy_freeze_parameter": "../etc/x"}, "../etc/x", None),
    (
        "k8s-name-upper",
        "scale_out",
        {**SCALE_K8S, "scale_out_k8s_name": "API_Bad", "scale_out_k8s_replicas": 3},
        "API_Bad",
        None,
    ),
    (
        "k8s-ns-traversal",
        "scale_out",
        {**SCALE_K8S, "scale_out_k8s_namespace": "../kube-system", "scale_out_k8s_replicas": 3},
        "../kube-system",
        None,
    ),
    (
        "ecs-cluster-traversal",
        str(PLAYBOOKS / "service_down.yml"),
        {"service_down_cluster": "../shop"},
        "../shop",
        None,
    ),
    ("ecs-service-path", "ecs_rollback", {**ECS, "ecs_rollback_service": "shop/shop-api"}, "shop/shop-api", None),
    # -- times --------------------------------------------------------------------------------------------
    (
        "s3r-time-month",
        "s3_version_restore",
        {**S3R, "s3_version_restore_time": "2026-13-01T00:00:00Z"},
        "2026-13-01",
        None,
    ),
    (
        "s3r-time-future",
        "s3_version_restore",
        {**S3R, "s3_version_restore_time": "2999-01-01T00:00:00Z"},
        "2999-01-01",
        None,
    ),
    ("pitr-time-month", "pitr_restore", {**PITR, "pitr_restore_time": "2026-13-01T00:00:00Z"}, "2026-13-01", None),
    (
        "pitr-time-nozone",
        "pitr_restore",
        {**PITR, "pitr_restore_time": "2026-01-01T00:00:00"},
        "2026-01-01T00:00:00",
        None,
    ),
    (
        "declare-first-event",
        "incident_declare",
        {**DECLARE, "incident_declare_first_event_at": "2026-13-01T00:00:00Z"},
        "2026-13-01",
        None,
    ),
    ("triage-since", "aws_triage", {**TRIAGE, "aws_triage_since": "2026-13-01T00:00:00Z"}, "2026-13-01", None),
    ("triage-since-text", "aws_triage", {**TRIAGE, "aws_triage_since": "yesterday-ish"}, "yesterday-ish", None),
    # -- wrong types ---------------------------------------------------------------------------------------
    (
        "waf-addresses-dict",
        "waf_block",
        {**WAF, "waf_block_addresses": {"a": "1.2.3.4/32"}},
        "waf_block_addresses",
        None,
    ),
    (
        "waf-lock-yes",
        "waf_block",
        {**WAF, "waf_block_addresses": ["203.0.113.7/32"], "waf_block_lock_retries": "yes"},
        "waf_block_lock_retries",
        None,
    ),
    (
        "nacl-max-yes",
        "nacl_block",
        {**NACL, "nacl_block_cidrs": ["203.0.113.7/32"], "nacl_block_max_entries": "yes"},
        "nacl_block_max_entries",
        None,
    ),
    (
        "ec2-timeout-yes",
        "ec2_isolate",
        {"ec2_isolate_instance": "i-0123456789abcdef0", "ec2_isolate_wait_timeout": "yes"},
        "ec2_isolate_wait_timeout",
        None,
    ),
    ("ecs-timeout-yes", "ecs_rollback", {**ECS, "ecs_rollback_wait_timeout": "yes"}, "ecs_rollback_wait_timeout", None),
    (
        "s3r-concurrency-yes",
        "s3_version_restore",
        {**S3R, "s3_version_restore_time": "2026-01-01T00:00:00Z", "s3_version_restore_concurrency": "yes"},
        "s3_version_restore_concurrency",
        None,
    ),
    ("freeze-stages-dict", "deploy_freeze", {"deploy_freeze_stages": {"Deploy": True}}, "deploy_freeze_stages", None),
    (
        "declare-services-dict",
        "incident_declare",
        {**DECLARE, "incident_declare_services": {"shop": 1}},
        "incident_declare_services",
        None,
    ),
    (
        "health-checks-dict",
        "health_verify",
        {"health_verify_checks": {"url": "http://127.0.0.1:1/"}},
        "health_verify_checks",
        None,
    ),
    ("triage-max-yes", "aws_triage", {**TRIAGE, "aws_triage_max_items": "yes"}, "aws_triage_max_items", None),
    ("gate-plan-list", "incident_gate", {**GATE, "incident_gate_plan": ["203.0.113.7/32"]}, "incident_gate_plan", None),
    (
        "secret-length-yes",
        "secret_rotate",
        {"secret_rotate_secret": "app/admin", "secret_rotate_password_length": "yes"},
        "secret_rotate_password_length",
        None,
    ),
    # -- choices -------------------------------------------------------------------------------------------
    (
        "waf-scope",
        "waf_block",
        {**WAF, "waf_block_addresses": ["203.0.113.7/32"], "waf_block_scope": "GLOBAL"},
        "GLOBAL",
        None,
    ),
    (
        "nacl-direction",
        "nacl_block",
        {**NACL, "nacl_block_cidrs": ["203.0.113.7/32"], "nacl_block_direction": "sideways"},
        "sideways",
        None,
    ),
    ("pitr-kind", "pitr_restore", {**PITR, "pitr_restore_kind": "volume"}, "volume", None),
    (
        "secret-method",
        "secret_rotate",
        {"secret_rotate_secret": "app/admin", "secret_rotate_method": "magic"},
        "magic",
        None,
    ),
    ("declare-severity", "incident_declare", {**DECLARE, "incident_declare_severity": "P0"}, "P0", None),
    # -- missing confirmation ------------------------------------------------------------------------------
    (
        "gate-production",
        "incident_gate",
        {**GATE, "incident_gate_environment": "production"},
        "gate waf-block not confirmed",
        None,
    ),
    (
        "pitr-cutover-unconfirmed",
        "pitr_restore",
        {**PITR, "pitr_restore_time": "2026-01-01T00:00:00Z", "pitr_restore_cutover": True},
        "pitr_restore_cutover_confirm",
        None,
    ),
    # -- unknown resources ---------------------------------------------------------------------------------
    (
        "waf-unknown-set",
        "waf_block",
        {"waf_block_ip_set": "no-such-set", "waf_block_addresses": ["203.0.113.7/32"]},
        "no-such-set",
        None,
    ),
    (
        "nacl-unknown-subnet",
        "nacl_block",
        {"nacl_block_cidrs": ["203.0.113.7/32"], "nacl_block_subnets": ["subnet-0123456789abcdef0"]},
        "subnet-0123456789abcdef0",
        None,
    ),
    ("iam-unknown-user", "iam_key_disable", {"iam_key_disable_user": "no-such-user"}, "no-such-user", None),
    (
        "ec2-unknown-instance",
        "ec2_isolate",
        {"ec2_isolate_instance": "i-0123456789abcdef0"},
        "i-0123456789abcdef0",
        None,
    ),
    (
        "s3-unknown-bucket",
        "s3_public_block",
        {"s3_public_block_bucket": "firebreak-no-such-bucket"},
        "firebreak-no-such-bucket",
        None,
    ),
    (
        "pitr-unknown-source",
        "pitr_restore",
        {**PITR, "pitr_restore_source": "no-such-db", "pitr_restore_time": "2026-01-01T00:00:00Z"},
        "no-such-db",
        None,
    ),
    (
        "freeze-unknown-pipeline",
        "deploy_freeze",
        {"deploy_freeze_pipelines": ["no-such-pipeline"]},
        "no-such-pipeline",
        None,
    ),
    ("secret-unknown", "secret_rotate", {"secret_rotate_secret": "no/such/secret"}, "no/such/secret", None),
    ("ecs-unknown-service", "ecs_rollback", {**ECS, "ecs_rollback_service": "no-such-api"}, "no-such-api", None),
    (
        "service-down-unknown",
        str(PLAYBOOKS / "service_down.yml"),
        {"service_down_service": "no-such-api"},
        "no-such-api",
        None,
    ),
    (
        "k8s-unknown-deployment",
        "scale_out",
        {**SCALE_K8S, "scale_out_k8s_name": "no-such-api", "scale_out_k8s_replicas": 3},
        "no-such-api",
        None,
    ),
    # -- limits exceeded -----------------------------------------------------------------------------------
    (
        "nacl-max-entries",
        "nacl_block",
        {
            **NACL,
            "nacl_block_cidrs": ["203.0.113.7/32", "203.0.113.8/32", "203.0.113.9/32"],
            "nacl_block_max_entries": 2,
        },
        "over the quota of 2 (max_entries)",
        None,
    ),
    (
        "ecs-desired-huge",
        "scale_out",
        {"scale_out_ecs_cluster": "shop", "scale_out_ecs_service": "shop-api", "scale_out_ecs_desired_count": 100000},
        "100000",
        None,
    ),
    (
        "ecs-desired-negative",
        "scale_out",
        {"scale_out_ecs_cluster": "shop", "scale_out_ecs_service": "shop-api", "scale_out_ecs_desired_count": -1},
        "-1",
        None,
    ),
    (
        "secret-length-huge",
        "secret_rotate",
        {
            "secret_rotate_secret": "app/admin",
            "secret_rotate_method": "generate",
            "secret_rotate_password_length": 100000,
        },
        "100000",
        None,
    ),
    ("triage-max-huge", "aws_triage", {**TRIAGE, "aws_triage_max_items": 1000000}, "1000000", None),
    # -- path traversal ------------------------------------------------------------------------------------
    (
        "note-incident-traversal",
        str(PLAYBOOKS / "incident_note.yml"),
        {"note": "x", "incident_id": "../../etc"},
        "../../etc",
        {"FIREBREAK_INCIDENT_ID": "../../etc"},
    ),
    ("declare-incident-traversal", "incident_declare", DECLARE, "../../etc", {"FIREBREAK_INCIDENT_ID": "../../etc"}),
    (
        "waf-incident-traversal",
        "waf_block",
        {**WAF, "waf_block_addresses": ["203.0.113.7/32"]},
        "../../etc",
        {"FIREBREAK_INCIDENT_ID": "../../etc"},
    ),
    (
        "report-timeline-traversal",
        str(PLAYBOOKS / "incident_report.yml"),
        {"incident_timeline": "../../../../etc/passwd"},
        "etc/passwd",
        None,
    ),
    (
        "seal-bucket-name",
        str(PLAYBOOKS / "incident_seal.yml"),
        {"firebreak_evidence_bucket": "Evidence_Bucket"},
        "Evidence_Bucket",
        None,
    ),
    # -- hostile text --------------------------------------------------------------------------------------
    (
        "declare-title-huge",
        "incident_declare",
        {**DECLARE, "incident_declare_title": HUGE},
        "title is 100000 characters",
        None,
    ),
    ("declare-title-ansi", "incident_declare", {**DECLARE, "incident_declare_title": ANSI}, "ALL CLEAR", None),
    ("declare-title-forged", "incident_declare", {**DECLARE, "incident_declare_title": FORGED}, "disk full", None),
    # -- unicode look-alikes -------------------------------------------------------------------------------
    ("ecs-cyrillic-service", "ecs_rollback", {**ECS, "ecs_rollback_service": "shop-\u0430pi"}, "shop-\u0430pi", None),
    (
        "waf-fullwidth-cidr",
        "waf_block",
        {**WAF, "waf_block_addresses": ["\uff11\uff10.0.0.1/32"]},
        "\uff11\uff10.0.0.1/32",
        None,
    ),
    ("iam-cyrillic-user", "iam_key_disable", {"iam_key_disable_user": "\u0430lice"}, "\u0430lice", None),
    (
        "k8s-cyrillic-name",
        "scale_out",
        {**SCALE_K8S, "scale_out_k8s_name": "\u0430pi", "scale_out_k8s_replicas": 3},
        "\u0430pi",
        None,
    ),
    ("declare-zwsp-incident", "incident_declare", DECLARE, ZWSP_ID, {"FIREBREAK_INCIDENT_ID": ZWSP_ID}),
]


def _run(run_playbook, target: str, variables: dict, env: dict | None, timeline: Path, box):
    vpc = box.manifest["aws"]["network"]["vpc_id"]
    variables = {key: vpc if value == "@vpc" else value for key, value in variables.items()}
    if target.endswith(".yml"):
        return run_playbook(target, extra_vars=variables, env=env, timeline=timeline)
    return run_playbook(ROLE_PLAYBOOK, extra_vars={"step_role": target, **variables}, env=env, timeline=timeline)


def _mutations(timeline: Path) -> list[dict]:
    """Records of a change or a containment (a failed or refused step records neither)."""
    found = []
    for rec in timeline_records(timeline) if timeline.exists() else []:
        details = rec.get("details") or {}
        if rec.get("event") == "task_changed" or details.get("containment") or details.get("changed"):
            found.append(rec)
    return found


def _shown(text: str) -> list[str]:
    """The ways a value can appear in the output: as is, JSON-escaped, or Python-escaped."""
    escaped = json.dumps(text)[1:-1]
    return [text, escaped, escaped.replace("\\", "\\\\"), text.encode("unicode_escape").decode()]


@pytest.mark.parametrize(("target", "variables", "expected", "env"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(aws, kube, run_playbook, tmp_path, target, variables, expected, env):
    timeline = tmp_path / "incident" / "timeline.jsonl"
    before = snapshot(aws)
    run = _run(run_playbook, target, variables, env, timeline, aws)
    after = snapshot(aws)

    assert run.returncode != 0, f"accepted:\n{run.output[-3000:]}"
    assert "Traceback (most recent call last)" not in run.output, run.output[-6000:]
    assert any(shown in run.output for shown in _shown(expected)), f"{expected!r} not named:\n{run.output[-3000:]}"
    assert differences(before, after) == []
    assert _mutations(timeline) == []


def test_snapshot_sees_a_change(aws, kube):
    """The comparison the matrix relies on can fail: a WAF address, an NACL entry, a stopped key, a scaled service
    and a scaled Deployment each show up as a difference."""
    before = snapshot(aws)
    waf = aws.client("wafv2")
    ip_set = aws.manifest["aws"]["waf"]["ip_set"]
    lock = waf.get_ip_set(Name=ip_set["name"], Scope="REGIONAL", Id=ip_set["id"])["LockToken"]
    waf.update_ip_set(
        Name=ip_set["name"],
        Scope="REGIONAL",
        Id=ip_set["id"],
        Addresses=[*ip_set["addresses"], "203.0.113.7/32"],
        LockToken=lock,
    )
    acl = aws.client("ec2").describe_network_acls()["NetworkAcls"][0]["NetworkAclId"]
    aws.client("ec2").create_network_acl_entry(
        NetworkAclId=acl, RuleNumber=7, Protocol="-1", RuleAction="deny", Egress=False, CidrBlock="203.0.113.7/32"
    )
    user = aws.manifest["aws"]["iam"]["users"]["alice"]
    aws.client("iam").update_access_key(UserName="alice", AccessKeyId=user["access_key_ids"][0], Status="Inactive")
    aws.client("ecs").update_service(cluster="shop", service="shop-api", desiredCount=5)
    request = urllib.request.Request(
        aws.kube_url + "/apis/apps/v1/namespaces/shop/deployments/api",
        data=json.dumps({"spec": {"replicas": 7}}).encode(),
        method="PATCH",
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    urllib.request.urlopen(request, timeout=10).close()
    changed = {line.split(":")[0] for line in differences(before, snapshot(aws))}
    assert {"waf/REGIONAL/firebreak-blocklist", f"nacl/{acl}", "iam/alice", "ecs/", "kubernetes/shop/api"} <= {
        c if not c.startswith("ecs/") else "ecs/" for c in changed
    }, changed
