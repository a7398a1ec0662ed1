"""k8s_node_drain: which pods a drain evicts, leaves or refuses, the cordon's record on the node and its release
(module_utils/k8s/drain.py), without a cluster."""

from __future__ import annotations

import sys

import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s import drain
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.common import K8sInputError


def pod(name, owner="ReplicaSet", phase="Running", annotations=None, volumes=None, namespace="shop"):
    meta = {"name": name, "namespace": namespace, "uid": f"uid-{name}"}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": f"{name}-owner", "controller": True}]
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"volumes": volumes or []}, "status": {"phase": phase}}


def node(unschedulable=False, annotations=None):
    meta = {"name": "n1", "resourceVersion": "41", "annotations": annotations or {}}
    return {"metadata": meta, "spec": {"unschedulable": True} if unschedulable else {}, "status": {}}


def test_daemonset_and_mirror_pods_are_left_and_workload_pods_evicted():
    plan = drain.classify(
        [
            pod("front-1"),
            pod("fluentd-x", owner="DaemonSet", namespace="kube-system"),
            pod("proxy", owner="Node", annotations={drain.MIRROR: "abc"}),
            pod("job-1", owner="Job", phase="Succeeded"),
            pod("web-0", owner="StatefulSet"),
        ]
    )
    assert [drain.pod_key(p) for p in plan["evict"]] == ["shop/front-1", "shop/job-1", "shop/web-0"]
    assert set(plan["skipped"]) == {"kube-system/fluentd-x", "shop/proxy"}
    assert "DaemonSet" in plan["skipped"]["kube-system/fluentd-x"] and "mirror" in plan["skipped"]["shop/proxy"]
    assert plan["refused"] == {}


def test_emptydir_and_bare_pods_are_refused_unless_allowed():
    pods = [pod("cache-1", volumes=[{"name": "scratch", "emptyDir": {}}]), pod("bare", owner=None)]
    plan = drain.classify(pods)
    assert plan["evict"] == []
    assert "emptyDir data in scratch" in plan["refused"]["shop/cache-1"]
    assert "no controller will recreate it" in plan["refused"]["shop/bare"]
    assert list(drain.classify(pods, delete_emptydir_data=True)["refused"]) == ["shop/bare"]
    allowed = drain.classify(pods, delete_emptydir_data=True, force=True)
    assert allowed["refused"] == {} and len(allowed["evict"]) == 2
    # a finished bare pod loses nothing: deleted without asking
    assert drain.classify([pod("done", owner=None, phase="Failed")])["refused"] == {}


def test_a_schedulable_node_is_cordoned_as_the_incidents_with_its_resource_version():
    patch = drain.cordon_patch(node(), "INC-1")
    assert patch == {
        "metadata": {
            "annotations": {drain.CORDONED_BY: "INC-1", drain.HELD_BY: "INC-1"},
            "resourceVersion": "41",
        },
        "spec": {"unschedulable": True},
    }


def test_a_firebreak_cordon_is_held_by_one_more_incident_and_a_hand_made_one_is_left():
    ours = node(True, {drain.CORDONED_BY: "INC-1", drain.HELD_BY: "INC-1"})
    assert drain.cordon_patch(ours, "INC-2")["metadata"]["annotations"] == {drain.HELD_BY: "INC-1,INC-2"}
    assert drain.cordon_patch(ours, "INC-1") is None, "a re-run changes nothing"
    assert drain.cordon_patch(node(True), "INC-1") is None, "a cordon made by hand is not claimed"


@pytest.mark.parametrize(
    ("found", "incident", "outcome", "patch"),
    [
        (
            node(True, {drain.CORDONED_BY: "INC-1", drain.HELD_BY: "INC-1"}),
            "INC-1",
            "uncordoned",
            {"metadata": {"annotations": {drain.CORDONED_BY: None, drain.HELD_BY: None}, "resourceVersion": "41"},
             "spec": {"unschedulable": None}},
        ),
        (
            node(True, {drain.CORDONED_BY: "INC-1", drain.HELD_BY: "INC-1,INC-2"}),
            "INC-1",
            "kept",
            {"metadata": {"annotations": {drain.HELD_BY: "INC-2"}, "resourceVersion": "41"}},
        ),
        (node(True, {drain.CORDONED_BY: "INC-1", drain.HELD_BY: "INC-2"}), "INC-1", "kept", None),
        (node(True), "INC-1", "cordoned_by_others", None),
        (
            node(False, {drain.CORDONED_BY: "INC-1", drain.HELD_BY: "INC-1"}),
            "INC-1",
            "already_uncordoned",
            {"metadata": {"annotations": {drain.CORDONED_BY: None, drain.HELD_BY: None}, "resourceVersion": "41"}},
        ),
        (node(False), "INC-1", "already_uncordoned", None),
    ],
)  # fmt: skip
def test_release_uncordons_only_a_firebreak_cordon_no_one_else_holds(found, incident, outcome, patch):
    assert drain.release_patch(found, incident) == (patch, outcome)


def test_the_budget_is_read_from_the_eviction_answer():
    message = "The disruption budget front-pdb needs 2 healthy pods and has 2 currently"
    details = {"causes": [{"reason": "DisruptionBudget", "message": message}]}
    assert drain.blocking_budget(details) == "front-pdb"
    assert drain.budget_reason(details).startswith("The disruption budget front-pdb needs 2")
    assert drain.blocking_budget(None, "The disruption budget api is still being processed by the server.") == "api"
    assert drain.blocking_budget({}, "Too many requests") is None


@pytest.mark.parametrize("bad", ["Node_1", "", None, "a" * 254])
def test_bad_node_names_are_refused_naming_the_value(bad):
    with pytest.raises(K8sInputError, match=r"node: .* is not a node name"):
        drain.check_node(bad)


@pytest.mark.parametrize("bad", ["", "INC-1,INC-2", "INC\n1"])
def test_incident_ids_that_cannot_hold_a_cordon_are_refused(bad):
    with pytest.raises(K8sInputError, match="cannot hold a cordon"):
        drain.check_incident(bad)


def test_the_argument_spec_is_what_the_documentation_says():
    import yaml
    from ansible_collections.firebreak.runbooks.plugins.doc_fragments import step as step_fragment
    from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.common import AUTH_ARG_SPEC
    from ansible_collections.firebreak.runbooks.plugins.modules import k8s_node_drain

    doc = yaml.safe_load(k8s_node_drain.DOCUMENTATION)
    options = {}
    for fragment in doc["extends_documentation_fragment"]:
        if fragment.startswith("firebreak.runbooks.step."):
            text = getattr(step_fragment.ModuleDocFragment, fragment.rpartition(".")[2])
            options.update(yaml.safe_load(text).get("options") or {})
    options.update(doc["options"])  # the module's own state (drained, cordoned, released) over the fragment's
    spec = {k: v for k, v in k8s_node_drain.ARGUMENT_SPEC.items() if k not in AUTH_ARG_SPEC}
    assert set(options) == set(spec)
    for name, documented in options.items():
        for key in ("type", "default", "choices", "elements"):
            assert documented.get(key) == spec[name].get(key), f"{name}.{key}"


class FakeKube:
    """Pods on one node; evictions answer 429 from a budget ``blocked_for`` times per pod, then succeed."""

    def __init__(self, pods, blocked_for=0):
        from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.common import K8sStepError

        self.error = K8sStepError
        self.node_obj = node()
        self.pods = {drain.pod_key(p): p for p in pods}
        self.blocked_for = blocked_for
        self.tries = {}
        self.patches = []

    def get(self, kind, namespace, name, missing_ok=False):
        if kind == "Node":
            return self.node_obj
        return self.pods.get(f"{namespace}/{name}")

    def list(self, kind, namespace=None, field_selector=None, **_):
        return list(self.pods.values())

    def patch(self, kind, namespace, name, body, content_type=None):
        self.patches.append(body)
        meta = self.node_obj["metadata"]
        meta["annotations"].update({k: v for k, v in body["metadata"]["annotations"].items() if v is not None})
        self.node_obj["spec"].update(body.get("spec") or {})
        return self.node_obj

    def request(self, verb, kind, namespace=None, name=None, **kwargs):
        key = f"{namespace}/{name}"
        self.tries[key] = self.tries.get(key, 0) + 1
        if self.tries[key] <= self.blocked_for:
            message = "The disruption budget front-pdb needs 2 healthy pods and has 2 currently"
            details = {"causes": [{"reason": "DisruptionBudget", "message": message}]}
            raise self.error("POST failed: 429", status=429, reason="TooManyRequests", verb="POST", details=details)
        self.pods.pop(key)
        return {"status": "Success"}


class FakeModule:
    check_mode = False
    _diff = False

    def __init__(self, **params):
        self.params = {
            "node": "n1",
            "state": "drained",
            "delete_emptydir_data": False,
            "force": False,
            "wait_timeout": 10,
            "poll_interval": 1.0,
            "containments": [],
            "incident_id": "INC-1",
            **params,
        }


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_evictions_a_budget_refuses_are_retried_until_it_allows_them():
    from ansible_collections.firebreak.runbooks.plugins.modules.k8s_node_drain import Drain

    kube, clock = FakeKube([pod("front-1"), pod("front-2")], blocked_for=2), Clock()
    result = Drain(FakeModule(), kube, sleep=clock.sleep, clock=clock).drained()
    assert result["evicted"] == ["shop/front-1", "shop/front-2"] and result["remaining"] == []
    assert kube.tries == {"shop/front-1": 3, "shop/front-2": 3} and clock.now == 2.0
    assert result["containment"][0]["changed"]["evicted"] == ["shop/front-1", "shop/front-2"]


def test_a_budget_that_never_allows_fails_within_the_timeout_naming_pod_and_budget():
    from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.common import K8sStepError
    from ansible_collections.firebreak.runbooks.plugins.modules.k8s_node_drain import Drain

    kube, clock = FakeKube([pod("front-1")], blocked_for=10**6), Clock()
    with pytest.raises(K8sStepError) as failed:
        Drain(FakeModule(wait_timeout=5), kube, sleep=clock.sleep, clock=clock).drained()
    assert clock.now == 5.0, "bounded by wait_timeout"
    assert "pod shop/front-1 (PodDisruptionBudget shop/front-pdb: The disruption budget front-pdb needs 2" in str(
        failed.value
    )
    result = failed.value.fail_result()
    assert result["k8s_status"] == 429 and result["blocked"] == {"shop/front-1": "shop/front-pdb"}
    assert result["containment"][0]["changed"]["cordoned"] is True, "the cordon is recorded for the release"


def test_a_refusal_of_unready_pods_says_how_a_budget_lets_them_go():
    from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.common import K8sStepError
    from ansible_collections.firebreak.runbooks.plugins.modules.k8s_node_drain import Drain

    unready = pod("front-1")
    unready["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    kube, clock = FakeKube([unready], blocked_for=10**6), Clock()
    with pytest.raises(K8sStepError, match=r"shop/front-1 are not Ready .*unhealthyPodEvictionPolicy AlwaysAllow"):
        Drain(FakeModule(wait_timeout=1), kube, sleep=clock.sleep, clock=clock).drained()
