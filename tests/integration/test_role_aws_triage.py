"""The aws_triage role as a scenario includes it: converge, a re-run and a --check run change nothing in the
sandbox; a refused section is reported (and fails the role only when asked); no section is refused before any
call."""

from __future__ import annotations

import pytest

from tests.integration.test_aws_triage_info import calls_since, is_read, mark
from tests.integration.test_role_ecs_rollback import recap

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/triage/role.yml"
KEY = "AKIAIOSFODNN7EXAMPLE"


def state(aws) -> dict:
    """What an evidence step must leave as it found it."""
    manifest = aws.manifest["aws"]
    cloudwatch, lam = aws.client("cloudwatch"), aws.client("lambda")
    alarms = cloudwatch.describe_alarms(AlarmNames=manifest["cloudwatch"]["alarms"])["MetricAlarms"]
    return {
        "alarms": {a["AlarmName"]: a["StateValue"] for a in alarms},
        "alias": lam.get_alias(FunctionName="thumbnailer", Name="live")["FunctionVersion"],
        "versions": [v["Version"] for v in lam.list_versions_by_function(FunctionName="thumbnailer")["Versions"]],
        "keys": [
            (k["AccessKeyId"], k["Status"])
            for k in aws.client("iam").list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"]
        ],
    }


def test_converge_rerun_and_check_change_nothing(aws, run_playbook):
    aws.client("cloudwatch").set_alarm_state(AlarmName="firebreak-alb-5xx", StateValue="ALARM", StateReason="5xx")
    before, since = state(aws), mark(aws)
    extra = {
        "triage_cloudtrail": {"principal": "ci-deployer"},
        "triage_lambda": {"function": "thumbnailer", "alias": "live"},
        "triage_alarms": {"names": ["firebreak-alb-5xx"]},
    }
    for check in (False, False, True):
        run = run_playbook(PLAYBOOK, extra_vars=extra, check=check)
        assert run.returncode == 0, run.output[-3000:]
        assert recap(run)["changed"] == 0 and recap(run)["failed"] == 0
        assert "Evidence: cloudtrail: 4 item(s); lambda: 2 item(s); alarms: 2 item(s)" in run.stdout
    assert state(aws) == before
    made = calls_since(aws, since)
    assert made and all(is_read(e) for e in made), [e for e in made if not is_read(e)]


def test_a_refused_section_is_reported_and_fails_the_role_only_when_asked(aws, run_playbook):
    aws.proxy.add_rule(
        {"service": "guardduty", "fault": "error", "status": 403, "code": "AccessDeniedException", "message": "no"}
    )
    extra = {"triage_cloudtrail": {"principal": KEY}, "triage_guardduty": {"resource": KEY}}
    run = run_playbook(PLAYBOOK, extra_vars=extra)
    assert run.returncode == 0, run.output[-3000:]
    assert "guardduty: 0 item(s); ListDetectors failed for GuardDuty detectors: AccessDeniedException" in run.stdout
    run = run_playbook(PLAYBOOK, extra_vars=dict(extra, triage_strict=True))
    assert run.returncode != 0 and recap(run)["failed"] == 1
    assert "Evidence incomplete: guardduty: ListDetectors AccessDeniedException (no)" in run.stdout


def test_no_section_is_refused_before_any_call(aws, run_playbook):
    since = mark(aws)
    run = run_playbook(PLAYBOOK)
    assert run.returncode != 0
    assert "aws_triage needs at least one section" in run.stdout
    assert calls_since(aws, since) == []
