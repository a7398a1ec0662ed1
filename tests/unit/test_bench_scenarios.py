"""bench/scenarios.py without a sandbox: every scenario has a baseline, the ratio arithmetic, the report, the two
renderings of a step list (the shell word of a JSON body, the Python script) and the results.md section."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bench import scenarios
from bench.scenario_baselines import BASELINES
from bench.scenario_steps import Call, Raw, V, render_python, render_shell
from sandbox import REPO_ROOT
from sandbox.drills import available


def test_every_scenario_has_a_drill_and_a_baseline():
    playbooks = {path.name.removesuffix(".meta.yml") for path in (REPO_ROOT / "playbooks").glob("*.meta.yml")}
    assert playbooks, "no scenario playbooks found"
    assert playbooks == set(available()), "a scenario playbook without a drill (or the reverse)"
    missing = sorted(playbooks - set(BASELINES))
    assert not missing, f"scenarios with no bench entry in bench/scenario_baselines.py BASELINES: {missing}"
    assert not set(BASELINES) - playbooks, f"bench entries for no scenario: {sorted(set(BASELINES) - playbooks)}"
    for name, baseline in BASELINES.items():
        assert baseline.seed and callable(baseline.steps), name


def test_ratios_with_and_without_the_fixed_start_up():
    got = scenarios.ratios(scenario_s=10.0, empty_s=2.0, cli_s=5.0, boto3_s=4.0)
    assert got == {
        "work_s": 8.0,
        "vs_cli": 2.0,
        "vs_cli_without_startup": 1.6,
        "vs_boto3": 2.5,
        "vs_boto3_without_startup": 2.0,
    }
    only_boto3 = scenarios.ratios(3.0, 4.0, None, 1.5)  # CLI skipped; a scenario faster than the start-up
    assert only_boto3 == {"work_s": 0.0, "vs_boto3": 2.0, "vs_boto3_without_startup": 0.0}


def test_aws_calls_counts_the_log_per_service():
    log = [{"service": "ecs"}, {"service": "s3"}, {"service": "ecs"}]
    assert scenarios.aws_calls(log) == {"total": 3, "per_service": {"ecs": 2, "s3": 1}}
    assert scenarios.aws_calls([]) == {"total": 0, "per_service": {}}


def _figures() -> dict:
    calls = {"total": 6, "per_service": {"ecs": 4, "s3": 2}}
    return {
        "when": "2026-12-07T02:00:00+00:00",
        "repeat": 1,
        "load_1m": {"start": 3.5, "end": 4.0},
        "total_s": 99.0,
        "empty_s": 2.0,
        "empty_runs": 2,
        "awscli": "`aws` from bench/.awscli-venv/bin/aws",
        "scenarios": {
            "service_down": {
                "seed": "ecs-fargate-plan.md",
                "scenario": {"s": 10.0, "calls": calls, "fixed": True, "problems": []},
                "cli": {"s": 5.0, "calls": {"total": 6, "per_service": {"ecs": 6}}, "fixed": True, "problems": []},
                "boto3": {"s": 4.0, "calls": {"total": 6, "per_service": {"ecs": 6}}, "fixed": True, "problems": []},
                "ratios": scenarios.ratios(10.0, 2.0, 5.0, 4.0),
            },
            "data_loss": {
                "seed": "incident-procedures.md",
                "scenario": {"s": 6.0, "calls": calls, "fixed": True, "problems": []},
                "cli": {"s": None, "skipped": "no aws CLI"},
                "boto3": {"s": 3.0, "calls": calls, "fixed": False, "problems": ["NOT FIXED: key still deleted"]},
                "ratios": scenarios.ratios(6.0, 2.0, None, 3.0),
            },
        },
    }


def test_report_has_a_row_per_scenario_with_its_ratios():
    lines = scenarios.report(_figures())
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines if line.startswith("| ") and "---" not in line}
    assert set(rows) == {"scenario", "service_down", "data_loss"}
    assert "| 10.0 | 6 (ecs 4, s3 2) | 5.0 (6) | 4.0 (6) | 2.0x | 1.6x | 2.5x | 2.0x |" in rows["service_down"]
    assert "| no aws CLI | 3.0 (6) NOT FIXED | - | - | 2.0x | 1.33x |" in rows["data_loss"]
    assert "- data_loss boto3: NOT FIXED: key still deleted" in lines
    assert any("**2.0 s**" in line for line in lines), "the fixed start-up is reported apart"
    assert any("1-minute load 3.5 at the start, 4.0 at the end" in line for line in lines)


def test_write_section_replaces_only_its_own(tmp_path: Path):
    results = tmp_path / "results.md"
    results.write_text("# make bench: results\n\n## ecs\n\n- ecs line\n\n## scenarios\n\nold\n\n## eda\n\n- eda line\n")
    scenarios.write_section(scenarios.render(_figures()), results)
    text = results.read_text()
    assert "- ecs line" in text and "- eda line" in text and "old" not in text
    assert text.count("## scenarios") == 1 and "| service_down |" in text


STEPS = [
    Call("wafv2", "get_ip_set", {"Name": "x", "Id": "1"}, save={"lock": "LockToken"}),
    Call("wafv2", "get_web_acl", {"Name": "acl"}, save={"rules": "WebACL.Rules", "token": "LockToken"}),
    Call("ssm", "put_parameter", {"Name": "/p", "Value": json.dumps({"a": "it's $HOME `x` \\"}), "Lock": V("lock")}),
    Call("ecs", "services_stable", {"cluster": "c", "services": ["s"]}, wait=True),
    Raw(
        sh="kubectl get deployment api -n shop -o json >/dev/null",
        py="apps().read_namespaced_deployment('api', 'shop')",
    ),
]


def test_render_shell_makes_one_cli_call_per_step_and_splices_saved_values():
    script = render_shell("demo", STEPS)
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)  # it parses
    assert "lock=$(aws wafv2 get-ip-set --cli-input-json" in script and "--query 'LockToken')" in script
    assert "_answer=$(aws wafv2 get-web-acl" in script, "two values of one answer: one call, queried twice"
    assert "aws ecs wait services-stable --cli-input-json" in script
    assert "kubectl get deployment api" in script
    line = next(line for line in script.splitlines() if line.startswith("aws ssm put-parameter"))
    word = line.removeprefix("aws ssm put-parameter --cli-input-json ").removesuffix(" >/dev/null")
    # the body comes out of the shell as the JSON it was, with the saved value (JSON text) spliced in
    out = subprocess.run(
        ["bash", "-c", f"lock='\"tok-1\"'; printf '%s' {word}"], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == {"Lock": "tok-1", "Name": "/p", "Value": json.dumps({"a": "it's $HOME `x` \\"})}


def test_render_python_makes_the_same_calls_in_one_process():
    script = render_python("demo", STEPS)
    compile(script, "demo.py", "exec")
    assert "r = client('wafv2').get_ip_set(**fill(" in script
    assert "v['lock'] = jmespath.search('LockToken', r)" in script
    assert "client('ecs').get_waiter('services_stable').wait(" in script
    assert "def k8s_undo" in script, "a Kubernetes step brings the kubernetes client helpers"
    namespace: dict = {}
    exec(render_python("empty", []), namespace)  # noqa: S102 - the prelude alone: clients, v, fill
    namespace["v"]["lock"] = "tok-1"
    body = json.dumps({"Lock": V("lock"), "Name": "/p"})
    assert namespace["fill"](body) == {"Lock": "tok-1", "Name": "/p"}


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_names_its_seed(name):
    assert ".md" in BASELINES[name].seed, f"{name}: the baseline must say which seed its commands come from"
