"""awx/load.yml against a local stand-in of the AWX API (tests/integration/awx_standin.py).

The loader's awx.awx modules talk HTTP to the stand-in, which records every request; the test asserts what it
received for every scenario (no list kept by hand): the job templates and their surveys (equal to the generated
awx/surveys/<scenario>.json), the gated workflow with its survey, nodes, approval node (its description carrying
the plan, its timeout) and edges, the credential types, the notification template and the inventory source.
A second run changes nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys

import pytest
import yaml

from sandbox import REPO_ROOT
from tests.integration.awx_standin import AWXStandIn, Recorded
from tools import awx_surveys

SCENARIOS = awx_surveys.scenarios()
# One worker runs every test here (make test passes --dist loadgroup): the load is shared through a file lock, and
# spread over workers its tests made every one of them wait for the same load instead of running other tests.
pytestmark = pytest.mark.xdist_group("awx_loader")


def _load(standin: AWXStandIn, tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("CONTROLLER_")}
    env.update(NO_PROXY="127.0.0.1", FIREBREAK_TIMELINE=str(tmp_path / "timeline.jsonl"), ANSIBLE_NOCOLOR="1")
    cmd = [
        str(REPO_ROOT / ".venv" / "bin" / "ansible-playbook"),
        "awx/load.yml",
        "-e",
        json.dumps(
            {
                "firebreak_awx_host": standin.url,
                "firebreak_awx_token": standin.token,
                "firebreak_awx_validate_certs": False,
                "firebreak_awx_scm_url": "https://git.example.com/ops/firebreak-runbooks.git",
                "firebreak_awx_chat_webhook_url": "https://chat.example.com/hooks/T0/B0/x",
                "incident_id": "INC-AWX-LOAD",
            }
        ),
    ]
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)


def _run_twice(tmp_path) -> dict:
    with AWXStandIn() as standin:
        first = _load(standin, tmp_path)
        assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
        after_first = len(standin.requests)
        second = _load(standin, tmp_path)
        assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-2000:]
        return {"state": standin.state(), "second_stdout": second.stdout, "after_first": after_first}


@pytest.fixture(scope="session")
def loaded(tmp_path_factory):
    """The loader run twice against one stand-in, once per test session (once per worker's session, shared
    through a file lock when another worker runs these tests too)."""
    # Under xdist the workers' base temps share this session's parent; without xdist the parent is shared by every
    # pytest session of the machine (other checkouts too), where an earlier session's result would be read.
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "awx_loader"
    shared.mkdir(exist_ok=True)
    result = shared / "result.json"
    with (shared / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.is_file():
            result.write_text(json.dumps(_run_twice(shared)), encoding="utf-8")
        data = json.loads(result.read_text(encoding="utf-8"))
    return Recorded(data["state"]), data["second_stdout"], data["after_first"]


def test_every_request_used_the_token(loaded):
    standin, *_ = loaded
    assert standin.requests
    assert {r["auth"] for r in standin.requests} == {f"Bearer {standin.token}"}
    assert all(r["path"].startswith("/api/v2/") for r in standin.requests)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_job_templates_and_surveys(loaded, scenario):
    standin, *_ = loaded
    survey = json.loads((REPO_ROOT / "awx" / "surveys" / f"{scenario}.json").read_text(encoding="utf-8"))
    assert survey == awx_surveys.survey(scenario)
    project = standin.one("projects", name="firebreak.runbooks")
    inventory = standin.one("inventories", name="firebreak")
    for name, job_type in ((f"firebreak: {scenario}", "run"), (f"firebreak: {scenario} (plan)", "check")):
        jt = standin.one("job_templates", name=name)
        assert jt["playbook"] == f"playbooks/{scenario}.yml"
        assert jt["job_type"] == job_type
        assert jt["project"] == project["id"] and jt["inventory"] == inventory["id"]
        assert jt["survey_enabled"] is True
        assert standin.surveys[jt["url"]] == survey, name
        posted = [r["body"] for r in standin.sent("POST", jt["url"] + "survey_spec/")]
        assert posted == [survey], "the survey is posted once, as generated"
        notify = standin.one("notification_templates", name="firebreak: incident lifecycle")["id"]
        for event in ("started", "success", "error"):
            assert standin.linked("job_templates", jt["id"], f"notification_templates_{event}") == [notify]
    variables = [q["variable"] for q in survey["spec"]]
    assert "incident_id" in variables
    assert next(q for q in survey["spec"] if q["variable"] == "incident_id")["required"] is True


def test_report_template(loaded):
    standin, *_ = loaded
    report = standin.one("job_templates", name="firebreak: incident_report")
    assert report["playbook"] == "playbooks/incident_report.yml"
    assert report["survey_enabled"] is False and report["ask_variables_on_launch"] is True
    assert report["url"] not in standin.surveys


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_gated_workflow(loaded, scenario):
    standin, *_ = loaded
    wf = standin.one("workflow_job_templates", name=f"firebreak: {scenario} (gated)")
    assert standin.surveys[wf["url"]] == awx_surveys.survey(scenario)
    nodes = {n["identifier"]: n for n in standin.find("workflow_job_template_nodes", workflow_job_template=wf["id"])}
    assert set(nodes) == {"plan", "approve", "run", "report"}
    ujt = {ident: node.get("unified_job_template") for ident, node in nodes.items()}
    assert ujt["plan"] == standin.one("job_templates", name=f"firebreak: {scenario} (plan)")["id"]
    assert ujt["run"] == standin.one("job_templates", name=f"firebreak: {scenario}")["id"]
    assert ujt["report"] == standin.one("job_templates", name="firebreak: incident_report")["id"]
    # only the node after the approval tells the scenario's gates that the published plan was approved
    assert nodes["run"].get("extra_data") == {"firebreak_gate_workflow_approval": True}
    assert not nodes["plan"].get("extra_data") and not nodes["report"].get("extra_data")

    approval = standin.objects["workflow_approval_templates"][ujt["approve"]]
    plan = yaml.safe_load((REPO_ROOT / "playbooks" / f"{scenario}.meta.yml").read_text(encoding="utf-8"))["plan"]
    assert approval["name"] == f"Approve {scenario} from its plan"
    assert approval["description"].startswith("PLAN: " + " ".join(plan.split()))
    assert f"'firebreak: {scenario} (plan)'" in approval["description"]
    assert "nothing changed" in approval["description"]
    assert approval["timeout"] == awx_surveys.APPROVAL_TIMEOUT
    posted = standin.sent("POST", f"/workflow_job_template_nodes/{nodes['approve']['id']}/create_approval_template/")
    assert [r["body"] for r in posted] == [
        {"name": approval["name"], "description": approval["description"], "timeout": approval["timeout"]}
    ]

    def edges(ident, kind):
        return standin.linked("workflow_job_template_nodes", nodes[ident]["id"], f"{kind}_nodes")

    # plan -> (success) approve -> (success) run -> (always) report; no failure edge anywhere: a failed plan,
    # a denial or a timed-out approval ends the workflow before the real job.
    assert edges("plan", "success") == [nodes["approve"]["id"]]
    assert edges("approve", "success") == [nodes["run"]["id"]]
    assert edges("run", "always") == [nodes["report"]["id"]]
    for ident in nodes:
        assert edges(ident, "failure") == []
    assert edges("approve", "always") == [] and edges("plan", "always") == []
    notify = standin.one("notification_templates", name="firebreak: incident lifecycle")["id"]
    assert standin.linked("workflow_job_templates", wf["id"], "notification_templates_approvals") == [notify]


def test_credential_types_notifications_inventory(loaded):
    standin, *_ = loaded
    types = {t["name"]: t for t in standin.find("credential_types")}
    assert set(types) == {
        "firebreak: AWS hub role",
        "firebreak: AWS account role",
        "firebreak: Kubernetes bearer token",
        "firebreak: chat webhook",
    }
    for cred_type in types.values():
        assert cred_type["kind"] == "cloud"
        secrets = {f["id"] for f in cred_type["inputs"]["fields"] if f.get("secret")}
        assert secrets, cred_type["name"]
    webhook = types["firebreak: chat webhook"]
    field = {"id": "webhook_url", "label": "Webhook URL", "type": "string", "secret": True}
    assert webhook["inputs"]["fields"] == [field]
    assert webhook["injectors"] == {"extra_vars": {"firebreak_chat_webhook_url": "{{ webhook_url }}"}}
    k8s = types["firebreak: Kubernetes bearer token"]["injectors"]["env"]
    assert k8s["K8S_AUTH_API_KEY"] == "{{ bearer_token }}" and k8s["K8S_AUTH_HOST"] == "{{ host }}"
    hub = types["firebreak: AWS hub role"]["injectors"]["env"]
    assert hub == {"AWS_ACCESS_KEY_ID": "{{ access_key_id }}", "AWS_SECRET_ACCESS_KEY": "{{ secret_access_key }}"}

    notification = standin.one("notification_templates", name="firebreak: incident lifecycle")
    assert notification["notification_type"] == "webhook"
    assert set(notification["messages"]) == {"started", "success", "error", "workflow_approval"}
    assert set(notification["messages"]["workflow_approval"]) == {"running", "approved", "denied", "timed_out"}

    source = standin.one("inventory_sources", name="firebreak: accounts and clusters")
    assert source["source"] == "scm" and source["source_path"] == "awx/inventory/accounts_and_clusters.yml"
    assert source["inventory"] == standin.one("inventories", name="firebreak")["id"]
    hosts = yaml.safe_load((REPO_ROOT / source["source_path"]).read_text(encoding="utf-8"))
    assert hosts["aws_accounts"]["hosts"] and hosts["k8s_clusters"]["hosts"]


def test_second_run_changes_nothing(loaded):
    standin, second_stdout, after_first = loaded
    assert "changed=0" in second_stdout.split("PLAY RECAP")[-1], second_stdout[-2000:]
    later = standin.requests[after_first:]
    assert [r for r in later if r["method"] in ("POST", "PATCH", "DELETE")] == []


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
