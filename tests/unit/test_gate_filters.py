"""The gate's filters: the policy's mode per environment and step kind, the plan's digest, and approvals."""

from __future__ import annotations

import sys

import pytest
import yaml

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible.errors import AnsibleFilterError
from ansible_collections.firebreak.runbooks.plugins.filter.gate import gate_check, gate_mode, gate_plan

POLICY = yaml.safe_load((REPO_ROOT / "roles" / "incident_gate" / "defaults" / "main.yml").read_text())[
    "incident_gate_policy"
]


@pytest.mark.parametrize(
    ("environment", "kind", "mode"),
    [
        ("production", "containment", "approval_required"),
        ("production", "data_restore", "approval_required"),
        ("production", "cutover", "approval_required"),
        ("production", "failover", "approval_required"),
        ("production", "rollback", "contain_suspected"),
        ("production", "restart", "contain_suspected"),
        ("production", "scale_out", "contain_suspected"),
        ("production", "something_new", "approval_required"),
        ("staging", "containment", "contain_confirmed"),
        ("staging", "rollback", "contain_suspected"),
        ("sandbox", "failover", "contain_confirmed"),
        ("dr-region", "rollback", "approval_required"),
    ],
)
def test_the_default_policy(environment, kind, mode):
    assert gate_mode(POLICY, environment, kind) == mode


def test_a_policy_mode_that_does_not_exist_is_an_error():
    with pytest.raises(AnsibleFilterError, match="gate policy for production/restart is 'sometimes'"):
        gate_mode({"production": {"restart": "sometimes"}}, "production", "restart")


def plan(address, before=("192.0.2.10/32",), at="2026-01-01T00:00:00.000Z", entry_id="aaaa"):
    return {
        "changed": True,
        "msg": f"would add {address}",
        "before": {"addresses": list(before)},
        "after": {"addresses": [*before, address]},
        "containment": [
            {"id": entry_id, "at": at, "incident_id": "INC-1", "step": "waf_block", "resource": "arn:ipset",
             "changed": {"added": [address]}}
        ],
    }  # fmt: skip


def test_the_digest_ignores_run_specific_fields_and_sees_the_state():
    first = gate_plan({"prod-a": plan("203.0.113.1/32")})
    again = gate_plan({"prod-a": plan("203.0.113.1/32", at="2026-02-02T00:00:00.000Z", entry_id="bbbb")})
    assert first["digest"] == again["digest"]
    assert gate_plan({"prod-a": plan("203.0.113.1/32", before=())})["digest"] != first["digest"]
    assert first["summary"].startswith("1 change(s) on 1 resource(s) in 1 account(s): prod-a; plan sha256:")


def test_the_plan_counts_targets_resources_and_accounts_and_loops():
    looped = {"results": [plan("203.0.113.1/32"), {"skipped": True}, {"changed": False, "msg": "nothing"}]}
    summary = gate_plan(
        {"prod-a": plan("203.0.113.1/32"), "prod-b": looped, "prod-c": {"changed": False}},
        {"prod-a": "111111111111", "prod-b": "222222222222"},
    )
    assert (summary["changes"], summary["resources"], summary["accounts"]) == (2, 2, ["111111111111", "222222222222"])
    assert summary["lines"] == [
        "111111111111 (prod-a): would add 203.0.113.1/32",
        "222222222222 (prod-b): would add 203.0.113.1/32",
    ]
    assert not gate_plan({"prod-a": {"changed": False}})["changed"]


@pytest.mark.parametrize(
    ("approval", "allow", "status"),
    [
        (None, False, "none"),
        ("", False, "none"),
        ("ABCDEF12", False, "approved"),
        ("sha256:abcdef1200", False, "approved"),
        ("abcdef13", False, "stale"),
        ("abcdef1", False, "invalid"),
        ("contain-waf", False, "invalid"),
        ("yes", False, "unpinned"),
        (True, True, "approved"),
    ],
)
def test_an_approval_pins_the_plan(approval, allow, status):
    assert gate_check(approval, "abcdef12" + "0" * 56, allow)["status"] == status


def test_a_plan_the_gate_cannot_read_fails_closed():
    """Two results passed as a plain mapping are not a registered result: refused, never "nothing to change"."""
    two = {"block": {"changed": True, "msg": "would block"}, "rate": {"changed": True, "msg": "would add a rule"}}
    with pytest.raises(AnsibleFilterError, match="not a step's registered result"):
        gate_plan({"localhost": two})
    assert gate_plan({"localhost": {"results": list(two.values())}})["changes"] == 2
