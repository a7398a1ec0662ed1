"""The Kubernetes step roles: argument specs, defaults and READMEs agree; tasks use FQCNs."""

from __future__ import annotations

import re

import pytest
import yaml

from sandbox import REPO_ROOT

ROLES = ["eks_rollout_undo", "k8s_rolling_restart", "k8s_config_rollback", "k8s_namespace_isolate"]


def _spec(role: str) -> dict:
    path = REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml"
    return yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]


@pytest.mark.parametrize("role", ROLES)
def test_defaults_agree_with_argument_specs(role):
    defaults = yaml.safe_load((REPO_ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}
    spec = _spec(role)
    assert defaults == {name: opt["default"] for name, opt in spec.items() if "default" in opt}
    for name, opt in spec.items():
        assert name.startswith(f"{role}_"), name
        assert opt.get("type") and opt.get("description"), name
        assert not (opt.get("required") and "default" in opt), name


@pytest.mark.parametrize("role", ROLES)
def test_readme_documents_every_option(role):
    readme = (REPO_ROOT / "roles" / role / "README.md").read_text()
    rows = dict(re.findall(rf"^\| `({role}_\w+)` \| ([^|]+) \|", readme, re.M))
    assert set(rows) == set(_spec(role))
    for name, opt in _spec(role).items():
        assert rows[name].strip() == opt["type"], name


@pytest.mark.parametrize("role", ROLES)
def test_tasks_use_fqcn_and_role_prefix(role):
    tasks = yaml.safe_load((REPO_ROOT / "roles" / role / "tasks" / "main.yml").read_text())
    for task in tasks:
        action = next(k for k in task if k not in {"name", "register", "when", "vars", "tags", "no_log", "check_mode"})
        assert action.count(".") == 2, f"{task['name']}: {action} is not an FQCN"
        register = task.get("register")
        assert register is None or register.startswith((f"__{role}_", f"{role}_")), register


K8S_STEP_CALLS = {  # role -> (tasks file, the variable that holds its retry budget)
    **{role: ("main.yml", f"{role}_retry_budget") for role in ROLES},
    "scale_out": ("kubernetes.yml", "scale_out_k8s_retry_budget"),
}


@pytest.mark.parametrize("role", sorted(K8S_STEP_CALLS))
def test_every_kubernetes_step_call_gets_the_roles_retry_budget(role):
    """A role variable that is typed and documented but not passed on would leave the module's default in force."""
    tasks_file, variable = K8S_STEP_CALLS[role]
    tasks = yaml.safe_load((REPO_ROOT / "roles" / role / "tasks" / tasks_file).read_text())
    calls = [task[key] for task in tasks for key in task if key.startswith("firebreak.runbooks.k8s_")]
    assert calls, f"no Kubernetes step module call in roles/{role}/tasks/{tasks_file}"
    for args in calls:
        assert args.get("retry_budget") == f"{{{{ {variable} | int }}}}", args
    assert _spec(role)[variable] == {**_spec(role)[variable], "type": "int", "default": 60}
