"""The role contract, for every role under roles/ (no list kept by hand).

meta/argument_specs.yml is the single source of a role's variables: defaults/main.yml agrees with it and the
README's variable table is what tools/role_readme.py writes from it. The tasks use FQCNs and the role's prefixes,
pass the role's retry budget to every step module call and the incident id to every module that takes one, and
the step has its page under docs/steps/.
"""

from __future__ import annotations

import importlib
import sys

import pytest
import yaml

from sandbox import REPO_ROOT
from tools import role_readme

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

ROLES = [path.name for path in role_readme.roles()]
KEYWORDS = {
    "name",
    "register",
    "when",
    "vars",
    "tags",
    "no_log",
    "loop",
    "loop_control",
    "check_mode",
    "changed_when",
    "failed_when",
    "delegate_to",
    "run_once",
    "until",
    "retries",
    "delay",
    "environment",
    "ignore_errors",
    "block",
    "rescue",
    "always",
}


def _spec(role: str) -> dict:
    return role_readme.options(REPO_ROOT / "roles" / role)


def _tasks(role: str):
    """(file name, task) for every task of the role, blocks included, in every tasks file."""

    def walk(tasks):
        for task in tasks or []:
            yield task
            for section in ("block", "rescue", "always"):
                yield from walk(task.get(section))

    for path in sorted((REPO_ROOT / "roles" / role / "tasks").glob("*.yml")):
        for task in walk(yaml.safe_load(path.read_text())):
            yield path.name, task


def _action(task: dict) -> str | None:
    return next((key for key in task if key not in KEYWORDS), None)


def _step_calls(role: str) -> list[tuple[str, str, dict]]:
    """(tasks file, module, arguments) of every call of one of our modules."""
    calls = []
    for path, task in _tasks(role):
        action = _action(task)
        if action and action.startswith("firebreak.runbooks."):
            calls.append((path, action.rsplit(".", 1)[-1], task[action] or {}))
    return calls


def _role_includes(role: str) -> list[tuple[str, str, dict]]:
    """(tasks file, role, vars) of every include of one of the collection's roles."""
    found = []
    for path, task in _tasks(role):
        action = _action(task)
        if action in ("ansible.builtin.include_role", "ansible.builtin.import_role"):
            name = str((task[action] or {}).get("name", ""))
            if name.startswith("firebreak.runbooks."):
                found.append((path, name.removeprefix("firebreak.runbooks."), task.get("vars") or {}))
    return found


def _module_options(module: str) -> set[str]:
    """The options a module documents, its firebreak.runbooks doc fragments included."""
    source = importlib.import_module(f"ansible_collections.firebreak.runbooks.plugins.modules.{module}")
    doc = yaml.safe_load(source.DOCUMENTATION)
    options = set(doc.get("options") or {})
    for fragment in doc.get("extends_documentation_fragment") or []:
        if not fragment.startswith("firebreak.runbooks."):
            continue
        name, _, variant = fragment.removeprefix("firebreak.runbooks.").partition(".")
        holder = importlib.import_module(f"ansible_collections.firebreak.runbooks.plugins.doc_fragments.{name}")
        text = getattr(holder.ModuleDocFragment, variant or "DOCUMENTATION")
        options |= set(yaml.safe_load(text).get("options") or {})
    return options


def test_the_loop_sees_every_role():
    on_disk = {path.name for path in (REPO_ROOT / "roles").iterdir() if path.is_dir()}
    assert set(ROLES) == on_disk, on_disk ^ set(ROLES)
    assert len(ROLES) >= 23


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_type_and_describe_every_prefixed_option(role):
    spec = _spec(role)
    assert spec, f"roles/{role}/meta/argument_specs.yml has no options"
    for name, opt in spec.items():
        assert name.startswith(f"{role}_"), name
        assert opt.get("type") and opt.get("description"), name
        assert not (opt.get("required") and "default" in opt), name


@pytest.mark.parametrize("role", ROLES)
def test_defaults_agree_with_argument_specs(role):
    defaults = yaml.safe_load((REPO_ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}
    assert defaults == {name: opt["default"] for name, opt in _spec(role).items() if "default" in opt}


@pytest.mark.parametrize("role", ROLES)
def test_readme_table_is_what_the_generator_writes(role):
    path = REPO_ROOT / "roles" / role / "README.md"
    assert path.read_text() == role_readme.rendered(path.parent), f"{path} differs: run make docs"


def test_the_generator_renders_the_spec_and_sees_a_stale_table(tmp_path):
    role = tmp_path / "roles" / "demo"
    (role / "meta").mkdir(parents=True)
    (role / "meta" / "argument_specs.yml").write_text(
        yaml.safe_dump(
            {
                "argument_specs": {
                    "main": {
                        "options": {
                            "demo_name": {"type": "str", "required": True, "description": "Name of C(it)."},
                            "demo_state": {
                                "type": "str",
                                "default": "on",
                                "choices": ["on", "off"],
                                "description": ["With O(demo_name=x),", "a | pipe."],
                            },
                            "demo_ids": {"type": "list", "elements": "str", "default": [], "description": "Ids."},
                        }
                    }
                }
            },
            sort_keys=False,
        )
    )
    (role / "README.md").write_text(f"# demo\n\n{role_readme.BEGIN}\n| old |\n{role_readme.END}\n\nMore.\n")
    assert role_readme.rendered(role).splitlines() == [
        "# demo",
        "",
        role_readme.BEGIN,
        "| Variable | Type | Default | Description |",
        "|---|---|---|---|",
        "| `demo_name` | str | *required* | Name of `it`. |",
        '| `demo_state` | str | `"on"` | With `demo_name=x`, a \\| pipe. Choices: `"on"`, `"off"`. |',
        "| `demo_ids` | list of str | `[]` | Ids. |",
        role_readme.END,
        "",
        "More.",
    ]
    (role / "README.md").write_text("# demo without markers\n")
    with pytest.raises(ValueError, match="no variable table markers"):
        role_readme.rendered(role)


@pytest.mark.parametrize("role", ROLES)
def test_tasks_use_fqcns_and_the_roles_prefixes(role):
    for path, task in _tasks(role):
        action = _action(task)
        if action is None:  # a block
            continue
        assert action.count(".") == 2, f"roles/{role}/tasks/{path}: {task.get('name')}: {action} is not an FQCN"
        register = task.get("register")
        assert register is None or register.startswith((f"__{role}_", f"{role}_")), register


@pytest.mark.parametrize("role", ROLES)
def test_every_step_call_gets_the_roles_retry_budget(role):
    """A budget typed and documented but not passed on would leave the module's default in force."""
    calls = _step_calls(role)
    composed = _role_includes(role)
    if not calls and composed:  # a role that composes step roles passes its budget to each of them
        stepped = [(path, name, task_vars) for path, name, task_vars in composed if not name.startswith("incident_")]
        assert stepped, f"roles/{role} includes none of the collection's step roles"
        for path, name, task_vars in stepped:
            value = str(task_vars.get(f"{name}_retry_budget", ""))
            assert value == f"{{{{ {role}_retry_budget | int }}}}", (
                f"roles/{role}/tasks/{path}: role {name} gets {name}_retry_budget={value!r}, not {role}_retry_budget"
            )
        return
    assert calls, f"roles/{role} calls none of the collection's step modules"
    if role.startswith("incident_") and not any("retry_budget" in _module_options(module) for _, module, _ in calls):
        pytest.skip(f"roles/{role} is a frame role calling only record modules: no API call to budget")
    spec = _spec(role)
    budgets = {name for name in spec if name.endswith("_retry_budget")}
    assert budgets, f"roles/{role}/meta/argument_specs.yml has no {role}_retry_budget"
    passed = set()
    for path, module, args in calls:
        if "retry_budget" not in _module_options(module):
            continue  # a record module (incident_note: on the controller, no API call to budget)
        value = str(args.get("retry_budget", ""))
        variable = value.removeprefix("{{ ").removesuffix(" | int }}")
        assert variable in budgets and value == f"{{{{ {variable} | int }}}}", (
            f"roles/{role}/tasks/{path}: {module} gets retry_budget={value!r}, not one of {sorted(budgets)}"
        )
        passed.add(variable)
    assert passed == budgets, f"typed but never passed on: {sorted(budgets - passed)}"
    for name in budgets:
        assert {key: spec[name].get(key) for key in ("type", "default")} == {"type": "int", "default": 60}, name
    # Platform roles (scale_out) have one budget per platform file; every other role has exactly <role>_retry_budget.
    if len(budgets) == 1:
        assert budgets == {f"{role}_retry_budget"}


@pytest.mark.parametrize("role", ROLES)
def test_every_call_of_a_module_that_takes_the_incident_passes_it(role):
    for path, module, args in _step_calls(role):
        if "incident_id" in _module_options(module):
            assert "incident_id" in args, f"roles/{role}/tasks/{path}: {module} is not told the incident"


@pytest.mark.parametrize("role", ROLES)
def test_every_role_has_its_step_page(role):
    assert (REPO_ROOT / "docs" / "steps" / f"{role}.md").is_file(), f"docs/steps/{role}.md is missing"


@pytest.mark.parametrize("role", ROLES)
def test_a_verify_skipped_in_check_mode_also_skips_on_a_predicted_result(role):
    """``include_role`` with ``apply: {check_mode: true}`` (how the frame plans a step for its gate) runs the role's
    tasks in check mode without setting ``ansible_check_mode``: a verify guarded by that variable alone would assert
    on a prediction. Every such guard must also look at the step result's ``predicted``."""
    for path, task in _tasks(role):
        when = task.get("when")
        conditions = when if isinstance(when, list) else [when]
        text = " and ".join(str(condition) for condition in conditions if condition is not None)
        if "not ansible_check_mode" in text and role not in (
            "incident_declare",
            "incident_gate",
            "release_containment",
        ):
            assert ".predicted | default(false)" in text, f"roles/{role}/tasks/{path}: {task.get('name')}: {text}"
