"""s3_write_freeze without AWS: the statement, the exemption of the caller, freeze and release decisions, and the
module's documentation against its argument spec (the sandbox tests are tests/integration/test_s3_write_freeze.py)."""

from __future__ import annotations

import importlib
import json
import sys

import pytest
import yaml

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import s3_write_freeze as wf

BUCKET = "media-bucket"
OTHER = {"Sid": "ReadForCdn", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:role/cdn"}, "Action": "s3:Get*"}


def _statement(incident="INC-1", exempt=("arn:aws:iam::123456789012:role/Responder",)):
    return wf.freeze_statement(BUCKET, wf.statement_sid(incident), list(exempt))


# -- the exemption: what aws:PrincipalArn carries for the caller ------------------------------------------


@pytest.mark.parametrize(
    ("arn", "patterns"),
    [
        (
            "arn:aws:sts::123456789012:assumed-role/IncidentResponder/alice",
            ["arn:aws:iam::123456789012:role/IncidentResponder", "arn:aws:iam::123456789012:role/*/IncidentResponder"],
        ),
        (
            "arn:aws-us-gov:sts::123456789012:assumed-role/R/botocore-session-1",
            ["arn:aws-us-gov:iam::123456789012:role/R", "arn:aws-us-gov:iam::123456789012:role/*/R"],
        ),
        ("arn:aws:iam::123456789012:user/ops/alice", ["arn:aws:iam::123456789012:user/ops/alice"]),
        ("arn:aws:iam::123456789012:root", ["arn:aws:iam::123456789012:root"]),
        ("arn:aws:sts::123456789012:federated-user/bob", ["arn:aws:sts::123456789012:federated-user/bob"]),
    ],
    ids=["assumed-role", "gov-partition", "user", "root", "federated"],
)
def test_the_caller_is_exempt_as_its_principal_arn(arn, patterns):
    assert wf.caller_patterns(arn) == patterns


def _arn_like(pattern, value):
    """ArnLike as IAM documents it: '*' any run of characters, '?' one character, per ARN component."""
    import fnmatch

    p_parts, v_parts = pattern.split(":", 5), value.split(":", 5)
    return len(p_parts) == len(v_parts) and all(
        fnmatch.fnmatchcase(v, p) for p, v in zip(p_parts, v_parts, strict=True)
    )


@pytest.mark.parametrize(
    ("role_arn", "exempt"),
    [
        ("arn:aws:iam::123456789012:role/IncidentResponder", True),
        ("arn:aws:iam::123456789012:role/teams/sec/IncidentResponder", True),
        ("arn:aws:iam::123456789012:role/NotIncidentResponder", False),
        ("arn:aws:iam::123456789012:role/IncidentResponder2", False),
        ("arn:aws:iam::999999999999:role/IncidentResponder", False),
    ],
)
def test_every_session_of_the_callers_role_is_exempt_with_or_without_a_path_and_no_other_role(role_arn, exempt):
    patterns = wf.caller_patterns("arn:aws:sts::123456789012:assumed-role/IncidentResponder/alice")
    assert any(_arn_like(p, role_arn) for p in patterns) is exempt


def test_the_caller_comes_first_and_nothing_is_listed_twice():
    caller = "arn:aws:sts::123456789012:assumed-role/R/s"
    got = wf.exempt_list(["arn:aws:iam::123456789012:role/R", "arn:aws:iam::123456789012:role/Other"], caller)
    assert got == [
        "arn:aws:iam::123456789012:role/R",
        "arn:aws:iam::123456789012:role/*/R",
        "arn:aws:iam::123456789012:role/Other",
    ]


@pytest.mark.parametrize(
    "bad", ["*", "arn:aws:iam::123456789012:*", "IncidentResponder", "arn:aws:iam::12:role/x", "arn:aws:s3:::b"]
)
def test_an_exempt_principal_that_is_no_iam_arn_is_refused_naming_it(bad):
    with pytest.raises(wf.WriteFreezeError, match="invalid exempt principal"):
        wf.validate_principals([bad])


def test_exempt_principals_keep_their_order_without_duplicates():
    arns = [
        "arn:aws:iam::123456789012:role/A*",
        "arn:aws:iam::123456789012:user/b",
        "arn:aws:iam::123456789012:role/A*",
    ]
    assert wf.validate_principals(arns) == arns[:2]


# -- the statement ----------------------------------------------------------------------------------


def test_the_statement_denies_writes_and_deletes_not_reads():
    statement = _statement()
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert "s3:PutObject" in statement["Action"] and "s3:DeleteObjectVersion" in statement["Action"]
    assert not [a for a in statement["Action"] if a.startswith(("s3:Get", "s3:List"))]
    assert statement["Resource"] == [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]
    assert statement["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::123456789012:role/Responder"]}}


def test_the_sid_carries_the_incident_and_tells_look_alike_ids_apart():
    sid = wf.statement_sid("INC-2041")
    assert sid.startswith("FirebreakWriteFreezeINC2041") and sid.isalnum()
    assert wf.statement_sid("INC-1") != wf.statement_sid("INC1")
    assert wf.statement_sid("INC-1") == wf.statement_sid("INC-1")


# -- freeze and release -----------------------------------------------------------------------------


def test_freezing_a_bucket_without_a_policy_creates_one():
    decision = wf.decide_freeze(None, _statement())
    assert decision["action"] == "add"
    assert decision["after"] == {"Version": "2012-10-17", "Statement": [_statement()]}


def test_freezing_keeps_every_other_statement_and_key():
    document = {"Version": "2012-10-17", "Id": "p1", "Statement": [OTHER]}
    decision = wf.decide_freeze(document, _statement())
    assert decision["after"] == {"Version": "2012-10-17", "Id": "p1", "Statement": [OTHER, _statement()]}
    assert document == {"Version": "2012-10-17", "Id": "p1", "Statement": [OTHER]}, "the input is not changed"


def test_a_re_run_changes_nothing_and_a_new_exempt_list_updates_the_statement_in_place():
    document = {"Version": "2012-10-17", "Statement": [_statement(), OTHER]}
    assert wf.decide_freeze(document, _statement())["action"] == "none"
    wider = _statement(exempt=("arn:aws:iam::123456789012:role/Responder", "arn:aws:iam::123456789012:role/Other"))
    decision = wf.decide_freeze(document, wider)
    assert decision["action"] == "update" and decision["previous_statement"] == _statement()
    assert decision["after"]["Statement"] == [wider, OTHER]


def test_release_removes_only_its_own_statement():
    other_freeze = _statement("INC-2")
    document = {"Version": "2012-10-17", "Id": "p1", "Statement": [OTHER, _statement(), other_freeze]}
    decision = wf.decide_release(document, wf.statement_sid("INC-1"))
    assert decision == {
        "action": "remove",
        "after": {"Version": "2012-10-17", "Id": "p1", "Statement": [OTHER, other_freeze]},
    }


def test_release_deletes_a_policy_left_without_statements_and_gives_back_a_single_object():
    sid = wf.statement_sid("INC-1")
    assert wf.decide_release({"Version": "2012-10-17", "Statement": [_statement()]}, sid) == {
        "action": "delete",
        "after": None,
    }
    document = {"Version": "2012-10-17", "Statement": [OTHER, _statement()]}
    assert wf.decide_release(document, sid, statement_was_object=True)["after"]["Statement"] == OTHER
    assert wf.decide_release(document, sid)["after"]["Statement"] == [OTHER]


def test_release_of_a_statement_removed_meanwhile_changes_nothing():
    document = {"Version": "2012-10-17", "Statement": [OTHER]}
    assert wf.decide_release(document, wf.statement_sid("INC-1")) == {"action": "none", "after": document}
    assert wf.decide_release(None, wf.statement_sid("INC-1")) == {"action": "none", "after": None}


def test_a_policy_that_is_not_json_is_refused_naming_the_bucket():
    with pytest.raises(wf.WriteFreezeError, match="bucket policy of 'media-bucket' is not JSON"):
        wf.parse_policy("{nope", BUCKET)


def test_the_entry_records_the_policy_before():
    text = json.dumps({"Version": "2012-10-17", "Statement": OTHER})
    document = json.loads(text)
    decision = wf.decide_freeze(document, _statement())
    changed = wf.containment_changed(text, document, decision, _statement())
    assert changed["policy_before"] == text and changed["statement_was_object"] is True
    assert changed["sid"] == _statement()["Sid"] and changed["statement_before"] is None


def test_entries_of_other_steps_and_buckets_are_ignored_and_a_malformed_one_refused():
    mine = {"id": "a", "step": "s3_write_freeze", "resource": f"arn:aws:s3:::{BUCKET}", "changed": {"sid": "x"}}
    others = [
        {"id": "b", "step": "s3_public_block", "resource": f"arn:aws:s3:::{BUCKET}", "changed": {}},
        {"id": "c", "step": "s3_write_freeze", "resource": "arn:aws:s3:::elsewhere", "changed": {"sid": "y"}},
    ]
    assert wf.entries_for([mine, *others], BUCKET) == [mine]
    with pytest.raises(wf.WriteFreezeError, match=r"has no 'changed\.sid'"):
        wf.entries_for([dict(mine, changed={})], BUCKET)


def test_module_documentation_matches_the_argument_spec():
    module = importlib.import_module("ansible_collections.firebreak.runbooks.plugins.modules.s3_write_freeze")
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    spec = dict(module.ARGUMENT_SPEC)
    for shared in ("retry_budget", "incident_id", "claims_bucket", "claims_dir", "state", "containments"):
        spec.pop(shared)  # from the step doc fragments (INCIDENT, CONTAINMENT, CLAIMS)
    assert set(documented) == set(spec)
    for option, definition in spec.items():
        assert documented[option]["type"] == definition["type"], option
        assert documented[option].get("default") == definition.get("default"), option
        assert documented[option].get("choices") == definition.get("choices"), option
        assert documented[option].get("elements") == definition.get("elements"), option
