"""The execution environment definition (meta/execution-environment.yml): ``ansible-builder create`` writes a
build context holding the collection and every requirement, and the context's own introspection (the step the
image build runs after installing the collections) works on the collection as the image would install it.

No container runtime and no network: ``create`` only writes the context; the Galaxy dependencies are taken from
the venv's installed copies where the build would download them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from sandbox import REPO_ROOT

BIN = Path(sys.executable).parent
META = REPO_ROOT / "meta"
DEFINITION = META / "execution-environment.yml"
COLLECTIONS = "/usr/share/ansible/collections"  # where the image installs them (ansible-builder's default)
pytestmark = pytest.mark.integration


def _run(*cmd, cwd, env=None):
    return subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def _galaxy_yml() -> dict:
    return yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """``ansible-builder create`` on a copy of meta/ with the collection built beside it, as `make build` does
    at the repository root (the definition's additional_build_files take ``../firebreak-runbooks-*.tar.gz``)."""
    work = tmp_path_factory.mktemp("ee")
    built = _run(BIN / "ansible-galaxy", "collection", "build", "--output-path", work, REPO_ROOT, cwd=work)
    assert built.returncode == 0, built.stdout + built.stderr
    shutil.copytree(META, work / "meta")
    created = _run(
        BIN / "ansible-builder",
        "create",
        "--file",
        work / "meta" / "execution-environment.yml",
        "--context",
        work / "context",
        "--output-filename",
        "Containerfile",
        cwd=work,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    assert "Complete! The build context can be found at" in created.stdout
    assert "No matches for" not in created.stdout + created.stderr, "the collection tarball was not found"
    return work / "context"


def test_definition_is_version_3_with_runtime_requirements_in_their_own_files():
    definition = yaml.safe_load(DEFINITION.read_text())
    assert definition["version"] == 3
    assert definition["images"]["base_image"]["name"]
    deps = definition["dependencies"]
    assert {deps["galaxy"], deps["python"], deps["system"]} == {
        "ee-requirements.yml",
        "ee-requirements.txt",
        "ee-bindep.txt",
    }
    # ansible-core and ansible-runner as pinned for development and tests
    pins = dict(
        line.split("==", 1) for line in (REPO_ROOT / "requirements.txt").read_text().splitlines() if "==" in line
    )
    assert deps["ansible_core"]["package_pip"] == f"ansible-core=={pins['ansible-core']}"
    assert deps["ansible_runner"]["package_pip"] == f"ansible-runner=={pins['ansible-runner']}"
    # runtime needs only: what the plugins import, none of the test, lint or sandbox tools
    lines = _requirement_lines(META / deps["python"])
    names = {re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower() for line in lines}
    assert names == {"boto3", "botocore", "kubernetes"}


def test_galaxy_requirements_are_the_collection_and_the_dependencies_of_galaxy_yml():
    galaxy = _galaxy_yml()
    entries = yaml.safe_load((META / "ee-requirements.yml").read_text())["collections"]
    own, deps = entries[0], entries[1:]
    assert own == {"name": f"collections/firebreak-runbooks-{galaxy['version']}.tar.gz", "type": "file"}, (
        "meta/ee-requirements.yml must name the tarball of galaxy.yml's version"
    )
    assert {entry["name"]: entry["version"] for entry in deps} == galaxy["dependencies"]


def test_create_writes_the_collection_and_every_requirement_into_the_context(context):
    galaxy = _galaxy_yml()
    build = context / "_build"
    tarball = build / "collections" / f"firebreak-runbooks-{galaxy['version']}.tar.gz"
    assert tarball.is_file()
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
    assert {"plugins/callback/incident_timeline.py", "playbooks/service_down.yml", "meta/runtime.yml"} <= names

    assert (build / "requirements.yml").read_text() == (META / "ee-requirements.yml").read_text()
    assert (build / "requirements.txt").read_text() == (META / "ee-requirements.txt").read_text()
    assert (build / "bindep.txt").read_text() == (META / "ee-bindep.txt").read_text()
    for script in ("assemble", "introspect.py", "install-from-bindep", "check_galaxy", "check_ansible"):
        assert (build / "scripts" / script).is_file(), script

    containerfile = (context / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="quay.io/centos/centos:stream9"' in containerfile
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core==2.19.14 ansible-runner==2.4.3"' in containerfile
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in containerfile
    assert "introspect.py introspect --user-pip=requirements.txt --user-bindep=bindep.txt" in containerfile


def test_introspection_in_the_build_works_on_the_collection_as_installed(context, tmp_path):
    """The image build installs the collections (galaxy stage, then our append_galaxy step), then runs
    ``introspect.py`` over them. Replay that here on the tarball from the context, with amazon.aws and
    kubernetes.core from the venv standing in for the Galaxy downloads."""
    build = context / "_build"
    root = tmp_path / "collections"
    installed = _run(
        BIN / "ansible-galaxy",
        "collection",
        "install",
        "--offline",
        "--no-deps",
        "--collections-path",
        root,
        next((build / "collections").glob("firebreak-runbooks-*.tar.gz")),
        cwd=build,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    ours = root / "ansible_collections" / "firebreak" / "runbooks"
    assert (ours / "meta" / "execution-environment.yml").is_file()  # the tarball ships the definition

    site = Path(yaml.__file__).parents[1] / "ansible_collections"
    for namespace in ("amazon", "kubernetes"):
        (root / "ansible_collections" / namespace).symlink_to(site / namespace)

    # the definition's append_galaxy steps, with the image's collections path replaced by ours
    definition = yaml.safe_load(DEFINITION.read_text())
    for step in definition["additional_build_steps"]["append_galaxy"]:
        assert step.startswith("RUN "), step
        ran = _run("bash", "-c", step[4:].replace(COLLECTIONS, str(root)), cwd=build)
        assert ran.returncode == 0, ran.stderr

    out = tmp_path / "out"
    introspected = _run(
        sys.executable,
        build / "scripts" / "introspect.py",
        "introspect",
        "--user-pip=requirements.txt",
        "--user-bindep=bindep.txt",
        f"--write-pip={out / 'requirements.txt'}",
        f"--write-bindep={out / 'bindep.txt'}",
        root,
        cwd=build,
    )
    assert introspected.returncode == 0, introspected.stdout + introspected.stderr
    python = (out / "requirements.txt").read_text()
    for requirement in _requirement_lines(META / "ee-requirements.txt"):
        assert requirement in python
    # amazon.aws's and kubernetes.core's own declarations are picked up; our development lock is not
    assert "# from collection amazon.aws" in python and "# from collection kubernetes.core" in python
    for tool in ("moto", "pytest", "molecule", "ansible-lint", "ruff"):
        assert not re.search(rf"^{tool}\b", python, re.M | re.I), f"{tool} would be installed in the image"
