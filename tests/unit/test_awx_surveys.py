"""The AWX surveys agree with the specs they come from (tools/awx_surveys.py; make awx).

For every scenario (no list kept by hand): the committed awx/surveys/<scenario>.json, awx/job_templates.yml and
awx/workflows.yml are what the generator writes now, and each survey question agrees with its option (the
scenario's playbooks/<scenario>.meta.yml or the role's meta/argument_specs.yml): same variables, names, types,
choices, required, defaults. The scenario's meta agrees with the playbook's own play vars.
"""

from __future__ import annotations

import json

import pytest
import yaml

from sandbox import REPO_ROOT
from tools import awx_surveys

SCENARIOS = awx_surveys.scenarios()


def test_every_scenario_is_covered():
    assert "service_down" in SCENARIOS
    surveys = sorted(p.stem for p in (REPO_ROOT / "awx" / "surveys").glob("*.json"))
    assert surveys == sorted(SCENARIOS)


def test_generated_files_are_current():
    stale = [
        str(path.relative_to(REPO_ROOT))
        for path, text in awx_surveys.rendered().items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"{stale} differ from the specs (run: make awx)"


def _committed(scenario: str) -> dict:
    return json.loads((REPO_ROOT / "awx" / "surveys" / f"{scenario}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_survey_agrees_with_spec(scenario):
    options = awx_surveys.spec_options(scenario)
    spec = _committed(scenario)["spec"]
    variables = [q["variable"] for q in spec]
    assert sorted(set(variables) - set(options)) == [], "survey variables with no option in the spec"
    assert sorted(set(options) - set(variables)) == [], "spec options the survey does not ask"
    assert len(variables) == len(set(variables)), "a variable asked twice"
    for q in spec:
        opt = options[q["variable"]]
        expected = awx_surveys.question(q["variable"], opt)
        for field in ("question_name", "type", "required", "default", "choices", "min", "max"):
            assert q.get(field) == expected.get(field), f"{scenario}: {q['variable']}: {field}"
        assert q["question_description"] == expected["question_description"], q["variable"]
        kind = opt.get("type", "str")
        assert q["type"] == {
            "int": "integer",
            "float": "float",
            "bool": "multiplechoice",
            "list": "multiselect",
        }.get(kind, "password" if opt.get("no_log") else ("multiplechoice" if opt.get("choices") else "text"))
        if opt.get("no_log"):
            assert q["type"] == "password" and q["default"] == ""


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_meta_defaults_agree_with_the_playbook(scenario):
    play = yaml.safe_load((REPO_ROOT / "playbooks" / f"{scenario}.yml").read_text(encoding="utf-8"))[0]
    own = awx_surveys.meta(scenario)["argument_specs"]["main"]["options"]
    play_vars = play.get("vars") or {}
    for name, value in play_vars.items():
        if name.startswith(f"{scenario}_"):
            assert name in own, f"{scenario}.yml's play var {name} has no option in {scenario}.meta.yml"
            assert own[name].get("default") == value, f"{name}: meta default differs from the play's"
    for name, opt in own.items():
        if not opt.get("required") and name.startswith(f"{scenario}_"):
            assert name in play_vars, f"{name}: optional in the meta, but the play does not default it"


def test_question_types():
    q = awx_surveys.question
    assert q("a", {"type": "str", "no_log": True, "default": "x"})["type"] == "password"
    assert q("a", {"type": "str", "no_log": True, "default": "x"})["default"] == ""
    assert q("a", {"type": "int", "default": 3})["default"] == 3
    assert q("a", {"type": "bool", "default": True}) == {
        "question_name": "a",
        "question_description": "",
        "variable": "a",
        "required": False,
        "type": "multiplechoice",
        "choices": ["true", "false"],
        "default": "true",
    }
    assert q("a", {"type": "str", "choices": ["x", "y"], "default": "y"})["choices"] == ["x", "y"]
    assert q("a", {"type": "list", "elements": "str", "choices": ["x", "y"], "default": ["y"]})["type"] == "multiselect"
    with pytest.raises(ValueError, match="no AWX survey question type"):
        q("a", {"type": "dict"})


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_survey_is_one_awx_accepts(scenario):
    from tests.integration.awx_standin import survey_error

    assert survey_error(_committed(scenario)) is None
    broken = _committed(scenario)
    broken["spec"][0]["type"] = "boolean"
    assert "not an AWX question type" in survey_error(broken)
