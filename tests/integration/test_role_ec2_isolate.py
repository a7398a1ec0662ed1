"""The ec2_isolate role: check mode, converge, idempotence, and release through the timeline lookup."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/ec2_isolate/role.yml"
RECAP = re.compile(
    r"^localhost\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)",
    re.M,
)


def recap(run) -> dict:
    match = RECAP.search(run.stdout)
    assert match, f"no PLAY RECAP for localhost in the output:\n{run.output[-3000:]}"
    return {key: int(value) for key, value in match.groupdict().items()}


def state(aws) -> dict:
    seed = aws.manifest["aws"]["evidence"]
    ec2 = aws.client("ec2")
    enis = ec2.describe_network_interfaces(NetworkInterfaceIds=seed["eni_ids"])["NetworkInterfaces"]
    stop = ec2.describe_instance_attribute(InstanceId=seed["instance_id"], Attribute="disableApiStop")
    return {
        "enis": {e["NetworkInterfaceId"]: sorted(g["GroupId"] for g in e["Groups"]) for e in enis},
        "stop_protection": stop["DisableApiStop"]["Value"],
        "snapshots": len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]),
    }


def role_vars(aws, **extra) -> dict:
    return {"ec2_isolate_instance": aws.manifest["aws"]["evidence"]["instance_id"], **extra}


def test_check_mode_changes_nothing(aws, run_playbook):
    before = state(aws)
    run = run_playbook(PLAYBOOK, extra_vars=role_vars(aws), check=True, diff=True)
    assert run.returncode == 0, run.output
    assert recap(run)["failed"] == 0
    assert state(aws) == before


def test_converge_idempotence_and_release_from_the_timeline(aws, run_playbook, tmp_path):
    seed = aws.manifest["aws"]["evidence"]
    quarantine = seed["security_groups"]["quarantine"]
    before = state(aws)

    first = run_playbook(PLAYBOOK, extra_vars=role_vars(aws))
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1, first.stdout
    assert state(aws)["enis"] == {eni: [quarantine] for eni in seed["eni_ids"]}
    assert state(aws)["stop_protection"] is True

    second = run_playbook(PLAYBOOK, extra_vars=role_vars(aws))
    assert second.returncode == 0, second.output
    assert recap(second)["changed"] == 0, second.stdout

    # the release reads the isolation from the timeline both runs wrote
    text = first.timeline.read_text()
    records = [json.loads(line) for line in text.splitlines()]
    recorded = [(r.get("details") or {}).get("containment") for r in records]
    assert any(isinstance(entries, list) and entries for entries in recorded)
    assert '"testing"' not in text, "the AWS secret key (sandbox value 'testing') reached the timeline"
    released = run_playbook(PLAYBOOK, extra_vars=role_vars(aws, ec2_isolate_state="released"))
    assert released.returncode == 0, released.output
    assert recap(released)["changed"] == 1, released.stdout
    assert "left alone:" not in released.stdout  # nothing was changed meanwhile: no "left alone: [{}]"
    after = state(aws)
    assert after["enis"] == before["enis"]
    assert after["stop_protection"] is False

    again = run_playbook(PLAYBOOK, extra_vars=role_vars(aws, ec2_isolate_state="released"))
    assert again.returncode == 0, again.output
    assert recap(again)["changed"] == 0, again.stdout
    assert "nothing to release" in again.stdout


def test_role_rejects_an_unknown_instance_before_changing_anything(aws, run_playbook):
    before = state(aws)
    run = run_playbook(PLAYBOOK, extra_vars={"ec2_isolate_instance": "i-0123456789abcdef0"})
    assert run.returncode != 0
    assert "EC2 instance 'i-0123456789abcdef0' does not exist" in run.stdout
    assert state(aws) == before


def test_an_instance_isolated_by_two_incidents(aws, run_playbook, tmp_path):
    """The first release keeps the groups while the second incident claims the isolation; the last restores them."""
    quarantine = aws.manifest["aws"]["evidence"]["security_groups"]["quarantine"]
    seed_enis = aws.manifest["aws"]["evidence"]["eni_ids"]
    before = state(aws)

    def run_as(incident, **extra):
        return run_playbook(
            PLAYBOOK,
            extra_vars=role_vars(aws, **extra),
            env={"FIREBREAK_INCIDENT_ID": incident},
            timeline=tmp_path / incident / "timeline.jsonl",
        )

    for incident in ("INC-A", "INC-B"):
        run = run_as(incident)
        assert run.returncode == 0, run.output
        assert state(aws)["enis"] == {eni: [quarantine] for eni in seed_enis}

    release_a = run_as("INC-A", ec2_isolate_state="released")
    assert release_a.returncode == 0, release_a.output
    assert state(aws)["enis"] == {eni: [quarantine] for eni in seed_enis}, "INC-B still claims the isolation"
    assert state(aws)["stop_protection"] is True
    assert "kept isolation for INC-B" in release_a.stdout

    release_b = run_as("INC-B", ec2_isolate_state="released")
    assert release_b.returncode == 0, release_b.output
    after = state(aws)
    assert after["enis"] == before["enis"], "the last claimant's release restores the groups INC-A replaced"
    assert after["stop_protection"] is False


def test_a_terminated_instance_is_gone_and_the_release_goes_on(aws, run_playbook, tmp_path):
    instance = aws.manifest["aws"]["evidence"]["instance_id"]
    env = {"FIREBREAK_INCIDENT_ID": "INC-T"}
    timeline = tmp_path / "INC-T" / "timeline.jsonl"
    run = run_playbook(PLAYBOOK, extra_vars=role_vars(aws), env=env, timeline=timeline)
    assert run.returncode == 0, run.output
    ec2 = aws.client("ec2")
    ec2.modify_instance_attribute(InstanceId=instance, DisableApiTermination={"Value": False})
    ec2.terminate_instances(InstanceIds=[instance])

    released = run_playbook(
        PLAYBOOK, extra_vars=role_vars(aws, ec2_isolate_state="released"), env=env, timeline=timeline
    )
    assert released.returncode == 0, released.output
    assert f"gone (recorded as released): {instance}" in released.stdout
    again = run_playbook(PLAYBOOK, extra_vars=role_vars(aws, ec2_isolate_state="released"), env=env, timeline=timeline)
    assert again.returncode == 0 and "nothing to release" in again.stdout, again.output


@pytest.mark.parametrize(
    ("extra", "named", "not_named"),
    [
        ({"ec2_isolate_instance": ""}, 'ec2_isolate_instance must name the EC2 instance (got "")', "wait_timeout"),
        ({"ec2_isolate_wait_timeout": -1}, "ec2_isolate_wait_timeout must be >= 0 (got -1)", "ec2_isolate_instance"),
    ],
    ids=["empty-instance", "negative-wait"],
)
def test_a_bad_value_is_named_alone_and_nothing_changes(aws, run_playbook, extra, named, not_named):
    before = state(aws)
    run = run_playbook(PLAYBOOK, extra_vars=role_vars(aws, **extra))
    assert run.returncode != 0
    (line,) = [line for line in run.stdout.splitlines() if line.startswith("fatal:")]
    message = json.loads(line.split("=> ", 1)[1])["msg"]
    assert named in message and not_named not in message, message
    assert state(aws) == before
