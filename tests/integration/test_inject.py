"""`make inject SCENARIO=<name>` (sandbox/inject.py) against a sandbox started as `make sandbox` starts it.

The sandbox runs in its own process (``python -m sandbox --workdir ...``), as a person's would; inject finds it
through the env.sh that process wrote, breaks what the drill breaks, and prints the drill's extra vars as one JSON
object on its last line. The tests read the sandbox afterwards: the fault is there.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import boto3
import pytest

from sandbox import CREDENTIALS, REGION, REPO_ROOT
from sandbox.drills import queue_workers_down, service_down
from sandbox.inject import read_env_file

START_TIMEOUT = 180


def _inject(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "sandbox.inject", *args]
    return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def foreground_sandbox(tmp_path_factory):
    """``python -m sandbox`` in a subprocess (what `make sandbox` runs); yields its env.sh; stopped with SIGINT."""
    workdir = tmp_path_factory.mktemp("foreground")
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--workdir", str(workdir)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    running = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("sandbox running"):
                running.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not running.wait(0.5):
            assert proc.poll() is None, "".join(lines)[-3000:]
            assert time.monotonic() < deadline, "the sandbox did not start:\n" + "".join(lines)[-3000:]
        yield workdir / "env.sh"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)


def _client(env_file, service):
    url = read_env_file(env_file)["FIREBREAK_AWS_ENDPOINT_URL"]
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def _last_line_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_inject_breaks_the_running_sandbox_and_prints_the_drills_vars(foreground_sandbox):
    ecs = _client(foreground_sandbox, "ecs")
    manifest = json.loads((foreground_sandbox.parent / "manifest.json").read_text())["aws"]["ecs"]
    cluster, service = manifest["cluster"], manifest["service"]
    before = ecs.describe_services(cluster=cluster, services=[service])["services"][0]["taskDefinition"]
    assert before.endswith(f"{manifest['family']}:{manifest['current']}")

    done = _inject("service_down", "--env-file", str(foreground_sandbox))
    assert done.returncode == 0, done.stdout + done.stderr
    extra_vars = _last_line_json(done.stdout)
    assert set(extra_vars) == {"service_down_cluster", "service_down_service", "service_down_rollback_from"}
    assert extra_vars["service_down_cluster"] == cluster and extra_vars["service_down_service"] == service
    # the fault is in the sandbox the other process runs: the service is on the bad revision it names
    running = ecs.describe_services(cluster=cluster, services=[service])["services"][0]["taskDefinition"]
    assert running.endswith(extra_vars["service_down_rollback_from"]) and running != before
    image = ecs.describe_task_definition(taskDefinition=running)["taskDefinition"]["containerDefinitions"][0]["image"]
    assert image == service_down.BAD_IMAGE
    assert "--check" in done.stdout and service_down.PLAYBOOK in done.stdout


def test_inject_adds_the_drills_fault_rules_through_the_proxy_control_api(foreground_sandbox):
    done = _inject("queue_workers_down", "--env-file", str(foreground_sandbox))
    assert done.returncode == 0, done.stdout + done.stderr
    extra_vars = _last_line_json(done.stdout)
    assert extra_vars["queue_workers_down_queue"] == queue_workers_down.seed_queues.JOBS
    assert not [key for key in extra_vars if key.startswith("_")]
    url = read_env_file(foreground_sandbox)["FIREBREAK_AWS_ENDPOINT_URL"]
    with urllib.request.urlopen(f"{url}/_fault/rules", timeout=10) as answer:
        rules = json.loads(answer.read())
    actions = {rule.get("action") for rule in rules}
    assert {"DescribeInstanceStatus", "GetMetricStatistics"} <= actions, rules
    # the canned CloudWatch answer's timestamps crossed the control API as timestamps, not as strings
    cloudwatch = _client(foreground_sandbox, "cloudwatch")
    now = datetime.datetime.now(datetime.UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": extra_vars["queue_workers_down_queue"]}],
        StartTime=now - datetime.timedelta(hours=1),
        EndTime=now,
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert points and all(isinstance(p["Timestamp"], datetime.datetime) for p in points), points
    assert max(p["Maximum"] for p in points) == queue_workers_down.AGES[-1]
    sqs = _client(foreground_sandbox, "sqs")
    queue = sqs.get_queue_url(QueueName=extra_vars["queue_workers_down_queue"])["QueueUrl"]
    visible = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
    assert int(visible["Attributes"]["ApproximateNumberOfMessages"]) == queue_workers_down.JOBS


def test_unknown_scenario_lists_the_known_ones():
    done = _inject("no_such_drill")
    assert done.returncode == 2
    assert "unknown scenario 'no_such_drill'" in done.stderr and "service_down" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_running_sandbox_is_a_clear_error(tmp_path):
    done = _inject("service_down", "--env-file", str(tmp_path / "env.sh"))
    assert done.returncode == 1 and "start `make sandbox` first" in done.stderr, done.stderr
    (tmp_path / "env.sh").write_text("export FIREBREAK_AWS_ENDPOINT_URL=http://127.0.0.1:9\n")
    done = _inject("service_down", "--env-file", str(tmp_path / "env.sh"))
    assert done.returncode == 1 and "is `make sandbox` still running?" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
