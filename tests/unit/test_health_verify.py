"""health_verify's verdicts (pure functions), input checks and the metric reader, without AWS."""

from __future__ import annotations

import datetime
import sys

import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import health
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import Caller

T0 = datetime.datetime(2026, 11, 24, 9, 30, tzinfo=datetime.UTC)


def at(minutes):
    return T0 + datetime.timedelta(minutes=minutes)


def target(state):
    return {"Target": {"Id": "10.0.1.1"}, "TargetHealth": {"State": state}}


def test_target_health():
    assert health.verdict_target_health([target("healthy"), target("draining")])[0] == "pass"
    verdict, values, message = health.verdict_target_health([target("healthy"), target("unhealthy")])
    assert (verdict, values["healthy"]) == ("fail", 1) and "{'unhealthy': 1}" in message
    verdict, values, message = health.verdict_target_health([], min_healthy=1)
    assert verdict == "fail" and message.startswith("healthy targets 0 < min_healthy 1")


def probe(status=200, ms=10.0, body="ok"):
    return {"status": status, "latency_ms": ms, "body": body, "error": None}


def test_http_status_body_and_p95():
    probes = [probe(ms=ms) for ms in (10, 20, 30, 40, 500)]
    assert health.verdict_http(probes, [200], "^ok$", 600)[0] == "pass"
    verdict, values, message = health.verdict_http(probes, [200], None, 100)
    assert verdict == "fail" and values["p95_ms"] == 500 and "p95 latency 500.0 ms > max_p95_ms 100" in message
    verdict, _values, message = health.verdict_http([probe(), probe(503)], [200])
    assert verdict == "fail" and "1/2 probes failed: status 503" in message
    verdict, values, message = health.verdict_http([probe(body="degraded")], [200], "ok$")
    assert verdict == "fail" and values["body_matched"] == 0 and "did not match" in message
    verdict, _values, message = health.verdict_http([{"status": None, "error": "refused"}], [200])
    assert verdict == "fail" and "no answer (refused)" in message


def test_percentile_nearest_rank():
    assert health.percentile(list(range(1, 101)), 95) == 95
    assert health.percentile([3.0], 95) == 3.0
    assert health.percentile([], 95) is None


def test_alarm():
    ok = [{"AlarmName": "a", "StateValue": "OK"}, {"AlarmName": "b", "StateValue": "OK"}]
    assert health.verdict_alarm(["a", "b"], ok)[0] == "pass"
    verdict, values, message = health.verdict_alarm(["a", "b"], [ok[0], {"AlarmName": "b", "StateValue": "ALARM"}])
    assert verdict == "fail" and values["states"]["b"] == "ALARM" and message == "alarm 'b' is ALARM, not OK"
    assert health.verdict_alarm(["a", "c"], ok)[2] == "alarm 'c' does not exist"


def test_metric_latest_datapoint_decides():
    points = [(at(2), 0.2), (at(0), 3.0), (at(1), 1.0)]
    verdict, values, _message = health.verdict_metric(points, "p95", 0.5)
    assert verdict == "pass" and values["latest"] == 0.2 and values["recent"] == [3.0, 1.0, 0.2]
    verdict, _values, message = health.verdict_metric([(at(0), 0.2), (at(1), 0.9)], "p95", 0.5)
    assert verdict == "fail" and message == "p95 0.9 > threshold 0.5"
    assert health.verdict_metric([], "Sum", 0, "pass")[0] == "pass"
    assert health.verdict_metric([], "Sum", 0)[0] == "fail"
    assert "no p95 value" in health.verdict_metric([(at(0), None)], "p95", 1)[2]


def test_ecs_steady_state():
    service = {
        "status": "ACTIVE",
        "desiredCount": 2,
        "runningCount": 2,
        "deployments": [{"status": "PRIMARY", "rolloutState": "COMPLETED"}],
    }
    assert health.verdict_ecs(service)[0] == "pass"
    assert health.verdict_ecs({**service, "deployments": [{"status": "PRIMARY"}]})[0] == "pass"
    assert health.verdict_ecs({**service, "runningCount": 1})[2] == "running 1 != desired 2"
    two = [{"status": "PRIMARY"}, {"status": "ACTIVE"}]
    assert "2 deployments" in health.verdict_ecs({**service, "deployments": two})[2]
    failed = {**service, "deployments": [{"status": "PRIMARY", "rolloutState": "FAILED"}]}
    assert health.verdict_ecs(failed)[2] == "PRIMARY deployment rolloutState FAILED, not COMPLETED"


def test_rds():
    assert health.verdict_rds("cluster c", "available", [])[0] == "pass"
    assert health.verdict_rds("cluster c", "failing-over", [])[2] == "cluster c status failing-over, not available"
    verdict, _values, message = health.verdict_rds("instance i", "available", [{"Message": "Multi-AZ failover"}])
    assert verdict == "fail" and "Multi-AZ failover" in message


def test_sqs_age():
    assert health.verdict_sqs([(at(0), 900), (at(1), 30)], max_age=60)[0] == "pass"
    assert health.verdict_sqs([(at(0), 30), (at(1), 900)], max_age=60)[2] == "oldest message age 900 s > max_age 60 s"
    assert health.verdict_sqs([(at(0), 900), (at(1), 600)])[0] == "pass"  # falling
    assert health.verdict_sqs([(at(0), 600), (at(1), 900)])[0] == "fail"
    assert health.verdict_sqs([], visible=0)[0] == "pass"
    assert health.verdict_sqs([], visible=4)[0] == "fail"


def test_stepfunctions_failures_since():
    executions = [
        {"name": "new-ok", "status": "SUCCEEDED", "startDate": at(10), "stopDate": at(11)},
        {"name": "old-bad", "status": "FAILED", "startDate": at(-10), "stopDate": at(-9)},
    ]
    verdict, values, _message = health.verdict_stepfunctions(executions, "2026-11-24T09:30:00Z")
    assert verdict == "pass" and values["counts"] == {"SUCCEEDED": 1}
    executions.append({"name": "late", "status": "TIMED_OUT", "startDate": at(-5), "stopDate": at(2)})
    verdict, values, message = health.verdict_stepfunctions(executions, T0)
    assert verdict == "fail" and values["failed"] == ["late"] and "late TIMED_OUT" in message


def test_batch():
    assert health.verdict_batch(0)[0] == "pass"
    assert health.verdict_batch(3, 2)[2] == "3 RUNNABLE job(s) > max_runnable 2"


@pytest.mark.parametrize(
    ("checks", "message"),
    [
        ([], "checks is empty"),
        ([{"kind": "http"}], "checks[0] (http): kind 'http' needs 'url'"),
        ([{"kind": "http", "url": "file:///etc/passwd"}], "url 'file:///etc/passwd' is not an http"),
        ([{"kind": "alarm", "alarm_names": ["a"], "url": "http://x"}], "option 'url' does not apply to kind 'alarm'"),
        ([{"kind": "rds", "db_cluster": "a", "db_instance": "b"}], "exactly one of db_cluster and db_instance"),
        ([{"kind": "stepfunctions", "state_machine_arn": "a", "since": "yesterday"}], "unparseable time 'yesterday'"),
        (
            [{"kind": "metric", "namespace": "n", "metric_name": "m", "threshold": 1, "statistic": "p999x"}],
            "statistic 'p999x' is not one of",
        ),
        ([{"kind": "http", "url": "http://x", "probes": 0}], "probes=0 is out of range"),
    ],
)
def test_bad_input_is_refused_naming_the_value(checks, message):
    with pytest.raises(health.CheckInputError, match=None) as info:
        health.normalize(checks)
    assert message in str(info.value)


def test_defaults_are_applied():
    (check,) = health.normalize([{"kind": "metric", "namespace": "n", "metric_name": "m", "threshold": 1}])
    assert (check["statistic"], check["window"], check["period"], check["missing_data"]) == ("p95", 300, 60, "fail")


class FakeCloudWatch:
    def __init__(self, datapoints):
        self.datapoints = datapoints
        self.asked = []

    def get_metric_statistics(self, **params):
        self.asked.append(params)
        return {"Datapoints": self.datapoints}


def test_metric_reader_asks_for_the_extended_statistic_and_reads_it():
    cloudwatch = FakeCloudWatch(
        [
            {"Timestamp": at(0), "ExtendedStatistics": {"p95": 2.5}},
            {"Timestamp": at(1), "ExtendedStatistics": {"p95": 0.3}},
        ]
    )
    (check,) = health.normalize(
        [
            {
                "kind": "metric",
                "namespace": "AWS/ApplicationELB",
                "metric_name": "TargetResponseTime",
                "dimensions": {"LoadBalancer": "app/a/1"},
                "threshold": 0.5,
            }
        ]
    )
    result = health.run_check(check, lambda _service: cloudwatch, Caller(0), now=at(2))
    assert result["verdict"] == "pass" and result["values"]["latest"] == 0.3
    assert result["target"] == "AWS/ApplicationELB/TargetResponseTime[LoadBalancer=app/a/1]"
    (asked,) = cloudwatch.asked
    assert asked["ExtendedStatistics"] == ["p95"] and "Statistics" not in asked
    assert asked["StartTime"] == at(2) - datetime.timedelta(seconds=300)
    assert asked["Dimensions"] == [{"Name": "LoadBalancer", "Value": "app/a/1"}]


def test_summary_names_each_failing_check_and_its_value():
    results = [
        {"kind": "alarm", "target": "a", "verdict": "fail", "message": "alarm 'a' is ALARM, not OK"},
        {"kind": "ecs", "target": "shop/api", "verdict": "pass", "message": "steady"},
    ]
    assert health.summary(results) == (False, "1/2 check(s) failed: alarm a: alarm 'a' is ALARM, not OK")
    assert health.summary(results[1:]) == (True, "all 1 check(s) passed")


class FakeStepFunctions:
    """Newest first by start; an execution started before ``since`` failed after it, deep in the listing."""

    def __init__(self):
        self.old = [
            {"executionArn": f"arn:old-{n}", "name": f"old-{n}", "status": "SUCCEEDED", "startDate": at(-100 - n)}
            for n in range(3)
        ]
        self.old[2].update(status="FAILED", stopDate=at(5))  # started long ago, failed after `since`
        self.asked = []

    def list_executions(self, stateMachineArn, statusFilter=None, nextToken=None):
        self.asked.append((statusFilter, nextToken))
        items = [e for e in self.old if statusFilter in (None, e["status"])]
        start = int(nextToken or 0)
        page = {"executions": items[start : start + 1]}
        if start + 1 < len(items):
            page["nextToken"] = str(start + 1)
        return page


def test_stepfunctions_finds_a_failure_of_an_execution_started_before_since():
    sfn = FakeStepFunctions()
    (check,) = health.normalize([{"kind": "stepfunctions", "state_machine_arn": "arn:sm", "since": T0.isoformat()}])
    result = health.run_check(check, lambda _service: sfn, Caller(0))
    assert result["verdict"] == "fail" and result["values"]["failed"] == ["old-2"], result
    assert sfn.asked[0] == (None, None) and (None, "1") not in sfn.asked  # the unfiltered listing stopped at once


def test_k8s_rollout_check_verdicts():
    from ansible_collections.firebreak.runbooks.plugins.modules.k8s_health_verify import rollout_check

    done = {
        "metadata": {"generation": 3},
        "spec": {"replicas": 2},
        "status": {
            "observedGeneration": 3,
            "replicas": 2,
            "updatedReplicas": 2,
            "availableReplicas": 2,
            "readyReplicas": 2,
        },
    }
    assert rollout_check("Deployment", "shop", "api", done)["verdict"] == "pass"
    stale = {**done, "status": {**done["status"], "observedGeneration": 2}}
    result = rollout_check("Deployment", "shop", "api", stale)
    assert result["verdict"] == "fail" and "generation 3" in result["message"]
    result = rollout_check("Deployment", "shop", "api", {**done, "status": {**done["status"], "availableReplicas": 1}})
    assert result["verdict"] == "fail" and result["values"]["available"] == 1
    assert rollout_check("Deployment", "shop", "gone", None)["message"] == "not found"


def test_the_report_takes_the_first_passing_verification_after_a_mitigation_as_recovery():
    from ansible_collections.firebreak.runbooks.plugins.module_utils.record import report

    def rec(seq, event, **details):
        return {"seq": seq, "event": event, "changed": event == "task_changed", "details": details}

    records = [
        rec(1, "task_ok", step_kind="verification", passed=True),  # before any mitigation: not recovery
        rec(2, "task_changed", step_kind="mitigation"),
        rec(3, "task_ok", step_kind="verification", passed=False),  # the role's call, fail_on_unhealthy false
        rec(4, "task_failed", step_kind="verification", passed=False),
        rec(5, "task_ok", step_kind="verification", passed=True),
    ]
    times = report.step_times(records)
    assert times["mitigation"]["seq"] == 2 and times["recovery"]["seq"] == 5
