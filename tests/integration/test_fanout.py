"""Fan-out across 20 sandbox accounts (moto's separate accounts, reached with STS AssumeRole per target).

The inventory is generated here: one host per account (``ansible_connection: local``) with its own role to assume.
Each account gets its own WAF IP set and web ACL; the fan-out playbook blocks an address in every one of them,
a canary wave first, with the blast-radius cap raised to 20. One account is left without its IP set: that target
fails and the other 19 finish. Also: the cap refuses 21 targets before anything changes, check mode changes
nothing, sessions are kept or re-assumed by their time left, and no session secret reaches the timeline.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.config import Config

from sandbox import CREDENTIALS, REGION
from tests.integration.scenario_helpers import records

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/fanout/waf_block.yml"
ACCOUNTS = [f"2{n:011d}" for n in range(1, 22)]  # 21 twelve-digit accounts
ROLE = "arn:aws:iam::{}:role/firebreak-responder"
SEEDED = ["192.0.2.10/32"]
BLOCKED = "203.0.113.66/32"
FAILING = ACCOUNTS[6]  # not the canary: the canary is the first target


def host(account: str) -> str:
    return f"acct-{account}-{REGION}"


def account_client(aws, account: str, service: str):
    """A boto3 client acting in ``account``: the sandbox's credentials assume the account's role (moto switches
    accounts by the assumed role's ARN)."""
    config = Config(retries={"mode": "standard", "max_attempts": 3})
    sts = boto3.client(
        "sts",
        endpoint_url=aws.aws_url,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=config,
    )
    creds = sts.assume_role(RoleArn=ROLE.format(account), RoleSessionName="fanout-test-seed")["Credentials"]
    return boto3.client(
        service,
        endpoint_url=aws.aws_url,
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=config,
    )


def seed_waf(wafv2) -> None:
    ip_set = wafv2.create_ip_set(
        Name="firebreak-blocklist", Scope="REGIONAL", IPAddressVersion="IPV4", Addresses=list(SEEDED)
    )["Summary"]
    visibility = {"SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": False}
    wafv2.create_web_acl(
        Name="edge-acl",
        Scope="REGIONAL",
        DefaultAction={"Allow": {}},
        Rules=[
            {
                "Name": "block-firebreak-blocklist",
                "Priority": 0,
                "Statement": {"IPSetReferenceStatement": {"ARN": ip_set["ARN"]}},
                "Action": {"Block": {}},
                "VisibilityConfig": {**visibility, "MetricName": "block"},
            }
        ],
        VisibilityConfig={**visibility, "MetricName": "edge-acl"},
    )


def blocked(wafv2) -> list[str] | None:
    """The addresses of the account's IP set, None when it has none."""
    found = [s for s in wafv2.list_ip_sets(Scope="REGIONAL")["IPSets"] if s["Name"] == "firebreak-blocklist"]
    if not found:
        return None
    return wafv2.get_ip_set(Name="firebreak-blocklist", Scope="REGIONAL", Id=found[0]["Id"])["IPSet"]["Addresses"]


@pytest.fixture
def seed(aws):
    """``seed(n)``: the first n accounts' WAF clients, every one but FAILING seeded with its IP set and web ACL."""

    def accounts(count: int) -> dict:
        clients = {account: account_client(aws, account, "wafv2") for account in ACCOUNTS[:count]}
        for account, wafv2 in clients.items():
            if account != FAILING:
                seed_waf(wafv2)
        return clients

    return accounts


def inventory(tmp_path: Path, aws, count: int, **host_vars) -> Path:
    hosts = {
        host(account): {"firebreak_aws_account_id": account, "firebreak_assume_role_arn": ROLE.format(account)}
        for account in ACCOUNTS[:count]
    }
    for name in hosts:
        hosts[name].update(host_vars)
    data = {
        "aws_targets": {
            "hosts": hosts,
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "firebreak_environment": "sandbox",
                "firebreak_aws_region": REGION,
                "firebreak_aws_endpoint_url": aws.aws_url,
                "firebreak_evidence_bucket": "",
            },
        }
    }
    path = tmp_path / f"inventory-{count}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def state(accounts) -> dict:
    return {account: blocked(wafv2) for account, wafv2 in accounts.items()}


def sts_calls(aws) -> int:
    return sum(1 for entry in aws.proxy.log() if entry.get("action") == "AssumeRole")


def test_twenty_accounts_in_one_run_one_failing_target_does_not_stop_the_others(aws, seed, run_playbook, tmp_path):
    accounts = seed(21)
    inv = inventory(tmp_path, aws, 20)
    aws.proxy.clear_log()
    started = time.monotonic()
    run = run_playbook(PLAYBOOK, extra_vars={"firebreak_max_targets": 20}, args=["-i", str(inv), "-f", "10"])
    elapsed = time.monotonic() - started
    assert run.returncode == 2, run.output[-4000:]  # some hosts failed

    after = state(accounts)
    for account in ACCOUNTS[:20]:
        if account == FAILING:
            assert after[account] is None, "the failing account was left as it was (no IP set)"
        else:
            assert after[account] == [*SEEDED, BLOCKED], f"account {account}: {after[account]}"
    assert after[ACCOUNTS[20]] == SEEDED, "the 21st account is not in the inventory and was not touched"

    # the failed target is listed: in the recap, in the summary of its wave and in the timeline's end
    assert re.search(rf"^{host(FAILING)}\s*:.*failed=1", run.stdout, re.M), run.stdout[-3000:]
    assert f"1 failed: {host(FAILING)}" in run.stdout
    recorded = records(run.timeline)
    end = [r for r in recorded if r["event"] == "playbook_end"][-1]
    assert end["details"]["failed_hosts"] == [host(FAILING)]
    failed = [r for r in recorded if r["event"] == "task_failed"]
    assert [r["host"] for r in failed] == [host(FAILING)]
    assert "edge-acl" in (failed[0]["msg"] or ""), failed[0]

    # every task record names its target: the inventory host, and its account and region
    tasks = [r for r in recorded if r["event"].startswith("task_") or r["event"] == "note"]
    for rec in tasks:
        if rec["host"] and rec["host"].startswith("acct-"):
            target = rec["details"]["target"]
            assert rec["host"] == host(target["account_id"]), rec
    changed = [r for r in recorded if r["event"] == "task_changed" and r["action"].endswith("wafv2_ip_block")]
    assert sorted(r["details"]["target"]["account_id"] for r in changed) == sorted(set(ACCOUNTS[:20]) - {FAILING})
    sessions = [r["details"]["target"] for r in changed]
    assert {s["region"] for s in sessions} == {REGION}
    assert all(s["session_name"].startswith("firebreak-INC-TEST-") for s in sessions), sessions

    # waves: the canary alone first, the others after it
    first_block = next(r for r in changed if True)
    assert first_block["host"] == host(ACCOUNTS[0])
    canary_done = first_block["seq"]
    others = [r for r in recorded if r["host"] and r["host"] != host(ACCOUNTS[0]) and r["event"].startswith("task_")]
    assert min(r["seq"] for r in others) > canary_done, "no other target started before the canary was done"
    notes = [r for r in recorded if r["event"] == "note" and "fan-out wave" in (r["msg"] or "")]
    assert len(notes) == 2 and "wave of 1 of 20" in notes[0]["msg"] and "wave of 19 of 20" in notes[1]["msg"]
    assert ACCOUNTS[0] in notes[0]["msg"]

    # one AssumeRole per target, each into its own account
    assert sts_calls(aws) == 20
    print(f"20 targets in {elapsed:.1f}s")

    # the report groups the actions by target and lists the failed one, while the other 19 finished
    report = run_playbook(
        "playbooks/incident_report.yml",
        extra_vars={"incident_timeline": str(run.timeline)},
        timeline=tmp_path / "r.jsonl",
    )
    assert report.returncode == 0, report.output[-3000:]
    facts = json.loads((run.timeline.parent / "report.json").read_text())
    assert facts["failed_targets"] == [host(FAILING)]
    by_name = {t["name"]: t for t in facts["targets"]}
    assert len(by_name) == 20 and by_name[host(FAILING)]["failed"] is True
    assert sum(1 for t in by_name.values() if not t["failed"] and t["changed"]) == 19
    markdown = (run.timeline.parent / "report.md").read_text()
    assert "## Targets" in markdown and host(FAILING) in markdown.split("## Targets", 1)[1]


def test_the_cap_refuses_more_targets_before_anything_changes(aws, seed, run_playbook, tmp_path):
    accounts = seed(3)
    before = state(accounts)
    inv = inventory(tmp_path, aws, 21)
    aws.proxy.clear_log()
    run = run_playbook(PLAYBOOK, extra_vars={"firebreak_max_targets": 20}, args=["-i", str(inv), "-f", "10"])
    assert run.returncode != 0
    assert "refusing to act on 21 targets: the blast-radius cap is 20 (firebreak_max_targets)" in run.stdout
    assert "nothing was changed" in run.stdout
    assert all(host(account) in run.stdout for account in ACCOUNTS)
    assert "-e firebreak_max_targets=21" in run.stdout
    assert aws.proxy.log() == [], "no call to AWS was made: no session assumed, nothing read or changed"
    assert state(accounts) == before


def test_the_environment_cap_applies_without_an_explicit_raise(aws, run_playbook, tmp_path):
    inv = inventory(tmp_path, aws, 6)
    text = inv.read_text().replace("firebreak_environment: sandbox", "firebreak_environment: production")
    inv.write_text(text)
    aws.proxy.clear_log()  # a reset keeps the log: an earlier test's AssumeRole calls on this worker are not this run's
    run = run_playbook(PLAYBOOK, args=["-i", str(inv)])
    assert run.returncode != 0
    assert "refusing to act on 6 targets: the blast-radius cap is 5 (the production cap in incident_targets_caps)" in (
        run.stdout
    )
    assert sts_calls(aws) == 0


def test_check_mode_changes_nothing(aws, seed, run_playbook, tmp_path):
    accounts = seed(5)
    before = state(accounts)
    inv = inventory(tmp_path, aws, 5)
    run = run_playbook(PLAYBOOK, check=True, diff=True, args=["-i", str(inv), "-f", "5"])
    assert run.returncode == 0, run.output[-3000:]
    assert state(accounts) == before
    assert run.stdout.count("203.0.113.66/32") >= 5, "check mode shows each target's plan"


def test_sessions_are_kept_while_fresh_reassumed_when_short_and_never_recorded(aws, run_playbook, tmp_path):
    """Two targets in the default account (a canned AssumeRole answer with known secrets): the timeline never
    holds the secret key or the session token; a second use of a fresh session makes no call; a session shorter
    than the renewal window is assumed again."""
    secret, token = "FanoutSecretKey0123456789abcdefghijklmn", "FanoutSessionToken-" + "x" * 40
    expiration = "2099-01-01T00:00:00Z"
    aws.proxy.add_rule(
        {
            "service": "sts",
            "action": "AssumeRole",
            "fault": "canned",
            "body": {
                "Credentials": {
                    "AccessKeyId": "ASIAFANOUTTEST000001",
                    "SecretAccessKey": secret,
                    "SessionToken": token,
                    "Expiration": expiration,
                },
                "AssumedRoleUser": {
                    "AssumedRoleId": "AROAFANOUT:firebreak",
                    "Arn": "arn:aws:sts::123456789012:assumed-role/firebreak-responder/firebreak",
                },
            },
        }
    )
    hosts = {
        f"default-{n}": {
            "firebreak_assume_role_arn": ROLE.format("123456789012"),
            "firebreak_aws_account_id": "123456789012",
        }
        for n in range(2)
    }
    inv = tmp_path / "inventory.yml"
    inv.write_text(
        yaml.safe_dump(
            {
                "aws_targets": {
                    "hosts": hosts,
                    "vars": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": sys.executable,
                        "firebreak_aws_region": REGION,
                        "firebreak_aws_endpoint_url": aws.aws_url,
                        "firebreak_evidence_bucket": "",
                    },
                }
            }
        )
    )
    aws.proxy.clear_log()
    run = run_playbook(
        "tests/integration/playbooks/fanout/session.yml", args=["-i", str(inv), "-v"], extra_vars={"renew": 15}
    )
    assert run.returncode == 0, run.output[-3000:]
    assert sts_calls(aws) == 2, "the second use kept each target's fresh session"
    text = run.timeline.read_text()
    assert secret not in text and token not in text
    assert secret not in run.output and token not in run.output, "not in the run's output either (no_log)"
    waf = aws.manifest["aws"]["waf"]["ip_set"]
    assert (
        BLOCKED
        in aws.client("wafv2").get_ip_set(Name=waf["name"], Scope="REGIONAL", Id=waf["id"])["IPSet"]["Addresses"]
    ), "the modules acted with the session's credentials (moto: an unknown key acts in the default account)"
    kept = [
        r
        for r in records(run.timeline)
        if r["action"] == "ansible.builtin.assert" and "kept the credentials" in (r["msg"] or "")
    ]
    assert len(kept) == 2, "the second use says the session was kept"

    # a renewal window longer than what is left: assumed again each time
    aws.proxy.clear_log()
    aws.proxy.reset()
    expiring = time.time() + 20 * 60
    expiring_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expiring))
    aws.proxy.add_rule(
        {
            "service": "sts",
            "action": "AssumeRole",
            "fault": "canned",
            "body": {
                "Credentials": {
                    "AccessKeyId": "ASIAFANOUTTEST000002",
                    "SecretAccessKey": secret,
                    "SessionToken": token,
                    "Expiration": expiring_iso,
                },
                "AssumedRoleUser": {"Arn": "arn:aws:sts::123456789012:assumed-role/firebreak-responder/firebreak"},
            },
        }
    )
    again = run_playbook(
        "tests/integration/playbooks/fanout/session.yml", args=["-i", str(inv)], extra_vars={"renew": 30}
    )
    assert again.returncode == 0, again.output[-3000:]
    assert sts_calls(aws) == 4, "20 minutes left is fewer than 30: each use assumed again"
    assert secret not in again.timeline.read_text()


def test_a_role_in_another_account_is_refused_naming_it(aws, run_playbook, tmp_path):
    inv = inventory(tmp_path, aws, 1)
    text = inv.read_text().replace(
        f"firebreak_aws_account_id: '{ACCOUNTS[0]}'", "firebreak_aws_account_id: '999999999999'"
    )
    inv.write_text(text)
    aws.proxy.clear_log()
    run = run_playbook(PLAYBOOK, args=["-i", str(inv)])
    assert run.returncode != 0
    assert (
        f"role_arn {ROLE.format(ACCOUNTS[0])} is in account {ACCOUNTS[0]}, not in the target's account 999999999999"
        in (run.stdout)
    ), run.stdout[-2000:]
    assert sts_calls(aws) == 0


def test_through_a_hub_role_each_target_is_reached_by_role_chaining(aws, seed, run_playbook, tmp_path):
    """AWX's hub role credential: the controller assumes the hub role, whose session assumes each account's role."""
    accounts = seed(3)
    inv = inventory(tmp_path, aws, 2)
    aws.proxy.clear_log()
    hub = ROLE.format("299999999999").replace("firebreak-responder", "firebreak-hub")
    run = run_playbook(PLAYBOOK, extra_vars={"firebreak_aws_hub_role_arn": hub}, args=["-i", str(inv)])
    assert run.returncode == 0, run.output[-3000:]
    assert sts_calls(aws) == 4, "per target: the hub, then the account's role"
    after = state(accounts)
    assert after[ACCOUNTS[0]] == after[ACCOUNTS[1]] == [*SEEDED, BLOCKED]
    assert after[ACCOUNTS[2]] == SEEDED

    again = run_playbook(PLAYBOOK, extra_vars={"firebreak_aws_hub_role_arn": hub}, args=["-i", str(inv)])
    assert again.returncode == 0, again.output[-3000:]
    for account in ACCOUNTS[:2]:
        assert re.search(rf"^{host(account)}\s*:\s*ok=\d+\s+changed=0\s", again.stdout, re.M), again.stdout[-2000:]
    assert state(accounts) == after


def test_a_single_target_record_is_what_it_was_before_fan_out(aws, run_playbook):
    """inventories/sandbox's localhost names no account: its records carry no details.target."""
    run = run_playbook("tests/integration/playbooks/noop.yml")
    assert run.returncode == 0, run.output[-2000:]
    recorded = records(run.timeline)
    assert any(r["host"] == "localhost" for r in recorded)
    assert not [r for r in recorded if "target" in (r.get("details") or {})]
