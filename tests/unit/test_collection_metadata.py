"""The collection's metadata stays consistent with its plugins and with what the venv provides."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from sandbox import REPO_ROOT

MODULES = REPO_ROOT / "plugins" / "modules"
SITE = Path(yaml.__file__).resolve().parents[1] / "ansible_collections"


def _documentation(module: Path) -> dict:
    text = module.read_text(encoding="utf-8")
    match = re.search(r'^DOCUMENTATION\s*=\s*r?(["\']{3})(.*?)\1', text, re.S | re.M)
    assert match, f"{module} has no DOCUMENTATION"
    return yaml.safe_load(match.group(2))


def _modules_extending(fragment_prefix: str) -> set[str]:
    found = set()
    for module in MODULES.glob("*.py"):
        fragments = _documentation(module).get("extends_documentation_fragment") or []
        if any(str(fragment).startswith(fragment_prefix) for fragment in fragments):
            found.add(module.stem)
    return found


def test_aws_action_group_lists_exactly_the_modules_taking_aws_credentials():
    runtime = yaml.safe_load((REPO_ROOT / "meta" / "runtime.yml").read_text())
    group = runtime["action_groups"]["aws"]
    assert len(group) == len(set(group)), f"duplicates in the aws action group: {group}"
    assert set(group) == _modules_extending("amazon.aws.common")


def test_k8s_action_group_lists_exactly_the_modules_taking_kubernetes_credentials():
    runtime = yaml.safe_load((REPO_ROOT / "meta" / "runtime.yml").read_text())
    group = runtime["action_groups"]["k8s"] or []
    assert len(group) == len(set(group))
    assert set(group) == _modules_extending("kubernetes.core.k8s_auth_options")


def _in_range(version: str, spec: str) -> bool:
    def parse(value: str) -> tuple[int, ...]:
        return tuple(int(part) for part in value.split("."))

    for clause in spec.split(","):
        op, bound = re.match(r"\s*(>=|<=|==|<|>|!=)\s*([\d.]+)", clause).groups()
        left, right = parse(version), parse(bound)
        if not {
            ">=": left >= right,
            "<=": left <= right,
            "==": left == right,
            "<": left < right,
            ">": left > right,
            "!=": left != right,
        }[op]:
            return False
    return True


def test_galaxy_dependencies_are_satisfied_by_the_bundled_collections():
    galaxy = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())
    assert (galaxy["namespace"], galaxy["name"]) == ("firebreak", "runbooks")
    assert set(galaxy["dependencies"]) == {"amazon.aws", "kubernetes.core"}
    for name, spec in galaxy["dependencies"].items():
        namespace, collection = name.split(".")
        manifest = json.loads((SITE / namespace / collection / "MANIFEST.json").read_text())
        version = manifest["collection_info"]["version"]
        assert _in_range(version, spec), f"{name} {version} (bundled) does not satisfy {spec}"


def test_galaxy_version_range_check_can_fail():
    assert not _in_range("12.0.0", ">=9.0.0,<12.0.0")
    assert _in_range("10.1.2", ">=9.0.0,<12.0.0")


def test_every_plugin_and_module_is_documented_with_a_version_added():
    for module in MODULES.glob("*.py"):
        doc = _documentation(module)
        assert doc["module"] == module.stem, module
        assert str(doc.get("version_added")), module
