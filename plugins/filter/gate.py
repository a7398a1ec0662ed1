# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the incident_gate role: the plan a gate shows and pins (``gate_plan``), the policy's mode for a
step kind in an environment (``gate_mode``), and whether an approval matches the plan (``gate_check``).

Controller-side and pure (no module process): a gate costs no more than the prompt and its timeline note.
"""

from __future__ import annotations

import hashlib
import json
import re

from ansible.errors import AnsibleFilterError

MODES = ("approval_required", "contain_confirmed", "contain_suspected")
DEFAULT_MODE = "approval_required"
MIN_PIN = 8
# what a containment entry says it will change; id and at differ on every run, incident_id is not the plan
ENTRY_KEYS_IGNORED = frozenset(("id", "at", "incident_id", "seq", "host"))
YES = frozenset(("yes", "true", "approve", "approved"))


def _results(plan):
    """The step results inside one registered plan (a loop's ``results`` flattened)."""
    if not isinstance(plan, dict):
        return []
    if isinstance(plan.get("results"), list):
        return [r for r in plan["results"] if isinstance(r, dict) and not r.get("skipped")]
    return [] if plan.get("skipped") else [plan]


def _entries(result):
    entries = result.get("containment") or []
    if isinstance(entries, dict):
        entries = [entries]
    return [
        {k: v for k, v in entry.items() if k not in ENTRY_KEYS_IGNORED} for entry in entries if isinstance(entry, dict)
    ]


def _resource(result, entries):
    """Names of what the step acts on: the containment resources, else what the module names."""
    names = [str(e["resource"]) for e in entries if e.get("resource")]
    if names:
        return names
    for key in ("resource", "arn", "ip_set", "service", "cluster", "name"):
        value = result.get(key)
        if isinstance(value, dict):
            value = value.get("arn") or value.get("name") or value.get("id")
        if isinstance(value, str) and value:
            return [value]
    return []


def gate_plan(plans, accounts=None):
    """Summarise per-host check-mode results into the plan a gate shows, with its digest.

    ``plans`` maps a target (inventory host) to the step's registered check-mode result (a loop result too);
    ``accounts`` maps a target to its account (or cluster) name, where known. The digest is the sha256 of the
    canonical JSON (sorted keys, no spaces) of, per target in host order, each result's ``changed``, ``before``,
    ``after``, ``diff`` and its containment entries without their run-specific ``id``/``at``: the same plan
    gives the same digest on every run, a plan whose state changed gives another.
    """
    if not isinstance(plans, dict):
        raise AnsibleFilterError(f"gate_plan expects a mapping of target to plan, got {type(plans).__name__}")
    accounts = accounts or {}
    canonical, targets, lines = [], [], []
    for host in sorted(plans):
        results = _results(plans[host])
        unread = [r for r in results if "changed" not in r and "failed" not in r]
        if unread:
            # fail closed: a plan the gate cannot read must not pass as "nothing to change"
            raise AnsibleFilterError(
                f"gate plan for {host}: not a step's registered result (no 'changed'; keys {sorted(unread[0])[:8]}); "
                "pass the registered check-mode result, or {'results': [result, ...]} for several steps"
            )
        changed = [r for r in results if r.get("changed")]
        resources = []
        for result in changed:
            for name in _resource(result, _entries(result)) or [host]:
                if name not in resources:
                    resources.append(name)
        account = str(accounts.get(host) or host)
        canonical.append(
            {
                "target": host,
                "results": [
                    {
                        "changed": bool(r.get("changed")),
                        "before": r.get("before"),
                        "after": r.get("after"),
                        "diff": r.get("diff"),
                        "containment": _entries(r),
                    }
                    for r in results
                ],
            }
        )
        targets.append(
            {
                "target": host,
                "account": account,
                "changes": len(changed),
                "resources": resources,
                "msgs": [str(r.get("msg")) for r in changed if r.get("msg")],
            }
        )
        for result in changed:
            lines.append(f"{account} ({host}): {result.get('msg') or 'changes'}")
    body = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    changes = sum(t["changes"] for t in targets)
    resource_count = sum(len(t["resources"]) for t in targets)
    acted = sorted({t["account"] for t in targets if t["changes"]})
    summary = (
        f"{changes} change(s) on {resource_count} resource(s) in {len(acted)} account(s)"
        + (f": {', '.join(acted)}" if acted else "")
        + f"; plan sha256:{digest}"
    )
    return {
        "digest": digest,
        "short": digest[:12],
        "changed": changes > 0,
        "changes": changes,
        "resources": resource_count,
        "accounts": acted,
        "targets": targets,
        "lines": lines,
        "summary": summary,
    }


def gate_mode(policy, environment, step_kind):
    """The policy's mode for ``step_kind`` in ``environment``: the environment's entry for the kind, else its
    ``default``, else ``approval_required`` (an unknown environment or kind is gated)."""
    table = (policy or {}).get(environment)
    if not isinstance(table, dict):
        table = {}
    mode = table.get(step_kind, table.get("default", DEFAULT_MODE))
    if mode not in MODES:
        raise AnsibleFilterError(
            f"gate policy for {environment}/{step_kind} is {mode!r}; the modes are {', '.join(MODES)}"
        )
    return mode


def gate_check(approval, digest, allow_unpinned=False):
    """What an approval given ahead of the prompt says about the plan ``digest``.

    Returns ``{"status": ...}``: ``none`` (no approval), ``approved`` (a hex prefix of at least 8 of the digest,
    or a yes when ``allow_unpinned``), ``stale`` (a hex pin of another plan: the plan changed since it was
    approved), ``unpinned`` (a yes where a pin is required) or ``invalid`` (anything else, a too-short pin).
    """
    if approval is None or approval is False or (isinstance(approval, str) and not approval.strip()):
        return {"status": "none"}
    if approval is True or (isinstance(approval, str) and approval.strip().lower() in YES):
        return {"status": "approved" if allow_unpinned else "unpinned", "pin": None}
    pin = str(approval).strip().lower().removeprefix("sha256:")
    if not re.fullmatch(r"[0-9a-f]+", pin) or len(pin) < MIN_PIN:
        return {"status": "invalid", "pin": pin}
    if digest.startswith(pin):
        return {"status": "approved", "pin": pin}
    return {"status": "stale", "pin": pin}


class FilterModule:
    def filters(self):
        return {"gate_plan": gate_plan, "gate_mode": gate_mode, "gate_check": gate_check}
