"""release_containment (issue 17 item 14): every unreleased containment of an incident, newest first, behind one
gate; what another incident claims is kept, what someone changed meanwhile is left alone, both reported."""

from __future__ import annotations

import pytest

from tests.integration.containment_helpers import role
from tests.integration.test_deploy_freeze import inbound, pipeline  # noqa: F401 - fixture
from tests.integration.test_role_iam_key_disable import keys
from tests.integration.test_role_waf_block import SEEDED, ip_set
from tests.integration.test_s3_public_access_lock import configuration

pytestmark = pytest.mark.integration

PLAYBOOK = "playbooks/release_containment.yml"
WAF_PLAYBOOK = "tests/integration/playbooks/waf/role.yml"
IAM_PLAYBOOK = "tests/integration/playbooks/iam/role.yml"
SHARED, OWN = "203.0.113.66/32", "198.51.100.7/32"
APPROVED = {"firebreak_gate_approvals": {"release-containment": "yes"}, "incident_gate_allow_unpinned": True}


def as_incident(tmp_path, incident):
    return {"timeline": tmp_path / incident / "timeline.jsonl", "env": {"FIREBREAK_INCIDENT_ID": incident}}


def bucket(aws) -> str:
    return aws.manifest["aws"]["s3"]["uploads_bucket"]


def state(aws) -> dict:
    return {
        "waf": sorted(ip_set(aws)[0]),
        "keys": sorted(keys(aws).values()),
        "bpa": configuration(aws, bucket(aws)),
        "transitions": inbound(aws),
    }


@pytest.fixture
def breach(aws, run_playbook, pipeline, tmp_path):  # noqa: F811
    """Incident A blocks two addresses, quarantines a user, locks a bucket and freezes deploys; incident B blocks
    one of A's addresses too."""
    a = as_incident(tmp_path, "INC-A")
    for run in (
        run_playbook(WAF_PLAYBOOK, extra_vars={"role_addresses": [SHARED, OWN]}, **a),
        run_playbook(IAM_PLAYBOOK, **a),
        role(run_playbook, "s3_public_block", s3_public_block_bucket=bucket(aws), **a),
        role(run_playbook, "deploy_freeze", deploy_freeze_pipelines=["app-deploy"], **a),
        run_playbook(WAF_PLAYBOOK, extra_vars={"role_addresses": [SHARED]}, **as_incident(tmp_path, "INC-B")),
    ):
        assert run.returncode == 0, run.output
    contained = state(aws)
    assert contained["waf"] == sorted([*SEEDED, SHARED, OWN])
    assert set(contained["keys"]) == {"Inactive"}
    assert all(contained["bpa"].values())
    assert not all(enabled for enabled, _reason in contained["transitions"].values()), contained["transitions"]
    return a


def release(run_playbook, incident, check=False, approved=True, **extra):
    return run_playbook(PLAYBOOK, extra_vars={**(APPROVED if approved else {}), **extra}, check=check, **incident)


def test_check_mode_shows_the_plan_and_changes_nothing(aws, run_playbook, breach):
    before = state(aws)
    run = release(run_playbook, breach, check=True, approved=False)
    assert run.returncode == 0, run.output
    assert state(aws) == before
    for step in ("waf_block", "iam_key_disable", "s3_public_block", "deploy_freeze"):
        assert step in run.stdout, step
    assert "DRY RUN, nothing changed" in run.stdout


def test_without_approval_it_stops_at_the_gate_before_any_change(aws, run_playbook, breach):
    before = state(aws)
    run = release(run_playbook, breach, approved=False, firebreak_environment="production")
    assert run.returncode != 0, run.output
    assert "release-containment" in run.stdout and "firebreak_gate_approvals" in run.stdout, run.stdout[-3000:]
    assert state(aws) == before


def test_release_keeps_what_another_incident_claims_and_what_changed_meanwhile(aws, run_playbook, breach, tmp_path):
    # someone turns one Block Public Access setting off by hand meanwhile: the release leaves that setting alone
    s3 = aws.client("s3")
    changed = dict(configuration(aws, bucket(aws)), BlockPublicPolicy=False)
    s3.put_public_access_block(Bucket=bucket(aws), PublicAccessBlockConfiguration=changed)

    run = release(run_playbook, breach)
    assert run.returncode == 0, run.output
    after = state(aws)
    assert after["waf"] == sorted([*SEEDED, SHARED]), "INC-B still claims the shared address"
    assert set(after["keys"]) == {"Active"}
    assert all(enabled for enabled, _reason in after["transitions"].values()), after["transitions"]
    assert after["bpa"] is None or not any(after["bpa"].values()), after["bpa"]
    assert "kept for other incidents" in run.stdout and "INC-B" in run.stdout
    # newest first: the freeze (contained last) is released before the WAF block (contained first)
    order = [run.stdout.index(f"Release {what}") for what in ("this incident's deploy freezes", "the WAF blocks")]
    assert order == sorted(order), order

    again = release(run_playbook, breach)
    assert again.returncode == 0, again.output
    assert "nothing to release for INC-A" in again.stdout
    assert state(aws) == after

    second = release(run_playbook, as_incident(tmp_path, "INC-B"))
    assert second.returncode == 0, second.output
    assert sorted(ip_set(aws)[0]) == sorted(SEEDED), "the last claim released removes the shared address"


def test_a_step_no_role_releases_and_bad_step_names_are_reported(aws, run_playbook, breach):
    run = release(run_playbook, breach, release_containment_steps=["waf_blok"])
    assert run.returncode != 0
    assert "unknown steps ['waf_blok']" in run.stdout, run.stdout[-2000:]
    assert "Traceback" not in run.output
    assert sorted(ip_set(aws)[0]) == sorted([*SEEDED, SHARED, OWN])
