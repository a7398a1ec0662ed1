"""The inventories users copy parse, name their targets as the fan-out expects, and keep the webhook encrypted.

The example vault password (``vault-password.example``) is not a secret; only this test uses it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import REPO_ROOT

BIN = Path(sys.executable).parent
ROLE_ARN = re.compile(r"^arn:aws:iam::(\d{12}):role/[\w+=,.@/-]+$")


def inventory(name: str) -> dict:
    path = REPO_ROOT / "inventories" / name
    cmd = [str(BIN / "ansible-inventory"), "-i", str(path), "--list"]
    if (path / "vault-password.example").is_file():
        cmd += ["--vault-password-file", str(path / "vault-password.example")]
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    run = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.parametrize("name", ["example-production", "example-staging"])
def test_the_example_inventories_parse_and_name_every_target(name):
    data = inventory(name)
    hostvars = data["_meta"]["hostvars"]
    assert "localhost" in hostvars, "the single-target scenarios and the record playbooks keep their controller"
    targets = [h for group in ("aws_targets", "eks_clusters") for h in _hosts(data, group)]
    assert len(targets) >= 3
    for host in targets:
        vars_ = hostvars[host]
        assert vars_["ansible_connection"] == "local", host
        account = ROLE_ARN.match(vars_["firebreak_assume_role_arn"]).group(1)
        assert account == vars_["firebreak_aws_account_id"], host
        assert re.match(r"^[a-z]{2}-[a-z]+-\d$", vars_["firebreak_aws_region"]), host
        assert vars_["firebreak_environment"] == name.removeprefix("example-")
        assert vars_["firebreak_gate_policy"], host
    for host in _hosts(data, "eks_clusters"):
        assert hostvars[host]["firebreak_eks_cluster"], host
    webhook = hostvars["localhost"]["firebreak_chat_webhook_url"]
    assert isinstance(webhook, dict) and webhook["__ansible_vault"].startswith("$ANSIBLE_VAULT;1.1;AES256")
    text = "".join(p.read_text() for p in (REPO_ROOT / "inventories" / name).rglob("*.yml"))
    assert "hooks.slack.com" not in text, "the webhook is only in the vault"


def _hosts(data: dict, group: str) -> list[str]:
    found = list(data.get(group, {}).get("hosts", []))
    for child in data.get(group, {}).get("children", []):
        found += _hosts(data, child)
    return found


@pytest.mark.parametrize("name", ["example-production", "example-staging"])
def test_the_example_webhook_decrypts_with_the_documented_example_password(name):
    path = REPO_ROOT / "inventories" / name
    run = subprocess.run(
        [
            str(BIN / "ansible"),
            "localhost",
            "-i",
            str(path),
            "--vault-password-file",
            str(path / "vault-password.example"),
            "-m",
            "ansible.builtin.debug",
            "-a",
            "msg={{ firebreak_chat_webhook_url is match('https://hooks.slack.com/services/') }}",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and '"msg": true' in run.stdout, run.stdout + run.stderr


def test_the_sandbox_inventory_is_still_the_single_controller():
    data = inventory("sandbox")
    assert set(data["_meta"]["hostvars"]) == {"localhost"}
