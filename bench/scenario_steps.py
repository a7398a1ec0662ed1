"""The steps of bench/scenarios.py's baselines and their two renderings: a shell script of AWS CLI (and ``kubectl``)
commands, one process per call, and a Python script making the same calls with boto3 (and the kubernetes client)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

# -- the baseline steps -----------------------------------------------------------------------------------------


def V(name: str) -> str:
    """A parameter value taken from an earlier step's answer (``save``) or the context: the whole JSON value."""
    return f"@@{name}@@"


@dataclass
class Call:
    """One AWS call: boto3 ``service``/``operation`` and its parameters; ``save`` maps variable names to JMESPath
    expressions over the answer; ``wait`` makes it a waiter (``aws <svc> wait <name>`` / ``get_waiter``)."""

    service: str
    operation: str
    params: dict = field(default_factory=dict)
    save: dict = field(default_factory=dict)
    wait: bool = False


@dataclass
class Raw:
    """A step with no AWS call rendering: its shell line(s) and its Python line(s) (the Kubernetes steps)."""

    sh: str
    py: str


CLI_SERVICE = {"s3": "s3api"}
# awscli 1.46's RDS and SQS commands ignore AWS_ENDPOINT_URL (they went to https://rds.amazonaws.com/ and
# https://queue.amazonaws.com/): the shell script names the sandbox's endpoint for them
ENDPOINT = ' --endpoint-url "$AWS_ENDPOINT_URL"'
CLI_OPTIONS = {"rds": ENDPOINT, "sqs": ENDPOINT}
MARKER = re.compile(r'"@@([a-z_][a-z0-9_]*)@@"')


def _kebab(name: str) -> str:
    return name.replace("_", "-")


def _shell_json(text: str) -> str:
    """One shell word of the JSON ``text``: its literal parts single-quoted, each ``@@var@@`` value (JSON itself, as
    saved with ``--output json``) spliced in as ``"${var}"``."""
    parts, at = [], 0
    for match in MARKER.finditer(text):
        parts.append(shlex.quote(text[at : match.start()]) if match.start() > at else "")
        parts.append(f'"${{{match.group(1)}}}"')
        at = match.end()
    if at < len(text):
        parts.append(shlex.quote(text[at:]))
    return "".join(parts)


def render_shell(name: str, steps: list) -> str:
    """The CLI script: one ``aws`` (or ``kubectl``) process per step, as a responder pastes the seeds' commands."""
    out = [
        "#!/usr/bin/env bash",
        f"# bench/scenarios.py: the seeds' AWS CLI commands for the {name} scenario's steps (generated, see BASELINES)",
        "set -euo pipefail",
    ]
    for step in steps:
        if isinstance(step, Raw):
            out.append(step.sh)
            continue
        body = _shell_json(json.dumps(step.params, sort_keys=True))
        service = CLI_SERVICE.get(step.service, step.service)
        if step.wait:
            command = f"aws {service} wait {_kebab(step.operation)}"
        else:
            command = f"aws {service} {_kebab(step.operation)}"
        command += CLI_OPTIONS.get(step.service, "") + f" --cli-input-json {body}"
        if step.save:
            for expr in step.save.values():
                if "'" in expr:
                    raise ValueError(f"{name}: a saved expression cannot hold a single quote: {expr}")
            # one call, several values: the answer is kept once and queried per value (the CLI's own --query)
            if len(step.save) == 1:
                var, expr = next(iter(step.save.items()))
                out.append(f"{var}=$({command} --output json --query '{expr}')")
            else:
                out.append(f"_answer=$({command} --output json)")
                for var, expr in step.save.items():
                    out.append(f"{var}=$(printf '%s' \"$_answer\" | python3 -c {shlex.quote(_JMES_SNIPPET)} '{expr}')")
        else:
            out.append(f"{command} >/dev/null")
    return "\n".join(out) + "\n"


# A second value of one answer: jmespath ships with the CLI's botocore, so ``python3 -c`` of it is what a
# responder without jq would write.
_JMES_SNIPPET = "import json, sys, jmespath; print(json.dumps(jmespath.search(sys.argv[1], json.load(sys.stdin))))"


def render_python(name: str, steps: list) -> str:
    """The boto3 script: the same calls in one Python process."""
    out = [
        f'"""bench/scenarios.py: the {name} scenario\'s calls in plain boto3 (generated; see BASELINES)."""',
        "import json",
        "import re",
        "",
        "import boto3",
        "import jmespath",
        "",
        "_clients = {}",
        "v = {}",
        "",
        "",
        "def client(name):",
        "    if name not in _clients:",
        "        _clients[name] = boto3.client(name)",
        "    return _clients[name]",
        "",
        "",
        "def fill(text):",
        "    return json.loads(re.sub(r'\"@@([a-z_][a-z0-9_]*)@@\"', lambda m: json.dumps(v[m.group(1)]), text))",
        "",
        "",
    ]
    if any(isinstance(step, Raw) and ("k8s_" in step.py or "apps()" in step.py) for step in steps):
        out.append(K8S_PY)
    for step in steps:
        if isinstance(step, Raw):
            out.append(step.py)
            continue
        params = f"fill({json.dumps(json.dumps(step.params, sort_keys=True))})"
        if step.wait:
            out.append(f"client({step.service!r}).get_waiter({step.operation!r}).wait(**{params})")
            continue
        out.append(f"r = client({step.service!r}).{step.operation}(**{params})")
        for var, expr in step.save.items():
            out.append(f"v[{var!r}] = jmespath.search({expr!r}, r)")
    return "\n".join(out) + "\n"


# What kubectl does for ``rollout undo``, ``rollout status``, ``rollout restart`` and a ConfigMap replaced by its
# last-applied configuration, with the kubernetes client (KUBECONFIG from the environment).
K8S_PY = """
import time
from datetime import datetime, timezone

from kubernetes import client as kube, config as kube_config

kube_config.load_kube_config()
REVISION = "deployment.kubernetes.io/revision"


def apps():
    return kube.AppsV1Api()


def k8s_undo(ns, name):
    dep = apps().read_namespaced_deployment(name, ns)
    selector = ",".join(f"{k}={v}" for k, v in dep.spec.selector.match_labels.items())
    current = int(dep.metadata.annotations[REVISION])
    older = [rs for rs in apps().list_namespaced_replica_set(ns, label_selector=selector).items
             if int((rs.metadata.annotations or {}).get(REVISION, 0)) < current]
    previous = max(older, key=lambda rs: int(rs.metadata.annotations[REVISION]))
    template = apps().api_client.sanitize_for_serialization(previous.spec.template)
    template["metadata"]["labels"].pop("pod-template-hash", None)
    template["$patch"] = "replace"
    apps().patch_namespaced_deployment(name, ns, {"spec": {"template": template}})


def k8s_wait(ns, name, timeout):
    deadline = time.monotonic() + timeout
    while True:
        dep = apps().read_namespaced_deployment_status(name, ns)
        want, st = dep.spec.replicas, dep.status
        if (st.observed_generation or 0) >= dep.metadata.generation and (st.updated_replicas or 0) == want \\
                and (st.available_replicas or 0) == want and not st.unavailable_replicas:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"{ns}/{name} did not roll out in {timeout}s")
        time.sleep(0.5)


def k8s_restart(ns, name):
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}}
    apps().patch_namespaced_deployment(name, ns, body)


def k8s_config_restore(ns, name):
    core = kube.CoreV1Api()
    current = core.read_namespaced_config_map(name, ns)
    applied = json.loads(current.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"])
    current.data = applied.get("data")
    core.replace_namespaced_config_map(name, ns, current)
"""
