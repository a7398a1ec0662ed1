"""Drill: a Lambda function fails after a bad version went live (seeds/serverless-neptune-runbook.md, "1 Lambda
Function Failures", "Code Errors: review recent deployments, consider rollback").

The fault: new code for the seeded ``thumbnailer`` function is published as version 3 and its ``live`` alias is
pointed at it, as a bad pipeline deploy would. The runbook (``playbooks/lambda_failure.yml``) must point the alias
back at the previous published version (2, the seeded good one) and read it back.

The sandbox cannot run Lambda code (moto would need Docker), so the drill gives no alarm: the symptom is the alias
pointing at a version newer than a previous published one, and the verification is the alias read back.
``add_alarm`` creates an errors alarm on the function for the tests of the alarm path (symptom: the alarm in ALARM;
recovery: the alarm back to OK).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from sandbox.drills import frame_record

PLAYBOOK = "playbooks/lambda_failure.yml"
DESCRIPTION = "Lambda alias on a bad new version: point it back at the previous version, read it back"
ALARM = "thumbnailer-errors"


def _manifest(sandbox) -> dict:
    manifest = (sandbox.manifest or {}).get("aws", {}).get("lambda")
    if not manifest:
        raise RuntimeError("the sandbox has no Lambda seed (manifest['aws']['lambda']); was it started with AWS?")
    return manifest


def _zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


def alias_version(sandbox, function: str = "thumbnailer", alias: str = "live") -> str:
    return sandbox.client("lambda").get_alias(FunctionName=function, Name=alias)["FunctionVersion"]


def add_alarm(sandbox, state: str = "ALARM", function: str = "thumbnailer") -> str:
    """An errors alarm on the function's live alias, set to ``state`` (moto evaluates no metrics)."""
    cloudwatch = sandbox.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM,
        AlarmDescription=f"{function} errors",
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Dimensions=[{"Name": "FunctionName", "Value": function}, {"Name": "Resource", "Value": f"{function}:live"}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue=state, StateReason=f"drill: set to {state}")
    return ALARM


def inject(sandbox) -> dict:
    """Publish a bad version and point the alias at it; return the playbook's extra vars and, under ``_drill``,
    what ``verify`` needs."""
    seeded = _manifest(sandbox)
    awslambda = sandbox.client("lambda")
    function, alias = seeded["function_name"], seeded["alias"]["name"]
    good = seeded["alias"]["version"]
    awslambda.update_function_code(
        FunctionName=function, ZipFile=_zip("def handler(event, context):\n    raise RuntimeError('bad build')\n")
    )
    bad = awslambda.publish_version(FunctionName=function, Description="bad build")["Version"]
    awslambda.update_alias(FunctionName=function, Name=alias, FunctionVersion=bad)
    if alias_version(sandbox, function, alias) != bad:
        raise RuntimeError(f"fault injection failed: alias {alias} of {function} does not point at {bad}")
    return {
        "lambda_failure_function": function,
        "lambda_failure_alias": alias,
        "lambda_failure_rollback_from": bad,
        "_drill": {
            "function": function,
            "alias": alias,
            "good": good,
            "bad": bad,
            "fault": f"alias {alias} of {function} was pointed at the bad new version {bad} (was {good})",
        },
    }


def verify(sandbox, context: dict) -> list[str]:
    """Check in moto that the alias points at the good version again, with no traffic left on the bad one."""
    drill = context["_drill"]
    found = sandbox.client("lambda").get_alias(FunctionName=drill["function"], Name=drill["alias"])
    version = found["FunctionVersion"]
    weights = (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    assert version != drill["bad"], (
        f"alias {drill['alias']} of {drill['function']} still points at the bad version {drill['bad']}: "
        "it was not rolled back"
    )
    assert version == drill["good"], f"alias {drill['alias']} points at {version}, expected {drill['good']}"
    assert drill["bad"] not in weights, f"alias {drill['alias']} still routes {weights[drill['bad']]} to {drill['bad']}"
    return [f"alias {drill['alias']} of {drill['function']} points at {version}, not the bad {drill['bad']}"]


def verify_record(timeline: Path, report: Path) -> list[str]:
    """Check the frame's record: declared and resolved (not check mode), the gate's decision, the rollback, and a
    report naming the severity."""
    frame = frame_record(timeline, report)
    assert frame.changed("lambda_alias_rollback"), f"no alias rollback in {timeline}"
    return [
        *frame.summary(),
        f"report {Path(report).name} verifies the chain and names severity {frame.declared['severity']}",
    ]
