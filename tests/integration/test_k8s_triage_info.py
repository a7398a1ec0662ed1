"""k8s_triage_info against the Kubernetes API test server: a stuck rollout's reasons, crash logs, snapshots."""

from __future__ import annotations

import base64
import json
import os

import pytest

from tests.integration.k8s_api import APPS, CORE, JSON_OUTPUT, deploy_bad, get, patch, result_of, set_image, wait_for

pytestmark = pytest.mark.integration

PLAYBOOK = "tests/integration/playbooks/k8s/triage.yml"


def triage(run_playbook, check=False, **options):
    extra = {f"k8s_{key}": value for key, value in options.items()}
    run = run_playbook(PLAYBOOK, extra_vars=extra, check=check, env=JSON_OUTPUT)
    return run, result_of(run, "Triage")


def test_triage_of_a_stuck_rollout_shows_the_bad_pods_reason_history_events_nodes(kube, run_playbook):
    deploy_bad(kube)
    run, result = triage(run_playbook, name="api")
    assert run.returncode == 0, run.output
    assert result["changed"] is False
    api = result["workloads"][0]
    assert api["rollout"]["state"] == "failed" and "progress deadline" in api["rollout"]["message"]
    assert [h["revision"] for h in api["history"]] == [1, 2, 3, 4]
    assert api["history"][-1]["images"] == ["api=registry.local/api:bad-2.3.0"]
    reasons = [r for p in result["pods_not_ready"] for r in p["reasons"]]
    assert any("ImagePullBackOff" in r or "ErrImagePull" in r for r in reasons), result["pods_not_ready"]
    assert any("ImagePull" in line for line in result["summary"])
    assert result["events"] and result["events"] == sorted(result["events"], key=lambda e: e["time"])
    assert all(e["object"].split("/")[1].startswith("api") for e in result["events"])
    assert result["nodes"] and all("ready" in n for n in result["nodes"])


def test_triage_reads_the_logs_of_crashing_containers(kube, run_playbook):
    set_image(kube, "shop", "api", "registry.local/api:crash-2.3.1")
    wait_for(
        lambda: any(
            cs.get("restartCount", 0) > 0
            for p in get(kube, f"{CORE}/shop/pods?labelSelector=app%3Dapi")["items"]
            for cs in (p.get("status") or {}).get("containerStatuses") or []
        ),
        timeout=30,
        what="a crashing api container restarted",
    )
    run, result = triage(run_playbook, name="api")
    assert run.returncode == 0, run.output
    assert result["logs"], result
    entry = result["logs"][0]
    assert entry["container"] == "api" and entry["restarts"] > 0
    assert entry.get("lines") or entry.get("error")
    assert len(entry.get("lines") or []) <= 5


def test_snapshots_of_used_config_are_restorable_and_values_never_shown(kube, run_playbook, tmp_path):
    patch(
        kube,
        f"{APPS}/shop/deployments/api",
        {
            "spec": {
                "template": {
                    "spec": {
                        "volumes": [{"name": "db", "secret": {"secretName": "api-db"}}],
                        "containers": [{"name": "api", "envFrom": [{"configMapRef": {"name": "shop-config"}}]}],
                    }
                }
            }
        },
    )
    evidence = tmp_path / "incidents" / "INC-9" / "evidence"
    run, result = triage(run_playbook, name="api", evidence_dir=str(evidence), incident_id="INC-9")
    assert run.returncode == 0, run.output
    by_kind = {s["kind"]: s for s in result["snapshots"]}
    assert set(by_kind) == {"ConfigMap", "Secret"}
    secret_file = by_kind["Secret"]["path"]
    assert oct(os.stat(secret_file).st_mode)[-3:] == "600"
    with open(secret_file) as handle:
        doc = json.load(handle)
    assert base64.b64decode(doc["data"]["password"]).decode() == "sandbox-password"
    assert "sandbox-password" not in run.stdout and doc["data"]["password"] not in run.stdout
    assert doc["data"]["password"] not in run.timeline.read_text()

    check_dir = tmp_path / "check"
    run, result = triage(run_playbook, check=True, name="api", evidence_dir=str(check_dir))
    assert run.returncode == 0 and not check_dir.exists()


def test_triage_bad_input(kube, run_playbook):
    run, result = triage(run_playbook, namespace="nope")
    assert run.returncode != 0 and "namespace 'nope' does not exist" in result["msg"]
    run, result = triage(run_playbook, name="nope")
    assert run.returncode != 0 and "Deployment 'nope' not found in namespace 'shop'" in result["msg"]
