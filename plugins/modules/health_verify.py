#!/usr/bin/python
# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: health_verify
short_description: Verify recovery in one call, polling until every health check passes or a timeout
version_added: 0.1.0
author: firebreak.runbooks maintainers (@firebreak)
description:
  - Performs the step "verify health" of every incident scenario in one call. It runs every check in O(checks),
    and repeats the round every O(interval) seconds until all of them pass or O(wait_timeout) has passed.
  - Each check's verdict (C(pass) or C(fail)), the values it was decided on and a message are in the result.
    When a round fails the message names every failing check and the value that failed it.
  - The first passing verification after a mitigation is the incident's recovery time.
  - Reads only. In check mode the checks run once (one round, no waiting), since reading changes nothing.
  - Check kinds. C(target_health) load balancer target group health. C(http) GET probes of an endpoint (status,
    body match, p95 latency). C(alarm) CloudWatch alarms in state OK. C(metric) a CloudWatch metric's latest
    datapoint of a statistic (a percentile such as C(p95), or C(Sum) for a 5xx count) at most a threshold.
    C(ecs) an ECS service in steady state. C(rds) an RDS cluster or instance available with no failure events
    since a time. C(sqs) the age of the oldest message of an SQS queue. C(stepfunctions) no failed executions
    since a time. C(batch) a job queue's RUNNABLE jobs drained.
options:
  checks:
    description:
      - The checks. Each takes C(kind) and the options of its kind; an option of another kind is refused.
    type: list
    elements: dict
    required: true
    suboptions:
      kind:
        description: The check kind.
        type: str
        required: true
        choices: [target_health, http, alarm, metric, ecs, rds, sqs, stepfunctions, batch]
      name:
        description: A name for the check in the result and messages (default what it looks at).
        type: str
      target_group_arn:
        description: C(target_health) the target group ARN.
        type: str
      min_healthy:
        description:
          - C(target_health) the fewest targets in state C(healthy) (default 1). Any target C(unhealthy) or
            C(unavailable) fails the check; C(initial) and C(draining) targets do not.
        type: int
      url:
        description: C(http) the URL to GET.
        type: str
      expect_status:
        description: C(http) the statuses every probe must answer with (default C([200])).
        type: list
        elements: int
      body_regex:
        description: C(http) a regular expression every probe's body (its first 64 KiB) must match.
        type: str
      probes:
        description: C(http) how many probes to make per round (default 5).
        type: int
      max_p95_ms:
        description: C(http) the highest acceptable 95th percentile latency of the probes, in milliseconds.
        type: float
      timeout:
        description: C(http) seconds to wait for each probe's answer (default 5).
        type: float
      validate_certs:
        description: C(http) validate the server certificate of an https URL (default true).
        type: bool
      alarm_names:
        description: C(alarm) the alarms that must be in state OK.
        type: list
        elements: str
      namespace:
        description: C(metric) the CloudWatch namespace, for example C(AWS/ApplicationELB).
        type: str
      metric_name:
        description: C(metric) the metric name, for example C(TargetResponseTime) or C(HTTPCode_Target_5XX_Count).
        type: str
      dimensions:
        description: C(metric) the metric's dimensions, name to value.
        type: dict
      statistic:
        description:
          - C(metric) C(Average), C(Sum), C(Minimum), C(Maximum), C(SampleCount) or a percentile such as C(p95)
            (the default).
        type: str
      threshold:
        description: C(metric) the highest acceptable value of the statistic in the latest datapoint.
        type: float
      window:
        description: C(metric) and C(sqs) how many seconds back to read datapoints (default 300).
        type: int
      period:
        description: C(metric) and C(sqs) the datapoint period in seconds (default 60).
        type: int
      missing_data:
        description:
          - C(metric) the verdict when the window has no datapoints (default C(fail)). CloudWatch publishes no
            datapoint for a count that stayed at zero, so use C(pass) for an ALB 5xx count.
        type: str
        choices: [pass, fail]
      cluster:
        description: C(ecs) the ECS cluster.
        type: str
      service:
        description: C(ecs) the ECS service. Steady means running equals desired, one deployment, and its
          rollout state (when reported) C(COMPLETED).
        type: str
      db_cluster:
        description: C(rds) the DB cluster identifier (give this or O(checks[].db_instance)).
        type: str
      db_instance:
        description: C(rds) the DB instance identifier.
        type: str
      since:
        description:
          - C(rds) failure events at or after this time fail the check. C(stepfunctions) executions started or
            stopped at or after this time count. ISO 8601 or epoch seconds.
        type: str
      queue_name:
        description:
          - C(sqs) the queue name. Its CloudWatch metric C(ApproximateAgeOfOldestMessage) (Maximum) is read; without
            datapoints the queue passes only when it has no visible messages.
        type: str
      max_age:
        description:
          - C(sqs) the highest acceptable age of the oldest message, in seconds. Without it the check passes when the
            age is zero or lower than in the previous datapoint (falling).
        type: int
      state_machine_arn:
        description: C(stepfunctions) the state machine ARN. Any execution FAILED, TIMED_OUT or ABORTED fails the check.
        type: str
      job_queue:
        description: C(batch) the job queue name or ARN.
        type: str
      max_runnable:
        description: C(batch) the most RUNNABLE jobs left in the queue (default 0).
        type: int
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - firebreak.runbooks.step
  - firebreak.runbooks.step.VERIFY
  - firebreak.runbooks.step.ATTRIBUTES_NO_DIFF
seealso:
  - module: firebreak.runbooks.ecs_service_status_info
"""

EXAMPLES = r"""
- name: Verify the API recovered
  firebreak.runbooks.health_verify:
    wait_timeout: 600
    interval: 15
    checks:
      - kind: target_health
        target_group_arn: "{{ api_target_group_arn }}"
      - kind: http
        url: https://api.example.com/health
        body_regex: '"status": *"ok"'
        max_p95_ms: 800
      - kind: alarm
        alarm_names: [api-5xx, api-latency]
      - kind: metric
        namespace: AWS/ApplicationELB
        metric_name: TargetResponseTime
        dimensions: {LoadBalancer: app/api/0123456789abcdef}
        statistic: p95
        threshold: 0.5
      - kind: ecs
        cluster: shop
        service: shop-api
  register: health
"""

RETURN = r"""
passed:
  description: Whether every check passed in the last round.
  returned: always
  type: bool
  sample: true
checks:
  description: The last round's result of each check, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: The check kind.
      returned: always
      type: str
      sample: target_health
    target:
      description: What the check looked at (its O(checks[].name) when given).
      returned: always
      type: str
      sample: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-api-tg/0123456789abcdef
    verdict:
      description: C(pass) or C(fail).
      returned: always
      type: str
      sample: pass
    values:
      description: The values the verdict was decided on (per kind, for example C(healthy) and C(states)).
      returned: always
      type: dict
      sample: {"healthy": 2, "total": 2, "states": {"healthy": 2}}
    message:
      description: The verdict in words, naming the value that failed.
      returned: always
      type: str
      sample: 2/2 targets healthy
rounds:
  description: How many rounds of checks ran.
  returned: always
  type: int
  sample: 1
elapsed:
  description: Seconds spent, all rounds included.
  returned: always
  type: float
  sample: 0.4
passed_at:
  description: When the passing round ended (ISO 8601, UTC), or null.
  returned: always
  type: str
  sample: "2026-11-24T09:42:10.120Z"
msg:
  description: All checks passed, or every failing check with the value that failed it.
  returned: always
  type: str
  sample: "1/2 check(s) failed: alarm a-5xx: alarm 'a-5xx' is ALARM, not OK (after 1 round(s) in 0.3s)"
before:
  description: C(null); this step changes nothing.
  returned: always
  type: raw
  sample: null
after:
  description: What was read, in short (C(passed) and each check's verdict by C(kind target)).
  returned: always
  type: raw
  sample: {"passed": true, "verdicts": {"ecs shop/shop-api": "pass"}}
aws_operation: {description: The AWS API call that failed., returned: on its failure, type: str, sample: DescribeAlarms}
aws_error_code: {description: Its error code (C(null) for a connection error)., returned: on its failure, type: str}
predicted:
  description: C(true) in check mode (the checks still ran; nothing is ever changed).
  returned: always
  type: bool
  sample: false
step_kind:
  description: The kind of step, for the incident report.
  returned: always
  type: str
  sample: verification
containment:
  description: Always empty; a verification contains nothing.
  returned: always
  type: list
  elements: dict
  sample: []
"""

import time

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import health
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import (
    RETRY_BUDGET_OPTION,
    Caller,
    aws_client,
    iso_utc,
    run_aws_step,
    utc_now,
)

CHECK_OPTIONS = dict(
    kind=dict(type="str", required=True, choices=list(health.KINDS)),
    name=dict(type="str"),
    target_group_arn=dict(type="str"),
    min_healthy=dict(type="int"),
    url=dict(type="str"),
    expect_status=dict(type="list", elements="int"),
    body_regex=dict(type="str"),
    probes=dict(type="int"),
    max_p95_ms=dict(type="float"),
    timeout=dict(type="float"),
    validate_certs=dict(type="bool"),
    alarm_names=dict(type="list", elements="str"),
    namespace=dict(type="str"),
    metric_name=dict(type="str"),
    dimensions=dict(type="dict"),
    statistic=dict(type="str"),
    threshold=dict(type="float"),
    window=dict(type="int"),
    period=dict(type="int"),
    missing_data=dict(type="str", choices=["pass", "fail"]),
    cluster=dict(type="str"),
    service=dict(type="str"),
    db_cluster=dict(type="str"),
    db_instance=dict(type="str"),
    since=dict(type="str"),
    queue_name=dict(type="str"),
    max_age=dict(type="int"),
    state_machine_arn=dict(type="str"),
    job_queue=dict(type="str"),
    max_runnable=dict(type="int"),
)

ARGUMENT_SPEC = dict(
    checks=dict(type="list", elements="dict", required=True, options=CHECK_OPTIONS),
    **health.VERIFY_OPTIONS,
    **RETRY_BUDGET_OPTION,
)


def run(module, result):
    params = module.params
    result.update(changed=False, before=None, after=None)
    for key in ("interval", "wait_timeout", "retry_budget"):
        if params[key] < 0:
            raise health.CheckInputError(f"{key} must be >= 0, got {params[key]}")
    checks = health.normalize(params["checks"])

    caller = Caller(params["retry_budget"])
    made = {}

    def clients(service):
        if service not in made:
            made[service] = aws_client(module, service)
        return made[service]

    start = time.monotonic()
    deadline = start + params["wait_timeout"]
    rounds = 0
    while True:
        rounds += 1
        results = [health.run_check(check, clients, caller) for check in checks]
        passed, msg = health.summary(results)
        result.update(passed=passed, checks=results, rounds=rounds)
        if passed or module.check_mode or time.monotonic() + params["interval"] > deadline:
            break
        time.sleep(params["interval"])

    elapsed = round(time.monotonic() - start, 2)
    result.update(
        elapsed=elapsed,
        passed_at=iso_utc(utc_now()) if passed else None,
        after={"passed": passed, "verdicts": {f"{r['kind']} {r['target']}": r["verdict"] for r in results}},
    )
    if not passed:
        msg = f"{msg} (after {rounds} round(s) in {elapsed}s)"
        if params["fail_on_unhealthy"]:
            module.fail_json(msg=msg, **result)
    result["msg"] = msg
    return result


def main():
    run_aws_step(run, "verification", ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
