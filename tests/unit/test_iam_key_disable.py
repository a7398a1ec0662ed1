"""iam_key_disable: the decisions of module_utils/aws/iam.py, without AWS."""

from __future__ import annotations

import datetime
import sys

import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import iam
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws.iam import IAMInputError

QUARANTINE = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"


@pytest.mark.parametrize(
    ("arn", "principal"),
    [
        ("arn:aws:iam::123456789012:user/alice", ("user", "alice")),
        ("arn:aws:iam::123456789012:user/ops/alice", ("user", "alice")),
        ("arn:aws:sts::123456789012:user/moto", ("user", "moto")),
        ("arn:aws:sts::123456789012:assumed-role/responder/alice@example.com", ("role", "responder")),
        ("arn:aws:iam::123456789012:root", (None, None)),
        ("", (None, None)),
    ],
)
def test_caller_principal(arn, principal):
    assert iam.caller_principal(arn) == principal


def test_deny_policy_denies_credentials_issued_before_the_time():
    when = datetime.datetime(2026, 11, 24, 13, 30, 5, 123456, tzinfo=datetime.UTC)
    document = iam.deny_policy_document(when)
    statement = document["Statement"][0]
    assert statement["Effect"] == "Deny" and statement["Action"] == "*" and statement["Resource"] == "*"
    assert statement["Condition"] == {"DateLessThan": {"aws:TokenIssueTime": "2026-11-24T13:30:05Z"}}


def test_deny_policy_name_is_a_valid_iam_name():
    assert iam.deny_policy_name("INC-2041") == "firebreak-revoke-issued-INC-2041"
    assert iam.deny_policy_name("INC 7/a:b") == "firebreak-revoke-issued-INC-7-a-b"
    assert len(iam.deny_policy_name("x" * 300)) == 128


def test_quarantine_arn():
    assert iam.quarantine_arn("AWSDenyAll") == "arn:aws:iam::aws:policy/AWSDenyAll"
    assert iam.quarantine_arn("arn:aws:iam::1:policy/x") == "arn:aws:iam::1:policy/x"


def test_plan_deactivates_every_active_key_when_none_given():
    plan = iam.plan_principal(
        "user",
        "ci",
        {"AKIA1": "Active", "AKIA2": "Inactive", "AKIA3": "Active"},
        [],
        ["deploy"],
        [],
        "deny",
        QUARANTINE,
    )
    assert plan == {"deactivate": ["AKIA1", "AKIA3"], "put_inline": ["deny"], "attach": [QUARANTINE]}


def test_plan_is_empty_when_already_quarantined():
    plan = iam.plan_principal("user", "ci", {"AKIA1": "Inactive"}, [], ["deny"], [QUARANTINE], "deny", QUARANTINE)
    assert plan == {"deactivate": [], "put_inline": [], "attach": []}


def test_plan_only_given_keys_and_names_a_foreign_key():
    plan = iam.plan_principal("user", "ci", {"AKIA1": "Active", "AKIA2": "Active"}, ["AKIA2"], [], [], None, None)
    assert plan == {"deactivate": ["AKIA2"], "put_inline": [], "attach": []}
    with pytest.raises(IAMInputError, match="access key AKIA9 does not belong to user 'ci'"):
        iam.plan_principal("user", "ci", {"AKIA1": "Active"}, ["AKIA9"], [], [], None, None)


def test_plan_for_a_role_has_no_keys():
    assert iam.plan_principal("role", "r", {}, [], [], [], "deny", None)["deactivate"] == []


def test_release_plan_leaves_changes_made_meanwhile_alone():
    changed = {"deactivated": ["A1", "A2", "A3"], "inline_policies": ["deny"], "attached_policies": [QUARANTINE]}
    plan, left = iam.plan_release(changed, {"A1": "Inactive", "A2": "Active"}, ["deploy"], [QUARANTINE])
    assert plan == {"reactivate": ["A1"], "delete_inline": [], "detach": [QUARANTINE]}
    assert left == {"keys_already_active": ["A2"], "keys_deleted": ["A3"], "inline_policies_already_removed": ["deny"]}
