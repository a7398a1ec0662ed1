"""wafv2_ip_block, iam_credential_quarantine, ec2_nacl_block: the modules' RETURN docs name every key they return
(read from the sources). The roles' contract is tests/unit/test_role_contract.py."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import yaml

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.modules import (
    ec2_nacl_block,
    iam_credential_quarantine,
    wafv2_ip_block,
)

MODULES = [wafv2_ip_block, iam_credential_quarantine, ec2_nacl_block]


def _result_keys(module) -> set[str]:
    """String keys of dict literals assigned to ``result`` / subscripted on ``result`` in the module source."""
    tree = ast.parse(Path(module.__file__).read_text())
    keys = set()
    for node in ast.walk(tree):
        targets = getattr(node, "targets", [])
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and any(_is_result(t) for t in targets):
            keys |= {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
        slice_ = getattr(node, "slice", None)
        if isinstance(node, ast.Subscript) and _is_result(node.value) and isinstance(slice_, ast.Constant):
            keys.add(slice_.value)
    return {key for key in keys if isinstance(key, str)}


def _is_result(node) -> bool:
    return isinstance(node, ast.Name) and node.id == "result"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_return_docs_cover_every_returned_key(module):
    documented = set(yaml.safe_load(module.RETURN))
    returned = _result_keys(module) - {"changed"}
    assert returned, "no result keys found"
    assert returned <= documented, returned - documented


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_documented_options_match_the_argument_spec(module):
    options = yaml.safe_load(module.DOCUMENTATION)["options"]
    shared = ("retry_budget", "incident_id", "claims_bucket", "claims_dir")  # from the step doc fragments
    if "firebreak.runbooks.step.CONTAINMENT" in module.DOCUMENTATION:
        shared += tuple(k for k in ("state", "containments") if k not in options)
    spec = {k: v for k, v in module.ARGUMENT_SPEC.items() if k not in shared}
    assert set(options) == set(spec)
    for name, opt in options.items():
        assert opt["type"] == spec[name]["type"], name
        assert opt.get("default") == spec[name].get("default"), name
        assert opt.get("choices") == spec[name].get("choices"), name
