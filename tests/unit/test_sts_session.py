"""A fan-out target's session: its name, when it is kept or assumed again, and what is refused before any call."""

from __future__ import annotations

import datetime
import re
import sys

import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import sts

AWS_NAME = re.compile(r"^[\w+=,.@-]{2,64}$", re.ASCII)
ROLE = "arn:aws:iam::111111111111:role/firebreak-responder"
NOW = datetime.datetime(2026, 11, 24, 9, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("incident", "operator", "expected"),
    [
        ("INC-2026-042", "alice", "firebreak-INC-2026-042-alice"),
        ("INC 2026/042", "Zoë O'Neil", "firebreak-INC-2026-042-Zo--O-Neil"),
        ("INC-2026-042", "alice@example.com", "firebreak-INC-2026-042-alice@example.com"),
        ("INC-2026-042", "", "firebreak-INC-2026-042"),
        (None, None, "firebreak"),
    ],
)
def test_the_session_name_carries_incident_and_operator_in_what_aws_accepts(incident, operator, expected):
    name = sts.session_name(incident, operator)
    assert name == expected
    assert AWS_NAME.match(name)


def test_a_long_name_cuts_the_operator_first_then_the_incident():
    name = sts.session_name("INC-20261124-090000-1a2b", "a-very-long-operator-name-" * 3)
    assert len(name) == 64 and name.startswith("firebreak-INC-20261124-090000-1a2b-a-very-long")
    name = sts.session_name("X" * 100, "alice")
    assert len(name) == 64 and AWS_NAME.match(name) and "alice" not in name
    assert AWS_NAME.match(sts.session_name("!", "?", prefix=""))


def session(**changes):
    current = {
        "access_key": "ASIAEXAMPLE",
        "secret_key": "s",
        "session_token": "t",
        "role_arn": ROLE,
        "session_name": "firebreak-INC-1-alice",
        "expiration": "2026-11-24T10:00:00Z",
    }
    current.update(changes)
    return current


@pytest.mark.parametrize(
    ("current", "reason"),
    [
        (session(), None),
        (session(expiration="2026-11-24T09:15:00+00:00"), None),
        (session(expiration="2026-11-24T09:14:00Z"), "14 min left, fewer than 15"),
        (session(expiration="2026-11-24T08:00:00Z"), "0 min left, fewer than 15"),
        (session(role_arn="arn:aws:iam::222222222222:role/x"), "the session is for arn:aws:iam::222222222222:role/x"),
        (session(session_name="firebreak-INC-2-alice"), "the session is named firebreak-INC-2-alice"),
        (session(expiration="soon"), "the session's expiration is unknown"),
        ({}, "no session yet"),
        (None, "no session yet"),
    ],
)
def test_a_session_is_kept_only_for_the_same_role_and_name_with_time_left(current, reason):
    got = sts.renewal_reason(current, ROLE, "firebreak-INC-1-alice", NOW, 15)
    assert got == reason if reason is None else got.startswith(reason), got


@pytest.mark.parametrize(
    ("role", "duration", "renew", "message"),
    [
        ("arn:aws:iam::1111:role/x", 3600, 15, "role_arn 'arn:aws:iam::1111:role/x' is not an IAM role ARN"),
        ("", 3600, 15, "role_arn '' is not an IAM role ARN"),
        ("arn:aws:iam::111111111111:user/x", 3600, 15, "is not an IAM role ARN"),
        (ROLE, 600, 5, "duration_seconds 600 is outside 900..43200"),
        (ROLE, 900, 15, "renew_minutes 15 must be at least 0 and shorter than the session (900 s)"),
        (ROLE, 3600, -1, "renew_minutes -1 must be at least 0"),
    ],
)
def test_a_bad_request_is_refused_naming_the_value(role, duration, renew, message):
    with pytest.raises(sts.SessionInputError, match=re.escape(message)):
        sts.validate_request(role, duration, renew)


def test_a_good_request_passes_and_the_account_is_read_from_the_arn():
    sts.validate_request(ROLE, 3600, 15)
    sts.validate_request("arn:aws-us-gov:iam::111111111111:role/path/to/responder", 43200, 0)
    assert sts.account_of(ROLE) == "111111111111"
    assert sts.account_of("arn:aws:iam::111111111111:user/x") is None


class FakeSTS:
    def __init__(self):
        self.asked = []

    def assume_role(self, **params):
        self.asked.append(params)
        return {
            "Credentials": {
                "AccessKeyId": "ASIAEXAMPLE",
                "SecretAccessKey": "secret",
                "SessionToken": "token",
                "Expiration": datetime.datetime(2026, 11, 24, 10, 0, tzinfo=datetime.UTC),
            },
            "AssumedRoleUser": {"Arn": "arn:aws:sts::111111111111:assumed-role/firebreak-responder/n"},
        }


def test_assume_makes_one_call_and_returns_the_session_with_its_iso_expiration():
    client = FakeSTS()
    got = sts.assume(client, lambda c, method, resource, **p: getattr(c, method)(**p), ROLE, "n", 3600, "ext")
    assert client.asked == [{"RoleArn": ROLE, "RoleSessionName": "n", "DurationSeconds": 3600, "ExternalId": "ext"}]
    assert got["expiration"] == "2026-11-24T10:00:00Z"
    assert got["session_token"] == "token" and got["assumed_role_arn"].startswith("arn:aws:sts::111111111111:")
    assert sts.renewal_reason(got, ROLE, "n", NOW, 15) is None


def test_incident_target_session_documents_exactly_its_argument_spec():
    """The module stub (plugins/modules/incident_target_session.py) documents what the action plugin accepts."""
    import yaml
    from ansible_collections.firebreak.runbooks.plugins.action import incident_target_session as action
    from ansible_collections.firebreak.runbooks.plugins.modules import incident_target_session as doc

    options = yaml.safe_load(doc.DOCUMENTATION)["options"]
    assert set(options) == set(action.ARGUMENT_SPEC)
    for name, spec in action.ARGUMENT_SPEC.items():
        assert options[name]["type"] == spec["type"], name
        assert options[name].get("default") == spec.get("default"), name
    secret = {name for name, spec in action.ARGUMENT_SPEC.items() if spec.get("no_log")}
    assert secret == {"external_id", "hub_external_id"}
    for name in secret:
        text = options[name]["description"]
        assert "Never logged" in (text if isinstance(text, str) else " ".join(text)), name
