"""``ansible-playbook`` killed mid-run (issue 20 item 2): every drilled scenario before, during and after its first
mutation (the points, the cases chosen by default and ``FIREBREAK_PROOF_KILLS``: kill_support.py).

The whole process group gets SIGKILL (one case, rotating, SIGTERM). Then the timeline must end on a complete line
and verify (chain, hashes, no missing record), the incident report of the killed timeline must name the run without a
recorded end, and one re-run of the same incident must complete (support.rerun_outcome: k8s_service_down may stop
finding the workload healthy, changing nothing) with the records written before the kill unchanged and the
undisturbed run's end state (support.baseline, once per scenario per worker)."""

from __future__ import annotations

import time

import pytest

from tests.integration.proof_faults import kill_support as ks
from tests.integration.proof_faults import support as ps

pytestmark = [pytest.mark.proof, pytest.mark.integration]

CASES = ks.chosen_cases()


@pytest.mark.parametrize(("name", "point", "sig"), ks.params(CASES))
def test_a_run_killed_mid_way_leaves_a_valid_timeline_a_report_naming_it_and_a_rerun_recovers(
    name, point, sig, sandbox, kube_proxy, tmp_path_factory, tmp_path, request
):
    base = ps.baseline(sandbox, kube_proxy, name, tmp_path_factory.mktemp("base"))
    began = time.monotonic()
    incident = f"INC-PROOF-KILL-{name}-{point}-{sig}"
    first = ks.first_mutation(base)
    read = ks.last_read_before(base, first) if point == "before" else None
    first, read = (ks.for_incident(call, name, incident) if call else None for call in (first, read))
    variables = ps.prepare(sandbox, kube_proxy, name)
    scripted = ks.drill_rules(sandbox.proxy, kube_proxy.proxy)
    proxy = ks.proxy_of(sandbox, kube_proxy, first)
    if read:
        held_proxy = ks.proxy_of(sandbox, kube_proxy, read)
        # every call on the read's path is held, not only the first: a step that reads and writes in threads (the
        # evidence copy: GET then PUT per object) would otherwise make another thread's write meanwhile
        hold = held_proxy.add_rule(read.rule(fault="latency", seconds=ks.HOLD, count=None))
        where = f"before {first.label} (held: {read.label})"
    elif point == "before":  # the first mutation is the run's first call: kill once the run has started recording
        held_proxy, hold = None, None
        where = f"before {first.label} (its first call; killed at its first record)"
    elif point == "during":
        held_proxy = proxy
        hold = proxy.add_rule(first.rule(fault="latency", seconds=ks.HOLD, count=1))
        where = f"during {first.label}"
    else:
        held_proxy, hold = None, None
        where = f"after {first.label}"

    timeline = tmp_path / "timeline.jsonl"
    playbook = ps.SCENARIOS[name].PLAYBOOK
    proc = ps.start(sandbox, kube_proxy, playbook, variables, timeline, incident, tmp_path / "killed.log")
    try:
        if hold:
            ks.wait_until(proc, lambda: ks.hit(held_proxy, hold), f"the held call ({where})")
        elif point == "before":
            ks.wait_until(proc, lambda: timeline.exists() and timeline.stat().st_size, "the run's first record")
        else:
            ks.wait_until(
                proc,
                lambda: any(ks.matches(e, first) and e["status"] < 400 for e in proxy.log()),
                f"the first mutating call {first.label} answered",
            )
        mutated_at_kill = any(ks.matches(e, first) for e in proxy.log())
        held_answered = ks.landed(held_proxy, hold) if hold else False
    finally:
        returncode = ks.kill(proc, sig)
    killed_seconds = time.monotonic() - began
    assert returncode != 0
    assert not held_answered, f"the held call was answered before the kill ({where})"
    if point == "before":
        assert not mutated_at_kill, f"{first.label} was already made: the kill came too late for 'before'"
    if hold:  # the held call reaches the API after its client is gone: let it land before anything reads the state
        deadline = time.monotonic() + ks.HOLD + 5
        while not ks.landed(held_proxy, hold) and time.monotonic() < deadline:
            time.sleep(0.05)

    records = ks.verified_lines(timeline)
    killed_records = len(records)
    markdown = ks.report_of(timeline, records)
    named = ks.unfinished_line(markdown, playbook)
    assert named, [line for line in markdown.splitlines() if "run(s)" in line]

    if hold:
        held_proxy.remove_rule(hold)
    rearmed = ks.rearm(scripted) if point == "before" else 0  # nothing changed: the symptom is still there
    again = ps.run(sandbox, kube_proxy, playbook, variables, timeline, incident)
    outcome = ps.rerun_outcome(name, again)
    after = ks.verified_lines(timeline)
    assert after[:killed_records] == records, "records written before the kill changed"
    differences = ps.state_differences(base.end, ps.end_state(sandbox))
    assert not differences, f"the re-run after the kill differs from the undisturbed run: {differences}"
    ps.tally(
        request,
        suite="kills",
        case=f"{name} / {sig} {where}",
        scenario=name,
        point=point,
        faults=1,
        survived=1,
        records_lost=0,
        end_state_differed=0,
        seconds=round(time.monotonic() - began, 1),
        baseline_seconds=round(base.seconds, 1),
        detail=(
            f"killed after {killed_seconds:.0f}s with {killed_records} records, all verified; report: {named}; "
            f"{outcome} in {again.seconds:.0f}s (undisturbed run {base.seconds:.0f}s)"
            + (f"; {rearmed} scripted symptom answer(s) the killed run used put back" if rearmed else "")
        ),
    )


def test_the_default_kills_rotate_through_every_point_of_every_scenario_in_three_days():
    names = sorted(ps.SCENARIOS)
    days = [ks.chosen_cases("", turn=turn) for turn in range(len(names))]
    assert all(len(day) == len(names) == len({name for name, _, _ in day}) for day in days)
    assert all([sig for _, _, sig in day].count("SIGTERM") == 1 for day in days)
    assert {name for day in days for name, _, sig in day if sig == "SIGTERM"} == set(names)
    every = ks.chosen_cases("all")
    assert len(every) == 3 * len(names) + 1 and every[-1] == ("service_down", "during", "SIGTERM")
    assert {(n, p) for day in days[:3] for n, p, _ in day} == {(n, p) for n, p, _ in every}
    assert ks.chosen_cases("data_loss:after, auth_attack") == [
        ("data_loss", "after", "SIGKILL"),
        *[("auth_attack", point, "SIGKILL") for point in ks.POINTS],
    ]
    with pytest.raises(ValueError, match="'data_los:after' is not a scenario"):
        ks.chosen_cases("data_los:after")
    with pytest.raises(ValueError, match="'data_loss:mid' is not a scenario"):
        ks.chosen_cases("data_loss:mid")
