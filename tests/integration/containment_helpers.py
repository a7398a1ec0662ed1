"""Helpers shared by the containment step tests (s3_public_access_lock, stepfunctions_batch_pause,
secret_rotate, codepipeline_deploy_freeze): run one module task, read its result, read the proxy log."""

from __future__ import annotations

import json
from pathlib import Path

PLAYBOOKS = Path("tests/integration/playbooks/containment")
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}


def result_of(run, task: str = "Step") -> dict:
    """The localhost result of ``task`` from a run with the json stdout callback."""
    data = json.loads(run.stdout[run.stdout.index("{") :])
    for play in data["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                return entry["hosts"]["localhost"]
    raise AssertionError(f"task {task!r} not in the output:\n{run.output[-3000:]}")


def step(run_playbook, module: str, check=False, diff=False, env=None, **args):
    """Run ``module`` once with ``args``; returns ``(run, result)``."""
    playbook = PLAYBOOKS / f"{module}.yml"
    run = run_playbook(
        playbook, extra_vars={"step_args": args}, check=check, diff=diff, env={**JSON_OUTPUT, **(env or {})}
    )
    return run, result_of(run)


def calls(aws, service: str, since: int = 0) -> list[str]:
    """Actions the fault proxy saw for ``service`` (after log seq ``since``)."""
    return [e["action"] for e in aws.proxy.log() if e["service"] == service and e["seq"] > since]


def last_seq(aws) -> int:
    entries = aws.proxy.log()
    return entries[-1]["seq"] if entries else 0


def timeline_text(run) -> str:
    return Path(run.timeline).read_text(encoding="utf-8") if Path(run.timeline).exists() else ""


def timeline_records(path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def recorded_containments(path, step_name: str) -> list[dict]:
    """Containment entries of ``step_name`` in a timeline (not check mode, not failed), as the lookup reads them."""
    found = []
    for rec in timeline_records(path):
        if rec.get("check_mode") or rec.get("event") not in ("task_ok", "task_changed"):
            continue
        entry = (rec.get("details") or {}).get("containment")
        for item in entry if isinstance(entry, list) else [entry] if entry else []:
            if item.get("step") == step_name:
                found.append(item)
    return found


ROLE_PLAYBOOK = PLAYBOOKS / "role.yml"


def role(run_playbook, name: str, check=False, diff=False, env=None, timeline=None, **variables):
    """Run role ``name`` with ``variables``; returns the run."""
    return run_playbook(
        ROLE_PLAYBOOK,
        extra_vars={"step_role": name, **variables},
        check=check,
        diff=diff,
        env=env,
        timeline=timeline,
    )


def recap(run) -> dict:
    import re

    match = re.search(
        r"^localhost\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
        r"\s+failed=(?P<failed>\d+)",
        run.stdout,
        re.M,
    )
    assert match, f"no PLAY RECAP for localhost in the output:\n{run.output[-3000:]}"
    return {key: int(value) for key, value in match.groupdict().items()}
