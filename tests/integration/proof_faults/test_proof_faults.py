"""Faults on every call path a scenario makes, generated from an undisturbed run's own calls (issue 20 item 1).

For each scenario the undisturbed run (``support.baseline``, once per worker) gives the call paths it made
through the fault proxies (AWS, and Kubernetes through a fault proxy of its own) and its end state. From that:

- throttling on the first attempt of every call path, in one run: it must succeed and reach the same end state;
- a permanent 5xx on the first call that changes a target resource (best-effort tags and the evidence bucket aside:
  evidence copies, the timeline's write-through, claims, seals): the run fails within its budget naming the
  operation, the error code and the resource, the failure is in the timeline, and a re-run once the fault is gone
  (the drill's symptom armed again, ``support.between_runs``) reaches the same end state;
- a permanent 5xx on the first evidence upload, when the scenario makes one: the run fails naming PutObject and the
  evidence bucket, before the target change the evidence protects;
- latency spikes (a subset): a spike just under one attempt's timeout on the first mutating call and 0.5 s on the
  first call of every other path: it must succeed;
- Kubernetes scenarios: a 500 on the first attempt of every call path, a 409 Conflict on the first mutating call
  and an API server that stops answering a write (the write is never sent twice, checked in the proxy log).

Every case appends its figures to ``proof-results.jsonl`` beside the workers' basetemp; the session's
end prints the sum (conftest.py).  A case list is printed per test (``PROOF {...}`` lines with -s, and in the tally)."""

from __future__ import annotations

import time

import pytest

from tests.integration.proof_faults import support as ps

pytestmark = [pytest.mark.proof, pytest.mark.integration]

LATENCY = ["k8s_service_down"]
KUBERNETES = ["k8s_service_down"]

AWS_500_CODES = {"InternalFailure", "InternalError"}


def k8s_status(code: int, reason: str, message: str) -> dict:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    return {**body, "message": message, "reason": reason, "code": code}


def add_rule(box, kproxy, call: ps.Call, **fault) -> str:
    proxy = box.proxy if call.api == "aws" else kproxy.proxy
    return proxy.add_rule(call.rule(**fault))


def hits(box, kproxy) -> dict:
    return {rule["id"]: rule["hits"] for proxy in (box.proxy, kproxy.proxy) for rule in proxy.rules()}


def assert_end_state(base: ps.Baseline, box, what: str) -> int:
    found = ps.end_state(box)
    differences = ps.state_differences(base.end, found)
    assert not differences, f"{what}: the end state differs from the undisturbed run's: {differences}"
    return 0


def records_lost(run: ps.Run) -> int:
    """Verify the chain (raises on a torn, edited or missing record); 0 when it verifies."""
    records = ps.verify_timeline(str(run.timeline))
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    return 0


# -- (a) + (b): throttling on every call path, and a permanent 5xx on the first mutating call ---------------------
def failed_items(record: dict) -> list[dict]:
    """A failed task's results: the task's own, or each failed item's when the task loops (``results``)."""
    details = record["details"]
    items = details.get("results") if isinstance(details.get("results"), list) else None
    if items is None:
        return [record]
    return [
        {**record, "details": item, "msg": item.get("msg") or record.get("msg")}
        for item in items
        if isinstance(item, dict) and item.get("failed")
    ]


def failed_step(run: ps.Run, call: ps.Call) -> dict:
    failed = [
        item
        for r in run.records()
        if r.get("event") == "task_failed" and isinstance(r.get("details"), dict)
        for item in failed_items(r)
    ]
    if call.api == "aws":
        found = [r for r in failed if r["details"].get("aws_operation")]
    else:
        found = [r for r in failed if r["details"].get("k8s_verb")]
    assert found, f"no failed step naming the call in {run.timeline}: {[r.get('msg') for r in failed]}"
    return found[0]


def throttle(box, kproxy, calls) -> dict:
    """Throttle the first attempt of every call path; rule id -> call."""
    rules = {}
    for call in calls:
        if call.api == "aws":
            rules[add_rule(box, kproxy, call, fault="throttle", count=1)] = call
        else:
            body = k8s_status(429, "TooManyRequests", "Too many requests, please try again later.")
            rule = add_rule(
                box, kproxy, call, fault="canned", status=429, body=body, count=1, headers={"Retry-After": "1"}
            )
            rules[rule] = call
    return rules


def server_error(box, kproxy, call: ps.Call) -> str:
    if call.api == "aws":
        return add_rule(box, kproxy, call, fault="error", status=500)
    body = k8s_status(500, "InternalError", "Internal error occurred: injected by the fault proxy")
    return add_rule(box, kproxy, call, fault="canned", status=500, body=body)


def remove(box, kproxy, rule: str) -> None:
    for proxy in (box.proxy, kproxy.proxy):
        proxy.remove_rule(rule)


@pytest.mark.parametrize("name", ps.scenario_params(ps.FAULT_SCENARIOS))
def test_throttling_on_every_call_path_and_a_permanent_5xx_on_the_first_mutation(
    name, sandbox, kube_proxy, tmp_path_factory, tmp_path, request
):
    """Run 1: every call path of the undisturbed run throttled on its first attempt, and the first mutating call
    answering 500 for ever: the run gets through the throttled paths up to that call, then fails within its budget
    naming the operation, the error code and the resource, in the timeline too. Run 2 (same incident), the 500 gone
    and the throttling of the paths run 1 did not reach still armed: it must succeed and reach the undisturbed run's
    end state."""
    base = ps.baseline(sandbox, kube_proxy, name, tmp_path_factory.mktemp("base"))
    assert base.mutating, f"{name}: the undisturbed run made no mutating call"
    call = base.first_target_change
    variables = ps.prepare(sandbox, kube_proxy, name)
    throttled = throttle(sandbox, kube_proxy, base.calls)
    rule = server_error(sandbox, kube_proxy, call)
    incident = f"INC-PROOF-FAULTS-{name}"
    timeline = tmp_path / "timeline.jsonl"
    playbook = ps.SCENARIOS[name].PLAYBOOK

    budgets = ps.retry_budgets()  # every role's budget lowered: the permanent 500 costs 20 s, not 60 s
    failed = ps.run(sandbox, kube_proxy, playbook, {**variables, **budgets}, timeline, incident)
    assert failed.returncode != 0, f"{name} succeeded although {call.label} always answered 500"
    assert hits(sandbox, kube_proxy)[rule] >= 1
    step = failed_step(failed, call)
    details = step["details"]
    if call.api == "aws":
        operation, code, resource = details["aws_operation"], details["aws_error_code"], details.get("resource")
        assert code in AWS_500_CODES, details
        assert call.rest or operation == call.operation, (operation, call)  # a REST call's name is the step's
        assert resource, f"the failure does not name the resource: {details}"
        for text in (operation, code):
            assert text in failed.output, f"{text!r} not in the run's output"
        named = f"{operation} {code} on {resource}"
    else:
        assert (details["k8s_verb"], details["k8s_status"]) == (call.method, 500), details
        assert "500" in (step.get("msg") or ""), step.get("msg")
        named = step["msg"][:160]
    bound = base.seconds + ps.FAULT_RETRY_BUDGET + 60  # the budget, the failure's records, a loaded machine
    assert failed.seconds < bound, f"{name} took {failed.seconds:.0f}s to fail (bound {bound:.0f}s)"
    lost = records_lost(failed)

    ps.between_runs(sandbox, kube_proxy, rule)  # the 500 gone, the drill's symptom armed again
    again = ps.run(sandbox, kube_proxy, playbook, variables, timeline, incident)
    assert again.returncode == 0, f"{name}: the re-run after the fault cleared failed:\n{again.output[-4000:]}"
    lost += records_lost(again)
    seen = hits(sandbox, kube_proxy)
    survived = [c.label for r, c in throttled.items() if seen.get(r)]
    missed = [c.label for r, c in throttled.items() if not seen.get(r) and c.mutating]
    assert not missed, f"mutating call paths of the undisturbed run that were never made (or not matched): {missed}"
    differed = assert_end_state(base, sandbox, f"{name} re-run after a 5xx on {call.label}, under throttling")
    ps.tally(
        request,
        suite="faults/throttle",
        case=name,
        faults=len(survived),
        survived=len(survived),
        records_lost=0,
        end_state_differed=0,
        detail=f"{len(survived)} of {len(base.calls)} call paths throttled once and survived",
        calls=[c.label for c in base.calls],
    )
    ps.tally(
        request,
        suite="faults/5xx",
        case=f"{name} / {call.label}",
        faults=1,
        survived=1,
        records_lost=lost,
        end_state_differed=differed,
        detail=f"failed in {failed.seconds:.0f}s naming {named!r}; re-run reached the undisturbed end state",
    )


# -- (b') a permanent 5xx on the evidence upload -------------------------------------------------------------------
def accepted_after(run: ps.Run, base: ps.Baseline, since: str) -> list[str]:
    """Target changes the API accepted at or after ``since`` (an ISO time of the proxies' logs)."""
    later = ps.Run(run.returncode, run.output, run.seconds, run.timeline)
    later.aws_log = [e for e in run.aws_log if e["time"] >= since]
    later.kube_log = [e for e in run.kube_log if e["time"] >= since]
    return ps.target_changes_made(later, base)


@pytest.mark.parametrize("name", ps.scenario_params(ps.FAULT_SCENARIOS))
def test_a_permanent_5xx_on_the_evidence_upload_stops_the_run_before_the_change(
    name, sandbox, kube_proxy, tmp_path_factory, tmp_path, request
):
    """The first upload to the evidence bucket (not the incident record's own objects) answering 500 for ever: the
    run fails naming PutObject and the bucket, and changes no target resource from then on (none at all when the
    undisturbed run uploaded its evidence before its first target change)."""
    base = ps.baseline(sandbox, kube_proxy, name, tmp_path_factory.mktemp("base"))
    upload = base.evidence_upload
    if upload is None:
        pytest.skip(f"{name} uploads no evidence to {sorted(base.evidence_buckets)} in its undisturbed run")
    bucket = upload.bucket()
    before_any = base.calls.index(upload) < base.calls.index(base.first_target_change)
    variables = ps.prepare(sandbox, kube_proxy, name)
    rule = server_error(sandbox, kube_proxy, upload)
    incident = f"INC-PROOF-EVIDENCE-{name}"
    variables = {**variables, **ps.retry_budgets()}
    failed = ps.run(sandbox, kube_proxy, ps.SCENARIOS[name].PLAYBOOK, variables, tmp_path / "timeline.jsonl", incident)
    assert hits(sandbox, kube_proxy)[rule] >= 1, f"{upload.label}: the rule never matched the faulted run's upload"
    assert failed.returncode != 0, f"{name} succeeded although its evidence upload {upload.label} answered 500"
    first_500 = min(e["time"] for e in failed.aws_log if e.get("status") == 500 and e.get("fault"))
    changed = ps.target_changes_made(failed, base) if before_any else accepted_after(failed, base, first_500)
    assert not changed, f"{name} changed target resources although its evidence upload failed: {changed}"
    details = failed_step(failed, upload)["details"]
    operation, code, resource = details["aws_operation"], details["aws_error_code"], details.get("resource") or ""
    assert operation in ("PutObject", "CopyObject") and code in AWS_500_CODES, details
    assert bucket in resource or bucket in failed_step(failed, upload).get("msg", ""), details
    for text in (operation, code, bucket):
        assert text in failed.output, f"{text!r} not in the run's output"
    lost = records_lost(failed)
    ps.tally(
        request,
        suite="faults/evidence-5xx",
        case=f"{name} / {upload.label}",
        faults=1,
        survived=1,
        records_lost=lost,
        end_state_differed=0,
        detail=f"failed in {failed.seconds:.0f}s naming {operation} {code} on {resource}; no target change after it",
    )


# -- (c) latency spikes --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ps.scenario_params(LATENCY))
def test_latency_spikes_on_every_call_path_are_survived(name, sandbox, kube_proxy, tmp_path_factory, tmp_path, request):
    base = ps.baseline(sandbox, kube_proxy, name, tmp_path_factory.mktemp("base"))
    variables = ps.prepare(sandbox, kube_proxy, name)
    spike = base.mutating[0]
    add_rule(sandbox, kube_proxy, spike, fault="latency", seconds=8.0, count=1)  # under one attempt's 10 s
    for call in base.calls:
        if call != spike:
            add_rule(sandbox, kube_proxy, call, fault="latency", seconds=0.5, count=1)
    incident = f"INC-PROOF-LATENCY-{name}"
    done = ps.run(sandbox, kube_proxy, ps.SCENARIOS[name].PLAYBOOK, variables, tmp_path / "timeline.jsonl", incident)
    assert done.returncode == 0, f"{name} did not survive latency:\n{done.output[-4000:]}"
    delayed = sum(1 for count in hits(sandbox, kube_proxy).values() if count)
    lost = records_lost(done)
    differed = assert_end_state(base, sandbox, f"{name} under latency")
    ps.tally(
        request,
        suite="faults/latency",
        case=f"{name} / 8 s on {spike.label}",
        faults=delayed,
        survived=delayed,
        records_lost=lost,
        end_state_differed=differed,
        detail=f"{delayed} call paths delayed, run took {done.seconds:.0f}s (undisturbed {base.seconds:.0f}s)",
    )


# -- (d) Kubernetes: 500s, 409 conflicts, an API server that stops answering ---------------------------------------
def kube_calls(base: ps.Baseline) -> list:
    found = [call for call in base.calls if call.api == "kubernetes"]
    assert found, f"{base.name} made no Kubernetes call"
    return found


@pytest.mark.parametrize("name", ps.scenario_params(KUBERNETES, group="k8s"))
def test_kubernetes_500s_on_every_call_path_are_retried(name, sandbox, kube_proxy, tmp_path_factory, tmp_path, request):
    base = ps.baseline(sandbox, kube_proxy, name, tmp_path_factory.mktemp("base"))
    calls = kube_calls(base)
    variables = ps.prepare(sandbox, kube_proxy, name)
    body = k8s_status(500, "InternalError", "Internal error occurred: injected by the fault proxy")
    for call in calls:
        add_rule(sandbox, kube_proxy, call, fault="canned", status=500, body=body, count=1)
    incident = f"INC-PROOF-K500-{name}"
    done = ps.run(sandbox, kube_proxy, ps.SCENARIOS[name].PLAYBOOK, variables, tmp_path / "timeline.jsonl", incident)
    assert done.returncode == 0, f"{name} did not survive Kubernetes 500s:\n{done.output[-4000:]}"
    answered = sum(1 for rule in kube_proxy.proxy.rules() if rule["hits"])
    lost = records_lost(done)
    differed = assert_end_state(base, sandbox, f"{name} under Kubernetes 500s")
    ps.tally(
        request,
        suite="faults/k8s-500",
        case=name,
        faults=answered,
        survived=answered,
        records_lost=lost,
        end_state_differed=differed,
        detail=f"{answered} of {len(calls)} Kubernetes call paths answered 500 once, run succeeded",
    )


@pytest.mark.parametrize("name", ps.scenario_params(KUBERNETES, group="k8s"))
def test_a_kubernetes_409_conflict_on_the_first_write_is_named_and_a_rerun_recovers(
    name, sandbox, kube_proxy, tmp_path_factory, tmp_path, request
):
    base = ps.baseline(sandbox, kube_proxy, name, tmp_path_factory.mktemp("base"))
    write = next(call for call in kube_calls(base) if call.mutating)
    variables = ps.prepare(sandbox, kube_proxy, name)
    message = f"Operation cannot be fulfilled on {write.path.rsplit('/', 1)[-1]}: the object has been modified"
    body = k8s_status(409, "Conflict", message + "; please apply your changes to the latest version and try again")
    rule = add_rule(sandbox, kube_proxy, write, fault="canned", status=409, body=body, count=1)
    incident = f"INC-PROOF-K409-{name}"
    timeline = tmp_path / "timeline.jsonl"
    playbook = ps.SCENARIOS[name].PLAYBOOK
    first = ps.run(sandbox, kube_proxy, playbook, variables, timeline, incident)
    assert hits(sandbox, kube_proxy)[rule] == 1
    writes = [e for e in first.kube_log if e["method"] == write.method and e["path"] == write.path]
    if first.returncode != 0:  # a conflict is not retried blindly: the step fails naming it, a re-run recovers
        step = failed_step(first, write)
        assert (step["details"]["k8s_verb"], step["details"]["k8s_status"]) == (write.method, 409), step["details"]
        assert "409" in step["msg"] and "Conflict" in step["msg"], step["msg"]
        again = ps.run(sandbox, kube_proxy, playbook, variables, timeline, incident)
        outcome = f"failed naming the 409; {ps.rerun_outcome(name, again)}"
    else:
        outcome = f"read again and wrote ({len(writes)} writes of that path)"
    lost = records_lost(first)
    differed = assert_end_state(base, sandbox, f"{name} after a 409 on {write.label}")
    ps.tally(
        request,
        suite="faults/k8s-409",
        case=f"{name} / {write.label}",
        faults=1,
        survived=1,
        records_lost=lost,
        end_state_differed=differed,
        detail=outcome,
    )


@pytest.mark.parametrize("name", ps.scenario_params(KUBERNETES, group="k8s"))
def test_a_kubernetes_write_that_gets_no_answer_is_never_sent_again(
    name, sandbox, kube_proxy, tmp_path_factory, tmp_path, request
):
    """The API server takes the write and does not answer within the attempt's timeout (the proxy holds it 25 s,
    then hands it on: an ambiguous failure, the write may well have landed). The step must not resend it."""
    base = ps.baseline(sandbox, kube_proxy, name, tmp_path_factory.mktemp("base"))
    write = next(call for call in kube_calls(base) if call.mutating)
    variables = ps.prepare(sandbox, kube_proxy, name)
    rule = add_rule(sandbox, kube_proxy, write, fault="latency", seconds=25.0, count=1)
    variables = {**variables, "eks_rollout_undo_retry_budget": 20}  # attempts of 10 s: the 25 s hold is no answer
    incident = f"INC-PROOF-KHANG-{name}"
    timeline = tmp_path / "timeline.jsonl"
    playbook = ps.SCENARIOS[name].PLAYBOOK
    first = ps.run(sandbox, kube_proxy, playbook, variables, timeline, incident)
    assert hits(sandbox, kube_proxy)[rule] == 1
    deadline = time.monotonic() + 30  # the held write reaches the log when the proxy hands it on
    while not any(e["path"] == write.path and e["method"] == write.method for e in kube_proxy.proxy.log()):
        assert time.monotonic() < deadline, f"the held {write.label} never reached the API server"
        time.sleep(0.1)
    time.sleep(1)
    log = kube_proxy.proxy.log()
    sent = [e for e in log if e["method"] == write.method and e["path"] == write.path]
    assert len(sent) == 1, f"the write {write.label} was sent {len(sent)} times after an ambiguous failure"
    if first.returncode != 0:
        step = failed_step(first, write)
        assert step["details"]["k8s_status"] is None and "no answer" in step["msg"], step
    again = ps.run(sandbox, kube_proxy, playbook, variables, timeline, incident)
    outcome = ps.rerun_outcome(name, again)
    lost = records_lost(again)
    differed = assert_end_state(base, sandbox, f"{name} after an unanswered {write.label}")
    ps.tally(
        request,
        suite="faults/k8s-unanswered",
        case=f"{name} / {write.label}",
        faults=1,
        survived=1,
        records_lost=lost,
        end_state_differed=differed,
        detail=f"first run rc={first.returncode} in {first.seconds:.0f}s, write sent once; {outcome}",
    )
