"""Every scenario re-run with the same incident id after it converged: the re-run exits 0 and changes nothing in the
sandbox (AWS and Kubernetes compared before and after, with the scaling, Lambda and Kubernetes state the shared
snapshot leaves out), and release_containment released twice releases nothing the second time.

Which scenarios run (``FIREBREAK_PROOF_RERUN``): ``all``, or a comma list of names; by default a third of them,
rotating with the UTC day (``FIREBREAK_PROOF_RERUN_ROTATION=<n>`` replays a day's set), so every scenario runs within
three days and ``make proof`` stays inside CI's time (a full sweep is about 14 minutes on 2 workers)."""

from __future__ import annotations

import datetime
import json
import os
import urllib.request

import pytest

from sandbox.drills import available
from tests.integration.proof_faults.support import end_state, normalize
from tests.integration.snapshot import _safe

pytestmark = [pytest.mark.integration, pytest.mark.proof]

SCENARIOS = available()
SHARE = 3  # by default one scenario in SHARE runs, rotating by day


def chosen(spec: str | None = None, turn: int | None = None) -> list[str]:
    """The scenarios ``FIREBREAK_PROOF_RERUN`` (``spec``) names; an unknown name is an error naming it."""
    names = sorted(SCENARIOS)
    spec = os.environ.get("FIREBREAK_PROOF_RERUN", "").strip() if spec is None else spec.strip()
    if spec == "all":
        return names
    if spec:
        picked = [part.strip() for part in spec.split(",") if part.strip()]
        unknown = [name for name in picked if name not in names]
        if unknown:
            bad = ", ".join(map(repr, unknown))
            raise ValueError(f"FIREBREAK_PROOF_RERUN: {bad} not a scenario ({', '.join(names)})")
        return picked
    if turn is None:
        replay = os.environ.get("FIREBREAK_PROOF_RERUN_ROTATION", "").strip()
        turn = int(replay) if replay else datetime.datetime.now(datetime.timezone.utc).date().toordinal()
    return [name for index, name in enumerate(names) if index % SHARE == turn % SHARE]


RELEASE = "playbooks/release_containment.yml"
APPROVED = {"firebreak_gate_approvals": {"release-containment": "yes"}, "incident_gate_allow_unpinned": True}


def _kube(box, path: str) -> list[dict]:
    with urllib.request.urlopen(box.kube_url + path, timeout=10) as resp:
        return json.loads(resp.read())["items"]


def _kubernetes(box) -> dict:
    """Workloads (spec and annotations), nodes (cordon), NetworkPolicies and ConfigMaps."""
    if not box.kube_url:
        return {}
    out = {}
    for kind in ("deployments", "statefulsets", "daemonsets"):
        for obj in _kube(box, f"/apis/apps/v1/{kind}"):
            meta = obj["metadata"]
            out[f"{kind}/{meta['namespace']}/{meta['name']}"] = (obj["spec"], meta.get("annotations"))
    for node in _kube(box, "/api/v1/nodes"):
        out[f"node/{node['metadata']['name']}"] = (node["spec"].get("unschedulable"), node["spec"].get("taints"))
    for pol in _kube(box, "/apis/networking.k8s.io/v1/networkpolicies"):
        out[f"networkpolicy/{pol['metadata']['namespace']}/{pol['metadata']['name']}"] = pol["spec"]
    for cm in _kube(box, "/api/v1/configmaps"):
        out[f"configmap/{cm['metadata']['namespace']}/{cm['metadata']['name']}"] = cm.get("data")
    return out


def _autoscaling(box) -> dict:
    groups = box.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    return {g["AutoScalingGroupName"]: (g["MinSize"], g["DesiredCapacity"], g["MaxSize"]) for g in groups}


def _lambda(box) -> dict:
    client = box.client("lambda")
    out = {}
    for fn in client.list_functions()["Functions"]:
        name = fn["FunctionName"]
        aliases = _safe(lambda n=name: client.list_aliases(FunctionName=n)["Aliases"])
        out[name] = {
            "aliases": sorted((a["Name"], a["FunctionVersion"]) for a in aliases)
            if isinstance(aliases, list)
            else aliases,
            "concurrency": _safe(
                lambda n=name: client.get_function_concurrency(FunctionName=n).get("ReservedConcurrentExecutions")
            ),
        }
    return out


def _ecs_tags(box) -> dict:
    ecs = box.client("ecs")
    out = {}
    for cluster in ecs.list_clusters()["clusterArns"]:
        arns = ecs.list_services(cluster=cluster)["serviceArns"]
        for svc in ecs.describe_services(cluster=cluster, services=arns, include=["TAGS"])["services"] if arns else []:
            out[svc["serviceName"]] = sorted((t["key"], t["value"]) for t in svc.get("tags") or [])
    return out


def state(box) -> dict:
    found = end_state(box)
    for area, read in (
        ("kubernetes+", _kubernetes),
        ("autoscaling", _autoscaling),
        ("lambda", _lambda),
        ("ecs_tags", _ecs_tags),
    ):
        found[area] = normalize(_safe(lambda r=read: r(box)))
    return found


def changed(before: dict, after: dict) -> list[str]:
    return [
        f"{area}: {before.get(area)!r}\n  -> {after.get(area)!r}"
        for area in sorted(set(before) | set(after))
        if before.get(area) != after.get(area)
    ]


def extra_vars(context: dict) -> dict:
    return {key: value for key, value in context.items() if not key.startswith("_")}


def test_the_default_rotation_covers_every_scenario_within_three_days_and_names_a_bad_value():
    days = [set(chosen("", turn)) for turn in range(SHARE)]
    assert set().union(*days) == set(SCENARIOS)
    assert all(days), days
    assert chosen("all") == sorted(SCENARIOS)
    with pytest.raises(ValueError, match="'nope'"):
        chosen("service_down,nope")


@pytest.mark.parametrize("name", chosen())
def test_a_rerun_of_the_same_incident_after_it_converged_changes_nothing_and_succeeds(name, aws, kube, run_playbook):
    drill = SCENARIOS[name]
    context = drill.inject(aws)
    first = run_playbook(drill.PLAYBOOK, extra_vars=extra_vars(context))
    assert first.returncode == 0, first.output[-4000:]
    drill.verify(aws, context)
    before = state(aws)
    again = run_playbook(drill.PLAYBOOK, extra_vars=extra_vars(context))
    assert again.returncode == 0, again.output[-4000:]
    assert changed(before, state(aws)) == []
    drill.verify(aws, context)


def test_release_containment_released_twice_releases_nothing_the_second_time(aws, kube, run_playbook):
    drill = SCENARIOS["auth_attack"]
    context = drill.inject(aws)
    before = state(aws)
    contained = run_playbook(drill.PLAYBOOK, extra_vars=extra_vars(context))
    assert contained.returncode == 0, contained.output[-4000:]
    held = state(aws)
    assert changed(before, held), "the scenario contained nothing to release"
    first = run_playbook(RELEASE, extra_vars=APPROVED)
    assert first.returncode == 0, first.output[-4000:]
    released = state(aws)
    assert released != held
    again = run_playbook(RELEASE, extra_vars=APPROVED)
    assert again.returncode == 0, again.output[-4000:]
    assert changed(released, state(aws)) == []
