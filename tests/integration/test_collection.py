"""The collection builds, installs into an empty collections path, and documents itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from sandbox import REPO_ROOT

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.integration


def _run(*cmd, cwd=REPO_ROOT, env=None):
    return subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    built = _run(BIN / "ansible-galaxy", "collection", "build", "--output-path", out, ".")
    assert built.returncode == 0, built.stderr
    (path,) = out.glob("firebreak-runbooks-*.tar.gz")
    return path


def test_tarball_holds_the_plugins_and_none_of_the_local_state(tarball):
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
    assert "plugins/callback/incident_timeline.py" in names
    assert "playbooks/incident_report.yml" in names
    assert "meta/runtime.yml" in names
    for prefix in (".venv/", "collections/", ".sandbox/", ".sanity/", ".ansible/", "incidents/", ".git/"):
        assert not any(name.startswith(prefix) for name in names), prefix
    # What builds and tests the collection stays out of a user's install (galaxy.yml build_ignore).
    for prefix in ("tests/", "bench/", "tools/"):
        assert not any(name.startswith(prefix) for name in names), prefix
    assert not names & {"Makefile", "pytest.ini", "pyproject.toml", "requirements.txt", ".ansible-lint", ".yamllint"}
    for role in (REPO_ROOT / "roles").iterdir():
        for part in ("README.md", "meta/argument_specs.yml", "defaults/main.yml", "tasks/main.yml"):
            assert f"roles/{role.name}/{part}" in names, f"roles/{role.name}/{part}"
    assert {"docs/README.md", "inventories/sandbox/hosts.yml", "changelogs/changelog.yaml"} <= names
    with tarfile.open(tarball) as archive:
        manifest = json.loads(archive.extractfile("MANIFEST.json").read())
    assert manifest["collection_info"]["dependencies"].keys() == {"amazon.aws", "kubernetes.core"}


def test_tarball_installs_into_an_empty_collections_path_and_documents_its_plugins(tarball, tmp_path):
    target = tmp_path / "collections"
    installed = _run(BIN / "ansible-galaxy", "collection", "install", "--no-deps", "-p", target, tarball, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    root = target / "ansible_collections" / "firebreak" / "runbooks"
    assert (root / "plugins" / "callback" / "incident_timeline.py").is_file()

    # From a directory without the repository's ansible.cfg, only the installed copy can answer.
    empty_config = tmp_path / "ansible.cfg"
    empty_config.write_text("[defaults]\n")
    env = {"ANSIBLE_COLLECTIONS_PATH": str(target), "ANSIBLE_CONFIG": str(empty_config)}
    listed = _run(
        BIN / "ansible-galaxy", "collection", "list", "firebreak.runbooks", "-p", target, cwd=tmp_path, env=env
    )
    assert "firebreak.runbooks" in listed.stdout, listed.stdout + listed.stderr
    doc = _run(BIN / "ansible-doc", "-t", "callback", "firebreak.runbooks.incident_timeline", cwd=tmp_path, env=env)
    assert doc.returncode == 0, doc.stderr
    assert "FIREBREAK_TIMELINE" in doc.stdout
    assert str(target) in doc.stdout
    for module in sorted(p.stem for p in (REPO_ROOT / "plugins" / "modules").glob("*.py")):
        rendered = _run(BIN / "ansible-doc", "-t", "module", f"firebreak.runbooks.{module}", cwd=tmp_path, env=env)
        assert rendered.returncode == 0, f"{module}: {rendered.stderr}"
