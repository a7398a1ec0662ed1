"""Load (issue 20 item 3): twenty scenario runs at once against one sandbox, and eight responders on one incident.

1. Twenty service_down incidents at once, each on its own ECS service (the drill's bad deploy injected on twenty
   services like the seeded one): every service ends on its good revision with healthy targets (read back from
   moto), every timeline verifies and holds exactly the records of an undisturbed run, no incident names another's
   service, one UpdateService per service.
2. Eight responders working one incident at once: two block addresses in one WAF IP set (one address shared with
   another incident), one quarantines an IAM user, two write notes, one releases the other incident's block, two run
   the service_down rollback on the same service: the IP set holds exactly the addresses still claimed, one
   UpdateService, every note, every timeline verifies, every claim released or held.

The figures (runs, concurrency, records written/expected, lost, differing end states, wall time) are printed and
written to ``load-figures.json`` under pytest's basetemp; docs/proof.md quotes them.
"""

from __future__ import annotations

import json
import time

import pytest

from sandbox.drills import service_down
from sandbox.fault_proxy import LOG_SIZE
from tests.integration.load_helpers import (
    IAM_ROLE,
    NOTES,
    WAF_ROLE,
    Run,
    add_service,
    break_service,
    claim_accounts,
    ecs_calls,
    held,
    ip_set_addresses,
    ledger_objects,
    service_state,
    services_named,
    signature,
    timeline_module,
    wait_all,
)

pytestmark = [pytest.mark.integration, pytest.mark.proof]

INCIDENTS = 20
SCENARIO = "playbooks/service_down.yml"


def figures_file(tmp_path_factory, name: str, figures: dict) -> None:
    print(f"\nLOAD {name}: " + json.dumps(figures, sort_keys=True))
    path = tmp_path_factory.getbasetemp() / "load-figures.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    known[name] = figures
    path.write_text(json.dumps(known, indent=2, sort_keys=True))


def test_twenty_incidents_at_once(aws, tmp_path, tmp_path_factory):
    tl = timeline_module()
    incidents_dir, logs = tmp_path / "incidents", tmp_path / "logs"
    logs.mkdir()
    names = [f"load-{i:02d}" for i in range(INCIDENTS + 1)]  # the last one: the undisturbed reference run
    services = {name: add_service(aws, name, i) for i, name in enumerate(names)}
    extra = {name: break_service(aws, svc) for name, svc in services.items()}
    reference_name = names.pop()
    for svc in services.values():
        assert service_state(aws, svc)["revision"] == svc["bad"]

    # the undisturbed run: what each of the twenty must write and reach
    ref = Run(aws, "reference", SCENARIO, "INC-LOAD-REF", incidents_dir / "INC-LOAD-REF" / "timeline.jsonl",
              extra[reference_name], logs)  # fmt: skip
    wait_all([ref], 300)
    assert ref.proc.returncode == 0, ref.output[-4000:]
    expected_shape = signature(tl.verify_timeline(str(ref.timeline)))
    expected_state = service_state(aws, services[reference_name])
    assert expected_state["revision"] == services[reference_name]["good"], expected_state
    aws.proxy.clear_log()

    started = time.monotonic()
    runs = {}
    for name in names:
        incident = f"INC-LOAD-{name[-2:]}"
        runs[name] = Run(aws, name, SCENARIO, incident, incidents_dir / incident / "timeline.jsonl", extra[name], logs)
    peak = wait_all(list(runs.values()), 420)
    wall = time.monotonic() - started
    log = aws.proxy.log()

    failed = {name: run.output[-3000:] for name, run in runs.items() if run.proc.returncode != 0}
    assert not failed, f"{len(failed)} runs failed: {json.dumps(failed, indent=1)[:8000]}"

    # every service at the reference's end state, read back from moto (its own family's names in it)
    differing = {}
    for name in runs:
        state = service_state(aws, services[name])
        want = json.loads(json.dumps(expected_state).replace(reference_name, name))
        want["tags"] = {k: v.replace(reference_name, name) for k, v in expected_state["tags"].items()}
        got = dict(state, tags={k: v for k, v in state["tags"].items() if k != "firebreak:rolled-back-at"})
        want["tags"].pop("firebreak:rolled-back-at", None)
        if got != want:
            differing[name] = {"got": got, "want": want}
    assert not differing, differing

    # every timeline verifies, holds what the undisturbed run wrote, and only its own incident and service
    written = expected = 0
    lost, crossed = {}, {}
    for name, run in runs.items():
        recs = tl.verify_timeline(str(run.timeline))  # raises on a torn line or a broken chain
        written += len(recs)
        expected += len(expected_shape)
        if signature(recs) != expected_shape:
            lost[name] = {"records": len(recs), "expected": len(expected_shape)}
        text = run.timeline.read_text()
        others = services_named(text) - {name}
        ids = {r["incident_id"] for r in recs}
        if others or ids != {run.incident}:
            crossed[name] = {"services": sorted(others), "incidents": sorted(ids)}
        report = json.loads((run.timeline.parent / "report.json").read_text())
        assert report.get("incident_id", run.incident) == run.incident
        assert services_named((run.timeline.parent / "report.md").read_text()) <= {name}
    assert not lost, lost
    assert not crossed, crossed

    # one rollback per service, each on its own service; no claim left behind (a rollback claims nothing)
    assert len(log) < LOG_SIZE, "the fault proxy's log overflowed: the counts below would be short"
    updates = ecs_calls(log, "UpdateService")
    assert sorted(updates) == sorted(names), updates
    bucket = aws.manifest["aws"]["s3"]["evidence_bucket"]
    claims = aws.client("s3").list_objects_v2(Bucket=bucket, Prefix="firebreak/claims/").get("Contents", [])
    assert claims == []

    figures_file(
        tmp_path_factory,
        "twenty_incidents",
        {
            "runs": len(runs),
            "concurrent": peak,
            "records_written": written,
            "records_expected": expected,
            "records_lost": expected - written,
            "end_states_differing": len(differing),
            "update_service_calls": len(updates),
            "aws_calls": len(log),
            "wall_seconds": round(wall, 1),
            "reference_run_seconds": round(ref.wall, 1),
            "slowest_run_seconds": round(max(run.wall for run in runs.values()), 1),
        },
    )


# -- eight responders on one incident ------------------------------------------------------------------------------

SEEDED = ["192.0.2.10/32"]
SHARED = "198.18.9.9"  # claimed by both incidents
PRIOR = ["198.18.0.1", "198.18.0.2", SHARED]
FIRST = [f"198.18.1.{i}" for i in range(1, 5)] + [SHARED]
SECOND = [f"198.18.2.{i}" for i in range(1, 5)] + [SHARED, "198.18.0.2"]
LOOPED_NOTES = 20
RETRIES = {"role_lock_retries": 30}
RELEASE = "playbooks/release_containment.yml"
APPROVED = {"firebreak_gate_approvals": {"release-containment": "yes"}, "incident_gate_allow_unpinned": True}


def cidrs(addresses) -> set[str]:
    return {a if "/" in a else f"{a}/32" for a in addresses}


def test_eight_responders_on_one_incident(aws, tmp_path, tmp_path_factory):
    """Incident INC-PRIOR has blocked three addresses; then, at once: two responders of INC-SHARED block addresses
    (one shared with INC-PRIOR, one INC-PRIOR's own), one quarantines a user, two write notes, two run the
    service_down rollback on the same service, and INC-PRIOR's responder releases its block."""
    tl = timeline_module()
    logs = tmp_path / "logs"
    logs.mkdir()
    shared_tl = tmp_path / "incidents" / "INC-SHARED" / "timeline.jsonl"
    prior_tl = tmp_path / "incidents" / "INC-PRIOR" / "timeline.jsonl"
    arn = aws.manifest["aws"]["waf"]["ip_set"]["arn"]

    prior = Run(aws, "prior", WAF_ROLE, "INC-PRIOR", prior_tl, {"role_addresses": PRIOR}, logs)
    wait_all([prior], 300)
    assert prior.proc.returncode == 0, prior.output[-3000:]
    assert set(ip_set_addresses(aws)) == set(SEEDED) | cidrs(PRIOR)
    context = service_down.inject(aws)
    rollback = {k: v for k, v in context.items() if not k.startswith("_")}
    aws.proxy.clear_log()

    started = time.monotonic()
    responders = [
        Run(aws, "block-1", WAF_ROLE, "INC-SHARED", shared_tl, {"role_addresses": FIRST, **RETRIES}, logs),
        Run(aws, "block-2", WAF_ROLE, "INC-SHARED", shared_tl, {"role_addresses": SECOND, **RETRIES}, logs),
        Run(aws, "quarantine", IAM_ROLE, "INC-SHARED", shared_tl, {}, logs),
        Run(aws, "note", "playbooks/incident_note.yml", "INC-SHARED", shared_tl, {"note": "load note by hand"}, logs),
        Run(aws, "notes", NOTES, "INC-SHARED", shared_tl, {"load_responder": "r6", "load_notes": LOOPED_NOTES}, logs),
        Run(aws, "rollback-1", SCENARIO, "INC-SHARED", shared_tl, rollback, logs),
        Run(aws, "rollback-2", SCENARIO, "INC-SHARED", shared_tl, rollback, logs),
        Run(aws, "release-prior", RELEASE, "INC-PRIOR", prior_tl, APPROVED, logs),
    ]  # fmt: skip
    peak = wait_all(responders, 420)
    wall = time.monotonic() - started
    failed = {run.name: run.output[-3000:] for run in responders if run.proc.returncode != 0}
    assert not failed, json.dumps(failed, indent=1)[:8000]
    log = aws.proxy.log()
    assert len(log) < LOG_SIZE

    # every timeline verifies (no torn line, the chain whole); every note is there
    shared, prior_recs = tl.verify_timeline(str(shared_tl)), tl.verify_timeline(str(prior_tl))
    assert {r["incident_id"] for r in shared} == {"INC-SHARED"}
    assert {r["incident_id"] for r in prior_recs} == {"INC-PRIOR"}
    notes = [r["msg"] for r in shared if r["event"] == "note" and (r.get("msg") or "").startswith("load note")]
    wanted_notes = ["load note by hand"] + [f"load note r6-{i}" for i in range(LOOPED_NOTES)]
    assert sorted(notes) == sorted(wanted_notes), notes
    runs_started = [r for r in shared if r["event"] == "playbook_start"]
    runs_ended = [r for r in shared if r["event"] in ("playbook_end", "playbook_stats")]
    assert len(runs_started) == 7, [r.get("playbook") for r in runs_started]

    # one rollback: one UpdateService reached the sandbox, the service runs its good revision
    updates = ecs_calls(log, "UpdateService")
    assert updates == [context["_drill"]["service"]], updates
    service_down.verify(aws, context)

    # the IP set holds exactly the seeded addresses and those still claimed (by anyone)
    claimed_now = {o["item"] for o in ledger_objects(aws) if o["kind"] == "claim" and o["resource"] == arn}
    stored = set(ip_set_addresses(aws))
    assert stored == set(SEEDED) | claimed_now, {"missing": claimed_now - stored, "extra": stored - claimed_now}
    assert cidrs(FIRST) | cidrs(SECOND) <= stored, "INC-SHARED's addresses are all blocked"

    # every claim accounted for: claimed = released + held, per incident
    accounts = {}
    for incident, recs in (("INC-SHARED", shared), ("INC-PRIOR", prior_recs)):
        claimed, released = claim_accounts(recs)
        holding = held(aws, incident)
        assert claimed, incident
        assert claimed == released | holding, {"unaccounted": claimed - released - holding, "incident": incident}
        assert not released & holding, released & holding
        assert holding <= claimed, holding - claimed
        accounts[incident] = {"claimed": len(claimed), "released": len(released), "held": len(holding)}
    assert accounts["INC-PRIOR"]["held"] == 0 and accounts["INC-SHARED"]["released"] == 0, accounts

    figures_file(
        tmp_path_factory,
        "eight_responders",
        {
            "responders": len(responders),
            "concurrent": peak,
            "notes_written": len(notes),
            "notes_expected": len(wanted_notes),
            "records_lost": len(wanted_notes) - len(notes),
            "timeline_records": len(shared),
            "update_service_calls": len(updates),
            "waf_addresses_lost": len((cidrs(FIRST) | cidrs(SECOND)) - stored),
            "claims": accounts,
            "runs_ended": len(runs_ended),
            "wall_seconds": round(wall, 1),
        },
    )


def test_a_release_never_removes_an_address_claimed_while_it_writes(aws, tmp_path):
    """The lost WAF address the load found, made to happen every time: INC-PRIOR's release has read the IP set and
    the claims, its UpdateIPSet is held 30 s by the fault proxy, and meanwhile INC-NEXT blocks the same address
    (already in the set: nothing to add, a claim only). The release must not remove it."""
    logs = tmp_path / "logs"
    logs.mkdir()
    arn = aws.manifest["aws"]["waf"]["ip_set"]["arn"]
    prior_tl = tmp_path / "incidents" / "INC-PRIOR" / "timeline.jsonl"
    prior = Run(aws, "prior", WAF_ROLE, "INC-PRIOR", prior_tl, {"role_addresses": [SHARED]}, logs)
    wait_all([prior], 300)
    assert prior.proc.returncode == 0, prior.output[-3000:]

    rule = aws.proxy.add_rule(
        {"service": "wafv2", "action": "UpdateIPSet", "fault": "latency", "seconds": 30, "count": 1}
    )
    # a budget that waits out the held call (one attempt may wait half of it)
    patient = {"waf_block_retry_budget": 120}
    release = Run(aws, "release", WAF_ROLE, "INC-PRIOR", prior_tl, {"role_state": "released", **patient}, logs)
    deadline = time.monotonic() + 240
    while not [r for r in aws.proxy.rules() if r["id"] == rule and r["hits"]]:
        assert release.proc.poll() is None, release.output[-3000:]
        assert time.monotonic() < deadline, "the release never wrote the IP set"
        time.sleep(0.2)
    nxt = Run(aws, "next", WAF_ROLE, "INC-NEXT", tmp_path / "incidents" / "INC-NEXT" / "timeline.jsonl",
              {"role_addresses": [SHARED], **patient}, logs)  # fmt: skip
    wait_all([nxt, release], 300)
    assert nxt.proc.returncode == 0, nxt.output[-3000:]
    assert release.proc.returncode == 0, release.output[-3000:]

    assert held(aws, "INC-NEXT") == {(arn, f"{SHARED}/32")} and held(aws, "INC-PRIOR") == set()
    assert f"{SHARED}/32" in ip_set_addresses(aws), "INC-NEXT claims it: the release removed it all the same"
