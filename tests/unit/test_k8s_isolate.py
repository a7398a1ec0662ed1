"""Namespace isolation without a cluster: derived names, LabelSelector checks, the policies that would defeat the
deny, the release plan, and a set-aside that survives a failure part way (issue 21 findings 2 to 5)."""

from __future__ import annotations

import copy
import re
import sys
from types import SimpleNamespace

import pytest

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s import isolate as iso
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s.common import K8sInputError, K8sStepError
from ansible_collections.firebreak.runbooks.plugins.modules import k8s_namespace_isolate as module

DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


# -- names --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ids",
    [("X-Case", "X-CASE"), ("INC/1", "INC-1"), ("inc 1", "inc_1"), ("a" * 80 + "1", "a" * 80 + "2")],
)
def test_incident_ids_that_fold_alike_get_their_own_policy_names(ids):
    names = [iso.policy_name(i) for i in ids]
    assert names[0] != names[1]
    for name in names:
        assert len(name) <= 63 and DNS_1123.match(name), name
    assert iso.legacy_policy_name(ids[0]) == iso.legacy_policy_name(ids[1]) or len(ids[0]) > 60


def test_policy_name_keeps_the_folded_id_readable():
    assert iso.policy_name("INC-2041") == "firebreak-isolate-inc-2041-486c629e"
    assert iso.policy_name("事件").startswith("firebreak-isolate-") and DNS_1123.match(iso.policy_name("事件"))


@pytest.mark.parametrize("value", ["", "   ", "---", "a\nb", "x" * 254, None])
def test_incident_ids_that_cannot_name_an_isolation_are_refused_naming_them(value):
    with pytest.raises(K8sInputError, match=re.escape(repr(value)[:40])):
        iso.check_incident_id(value)


@pytest.mark.parametrize("value", ["Shop", "shop_1", "-shop", "a" * 64, ""])
def test_bad_namespace_names_are_refused_naming_them(value):
    with pytest.raises(K8sInputError, match=re.escape(f"responder_namespaces: {value!r}")):
        iso.check_namespace(value, "responder_namespaces")


# -- label selectors (finding 5) -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "selector",
    [
        {},
        {"matchLabels": {"app": "front", "example.com/tier": "web", "empty": ""}},
        {"matchExpressions": [{"key": "app", "operator": "In", "values": ["front", "api"]}]},
        {"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}, {"key": "app", "operator": "Exists"}]},
    ],
)
def test_label_selectors_pass(selector):
    assert iso.check_label_selector(selector) == selector


@pytest.mark.parametrize(
    "selector, named",
    [
        ({"app": "front"}, "key 'app'"),
        ("app=front", "value 'app=front'"),
        ({"matchLabels": {"app": "front"}, "matchlabels": {}}, "key 'matchlabels'"),
        ({"matchLabels": ["app=front"]}, "matchLabels ['app=front']"),
        ({"matchLabels": {"app": 2}}, "matchLabels[app] value 2"),
        ({"matchLabels": {"app": "front end"}}, "'front end'"),
        ({"matchLabels": {"bad key!": "x"}}, "'bad key!'"),
        ({"matchLabels": {"Example.com/x": "y"}}, "'Example.com/x'"),
        ({"matchExpressions": {"key": "app"}}, "matchExpressions {'key': 'app'}"),
        ({"matchExpressions": [{"key": "app", "operator": "in", "values": ["x"]}]}, "operator 'in'"),
        ({"matchExpressions": [{"key": "app", "operator": "In"}]}, "values None"),
        ({"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]}, "values ['x']"),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": "x"}]}, "values 'x'"),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["x"], "value": 1}]}, "field 'value'"),
        ({"matchExpressions": [{"operator": "Exists"}]}, "key None"),
    ],
)
def test_what_is_not_a_label_selector_is_refused_naming_the_value(selector, named):
    with pytest.raises(K8sInputError, match=re.escape(named)) as err:
        iso.check_label_selector(selector, "pod_selector")
    assert err.value.message.startswith("pod_selector: ") and "nothing changed" in err.value.message


def labels(**kv):
    return {"matchLabels": kv}


def expr(key, operator, *values):
    return {"matchExpressions": [{"key": key, "operator": operator, **({"values": list(values)} if values else {})}]}


@pytest.mark.parametrize(
    "a, b, overlap",
    [
        ({}, labels(app="api"), True),
        (labels(app="front"), labels(app="api"), False),
        (labels(app="front"), labels(tier="web"), True),
        (labels(app="front"), expr("app", "NotIn", "front"), False),
        (expr("app", "In", "a", "b"), labels(app="b"), True),
        (expr("app", "Exists"), expr("app", "DoesNotExist"), False),
        (labels(app="x"), expr("app", "DoesNotExist"), False),
    ],
)
def test_selectors_overlap_unless_they_provably_exclude_each_other(a, b, overlap):
    assert iso.selectors_may_overlap(a, b) is overlap
    assert iso.selectors_may_overlap(b, a) is overlap


# -- policies that would defeat the deny (finding 4) -------------------------------------------------------------
def netpol(name, spec, labels=None, annotations=None, rv="1"):
    meta = {"name": name, "namespace": "shop", "uid": f"uid-{name}", "resourceVersion": rv}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta, "spec": spec}


ALLOW_ALL = netpol(
    "allow-all",
    {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [{}], "egress": [{}]},
    labels={"team": "web"},
    annotations={"note": "legacy"},
)
ALLOW_FRONT = netpol(
    "allow-front-to-api",
    {
        "podSelector": {"matchLabels": {"app": "api"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "front"}}}]}],
    },
)
DEFAULT_DENY = netpol("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
EGRESS_TYPE_ONLY = netpol("egress-only", {"podSelector": {}, "policyTypes": ["Egress"], "ingress": [{}]})


def test_allow_all_and_any_allow_for_isolated_pods_defeat_the_deny():
    policies = [ALLOW_ALL, ALLOW_FRONT, DEFAULT_DENY, EGRESS_TYPE_ONLY]
    assert iso.defeating_policies(policies, {}) == [
        {"name": "allow-all", "allows": ["all ingress", "all egress"]},
        {"name": "allow-front-to-api", "allows": ["some ingress"]},
    ]
    # isolating only the front pods: a policy for the api pods alone does not admit anything to them
    assert [d["name"] for d in iso.defeating_policies(policies, {"matchLabels": {"app": "front"}})] == ["allow-all"]


def test_other_incidents_isolations_are_not_defeating():
    other = iso.isolation_policy("shop", "INC-1", iso.isolation_spec({}, True, ["forensics"]))
    assert iso.defeating_policies([other], {}) == []


def test_manifest_keeps_what_restores_the_policy_exactly():
    record = iso.manifest(ALLOW_ALL)
    body = iso.restore_body(record)
    assert body["metadata"] == {
        "name": "allow-all",
        "namespace": "shop",
        "labels": {"team": "web"},
        "annotations": {"note": "legacy"},
    }
    assert body["spec"] == ALLOW_ALL["spec"] and record["was"] == {"uid": "uid-allow-all", "resourceVersion": "1"}
    assert iso.restorable(None, record) == "create"
    assert iso.restorable(copy.deepcopy(ALLOW_ALL), record) == "restored"
    assert iso.restorable(netpol("allow-all", {"podSelector": {}}), record) == "changed"


# -- release (finding 3) -----------------------------------------------------------------------------------------
def legacy(incident):
    """A policy as the step made it before the digest: the old name and the incident label, no annotation."""
    labels = {iso.INCIDENT_LABEL: iso.label_value(incident), iso.STEP_LABEL: iso.STEP}
    return netpol(iso.legacy_policy_name(incident), {"podSelector": {}}, labels=labels)


def entry(incident, policy, created=True):
    return {"incident_id": incident, "step": iso.STEP, "changed": {"policy": policy, "policy_created": created}}


def test_release_deletes_only_the_entrys_own_incidents_policy():
    upper = legacy("X-CASE")  # firebreak-isolate-x-case, labelled X-CASE
    plan = iso.release_plan(entry("X-Case", upper["metadata"]["name"]), upper, {})
    assert plan["delete_policy"] is None and "not deleted" in plan["left_alone"]["policy"]
    plan = iso.release_plan(entry("X-CASE", upper["metadata"]["name"]), upper, {})
    assert plan["delete_policy"] == "firebreak-isolate-x-case"


def test_new_policies_belong_by_the_exact_incident_annotation():
    policy = iso.isolation_policy("shop", "X-Case", {"podSelector": {}})
    assert iso.belongs_to(policy, "X-Case") and not iso.belongs_to(policy, "X-CASE")
    assert iso.find_isolation([legacy("X-CASE"), policy], "X-Case") is policy
    assert iso.find_isolation([legacy("X-CASE"), policy], "X-CASE")["metadata"]["name"] == "firebreak-isolate-x-case"


# -- the module against a fake API: a set-aside that survives a failure part way ---------------------------------
class FakeKube:
    def __init__(self, policies, fail_delete=None):
        self.ns = {"metadata": {"name": "shop", "labels": {"kubernetes.io/metadata.name": "shop"}}}
        self.policies = {p["metadata"]["name"]: copy.deepcopy(p) for p in policies}
        self.fail_delete = fail_delete
        self.writes = []
        self.rv = 100

    def namespace(self, name):
        return copy.deepcopy(self.ns)

    def get(self, kind, namespace, name, missing_ok=False):
        return copy.deepcopy(self.ns) if kind == "Namespace" and name == "shop" else None

    def list(self, kind, namespace):
        return copy.deepcopy(list(self.policies.values()))

    def _stamp(self, obj):
        self.rv += 1
        obj["metadata"].update(uid=f"uid-{self.rv}", resourceVersion=str(self.rv))
        return obj

    def create(self, kind, namespace, body):
        self.writes.append(("create", body["metadata"]["name"]))
        self.policies[body["metadata"]["name"]] = self._stamp(copy.deepcopy(body))

    def patch(self, kind, namespace, name, body, content_type=None):
        self.writes.append(("patch", kind, name))
        if kind == "Namespace":
            labels = self.ns["metadata"]["labels"]
            for key, value in body["metadata"]["labels"].items():
                if value is None:
                    labels.pop(key, None)
                else:
                    labels[key] = value
            return
        policy = self.policies[name]
        policy["spec"] = body["spec"]
        for key, values in (body.get("metadata") or {}).items():
            policy["metadata"].setdefault(key, {}).update(values)

    def request(self, verb, kind, namespace, name, body=None):
        assert verb == "DELETE"
        if name == self.fail_delete:
            raise K8sStepError(f"DELETE NetworkPolicy {name} failed: 503 ServiceUnavailable", status=503)
        assert body["preconditions"]["uid"] == self.policies[name]["metadata"]["uid"]
        self.delete(kind, namespace, name)

    def delete(self, kind, namespace, name):
        self.writes.append(("delete", name))
        del self.policies[name]


def run(kube, check=False, **params):
    defaults = {
        "namespace": "shop",
        "state": "isolated",
        "pod_selector": {},
        "allow_dns": True,
        "responder_namespaces": [],
        "defeating_policies": "refuse",
        "containments": [],
        "incident_id": "INC-9",
    }
    fake = SimpleNamespace(params={**defaults, **params}, check_mode=check, _diff=True)
    return (module.isolate if fake.params["state"] == "isolated" else module.release)(fake, kube)


def test_refused_by_default_naming_the_policies_and_nothing_written():
    kube = FakeKube([ALLOW_ALL, ALLOW_FRONT, DEFAULT_DENY])
    with pytest.raises(
        K8sInputError, match="allow-all \\(allows all ingress and all egress\\); allow-front-to-api"
    ) as err:
        run(kube)
    assert err.value.result["defeating_policies"][0]["name"] == "allow-all"
    assert kube.writes == []


def test_check_mode_predicts_the_set_aside_and_writes_nothing():
    kube = FakeKube([ALLOW_ALL])
    result = run(kube, check=True, defeating_policies="set_aside")
    assert result["changed"] and result["set_aside"] == ["allow-all"] and kube.writes == []
    assert "allow-all" not in result["after"]["policies"]


def test_a_rerun_after_a_failure_part_way_keeps_every_set_aside_policy_and_release_restores_them():
    kube = FakeKube([ALLOW_ALL, ALLOW_FRONT, DEFAULT_DENY], fail_delete="allow-front-to-api")
    with pytest.raises(K8sStepError, match="503"):
        run(kube, defeating_policies="set_aside")
    deny = iso.policy_name("INC-9")
    # the deny went first, holding both manifests; allow-all is gone, allow-front-to-api is still there
    assert set(kube.policies) == {deny, "allow-front-to-api", "default-deny"}
    assert [m["metadata"]["name"] for m in iso.set_aside_of(kube.policies[deny])] == ["allow-all", "allow-front-to-api"]

    kube.fail_delete = None
    result = run(kube, defeating_policies="set_aside")
    assert set(kube.policies) == {deny, "default-deny"}
    recorded = result["containment"][0]["changed"]["set_aside"]
    assert [iso.restore_body(m) for m in recorded] == [
        iso.restore_body(iso.manifest(p)) for p in (ALLOW_ALL, ALLOW_FRONT)
    ]
    assert result["containment"][0]["changed"]["policy_owned"] is True

    released = run(kube, state="released", containments=result["containment"])
    assert released["release"][0]["restored"]["set_aside_restored"] == ["allow-all", "allow-front-to-api"]
    assert set(kube.policies) == {"allow-all", "allow-front-to-api", "default-deny"}
    for original in (ALLOW_ALL, ALLOW_FRONT):
        stored = kube.policies[original["metadata"]["name"]]
        assert iso.restore_body(iso.manifest(stored)) == iso.restore_body(iso.manifest(original))
    assert kube.ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "shop"}
    # the set-aside ones come back before the deny goes
    writes = [w for w in kube.writes if w[0] in ("create", "delete")][-3:]
    assert writes == [("create", "allow-all"), ("create", "allow-front-to-api"), ("delete", deny)]


def test_a_policy_of_the_derived_name_that_is_another_incidents_is_refused():
    clash = iso.isolation_policy("shop", "INC-OTHER", {"podSelector": {}}, name=iso.policy_name("INC-9"))
    kube = FakeKube([clash])
    with pytest.raises(
        K8sInputError, match=re.escape("is not incident 'INC-9''s isolation (it is incident 'INC-OTHER''s)")
    ):
        run(kube)
    assert kube.writes == []


def test_bad_selector_and_names_fail_before_any_call():
    kube = FakeKube([])
    kube.list = kube.namespace = None  # any read would fail: the checks come first
    for params, named in (
        ({"pod_selector": {"app": "front"}}, "pod_selector: key 'app'"),
        ({"responder_namespaces": ["Forensics"]}, "responder_namespaces: 'Forensics'"),
        ({"incident_id": "---"}, "incident_id: '---'"),
        ({"namespace": "shop/x"}, "namespace: 'shop/x'"),
    ):
        with pytest.raises(K8sInputError, match=re.escape(named)):
            run(kube, **params)


def test_a_set_aside_policy_made_again_is_set_aside_again_only_when_it_is_the_same():
    kube = FakeKube([ALLOW_ALL])
    run(kube, defeating_policies="set_aside")
    kube.policies["allow-all"] = copy.deepcopy(ALLOW_ALL)  # a GitOps controller puts it back as it was
    again = run(kube, defeating_policies="set_aside")
    assert again["changed"] and "allow-all" not in kube.policies
    assert [iso.restore_body(m) for m in again["containment"][0]["changed"]["set_aside"]] == [
        iso.restore_body(iso.manifest(ALLOW_ALL))
    ]
    other = copy.deepcopy(ALLOW_ALL)
    other["metadata"]["labels"] = {"team": "attacker"}
    kube.policies["allow-all"] = other
    writes = list(kube.writes)
    with pytest.raises(K8sInputError, match=r"allow-all .*made again"):
        run(kube, defeating_policies="set_aside")
    assert kube.writes == writes and kube.policies["allow-all"] is other


def test_release_restores_from_the_deny_policys_annotation_before_the_timelines_copy():
    """The entry comes back through the timeline, which masks values under keys that look secret; the deny policy's
    annotation, read from the API, is exact and wins."""
    secretish = netpol(
        "allow-vault", {"podSelector": {}, "ingress": [{}]}, annotations={"vault.example.com/token-path": "/v1/x"}
    )
    kube = FakeKube([secretish])
    [entry] = run(kube, defeating_policies="set_aside")["containment"]
    masked = copy.deepcopy(entry)
    masked["changed"]["set_aside"][0]["metadata"]["annotations"]["vault.example.com/token-path"] = "********"
    run(kube, state="released", containments=[masked])
    assert kube.policies["allow-vault"]["metadata"]["annotations"] == {"vault.example.com/token-path": "/v1/x"}
