"""k8s_namespace_isolate against the Kubernetes API test server: the policy as specified, the labels, and a release
that restores the previous state exactly while leaving others' changes alone."""

from __future__ import annotations

import pytest

from tests.integration.k8s_api import JSON_OUTPUT, call, get, patch, result_of

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
    call(
        box,
        "POST",
        NP,
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-front", "namespace": "shop"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "api"}},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "front"}}}]}],
            },
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
    spec = policies["firebreak-isolate-inc-42"]
    assert spec["podSelector"] == {} and sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    responders = {
        "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["forensics"]}]
    }
    assert spec["ingress"] == [{"from": [{"namespaceSelector": responders}]}]
    assert {"to": [{"namespaceSelector": responders}]} in spec["egress"]
    dns = [rule for rule in spec["egress"] if rule.get("ports")]
    assert dns and {p["port"] for p in dns[0]["ports"]} == {53}
    assert policies["allow-front"] == policies_before["allow-front"]
    entry = result["containment"][0]
    assert entry["step"] == "k8s_namespace_isolate" and entry["resource"] == "namespace/shop"
    assert entry["changed"]["policy_created"] is True and entry["existing_policies"] == ["allow-front"]
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
    assert released["release"]["releases"] == [entry["id"]]
    assert released["release"]["left_alone"]["other_policies"] == ["allow-front", "responder-extra"]
    labels, policies = state(kube)
    assert labels == dict(labels_before, owner="sre")
    assert set(policies) == {"allow-front", "responder-extra"}

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
