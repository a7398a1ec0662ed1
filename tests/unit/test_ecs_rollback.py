"""ECS rollback: decision logic, waiting, module wiring and the role's metadata, without AWS."""

from __future__ import annotations

import sys

import pytest
import yaml

from sandbox import REPO_ROOT

# firebreak.runbooks resolves through the committed collections/ symlink (as ansible.cfg does).
if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.doc_fragments import step as step_fragment
from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import ecs
from ansible_collections.firebreak.runbooks.plugins.modules import (
    ecs_service_rollback,
    ecs_service_status_info,
)


@pytest.fixture(autouse=True)
def claims_dir(tmp_path, monkeypatch):
    """The rollback lock's directory (the local claim directory) in the test's tmp_path, not ./incidents."""
    monkeypatch.setenv("FIREBREAK_CLAIMS_DIR", str(tmp_path / "claims"))


ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/{}"


# -- references -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (ARN.format("shop-api:2"), ("shop-api", 2)),
        ("arn:aws-us-gov:ecs:us-gov-west-1:123456789012:task-definition/shop_api-2:17", ("shop_api-2", 17)),
        ("shop-api:12", ("shop-api", 12)),
        (" shop-api:3 ", ("shop-api", 3)),
    ],
)
def test_parse_accepts_arn_and_family_revision(ref, expected):
    assert ecs.parse_task_definition(ref) == expected


@pytest.mark.parametrize(
    "ref",
    [
        "shop-api",  # no revision: ambiguous
        "shop-api:0",
        "shop-api:-1",
        "shop-api:two",
        "arn:aws:ecs:us-east-1:123456789012:task-definition/shop-api",
        "arn:aws:ecs:foo",
        "arn:aws:ecs:us-east-1:123456789012:service/shop/shop-api:2",
        "shop api:2",
        "",
        None,
        "2",  # a bare revision needs the service's family
    ],
)
def test_parse_rejects_malformed_references_naming_them(ref):
    with pytest.raises(ValueError, match="malformed task definition") as err:
        ecs.parse_task_definition(ref)
    assert repr(ref) in str(err.value)


def test_bare_revision_number_is_in_the_given_family():
    assert ecs.normalize_task_definition("2", default_family="shop-api") == "shop-api:2"
    assert ecs.normalize_task_definition(ARN.format("other:5"), default_family="shop-api") == "other:5"
    with pytest.raises(ValueError):
        ecs.normalize_task_definition("0", default_family="shop-api")


def test_normalize_makes_arn_and_family_revision_equal():
    # moto stores what update_service was given ("shop-api:2"); AWS returns an ARN.
    assert ecs.normalize_task_definition(ARN.format("shop-api:2")) == ecs.normalize_task_definition("shop-api:2")
    assert ecs.normalize_task_definition(ARN.format("shop-api:2")) != ecs.normalize_task_definition("shop-api:3")


def test_split_loose_accepts_a_bare_family_from_the_service():
    assert ecs.split_loose("shop-api") == ("shop-api", None)
    assert ecs.split_loose(ARN.format("shop-api:4")) == ("shop-api", 4)


def test_family_revisions_filters_the_prefix_match_of_list_task_definitions():
    arns = [ARN.format(x) for x in ("shop-api:3", "shop-api-worker:9", "shop-api:1", "shop-api:10")]
    assert ecs.family_revisions(arns, "shop-api") == {
        1: ARN.format("shop-api:1"),
        3: ARN.format("shop-api:3"),
        10: ARN.format("shop-api:10"),
    }


# -- target selection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "active", "expected"),
    [
        (3, [1, 2, 3], 2),
        (5, [1, 2, 5], 2),  # gap: 3 and 4 deregistered (INACTIVE, not listed as ACTIVE)
        (4, [4, 3, 1, 2], 3),  # unsorted input (moto ignores sort)
        (2, [2, 5, 7], None),  # only higher revisions
        (1, [1], None),
        (10, [9, 10, 11], 9),
    ],
)
def test_previous_revision_is_highest_active_below_current(current, active, expected):
    assert ecs.previous_revision(current, active) == expected


def test_default_rollback_picks_previous_active_revision():
    decision = ecs.decide_rollback("shop-api:4", active_revisions=[1, 2, 4])
    assert decision == {
        "changed": True,
        "target": "shop-api:2",
        "action": "rollback",
        "reason": "from shop-api:4 to shop-api:2 (previous ACTIVE revision)",
    }


def test_default_rollback_with_nothing_lower_fails_naming_family_and_revision():
    with pytest.raises(ecs.ECSInputError, match=r"no ACTIVE revision of family 'shop-api' lower than 1"):
        ecs.decide_rollback("shop-api:1", active_revisions=[1, 2])


def test_revisions_are_listed_only_when_needed():
    def boom():
        raise AssertionError("ListTaskDefinitions should not be called")

    marker = {"from": "shop-api:3", "to": "shop-api:2", "at": "2025-01-01T00:00:00Z"}
    assert not ecs.decide_rollback("shop-api:2", marker=marker, active_revisions=boom)["changed"]
    assert not ecs.decide_rollback("shop-api:2", rollback_from="shop-api:3", active_revisions=boom)["changed"]
    assert ecs.decide_rollback("shop-api:3", target="shop-api:1", active_revisions=boom)["target"] == "shop-api:1"
    assert ecs.decide_rollback("shop-api:3", active_revisions=lambda: [1, 2, 3])["target"] == "shop-api:2"


def test_explicit_target_wins_and_is_idempotent():
    assert ecs.decide_rollback("shop-api:3", target="shop-api:1")["changed"] is True
    again = ecs.decide_rollback("shop-api:1", target="shop-api:1")
    assert again["changed"] is False and "already runs shop-api:1" in again["reason"]
    # a "rollback" to a higher revision is what was asked for
    assert ecs.decide_rollback("shop-api:1", target="shop-api:3")["target"] == "shop-api:3"


def test_rollback_from_only_acts_on_the_bad_revision():
    on_bad = ecs.decide_rollback("shop-api:4", rollback_from="shop-api:4", active_revisions=[1, 2, 3, 4])
    assert on_bad["changed"] and on_bad["target"] == "shop-api:3"
    elsewhere = ecs.decide_rollback("shop-api:3", rollback_from="shop-api:4", active_revisions=[1, 2, 3, 4])
    assert elsewhere == {"changed": False, "target": "shop-api:3", "action": "none", "reason": elsewhere["reason"]}
    assert "not shop-api:4 (rollback_from)" in elsewhere["reason"]
    # with an explicit target too: only while on the bad revision
    assert not ecs.decide_rollback("shop-api:2", target="shop-api:1", rollback_from="shop-api:4")["changed"]
    assert ecs.decide_rollback("shop-api:4", target="shop-api:1", rollback_from="shop-api:4")["changed"]


def test_marker_prevents_a_second_default_rollback():
    marker = ecs.read_marker(
        [
            {"key": ecs.TAG_FROM, "value": "shop-api:3"},
            {"key": ecs.TAG_TO, "value": "shop-api:2"},
            {"key": ecs.TAG_AT, "value": "2025-01-31T14:03:07Z"},
            {"key": "team", "value": "shop"},
        ]
    )
    assert marker == {"from": "shop-api:3", "to": "shop-api:2", "at": "2025-01-31T14:03:07Z"}
    again = ecs.decide_rollback("shop-api:2", marker=marker, active_revisions=[1, 2, 3])
    assert again["changed"] is False
    assert "already rolled back from shop-api:3 to shop-api:2" in again["reason"]


def test_marker_of_an_older_rollback_does_not_block_a_new_one():
    marker = {"from": "shop-api:3", "to": "shop-api:2", "at": None}
    decision = ecs.decide_rollback("shop-api:5", marker=marker, active_revisions=[1, 2, 3, 4, 5])
    assert decision["changed"] and decision["target"] == "shop-api:4"


def test_rollback_from_overrides_the_marker():
    marker = {"from": "shop-api:3", "to": "shop-api:2", "at": None}
    decision = ecs.decide_rollback("shop-api:2", marker=marker, rollback_from="shop-api:2", active_revisions=[1, 2, 3])
    assert decision["changed"] and decision["target"] == "shop-api:1"


def test_read_marker_without_the_to_tag_is_none():
    assert ecs.read_marker([]) is None
    assert ecs.read_marker(None) is None
    assert ecs.read_marker({ecs.TAG_FROM: "shop-api:3"}) is None


# -- explicit target validation ---------------------------------------------------------------------


def _td(family="shop-api", revision=2, status="ACTIVE"):
    return {
        "family": family,
        "revision": revision,
        "status": status,
        "taskDefinitionArn": ARN.format(f"{family}:{revision}"),
    }


def test_validate_target_accepts_an_active_revision_of_the_family():
    assert ecs.validate_target("2", _td(), "shop-api", False) == "shop-api:2"


def test_validate_target_missing_names_the_value():
    with pytest.raises(ecs.ECSInputError, match=r"task definition 'shop-api:99' does not exist"):
        ecs.validate_target("shop-api:99", None, "shop-api", False)


def test_validate_target_inactive_names_the_value():
    with pytest.raises(ecs.ECSInputError, match=r"'shop-api:1' is INACTIVE"):
        ecs.validate_target("shop-api:1", _td(revision=1, status="INACTIVE"), "shop-api", False)


def test_validate_target_other_family_needs_allow_other_family():
    with pytest.raises(ecs.ECSInputError, match=r"'other:1' is of family 'other'.*allow_other_family"):
        ecs.validate_target("other:1", _td(family="other", revision=1), "shop-api", False)
    assert ecs.validate_target("other:1", _td(family="other", revision=1), "shop-api", True) == "other:1"


# -- stability and waiting ------------------------------------------------------------------------


def _service(td="shop-api:2", running=2, desired=2, deployments=None, status="ACTIVE"):
    if deployments is None:
        deployments = [{"id": "d1", "status": "PRIMARY", "rolloutState": "COMPLETED"}]
    return {
        "serviceName": "shop-api",
        "serviceArn": "arn:aws:ecs:us-east-1:123456789012:service/shop/shop-api",
        "status": status,
        "taskDefinition": td,
        "runningCount": running,
        "desiredCount": desired,
        "deployments": deployments,
    }


def test_stable_compares_normalized_task_definitions():
    assert ecs.stability(_service(td="shop-api:2"), "shop-api:2")[0] == "stable"
    assert ecs.stability(_service(td=ARN.format("shop-api:2")), "shop-api:2")[0] == "stable"
    assert ecs.stability(_service(td=ARN.format("shop-api:3")), "shop-api:2")[0] == "waiting"


def test_not_stable_until_all_tasks_run():
    verdict, why = ecs.stability(_service(running=1), "shop-api:2")
    assert verdict == "waiting" and "runningCount 1 != desiredCount 2" in why


def test_two_deployments_wait_unless_primary_completed():
    rolling = [
        {"id": "new", "status": "PRIMARY", "rolloutState": "IN_PROGRESS"},
        {"id": "old", "status": "ACTIVE", "rolloutState": "COMPLETED"},
    ]
    assert ecs.stability(_service(deployments=rolling), "shop-api:2")[0] == "waiting"
    rolling[0]["rolloutState"] = "COMPLETED"
    assert ecs.stability(_service(deployments=rolling), "shop-api:2")[0] == "stable"
    # one PRIMARY deployment without rolloutState (no circuit breaker data): stable
    assert ecs.stability(_service(deployments=[{"id": "x", "status": "PRIMARY"}]), "shop-api:2")[0] == "stable"


def test_failed_rollout_is_reported_as_failed():
    failed = [{"id": "new", "status": "PRIMARY", "rolloutState": "FAILED", "rolloutStateReason": "circuit breaker"}]
    verdict, why = ecs.stability(_service(deployments=failed), "shop-api:2")
    assert verdict == "failed" and "circuit breaker" in why


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class FakeECS:
    """Answers describe_services from a script of services; records every call."""

    def __init__(self, script, tags=None):
        self.script = list(script)
        self.calls = []
        self.tags = tags or []

    def describe_services(self, **kwargs):
        self.calls.append(("describe_services", kwargs))
        service = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return {"services": [dict(service, tags=self.tags)], "failures": []}

    def __getattr__(self, name):
        if name.startswith("answer_"):
            raise AttributeError(f"FakeECS has no answer for {name[7:]}")

        def call(**kwargs):
            self.calls.append((name, kwargs))
            return getattr(self, f"answer_{name}")(**kwargs)

        return call


def test_wait_for_stable_polls_until_stable():
    clock = FakeClock()
    client = FakeECS([_service(td="shop-api:3"), _service(running=1), _service()])
    found = ecs.wait_for_stable(
        client, "shop", "shop-api", "shop-api:2", 60, delay=5, sleep=clock.sleep, clock=clock.clock
    )
    assert found["taskDefinition"] == "shop-api:2"
    assert clock.sleeps == [5, 5]


def test_wait_for_stable_times_out_with_the_current_state():
    clock = FakeClock()
    client = FakeECS([_service(running=1)])
    with pytest.raises(ecs.ECSWaitTimeout) as err:
        ecs.wait_for_stable(client, "shop", "shop-api", "shop-api:2", 12, delay=5, sleep=clock.sleep, clock=clock.clock)
    message = str(err.value)
    assert "timed out after 12s" in message and "running=1" in message and "desired=2" in message
    assert clock.sleeps == [5, 5, 2]


def test_wait_for_stable_stops_on_a_failed_rollout():
    failed = [{"id": "n", "status": "PRIMARY", "rolloutState": "FAILED", "rolloutStateReason": "tasks failed"}]
    client = FakeECS([_service(deployments=failed)])
    with pytest.raises(ecs.ECSDeploymentFailed, match="tasks failed"):
        ecs.wait_for_stable(client, "shop", "shop-api", "shop-api:2", 60, sleep=lambda s: None)


# -- target health --------------------------------------------------------------------------------


def test_summarize_target_health_counts_states():
    descriptions = [
        {"Target": {"Id": "10.0.1.10", "Port": 8000}, "TargetHealth": {"State": "healthy"}},
        {
            "Target": {"Id": "10.0.2.10", "Port": 8000},
            "TargetHealth": {"State": "unhealthy", "Reason": "Target.Timeout"},
        },
        {"Target": {"Id": "10.0.2.11", "Port": 8000}, "TargetHealth": {"State": "initial"}},
    ]
    summary = ecs.summarize_target_health("tg-arn", descriptions)
    assert summary["healthy"] == 1 and summary["unhealthy"] == 1 and summary["total"] == 3
    assert summary["states"] == {"healthy": 1, "unhealthy": 1, "initial": 1}
    assert summary["targets"][1]["reason"] == "Target.Timeout"


def test_target_group_arns_deduplicates_and_skips_classic_elbs():
    service = {"loadBalancers": [{"targetGroupArn": "a"}, {"loadBalancerName": "classic"}, {"targetGroupArn": "a"}]}
    assert ecs.target_group_arns(service) == ["a"]


# -- the module run() against a fake client: check mode makes no mutating call -----------------------


class FakeModule:
    def __init__(self, check_mode=False, diff=False, **params):
        self.params = {spec: value.get("default") for spec, value in ecs_service_rollback.ARGUMENT_SPEC.items()}
        self.params.update(params)
        self.check_mode = check_mode
        self._diff = diff
        self.warnings = []
        self.clients = {}

    def client(self, service, **kwargs):
        return self.clients[service]

    def warn(self, msg):
        self.warnings.append(msg)


class FakeELB:
    def describe_target_health(self, TargetGroupArn):
        return {"TargetHealthDescriptions": [{"Target": {"Id": "10.0.1.10"}, "TargetHealth": {"State": "healthy"}}]}


def _fake_clients(module, service):
    client = FakeECS([service])
    client.answer_list_task_definitions = lambda **kw: {
        "taskDefinitionArns": [ARN.format(f"shop-api:{r}") for r in (3, 1, 2)]
    }
    client.answer_update_service = lambda **kw: {"service": dict(service, taskDefinition=kw["taskDefinition"])}
    client.answer_tag_resource = lambda **kw: {}
    client.answer_untag_resource = lambda **kw: {}
    module.clients = {"ecs": client, "elbv2": FakeELB()}
    return client


MUTATING = {"update_service", "tag_resource", "untag_resource"}


def test_check_mode_reports_the_target_and_makes_no_mutating_call():
    service = dict(_service(td=ARN.format("shop-api:3")), loadBalancers=[{"targetGroupArn": "tg"}])
    module = FakeModule(check_mode=True, diff=True, cluster="shop", service="shop-api")
    client = _fake_clients(module, service)
    result = ecs_service_rollback.run(module)
    assert result["changed"] is True
    assert result["target_task_definition"] == ARN.format("shop-api:2")
    assert result["diff"] == {"before": {"task_definition": "shop-api:3"}, "after": {"task_definition": "shop-api:2"}}
    assert result["before"]["task_definition"] == "shop-api:3" and result["after"]["task_definition"] == "shop-api:2"
    assert not MUTATING & {name for name, _ in client.calls}, client.calls


def test_apply_tags_before_updating_and_passes_the_target_arn():
    service = _service(td=ARN.format("shop-api:3"))
    module = FakeModule(cluster="shop", service="shop-api", wait=False)
    client = _fake_clients(module, service)
    result = ecs_service_rollback.run(module)
    names = [name for name, _ in client.calls]
    assert names.index("tag_resource") < names.index("update_service")
    update = dict(client.calls)["update_service"]
    assert update["taskDefinition"] == ARN.format("shop-api:2") and update["forceNewDeployment"] is False
    tags = {t["key"]: t["value"] for t in dict(client.calls)["tag_resource"]["tags"]}
    assert tags[ecs.TAG_FROM] == "shop-api:3" and tags[ecs.TAG_TO] == "shop-api:2"
    assert result["changed"] and result["rollback"]["recorded"] is True


def test_malformed_input_fails_before_any_call():
    module = FakeModule(cluster="shop", service="shop-api", task_definition="arn:aws:ecs:bogus")
    client = _fake_clients(module, _service())
    with pytest.raises(ecs.ECSInputError, match=r"task_definition: malformed task definition 'arn:aws:ecs:bogus'"):
        ecs_service_rollback.run(module)
    assert client.calls == []


# -- module documentation mirrors the argument spec -------------------------------------------------


def _doc(module) -> dict:
    return yaml.safe_load(module.DOCUMENTATION)


@pytest.mark.parametrize("module", [ecs_service_rollback, ecs_service_status_info], ids=lambda m: m.__name__)
def test_argument_spec_matches_documentation(module):
    options = dict(_doc(module)["options"])
    for fragment in _doc(module)["extends_documentation_fragment"]:
        if fragment == "firebreak.runbooks.step" or fragment.startswith("firebreak.runbooks.step."):
            text = getattr(
                step_fragment.ModuleDocFragment, fragment.rpartition("step")[2].lstrip(".") or "DOCUMENTATION"
            )
            options.update(yaml.safe_load(text).get("options") or {})
    spec = module.ARGUMENT_SPEC
    assert set(options) == set(spec)
    for name, doc in options.items():
        arg = spec[name]
        for key in ("type", "default", "choices", "elements"):
            assert doc.get(key) == arg.get(key), f"{name}.{key}: docs {doc.get(key)!r} != spec {arg.get(key)!r}"
        assert bool(doc.get("required", False)) == bool(arg.get("required", False)), name
        assert doc.get("description"), f"{name} has no description"


@pytest.mark.parametrize("module", [ecs_service_rollback, ecs_service_status_info], ids=lambda m: m.__name__)
def test_documentation_header(module):
    doc = _doc(module)
    assert doc["module"] == module.__name__.rsplit(".", 1)[-1]
    assert doc["version_added"] == "0.1.0"
    assert doc["author"] == "firebreak.runbooks maintainers (@firebreak)"
    assert doc["extends_documentation_fragment"][:4] == [
        "amazon.aws.common.modules",
        "amazon.aws.region.modules",
        "amazon.aws.boto3",
        "firebreak.runbooks.step",
    ]
    fragments = doc["extends_documentation_fragment"]
    assert any(f.startswith("firebreak.runbooks.step.ATTRIBUTES") for f in fragments) or "attributes" in doc
    returned = yaml.safe_load(module.RETURN)
    for key, value in returned.items():
        assert {"description", "returned", "type"} <= set(value), key


def test_rollback_return_docs_cover_every_returned_key():
    service = dict(_service(td=ARN.format("shop-api:3")), loadBalancers=[{"targetGroupArn": "tg"}])
    module = FakeModule(diff=True, cluster="shop", service="shop-api", wait=False)
    _fake_clients(module, service)
    result = ecs_service_rollback.run(module)
    documented = set(yaml.safe_load(ecs_service_rollback.RETURN))
    assert set(result) - {"changed"} <= documented, set(result) - documented


def test_wait_timeout_after_the_update_reports_the_change_with_the_failure():
    service = _service(td=ARN.format("shop-api:3"))
    module = FakeModule(cluster="shop", service="shop-api", wait_timeout=0)
    client = _fake_clients(module, service)
    # read, read again under the rollback lock, then after the update: never stable
    client.script = [service, service, _service(td="shop-api:2", running=1)]
    with pytest.raises(ecs.ECSWaitTimeout) as err:
        ecs_service_rollback.run(module)
    assert "running=1" in err.value.message and "desired=2" in err.value.message
    assert err.value.kwargs["changed"] is True
    assert err.value.kwargs["before"]["task_definition"] == "shop-api:3"
    assert err.value.kwargs["after"]["task_definition"] == "shop-api:2"


def test_a_rollback_that_cannot_be_tagged_still_happens_with_a_warning():
    from botocore.exceptions import ClientError

    def denied(**kwargs):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "TagResource")

    service = _service(td=ARN.format("shop-api:3"))
    module = FakeModule(cluster="shop", service="shop-api", wait=False)
    client = _fake_clients(module, service)
    client.answer_tag_resource = denied
    result = ecs_service_rollback.run(module)
    assert "update_service" in [name for name, _ in client.calls]
    assert result["changed"] and result["rollback"]["recorded"] is False
    assert module.warnings and "would roll back further" in module.warnings[-1]
    assert "could not record the pending rollback" in module.warnings[0]


# -- the symptom a rollback exists for ---------------------------------------------------------------------------

TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-api-tg/0123"


def _summary(running=2, desired=2, revision="shop-api:4", rollout="COMPLETED", failed=0, older=None):
    deployments = [
        {
            "id": "ecs-svc/2",
            "status": "PRIMARY",
            "task_definition": ARN.format(revision),
            "desired_count": desired,
            "running_count": running,
            "failed_tasks": failed,
            "rollout_state": rollout,
            "created_at": "2026-12-06T10:00:00+00:00",
        }
    ]
    if older:
        deployments.append(dict(older, created_at="2026-12-06T09:00:00+00:00"))
    return {
        "service_name": "shop-api",
        "running_count": running,
        "desired_count": desired,
        "rollout_state": rollout,
        "rollout_state_reason": "ECS deployment circuit breaker: tasks failed to start."
        if rollout == "FAILED"
        else None,
        "deployments": deployments,
    }


def _health(healthy=2, unhealthy=0):
    return [{"target_group_arn": TG, "healthy": healthy, "unhealthy": unhealthy, "total": healthy + unhealthy}]


def test_a_bad_deploy_is_confirmed_naming_every_sign():
    verdict = ecs.decide_symptom(
        _summary(running=0, rollout="IN_PROGRESS", failed=6), _health(healthy=0, unhealthy=2), "shop-api:4"
    )
    assert verdict["confirmed"] and verdict["degraded"]
    assert verdict["signs"] == [
        "0 of 2 desired tasks running",
        "targetgroup/shop-api-tg/0123: 0 of 2 targets healthy, 2 unhealthy",
        "deployment ecs-svc/2 rollout stalled: IN_PROGRESS with 6 failed tasks",
    ]
    assert verdict["suspect"]["matches"] and verdict["suspect"]["failing"]


def test_a_failed_rollout_alone_confirms_it():
    verdict = ecs.decide_symptom(_summary(rollout="FAILED", failed=3), _health(), "shop-api:4")
    assert verdict["confirmed"]
    assert verdict["signs"] == [
        "deployment ecs-svc/2 rollout FAILED (ECS deployment circuit breaker: tasks failed to start.)"
    ]


def test_a_healthy_service_is_not_confirmed_and_says_what_it_saw():
    verdict = ecs.decide_symptom(_summary(), _health(), "shop-api:4")
    assert not verdict["confirmed"] and not verdict["degraded"] and verdict["signs"] == []
    assert verdict["saw"] == (
        "shop-api runs shop-api:4 with 2/2 tasks running, newest deployment ecs-svc/2 on shop-api:4 rollout "
        "COMPLETED with 0 failed tasks, targets targetgroup/shop-api-tg/0123 2/2 healthy"
    )


def test_a_degraded_service_whose_newest_deploy_completed_cleanly_is_not_the_deploys_fault():
    verdict = ecs.decide_symptom(_summary(), _health(healthy=1, unhealthy=1), "shop-api:4")
    assert verdict["degraded"] and not verdict["confirmed"]
    assert "the deploy is not the suspect" in verdict["saw"]


def test_a_newest_deployment_of_another_revision_is_not_the_suspect():
    verdict = ecs.decide_symptom(_summary(running=0, rollout="IN_PROGRESS", failed=2), _health(0, 2), "shop-api:3")
    assert verdict["degraded"] and not verdict["confirmed"] and not verdict["suspect"]["matches"]
    assert "does not run shop-api:3" in verdict["saw"]


def test_the_newest_deployment_is_the_latest_created_not_the_first_listed():
    older = {
        "id": "ecs-svc/1",
        "status": "ACTIVE",
        "task_definition": ARN.format("shop-api:3"),
        "rollout_state": "COMPLETED",
    }
    summary = _summary(running=1, rollout="IN_PROGRESS", failed=1, older=older)
    summary["deployments"].reverse()
    verdict = ecs.decide_symptom(summary, _health(1, 1), "shop-api:4")
    assert verdict["confirmed"] and verdict["suspect"]["deployment"] == "ecs-svc/2"


def test_the_module_validates_a_force_without_a_reason_before_any_call():
    params = {
        "wait_timeout": 1,
        "retry_budget": 1,
        "mitigation_deadline": None,
        "capture_revisions": 1,
        "task_definition": None,
        "rollback_from": None,
        "force": True,
        "force_reason": "  ",
    }
    with pytest.raises(ecs.ECSInputError, match="force=true needs a force_reason"):
        ecs_service_rollback.validate_params(params)


@pytest.mark.parametrize("option", ["cluster", "service"])
def test_the_module_refuses_an_empty_cluster_or_service_before_any_call(option):
    params = {
        "cluster": "shop",
        "service": "shop-api",
        "wait_timeout": 1,
        "retry_budget": 1,
        "mitigation_deadline": None,
        "capture_revisions": 1,
        "task_definition": None,
        "rollback_from": None,
        "force": False,
        "force_reason": None,
    }
    params[option] = "  "
    with pytest.raises(ecs.ECSInputError, match=f"{option} must name the ECS {option}, got '  '"):
        ecs_service_rollback.validate_params(params)


def test_a_refused_rollback_raises_with_the_symptom_and_a_forced_one_records_the_reason():
    observed = {"service": _summary(), "target_health": _health()}
    result = {"service": {"name": "shop-api"}}
    with pytest.raises(ecs.ECSSymptomAbsent, match="symptom not confirmed: the service is not down or degraded") as err:
        ecs_service_rollback.check_symptom({"force": False}, result, observed, "shop-api:4", checked=True)
    assert err.value.fail_result()["symptom"]["confirmed"] is False
    assert err.value.fail_result()["changed"] is False
    forced = {}
    ecs_service_rollback.check_symptom({"force": True, "force_reason": " why "}, forced, observed, "shop-api:4", True)
    assert forced["symptom"]["forced"] is True and forced["symptom"]["force_reason"] == "why"
    unchecked = {}
    ecs_service_rollback.check_symptom({"force": False}, unchecked, observed, "shop-api:4", checked=False)
    assert unchecked["symptom"]["checked"] is False  # a re-run that changes nothing is not refused
