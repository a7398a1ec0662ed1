"""deploy_freeze against the sandbox: CodePipeline transitions (the fault proxy's canned, stateful answers:
moto lacks DisableStageTransition, EnableStageTransition and GetPipelineState) and the SSM flag, read back."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.containment_helpers import last_seq, step
from tests.integration.proof import first_case_in_make_test

pytestmark = pytest.mark.integration

MODULE = "deploy_freeze"
INCIDENT = "INC-FREEZE-1"
FLAG = "/firebreak/deploy-freeze"
MUTATING = {"DisableStageTransition", "EnableStageTransition", "PutParameter", "DeleteParameter", "TagResource"}
STAGES = ["Source", "Build", "Deploy"]


@pytest.fixture
def pipeline(aws):
    """A three-stage pipeline (Source, Build, Deploy), as the seeds' deploy-app pipeline."""
    iam = aws.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName="codepipeline-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]

    def action(category, provider, configuration, inputs=(), outputs=()):
        return {
            "name": f"{category.lower()}-action",
            "actionTypeId": {"category": category, "owner": "AWS", "provider": provider, "version": "1"},
            "configuration": configuration,
            "inputArtifacts": [{"name": n} for n in inputs],
            "outputArtifacts": [{"name": n} for n in outputs],
        }

    stages = [
        {"name": "Source", "actions": [action("Source", "S3", {"S3Bucket": "b", "S3ObjectKey": "k"}, outputs=["src"])]},
        {"name": "Build", "actions": [action("Build", "CodeBuild", {"ProjectName": "app"}, ["src"], ["img"])]},
        {
            "name": "Deploy",
            "actions": [action("Deploy", "ECS", {"ClusterName": "shop", "ServiceName": "shop-api"}, ["img"])],
        },
    ]
    for name in ("app-deploy", "iac-deploy"):
        aws.client("codepipeline").create_pipeline(
            pipeline={
                "name": name,
                "roleArn": role,
                "artifactStore": {"type": "S3", "location": "firebreak-sandbox-uploads"},
                "stages": stages,
            }
        )
    return "app-deploy"


def inbound(aws, name="app-deploy") -> dict:
    state = aws.client("codepipeline").get_pipeline_state(name=name)
    return {
        s["stageName"]: (s["inboundTransitionState"]["enabled"], s["inboundTransitionState"].get("disabledReason"))
        for s in state["stageStates"]
        if "inboundTransitionState" in s
    }


def flag(aws):
    try:
        return aws.client("ssm").get_parameter(Name=FLAG)["Parameter"]
    except aws.client("ssm").exceptions.ParameterNotFound:
        return None


def mutations(aws, since):
    return [e for e in aws.proxy.log() if e["seq"] > since and e["action"] in MUTATING]


def freeze(run_playbook, **kw):
    return step(run_playbook, MODULE, pipelines=["app-deploy"], incident_id=INCIDENT, **kw)


def test_canned_transitions_behave_like_the_api_reference(aws, pipeline):
    cp = aws.client("codepipeline")
    assert inbound(aws) == {"Build": (True, None), "Deploy": (True, None)}, "the first stage has no inbound transition"
    cp.disable_stage_transition(pipelineName=pipeline, stageName="Deploy", transitionType="Inbound", reason="hold on")
    assert inbound(aws)["Deploy"] == (False, "hold on")
    with pytest.raises(cp.exceptions.StageNotFoundException):
        cp.disable_stage_transition(pipelineName=pipeline, stageName="Nope", transitionType="Inbound", reason="x")
    with pytest.raises(cp.exceptions.PipelineNotFoundException):
        cp.get_pipeline_state(name="no-such-pipeline")
    cp.enable_stage_transition(pipelineName=pipeline, stageName="Deploy", transitionType="Inbound")
    assert inbound(aws)["Deploy"] == (True, None)
    aws.reset_aws()
    assert aws.proxy._transitions == {}


def test_freeze_disables_transitions_sets_the_flag_and_release_lifts_only_this_incidents(aws, run_playbook, pipeline):
    run, result = freeze(run_playbook)
    assert run.returncode == 0, run.output
    assert result["changed"] is True
    state = inbound(aws)
    assert {stage: enabled for stage, (enabled, _reason) in state.items()} == {"Build": False, "Deploy": False}
    assert INCIDENT in state["Deploy"][1]
    assert inbound(aws, "iac-deploy") == {"Build": (True, None), "Deploy": (True, None)}, "other pipelines untouched"
    value = json.loads(flag(aws)["Value"])
    assert value["frozen"] is True and value["incident_id"] == INCIDENT
    kinds = {e["kind"]: e for e in result["containment"]}
    assert kinds["pipeline"]["changed"]["disabled_transitions"] == ["Build", "Deploy"]
    assert kinds["parameter"]["changed"]["previous"] is None

    seq = last_seq(aws)
    run, again = freeze(run_playbook)
    assert run.returncode == 0 and again["changed"] is False, run.output
    assert mutations(aws, seq) == []

    # Meanwhile: someone enables Build by hand.
    aws.client("codepipeline").enable_stage_transition(
        pipelineName=pipeline, stageName="Build", transitionType="Inbound"
    )
    run, released = step(
        run_playbook, MODULE, state="released", incident_id=INCIDENT, containments=result["containment"]
    )
    assert run.returncode == 0, run.output
    assert released["changed"] is True
    assert inbound(aws) == {"Build": (True, None), "Deploy": (True, None)}
    assert "app-deploy/Build" in released["release"][0]["left_alone"]
    assert released["release"][0]["restored"]["enabled"] == {"app-deploy": ["Deploy"]}
    assert flag(aws) is None, "the flag did not exist before: it is deleted again"

    run, again = step(run_playbook, MODULE, state="released", incident_id=INCIDENT, containments=result["containment"])
    assert run.returncode == 0, run.output
    assert again["changed"] is False


def test_release_restores_a_previous_flag_and_leaves_one_changed_meanwhile(aws, run_playbook, pipeline):
    ssm = aws.client("ssm")
    ssm.put_parameter(Name=FLAG, Value='{"frozen": false}', Type="String")
    _run, result = freeze(run_playbook)
    entry = next(e for e in result["containment"] if e["kind"] == "parameter")
    assert entry["changed"]["previous"]["value"] == '{"frozen": false}'
    run, released = step(
        run_playbook, MODULE, state="released", incident_id=INCIDENT, containments=result["containment"]
    )
    assert run.returncode == 0, run.output
    assert flag(aws)["Value"] == '{"frozen": false}'

    _run, result = freeze(run_playbook)
    ssm.put_parameter(Name=FLAG, Value='{"frozen": true, "incident_id": "INC-OTHER"}', Type="String", Overwrite=True)
    run, released = step(
        run_playbook, MODULE, state="released", incident_id=INCIDENT, containments=result["containment"]
    )
    assert run.returncode == 0, run.output
    assert FLAG in released["release"][0]["left_alone"]
    assert "INC-OTHER" in flag(aws)["Value"]


def test_another_responders_freeze_of_a_stage_is_left_disabled(aws, run_playbook, pipeline):
    _run, result = freeze(run_playbook)
    cp = aws.client("codepipeline")
    cp.enable_stage_transition(pipelineName=pipeline, stageName="Deploy", transitionType="Inbound")
    cp.disable_stage_transition(
        pipelineName=pipeline, stageName="Deploy", transitionType="Inbound", reason="release hold"
    )
    run, released = step(
        run_playbook, MODULE, state="released", incident_id=INCIDENT, containments=result["containment"]
    )
    assert run.returncode == 0, run.output
    assert inbound(aws)["Deploy"] == (False, "release hold")
    assert "disabled again by someone else" in released["release"][0]["left_alone"]["app-deploy/Deploy"]


def test_check_mode_changes_nothing(aws, run_playbook, pipeline):
    seq = last_seq(aws)
    run, result = freeze(run_playbook, check=True, diff=True)
    assert run.returncode == 0, run.output
    assert result["changed"] is True and "would freeze" in result["msg"]
    assert inbound(aws) == {"Build": (True, None), "Deploy": (True, None)}
    assert flag(aws) is None
    assert mutations(aws, seq) == []


@first_case_in_make_test
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"pipelines": ["no-such-pipeline"]}, "CodePipeline pipeline 'no-such-pipeline' does not exist"),
        ({"stages": ["Nope"]}, "stage 'Nope' not found"),
        ({"stages": ["Source"]}, "stage 'Source' is the first stage"),
        ({"pipelines": ["bad name!"]}, "invalid pipeline name 'bad name!'"),
        ({"incident_id": ""}, "incident_id is required"),
        ({"parameter": "../etc/x"}, "invalid SSM parameter name '../etc/x': a name in a hierarchy must be fully"),
        ({"parameter": "/firebreak/../etc/x"}, "'/firebreak/../etc/x': the path segment '..' is not allowed"),
        ({"parameter": "firebreak/freeze"}, "'firebreak/freeze': a name in a hierarchy must be fully qualified"),
        ({"parameter": "ssm-freeze"}, "'ssm-freeze': names cannot begin with 'aws' or 'ssm'"),
        ({"parameter": "/freeze flag"}, "'/freeze flag': characters ' ' are not allowed"),
    ],
    ids=[
        "unknown-pipeline",
        "unknown-stage",
        "first-stage",
        "invalid-name",
        "no-incident",
        "parameter-climbing",
        "parameter-dotdot-segment",
        "parameter-not-fully-qualified",
        "parameter-reserved-prefix",
        "parameter-space",
    ],
)
def test_bad_input_fails_naming_the_value_and_changes_nothing(aws, run_playbook, pipeline, args, expected):
    seq = last_seq(aws)
    run, result = step(run_playbook, MODULE, **{"pipelines": ["app-deploy"], "incident_id": INCIDENT, **args})
    assert run.returncode != 0
    assert expected in result["msg"], result["msg"]
    assert result["changed"] is False
    assert flag(aws) is None and inbound(aws) == {"Build": (True, None), "Deploy": (True, None)}
    assert mutations(aws, seq) == []
    assert aws.client("ssm").describe_parameters()["Parameters"] == []  # no parameter of any name was created


@pytest.mark.proof
def test_permanent_5xx_fails_within_budget_naming_call_and_code(aws, run_playbook, pipeline):
    aws.proxy.add_rule({"service": "codepipeline", "action": "DisableStageTransition", "fault": "error"})
    started = time.monotonic()
    run, result = freeze(run_playbook, retry_budget=3)
    assert run.returncode != 0
    assert time.monotonic() - started < 60
    assert "DisableStageTransition" in result["msg"] and "InternalFailure" in result["msg"], result["msg"]
