"""credential_compromise verifies the session deny by the name the quarantine module gives it: a long or odd
incident id (IAM cuts inline policy names at 128 characters and refuses some characters) must not fail the verify
after the quarantine was applied."""

from __future__ import annotations

import sys

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import iam


def _deny_expression() -> str:
    plays = yaml.safe_load((REPO_ROOT / "playbooks" / "credential_compromise.yml").read_text())
    for play in plays:
        for task in play.get("tasks") or []:
            found = (task.get("vars") or {}).get("__deny")
            if found:
                return found
    raise AssertionError("no __deny in credential_compromise.yml's tasks")


@pytest.mark.parametrize(
    "incident",
    ["INC-2041", "INC-" + "7" * 200, "INC 2041/ä:x", "inc-test_a_rerun[credential_compromise]-" + "x" * 120],
)
def test_the_verified_deny_name_is_the_modules(incident):
    templar = Templar(loader=DataLoader(), variables={"__credential_compromise_incident": incident})
    assert templar.template(trust_as_template(_deny_expression())) == iam.deny_policy_name(incident)
