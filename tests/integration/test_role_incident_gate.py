"""The incident_gate role before a WAF block in the sandbox: a gate not confirmed stops before any change with
the command that confirms it; a pinned approval proceeds and is a timeline record with the plan's digest; the
prompt on a pseudo-terminal; the two-person rule; an approval of another plan, and a plan that changed after
its approval, are asked again naming the new digest; the policy's ungated kinds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from sandbox import REPO_ROOT

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/gate/waf.yml"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
SEEDED = ["192.0.2.10/32"]
GATED = "203.0.113.77/32"
NEW_DIGEST = re.compile(r"new digest ([0-9a-f]{64})")
NOT_CONFIRMED = re.compile(r"gate contain-waf not confirmed .*?\"contain-waf\": \"([0-9a-f]{12})\"", re.S)


@pytest.fixture
def gate(aws, sandbox, tmp_path, request):
    """Run the gated playbook without a terminal (stdin from /dev/null), as CI or AWX would; or spawn it on a
    pseudo-terminal (``gate.spawn``). The operator is ``bob`` (``USER``)."""
    timeline = tmp_path / "incident" / "timeline.jsonl"
    env = {**os.environ, **sandbox.env()}
    env.update(
        {
            "FIREBREAK_TIMELINE": str(timeline),
            "FIREBREAK_INCIDENT_ID": f"INC-TEST-{request.node.name}"[:80],
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "USER": "bob",
            "ANSIBLE_SHOW_CUSTOM_STATS": "1",  # the plan a check-mode run publishes (AWX: the job's artifacts)
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )

    class Gate:
        def run(self, _args=(), **extra):
            cmd = [ANSIBLE_PLAYBOOK, PLAYBOOK, "-e", json.dumps(extra), *_args]
            proc = subprocess.run(
                cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300
            )
            proc.output = f"{proc.stdout}\n{proc.stderr}"
            return proc

        def spawn(self, **extra):
            return pexpect.spawn(
                ANSIBLE_PLAYBOOK,
                [PLAYBOOK, "-e", json.dumps(extra)],
                cwd=str(REPO_ROOT),
                env=env,
                encoding="utf-8",
                timeout=120,
                dimensions=(50, 400),
            )

        def records(self):
            if not timeline.exists():
                return []
            return [json.loads(line) for line in timeline.read_text().splitlines() if line.strip()]

        def notes(self):
            return [r for r in self.records() if r["event"] == "note"]

        def ip_set(self):
            waf = aws.manifest["aws"]["waf"]["ip_set"]
            answer = aws.client("wafv2").get_ip_set(Name=waf["name"], Scope="REGIONAL", Id=waf["id"])
            return answer["IPSet"]["Addresses"]

        def add_by_hand(self, address):
            waf = aws.manifest["aws"]["waf"]["ip_set"]
            client = aws.client("wafv2")
            answer = client.get_ip_set(Name=waf["name"], Scope="REGIONAL", Id=waf["id"])
            client.update_ip_set(
                Name=waf["name"], Scope="REGIONAL", Id=waf["id"], LockToken=answer["LockToken"],
                Addresses=[*answer["IPSet"]["Addresses"], address],
            )  # fmt: skip

    return Gate()


def pin_of_refusal(run) -> str:
    match = NOT_CONFIRMED.search(run.stdout)
    assert match, run.output[-3000:]
    return match.group(1)


def test_no_confirmation_in_a_non_interactive_run_stops_before_any_change(gate):
    run = gate.run()
    assert run.returncode != 0
    assert "Gate contain-waf (containment in production, policy approval_required): 1 change(s)" in run.stdout
    assert "gate contain-waf not confirmed (approval_required in production): nothing was changed" in run.stdout
    assert '-e \'{"firebreak_gate_approvals": {"contain-waf": "' in run.stdout
    assert gate.ip_set() == SEEDED
    assert not [r for r in gate.records() if r["event"] == "task_changed" and not r["check_mode"]]
    assert not gate.notes(), "a refusal is not an approval"


def test_a_pinned_confirmation_proceeds_and_the_approval_is_in_the_timeline(gate):
    pin = pin_of_refusal(gate.run())  # the same plan gives the same digest on the next run
    run = gate.run(firebreak_gate_approvals={"contain-waf": pin}, firebreak_gate_approver="alice")
    assert run.returncode == 0, run.output[-3000:]
    assert gate.ip_set() == [*SEEDED, GATED]
    records = gate.records()
    (note,) = gate.notes()
    assert note["details"]["kind"] == "decision"
    assert re.search(
        r"^Gate contain-waf approved by alice at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(operator bob, extra vars\): "
        r"containment in production, policy approval_required; 1 change\(s\) on 1 resource\(s\) in 1 account\(s\): "
        rf"localhost; plan sha256:{pin}[0-9a-f]{{52}}$",
        note["msg"],
    ), note["msg"]
    changed = [r for r in records if r["event"] == "task_changed" and not r["check_mode"]]
    assert changed and all(r["seq"] > note["seq"] for r in changed), "approved before the change"


def custom_stats(run) -> dict:
    """The play's ``set_stats`` as the default callback prints them (AWX keeps them as the job's artifacts)."""
    text = run.stdout[run.stdout.index("CUSTOM STATS") :]
    return json.JSONDecoder().raw_decode(text[text.index("{") :])[0]


def test_check_mode_publishes_the_plan_and_an_aws_workflow_approval_of_it_proceeds_unless_it_changed(gate):
    """The AWX gated workflow: a check-mode job, an approval node, the real job. In check mode the gate asks nobody:
    it records that approval is needed and publishes the plan (``firebreak_plan``) as the job's artifact; the real
    job, after the approval node (``firebreak_gate_workflow_approval``), passes only for that same plan."""
    plan_run = gate.run(_args=("--check",))
    assert plan_run.returncode == 0, plan_run.output[-3000:]
    assert gate.ip_set() == SEEDED
    (note,) = gate.notes()
    assert note["msg"].startswith("Gate contain-waf planned in check mode, approval needed before the real run")
    plan = custom_stats(plan_run)["firebreak_plan"]["contain-waf"]
    assert plan["changes"] == 1 and plan["mode"] == "approval_required" and len(plan["digest"]) == 64
    assert plan["digest"] in note["msg"]
    assert plan["lines"] == ["localhost (localhost): check mode: would add 1 addresses to IP set firebreak-blocklist"]

    # the IP set changes between the approval and the real job: asked again, nothing changed
    gate.add_by_hand("198.51.100.9/32")
    stale = gate.run(firebreak_plan={"contain-waf": plan}, firebreak_gate_workflow_approval=True, awx_job_id=41)
    assert stale.returncode != 0
    assert "the plan changed since it was approved" in stale.stdout
    assert gate.ip_set() == [*SEEDED, "198.51.100.9/32"]

    # planned again (a new check-mode job) and approved: the real job passes for that plan and records how
    replanned = custom_stats(gate.run(_args=("--check",)))["firebreak_plan"]
    # without the workflow's word (its run node's extra data) the published plan approves nothing
    assert gate.run(firebreak_plan=replanned).returncode != 0
    assert gate.ip_set() == [*SEEDED, "198.51.100.9/32"]
    run = gate.run(
        firebreak_plan=replanned, firebreak_gate_workflow_approval=True, awx_job_id=42, awx_workflow_job_id=40
    )
    assert run.returncode == 0, run.output[-3000:]
    assert gate.ip_set() == [*SEEDED, "198.51.100.9/32", GATED]
    decided = gate.notes()[-1]["msg"]
    assert "approval node (workflow job 40) of the plan its check-mode job published" in decided
    assert decided.endswith(f"plan sha256:{replanned['contain-waf']['digest']}")


def test_two_person_approval_refuses_the_operator(gate):
    pin = pin_of_refusal(gate.run(gate_two_person=True))
    run = gate.run(gate_two_person=True, firebreak_gate_approvals={"contain-waf": pin}, firebreak_gate_approver="BOB")
    assert run.returncode != 0
    assert "two-person approval is required, and the approver BOB is the operator bob" in run.stdout
    assert gate.ip_set() == SEEDED
    alone = gate.run(gate_two_person=True, firebreak_gate_approvals={"contain-waf": pin})  # no approver: the operator
    assert alone.returncode != 0 and "the approver bob is the operator bob" in alone.stdout
    other = gate.run(
        gate_two_person=True, firebreak_gate_approvals={"contain-waf": pin}, firebreak_gate_approver="alice"
    )
    assert other.returncode == 0, other.output[-3000:]
    assert "approved by alice" in gate.notes()[-1]["msg"] and "two-person" in gate.notes()[-1]["msg"]
    assert gate.ip_set() == [*SEEDED, GATED]


def test_an_approval_of_a_plan_whose_state_changed_is_refused_naming_the_new_digest(gate):
    pin = pin_of_refusal(gate.run())
    gate.add_by_hand("198.51.100.5/32")  # the IP set changed after the plan was approved
    run = gate.run(firebreak_gate_approvals={"contain-waf": pin}, firebreak_gate_approver="alice")
    assert run.returncode != 0
    assert f"the plan changed since it was approved (approved {pin}): new digest" in run.stdout
    new = NEW_DIGEST.search(run.stdout).group(1)
    assert not new.startswith(pin)
    assert gate.ip_set() == [*SEEDED, "198.51.100.5/32"]
    again = gate.run(firebreak_gate_approvals={"contain-waf": new[:8]}, firebreak_gate_approver="alice")
    assert again.returncode == 0, again.output[-3000:]
    assert gate.ip_set() == [*SEEDED, "198.51.100.5/32", GATED]
    assert gate.notes()[-1]["msg"].endswith(f"plan sha256:{new}")


def test_a_plan_that_changed_between_the_approval_and_the_change_is_asked_again(gate):
    pin = pin_of_refusal(gate.run())
    approved = {"firebreak_gate_approvals": {"contain-waf": pin}, "firebreak_gate_approver": "alice"}
    # re-planned after the approval, unchanged (the address someone adds was already there): passes
    same = gate.run(gate_meanwhile="192.0.2.10", **approved)
    assert same.returncode == 0, same.output[-3000:]
    assert "re-planned: unchanged since approved by alice" in gate.notes()[-1]["msg"]
    assert gate.ip_set() == [*SEEDED, GATED]


def test_a_plan_changed_after_its_approval_stops_before_the_change(gate):
    pin = pin_of_refusal(gate.run())
    run = gate.run(
        gate_meanwhile="198.51.100.7", firebreak_gate_approvals={"contain-waf": pin}, firebreak_gate_approver="alice"
    )
    assert run.returncode != 0
    assert f"the plan changed since it was approved (approved {pin}): new digest" in run.stdout
    assert "The plan changed since approved by alice" in run.stdout
    assert gate.ip_set() == [*SEEDED, "198.51.100.7/32"], "the gated address is not blocked"
    assert len(gate.notes()) == 1 and "approved by alice" in gate.notes()[0]["msg"]


def test_the_prompt_on_a_pseudo_terminal(gate):
    child = gate.spawn()
    child.expect(r"Approver's name \(empty: bob\)")
    child.sendline("alice")
    child.expect("Type contain-waf to approve this plan")
    child.sendline("contain-waf")
    child.expect(pexpect.EOF, timeout=180)
    child.close()
    assert child.exitstatus == 0, child.before[-3000:]
    assert gate.ip_set() == [*SEEDED, GATED]
    assert re.match(r"Gate contain-waf approved by alice at \S+ \(operator bob, terminal\)", gate.notes()[-1]["msg"])


def test_the_prompt_answered_wrong_stops_and_a_changed_plan_is_asked_again(gate):
    child = gate.spawn()
    child.expect("Approver's name")
    child.sendline("alice")
    child.expect("Type contain-waf to approve")
    child.sendline("yes")
    child.expect(pexpect.EOF, timeout=180)
    child.close()
    assert child.exitstatus != 0
    assert "gate contain-waf not confirmed" in child.before
    assert gate.ip_set() == SEEDED

    child = gate.spawn(gate_meanwhile="198.51.100.8")
    for answer in ("alice", "contain-waf"):
        child.expect("Approver's name|Type contain-waf")
        child.sendline(answer)
    child.expect("The plan changed since approved by alice")  # re-planned after the approval: asked again
    child.expect("Approver's name")
    child.sendline("carol")
    child.expect("Type contain-waf")
    child.sendline("contain-waf")
    child.expect(pexpect.EOF, timeout=180)
    child.close()
    assert child.exitstatus == 0, child.before[-3000:]
    assert gate.ip_set() == [*SEEDED, "198.51.100.8/32", GATED]
    assert [n["msg"].split(" at ")[0] for n in gate.notes()] == [
        "Gate contain-waf approved by alice",
        "Gate contain-waf approved by carol",
    ]


@pytest.mark.parametrize(
    ("extra", "passes"),
    [
        ({"gate_step_kind": "rollback"}, "policy contain_suspected in production"),
        ({"gate_environment": "staging", "gate_confirmed": True}, "policy contain_confirmed in staging, symptom"),
    ],
)
def test_the_policy_runs_some_steps_ungated(gate, extra, passes):
    run = gate.run(**extra)
    assert run.returncode == 0, run.output[-3000:]
    assert gate.ip_set() == [*SEEDED, GATED]
    assert f"passed without approval ({passes}" in gate.notes()[-1]["msg"]


def test_contain_confirmed_asks_while_the_symptom_is_only_suspected(gate):
    run = gate.run(gate_environment="staging")
    assert run.returncode != 0
    assert "gate contain-waf not confirmed (contain_confirmed in staging)" in run.stdout
    assert gate.ip_set() == SEEDED


@pytest.mark.parametrize("runner", [{"awx_job_id": 42, "awx_user_name": "bob"}, {"ansible_eda": {"ruleset": "alerts"}}])
def test_awx_and_event_driven_runs_are_never_prompted_even_on_a_pseudo_terminal(gate, runner):
    """ansible-runner gives the play a pseudo-terminal that nobody answers: the gate must not wait on it."""
    child = gate.spawn(**runner)
    index = child.expect([pexpect.EOF, "Approver's name"], timeout=180)
    child.close(force=True)
    assert index == 0, "prompted under a runner"
    assert child.exitstatus != 0
    assert "gate contain-waf not confirmed" in child.before
    assert gate.ip_set() == SEEDED
