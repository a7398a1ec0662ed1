"""The step result contract (docs/contract.md), held for every module in plugins/modules.

The modules are discovered, not listed: a new module is held to the contract the day it is added.
The record modules (``incident_*``: note, report, seal) write the incident record and are not steps.
"""

from __future__ import annotations

import ast
import importlib
import sys

import pytest
import yaml

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

import botocore.exceptions
from ansible_collections.amazon.aws.plugins.module_utils import botocore as aws_botocore
from ansible_collections.amazon.aws.plugins.module_utils import modules as aws_modules
from ansible_collections.firebreak.runbooks.plugins.module_utils.k8s import common as k8s_common
from ansible_collections.firebreak.runbooks.plugins.module_utils.runtime import step

MODULES_DIR = REPO_ROOT / "plugins" / "modules"
STEP_MODULES = sorted(p.stem for p in MODULES_DIR.glob("*.py") if not p.stem.startswith(("incident_", "_")))
KINDS = set(step.STEP_KINDS)


def load(name):
    return importlib.import_module(f"ansible_collections.firebreak.runbooks.plugins.modules.{name}")


def docs(name):
    tree = ast.parse((MODULES_DIR / f"{name}.py").read_text(encoding="utf-8"))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in ("DOCUMENTATION", "RETURN"):
            found[node.targets[0].id] = yaml.safe_load(node.value.value)
    return found["DOCUMENTATION"], found["RETURN"] or {}


def is_k8s(name):
    return "kubernetes.core.k8s_auth_options" in docs(name)[0].get("extends_documentation_fragment", [])


def contract_problems(result):
    """What in a step result breaks the contract (an empty list: nothing)."""
    problems = []
    if result.get("step_kind") not in KINDS:
        problems.append(f"step_kind {result.get('step_kind')!r} is not one of {sorted(KINDS)}")
    if not isinstance(result.get("containment"), list):
        problems.append(f"containment is a {type(result.get('containment')).__name__}, not a list")
    if not isinstance(result.get("msg"), str) or not result["msg"]:
        problems.append(f"msg {result.get('msg')!r} is not a message")
    if not isinstance(result.get("changed"), bool):
        problems.append(f"changed {result.get('changed')!r} is not a bool")
    if not isinstance(result.get("predicted"), bool):
        problems.append(f"predicted {result.get('predicted')!r} is not a bool")
    return problems


def test_the_modules_are_found():
    assert len(STEP_MODULES) >= 27, STEP_MODULES
    assert "ecs_service_rollback" in STEP_MODULES and "k8s_config_rollback" in STEP_MODULES


@pytest.mark.parametrize("name", STEP_MODULES)
def test_return_documents_the_contract(name):
    _, ret = docs(name)
    wanted = ["msg", "before", "after", "step_kind", "containment", "predicted"]
    wanted += ["k8s_verb", "k8s_status"] if is_k8s(name) else ["aws_operation", "aws_error_code"]
    missing = [key for key in wanted if key not in ret]
    assert not missing, f"{name}: RETURN does not document {missing}"
    assert ret["containment"]["type"] == "list", f"{name}: RETURN documents containment as {ret['containment']['type']}"
    assert ret["step_kind"]["returned"] == "always" and ret["containment"]["returned"] == "always"
    assert ret["step_kind"].get("sample") in KINDS, f"{name}: step_kind sample {ret['step_kind'].get('sample')!r}"
    for key in wanted:
        extra = set(ret[key]) - {"description", "returned", "type", "elements", "sample", "contains", "version_added"}
        assert not extra, f"{name}: RETURN {key} has unknown fields {sorted(extra)} (a comma in a one-line entry?)"


# -- every module, run: the runner's result holds the contract whatever the step does -------------------------


class Ended(Exception):
    def __init__(self, failed, result):
        super().__init__(result.get("msg"))
        self.failed = failed
        self.result = result


def sample_value(option, spec, tmp_path):
    if spec.get("choices"):
        return spec["choices"][0]
    kind = spec.get("type", "str")
    if kind == "path":
        return str(tmp_path / option)
    return {"str": "contract-test", "list": ["contract-test"], "int": 1, "float": 1.0, "bool": False, "dict": {}}.get(
        kind, "contract-test"
    )


def fake_module_class(check_mode, tmp_path):
    class FakeModule:
        def __init__(self, argument_spec, supports_check_mode=False, **_):
            self.params = {}
            for option, spec in argument_spec.items():
                value = spec.get("default")
                if spec.get("required"):
                    value = sample_value(option, spec, tmp_path)
                self.params[option] = value
            self.params["incident_id"] = "INC-CONTRACT"
            self.params["retry_budget"] = 0
            self.check_mode = check_mode
            self._diff = True
            self._name = "contract"

        def fail_json(self, **result):
            raise Ended(True, result)

        def exit_json(self, **result):
            raise Ended(False, result)

        def warn(self, msg):
            pass

    return FakeModule


class DenyingClient:
    """An AWS client whose every call is refused (AccessDenied), recording what was asked."""

    def __init__(self, service, calls):
        self.service = service
        self.calls = calls
        self.meta = type("Meta", (), {"region_name": "us-east-1", "method_to_api_mapping": {}})()
        self.exceptions = type("Exceptions", (), {"__getattr__": lambda s, n: type(n, (Exception,), {})})()

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)

        def call(*args, **kwargs):
            operation = "".join(part.capitalize() for part in method.split("_"))
            self.calls.append(operation)
            answer = {"Error": {"Code": "AccessDenied", "Message": "contract test"}}
            raise botocore.exceptions.ClientError(dict(answer, ResponseMetadata={"HTTPStatusCode": 403}), operation)

        return call


@pytest.fixture
def denied(monkeypatch, tmp_path):
    """Every AWS and Kubernetes call refused; returns a function running a module's main()."""
    calls = []
    monkeypatch.setattr(aws_botocore, "get_aws_connection_info", lambda module: ("us-east-1", None, {}))
    monkeypatch.setattr(step, "_new_client", lambda profile, service, **kw: DenyingClient(service, calls))

    def refuse(self, verb, kind, namespace=None, name=None, **kwargs):
        calls.append(verb)
        message = f"{verb} {kind} {name} failed: 403 Forbidden"
        raise k8s_common.K8sStepError(message, status=403, reason="Forbidden", verb=verb)

    monkeypatch.setattr(k8s_common.Kube, "from_module", classmethod(lambda cls, module: cls(None, budget=0)))
    monkeypatch.setattr(k8s_common.Kube, "request", refuse)

    # The runner reads the raw arguments from stdin first (a dict given for a list is refused naming the
    # value); here the fake module holds the parameters.
    monkeypatch.setattr(step, "refuse_mappings_for_lists", lambda argument_spec: None)

    def run(name, check_mode):
        fake = fake_module_class(check_mode, tmp_path)
        module = load(name)
        monkeypatch.setattr(aws_modules, "AnsibleAWSModule", fake)
        if hasattr(module, "AnsibleK8SModule"):
            monkeypatch.setattr(module, "AnsibleK8SModule", fake)
        calls.clear()
        with pytest.raises(Ended) as ended:
            module.main()
        return ended.value, list(calls)

    return run


@pytest.mark.parametrize("check_mode", [False, True], ids=["apply", "check"])
@pytest.mark.parametrize("name", STEP_MODULES)
def test_every_module_result_holds_the_contract(denied, name, check_mode):
    ended, calls = denied(name, check_mode)
    result = ended.result
    assert not contract_problems(result), (name, contract_problems(result), result)
    assert result["predicted"] is check_mode
    assert result["step_kind"] == docs(name)[1]["step_kind"]["sample"], "RETURN documents another step_kind"
    if ended.failed and ("AccessDenied" in result["msg"] or "403 Forbidden" in result["msg"]):
        # a refused call failed the step: the failure names the call and its code
        if is_k8s(name):
            assert result["k8s_verb"] in calls and result["k8s_status"] == 403, result
        else:
            assert result["aws_operation"] in calls and result["aws_error_code"] == "AccessDenied", result


class GrantingS3:
    """An S3 bucket with Block Public Access off and no tags, that does what it is asked."""

    def __init__(self):
        self.configuration = {name: False for name in ("BlockPublicAcls", "IgnorePublicAcls")}
        self.tags = []
        self.meta = type("Meta", (), {"region_name": "us-east-1", "method_to_api_mapping": {}})()

    def get_public_access_block(self, Bucket):
        return {"PublicAccessBlockConfiguration": dict(self.configuration)}

    def get_bucket_tagging(self, Bucket):
        return {"TagSet": list(self.tags)}

    def get_bucket_policy_status(self, Bucket):
        return {"PolicyStatus": {"IsPublic": True}}

    def put_public_access_block(self, Bucket, PublicAccessBlockConfiguration):
        self.configuration = dict(PublicAccessBlockConfiguration)

    def put_bucket_tagging(self, Bucket, Tagging):
        self.tags = list(Tagging["TagSet"])


@pytest.mark.parametrize("check_mode", [False, True], ids=["apply", "check"])
def test_a_containment_that_contained_returns_a_list_of_entries(denied, monkeypatch, check_mode):
    monkeypatch.setattr(step, "_new_client", lambda profile, service, **kw: GrantingS3())
    ended, _ = denied("s3_public_access_lock", check_mode)
    result = ended.result
    assert not ended.failed and result["changed"] is True, result
    assert not contract_problems(result), contract_problems(result)
    assert len(result["containment"]) == 1 and result["containment"][0]["step"] == "s3_public_block"


# -- the runner itself -------------------------------------------------------------------------------------------


class Recorder:
    check_mode = False

    def fail_json(self, **result):
        raise Ended(True, result)

    def exit_json(self, **result):
        raise Ended(False, result)


def test_the_runner_reports_the_partial_result_of_a_failed_step():
    def run(module, result):
        result.update(changed=True, before={"n": 1}, containment=[{"id": "c1"}], msg="half way")
        raise step.StepAWSError("UpdateService", "InternalFailure", "boom", "service 'api'", attempts=3, elapsed=2.0)

    with pytest.raises(Ended) as ended:
        step.run_step(Recorder(), run, "mitigation")
    result = ended.value.result
    assert ended.value.failed and result["changed"] is True and result["containment"] == [{"id": "c1"}]
    assert result["aws_operation"] == "UpdateService" and result["aws_error_code"] == "InternalFailure"
    assert result["msg"].startswith("UpdateService failed for service 'api': InternalFailure: boom")
    assert result["step_kind"] == "mitigation"


def test_the_runner_does_not_turn_a_single_entry_into_a_list():
    # a step that returns one entry, not a list, breaks the contract: the runner does not hide it
    result = step.step_result({"changed": True, "msg": "x", "containment": {"id": "c1"}}, "containment")
    assert contract_problems(result) == ["containment is a dict, not a list"]


def test_in_diff_mode_the_runner_gives_before_and_after_as_the_diff_unless_the_step_set_one():
    module = Recorder()
    module._diff = True
    with pytest.raises(Ended) as ended:
        step.run_step(module, lambda m, r: {"changed": True, "msg": "x", "before": 1, "after": 2}, "mitigation")
    assert ended.value.result["diff"] == {"before": 1, "after": 2}
    with pytest.raises(Ended) as ended:
        step.run_step(
            module, lambda m, r: {"changed": True, "msg": "x", "before": 1, "after": 2, "diff": {}}, "mitigation"
        )
    assert ended.value.result["diff"] == {}


def test_the_runner_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="step_kind 'fixing' is not one of"):
        step.step_result({}, "fixing")


# -- `after` is read back, never the plan: fakes whose read-back differs from what the step asked for -------------


def test_ecs_rollback_after_is_what_the_api_says_not_the_plan():
    from ansible_collections.firebreak.runbooks.plugins.modules import ecs_service_rollback

    from tests.unit.test_ecs_rollback import ARN, FakeModule, _fake_clients, _service

    # The fake accepts the update but keeps answering revision 3 (a rollback that did not take).
    module = FakeModule(cluster="shop", service="shop-api", wait=False)
    _fake_clients(module, _service(td=ARN.format("shop-api:3")))
    result = ecs_service_rollback.run(module)
    assert not contract_problems(step.step_result(result, "mitigation"))
    assert result["target_task_definition"] == ARN.format("shop-api:2")  # the plan
    assert result["after"]["task_definition"] == "shop-api:3"  # the API


def test_k8s_rollout_undo_after_is_what_the_api_says_not_the_plan(monkeypatch):
    from ansible_collections.firebreak.runbooks.plugins.modules import k8s_rollout_undo

    from tests.unit.test_k8s_modules import FakeKube
    from tests.unit.test_k8s_modules import FakeModule as FakeK8sModule

    kube = FakeKube()  # takes the patch but its Deployment keeps the "bad" image
    monkeypatch.setattr(k8s_rollout_undo.Kube, "from_module", classmethod(lambda cls, module: kube))
    result = k8s_rollout_undo.run(FakeK8sModule(wait=False))
    assert kube.writes, "the undo was sent"
    assert result["to_images"] == ["api=good"]  # the plan
    assert result["after"]["images"] == ["api=bad"]  # the API
