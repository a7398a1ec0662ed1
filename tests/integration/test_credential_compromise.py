"""The credential_compromise scenario end to end (issue 17 item 7): inject the drill's leaked user key, preview with
--check (nothing changes), run it with the gate confirmed, verify the quarantine, the rotation and the readers in the
sandbox, the lifecycle and action records, and a report listing what the credential did; a re-run changes nothing;
production without approval stops at the one gate; the IRSA role path converges once."""

from __future__ import annotations

import json
import re

import pytest

from sandbox.drills import credential_compromise as drill
from tests.integration.scenario_helpers import lifecycle, mutating_calls, records

pytestmark = [pytest.mark.integration, pytest.mark.drill]

MUTATING = re.compile(
    r"^(Update|Put|Create|Delete|Attach|Detach|Modify|Disable|Enable|Copy|Rotate|Tag|Untag|Register|Deregister|Stop|"
    r"Start|Add|Remove)"
)
SEAL = re.compile(r"firebreak/seals/|/seal")


def extra_vars(context: dict, **more) -> dict:
    return {**{key: value for key, value in context.items() if not key.startswith("_")}, **more}


def evidence_objects(aws, bucket) -> list[str]:
    pages = aws.client("s3").get_paginator("list_object_versions").paginate(Bucket=bucket)
    return sorted(f"{v['Key']}@{v['VersionId']}" for page in pages for v in page.get("Versions", []))


def test_user_key_check_then_quarantine_rotate_redeploy_report_and_a_rerun_changes_nothing(aws, kube, run_playbook):
    context = drill.inject(aws)
    facts = context["_drill"]
    before = drill.state(aws, facts)
    assert before["keys"] and all(status == "Active" for _key, status in before["keys"]), before
    evidence = evidence_objects(aws, facts["evidence_bucket"])

    # --check: the whole plan previewed, nothing changed in AWS or Kubernetes
    aws.proxy.clear_log()
    preview = run_playbook(drill.PLAYBOOK, extra_vars=extra_vars(context), check=True, diff=True)
    assert preview.returncode == 0, preview.output[-4000:]
    assert drill.state(aws, facts) == before
    assert evidence_objects(aws, facts["evidence_bucket"]) == evidence
    assert mutating_calls(aws, MUTATING, qualified=True) == [], mutating_calls(aws, MUTATING, qualified=True)
    assert all(e["_check_mode"] for e in lifecycle(preview)) and lifecycle(preview, "resolved")
    assert "DRY RUN, nothing changed. quarantined: user ci-deployer" in " ".join(preview.stdout.split())
    assert "left for a person" in preview.stdout

    # converge (the same timeline: the records from here on are the real run's)
    start = len(records(preview))
    run = run_playbook(drill.PLAYBOOK, extra_vars=extra_vars(context))
    assert run.returncode == 0, run.output[-4000:]
    checks = drill.verify(aws, context)
    assert any("access key(s) inactive" in line for line in checks)
    after = drill.state(aws, facts)
    assert {status for _key, status in after["keys"]} == {"Inactive"}
    [deny] = [p for p in after["inline_policies"] if p.startswith("firebreak-revoke-issued-INC-TEST-")]
    assert sorted(after["inline_policies"]) == sorted([*before["inline_policies"], deny])
    policy = aws.client("iam").get_user_policy(UserName=facts["principal"], PolicyName=deny)
    statement = policy["PolicyDocument"]["Statement"][0]
    assert statement["Effect"] == "Deny" and "aws:TokenIssueTime" in statement["Condition"]["DateLessThan"]

    real = [e for e in lifecycle(run) if not e["_check_mode"]]
    declared, resolved = [e for e in real if e["event"] == "declared"], [e for e in real if e["event"] == "resolved"]
    assert [(d["severity"], d["type"]) for d in declared] == [("P1", "credential_compromise")]
    assert [r["status"] for r in resolved] == ["resolved"] and "release_containment" in resolved[0]["summary"]
    tasks = [r for r in records(run)[start:] if r["event"] in ("task_ok", "task_changed", "task_failed", "note")]
    actions = [r["action"] for r in tasks]
    # evidence first, the principal and its CloudTrail read, one gate decision, quarantine, rotation, restart, verify
    order = [
        actions.index("firebreak.runbooks.s3_evidence_copy"),
        actions.index("amazon.aws.iam_user_info"),
        actions.index("firebreak.runbooks.aws_triage_info"),
        next(i for i, r in enumerate(tasks) if r["event"] == "note" and f"Gate {drill.GATE}" in r["msg"]),
        actions.index("firebreak.runbooks.iam_credential_quarantine"),
        actions.index("firebreak.runbooks.secret_rotate"),
        actions.index("firebreak.runbooks.k8s_rolling_restart"),
        actions.index("firebreak.runbooks.health_verify"),
        actions.index("firebreak.runbooks.k8s_health_verify"),
        actions.index("firebreak.runbooks.incident_report"),
    ]
    assert order == sorted(order), order
    gates = [r["msg"] for r in tasks if r["event"] == "note" and f"Gate {drill.GATE}" in r["msg"]]
    assert len(gates) == 1 and "symptom confirmed" in gates[0], gates
    quarantine = tasks[order[4]]
    assert quarantine["event"] == "task_changed"
    assert "before" in quarantine["details"] and "after" in quarantine["details"]
    [entry] = quarantine["details"]["containment"]
    assert entry["step"] == "iam_key_disable" and entry["changed"]["deactivated"] == [k for k, _ in before["keys"]]
    assert entry["changed"]["inline_policies"] and entry["revoked_issued_before"]
    rotation = tasks[order[5]]["details"]
    assert rotation["containment"][0]["changed"]["new_version_id"] == after["secret_version"]
    assert "value" not in json.dumps(rotation["containment"]).lower().replace("new_version", "")

    # what the credential did: CloudTrail events in the timeline's note and in the report
    report = run.timeline.with_name("report.md")
    text = report.read_text()
    for shown in ("What user ci-deployer did", "CreateAccessKey", "GetSecretValue", "PutBucketPolicy", "203.0.113.66"):
        assert shown in text, shown
    drill.verify_record(run.timeline, report)
    assert "left for a person:" in run.stdout

    # re-run: nothing changes in AWS or Kubernetes (the evidence copy finds its objects; the report and seal are new)
    state, seen = drill.state(aws, facts), len(records(run))
    aws.proxy.clear_log()
    again = run_playbook(drill.PLAYBOOK, extra_vars=extra_vars(context))
    assert again.returncode == 0, again.output[-4000:]
    assert drill.state(aws, facts) == state
    made = [
        f"{e['service']}:{e['action']}"
        for e in aws.proxy.log()
        if MUTATING.match(e["action"] or "") and not (e["service"] == "s3" and SEAL.search(e.get("path") or ""))
    ]
    assert made == [], made
    changed = sorted({r["action"] for r in records(again)[seen:] if r["event"] == "task_changed"})
    assert changed == ["firebreak.runbooks.incident_report"], changed


def test_production_without_approval_stops_at_the_one_gate(aws, kube, run_playbook):
    context = drill.inject(aws)
    before = drill.state(aws, context["_drill"])
    args = extra_vars(context, firebreak_environment="production")
    del args["firebreak_gate_approvals"], args["incident_gate_allow_unpinned"]
    run = run_playbook(drill.PLAYBOOK, extra_vars=args)
    assert run.returncode != 0
    text = " ".join(run.stdout.split())
    assert f"gate {drill.GATE} not confirmed" in text and "nothing was changed" in text, text[-3000:]
    assert "firebreak_gate_approvals" in text
    assert drill.state(aws, context["_drill"]) == before
    assert not lifecycle(run, "resolved")
    assert not [
        r
        for r in records(run)
        if r.get("action") == "firebreak.runbooks.iam_credential_quarantine" and not r.get("check_mode")
    ]


def test_irsa_role_sessions_revoked_secret_rotated_readers_restarted(aws, kube, run_playbook):
    context = drill.inject_irsa(aws)
    facts = context["_drill"]
    before = drill.state(aws, facts)
    assert before["inline_policies"] == []
    run = run_playbook(drill.PLAYBOOK, extra_vars=extra_vars(context))
    assert run.returncode == 0, run.output[-4000:]
    drill.verify(aws, context)
    [deny] = drill.state(aws, facts)["inline_policies"]
    document = aws.client("iam").get_role_policy(RoleName=drill.IRSA_ROLE, PolicyName=deny)["PolicyDocument"]
    assert document["Statement"][0]["Effect"] == "Deny"
    assert "aws:TokenIssueTime" in document["Statement"][0]["Condition"]["DateLessThan"]
    assert [(d["type"], d["title"]) for d in lifecycle(run, "declared")] == [
        ("credential_compromise", f"Credential compromise: IAM role {drill.IRSA_ROLE}")
    ]
    text = run.timeline.with_name("report.md").read_text()
    for shown in (
        f"What irsa role {drill.IRSA_ROLE} did",
        "AssumeRoleWithWebIdentity",
        drill.IRSA_ADDRESS,
        drill.SERVICE_ACCOUNT,
        "oidc-provider/" + drill.OIDC_HOST,
    ):
        assert shown in text, shown
    drill.verify_record(run.timeline, run.timeline.with_name("report.md"))
