"""What the proof suites (faults and kills, issue 20) share: run a scenario (its drill's inject and extra vars) against
the sandbox with every AWS call through the fault proxy and every Kubernetes call through a second fault proxy in
front of the Kubernetes API test server (a request log and fault rules of its own), read the calls a run made from
those logs, snapshot the end state with the ids that differ between two seedings taken out, and keep a tally.

The cases are generated from an undisturbed run's own calls (``Baseline.calls``), never from a hand list: a new call
path in a scenario is covered by the next run of the suite."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from sandbox import REPO_ROOT
from sandbox.drills import available
from sandbox.fault_proxy import RULE_FIELDS, FaultProxy
from tests.integration.load_helpers import playbook_env
from tests.integration.snapshot import snapshot

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.module_utils.record.timeline import (
    verify_timeline as verify_timeline,
)

ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
SCENARIOS = available()
RESULTS_NAME = "proof-results.jsonl"

# Scenario runs take 30-65 s each here, so the default set is bounded (about 20 worker-minutes for the faults and
# kills suites together); FIREBREAK_PROOF_SCENARIOS=all (or a comma list) runs the fault cases for more of them.
DEFAULT_FAULT_SCENARIOS = ["service_down", "auth_attack", "k8s_service_down"]
_CHOSEN = os.environ.get("FIREBREAK_PROOF_SCENARIOS", "").strip()
FAULT_SCENARIOS = (
    list(SCENARIOS)
    if _CHOSEN == "all"
    else [name for name in _CHOSEN.split(",") if name in SCENARIOS] or DEFAULT_FAULT_SCENARIOS
    if _CHOSEN
    else DEFAULT_FAULT_SCENARIOS
)


def scenario_params(names, group="faults"):
    """Parameters grouped by scenario (``--dist loadgroup``): one worker runs a group's cases, so the scenario's
    undisturbed run is made once for them."""
    return [pytest.param(name, marks=pytest.mark.xdist_group(f"proof-{group}-{name}")) for name in names]


# AWS operations that read (by their name); any other operation changes something.
READ_PREFIXES = (
    "Describe",
    "List",
    "Get",
    "Lookup",
    "Head",
    "Search",
    "BatchGet",
    "Query",
    "Scan",
    "Select",
    "Simulate",
    "Filter",
    "Test",
    "Check",
    "Validate",
    "Estimate",
    "Decode",
)
READ_ACTIONS = {"StartQuery", "StopQuery", "AssumeRole", "AssumeRoleWithWebIdentity"}
# REST calls that read although they are POSTs: Batch names its action in the path (``POST /v1/describejobqueues``),
# GuardDuty's ListFindings, GetFindings and GetFindingsStatistics are POSTs to a detector's ``/findings``.
REST_READ_ACTION = re.compile(r"/v\d+/(describe|list|get|search)[a-z]*$|^/detector/[^/]+/findings(/get|/statistics)?$")
# Where the incident record lives (timeline write-through, claims, seals): ``s3://<evidence bucket>/firebreak/...``
RECORD_PREFIX = "firebreak/"
DEFAULT_EVIDENCE_BUCKET = "firebreak-sandbox-evidence"


# -- calls -------------------------------------------------------------------------------------------------------
_K8S_NAME = re.compile(r"-[a-z0-9]{5}$|-[a-f0-9]{8,10}(-[a-z0-9]{5})?$")


@dataclass(frozen=True)
class Call:
    """One call path: an AWS operation (service, action), an S3 request (method, path) or a Kubernetes request."""

    api: str  # "aws" or "kubernetes"
    service: str
    operation: str  # the action, or "METHOD /path"
    method: str
    path: str

    @property
    def mutating(self) -> bool:
        if self.api == "kubernetes":
            return self.method not in ("GET", "HEAD")
        if self.rest:
            return self.method not in ("GET", "HEAD") and not REST_READ_ACTION.search(self.path.lower())
        return not (self.operation.startswith(READ_PREFIXES) or self.operation in READ_ACTIONS)

    @property
    def rest(self) -> bool:
        """A REST call the proxy knows by method and path only (S3, Lambda, ...)."""
        return self.operation.split(" ", 1)[0] in ("GET", "HEAD", "PUT", "POST", "DELETE", "PATCH")

    @property
    def marker(self) -> bool:
        """A tag written beside the change (best effort by design: a failure is a warning, the run goes on)."""
        if self.api != "aws":
            return False
        if self.rest:
            return "/tags/" in self.path or self.path.endswith("/tags")
        return re.match(r"(Tag|Untag)[A-Z]\w*$|(Create|Delete)Tags$", self.operation) is not None

    def bucket(self) -> str | None:
        """The S3 bucket a call is about (path style), or None."""
        if self.api != "aws" or self.service != "s3":
            return None
        return self.path.lstrip("/").split("/", 1)[0] or None

    def in_evidence_bucket(self, evidence: set) -> bool:
        """An S3 call on the evidence bucket: evidence copies, the timeline's write-through, claims, seals."""
        return self.bucket() in evidence

    def record_keeping(self, evidence: set) -> bool:
        """A write of the incident record in the evidence bucket (``firebreak/``: timelines, claims, seals)."""
        key = self.path.lstrip("/").split("/", 1)[1] if "/" in self.path.lstrip("/") else ""
        return self.in_evidence_bucket(evidence) and key.startswith(RECORD_PREFIX)

    @property
    def label(self) -> str:
        return f"{self.service}:{self.operation}" if self.api == "aws" else f"k8s:{self.operation}"

    def rule(self, **fault) -> dict:
        """A fault-proxy rule that matches this call path (and no other)."""
        if self.api == "aws" and not self.rest:
            return {"service": self.service, "action": self.operation, **fault}
        if self.api == "aws":  # REST: the method and the path prefix, the incident's id matching any incident
            return {
                "service": self.service,
                "method": self.method,
                "path": "^" + _incident_pattern(self.path) + "(/|$)",
                **fault,
            }
        return {"method": self.method, "path": "^" + _path_pattern(self.path) + "$", **fault}


_INCIDENT = re.compile(r"INC-[A-Za-z0-9_-]+")


def _incident_pattern(path: str) -> str:
    """A path as a regular expression, an incident id in it (evidence under ``incidents/<id>/``) matching any id:
    the undisturbed run's incident is not the faulted run's."""
    parts, at = [], 0
    for match in _INCIDENT.finditer(path):
        parts += [re.escape(path[at : match.start()]), _INCIDENT.pattern]
        at = match.end()
    return "".join([*parts, re.escape(path[at:])])


def _path_pattern(path: str) -> str:
    """A path as a regular expression, generated names (pods, ReplicaSets) matching any name of their shape."""
    parts = []
    for part in path.split("/"):
        match = _K8S_NAME.search(part)
        parts.append(re.escape(part[: match.start()]) + r"-[a-z0-9-]+" if match else re.escape(part))
    return "/".join(parts)


def calls_of(log: list[dict], api: str) -> list[Call]:
    """The call paths in a proxy log, in the order of their first call."""
    seen, out = set(), []
    for entry in log:
        if api == "kubernetes":
            path = re.sub(r"(/pods/)[^/]+", r"\1{pod}", entry["path"]) if "/pods/" in entry["path"] else entry["path"]
            call = Call("kubernetes", "kubernetes", f"{entry['method']} {path}", entry["method"], entry["path"])
            key = (call.operation,)
        elif entry["service"] == "s3" or not entry["action"]:
            # S3 keys carry the incident, hashes and ids: a call path is the method and the first three segments
            # (other REST services' paths name stable resources and are kept whole)
            prefix = "/".join(entry["path"].split("/")[:4]) if entry["service"] == "s3" else entry["path"]
            more = "/…" if len(entry["path"]) > len(prefix) else ""
            call = Call("aws", entry["service"], f"{entry['method']} {prefix}{more}", entry["method"], prefix)
            key = (entry["service"], entry["method"], prefix)
        else:
            call = Call("aws", entry["service"], entry["action"], entry["method"], entry["path"])
            key = (entry["service"], entry["action"])
        if key not in seen:
            seen.add(key)
            out.append(call)
    return out


# -- the Kubernetes proxy ----------------------------------------------------------------------------------------
class KubeProxy:
    """A fault proxy in front of the Kubernetes API test server, and a kubeconfig aimed at it."""

    def __init__(self, box, workdir: Path):
        self.proxy = FaultProxy(upstream=box.kube_url)
        self.proxy.clear()  # no AWS canned answers here
        self.url = self.proxy.start()
        config = yaml.safe_load(Path(box.kubeconfig).read_text())
        for cluster in config["clusters"]:
            cluster["cluster"]["server"] = self.url
        self.kubeconfig = workdir / "kubeconfig-proxy"
        self.kubeconfig.write_text(yaml.safe_dump(config))

    def reset(self) -> None:
        self.proxy.quiesce()
        self.proxy.clear()
        self.proxy.clear_log()

    def env(self) -> dict:
        path = str(self.kubeconfig)
        return {"FIREBREAK_KUBECONFIG": path, "K8S_AUTH_KUBECONFIG": path, "KUBECONFIG": path}

    def stop(self) -> None:
        self.proxy.stop()


# -- retry budgets ------------------------------------------------------------------------------------------------
# A permanent fault costs the step its whole retry budget (60 s by default). The faulted runs pass every role's
# ``<role>_retry_budget`` lowered to this: the bound is the same property (the step gives up within the budget it
# is given, naming the call), at a third of the wait.
FAULT_RETRY_BUDGET = 20


def retry_budgets(seconds: int = FAULT_RETRY_BUDGET) -> dict:
    """``{"<role>_retry_budget": seconds}`` for every role whose defaults have one."""
    budgets = {}
    for defaults in sorted((REPO_ROOT / "roles").glob("*/defaults/main.yml")):
        for key in yaml.safe_load(defaults.read_text()) or {}:
            if key.endswith("_retry_budget"):
                budgets[key] = seconds
    return budgets


# -- running a scenario ------------------------------------------------------------------------------------------
def extra_vars(context: dict) -> dict:
    return {key: value for key, value in context.items() if not key.startswith("_")}


def prepare(box, kproxy: KubeProxy, name: str) -> dict:
    """Back to the seed, the drill's fault injected, both logs and all fault rules cleared; the playbook's vars.

    The rules the drill's inject added (its symptom: canned CloudWatch answers, instance statuses, CloudTrail
    events moto lacks) are remembered as they were armed, so that ``rearm_drill`` (or ``between_runs``) can give a
    re-run the same symptom after a faulted run used their counts up."""
    box.reset()
    kproxy.reset()
    context = SCENARIOS[name].inject(box)
    _DRILL_RULES[id(box)] = drill_rules(box, kproxy)
    box.proxy.clear_log()
    kproxy.proxy.clear_log()
    return extra_vars(context)


# -- the drill's own rules -----------------------------------------------------------------------------------------
_DRILL_RULES: dict[int, list] = {}  # id(box) -> [(proxy, rule id, the rule as add_rule takes it)]


def _as_added(rule: dict) -> dict:
    """A rule of ``FaultProxy.rules()`` back in the shape ``add_rule`` takes (its original count, not what is left)."""
    added = {key: rule[key] for key in RULE_FIELDS if key in rule and rule[key] is not None}
    for key, empty in (("service", "*"), ("action", "*"), ("headers", {})):
        if added.get(key) == empty:
            del added[key]
    return added


def drill_rules(box, kproxy: KubeProxy) -> list:
    """The rules on both proxies other than the defaults: right after ``inject``, the drill's symptom."""
    return [
        (proxy, rule["id"], _as_added(rule))
        for proxy in (box.proxy, kproxy.proxy)
        for rule in proxy.rules()
        if not rule["default"]
    ]


def rearm_drill(box) -> list[str]:
    """The drill's rules as ``inject`` armed them: what is left of them removed, each added again with its count
    (after the case's rules still armed). A run that failed on a fault changed none of the target resources, so the
    incident's symptom is still there for the re-run. Returns the new rule ids."""
    armed, ids = [], []
    for proxy, rule_id, rule in _DRILL_RULES.get(id(box), []):
        proxy.remove_rule(rule_id)
        new = proxy.add_rule(rule)
        armed.append((proxy, new, rule))
        ids.append(new)
    _DRILL_RULES[id(box)] = armed
    return ids


def between_runs(box, kproxy: KubeProxy, *case_rules: str) -> list[str]:
    """Between a faulted run and its re-run: the case's fault rules named here removed (the other rules the case
    armed, e.g. throttling not yet reached, stay), the drill's symptom rules armed again. Returns their ids."""
    for rule in case_rules:
        for proxy in (box.proxy, kproxy.proxy):
            proxy.remove_rule(rule)
    return rearm_drill(box)


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float
    timeline: Path
    aws_log: list = field(default_factory=list)
    kube_log: list = field(default_factory=list)

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.timeline.read_text().splitlines()]


def _env(box, kproxy: KubeProxy, timeline: Path, incident: str) -> dict:
    """The load suite's playbook environment, with the Kubernetes clients aimed at the fault proxy."""
    return {**playbook_env(box, incident, timeline), **kproxy.env()}


def start(box, kproxy, playbook: str, variables: dict, timeline: Path, incident: str, out: Path) -> subprocess.Popen:
    """``ansible-playbook`` started in a process group of its own (so a kill reaches its workers too)."""
    timeline.parent.mkdir(parents=True, exist_ok=True)
    cmd = [ANSIBLE_PLAYBOOK, playbook, "-e", json.dumps({**variables, "incident_id": incident})]
    with open(out, "w") as sink:
        return subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=_env(box, kproxy, timeline, incident),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run(box, kproxy, playbook: str, variables: dict, timeline: Path, incident: str, timeout=400) -> Run:
    out = timeline.parent / f"run-{time.monotonic_ns()}.log"
    began = time.monotonic()
    proc = start(box, kproxy, playbook, variables, timeline, incident, out)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return Run(
        proc.returncode, out.read_text(), time.monotonic() - began, timeline, box.proxy.log(), kproxy.proxy.log()
    )


# -- end states --------------------------------------------------------------------------------------------------
_IDS = re.compile(
    r"\b(?:i|acl|subnet|sg|vpc|eni|igw|rtb|ami|vol|snap|eipalloc|nat|dopt)-[0-9a-f]{8,17}\b"
    r"|\bAKIA[0-9A-Z]{16}\b|\bASIA[0-9A-Z]{16}\b"
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
    r"|\b[0-9a-f]{32}\b"
    r"|ecs-svc/\d+"
    r"|INC-PROOF-[A-Za-z0-9_-]+"  # the incident: rules and claims named after it
    r"|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
)


def normalize(value):
    """A snapshot with the ids moto makes afresh on each seeding (instances, NACLs, keys, secret versions) replaced,
    and every dict turned into a sorted list of pairs, so two seedings that reached the same state compare equal."""
    if isinstance(value, dict):
        return sorted(((_IDS.sub("<id>", str(k)), normalize(v)) for k, v in value.items()), key=repr)
    if isinstance(value, list | tuple):
        items = [normalize(v) for v in value]
        # a list whose every item carries a generated id (secret versions, ...) is in the order of those ids, which
        # a new seeding draws afresh: compare it as a set
        if len(items) > 1 and all("<id>" in repr(item) for item in items):
            items.sort(key=repr)
        return items
    if isinstance(value, str):
        return _IDS.sub("<id>", value)
    return value


SEALS = "/seals/"  # the incident record's seals: one per finished run, not the state a runbook acts on
LOCKS = "/firebreak/locks/"  # the rollback lock (containment/lock.py): its history is one version and marker per run


def end_state(box) -> dict:
    """The sandbox's state (``snapshot``) normalized, S3 object versions and delete markers counted without the
    incident's seals and the rollback lock's history (every run that takes the lock leaves a version and a delete
    marker, docs/steps/ecs_rollback.md: a faulted run and its re-run leave two of each); a lock still held is
    counted (``locks_held``), so a run that leaves its lock behind still differs."""
    state = snapshot(box)
    s3 = box.client("s3")
    for bucket, entry in (state.get("s3") or {}).items():
        if isinstance(entry, dict) and isinstance(entry.get("versions"), int):
            listed = s3.list_object_versions(Bucket=bucket)
            versions = listed.get("Versions", [])
            entry["versions"] = sum(1 for v in versions if not _history("/" + v["Key"]))
            entry["markers"] = sum(1 for m in listed.get("DeleteMarkers", []) if not _history("/" + m["Key"]))
            entry["locks_held"] = sum(1 for v in versions if LOCKS in "/" + v["Key"] and v.get("IsLatest"))
    return {area: normalize(value) for area, value in state.items()}


def _history(key: str) -> bool:
    return SEALS in key or LOCKS in key


def state_differences(expected: dict, found: dict) -> list[str]:
    return [
        f"{area}: {expected.get(area)!r} -> {found.get(area)!r}"
        for area in sorted(set(expected) | set(found))
        if expected.get(area) != found.get(area)
    ]


# -- re-runs -----------------------------------------------------------------------------------------------------
REFUSED_HEALTHY = "does not look down"


def rerun_outcome(name: str, again: Run) -> str:
    """A re-run of the incident must complete. One documented exception: k8s_service_down stops, changing nothing,
    when its triage finds the workload healthy (tests/integration/test_k8s_service_down.py asserts it after a
    finished run), which is also what it finds when the interrupted run's rollout undo had landed. That refusal is
    accepted (the end state is still compared) and said in the tally; anything else must succeed."""
    if again.returncode == 0:
        return "re-run completed"
    text = " ".join(again.output.split())
    assert name == "k8s_service_down" and REFUSED_HEALTHY in text and "Nothing was changed" in text, (
        f"the re-run of {name} failed:\n{again.output[-4000:]}"
    )
    return "re-run stopped as documented: the workload was already healthy, nothing changed (incident left open)"


# -- baselines ---------------------------------------------------------------------------------------------------
@dataclass
class Baseline:
    name: str
    calls: list  # [Call], in the order of their first call (AWS and Kubernetes merged by time)
    end: dict
    seconds: float
    records: int

    @property
    def mutating(self) -> list:
        return [call for call in self.calls if call.mutating]

    evidence_buckets: set = field(default_factory=lambda: {DEFAULT_EVIDENCE_BUCKET})

    @property
    def first_change(self) -> Call:
        """The first mutating call that is not a best-effort tag."""
        return next(call for call in self.mutating if not call.marker)

    @property
    def target_changes(self) -> list:
        """The mutating calls that change the incident's target resources: not the evidence bucket (evidence copies,
        the timeline's write-through, claims, seals), not a best-effort tag."""
        return [c for c in self.mutating if not c.marker and not c.in_evidence_bucket(self.evidence_buckets)]

    @property
    def first_target_change(self) -> Call:
        """The first call that changes a target resource (what the permanent-5xx case fails)."""
        found = self.target_changes
        assert found, f"{self.name}: the undisturbed run changed no target resource: {[c.label for c in self.calls]}"
        return found[0]

    @property
    def evidence_upload(self) -> Call | None:
        """The first evidence upload to the evidence bucket (outside the incident record's ``firebreak/``), if the
        scenario makes one."""
        return next(
            (
                c
                for c in self.mutating
                if c.in_evidence_bucket(self.evidence_buckets) and not c.record_keeping(self.evidence_buckets)
            ),
            None,
        )


_BASELINES: dict[str, Baseline] = {}


def baseline(box, kproxy, name: str, workdir: Path) -> Baseline:
    """The scenario run once undisturbed (once per worker): its calls and its normalized end state."""
    if name not in _BASELINES:
        variables = prepare(box, kproxy, name)
        incident = f"INC-PROOF-BASE-{name}"
        done = run(box, kproxy, SCENARIOS[name].PLAYBOOK, variables, workdir / incident / "timeline.jsonl", incident)
        assert done.returncode == 0, f"the undisturbed {name} run failed:\n{done.output[-4000:]}"
        # both logs in time order, so that "first" means first in the run whichever API it went to
        merged = sorted(
            [(e["time"], 0, e["seq"], "aws", e) for e in done.aws_log]
            + [(e["time"], 1, e["seq"], "kubernetes", e) for e in done.kube_log],
            key=lambda item: item[:3],
        )
        calls, seen = [], set()
        for *_, api, entry in merged:
            for call in calls_of([entry], api):
                if (call.api, call.service, call.operation) not in seen:
                    seen.add((call.api, call.service, call.operation))
                    calls.append(call)
        _BASELINES[name] = Baseline(
            name, calls, end_state(box), done.seconds, len(done.records()), evidence_buckets(box)
        )
    return _BASELINES[name]


def evidence_buckets(box) -> set:
    """The sandbox's evidence bucket(s), from its manifest (``evidence_bucket`` wherever the seed put it)."""
    found = set()

    def walk(value):
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "evidence_bucket" and isinstance(inner, str):
                    found.add(inner)
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(box.manifest or {})
    return found or {DEFAULT_EVIDENCE_BUCKET}


def target_changes_made(run: Run, base: Baseline) -> list[str]:
    """The target-changing calls a run made that the API accepted (status < 400), as ``label`` strings."""
    made = []
    for api, log in (("aws", run.aws_log), ("kubernetes", run.kube_log)):
        for entry in log:
            if (entry.get("status") or 0) >= 400 or entry.get("fault"):
                continue
            for call in calls_of([entry], api):
                if call.mutating and not call.marker and not call.in_evidence_bucket(base.evidence_buckets):
                    made.append(call.label)
    return made


# -- the tally ---------------------------------------------------------------------------------------------------
def results_file(config) -> Path:
    """One file per session (the workers' basetemp shares a root): ``<basetemp root>/proof-results.jsonl``."""
    base = config._tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return root / RESULTS_NAME


def tally(request, **entry) -> None:
    """Append one case's figures: cases, faults survived, records lost, end states that differed."""
    entry = {"test": request.node.nodeid, **entry}
    with open(results_file(request.config), "a") as sink:
        sink.write(json.dumps(entry, default=str) + "\n")
    print("PROOF", json.dumps(entry, default=str))


def summary(path: Path) -> str:
    """The tally of one session's proof cases (what the issue's closing note quotes)."""
    if not path.exists():
        return ""
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    lines = [
        f"cases tried {len(entries)}, faults survived {sum(e.get('survived', 0) for e in entries)} "
        f"(of {sum(e.get('faults', 0) for e in entries)} injected), "
        f"records lost {sum(e.get('records_lost', 0) for e in entries)}, "
        f"end states that differed {sum(e.get('end_state_differed', 0) for e in entries)}"
    ]
    for suite in sorted({e["suite"] for e in entries}):
        mine = [e for e in entries if e["suite"] == suite]
        lines.append(f"  {suite}: {len(mine)} case(s)")
        for entry in mine:
            lines.append(f"    {entry['case']}: {entry.get('detail', '')}")
            if entry.get("calls"):
                lines.append(f"      call paths: {', '.join(entry['calls'])}")
    return "\n".join(lines)
