"""Which keys hold secrets: ``credential`` as a qualifier (the credential_compromise scenario's variables, a
credential's type) names identifiers and stays visible; keys holding secret values stay masked."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.record import redaction as rd  # noqa: E402
from ansible_collections.firebreak.runbooks.plugins.module_utils.record import timeline as tl  # noqa: E402

KEPT = (
    "credential_compromise_user",
    "credential_compromise_principal_arn",
    "credential_compromise_role",
    "credential_compromise_evidence_bucket",
    "credential_compromise_mode",
    "credential_compromise_access_key_ids",
    "credential_compromise_credential_type",
    "credential_compromise_readers",
    "compromised_credential_user",
    "credential_type",
    "CredentialType",
    "credential_kind",
    "credentials_file",
)
MASKED = (
    "credentials",
    "credential",
    "aws_credentials",
    "db_credential",
    "credential_value",
    "credentials_json",
    "credential_key",
    "aws_secret_access_key",
    "SecretAccessKey",
    "session_token",
    "SessionToken",
    "password",
    "db_password",
    "private_key",
    "chat_webhook_url",
    "FIREBREAK_CHAT_WEBHOOK_URL",
    "incident_declare_status_webhook_url",
    "credential_compromise_webhook_url",
    "credential_compromise_new_password",
    "credential_compromise_secret_value",
    "credential_compromise_session_token",
)


@pytest.mark.parametrize("key", KEPT)
def test_a_key_naming_an_identifier_is_kept(key):
    assert not rd.is_secret_key(key)
    assert rd.to_plain({key: "ci-deployer"}) == {key: "ci-deployer"}


@pytest.mark.parametrize("key", MASKED)
def test_a_key_holding_a_secret_is_masked(key):
    assert rd.is_secret_key(key)
    assert rd.to_plain({key: "hunter2-value"}) == {key: rd.MASK}


def test_a_scenario_variable_no_longer_masks_a_note_that_repeats_its_value():
    """A value under a secret key is masked wherever it appears: with credential_compromise_* masked, the
    service principal in a note ("(secretsmanager.amazonaws.com)") was blanked too."""
    args = {"credential_compromise_reader_principal": "secretsmanager.amazonaws.com", "msg": "x"}
    result = {"msg": "GetSecretValue by ci-deployer (secretsmanager.amazonaws.com)"}
    _details, found = tl.result_details(result, task_args=args)
    assert found == []
    assert rd.scrub_text(result["msg"], found) == result["msg"]
    text = "credential_compromise_user=ci-deployer credential_compromise_principal_arn: arn:aws:iam::1:user/ci"
    assert rd.scrub_text(text) == text


def test_a_real_secret_next_to_them_is_still_masked_everywhere():
    args = {"credential_compromise_user": "ci-deployer", "chat_webhook_url": "https://hooks.example/T000/B000/XYZ"}
    result = {
        "msg": "posted to https://hooks.example/T000/B000/XYZ about ci-deployer",
        "aws_secret_access_key": "k" * 40,
    }
    details, found = tl.result_details(result, task_args=args)
    assert "https://hooks.example/T000/B000/XYZ" in found
    assert details["aws_secret_access_key"] == rd.MASK
    assert rd.scrub_text(result["msg"], found) == f"posted to {rd.MASK} about ci-deployer"
    assert rd.scrub_text("session_token=abcdefghijklmnopqrstuvwxyz012345") == f"session_token={rd.MASK}"
