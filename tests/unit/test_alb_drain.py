"""Target drain decisions without AWS."""

from __future__ import annotations

import sys

import pytest

from sandbox import REPO_ROOT
from tests.unit.fakes import Clock

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.aws import elbv2_drain as drain

CURRENT = [
    {"id": "10.0.1.10", "port": 80, "state": "healthy"},
    {"id": "10.0.1.10", "port": 81, "state": "healthy"},
    {"id": "10.0.2.10", "port": 80, "state": "unhealthy"},
    {"id": "i-1", "port": 8080, "state": "healthy", "availability_zone": "all"},
]
SUBNETS = [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")]


def test_a_request_without_port_matches_every_port_and_unknown_ones_are_reported():
    requested = drain.normalize_targets([{"id": "10.0.1.10"}, {"id": "10.0.2.10", "port": "81"}, "i-9"])
    selected, missing = drain.select_targets(CURRENT, requested)
    assert selected == [{"id": "10.0.1.10", "port": 80}, {"id": "10.0.1.10", "port": 81}]
    assert missing == [{"id": "10.0.2.10", "port": 81}, {"id": "i-9", "port": None}]


def test_zone_selection_uses_the_subnet_of_ip_targets():
    selected, _ = drain.select_targets(CURRENT, [], "us-east-1b", lambda t: drain.zone_of_ip(t["id"], SUBNETS))
    assert selected == [{"id": "10.0.2.10", "port": 80, "zone": "us-east-1b"}]
    assert drain.zone_of_ip("i-1", SUBNETS) is None and drain.zone_of_ip("192.168.0.1", SUBNETS) is None


def test_registered_skips_draining_and_unused():
    descriptions = [
        {"Target": {"Id": "a", "Port": 1}, "TargetHealth": {"State": "healthy"}},
        {"Target": {"Id": "b", "Port": 1}, "TargetHealth": {"State": "draining"}},
        {"Target": {"Id": "c", "Port": 1, "AvailabilityZone": "all"}, "TargetHealth": {"State": "unused"}},
    ]
    assert drain.registered(descriptions) == [{"id": "a", "port": 1, "state": "healthy"}]


def test_release_registers_only_what_is_not_registered_again():
    changed = {"deregistered": [{"id": "a", "port": 1}, {"id": "b", "port": 2}]}
    to_register, restored, left = drain.decide_release(changed, [{"id": "b", "port": 2, "state": "healthy"}])
    assert to_register == restored == [{"id": "a", "port": 1}]
    assert left == [{"id": "b", "port": 2, "reason": "registered again since the drain"}]


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ([{"port": 80}], "has no id"),
        ([{"id": "a", "port": "http"}], "port 'http' of 'a' is not a number"),
        ([{"id": "a", "port": 0}], "port 0 of 'a' is not between 1 and 65535"),
        ([42], "has no id"),
    ],
)
def test_bad_targets_are_named(targets, message):
    with pytest.raises(drain.DrainInputError, match=message):
        drain.normalize_targets(targets)


def test_target_group_and_zone_validation():
    assert drain.validate_target_group("shop-api-tg") == "shop-api-tg"
    with pytest.raises(drain.DrainInputError, match="'-bad' is neither"):
        drain.validate_target_group("-bad")
    assert drain.validate_zone("eu-central-1b") == "eu-central-1b"
    with pytest.raises(drain.DrainInputError, match="'us-east-1' is not an Availability Zone"):
        drain.validate_zone("us-east-1")


class FakeELB:
    """describe_target_health answering from a script of states (the last one repeats)."""

    def __init__(self, states):
        self.states = list(states)
        self.calls = 0

    def describe_target_health(self, **params):
        state = self.states[min(self.calls, len(self.states) - 1)]
        self.calls += 1
        return {"TargetHealthDescriptions": [{"Target": {"Id": "a", "Port": 1}, "TargetHealth": {"State": state}}]}


def _caller():
    from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime.step import Caller

    return Caller(5)


def test_wait_drained_polls_until_unused():
    clock, elb = Clock(), FakeELB(["draining", "draining", "unused"])
    pending = drain.wait_drained(elb, _caller(), "arn", [{"id": "a", "port": 1}], 60, sleep=clock.sleep, clock=clock)
    assert pending == [] and elb.calls == 3


def test_wait_drained_reports_what_still_drains_at_the_timeout():
    clock, elb = Clock(), FakeELB(["draining"])
    pending = drain.wait_drained(elb, _caller(), "arn", [{"id": "a", "port": 1}], 12, sleep=clock.sleep, clock=clock)
    assert pending == [{"id": "a", "port": 1, "state": "draining"}]
    assert clock.now >= 12
