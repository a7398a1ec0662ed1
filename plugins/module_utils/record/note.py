# Copyright: firebreak.runbooks maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The note of ``firebreak.runbooks.incident_note``: its argument spec and the note it returns. Shared by the
module (documentation, and a run where the action plugin is not used) and the action plugin (the controller-side
run, which starts no module process)."""

from __future__ import annotations

KINDS = ("decision", "communication", "status", "observation")
SEVERITIES = ("P1", "P2", "P3", "P4")
# a note is a paragraph of the incident channel and the report, not a log dump (evidence_capture keeps those);
# Slack cuts a message's text at 40,000 characters and a status page far sooner
MSG_MAX_CHARS = 8000

ARGUMENT_SPEC = {
    "msg": {"type": "str", "required": True},
    "kind": {"type": "str", "choices": list(KINDS), "default": "observation"},
    "severity": {"type": "str", "choices": list(SEVERITIES)},
    "audience": {"type": "str"},
}


def build_note(params):
    """``{msg, kind[, severity][, audience]}``; ``ValueError`` for an empty ``msg`` or one over ``MSG_MAX_CHARS``."""
    msg = str(params.get("msg") or "")
    if not msg.strip():
        raise ValueError("msg must not be empty")
    if len(msg) > MSG_MAX_CHARS:
        raise ValueError(
            f"msg is {len(msg)} characters (at most {MSG_MAX_CHARS}): {msg[:40]!r}...; keep the note to what was "
            "decided, said or seen, and put logs and dumps in the evidence bucket (evidence_capture)"
        )
    note = {"msg": params["msg"], "kind": params["kind"]}
    for key in ("severity", "audience"):
        if params.get(key) is not None:
            note[key] = params[key]
    return note
