"""No secret reaches the timeline or the report, whatever its shape (a corpus of more than 40 shapes).

One real ``ansible-playbook`` run with a task per shape (a careless module returning or echoing it,
``debug`` messages, command lines, a ``no_log`` task's templated name), then the report; every secret
value is asserted absent from the bytes of both files, and a few values that are NOT secret are asserted
present (redaction must not blank the record).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "tests" / "integration" / "playbooks" / "timeline"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

pytestmark = [pytest.mark.integration, pytest.mark.proof]  # 40+ secret shapes: an attacker matrix (make proof)


def _pem(kind, token):
    label = f"{kind} PRIVATE KEY" if kind else "PRIVATE KEY"
    body = "\n".join(["MIIEowIBAAKCAQEA1x2b3c4d5e6f7g8h9", f"Zm9vYmFy{token}cXV4", "AAAAB3NzaC1yc2EAAAADAQABAAAB"])
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def corpus():
    """``[(shape, task, secret_values)]``: one task per secret shape."""
    cases = []
    n = 0

    def tok():
        nonlocal n
        n += 1
        return f"SECRET{n:02d}x{secrets.token_hex(4)}"

    def result(shape, build):
        value = tok()
        cases.append((shape, {"secret_echo": {"result": build(value)}}, [value]))

    result("key password", lambda t: {"password": t})
    result("key pass", lambda t: {"pass": t})
    result("key pwd", lambda t: {"pwd": t})
    result("key passwd", lambda t: {"passwd": t})
    result("key credentials (string)", lambda t: {"credentials": t})
    result("key credentials (dict)", lambda t: {"credentials": {"user": "bob", "key": t}})
    result("key ssh_key", lambda t: {"ssh_key": t})
    result("key private_key", lambda t: {"private_key": t})
    result("key apiKey", lambda t: {"apiKey": t})
    result("key client_secret", lambda t: {"client_secret": t})
    result("Authorization header", lambda t: {"headers": {"Authorization": "Bearer " + t}})
    result("X-Auth-Token header", lambda t: {"headers": {"X-Auth-Token": t}})
    result(
        "STS credentials",
        lambda t: {"Credentials": {"AccessKeyId": "ASIAEXAMPLEKEYID", "SecretAccessKey": t, "SessionToken": t + "s"}},
    )
    result("key db_pass", lambda t: {"db_pass": t})
    result("env PGPASSWORD", lambda t: {"env": {"PGPASSWORD": t}})
    result("env MYSQL_PWD", lambda t: {"env": {"MYSQL_PWD": t}})
    result("cookie", lambda t: {"cookie": "sid=" + t})
    result(
        "ECS container environment name/value",
        lambda t: {"containerDefinitions": [{"environment": [{"name": "DB_PASSWORD", "value": t}]}]},
    )
    result(
        "Kubernetes env list",
        lambda t: {"spec": {"containers": [{"env": [{"name": "API_TOKEN", "value": t}]}]}},
    )
    result(
        "CloudFormation parameters",
        lambda t: {"Parameters": [{"ParameterKey": "DbPassword", "ParameterValue": t}]},
    )
    result("SSM parameter named like a password", lambda t: {"Parameter": {"Name": "/prod/db/password", "Value": t}})
    result(
        "SSM SecureString",
        lambda t: {"Parameter": {"Name": "/app/config", "Type": "SecureString", "Value": t}},
    )
    result("tag name/value", lambda t: {"Tags": [{"Key": "db_secret", "Value": t}]})
    result("postgres URL userinfo", lambda t: {"url": f"postgres://admin:{t}@db.internal:5432/app"})
    result("https URL userinfo", lambda t: {"endpoint": f"https://deploy:{t}@git.example.com/repo.git"})
    result("redis URL, empty user", lambda t: {"cache": f"redis://:{t}@cache:6379/0"})
    result("mongodb+srv URL", lambda t: {"mongo": f"mongodb+srv://app:{t}@cluster0.example.net/db"})
    result("URL inside free text", lambda t: {"log": f"connecting to amqp://guest:{t}@mq:5672/ now"})
    result("RSA PEM under an innocent key", lambda t: {"key_material": _pem("RSA", t)})
    result("EC PEM under data", lambda t: {"data": _pem("EC", t)})
    result("OPENSSH PEM in stdout", lambda t: {"report": "here is the key\n" + _pem("OPENSSH", t)})
    result("PEM inside a JSON string", lambda t: {"json_blob": json.dumps({"key": _pem("", t)})})
    result(
        "PEM cut off (no END line)",
        lambda t: {"tail": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG" + t},
    )
    result("mysql -p<password>", lambda t: {"cmdline": f"mysql -h db -u root -p{t} app"})
    result("sshpass -p", lambda t: {"cmdline": f"sshpass -p {t} ssh host"})
    result("curl -u user:password", lambda t: {"cmdline": f"curl -u admin:{t} https://api.example.com"})
    result("--password value", lambda t: {"cmdline": f"app --password {t} --verbose"})
    result("--db-pass=value", lambda t: {"cmdline": f"app --db-pass={t}"})
    result("--token value", lambda t: {"cmdline": f"app --token {t}"})
    result("argv list --client-secret", lambda t: {"argv": ["deploy", "--client-secret", t]})
    result("redis-cli -a", lambda t: {"cmdline": f"redis-cli -h cache -a {t} ping"})
    result("JSON text in a string", lambda t: {"body": json.dumps({"password": t})})
    result("YAML text in a string", lambda t: {"config": f"db:\n  password: {t}\n"})
    result("aws_secret_access_key = value", lambda t: {"ini": f"[default]\naws_secret_access_key = {t}\n"})
    result(".env line", lambda t: {"dotenv": f"export DB_PASSWORD={t}"})
    result("Basic auth header text", lambda t: {"raw": f"Authorization: Basic {t}"})

    # secrets known from the task's arguments, echoed elsewhere in the result
    short = "Qz7"  # shorter than any free-text heuristic: masked because the argument says it is a password
    cases.append(
        (
            "short password argument echoed in stdout",
            {"secret_echo": {"password": short, "stdout": f"connected with {short}"}},
            [short],
        )
    )
    t = tok()
    cases.append(
        (
            "api_token argument echoed in stdout",
            {"secret_echo": {"api_token": t, "stdout": f"using {t} for the call"}},
            [t],
        )
    )
    t = tok()
    cases.append(
        (
            "connection-string argument echoed alone",
            {"secret_echo": {"conn": f"postgres://u:{t}@h/db", "stdout": f"pw={t}"}},
            [t],
        )
    )
    t = tok()
    cases.append(
        (
            "argument echoed in a failure message",
            {"secret_echo": {"api_token": t, "fail_msg": f"login failed for {t}"}, "ignore_errors": True},
            [t],
        )
    )
    # free text in messages and command lines
    t = tok()
    cases.append(("debug msg key=value", {"ansible.builtin.debug": {"msg": f"retrying with password={t}"}}, [t]))
    t = tok()
    cases.append(
        ("debug msg URL", {"ansible.builtin.debug": {"msg": f"using https://ops:{t}@vault.example.com/v1"}}, [t])
    )
    t = tok()
    cases.append(("command line --password", {"ansible.builtin.command": {"argv": ["echo", "--password", t]}}, [t]))
    t = tok()
    cases.append(("command line mysql -p", {"ansible.builtin.command": f"echo mysql -u root -p{t}"}, [t]))
    # a no_log task's templated name
    t = tok()
    cases.append(
        (
            "no_log task templated name",
            {
                "name": "Set the admin secret {{ nolog_value }}",
                "ansible.builtin.command": "true",
                "no_log": True,
                "vars": {"nolog_value": t},
            },
            [t],
        )
    )
    return cases


def test_no_secret_shape_reaches_the_timeline_or_the_report(tmp_path):
    cases = corpus()
    assert len(cases) >= 40
    tasks = []
    for shape, task, _values in cases:
        task = dict(task)
        task.setdefault("name", f"shape: {shape}")
        tasks.append(task)
    book = tmp_path / "secrets_corpus.yml"  # never in the repository (a leftover would be committed)
    book.write_text(
        yaml.safe_dump([{"name": "Secret shapes", "hosts": "localhost", "gather_facts": False, "tasks": tasks}])
    )
    timeline = tmp_path / "timeline.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIREBREAK_", "ANSIBLE_"))}
    env.update(
        {
            "FIREBREAK_TIMELINE": str(timeline),
            "FIREBREAK_INCIDENT_ID": "INC-SECRETS",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LIBRARY": str(PLAYBOOKS / "library"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    run = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(PLAYBOOKS / "inventory.ini"), str(book)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = subprocess.run(
        [
            ANSIBLE_PLAYBOOK,
            *("-i", str(PLAYBOOKS / "inventory.ini")),  # no sandbox here: no evidence bucket to read seals from
            str(REPO / "playbooks" / "incident_report.yml"),
            *("-e", f"incident_timeline={timeline}"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stdout + report.stderr
    files = {"timeline": timeline.read_text(), "report": (tmp_path / "report.md").read_text()}
    files["report.json"] = (tmp_path / "report.json").read_text()

    def strings(value):  # report.json's texts as decoded (a secret with a quote is escaped in the file)
        if isinstance(value, dict):
            return [t for k, v in value.items() for t in (str(k), *strings(v))]
        if isinstance(value, list):
            return [t for v in value for t in strings(v)]
        return [str(value)]

    files["report.json (decoded)"] = "\n".join(strings(json.loads(files["report.json"])))
    leaks = [
        (shape, name)
        for shape, _task, values in cases
        for value in values
        for name, text in files.items()
        if value in text
    ]
    assert not leaks, f"secrets leaked: {leaks}"
    records = [json.loads(line) for line in files["timeline"].splitlines()]
    shapes = {r["task"] for r in records if r.get("task")}
    assert len([s for s in shapes if s.startswith("shape: ")]) == len(cases) - 1  # every task recorded
    # redaction keeps what is not secret
    for visible in ("ASIAEXAMPLEKEYID", "db.internal:5432", "DB_PASSWORD", "/prod/db/password", "connected with"):
        assert visible in files["timeline"], visible
    assert "Set the admin secret {{ nolog_value }}" in files["timeline"]
