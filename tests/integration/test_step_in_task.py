"""The framed ECS rollback run in its task's worker (plugins/plugin_utils/step_in_task.py) answers as the module
process does: the same rollback in the sandbox, the same result (the step contract, the capture, the symptom, the
invocation), and the same refusal on bad input; only where the worker may run it."""

from __future__ import annotations

import json
import re

import pytest

from sandbox.drills import service_down
from tests.integration.snapshot import differences, snapshot

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/step_in_task.yml"
WORKER = "run in this task's worker"
PROCESS = "in a module process (the task sets an environment)"
# what differs between two injections of the drill (times, generated ids) or between two runs (durations)
VOLATILE = {"invocation", "timeline_before", "elapsed", "events", "captured", "failed_tasks"}
GENERATED = re.compile(r"ecs-svc/\d+|/[0-9a-f]{16}\b|\b\d+ failed tasks|^\d{4}-\d\d-\d\dT[\d:.]+(\+00:00|Z)?$")


def _stable(value):
    """``value`` without what two injections of the drill make afresh (deployment and target group ids, times) or
    what grows while the drill's bad revision keeps failing (its failed task count)."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in sorted(value.items()) if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, str):
        return GENERATED.sub("<generated>", value)
    return value


def _rollback(aws, run_playbook, tmp_path, name, **extra):
    context = service_down.inject(aws)
    variables = {k: v for k, v in context.items() if not k.startswith("_")}
    out = tmp_path / f"{name}.json"
    variables.update(incident=f"INC-STEP-{name}", out=str(out), **extra)
    done = run_playbook(PLAYBOOK, variables, args=["-vvv"])
    assert done.returncode == 0, done.output[-3000:]
    return context, json.loads(out.read_text()), done.output


def test_the_rollback_in_the_worker_matches_the_module_process(aws, run_playbook, tmp_path):
    context, in_worker, said = _rollback(aws, run_playbook, tmp_path, "worker")
    assert WORKER in said and PROCESS not in said
    assert _running(aws, context) == context["_drill"]["good"]
    aws.reset_aws()
    _, in_process, said = _rollback(aws, run_playbook, tmp_path, "process", module_process=True)
    assert PROCESS in said and WORKER not in said

    assert not in_worker.get("failed") and not in_process.get("failed"), (in_worker.get("msg"), in_process.get("msg"))
    good = context["_drill"]["good"]
    assert in_worker["after"]["task_definition"] == in_process["after"]["task_definition"] == good
    assert in_worker["symptom"]["confirmed"] is in_process["symptom"]["confirmed"] is True
    assert sorted(in_worker) == sorted(in_process)
    assert _stable(in_worker) == _stable(in_process)
    assert in_worker["ansible_facts"]["framed"] is True  # the frame's facts
    assert _running(aws, context) == good


def _running(aws, context) -> str:
    drill = context["_drill"]
    service = aws.client("ecs").describe_services(cluster=drill["cluster"], services=[drill["service"]])["services"][0]
    return service["taskDefinition"].rsplit("/", 1)[-1]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"service_down_cluster": "shop/../etc"}, "shop/../etc"),
        ({"service_down_rollback_from": "shop-api:notanumber"}, "shop-api:notanumber"),
    ],
    ids=["cluster", "revision"],
)
def test_bad_input_is_refused_alike_and_nothing_changes(aws, run_playbook, tmp_path, extra, named):
    results = []
    for name, process in (("bad-worker", False), ("bad-process", True)):
        aws.reset_aws()
        context = service_down.inject(aws)
        before = snapshot(aws)
        variables = {k: v for k, v in context.items() if not k.startswith("_")}
        out = tmp_path / f"{name}.json"
        done = run_playbook(
            PLAYBOOK, {**variables, **extra, "incident": "INC-STEP-BAD", "out": str(out), "module_process": process}
        )
        assert done.returncode == 0, done.output[-3000:]
        result = json.loads(out.read_text())
        assert result["failed"] is True and named in result["msg"] and "Traceback" not in result["msg"]
        assert not differences(before, snapshot(aws))
        results.append(result["msg"])
    assert results[0] == results[1]
