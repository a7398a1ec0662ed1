"""The local sandbox: moto (AWS), a fault proxy in front of it, and the Kubernetes API test server.

Everything listens on 127.0.0.1 only.  One ``Sandbox`` serves a whole test session (or a
``make drill`` / ``make sandbox`` run); ``reset()`` brings it back to the seeded state between
tests, which is much cheaper than restarting it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

# moto reads these only from its environment at start (see shared notes on moto fidelity):
# ECS services report their desired count as running, and AWS managed policies such as
# AWSDenyAll exist.
MOTO_ENV = {"MOTO_ECS_SERVICE_RUNNING": "2", "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}


class SandboxError(RuntimeError):
    """The sandbox could not be started or reset."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _http(method: str, url: str, timeout: float = 5.0) -> bytes:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


class MotoServer:
    """moto in server mode, as a child process on a free loopback port."""

    def __init__(self, workdir: Path, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "moto.log"
        self._proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> str:
        env = {**os.environ, **MOTO_ENV, **CREDENTIALS, "PYTHONPATH": str(REPO_ROOT)}
        env.pop("AWS_ENDPOINT_URL", None)
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox.moto_main", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise SandboxError(f"moto exited with {self._proc.returncode}; see {self.log_path}")
            try:
                _http("GET", f"{self.url}/moto-api/", timeout=1)
                return self.url
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.stop()
        raise SandboxError(f"moto did not answer on {self.url} within {timeout:.0f}s; see {self.log_path}")

    def reset(self) -> None:
        _http("POST", f"{self.url}/moto-api/reset", timeout=60)

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._proc = None


class Sandbox:
    """moto + fault proxy + Kubernetes API test server, seeded with the seeds' architectures."""

    def __init__(self, workdir: str | os.PathLike | None = None, aws: bool = True, kubernetes: bool = True):
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="firebreak-sandbox-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tmpdir = self.workdir / "tmp"
        self.tmpdir.mkdir(exist_ok=True)
        self.want_aws = aws
        self.want_kubernetes = kubernetes
        self.moto: MotoServer | None = None
        self.proxy = None
        self.kube_server = None
        self.moto_url = self.aws_url = self.kube_url = None
        self.kubeconfig: Path | None = None
        self.manifest: dict = {}

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Sandbox:
        try:
            if self.want_aws:
                from sandbox.fault_proxy import FaultProxy

                self.moto = MotoServer(self.workdir)
                self.moto_url = self.moto.start()
                self.proxy = FaultProxy(upstream=self.moto_url)
                self.aws_url = self.proxy.start()
            if self.want_kubernetes:
                from sandbox.k8s_server import KubeServer

                self.kube_server = KubeServer()
                self.kube_url = self.kube_server.start()
                self.kubeconfig = Path(self.kube_server.write_kubeconfig(str(self.workdir / "kubeconfig")))
            self.reset()
        except BaseException:
            self.stop()
            raise
        return self

    def reset(self) -> dict:
        """Back to the seeded state: wipe moto and the Kubernetes store, clear faults, seed again."""
        self.manifest = {}
        if self.want_aws:
            self.reset_aws()
        if self.want_kubernetes:
            self.reset_kubernetes()
        return self.manifest

    def reset_aws(self) -> dict:
        from sandbox.seed import seed_aws

        self.proxy.quiesce()  # a killed run's calls still in the proxy land before the reset, not after it
        self.proxy.reset()
        self.moto.reset()
        self.manifest["aws"] = seed_aws(self.aws_url, REGION)
        self._write_manifest()
        return self.manifest["aws"]

    def reset_kubernetes(self) -> dict:
        self.manifest["kubernetes"] = self.kube_server.reset() or {}
        self._write_manifest()
        return self.manifest["kubernetes"]

    def stop(self) -> None:
        if self.kube_server is not None:
            self.kube_server.stop()
            self.kube_server = None
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        if self.moto is not None:
            self.moto.stop()
            self.moto = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- use -------------------------------------------------------------------------------
    def env(self) -> dict:
        """Environment for a child ``ansible-playbook`` (or boto3/kubectl-like tool) aimed at the sandbox."""
        env = {
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "TMPDIR": str(self.tmpdir),
            "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
            **CREDENTIALS,
        }
        if self.aws_url:
            env.update({"FIREBREAK_AWS_ENDPOINT_URL": self.aws_url, "AWS_ENDPOINT_URL": self.aws_url})
        if self.kubeconfig:
            path = str(self.kubeconfig)
            env.update({"FIREBREAK_KUBECONFIG": path, "K8S_AUTH_KUBECONFIG": path, "KUBECONFIG": path})
        return env

    def client(self, service: str):
        """A boto3 client for ``service`` that goes through the fault proxy."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.aws_url,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(retries={"mode": "standard", "max_attempts": 3}),
        )

    def _write_manifest(self) -> None:
        (self.workdir / "manifest.json").write_text(json.dumps(self.manifest, indent=2, default=str))

    def describe(self) -> str:
        """Human-readable endpoints and the ``export`` lines to aim a shell at this sandbox."""
        lines = ["firebreak sandbox (127.0.0.1 only)"]
        if self.aws_url:
            lines += [f"  AWS (fault proxy):  {self.aws_url}", f"  moto (direct):      {self.moto_url}"]
        if self.kube_url:
            lines += [f"  Kubernetes API:     {self.kube_url}", f"  kubeconfig:         {self.kubeconfig}"]
        lines += [f"  seed manifest:      {self.workdir / 'manifest.json'}", "", "# paste into a shell:"]
        lines += [f"export {key}={value}" for key, value in sorted(self.env().items())]
        lines += [
            "",
            "# then, from the repository root (inventories/sandbox is the default inventory):",
            "ansible-playbook playbooks/service_down.yml -e incident_id=INC-explore",
        ]
        return "\n".join(lines)
