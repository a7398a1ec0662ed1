"""health_verify against the sandbox: each check kind passes on a healthy resource and fails, naming the check
and its value, on a broken one.  Every broken state is made in moto (or served locally), not only asserted."""

from __future__ import annotations

import datetime
import http.server
import json
import threading
import time

import pytest

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/health/verify.yml"
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}


def verify(run_playbook, checks, check=False, **extra):
    run = run_playbook(
        PLAYBOOK, extra_vars={"health_checks": checks, **extra}, check=check, env=JSON_OUTPUT, timeout=120
    )
    data = json.loads(run.stdout[run.stdout.index("{") :])
    result = data["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return run, result


def passes(run_playbook, checks, **kwargs):
    run, result = verify(run_playbook, checks, **kwargs)
    assert run.returncode == 0, (result.get("msg"), result.get("checks"))
    assert result["passed"] is True, result
    assert result["step_kind"] == "verification" and result["changed"] is False
    assert [c["verdict"] for c in result["checks"]] == ["pass"] * len(checks), result["checks"]
    return result


def fails(run_playbook, checks, *fragments, **kwargs):
    run, result = verify(run_playbook, checks, **kwargs)
    assert run.returncode != 0, (result.get("msg"), result.get("checks"))
    assert result["passed"] is False and result.get("failed") is True
    for fragment in fragments:
        assert fragment in result["msg"], result["msg"]
    return result


def test_target_health(aws, run_playbook):
    arn = aws.manifest["aws"]["ecs"]["target_group_arn"]
    check = [{"kind": "target_health", "target_group_arn": arn}]
    result = passes(run_playbook, check)
    assert result["checks"][0]["values"]["healthy"] == 2
    elbv2 = aws.client("elbv2")
    targets = [t["Target"] for t in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]]
    elbv2.deregister_targets(TargetGroupArn=arn, Targets=targets)
    result = fails(run_playbook, check, f"target_health {arn}", "healthy targets 0 < min_healthy 1")
    assert result["checks"][0]["values"]["healthy"] == 0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(0.3)
        status = 503 if self.path.startswith("/down") else 200
        body = b'{"status": "ok"}' if status == 200 else b"upstream unavailable"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http(aws, run_playbook, endpoint):
    healthy = {"kind": "http", "url": f"{endpoint}/health", "body_regex": '"status": "ok"', "max_p95_ms": 250}
    result = passes(run_playbook, [healthy])
    assert result["checks"][0]["values"]["statuses"] == [200] * 5
    fails(run_playbook, [dict(healthy, url=f"{endpoint}/down")], f"http {endpoint}/down", "status 503")
    slow = dict(healthy, url=f"{endpoint}/slow", probes=3)
    result = fails(run_playbook, [slow], f"http {endpoint}/slow", "> max_p95_ms 250")
    assert result["checks"][0]["values"]["p95_ms"] >= 300


def test_alarm(aws, run_playbook):
    names = aws.manifest["aws"]["cloudwatch"]["alarms"]
    passes(run_playbook, [{"kind": "alarm", "alarm_names": names}])
    aws.client("cloudwatch").set_alarm_state(AlarmName="firebreak-alb-5xx", StateValue="ALARM", StateReason="test")
    result = fails(
        run_playbook, [{"kind": "alarm", "alarm_names": names}], "alarm 'firebreak-alb-5xx' is ALARM, not OK"
    )
    assert result["checks"][0]["values"]["states"]["firebreak-alb-5xx"] == "ALARM"


def test_metric_5xx_count(aws, run_playbook):
    dims = {"LoadBalancer": "app/firebreak-alb/1"}
    check = {
        "kind": "metric",
        "namespace": "AWS/ApplicationELB",
        "metric_name": "HTTPCode_Target_5XX_Count",
        "dimensions": dims,
        "statistic": "Sum",
        "threshold": 5,
        "missing_data": "pass",
    }
    passes(run_playbook, [check])  # no datapoints: no 5xx published
    now = datetime.datetime.now(datetime.UTC)
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {
                "MetricName": "HTTPCode_Target_5XX_Count",
                "Dimensions": [{"Name": "LoadBalancer", "Value": "app/firebreak-alb/1"}],
                "Value": 42.0,
                "Timestamp": now,
            }
        ],
    )
    result = fails(run_playbook, [check], "HTTPCode_Target_5XX_Count", "Sum 42.0 > threshold 5.0")
    assert result["checks"][0]["values"]["latest"] == 42.0


def test_ecs(aws, run_playbook):
    check = [{"kind": "ecs", "cluster": "shop", "service": "shop-api"}]
    result = passes(run_playbook, check)
    assert result["checks"][0]["values"]["running"] == 2
    # moto runs MOTO_ECS_SERVICE_RUNNING=2 tasks of a new service (update_service sets running = desired)
    ecs = aws.client("ecs")
    service = ecs.describe_services(cluster="shop", services=["shop-api"])["services"][0]
    extra = {key: service[key] for key in ("launchType", "networkConfiguration") if service.get(key)}
    ecs.create_service(
        cluster="shop", serviceName="shop-api-b", taskDefinition=service["taskDefinition"], desiredCount=5, **extra
    )
    broken = [{"kind": "ecs", "cluster": "shop", "service": "shop-api-b"}]
    result = fails(run_playbook, broken, "ecs shop/shop-api-b", "running 2 != desired 5")
    assert result["checks"][0]["values"]["rollout_state"] == "IN_PROGRESS"


def test_rds(aws, run_playbook):
    since = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)).isoformat()
    cluster = {"kind": "rds", "db_cluster": "orders-db", "since": since}
    instance = {"kind": "rds", "db_instance": "reports-db", "since": since}
    passes(run_playbook, [cluster, instance])
    aws.client("rds").stop_db_instance(DBInstanceIdentifier="reports-db")
    result = fails(run_playbook, [cluster, instance], "1/2 check(s) failed", "instance reports-db status stopped")
    assert [c["verdict"] for c in result["checks"]] == ["pass", "fail"]


def test_sqs(aws, run_playbook):
    aws.client("sqs").create_queue(QueueName="results-jobs")
    check = [{"kind": "sqs", "queue_name": "results-jobs", "max_age": 300}]
    passes(run_playbook, check)
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": "results-jobs"}],
                "Value": 1800.0,
                "Timestamp": datetime.datetime.now(datetime.UTC),
            }
        ],
    )
    fails(run_playbook, check, "sqs results-jobs", "oldest message age 1800.0 s > max_age 300 s")


def test_stepfunctions(aws, run_playbook):
    arn = aws.manifest["aws"]["stepfunctions"]["state_machine_arn"]
    since = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)).isoformat()
    check = [{"kind": "stepfunctions", "state_machine_arn": arn, "since": since}]
    sfn = aws.client("stepfunctions")
    sfn.start_execution(stateMachineArn=arn, name="after-fix")
    passes(run_playbook, check)
    execution = sfn.start_execution(stateMachineArn=arn, name="broken-run")["executionArn"]
    sfn.stop_execution(executionArn=execution)
    result = fails(run_playbook, check, "broken-run ABORTED")
    assert result["checks"][0]["values"]["failed"] == ["broken-run"]


def test_batch(aws, run_playbook):
    queue = aws.manifest["aws"]["batch"]["job_queue_name"]
    passes(run_playbook, [{"kind": "batch", "job_queue": queue}])


def test_check_mode_runs_one_round_of_reads(aws, run_playbook):
    aws.client("cloudwatch").set_alarm_state(AlarmName="firebreak-alb-5xx", StateValue="ALARM", StateReason="test")
    started = time.monotonic()
    check = [{"kind": "alarm", "alarm_names": ["firebreak-alb-5xx"]}]
    result = fails(run_playbook, check, "is ALARM", check=True, health_wait_timeout=60)
    assert result["rounds"] == 1 and time.monotonic() - started < 30


def test_polls_until_the_check_passes(aws, run_playbook):
    """The alarm clears only after the module has seen it in ALARM (its first DescribeAlarms)."""
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.set_alarm_state(AlarmName="firebreak-alb-5xx", StateValue="ALARM", StateReason="test")
    aws.proxy.clear_log()
    stop = threading.Event()

    def clear_after_first_round():
        while not stop.wait(0.2):
            if any(entry.get("action") == "DescribeAlarms" for entry in aws.proxy.log()):
                cloudwatch.set_alarm_state(AlarmName="firebreak-alb-5xx", StateValue="OK", StateReason="fixed")
                return

    thread = threading.Thread(target=clear_after_first_round, daemon=True)
    thread.start()
    try:
        check = [{"kind": "alarm", "alarm_names": ["firebreak-alb-5xx"]}]
        result = passes(run_playbook, check, health_wait_timeout=60, health_interval=2)
    finally:
        stop.set()
        thread.join()
    assert result["rounds"] > 1 and result["passed_at"]


def test_bad_input_is_refused_naming_the_value(aws, run_playbook):
    run, result = verify(run_playbook, [{"kind": "http", "url": "ftp://example"}])
    assert run.returncode != 0
    assert result["msg"] == "checks[0] (http): url 'ftp://example' is not an http:// or https:// URL"


def test_batch_runnable_jobs_fail_the_check(aws, run_playbook):
    """moto fails every submitted job at once (no Docker): the fault proxy answers ListJobs with a backlog."""
    queue = aws.manifest["aws"]["batch"]["job_queue_name"]
    jobs = [{"jobId": f"job-{n}", "jobName": f"results-{n}", "status": "RUNNABLE", "createdAt": 1} for n in range(3)]
    aws.proxy.add_rule(
        {"fault": "canned", "service": "batch", "path": "^/v1/listjobs", "body": {"jobSummaryList": jobs}}
    )
    result = fails(
        run_playbook, [{"kind": "batch", "job_queue": queue, "max_runnable": 1}], "3 RUNNABLE job(s) > max_runnable 1"
    )
    assert result["checks"][0]["values"]["runnable"] == 3


def test_metric_p95_from_cloudwatch_extended_statistics(aws, run_playbook):
    """moto has no extended statistics: the fault proxy answers GetMetricStatistics as AWS documents it."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    points = [
        {
            "Timestamp": (now - datetime.timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ExtendedStatistics": {"p95": 0.2},
            "Unit": "Seconds",
        },
        {
            "Timestamp": (now - datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ExtendedStatistics": {"p95": 2.5},
            "Unit": "Seconds",
        },
    ]
    aws.proxy.add_rule(
        {
            "fault": "canned",
            "service": "monitoring",
            "action": "GetMetricStatistics",
            "body": {"Label": "TargetResponseTime", "Datapoints": points},
        }
    )
    check = {
        "kind": "metric",
        "namespace": "AWS/ApplicationELB",
        "metric_name": "TargetResponseTime",
        "dimensions": {"LoadBalancer": "app/firebreak-alb/1"},
        "threshold": 0.5,
    }
    result = fails(run_playbook, [check], "p95 2.5 > threshold 0.5")
    assert result["checks"][0]["values"]["recent"] == [0.2, 2.5]
