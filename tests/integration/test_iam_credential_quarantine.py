"""iam_credential_quarantine against the sandbox: key status and policies read back from moto, release.

moto never evaluates policies and lets inactive keys authenticate: the tests assert the resulting state
(key status, the deny policy's document), never the effect.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/iam/quarantine.yml"
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
MUTATING = {
    "UpdateAccessKey", "PutUserPolicy", "PutRolePolicy", "AttachUserPolicy", "AttachRolePolicy", "TagUser",
    "TagRole", "DeleteUserPolicy", "DeleteRolePolicy", "DetachUserPolicy", "DetachRolePolicy", "DeleteAccessKey",
}  # fmt: skip


def result_of(run, task: str = "Quarantine") -> dict:
    data = json.loads(run.stdout[run.stdout.index("{") :])
    for play in data["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                return entry["hosts"]["localhost"]
    raise AssertionError(f"task {task!r} not in the output:\n{run.output[-3000:]}")


def quarantine(run_playbook, check=False, diff=False, env=None, **options):
    extra = {f"iam_{key}": value for key, value in options.items()}
    run = run_playbook(PLAYBOOK, extra_vars=extra, check=check, diff=diff, env={**JSON_OUTPUT, **(env or {})})
    return run, result_of(run)


def key_status(aws, user: str) -> dict:
    keys = aws.client("iam").list_access_keys(UserName=user)["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in keys}


def inline(aws, user: str) -> list[str]:
    return aws.client("iam").list_user_policies(UserName=user)["PolicyNames"]


def mutating(aws) -> list[str]:
    return [e["action"] for e in aws.proxy.log() if e["service"] == "iam" and e["action"] in MUTATING]


def test_quarantine_deactivates_records_last_use_and_revokes_issued_then_reruns_unchanged(aws, run_playbook):
    iam = aws.client("iam")
    second = iam.create_access_key(UserName="ci-deployer")["AccessKey"]  # the attacker's new key
    secret = second["SecretAccessKey"]
    started = time.time()
    run, result = quarantine(run_playbook, users=["ci-deployer"], quarantine_policy="auto")
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    status = key_status(aws, "ci-deployer")
    assert set(status.values()) == {"Inactive"} and len(status) == 2, "every key deactivated, none deleted"
    policy_name = next(p for p in inline(aws, "ci-deployer") if p.startswith("firebreak-revoke-issued-"))
    document = iam.get_user_policy(UserName="ci-deployer", PolicyName=policy_name)["PolicyDocument"]
    statement = document["Statement"][0]
    assert statement["Effect"] == "Deny" and statement["Action"] == "*"
    issued = statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
    assert abs(time.mktime(time.strptime(issued, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone - started) < 120
    attached = iam.list_attached_user_policies(UserName="ci-deployer")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AWSCompromisedKeyQuarantineV2"]
    tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName="ci-deployer")["Tags"]}
    assert tags["firebreak:incident"] == result["containment"][0]["incident_id"]

    principal = result["principals"][0]
    assert principal["login_profile"] == {"exists": False} and principal["mfa_devices"] == []
    assert {k["access_key_id"] for k in principal["keys"]} == set(status)
    assert all(set(k["last_used"]) == {"service", "region", "date"} for k in principal["keys"])
    entry = result["containment"][0]
    assert sorted(entry["changed"]["deactivated"]) == sorted(status)
    assert entry["changed"]["inline_policies"] == [policy_name]
    assert entry["changed"]["attached_policies"] == ["arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"]
    assert "credentials" not in json.dumps(result)
    assert secret not in run.stdout and secret not in run.timeline.read_text()

    aws.proxy.clear_log()
    run, again = quarantine(run_playbook, users=["ci-deployer"], quarantine_policy="auto")
    assert run.returncode == 0, run.output
    assert again["changed"] is False and again["containment"] == []
    assert not mutating(aws)


def test_check_mode_with_diff_changes_nothing(aws, run_playbook):
    before = key_status(aws, "alice")
    aws.proxy.clear_log()
    run, result = quarantine(run_playbook, check=True, diff=True, users=["alice"])
    assert run.returncode == 0, run.output
    assert result["changed"] is True and "would quarantine" in result["msg"]
    assert result["diff"]["after"]["user/alice"]["active_keys"] == []
    assert key_status(aws, "alice") == before and inline(aws, "alice") == []
    assert not mutating(aws)


def test_only_the_given_key_is_deactivated(aws, run_playbook):
    iam = aws.client("iam")
    keep = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    bad = aws.manifest["aws"]["iam"]["users"]["alice"]["access_key_ids"][0]
    run, _ = quarantine(run_playbook, users=["alice"], access_key_ids=[bad], revoke_issued=False)
    assert run.returncode == 0, run.output
    assert key_status(aws, "alice") == {bad: "Inactive", keep: "Active"}
    assert inline(aws, "alice") == []


def test_a_role_gets_the_revocation_policy(aws, run_playbook):
    role = aws.manifest["aws"]["iam"]["roles"]["batch"]["name"]
    run, result = quarantine(run_playbook, roles=[role])
    assert run.returncode == 0, run.output
    names = aws.client("iam").list_role_policies(RoleName=role)["PolicyNames"]
    assert len(names) == 1 and names[0].startswith("firebreak-revoke-issued-")
    assert result["containment"][0]["principal_type"] == "role"


@first_case_in_make_test
@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"users": ["ci-deployer", "no-such-user"]}, "user 'no-such-user' does not exist"),
        ({"roles": ["no-such-role"]}, "role 'no-such-role' does not exist"),
        ({"users": ["ci-deployer"], "access_key_ids": ["AKIANOTAKEYOFHERS000"]}, "AKIANOTAKEYOFHERS000"),
        ({"users": ["ci-deployer"], "quarantine_policy": "NoSuchManagedPolicy"}, "'NoSuchManagedPolicy'"),
    ],
    ids=["unknown-user", "unknown-role", "foreign-key", "unknown-policy"],
)
def test_bad_input_names_the_value_and_changes_nothing(aws, run_playbook, options, named):
    before = key_status(aws, "ci-deployer")
    aws.proxy.clear_log()
    run, result = quarantine(run_playbook, **options)
    assert run.returncode != 0
    assert named in result["msg"], result["msg"]
    assert key_status(aws, "ci-deployer") == before
    assert not mutating(aws)


def test_the_runbooks_own_identity_is_refused(aws, run_playbook):
    iam = aws.client("iam")
    iam.create_user(UserName="moto")  # moto's caller identity is arn:aws:sts::123456789012:user/moto
    key = iam.create_access_key(UserName="moto")["AccessKey"]["AccessKeyId"]
    aws.proxy.clear_log()
    run, result = quarantine(run_playbook, users=["moto"])
    assert run.returncode != 0
    assert "refusing to quarantine user 'moto'" in result["msg"] and "force=true" in result["msg"]
    assert key_status(aws, "moto") == {key: "Active"}
    assert not mutating(aws)


@pytest.mark.proof
def test_permanent_5xx_fails_within_the_budget_naming_call_and_code(aws, run_playbook):
    rule = aws.proxy.add_rule({"service": "iam", "action": "ListAccessKeys", "fault": "error", "status": 500})
    started = time.monotonic()
    run, result = quarantine(run_playbook, users=["ci-deployer"], retry_budget=3)
    assert run.returncode != 0 and time.monotonic() - started < 60
    assert "ListAccessKeys" in result["msg"] and "InternalFailure" in result["msg"], result["msg"]
    aws.proxy.remove_rule(rule)
    assert set(key_status(aws, "ci-deployer").values()) == {"Active"}


def test_permanent_5xx_on_the_first_change_fails_naming_call_code_and_key(aws, run_playbook):
    """The listing succeeds, the deactivation answers 500 for ever: the step fails by the contract (the call, the
    code, the resource, its own message), not with a Python error, and nothing is deactivated."""
    rule = aws.proxy.add_rule({"service": "iam", "action": "UpdateAccessKey", "fault": "error", "status": 500})
    run, result = quarantine(run_playbook, users=["ci-deployer"], retry_budget=3)
    aws.proxy.remove_rule(rule)
    assert run.returncode != 0
    assert "multiple values" not in run.output and "Traceback" not in run.output, run.output[-2000:]
    assert (result["aws_operation"], result["aws_error_code"]) == ("UpdateAccessKey", "InternalFailure"), result
    assert result["resource"] and result["attempts"] >= 1, result
    assert result["msg"].startswith("quarantining 1 of 1 principal(s) failed; first: "), result["msg"]
    assert "UpdateAccessKey" in result["msg"] and "InternalFailure" in result["msg"], result["msg"]
    assert set(key_status(aws, "ci-deployer").values()) == {"Active"}


def test_release_restores_only_what_was_quarantined_and_reports_changes_made_meanwhile(aws, run_playbook):
    iam = aws.client("iam")
    extra_key = iam.create_access_key(UserName="ci-deployer")["AccessKey"]["AccessKeyId"]
    seeded = aws.manifest["aws"]["iam"]["users"]["ci-deployer"]["access_key_ids"][0]
    iam.update_access_key(UserName="ci-deployer", AccessKeyId=extra_key, Status="Inactive")  # inactive before
    run, contained = quarantine(run_playbook, users=["ci-deployer"], quarantine_policy="AWSDenyAll")
    assert run.returncode == 0, run.output
    entries = contained["containment"]
    assert entries[0]["changed"]["deactivated"] == [seeded]
    # meanwhile: someone re-enables the key by hand and detaches the policy
    iam.update_access_key(UserName="ci-deployer", AccessKeyId=seeded, Status="Active")
    iam.detach_user_policy(UserName="ci-deployer", PolicyArn="arn:aws:iam::aws:policy/AWSDenyAll")
    aws.proxy.clear_log()
    run, released = quarantine(run_playbook, state="released", containments=entries)
    assert run.returncode == 0, run.output
    assert released["changed"] is True
    assert key_status(aws, "ci-deployer") == {seeded: "Active", extra_key: "Inactive"}, "not ours: stays inactive"
    assert inline(aws, "ci-deployer") == ["deploy"], "only the policy the incident added is removed"
    assert released["left_alone"] == {
        "user/ci-deployer": {
            "keys_already_active": [seeded],
            "policies_already_detached": ["arn:aws:iam::aws:policy/AWSDenyAll"],
        }
    }
    assert released["release"][0]["releases"] == [entries[0]["id"]]
    assert not [a for a in mutating(aws) if a == "UpdateAccessKey"], "a key re-enabled by hand is left alone"

    run, again = quarantine(run_playbook, state="released", containments=entries)
    assert run.returncode == 0 and again["changed"] is False, run.output
