"""The Molecule drills' steps (extensions/molecule/): the sandbox, the fault, the scenario, the verification.

    python -m sandbox.drill_molecule create  --state DIR
    python -m sandbox.drill_molecule prepare SCENARIO --state DIR
    python -m sandbox.drill_molecule converge SCENARIO --state DIR [--check]
    python -m sandbox.drill_molecule verify SCENARIO --state DIR
    python -m sandbox.drill_molecule destroy --state DIR
    python -m sandbox.drill_molecule serve --workdir DIR        (the sandbox process create starts)

``--state`` is the scenario's Molecule ephemeral directory: what create started, the injected context and the
incident's id are kept there between the steps (each step is its own process); the steps' logs are beside the
incident's timeline (``incidents/<incident>/``).

create attaches to a sandbox that already answers: the one named by ``FIREBREAK_SANDBOX_ENV`` (for example the
``.sandbox/foreground/env.sh`` of ``make sandbox``), else ``.sandbox/molecule/env.sh`` of a drill run before;
otherwise it starts one (``serve``, detached) there. Several drills share that sandbox: destroy stops only what
its create started (``FIREBREAK_DRILL_KEEP_SANDBOX=1`` leaves it running for the next drill). prepare resets a
``serve`` sandbox to its seed (SIGHUP), then injects the drill's fault as ``make inject`` does (sandbox/inject.py)
and records it as the timeline's first note. converge runs the scenario playbook with the injected extra vars
against the sandbox (its environment, the repository's inventory and ansible.cfg: the gate policy of the sandbox
environment) and prints how many of its tasks changed, so that Molecule's idempotence sees the playbook's own
changes; the run's output goes to a log beside the timeline. verify runs the drill's own ``verify`` and
``verify_record`` (sandbox/drills/<scenario>.py) after rendering the report.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from sandbox import REPO_ROOT, Sandbox
from sandbox.drills import available
from sandbox.inject import NoSandbox, RunningSandbox

DEFAULT_WORKDIR = REPO_ROOT / ".sandbox" / "molecule"
START_TIMEOUT = 240
RESET_TIMEOUT = 180
RECAP = re.compile(r"^\S+\s*:\s*ok=\d+\s+changed=(\d+)", re.MULTILINE)
# Tasks that write the incident's record, not the sandbox: the report is rewritten after every run because its
# input (the timeline) grew, so it is not counted as a change of the scenario's idempotence.
RECORD_ONLY = {"firebreak.runbooks.incident_report"}


class StepError(RuntimeError):
    """A drill step could not be done."""


def _state(state_dir: Path) -> dict:
    path = Path(state_dir) / "drill.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _save(state_dir: Path, state: dict) -> None:
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    (Path(state_dir) / "drill.json").write_text(json.dumps(state, indent=2, default=str), encoding="utf-8")


def _env_file() -> Path:
    return Path(os.environ.get("FIREBREAK_SANDBOX_ENV") or DEFAULT_WORKDIR / "env.sh")


def _alive(env_file: Path) -> RunningSandbox | None:
    try:
        return RunningSandbox(env_file)
    except NoSandbox:
        return None


# -- the sandbox process --------------------------------------------------------------------------------------


def serve(workdir: Path) -> int:
    """Run a sandbox until SIGTERM/SIGINT; SIGHUP resets it to its seed (``reset.done`` counts the resets)."""
    stop, reset = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: reset.set())
    workdir = Path(workdir)
    env_file, done, pid_file = workdir / "env.sh", workdir / "reset.done", workdir / "serve.pid"
    with Sandbox(workdir=workdir) as box:
        done.write_text("0")
        env_file.write_text("".join(f"export {key}={value}\n" for key, value in sorted(box.env().items())))
        pid_file.write_text(str(os.getpid()))
        print(box.describe(), flush=True)
        count = 0
        while not stop.is_set():
            if reset.wait(0.5):
                reset.clear()
                box.reset()
                count += 1
                done.write_text(str(count))
                print(f"sandbox reset to its seed ({count})", flush=True)
        for path in (env_file, pid_file, done):
            path.unlink(missing_ok=True)
    return 0


def create(state_dir: Path) -> str:
    env_file = _env_file()
    if _alive(env_file):
        _save(state_dir, {"env_file": str(env_file), "started": False})
        return f"attached to the running sandbox of {env_file}"
    workdir = env_file.parent
    workdir.mkdir(parents=True, exist_ok=True)
    env_file.unlink(missing_ok=True)
    with open(workdir / "serve.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox.drill_molecule", "serve", "--workdir", str(workdir)],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StepError(f"the sandbox exited with {proc.returncode}; see {workdir / 'serve.log'}")
        if env_file.is_file() and _alive(env_file):
            _save(state_dir, {"env_file": str(env_file), "started": True, "pid": proc.pid})
            return f"started a sandbox (pid {proc.pid}) with its env file {env_file}"
        time.sleep(0.5)
    proc.terminate()
    raise StepError(f"the sandbox did not answer within {START_TIMEOUT}s; see {workdir / 'serve.log'}")


def destroy(state_dir: Path) -> str:
    state = _state(state_dir)
    (Path(state_dir) / "drill.json").unlink(missing_ok=True)
    if not state.get("started"):
        return "nothing to stop: this drill attached to a sandbox it did not start"
    if os.environ.get("FIREBREAK_DRILL_KEEP_SANDBOX") == "1":
        return f"left the sandbox (pid {state['pid']}) running for the next drill (FIREBREAK_DRILL_KEEP_SANDBOX=1)"
    pid = int(state["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return f"the sandbox (pid {pid}) had stopped already"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return f"stopped the sandbox (pid {pid})"
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    return f"killed the sandbox (pid {pid}): it did not stop within 30s"


def reset(env_file: Path) -> str:
    """Back to the seed, when the sandbox is a ``serve`` one (``make sandbox`` cannot be reset from outside)."""
    workdir = env_file.parent
    pid_file, done = workdir / "serve.pid", workdir / "reset.done"
    if not pid_file.is_file():
        return f"not reset: {env_file} is not a drill sandbox (restart `make sandbox` to get its seed back)"
    before = done.read_text().strip() if done.is_file() else "0"
    os.kill(int(pid_file.read_text()), signal.SIGHUP)
    deadline = time.monotonic() + RESET_TIMEOUT
    while time.monotonic() < deadline:
        if done.is_file() and done.read_text().strip() not in ("", before):
            return "the sandbox was reset to its seed"
        time.sleep(0.2)
    raise StepError(f"the sandbox did not reset within {RESET_TIMEOUT}s; see {workdir / 'serve.log'}")


# -- the drill ------------------------------------------------------------------------------------------------


def _sandbox(state: dict) -> RunningSandbox:
    if not state.get("env_file"):
        raise StepError("no sandbox recorded for this drill: run molecule create first")
    return RunningSandbox(Path(state["env_file"]))


def _playbook(box: RunningSandbox, playbook: str, extra_vars: dict, state: dict, log: Path, check=False):
    # Molecule's ANSIBLE_* (its own ansible.cfg, inventory, roles and collections paths) are not the scenario's:
    # it runs with the repository's ansible.cfg and inventory, as `make drill` runs it (the sandbox environment's
    # gate policy).
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "MOLECULE_"))},
        **box.env(),
        "FIREBREAK_TIMELINE": state["timeline"],
        "FIREBREAK_INCIDENT_ID": state["incident_id"],
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
    }
    binary = Path(sys.executable).parent / "ansible-playbook"
    cmd = [str(binary), playbook, "-e", json.dumps({**extra_vars, "incident_id": state["incident_id"]})]
    if check:
        cmd.append("--check")
    with open(log, "w", encoding="utf-8") as out:
        return subprocess.run(cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)


def prepare(scenario: str, state_dir: Path) -> str:
    state = _state(state_dir)
    if not state.get("env_file") and _alive(_env_file()):
        # molecule --shared-state: the default scenario's create started the sandbox (or attached to one) and this
        # drill's own create was skipped; attach to that sandbox without owning it.
        state.update(env_file=str(_env_file()), started=False)
    module = available()[scenario]
    said = reset(Path(state["env_file"])) if state.get("env_file") else ""
    box = _sandbox(state)
    context = module.inject(box)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    incident_id = f"DRILL-{scenario}-molecule-{stamp}"
    timeline = Path(os.environ.get("FIREBREAK_DRILL_INCIDENTS", REPO_ROOT / "incidents")) / incident_id
    state.update(incident_id=incident_id, timeline=str(timeline / "timeline.jsonl"), context=context, converges=0)
    _save(state_dir, state)
    timeline.mkdir(parents=True, exist_ok=True)
    fault = (context.get("_drill") or {}).get("fault")
    if fault:
        note = {"note": f"drill {scenario}: fault injected: {fault}", "kind": "observation"}
        log = Path(state["timeline"]).with_name("prepare.log")
        if _playbook(box, "playbooks/incident_note.yml", note, state, log).returncode != 0:
            raise StepError(f"could not record the injected fault in {state['timeline']}; see {log}")
    return f"{said}; fault injected: {fault}; incident {incident_id}".lstrip("; ")


def _records(timeline: Path) -> list[dict]:
    if not timeline.is_file():
        return []
    return [json.loads(line) for line in timeline.read_text(encoding="utf-8").splitlines() if line.strip()]


def changed_tasks(records: list[dict], after_seq: int) -> list[dict]:
    """The scenario run's changes (timeline records past ``after_seq``): ``task_changed`` records other than the
    record-keeping ones (RECORD_ONLY)."""
    return [
        rec
        for rec in records
        if (rec.get("seq") or 0) > after_seq
        and rec.get("event") == "task_changed"
        and rec.get("action") not in RECORD_ONLY
    ]


def rerun_refused(module, converges: int, output: str, changes: list[dict]) -> str:
    """The refusal a drill's runbook gives on a service that is no longer broken, when this run is one (not the
    first converge, which fixes) and it changed nothing: the drill module's ``RERUN_REFUSAL``, the words of its
    deliberate stop (bad_deploy: "shows no failed deploy"; k8s_service_down: "does not look down"). Such a runbook
    refuses to act without a fault, so Molecule's check and idempotence runs end in that refusal; any other failure,
    or a refusal after a change, is a failure. "" when this is not such a refusal."""
    refusal = getattr(module, "RERUN_REFUSAL", "")
    if not refusal or converges < 2 or changes:
        return ""
    return refusal if refusal in " ".join(output.split()) else ""


def converge(scenario: str, state_dir: Path, check: bool = False) -> tuple[int, str]:
    """Run the scenario playbook; return (tasks that changed something, the summary line). The count is read from
    the timeline's records of this run, not from the play recap (which counts the report's rewrite too); in check
    mode nothing changed, and what would have is in the line."""
    state = _state(state_dir)
    if "context" not in state:
        raise StepError("no fault injected for this drill: run molecule prepare first")
    module = available()[scenario]
    extra_vars = {key: value for key, value in state["context"].items() if not key.startswith("_")}
    if os.environ.get("FIREBREAK_DRILL_BREAK") in (scenario, "all") and not check:
        check = True  # the deliberately broken drill: the fix is planned, never applied
    state["converges"] = state.get("converges", 0) + 1
    _save(state_dir, state)
    log = Path(state["timeline"]).with_name(f"converge-{state['converges']}{'-check' if check else ''}.log")
    timeline = Path(state["timeline"])
    last_seq = max([rec.get("seq") or 0 for rec in _records(timeline)] or [0])
    run = _playbook(_sandbox(state), module.PLAYBOOK, extra_vars, state, log, check=check)
    mode = " (check mode)" if check else ""
    changes = changed_tasks(_records(timeline), last_seq)
    if run.returncode != 0:
        refused = rerun_refused(module, state["converges"], log.read_text(encoding="utf-8"), changes)
        if refused:
            return 0, (
                f"{module.PLAYBOOK}{mode}: refused on the recovered service, as it should ({refused}); "
                f"0 task(s) changed the sandbox; incident {state['incident_id']}; log {log}"
            )
        tail = "\n".join(log.read_text(encoding="utf-8").splitlines()[-40:])
        raise StepError(f"{module.PLAYBOOK}{mode} failed with exit status {run.returncode}; log {log}:\n{tail}")
    real = [rec for rec in changes if not rec.get("check_mode")]
    planned = [rec for rec in changes if rec.get("check_mode")]
    recap = sum(int(n) for n in RECAP.findall(log.read_text(encoding="utf-8")))

    def what(recs):
        return "; ".join(sorted({f"{rec.get('action')}: {rec.get('task')}" for rec in recs})) or "nothing"

    line = f"{module.PLAYBOOK}{mode}: {len(real)} task(s) changed the sandbox ({what(real)})"
    if check:
        line += f"; {len(planned)} would in a real run ({what(planned)})"
    line += (
        f"; {recap} changed in the play recap, the report's rewrite counted; incident {state['incident_id']}; log {log}"
    )
    return len(real), line


def verify(scenario: str, state_dir: Path) -> list[str]:
    state = _state(state_dir)
    if "context" not in state:
        raise StepError("no fault injected for this drill: run molecule prepare first")
    module = available()[scenario]
    box = _sandbox(state)
    try:
        checks = list(module.verify(box, state["context"]))
    except AssertionError as exc:
        raise StepError(f"recovery did not happen: {exc}") from exc
    timeline = Path(state["timeline"])
    log = timeline.with_name("report.log")
    reported = _playbook(box, "playbooks/incident_report.yml", {"incident_timeline": str(timeline)}, state, log)
    report = timeline.with_name("report.md")
    if reported.returncode != 0 or not report.is_file():
        raise StepError(f"incident_report.yml failed (exit status {reported.returncode}) for {timeline}; see {log}")
    if hasattr(module, "verify_record"):
        try:
            checks += module.verify_record(timeline, report)
        except AssertionError as exc:
            raise StepError(f"the incident record is incomplete: {exc}") from exc
    return [*checks, f"timeline {timeline}, report {report}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.drill_molecule", description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["serve", "create", "prepare", "converge", "verify", "destroy"])
    parser.add_argument("scenario", nargs="?")
    parser.add_argument("--state", help="the Molecule ephemeral directory of the scenario")
    parser.add_argument("--workdir", default=str(DEFAULT_WORKDIR))
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)

    if args.step == "serve":
        return serve(Path(args.workdir))
    if not args.state:
        parser.error("--state is required")
    state_dir = Path(args.state)
    needs_scenario = args.step in ("prepare", "converge", "verify")
    if needs_scenario and args.scenario not in available():
        print(f"unknown drill {args.scenario!r}; known: {', '.join(available())}", file=sys.stderr)
        return 2
    try:
        if args.step == "create":
            print(create(state_dir))
        elif args.step == "destroy":
            print(destroy(state_dir))
        elif args.step == "prepare":
            print(prepare(args.scenario, state_dir))
        elif args.step == "converge":
            changed, line = converge(args.scenario, state_dir, check=args.check)
            print(line)
            print(f"DRILL_TASKS_CHANGED={changed}")
        else:
            for line in verify(args.scenario, state_dir):
                print(f"ok  {line}")
    except (StepError, NoSandbox) as exc:
        print(f"drill {args.step} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
