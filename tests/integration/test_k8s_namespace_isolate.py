"""k8s_namespace_isolate against the Kubernetes API test server: the policy as specified, the labels, and a release
that restores the previous state exactly while leaving others' changes alone."""

from __future__ import annotations

import pytest

from tests.integration.k8s_api import JSON_OUTPUT, call, get, patch, result_of
from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/k8s/isolate.yml"
NP = "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies"


def isolate(run_playbook, check=False, diff=False, **options):
    extra = {f"k8s_{key}": value for key, value in options.items()}
    run = run_playbook(PLAYBOOK, extra_vars=extra, check=check, diff=diff, env=JSON_OUTPUT)
    return run, result_of(run, "Isolate")


def state(box):
    labels = get(box, "/api/v1/namespaces/shop")["metadata"].get("labels") or {}
    policies = {p["metadata"]["name"]: p["spec"] for p in get(box, NP)["items"]}
    return labels, policies


def existing_policy(box):
    """A policy that allows nothing to the isolated pods (a default deny of ingress): not in the way."""
    call(
        box,
        "POST",
        NP,
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "api-default-deny", "namespace": "shop"},
            "spec": {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress"]},
        },
    )


def test_isolate_then_release_restores_exactly_and_leaves_others_alone(kube, run_playbook):
    existing_policy(kube)
    call(
        kube, "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "forensics"}}
    )
    labels_before, policies_before = state(kube)

    run, result = isolate(run_playbook, incident_id="INC-42", responders=["forensics"])
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    labels, policies = state(kube)
    assert labels["firebreak.io/quarantined"] == "true" and labels["firebreak.io/incident"] == "INC-42"
    spec = policies[result["policy"]["metadata"]["name"]]
    assert spec["podSelector"] == {} and sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    responders = {
        "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["forensics"]}]
    }
    assert spec["ingress"] == [{"from": [{"namespaceSelector": responders}]}]
    assert {"to": [{"namespaceSelector": responders}]} in spec["egress"]
    dns = [rule for rule in spec["egress"] if rule.get("ports")]
    assert dns and {p["port"] for p in dns[0]["ports"]} == {53}
    assert policies["api-default-deny"] == policies_before["api-default-deny"]
    [entry] = result["containment"]
    assert entry["step"] == "k8s_namespace_isolate" and entry["resource"] == "namespace/shop"
    assert entry["changed"]["policy_created"] is True and entry["existing_policies"] == ["api-default-deny"]
    assert entry["changed"]["labels"] == {"firebreak.io/quarantined": None, "firebreak.io/incident": None}

    again, second = isolate(run_playbook, incident_id="INC-42", responders=["forensics"])
    assert again.returncode == 0 and second["changed"] is False and second["containment"] == []

    # meanwhile a responder adds a policy of their own and an owner label
    call(
        kube,
        "POST",
        NP,
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "responder-extra", "namespace": "shop"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        },
    )
    patch(kube, "/api/v1/namespaces/shop", {"metadata": {"labels": {"owner": "sre"}}}, "application/merge-patch+json")

    run, released = isolate(run_playbook, state="released", incident_id="INC-42", containments=[entry])
    assert run.returncode == 0, run.output
    assert released["changed"] is True
    assert released["release"][0]["releases"] == [entry["id"]]
    assert released["release"][0]["left_alone"]["other_policies"] == ["api-default-deny", "responder-extra"]
    labels, policies = state(kube)
    assert labels == dict(labels_before, owner="sre")
    assert set(policies) == {"api-default-deny", "responder-extra"}

    again, second = isolate(run_playbook, state="released", incident_id="INC-42", containments=[entry])
    assert again.returncode == 0 and second["changed"] is False


def test_check_mode_and_bad_input_change_nothing(kube, run_playbook):
    before = state(kube)
    run, result = isolate(run_playbook, check=True, diff=True, incident_id="INC-43")
    assert run.returncode == 0 and result["changed"] is True
    assert state(kube) == before
    run, result = isolate(run_playbook, namespace="nope", incident_id="INC-43")
    assert run.returncode != 0 and "namespace 'nope' does not exist" in result["msg"]
    run, result = isolate(run_playbook, incident_id="INC-43", responders=["ghost"])
    assert run.returncode != 0 and "responder namespace 'ghost' does not exist" in result["msg"]
    run, result = isolate(run_playbook, incident_id="")  # "" (not omitted: the option falls back to the environment)
    assert run.returncode != 0 and "incident_id is required" in result["msg"]
    assert state(kube) == before


def test_role_converge_idempotence_check(kube, run_playbook):
    from tests.integration.test_role_eks_rollout_undo import recap

    role = "tests/integration/playbooks/k8s/role_isolate.yml"
    before = state(kube)
    check = run_playbook(role, check=True)
    assert check.returncode == 0, check.output
    assert state(kube) == before
    first = run_playbook(role)
    assert first.returncode == 0, first.output
    assert recap(first)["changed"] == 1
    labels, policies = state(kube)
    assert labels["firebreak.io/quarantined"] == "true" and len(policies) == 1
    second = run_playbook(role)
    assert second.returncode == 0 and recap(second)["changed"] == 0, second.stdout


def test_role_release_reads_the_timeline_and_restores_exactly(kube, run_playbook):
    from tests.integration.test_role_eks_rollout_undo import recap

    role = "tests/integration/playbooks/k8s/role_isolate.yml"
    before = state(kube)
    first = run_playbook(role)
    assert first.returncode == 0, first.output
    assert state(kube) != before
    patch(kube, "/api/v1/namespaces/shop", {"metadata": {"labels": {"owner": "sre"}}}, "application/merge-patch+json")
    released = run_playbook(role, extra_vars={"k8s_state": "released"})
    assert released.returncode == 0, released.output
    assert recap(released)["changed"] == 1
    labels, policies = state(kube)
    assert (labels, policies) == (dict(before[0], owner="sre"), before[1])
    again = run_playbook(role, extra_vars={"k8s_state": "released"})
    assert again.returncode == 0 and recap(again)["changed"] == 0, again.stdout


def policies_of(box):
    return {p["metadata"]["name"]: p for p in get(box, NP)["items"]}


@first_case_in_make_test
@pytest.mark.parametrize(
    "selector, named",
    [
        ({"app": "front"}, "'app'"),
        ("app=front", "'app'"),
        ({"matchLabels": {"app": "front"}, "matchLabel": {"tier": "web"}}, "'matchLabel'"),
        ({"matchExpressions": [{"key": "app", "operator": "Equals", "values": ["front"]}]}, "'Equals'"),
    ],
)
def test_a_pod_selector_that_is_not_a_label_selector_is_refused_naming_it(kube, run_playbook, selector, named):
    """Issue 21 finding 5: a real API server drops unknown LabelSelector fields and would select every pod."""
    before = state(kube)
    run, result = isolate(run_playbook, incident_id="INC-44", pod_selector=selector)
    assert run.returncode != 0, result
    assert "pod_selector" in result["msg"] and named in result["msg"], result["msg"]
    assert "Traceback" not in run.output
    assert state(kube) == before


def test_incident_ids_differing_in_case_keep_their_own_policies(kube, run_playbook):
    """Issue 21 finding 3: X-Case and X-CASE folded to one policy name; releasing one deleted the other's isolation."""
    run, upper = isolate(run_playbook, incident_id="X-CASE")
    assert run.returncode == 0, run.output
    run, mixed = isolate(run_playbook, incident_id="X-Case")
    assert run.returncode == 0, run.output
    names = {upper["policy"]["metadata"]["name"], mixed["policy"]["metadata"]["name"]}
    assert len(names) == 2 and names == set(policies_of(kube)), (names, sorted(policies_of(kube)))
    run, released = isolate(run_playbook, state="released", incident_id="X-Case", containments=mixed["containment"])
    assert run.returncode == 0, run.output
    assert released["release"][0]["restored"]["policy_deleted"] == mixed["policy"]["metadata"]["name"]
    left = policies_of(kube)
    assert set(left) == {upper["policy"]["metadata"]["name"]}
    assert left[upper["policy"]["metadata"]["name"]]["metadata"]["annotations"]["firebreak.io/incident-id"] == "X-CASE"
    labels, _ = state(kube)
    assert labels["firebreak.io/quarantined"] == "true"  # X-CASE's isolation still stands


def test_an_isolation_made_under_the_old_name_is_adopted_and_released(kube, run_playbook):
    """Policies named firebreak-isolate-<folded id> (before the digest) stay this incident's: a re-run adopts the
    policy instead of adding a second one, and the release finds it by its incident label."""
    legacy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": "firebreak-isolate-inc-7",
            "namespace": "shop",
            "labels": {"firebreak.io/incident": "INC-7", "firebreak.io/step": "k8s_namespace_isolate"},
        },
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    call(kube, "POST", NP, legacy)
    run, result = isolate(run_playbook, incident_id="INC-7")
    assert run.returncode == 0, run.output
    assert set(policies_of(kube)) == {"firebreak-isolate-inc-7"}
    [entry] = result["containment"]
    assert entry["changed"]["policy"] == "firebreak-isolate-inc-7"
    old_entry = dict(entry, changed=dict(entry["changed"], policy_created=True))
    for key in ("policy_owned", "set_aside"):
        old_entry["changed"].pop(key, None)
    run, released = isolate(run_playbook, state="released", incident_id="INC-7", containments=[old_entry])
    assert run.returncode == 0, run.output
    assert released["release"][0]["restored"]["policy_deleted"] == "firebreak-isolate-inc-7"
    assert policies_of(kube) == {}


ALLOW_ALL = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {
        "name": "allow-all",
        "namespace": "shop",
        "labels": {"team": "web"},
        "annotations": {"owner": "platform", "note": "legacy allow-all"},
    },
    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [{}], "egress": [{}]},
}


def exact(policy):
    meta = policy["metadata"]
    return meta["name"], meta.get("labels"), meta.get("annotations"), policy["spec"]


def test_an_allow_all_policy_is_refused_by_default_or_set_aside_and_restored_exactly(kube, run_playbook):
    """Issue 21 finding 4: NetworkPolicies add up, so an allow-all policy beside the deny admits everything."""
    call(kube, "POST", NP, ALLOW_ALL)
    original = exact(policies_of(kube)["allow-all"])
    labels_before, _ = state(kube)

    run, refused = isolate(run_playbook, incident_id="INC-50")
    assert run.returncode != 0, refused
    assert "allow-all" in refused["msg"] and "defeating_policies" in refused["msg"], refused["msg"]
    assert set(policies_of(kube)) == {"allow-all"} and state(kube)[0] == labels_before

    run, result = isolate(run_playbook, incident_id="INC-50", defeating_policies="set_aside")
    assert run.returncode == 0, run.output
    assert result["set_aside"] == ["allow-all"]
    deny = result["policy"]["metadata"]["name"]
    stored = policies_of(kube)
    assert set(stored) == {deny}
    assert "allow-all" in stored[deny]["metadata"]["annotations"]["firebreak.io/set-aside"]
    [entry] = result["containment"]
    assert [exact(m) for m in entry["changed"]["set_aside"]] == [original]

    again, second = isolate(run_playbook, incident_id="INC-50", defeating_policies="set_aside")
    assert again.returncode == 0 and second["changed"] is False, second
    assert second["set_aside"] == ["allow-all"]

    run, released = isolate(run_playbook, state="released", incident_id="INC-50", containments=[entry])
    assert run.returncode == 0, run.output
    assert released["release"][0]["restored"]["set_aside_restored"] == ["allow-all"]
    stored = policies_of(kube)
    assert set(stored) == {"allow-all"} and exact(stored["allow-all"]) == original
    assert state(kube)[0] == labels_before


def test_role_sets_aside_an_allow_all_and_its_release_from_the_timeline_restores_it_exactly(kube, run_playbook):
    """The same acceptance through the role: the entry goes to the incident timeline and the release reads it back."""
    from tests.integration.test_role_eks_rollout_undo import recap

    role = "tests/integration/playbooks/k8s/role_isolate.yml"
    call(kube, "POST", NP, ALLOW_ALL)
    original = exact(policies_of(kube)["allow-all"])
    refused = run_playbook(role)
    assert refused.returncode != 0 and "allow-all" in refused.output
    assert set(policies_of(kube)) == {"allow-all"}
    first = run_playbook(role, extra_vars={"k8s_defeating_policies": "set_aside"})
    assert first.returncode == 0, first.output
    assert "allow-all" not in policies_of(kube) and len(policies_of(kube)) == 1
    released = run_playbook(role, extra_vars={"k8s_state": "released"})
    assert released.returncode == 0, released.output
    assert recap(released)["changed"] == 1
    stored = policies_of(kube)
    assert set(stored) == {"allow-all"} and exact(stored["allow-all"]) == original


def test_release_of_a_deleted_namespace_reports_it_gone(kube, run_playbook):
    call(kube, "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}})
    run, result = isolate(run_playbook, namespace="doomed", incident_id="INC-43")
    assert run.returncode == 0, run.output
    call(kube, "DELETE", "/api/v1/namespaces/doomed")
    run, released = isolate(
        run_playbook, namespace="doomed", state="released", incident_id="INC-43", containments=result["containment"]
    )
    assert run.returncode == 0, run.output
    assert released["gone"] == ["namespace/doomed"] and released["changed"] is False
    assert released["release"][0]["gone"] is True
    assert released["release"][0]["releases"] == [result["containment"][0]["id"]]


def test_a_namespace_isolated_by_two_incidents_needs_no_ledger_claim(kube, run_playbook, tmp_path, monkeypatch):
    """Each incident has its own policy and the quarantine label stays while another isolation policy is left: the
    cluster is the shared record, so no claim is written (an empty claims directory proves it)."""
    claims = tmp_path / "claims"
    monkeypatch.setenv("FIREBREAK_CLAIMS_DIR", str(claims))
    labels_before, _ = state(kube)
    entries = {}
    for incident in ("INC-A", "INC-B"):
        run, result = isolate(run_playbook, incident_id=incident)
        assert run.returncode == 0, run.output
        [entries[incident]] = result["containment"]
    labels, policies = state(kube)
    assert labels["firebreak.io/quarantined"] == "true" and len(policies) == 2

    run, released = isolate(run_playbook, state="released", incident_id="INC-A", containments=[entries["INC-A"]])
    assert run.returncode == 0, run.output
    [release] = released["release"]
    labels, policies = state(kube)
    assert labels["firebreak.io/quarantined"] == "true", "INC-B's isolation is still in the namespace"
    assert len(policies) == 1 and all("inc-b" in name for name in policies), policies
    assert "still isolates" in release["left_alone"]["labels"]["firebreak.io/quarantined"]

    run, released = isolate(run_playbook, state="released", incident_id="INC-B", containments=[entries["INC-B"]])
    assert run.returncode == 0, run.output
    labels, policies = state(kube)
    assert "firebreak.io/quarantined" not in labels and policies == {}
    assert labels == labels_before
    assert not claims.exists() or not any(claims.rglob("*")), "k8s_namespace_isolate records no ledger claim"
