"""Put a CloudWatch alarm state change on the sandbox's alarm queue, as EventBridge would deliver it.

    python -m sandbox.alarm [ALARM_NAME] [--state ALARM|OK|INSUFFICIENT_DATA] [--queue firebreak-alarms]

moto emits no event when an alarm changes state, so this builds the EventBridge event (``CloudWatch Alarm
State Change``) from the seeded alarm's definition (its metric and dimensions) and sends it to the queue that
``ansible-rulebook -r extensions/eda/rulebooks/service_down.yml`` reads. Aim it at the sandbox with the
environment ``make sandbox`` prints.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import uuid

from sandbox.seed.alarm_queue import QUEUE

DEFAULT_ALARM = "firebreak-ecs-running-below-desired"


def alarm_event(alarm: dict, state: str = "ALARM", when: datetime.datetime | None = None) -> dict:
    """The EventBridge event of ``alarm`` (a ``describe_alarms`` entry) going to ``state``."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"
    arn = alarm["AlarmArn"]
    _, _, _, region, account, _ = arn.split(":", 5)
    metric = {
        "namespace": alarm.get("Namespace", ""),
        "name": alarm.get("MetricName", ""),
        "dimensions": {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])},
    }
    previous = "OK" if state != "OK" else "ALARM"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [arn],
        "detail": {
            "alarmName": alarm["AlarmName"],
            "state": {"value": state, "reason": f"sandbox: {state} by python -m sandbox.alarm", "timestamp": stamp},
            "previousState": {"value": previous, "timestamp": stamp},
            "configuration": {
                "description": alarm.get("AlarmDescription", ""),
                "metrics": [
                    {
                        "id": "m1",
                        "metricStat": {
                            "metric": metric,
                            "period": alarm.get("Period", 60),
                            "stat": alarm.get("Statistic", ""),
                        },
                        "returnData": True,
                    }
                ],
            },
        },
    }


def send_alarm(make_client, alarm_name: str = DEFAULT_ALARM, state: str = "ALARM", queue: str = QUEUE) -> dict:
    """Send the state change of the seeded alarm ``alarm_name`` to ``queue``; returns the event."""
    alarms = make_client("cloudwatch").describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]
    if not alarms:
        raise SystemExit(f"no alarm {alarm_name} in the sandbox")
    event = alarm_event(alarms[0], state)
    sqs = make_client("sqs")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"], MessageBody=json.dumps(event))
    return event


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.alarm", description=__doc__.splitlines()[0])
    parser.add_argument("alarm", nargs="?", default=DEFAULT_ALARM)
    parser.add_argument("--state", default="ALARM", choices=["ALARM", "OK", "INSUFFICIENT_DATA"])
    parser.add_argument("--queue", default=QUEUE)
    args = parser.parse_args(argv)
    endpoint = os.environ.get("FIREBREAK_AWS_ENDPOINT_URL")
    if not endpoint or not endpoint.startswith(("http://127.0.0.1", "http://localhost")):
        print("set FIREBREAK_AWS_ENDPOINT_URL to the sandbox (source the env.sh that make sandbox prints)")
        return 2
    from sandbox.seed import make_client_factory

    event = send_alarm(make_client_factory(endpoint, os.environ.get("AWS_REGION", "us-east-1")), args.alarm, args.state)
    print(json.dumps({"sent": event["detail"]["alarmName"], "state": args.state, "id": event["id"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
