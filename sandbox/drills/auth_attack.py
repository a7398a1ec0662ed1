"""Drill: high authentication failures against the login path (seeds/k8s-playbooks.md, "Security Incident").

The fault: a CloudWatch alarm on the login failures (``firebreak-login-failures``) goes to ALARM, with two attacking
sources named by the alert. The runbook (``playbooks/auth_attack.yml``) must add both sources to the seeded WAF IP set
``firebreak-blocklist`` (which the seeded web ACL ``edge-acl`` blocks on) and add the incident's rate-based rule on
``/login`` to ``edge-acl``, every other rule and address staying as it was.

Containment is gated (``contain_confirmed`` in the sandbox: it passes once the alarm confirms the symptom); the drill
also gives ``firebreak_gate_approvals`` with ``yes`` so that it runs in an environment asking for approval too.
"""

from __future__ import annotations

PLAYBOOK = "playbooks/auth_attack.yml"
DESCRIPTION = "Login failures alarm in ALARM from two sources: block them at the WAF, rate-limit /login"
ALARM = "firebreak-login-failures"
SOURCES = ["203.0.113.7/32", "198.51.100.0/24"]
GATE = "auth-attack-contain"


def _waf(sandbox) -> dict:
    waf = (sandbox.manifest or {}).get("aws", {}).get("waf")
    if not waf:
        raise RuntimeError("the sandbox has no WAF seed (manifest['aws']['waf']); was it started with AWS?")
    return waf


def inject(sandbox) -> dict:
    """Put the login failures alarm in ALARM; return the playbook's extra vars and, under ``_drill``, what
    ``verify`` needs."""
    waf = _waf(sandbox)
    cloudwatch = sandbox.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM,
        AlarmDescription="login failures high (HighAuthenticationFailureRate)",
        Namespace="firebreak/auth",
        MetricName="LoginFailures",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=50.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching",
    )
    cloudwatch.set_alarm_state(
        AlarmName=ALARM, StateValue="ALARM", StateReason="Threshold Crossed: 1 datapoint [412.0] >= 50.0"
    )
    state = cloudwatch.describe_alarms(AlarmNames=[ALARM])["MetricAlarms"][0]["StateValue"]
    if state != "ALARM":
        raise RuntimeError(f"fault injection failed: {ALARM} is {state}, expected ALARM")
    return {
        "auth_attack_sources": list(SOURCES),
        "auth_attack_alarm": ALARM,
        "auth_attack_web_acl": waf["web_acl"]["name"],
        "auth_attack_ip_set": waf["ip_set"]["name"],
        "firebreak_gate_approvals": {GATE: "yes"},
        "incident_gate_allow_unpinned": True,
        "_drill": {
            "scope": waf["scope"],
            "web_acl": waf["web_acl"],
            "ip_set": waf["ip_set"],
            "sources": list(SOURCES),
            "fault": f"{ALARM} in ALARM: login failures from {', '.join(SOURCES)}",
        },
    }


def web_acl_rules(sandbox, drill: dict) -> list[dict]:
    acl = drill["web_acl"]
    return sandbox.client("wafv2").get_web_acl(Name=acl["name"], Scope=drill["scope"], Id=acl["id"])["WebACL"]["Rules"]


def ip_set_addresses(sandbox, drill: dict) -> list[str]:
    ip_set = drill["ip_set"]
    found = sandbox.client("wafv2").get_ip_set(Name=ip_set["name"], Scope=drill["scope"], Id=ip_set["id"])
    return sorted(found["IPSet"]["Addresses"])


def verify(sandbox, context: dict) -> list[str]:
    """Check in moto that the sources are blocked, the seeded ones still are, and a rate-based rule on /login is in
    the web ACL beside the seeded block rule."""
    drill = context["_drill"]
    addresses = ip_set_addresses(sandbox, drill)
    missing = [source for source in drill["sources"] if source not in addresses]
    assert not missing, f"the IP set {drill['ip_set']['name']} does not block {missing} (holds {addresses})"
    kept = [a for a in drill["ip_set"]["addresses"] if a not in addresses]
    assert not kept, f"the IP set {drill['ip_set']['name']} lost the addresses it held before: {kept}"
    rules = web_acl_rules(sandbox, drill)
    names = [rule["Name"] for rule in rules]
    assert drill["web_acl"]["rule"] in names, f"the seeded rule {drill['web_acl']['rule']} is gone from {names}"
    rated = [rule for rule in rules if "RateBasedStatement" in rule["Statement"]]
    assert rated, f"no rate-based rule in web ACL {drill['web_acl']['name']} (rules: {names})"
    rule = rated[0]
    statement = rule["Statement"]["RateBasedStatement"]
    scoped = str(statement.get("ScopeDownStatement", {}))
    assert "/login" in scoped, f"the rate-based rule {rule['Name']} does not count /login: {statement}"
    assert "Block" in rule["Action"], f"the rate-based rule {rule['Name']} does not block: {rule['Action']}"
    ip_set, acl = drill["ip_set"]["name"], drill["web_acl"]["name"]
    return [
        f"IP set {ip_set} blocks {', '.join(drill['sources'])} (and still {', '.join(drill['ip_set']['addresses'])})",
        f"web ACL {acl} has rate-based rule {rule['Name']} ({statement['Limit']} per window on /login, block)",
    ]
