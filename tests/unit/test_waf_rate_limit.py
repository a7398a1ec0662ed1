"""waf_rate_limit: the rate-based rule, its place among the web ACL's rules, input checks and the locked write
(module_utils/aws/wafv2.py), without AWS."""

from __future__ import annotations

import sys

import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import wafv2
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import StepAWSError


def _rule(name, priority, action="Block"):
    return {
        "Name": name,
        "Priority": priority,
        "Statement": {"GeoMatchStatement": {"CountryCodes": ["KP"]}},
        "Action": {action: {}},
        "VisibilityConfig": {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": name},
    }


def _rate(limit=100, **options):
    return wafv2.rate_rule("firebreak-rate-INC-1", None, wafv2.rate_statement(limit, **options), "block")


def test_the_rule_name_carries_the_incident_and_only_what_a_rule_name_holds():
    assert wafv2.rate_rule_name("INC-2041") == "firebreak-rate-INC-2041"
    assert wafv2.rate_rule_name("INC 2041/b") == "firebreak-rate-INC-2041-b"
    assert len(wafv2.rate_rule_name("x" * 300)) == 128
    assert wafv2.rate_rule_name("") == "" and wafv2.rate_rule_name(None) == ""


def test_the_statement_counts_per_address_and_scopes_down_to_the_path_lower_cased():
    statement = wafv2.rate_statement(100, 300, "IP", path="/Login")["RateBasedStatement"]
    assert statement["Limit"] == 100 and statement["EvaluationWindowSec"] == 300
    assert statement["AggregateKeyType"] == "IP" and "ForwardedIPConfig" not in statement
    match = statement["ScopeDownStatement"]["ByteMatchStatement"]
    assert match["SearchString"] == b"/login" and match["FieldToMatch"] == {"UriPath": {}}
    assert [t["Type"] for t in match["TextTransformations"]] == ["URL_DECODE", "LOWERCASE"]
    forwarded = wafv2.rate_statement(50, 60, "FORWARDED_IP", "X-Real-IP", "NO_MATCH")["RateBasedStatement"]
    assert forwarded["ForwardedIPConfig"] == {"HeaderName": "X-Real-IP", "FallbackBehavior": "NO_MATCH"}
    assert "ScopeDownStatement" not in forwarded


def test_a_new_rule_goes_after_every_rule_and_an_existing_one_keeps_its_place():
    rules = [_rule("a", 0), _rule("b", 7)]
    placed, existing = wafv2.place_rate_rule(rules, _rate())
    assert placed["Priority"] == 8 and existing is None
    assert wafv2.place_rate_rule([], _rate())[0]["Priority"] == 0
    ours = dict(_rate(), Priority=3)
    placed, existing = wafv2.place_rate_rule([*rules, ours], _rate(50))
    assert placed["Priority"] == 3 and existing is ours
    assert wafv2.place_rate_rule(rules, _rate(), priority=4)[0]["Priority"] == 4


def test_a_priority_another_rule_holds_is_refused_naming_the_rule():
    with pytest.raises(wafv2.WAFInputError, match="priority 7 is held by rule 'b'"):
        wafv2.place_rate_rule([_rule("a", 0), _rule("b", 7)], _rate(), priority=7)


def test_with_and_without_the_rule_leave_the_others_as_they_are():
    rules = [_rule("a", 0), _rule("b", 7)]
    placed, _ = wafv2.place_rate_rule(rules, _rate())
    added = wafv2.with_rule(rules, placed)
    assert [r["Name"] for r in added] == ["a", "b", "firebreak-rate-INC-1"]
    assert added[:2] == rules
    assert wafv2.without_rules(added, ["firebreak-rate-INC-1"]) == rules
    assert wafv2.others_of(added, "firebreak-rate-INC-1") == wafv2.others_of(rules, "firebreak-rate-INC-1")


def test_same_rule_compares_what_the_step_sets_with_the_search_string_as_read_back():
    placed = dict(_rate(path="/login"), Priority=1)
    read_back = wafv2.plain(placed)  # the SearchString as text, as a JSON round trip gives it
    read_back["RuleLabels"] = None
    assert wafv2.same_rule(placed, read_back)
    assert not wafv2.same_rule(placed, dict(placed, Priority=2))
    assert not wafv2.same_rule(placed, dict(_rate(limit=99, path="/login"), Priority=1))
    assert not wafv2.same_rule(placed, None)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((9, 300, "IP", None, None, "STARTS_WITH", None), "limit 9 is out of range"),
        ((2000000001, 300, "IP", None, None, "STARTS_WITH", None), "limit 2000000001"),
        ((True, 300, "IP", None, None, "STARTS_WITH", None), "limit True"),
        ((100, 30, "IP", None, None, "STARTS_WITH", None), "evaluation_window 30"),
        ((100, 300, "FORWARDED_IP", "X Bad", None, "STARTS_WITH", None), "forwarded_ip_header 'X Bad'"),
        ((100, 300, "IP", None, "login", "STARTS_WITH", None), "path 'login'"),
        ((100, 300, "IP", None, "/" + "a" * 200, "STARTS_WITH", None), "longer than 200 bytes"),
        ((100, 300, "IP", None, "/login", "ENDS", None), "path_match 'ENDS'"),
        ((100, 300, "IP", None, None, "STARTS_WITH", -1), "priority -1"),
    ],
)
def test_bad_options_are_refused_naming_the_value(args, named):
    with pytest.raises(wafv2.WAFInputError, match=named.replace("(", r"\(")):
        wafv2.check_rate_options(*args)


def test_rule_names_are_checked():
    assert wafv2.check_rule_name("firebreak-rate-INC_1") == "firebreak-rate-INC_1"
    with pytest.raises(wafv2.WAFInputError, match="rule_name 'a b'"):
        wafv2.check_rule_name("a b")


class FakeCaller:
    """Answers GetWebACL from ``acls`` in turn; UpdateWebACL conflicts ``conflicts`` times, then records."""

    def __init__(self, acls, conflicts=0):
        self.acls = list(acls)
        self.conflicts = conflicts
        self.written = []
        self.reads = 0

    def __call__(self, client, method, resource=None, **params):
        if method == "get_web_acl":
            acl = self.acls[min(self.reads, len(self.acls) - 1)]
            self.reads += 1
            return {"WebACL": acl, "LockToken": f"t{self.reads}"}
        if method == "update_web_acl":
            if self.conflicts:
                self.conflicts -= 1
                raise StepAWSError("UpdateWebACL", wafv2.LOCK_CONFLICT, "changed meanwhile", resource)
            self.written.append(params)
            return {"NextLockToken": "n"}
        raise AssertionError(method)


def _acl(rules, **extra):
    base = {
        "Name": "edge-acl",
        "Id": "id",
        "ARN": "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/edge-acl/id",
        "DefaultAction": {"Allow": {}},
        "Description": "",
        "VisibilityConfig": {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": "e"},
        "Rules": rules,
        "Capacity": 3,
        "LabelNamespace": "awswaf:123456789012:webacl:edge-acl:",
    }
    return {**base, **extra}


def test_the_write_keeps_every_setting_as_read_and_a_conflict_re_reads_and_re_plans():
    other_writer = _rule("geo", 5)
    caller = FakeCaller(
        [_acl([_rule("a", 0)], TokenDomains=["example.com"]), _acl([_rule("a", 0), other_writer])], conflicts=1
    )
    ref = {"name": "edge-acl", "id": "id", "arn": _acl([])["ARN"]}

    def plan(acl):
        placed, _ = wafv2.place_rate_rule(acl["Rules"], _rate())
        return wafv2.with_rule(acl["Rules"], placed)

    _, written, conflicts = wafv2.locked_update(
        lambda: wafv2.get_web_acl(caller, None, ref, "REGIONAL"),
        lambda acl, rules, token: wafv2.update_web_acl(caller, None, acl, "REGIONAL", rules, token),
        plan,
        3,
        sleep=lambda _: None,
    )
    assert conflicts == 1
    [params] = caller.written
    assert params["LockToken"] == "t2", "the token of the read the plan was made from"
    assert [r["Name"] for r in params["Rules"]] == ["a", "geo", "firebreak-rate-INC-1"]
    assert params["Rules"][2]["Priority"] == 6, "placed after the rule the other writer added meanwhile"
    assert params["DefaultAction"] == {"Allow": {}} and "Description" not in params, "an empty description is not sent"
    assert "Capacity" not in params and "LabelNamespace" not in params, "read-only fields are not sent"
    assert written == params["Rules"]


def test_the_write_gives_up_after_the_bound_having_written_nothing():
    caller = FakeCaller([_acl([])], conflicts=5)
    ref = {"name": "edge-acl", "id": "id", "arn": _acl([])["ARN"]}
    with pytest.raises(StepAWSError, match="gave up after 3 lock conflicts"):
        wafv2.locked_update(
            lambda: wafv2.get_web_acl(caller, None, ref, "REGIONAL"),
            lambda acl, rules, token: wafv2.update_web_acl(caller, None, acl, "REGIONAL", rules, token),
            lambda acl: [dict(_rate(), Priority=0)],
            2,
            sleep=lambda _: None,
        )
    assert caller.written == []


def _documented(module) -> dict:
    import yaml
    from ansible_collections.firebreak.runbooks.plugins.doc_fragments import step as step_fragment

    doc = yaml.safe_load(module.DOCUMENTATION)
    options = dict(doc["options"])
    for fragment in doc["extends_documentation_fragment"]:
        if fragment == "firebreak.runbooks.step" or fragment.startswith("firebreak.runbooks.step."):
            text = getattr(
                step_fragment.ModuleDocFragment, fragment.rpartition("step")[2].lstrip(".") or "DOCUMENTATION"
            )
            options.update(yaml.safe_load(text).get("options") or {})
    return options


def test_the_argument_spec_is_what_the_documentation_says():
    from ansible_collections.firebreak.runbooks.plugins.modules import wafv2_rate_limit

    options, spec = _documented(wafv2_rate_limit), wafv2_rate_limit.ARGUMENT_SPEC
    assert set(options) == set(spec)
    for name, doc in options.items():
        for key in ("type", "default", "choices", "elements"):
            assert doc.get(key) == spec[name].get(key), f"{name}.{key}"
        assert bool(doc.get("required")) == bool(spec[name].get("required")), name
