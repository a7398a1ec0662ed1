"""wafv2_rate_limit against the sandbox: the rule as moto holds it after each run, the other rules untouched,
lock conflicts, priorities, release of exactly the incident's rule.

Every test asserts the web ACL's rules in moto (GetWebACL), not only what the module said.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

RATE = "tests/integration/playbooks/waf/rate.yml"
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
SEEDED_RULE = "block-firebreak-blocklist"
VISIBILITY = {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True}


def web_acl(aws, name: str = "edge-acl") -> tuple[dict, str]:
    client = aws.client("wafv2")
    summary = next(a for a in client.list_web_acls(Scope="REGIONAL")["WebACLs"] if a["Name"] == name)
    answer = client.get_web_acl(Name=name, Scope="REGIONAL", Id=summary["Id"])
    return answer["WebACL"], answer["LockToken"]


def rules(aws, name: str = "edge-acl") -> dict[str, dict]:
    return {rule["Name"]: rule for rule in web_acl(aws, name)[0]["Rules"]}


def result_of(run, task: str = "Rate limit") -> dict:
    data = json.JSONDecoder().raw_decode(run.stdout[run.stdout.index("{") :])[0]
    for play in data["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"] == task:
                return entry["hosts"]["localhost"]
    raise AssertionError(f"task {task!r} not in the output:\n{run.output[-3000:]}")


def rate(run_playbook, check=False, diff=False, timeline=None, **options):
    extra = {f"rate_{key}": value for key, value in options.items() if value is not None}
    extra.setdefault("rate_web_acl", "edge-acl")
    run = run_playbook(RATE, extra_vars=extra, check=check, diff=diff, env=JSON_OUTPUT, timeline=timeline)
    return run, result_of(run)


def updates(aws) -> list[str]:
    return [e["action"] for e in aws.proxy.log() if e["service"] == "wafv2" and e["action"] == "UpdateWebACL"]


def add_rule_by_hand(aws, name: str, priority: int) -> None:
    acl, token = web_acl(aws)
    rule = {
        "Name": name,
        "Priority": priority,
        "Statement": {"GeoMatchStatement": {"CountryCodes": ["KP"]}},
        "Action": {"Block": {}},
        "VisibilityConfig": {**VISIBILITY, "MetricName": name},
    }
    aws.client("wafv2").update_web_acl(
        Name=acl["Name"],
        Scope="REGIONAL",
        Id=acl["Id"],
        DefaultAction=acl["DefaultAction"],
        VisibilityConfig=acl["VisibilityConfig"],
        Rules=[*acl["Rules"], rule],
        LockToken=token,
    )


def test_adds_the_rule_after_the_others_keeps_them_and_reruns_unchanged(aws, run_playbook, request):
    seeded = rules(aws)[SEEDED_RULE]
    check, predicted = rate(run_playbook, check=True, diff=True, limit=100, path="/Login")
    assert check.returncode == 0, check.output
    assert predicted["changed"] is True and predicted["predicted"] is True
    assert list(rules(aws)) == [SEEDED_RULE], "check mode changed the web ACL"

    aws.proxy.clear_log()
    run, result = rate(run_playbook, limit=100, path="/Login")
    assert run.returncode == 0, run.output
    stored = rules(aws)
    name = result["rule"]["Name"]
    assert name.startswith("firebreak-rate-INC-TEST-") and set(stored) == {SEEDED_RULE, name}
    assert stored[SEEDED_RULE] == seeded, "the seeded rule is exactly as it was"
    rule = stored[name]
    assert rule["Priority"] == 1 and rule["Action"] == {"Block": {}}
    statement = rule["Statement"]["RateBasedStatement"]
    assert statement["Limit"] == 100 and statement["EvaluationWindowSec"] == 300
    assert statement["AggregateKeyType"] == "IP"
    byte_match = statement["ScopeDownStatement"]["ByteMatchStatement"]
    assert byte_match["SearchString"] == b"/login" and byte_match["FieldToMatch"] == {"UriPath": {}}
    assert byte_match["PositionalConstraint"] == "STARTS_WITH"
    assert rule["VisibilityConfig"]["MetricName"] == name
    assert result["rule_in_place"] is True and result["other_rules_unchanged"] is True
    assert [r["name"] for r in result["after"]["rules"]] == [SEEDED_RULE, name]
    [entry] = result["containment"]
    assert entry["step"] == "waf_rate_limit" and entry["resource"] == web_acl(aws)[0]["ARN"]
    assert entry["changed"] == {"rule": name, "created": True} and entry["claimed"] == [f"rule:{name}"]
    assert updates(aws) == ["UpdateWebACL"]

    aws.proxy.clear_log()
    run, again = rate(run_playbook, limit=100, path="/Login")
    assert run.returncode == 0, run.output
    assert again["changed"] is False and again["containment"] == [] and not updates(aws)
    assert rules(aws) == stored


def test_a_new_limit_updates_the_rule_in_place(aws, run_playbook):
    run, first = rate(run_playbook, limit=100)
    assert run.returncode == 0, run.output
    name = first["rule"]["Name"]
    add_rule_by_hand(aws, "geo-block", 7)  # another responder's rule, after ours
    run, second = rate(run_playbook, limit=50, action="count")
    assert run.returncode == 0, run.output
    stored = rules(aws)
    assert stored[name]["Priority"] == 1, "the rule keeps its place"
    assert stored[name]["Statement"]["RateBasedStatement"]["Limit"] == 50
    assert stored[name]["Action"] == {"Count": {}}
    assert stored["geo-block"]["Priority"] == 7 and second["other_rules_unchanged"] is True
    [entry] = second["containment"]
    assert entry["changed"]["created"] is False
    assert entry["changed"]["previous"]["Statement"]["RateBasedStatement"]["Limit"] == 100


def test_a_priority_another_rule_holds_is_refused_and_nothing_changes(aws, run_playbook):
    aws.proxy.clear_log()
    run, result = rate(run_playbook, limit=100, priority=0)
    assert run.returncode != 0
    assert f"priority 0 is held by rule '{SEEDED_RULE}'" in result["msg"]
    assert list(rules(aws)) == [SEEDED_RULE] and not updates(aws)


@first_case_in_make_test
@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"limit": 5}, "limit 5 is out of range"),
        ({"limit": 100, "path": "login"}, "path 'login' is not a URI path"),
        ({"limit": 100, "rule_name": "bad name!"}, "rule_name 'bad name!'"),
        ({}, "limit is required"),
    ],
)
def test_bad_input_is_refused_naming_the_value_before_any_call(aws, run_playbook, options, named):
    aws.proxy.clear_log()
    run, result = rate(run_playbook, **options)
    assert run.returncode != 0
    assert named in result["msg"] and "Traceback" not in run.output
    assert not [e for e in aws.proxy.log() if e["service"] == "wafv2"], "no call was made"
    assert list(rules(aws)) == [SEEDED_RULE]


def test_lock_conflicts_re_read_and_a_conflict_that_does_not_clear_fails_naming_the_call(aws, run_playbook):
    aws.proxy.add_rule(
        {"service": "wafv2", "action": "UpdateWebACL", "fault": "error", "status": 400,
         "code": "WAFOptimisticLockException", "count": 2}
    )  # fmt: skip
    run, result = rate(run_playbook, limit=200)
    assert run.returncode == 0, run.output
    assert result["lock_conflicts"] == 2
    assert rules(aws)[result["rule"]["Name"]]["Statement"]["RateBasedStatement"]["Limit"] == 200

    aws.reset_aws()
    aws.proxy.add_rule(
        {"service": "wafv2", "action": "UpdateWebACL", "fault": "error", "status": 400,
         "code": "WAFOptimisticLockException"}
    )  # fmt: skip
    run, failed = rate(run_playbook, limit=200, lock_retries=2)
    assert run.returncode != 0
    assert failed["aws_operation"] == "UpdateWebACL" and failed["aws_error_code"] == "WAFOptimisticLockException"
    assert "gave up after 3 lock conflicts" in failed["msg"]
    assert failed["containment"] == []
    assert list(rules(aws)) == [SEEDED_RULE]


def test_release_removes_exactly_the_incident_rule_and_leaves_the_rest(aws, run_playbook, tmp_path):
    run, contained = rate(run_playbook, limit=100, path="/login")
    assert run.returncode == 0, run.output
    name = contained["rule"]["Name"]
    add_rule_by_hand(aws, "geo-block", 5)  # meanwhile
    before = rules(aws)

    check, predicted = rate(run_playbook, check=True, state="released", containments=contained["containment"])
    assert check.returncode == 0, check.output
    assert predicted["removed"] == [name] and rules(aws) == before

    run, released = rate(run_playbook, state="released", containments=contained["containment"])
    assert run.returncode == 0, run.output
    after = rules(aws)
    assert set(after) == {SEEDED_RULE, "geo-block"}
    assert after[SEEDED_RULE] == before[SEEDED_RULE] and after["geo-block"] == before["geo-block"]
    assert released["removed"] == [name] and released["still_present"] == []
    assert released["other_rules_unchanged"] is True
    assert released["release"][0]["releases"] == [contained["containment"][0]["id"]]

    run, again = rate(run_playbook, state="released", containments=contained["containment"])
    assert run.returncode == 0, run.output
    assert again["changed"] is False and again["left_alone"]["already_removed"] == [name]
    assert set(rules(aws)) == {SEEDED_RULE, "geo-block"}


def test_releasing_the_only_rule_leaves_the_web_acl_empty(aws, run_playbook):
    client = aws.client("wafv2")
    client.create_web_acl(
        Name="api-acl",
        Scope="REGIONAL",
        DefaultAction={"Allow": {}},
        Rules=[],
        VisibilityConfig={**VISIBILITY, "MetricName": "api-acl"},
    )
    run, contained = rate(run_playbook, web_acl="api-acl", limit=1000)
    assert run.returncode == 0, run.output
    assert contained["rule"]["Priority"] == 0 and list(rules(aws, "api-acl")) == [contained["rule"]["Name"]]
    run, released = rate(run_playbook, web_acl="api-acl", state="released", containments=contained["containment"])
    assert run.returncode == 0, run.output
    assert rules(aws, "api-acl") == {} and released["still_present"] == []


def test_release_of_a_deleted_web_acl_reports_it_gone(aws, run_playbook):
    aws.client("wafv2").create_web_acl(
        Name="api-acl",
        Scope="REGIONAL",
        DefaultAction={"Allow": {}},
        Rules=[],
        VisibilityConfig={**VISIBILITY, "MetricName": "api-acl"},
    )
    run, contained = rate(run_playbook, web_acl="api-acl", limit=100)
    assert run.returncode == 0, run.output
    acl, token = web_acl(aws, "api-acl")
    aws.client("wafv2").delete_web_acl(Name=acl["Name"], Scope="REGIONAL", Id=acl["Id"], LockToken=token)
    run, released = rate(run_playbook, web_acl="api-acl", state="released", containments=contained["containment"])
    assert run.returncode == 0, run.output
    assert released["changed"] is False and released["gone"] == [acl["ARN"]]
    assert released["release"][0]["gone"] is True
    assert list(rules(aws)) == [SEEDED_RULE], "the other web ACL is untouched"
