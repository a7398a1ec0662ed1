"""The bad_deploy scenario end to end on the incident frame: on Kubernetes the drill's bad rollout and broken ConfigMap
(--check changes nothing, the converge freezes deploys then undoes the rollout and restores the ConfigMap, a re-run
of the incident changes nothing, and a forced one with the rollback's annotations lost does not flip back to the bad
revision); on ECS a failed deployment rolled back with a pipeline frozen and the freeze released when asked;
in production without approval the run stops at the freeze gate; a bad name stops before any call."""

from __future__ import annotations

import json

import pytest

from sandbox.drills import bad_deploy as drill
from sandbox.drills import service_down
from sandbox.drills.security_breach import PIPELINE
from sandbox.drills.security_breach import _pipeline as create_pipeline
from tests.integration.k8s_api import deployment, get, image, patch
from tests.integration.scenario_helpers import lifecycle, mutating_calls, records
from tests.integration.snapshot import differences, snapshot

pytestmark = [pytest.mark.integration, pytest.mark.drill]

PLAYBOOK = drill.PLAYBOOK
QUICK = {"bad_deploy_wait_timeout": 120, "bad_deploy_health_timeout": 120}
MUTATING = {"UpdateService", "PutParameter", "DeleteParameter", "DisableStageTransition", "EnableStageTransition"}


def extra_vars(context: dict) -> dict:
    return {key: value for key, value in context.items() if not key.startswith("_")}


def state(box) -> dict:
    """The sandbox's snapshot plus what it does not cover: the ConfigMap's data and the freeze flag's value."""
    config = get(box, f"/api/v1/namespaces/{drill.NAMESPACE}/configmaps/{drill.CONFIGMAP}")
    params = box.client("ssm").describe_parameters(MaxResults=50)["Parameters"]
    flag = [p for p in params if p["Name"] == drill.FREEZE_PARAMETER]
    value = box.client("ssm").get_parameter(Name=drill.FREEZE_PARAMETER)["Parameter"]["Value"] if flag else None
    found = snapshot(box)
    s3 = box.client("s3")
    for bucket, entry in found.get("s3", {}).items():  # the incident's seals are its record, not state it acts on
        if isinstance(entry, dict) and isinstance(entry.get("versions"), int):
            versions = s3.list_object_versions(Bucket=bucket).get("Versions", [])
            entry["versions"] = sum(1 for v in versions if "/seals/" not in "/" + v["Key"])
    return {**found, "configmap": {"data": config.get("data")}, "flag": {"value": value}}


def flag(box) -> dict | None:
    try:
        return json.loads(box.client("ssm").get_parameter(Name=drill.FREEZE_PARAMETER)["Parameter"]["Value"])
    except box.client("ssm").exceptions.ParameterNotFound:
        return None


def transitions(box) -> dict:
    found = box.client("codepipeline").get_pipeline_state(name=PIPELINE)["stageStates"]
    return {s["stageName"]: (s.get("inboundTransitionState") or {}).get("enabled") for s in found}


def test_kubernetes_check_then_freeze_undo_config_rollback_verify_report_and_a_rerun_changes_nothing(
    aws, kube, run_playbook
):
    context = drill.inject(kube)
    assert image(deployment(kube, "shop", "api")) == drill.BAD_IMAGE

    # --check: a complete preview that changes nothing
    before = state(kube)
    preview = run_playbook(PLAYBOOK, extra_vars=extra_vars(context), check=True, diff=True)
    assert preview.returncode == 0, preview.output[-4000:]
    assert "DRY RUN, nothing changed." in preview.stdout
    assert "symptom: rollout failed at revision 4" in preview.stdout
    assert differences(before, state(kube)) == []
    assert flag(kube) is None

    # the converge: freeze first, then the undo and the ConfigMap rollback, verified
    run = run_playbook(PLAYBOOK, extra_vars=extra_vars(context))
    assert run.returncode == 0, run.output[-4000:]
    checks = drill.verify(kube, context)
    assert image(deployment(kube, "shop", "api")) == drill.GOOD_IMAGE
    config = get(kube, f"/api/v1/namespaces/shop/configmaps/{drill.CONFIGMAP}")
    assert config["data"] == context["_drill"]["good_config"]
    assert config["metadata"]["annotations"].get("firebreak.io/restored-from")
    frozen = flag(kube)
    assert frozen["frozen"] is True and frozen["incident_id"].startswith("INC-TEST-")
    assert any("deploys frozen" in line for line in checks)
    text = " ".join(run.stdout.split())
    assert (
        "deploys stay frozen until the fix is ready; release with ansible-playbook playbooks/release_containment.yml"
        in text
    )
    assert "left for a person: reading the CI/CD output of the failed deploy" in text

    # the record: declared, triage, the freeze gate, the freeze, the undo, the config, verified, resolved, reported
    assert [(d["severity"], d["type"]) for d in lifecycle(run, "declared", real=True)] == [("P2", "bad_deploy")]
    [resolved] = lifecycle(run, "resolved", real=True)
    assert "from revision 4 to revision 3" in resolved["summary"] and "still frozen" in resolved["summary"]
    tasks = [r for r in records(run) if not r.get("check_mode") and r["event"] in ("task_ok", "task_changed", "note")]
    actions = [r.get("action") for r in tasks]
    order = [
        actions.index("firebreak.runbooks.k8s_triage_info"),
        next(i for i, r in enumerate(tasks) if r["event"] == "note" and "Gate bad-deploy-freeze" in r["msg"]),
        actions.index("firebreak.runbooks.deploy_freeze"),
        actions.index("firebreak.runbooks.k8s_rollout_undo"),
        actions.index("firebreak.runbooks.k8s_config_rollback"),
        actions.index("firebreak.runbooks.k8s_health_verify"),
        actions.index("firebreak.runbooks.incident_report"),
        actions.index("firebreak.runbooks.incident_seal"),
    ]
    assert order == sorted(order), order
    freeze = tasks[order[2]]
    assert freeze["event"] == "task_changed" and freeze["details"]["containment"]
    assert freeze["details"]["before"] != freeze["details"]["after"]
    assert tasks[order[3]]["event"] == "task_changed" and tasks[order[4]]["event"] == "task_changed"
    assert [c["verdict"] for c in tasks[order[5]]["details"]["checks"]] == ["pass"]
    assert drill.verify_record(run.timeline, run.timeline.with_name("report.md"))

    # a re-run of the same incident: no failing rollout any more, but its rollback is in its timeline, so it goes
    # on, every step finds its work done, and nothing changes (in AWS nor in the cluster)
    settled = state(kube)
    kube.proxy.clear_log()
    again = run_playbook(PLAYBOOK, extra_vars=extra_vars(context))
    assert again.returncode == 0, again.output[-4000:]
    again_text = " ".join(again.stdout.split())
    assert "symptom: this incident already rolled back Deployment shop/api at" in again_text, again.stdout[-3000:]
    assert "no change to Deployment shop/api" in again_text
    assert mutating_calls(kube, MUTATING) == []
    assert differences(settled, state(kube)) == []
    assert image(deployment(kube, "shop", "api")) == drill.GOOD_IMAGE

    # forced, with the rollback's annotations lost (a manifest re-applied by a GitOps tool, say): the previous
    # revision is the bad one, but the undo is pinned to the revision this incident's first undo restored
    marks = [k for k in deployment(kube, "shop", "api")["metadata"]["annotations"] if k.startswith("firebreak.io/")]
    assert marks
    patch(kube, drill.DEPLOYMENT, {"metadata": {"annotations": dict.fromkeys(marks)}}, "application/merge-patch+json")
    forced = {"bad_deploy_force": True, "bad_deploy_force_reason": "checking the rollback again"}
    pinned = run_playbook(PLAYBOOK, extra_vars={**extra_vars(context), **forced})
    assert pinned.returncode == 0, pinned.output[-4000:]
    assert "already runs the known-good revision of this incident" in " ".join(pinned.stdout.split())
    assert image(deployment(kube, "shop", "api")) == drill.GOOD_IMAGE
    assert differences(settled, state(kube)) == []


def test_ecs_failed_deployment_rolled_back_with_the_pipeline_frozen_then_released_when_asked(aws, kube, run_playbook):
    create_pipeline(aws)
    injected = service_down.inject(aws)["_drill"]
    args = {
        **QUICK,
        "bad_deploy_platform": "ecs",
        "bad_deploy_cluster": injected["cluster"],
        "bad_deploy_service": injected["service"],
        "bad_deploy_pipelines": [PIPELINE],
        "bad_deploy_release_freeze": True,
    }
    aws.proxy.clear_log()
    run = run_playbook(PLAYBOOK, extra_vars=args)
    assert run.returncode == 0, run.output[-4000:]
    service_down.verify(aws, {"_drill": injected})
    text = " ".join(run.stdout.split())
    assert f"rolled back shop-api from {injected['bad']} to {injected['good']}" in text, text[-3000:]
    assert "symptom: deployment ecs-svc/" in text
    assert "deploys unfrozen:" in text
    # frozen, then released: the transitions enabled again and the flag gone (it did not exist before)
    calls = mutating_calls(aws, MUTATING)
    assert calls.index("DisableStageTransition") < calls.index("UpdateService") < calls.index("EnableStageTransition")
    assert "PutParameter" in calls and "DeleteParameter" in calls
    assert all(enabled in (True, None) for enabled in transitions(aws).values()), transitions(aws)
    assert flag(aws) is None
    [resolved] = lifecycle(run, "resolved", real=True)
    assert "unfrozen again" in resolved["summary"]
    freezes = [
        r for r in records(run) if r.get("action") == "firebreak.runbooks.deploy_freeze" and not r.get("check_mode")
    ]
    assert [r["event"] for r in freezes] == ["task_changed", "task_changed"]
    triage = [r for r in records(run) if r.get("action") == "firebreak.runbooks.aws_triage_info"]
    assert triage and triage[-1]["event"] == "task_ok", triage
    assert "the executions of app-deploy are in the timeline" in text
    assert run.timeline.with_name("report.json").is_file()


def test_production_without_approval_stops_at_the_freeze_gate_before_any_change(aws, kube, run_playbook):
    injected = service_down.inject(aws)["_drill"]
    before = state(aws)
    aws.proxy.clear_log()
    run = run_playbook(PLAYBOOK, extra_vars={**QUICK, "firebreak_environment": "production"})
    assert run.returncode != 0
    text = " ".join(run.stdout.split())
    assert "gate bad-deploy-freeze not confirmed (approval_required in production): nothing was changed" in text, text[
        -4000:
    ]
    assert "firebreak_gate_approvals" in text
    assert mutating_calls(aws, MUTATING) == []
    assert differences(before, state(aws)) == []
    assert (
        aws.client("ecs")
        .describe_services(cluster="shop", services=["shop-api"])["services"][0]["taskDefinition"]
        .endswith(injected["bad"])
    )
    assert not lifecycle(run, "resolved", real=True)


def test_a_bad_name_stops_before_any_call(aws, kube, run_playbook):
    before = state(aws)
    run = run_playbook(PLAYBOOK, extra_vars={"bad_deploy_platform": "kubernetes", "bad_deploy_configmap": "Cfg/../x"})
    assert run.returncode != 0
    assert 'bad_deploy_configmap "Cfg/../x" is not a ConfigMap name' in " ".join(run.output.split())
    assert "Traceback" not in run.output
    assert differences(before, state(aws)) == []
