"""Issue 15 on the WAF: the role verifies what the module read back (a 1,500-address set passes, a wrong
read-back fails), a release whose IP set is gone reports it and does not fail, and two incidents sharing an
address keep it blocked until the last of them is released (the containment ledger)."""

from __future__ import annotations

import pytest

from tests.integration.containment_helpers import timeline_records
from tests.integration.test_role_waf_block import PLAYBOOK, SEEDED, ip_set, recap

pytestmark = pytest.mark.integration

LARGE = [f"198.18.{i // 250}.{i % 250}/32" for i in range(1500)]


def fill(aws, addresses) -> None:
    waf = aws.manifest["aws"]["waf"]["ip_set"]
    _current, token = ip_set(aws)
    aws.client("wafv2").update_ip_set(
        Name=waf["name"], Scope="REGIONAL", Id=waf["id"], Addresses=list(addresses), LockToken=token
    )


def run_as(run_playbook, tmp_path, incident, **extra):
    """The role for ``incident`` (its own timeline, as a responder's run has)."""
    return run_playbook(
        PLAYBOOK,
        timeline=tmp_path / incident / "timeline.jsonl",
        env={"FIREBREAK_INCIDENT_ID": incident},
        extra_vars=extra,
    )


def releases(timeline) -> list[dict]:
    found = []
    for rec in timeline_records(timeline):
        value = (rec.get("details") or {}).get("release")
        found += value if isinstance(value, list) else [value] if value else []
    return found


def test_role_blocks_and_releases_in_a_1500_address_set(aws, run_playbook, tmp_path):
    fill(aws, [*SEEDED, *LARGE])
    blocked = run_as(run_playbook, tmp_path, "INC-LARGE", role_addresses=["203.0.113.66"])
    assert blocked.returncode == 0, blocked.output
    assert recap(blocked)["failed"] == 0
    stored = ip_set(aws)[0]
    assert len(stored) == 1502 and "203.0.113.66/32" in stored

    released = run_as(run_playbook, tmp_path, "INC-LARGE", role_state="released")
    assert released.returncode == 0, released.output
    assert recap(released)["failed"] == 0
    stored = ip_set(aws)[0]
    assert len(stored) == 1501 and "203.0.113.66/32" not in stored


def test_role_verify_fails_when_the_read_back_lacks_the_address(aws, run_playbook, tmp_path):
    """The verify can fail: the fault proxy answers both reads of the set (before the write, with moto's real
    lock token so the write goes through, and the read-back) with the set as it was before."""
    waf = aws.manifest["aws"]["waf"]["ip_set"]
    token = ip_set(aws)[1]
    canned = {
        "IPSet": {
            "Name": waf["name"],
            "Id": waf["id"],
            "ARN": waf["arn"],
            "IPAddressVersion": "IPV4",
            "Addresses": SEEDED,
        },
        "LockToken": token,
    }
    aws.proxy.add_rule({"service": "wafv2", "action": "GetIPSet", "fault": "canned", "body": canned, "count": 2})
    run = run_as(run_playbook, tmp_path, "INC-READBACK", role_addresses=["203.0.113.66"])
    assert run.returncode != 0, run.output
    assert "203.0.113.66/32" in ip_set(aws)[0], "the write happened; only the read-back disagrees"
    assert "as read back does not hold what was decided" in run.stdout
    assert 'not blocked ["203.0.113.66/32"]' in run.stdout


def test_release_of_a_deleted_ip_set_reports_it_gone(aws, run_playbook, tmp_path):
    waf = aws.manifest["aws"]["waf"]["ip_set"]
    blocked = run_as(run_playbook, tmp_path, "INC-GONE", role_addresses=["203.0.113.66"])
    assert blocked.returncode == 0, blocked.output
    client = aws.client("wafv2")
    acl = client.list_web_acls(Scope="REGIONAL")["WebACLs"][0]
    got = client.get_web_acl(Name=acl["Name"], Scope="REGIONAL", Id=acl["Id"])
    client.update_web_acl(
        Name=acl["Name"], Scope="REGIONAL", Id=acl["Id"], DefaultAction=got["WebACL"]["DefaultAction"], Rules=[],
        VisibilityConfig=got["WebACL"]["VisibilityConfig"], LockToken=got["LockToken"],
    )  # fmt: skip
    client.delete_ip_set(Name=waf["name"], Scope="REGIONAL", Id=waf["id"], LockToken=ip_set(aws)[1])

    released = run_as(run_playbook, tmp_path, "INC-GONE", role_state="released")
    assert released.returncode == 0, released.output
    assert recap(released)["failed"] == 0
    assert "gone: IP set" in released.stdout
    [release] = releases(tmp_path / "INC-GONE" / "timeline.jsonl")
    assert release["gone"] is True and release["resource"] == waf["arn"]

    again = run_as(run_playbook, tmp_path, "INC-GONE", role_state="released")
    assert again.returncode == 0, again.output
    assert "nothing to release" in again.stdout, "the gone containment was recorded as released"


def test_two_incidents_sharing_an_address(aws, run_playbook, tmp_path):
    first = run_as(run_playbook, tmp_path, "INC-A", role_addresses=["203.0.113.66"])
    assert first.returncode == 0, first.output
    second = run_as(run_playbook, tmp_path, "INC-B", role_addresses=["203.0.113.66", "203.0.113.77"])
    assert second.returncode == 0, second.output
    assert ip_set(aws)[0] == [*SEEDED, "203.0.113.66/32", "203.0.113.77/32"]

    release_a = run_as(run_playbook, tmp_path, "INC-A", role_state="released")
    assert release_a.returncode == 0, release_a.output
    assert ip_set(aws)[0] == [*SEEDED, "203.0.113.66/32", "203.0.113.77/32"], "B still claims 203.0.113.66"
    assert "kept 203.0.113.66/32 for INC-B" in release_a.stdout
    [release] = releases(tmp_path / "INC-A" / "timeline.jsonl")
    assert release["left_alone"]["kept_for_others"] == {"203.0.113.66/32": ["INC-B"]}

    release_b = run_as(run_playbook, tmp_path, "INC-B", role_state="released")
    assert release_b.returncode == 0, release_b.output
    assert ip_set(aws)[0] == SEEDED, "the last claimant's release removes the shared address"

    bucket = aws.manifest["aws"]["s3"]["evidence_bucket"]
    left = aws.client("s3").list_objects_v2(Bucket=bucket, Prefix="firebreak/claims/").get("Contents", [])
    assert left == [], "every claim and marker settled"
