"""``events.k8s.io/v1`` Events: the same objects as ``v1`` Events, converted on the way in and out.

The apiserver keeps one Event storage and serves it in both versions (``pkg/apis/events/v1``
conversion): ``involvedObject`` is ``regarding``, ``message`` is ``note``, ``reportingComponent`` is
``reportingController``, and ``source``/``firstTimestamp``/``lastTimestamp``/``count`` become the
``deprecated*`` fields.
"""

from __future__ import annotations

import copy

_FIELDS = (
    # (events.k8s.io/v1, v1)
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("reportingInstance", "reportingInstance"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reason", "reason"),
    ("type", "type"),
    ("action", "action"),
    ("related", "related"),
    ("series", "series"),
    ("eventTime", "eventTime"),
)


def to_v1beta(core: dict) -> dict:
    """A ``v1`` Event as ``events.k8s.io/v1``."""
    out = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": copy.deepcopy(core.get("metadata") or {})}
    for new, old in _FIELDS:
        if old in core:
            out[new] = copy.deepcopy(core[old])
    out.setdefault("eventTime", None)
    return out


def to_core(event: dict) -> dict:
    """An ``events.k8s.io/v1`` Event as ``v1``."""
    out = {"apiVersion": "v1", "kind": "Event", "metadata": copy.deepcopy(event.get("metadata") or {})}
    for new, old in _FIELDS:
        if new in event:
            out[old] = copy.deepcopy(event[new])
    return out


def field_selector(selector: str) -> str:
    """``regarding.name=x`` -> ``involvedObject.name=x`` (the field label conversion of events.k8s.io)."""
    if not selector:
        return selector
    parts = []
    for term in selector.split(","):
        for new, old in (("regarding.", "involvedObject."), ("reportingController", "reportingComponent")):
            if term.startswith(new):
                term = old + term[len(new) :]
        parts.append(term)
    return ",".join(parts)
