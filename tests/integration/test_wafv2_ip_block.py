"""wafv2_ip_block against the sandbox: merged addresses read back from moto, lock conflicts, release.

Every test asserts the IP set's addresses in moto, not only what the module said.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox import REPO_ROOT

pytestmark = pytest.mark.integration

BLOCK = "tests/integration/playbooks/waf/block.yml"
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
MUTATING = {"UpdateIPSet", "TagResource", "UntagResource", "CreateIPSet", "UpdateWebACL", "DeleteIPSet"}
SEEDED = ["192.0.2.10/32"]


def addresses(aws) -> list[str]:
    ip_set = aws.manifest["aws"]["waf"]["ip_set"]
    return aws.client("wafv2").get_ip_set(Name=ip_set["name"], Scope="REGIONAL", Id=ip_set["id"])["IPSet"]["Addresses"]


def tags(aws) -> dict:
    arn = aws.manifest["aws"]["waf"]["ip_set"]["arn"]
    listed = aws.client("wafv2").list_tags_for_resource(ResourceARN=arn)["TagInfoForResource"]["TagList"]
    return {t["Key"]: t["Value"] for t in listed}


def result_of(run, task: str = "Block") -> dict:
    data = json.loads(run.stdout[run.stdout.index("{") :])
    for play in data["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                return entry["hosts"]["localhost"]
    raise AssertionError(f"task {task!r} not in the output:\n{run.output[-3000:]}")


def block(aws, run_playbook, check=False, diff=False, **options):
    waf = aws.manifest["aws"]["waf"]
    extra = {"waf_ip_set": waf["ip_set"]["name"], "waf_resource_arn": waf["associated_resource_arn"]}
    extra.update({f"waf_{key}": value for key, value in options.items()})
    extra = {key: value for key, value in extra.items() if value is not None}
    run = run_playbook(BLOCK, extra_vars=extra, check=check, diff=diff, env=JSON_OUTPUT)
    return run, result_of(run)


def mutating_calls(aws) -> list[str]:
    return [e["action"] for e in aws.proxy.log() if e["service"] == "wafv2" and e["action"] in MUTATING]


def test_block_merges_normalised_addresses_keeps_existing_and_reruns_unchanged(aws, run_playbook):
    run, result = block(
        aws, run_playbook, addresses=["203.0.113.66", "198.51.100.7/24", "192.0.2.10", "203.0.113.66/32"]
    )
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    assert addresses(aws) == SEEDED + ["203.0.113.66/32", "198.51.100.0/24"]
    assert result["added"] == ["203.0.113.66/32", "198.51.100.0/24"]
    assert result["already_covered"] == {"192.0.2.10/32": "192.0.2.10/32"}
    assert result["normalised"] == {"198.51.100.7/24": "198.51.100.0/24"}
    assert result["block_rules"] == ["edge-acl/block-firebreak-blocklist"]
    assert result["before"] == {"address_count": 1, "addresses": SEEDED}
    entry = result["containment"]
    assert entry["changed"] == {"added": ["203.0.113.66/32", "198.51.100.0/24"]}
    assert entry["resource"] == aws.manifest["aws"]["waf"]["ip_set"]["arn"] and entry["step"] == "waf_block"
    assert tags(aws)["firebreak:incident"] == entry["incident_id"]

    aws.proxy.clear_log()
    run, again = block(aws, run_playbook, addresses=["203.0.113.66", "198.51.100.99"])  # covered by the /24
    assert run.returncode == 0, run.output
    assert again["changed"] is False and "containment" not in again
    assert again["already_covered"] == {"203.0.113.66/32": "203.0.113.66/32", "198.51.100.99/32": "198.51.100.0/24"}
    assert addresses(aws) == SEEDED + ["203.0.113.66/32", "198.51.100.0/24"]
    assert not mutating_calls(aws)
