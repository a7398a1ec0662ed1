"""``make inject SCENARIO=<name>``: inject one drill's fault into the sandbox ``make sandbox`` is running.

    python -m sandbox.inject [SCENARIO] [--env-file PATH]

It finds the sandbox through the environment file ``make sandbox`` writes (``<workdir>/env.sh``, by default
``.sandbox/foreground/env.sh``) and the seed manifest beside it, runs the drill's ``inject()``
(sandbox/drills/<name>.py) against it, and prints the scenario's extra vars as one JSON object on its last line,
so that a person can explore the scenario by hand (``--check`` first). Nothing is run and nothing is recorded in
a timeline: that is the person's run. Exit status: 0 injected; 1 no running sandbox found, or the injection
failed; 2 unknown scenario (the known ones are listed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from sandbox import CREDENTIALS, REGION, REPO_ROOT
from sandbox.drills import available

DEFAULT_ENV_FILE = REPO_ROOT / ".sandbox" / "foreground" / "env.sh"


class NoSandbox(RuntimeError):
    """No running sandbox behind the environment file."""


def read_env_file(path: Path) -> dict[str, str]:
    """The ``export KEY=value`` lines of ``make sandbox``'s environment file, as a mapping."""
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export ") :].partition("=")
            env[key.strip()] = value.strip()
    return env


def _datetime_tag(value):
    """A datetime in a rule (a canned body's timestamp) as the control API takes it: ``{"$datetime": iso}``."""
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


class FaultControl:
    """The fault proxy's control API (``/_fault/rules``) of a sandbox in another process."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def _call(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body, default=_datetime_tag).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def add_rule(self, rule: dict) -> str:
        return self._call("POST", "/_fault/rules", rule)["id"]

    def remove_rule(self, rule_id: str) -> None:
        self._call("DELETE", f"/_fault/rules/{rule_id}")

    def rules(self) -> list[dict]:
        return self._call("GET", "/_fault/rules")


class RunningSandbox:
    """What a drill's ``inject()`` uses of a ``Sandbox`` (``client``, ``proxy``, ``manifest``, ``kube_url``,
    ``env``), for a sandbox that another process (``make sandbox``) runs."""

    def __init__(self, env_file: Path):
        env_file = Path(env_file)
        if not env_file.is_file():
            raise NoSandbox(f"no sandbox environment file at {env_file}: start `make sandbox` first (in another shell)")
        self.env_file = env_file
        self.workdir = env_file.parent
        self._env = read_env_file(env_file)
        self.aws_url = self._env.get("FIREBREAK_AWS_ENDPOINT_URL")
        self.kubeconfig = self._env.get("FIREBREAK_KUBECONFIG")
        self.kube_url = None
        if self.kubeconfig and Path(self.kubeconfig).is_file():
            config = yaml.safe_load(Path(self.kubeconfig).read_text(encoding="utf-8")) or {}
            clusters = config.get("clusters") or [{}]
            self.kube_url = (clusters[0].get("cluster") or {}).get("server")
        manifest = self.workdir / "manifest.json"
        self.manifest = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else {}
        self.proxy = FaultControl(self.aws_url) if self.aws_url else None
        self._check_alive()

    def _check_alive(self) -> None:
        url = self.aws_url or self.kube_url
        if not url:
            raise NoSandbox(f"{self.env_file} names no AWS or Kubernetes endpoint")
        probe = f"{url.rstrip('/')}/_fault" if self.aws_url else f"{url.rstrip('/')}/version"
        try:
            with urllib.request.urlopen(probe, timeout=5):
                pass
        except (urllib.error.URLError, OSError) as exc:
            raise NoSandbox(
                f"the sandbox of {self.env_file} does not answer at {url} ({exc}): is `make sandbox` still running?"
            ) from exc

    def env(self) -> dict:
        return dict(self._env)

    def client(self, service: str):
        """A boto3 client for ``service`` through the sandbox's fault proxy (as ``Sandbox.client``)."""
        import boto3
        from botocore.config import Config

        if not self.aws_url:
            raise NoSandbox(f"the sandbox of {self.env_file} runs without AWS")
        return boto3.client(
            service,
            endpoint_url=self.aws_url,
            region_name=self._env.get("AWS_REGION", REGION),
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(retries={"mode": "standard", "max_attempts": 3}),
        )


def inject(scenario: str, env_file: Path = DEFAULT_ENV_FILE) -> tuple[dict, str]:
    """Inject ``scenario``'s fault into the running sandbox; return its extra vars and the fault's description."""
    module = available()[scenario]
    context = module.inject(RunningSandbox(env_file))
    extra_vars = {key: value for key, value in context.items() if not key.startswith("_")}
    return extra_vars, (context.get("_drill") or {}).get("fault", "")


def main(argv: list[str] | None = None) -> int:
    scenarios = available()
    parser = argparse.ArgumentParser(prog="make inject", description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="service_down")
    parser.add_argument("--env-file", default=str(DEFAULT_ENV_FILE), help="the env.sh that `make sandbox` wrote")
    args = parser.parse_args(argv)

    if args.scenario not in scenarios:
        print(f"make inject: unknown scenario {args.scenario!r}. Known scenarios:", file=sys.stderr)
        for name, module in scenarios.items():
            print(f"  {name:24} {module.DESCRIPTION}", file=sys.stderr)
        print("Run: make inject SCENARIO=<name>", file=sys.stderr)
        return 2
    try:
        extra_vars, fault = inject(args.scenario, Path(args.env_file))
    except NoSandbox as exc:
        print(f"make inject: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"make inject: injecting {args.scenario!r} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1

    playbook = scenarios[args.scenario].PLAYBOOK
    print(f"fault injected ({args.scenario}): {fault or 'see sandbox/drills/' + args.scenario + '.py'}")
    print(f"# explore it by hand, from the repository root, in a shell with `source {args.env_file}`:")
    print(f"#   ansible-playbook {playbook} --check --diff -e incident_id=INC-explore -e '<the JSON below>'")
    print(f"#   ansible-playbook {playbook} -e incident_id=INC-explore -e '<the JSON below>'")
    print("# back to the seed data: stop and start `make sandbox` again")
    print(json.dumps(extra_vars, sort_keys=True, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
