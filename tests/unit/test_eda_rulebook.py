"""The rulebook extensions/eda/rulebooks/service_down.yml parses and its conditions compile to the rules engine's
JSON with the sandbox variables (ansible-rulebook's own parser, no Java needed). ansible-rulebook 1.3.1 with
pyparsing 3.3.3 turned every ``and`` into a Drools ClassCastException at start; this catches such a lock."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("ansible_rulebook")

from ansible_rulebook.conf import settings
from ansible_rulebook.json_generator import generate_dict_rulesets
from ansible_rulebook.rules_parser import parse_rule_sets

from sandbox import REPO_ROOT

RULEBOOK = REPO_ROOT / "extensions" / "eda" / "rulebooks" / "service_down.yml"
VARS = REPO_ROOT / "extensions" / "eda" / "rulebooks" / "vars" / "sandbox.yml"


def test_rulebook_compiles_with_the_sandbox_variables(monkeypatch):
    # the parser looks the source's collection up with ansible-galaxy, through this repository's ansible.cfg
    monkeypatch.setattr(settings, "ansible_galaxy_path", str(Path(sys.executable).parent / "ansible-galaxy"))
    monkeypatch.setenv("ANSIBLE_CONFIG", str(REPO_ROOT / "ansible.cfg"))
    variables = yaml.safe_load(VARS.read_text())
    (ruleset,) = parse_rule_sets(yaml.safe_load(RULEBOOK.read_text()), variables)
    assert [s.source_name for s in ruleset.sources] == ["firebreak.runbooks.aws_sqs_durable"]
    (compiled,) = generate_dict_rulesets([ruleset], variables)
    rules = [r["Rule"] for r in compiled["RuleSet"]["rules"]]
    act, record = rules
    text = json.dumps(act["condition"])
    # the routed alarm list came from the variables, and the and-chain is a tree of single nodes, not lists
    assert '"firebreak-ecs-running-below-desired"' in text
    assert '"lhs": [' not in text
    assert act["actions"][0]["Action"]["action_args"]["name"] == "firebreak.runbooks.eda_service_down"
    assert record["actions"][0]["Action"]["action_args"]["name"] == "firebreak.runbooks.eda_alert"


def test_every_rulebook_compiles_and_routes_only_to_playbooks_that_exist(monkeypatch):
    monkeypatch.setattr(settings, "ansible_galaxy_path", str(Path(sys.executable).parent / "ansible-galaxy"))
    monkeypatch.setenv("ANSIBLE_CONFIG", str(REPO_ROOT / "ansible.cfg"))
    variables = {**yaml.safe_load(VARS.read_text()), "FIREBREAK_WEBHOOK_TOKEN": "t0ken"}  # --env-vars
    rulebooks = sorted((REPO_ROOT / "extensions" / "eda" / "rulebooks").glob("*.yml"))
    assert {p.name for p in rulebooks} >= {"service_down.yml", "incidents.yml", "kubernetes.yml"}
    sources = {}
    for path in rulebooks:
        (ruleset,) = parse_rule_sets(yaml.safe_load(path.read_text()), variables)
        sources[path.name] = [s.source_name for s in ruleset.sources]
        (compiled,) = generate_dict_rulesets([ruleset], variables)
        names = [
            action["Action"]["action_args"]["name"]
            for rule in compiled["RuleSet"]["rules"]
            for action in rule["Rule"]["actions"]
            if action["Action"]["action"] == "run_playbook"
        ]
        assert names[-1] == "firebreak.runbooks.eda_alert", f"{path.name}: the last rule must record everything else"
        for name in names:
            playbook = REPO_ROOT / "playbooks" / f"{name.removeprefix('firebreak.runbooks.')}.yml"
            assert playbook.exists(), f"{path.name} routes to {name}, which has no playbook"
        # every eda_ entry imports eda_alert first: the alert is recorded and confirmed before anything acts
        for name in names[:-1]:
            text = (REPO_ROOT / "playbooks" / f"{name.removeprefix('firebreak.runbooks.')}.yml").read_text()
            imports = [line.split(":", 1)[1].strip() for line in text.splitlines() if "import_playbook:" in line]
            assert imports[0] == "firebreak.runbooks.eda_alert", f"{name} does not record the alert first: {imports}"
    assert sources["kubernetes.yml"] == ["firebreak.runbooks.alertmanager_webhook"]
    assert sources["incidents.yml"] == sources["service_down.yml"] == ["firebreak.runbooks.aws_sqs_durable"]
