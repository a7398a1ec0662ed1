"""Label and field selectors as the apiserver parses them from ``labelSelector=`` and ``fieldSelector=``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict], bool]

_REQUIREMENT = re.compile(
    r"""^\s*(?:
        (?P<neg>!)\s*(?P<nkey>[^\s=!(),]+) |
        (?P<skey>[^\s=!(),]+)\s*(?P<sop>==|=|!=)\s*(?P<sval>[^\s=!(),]*) |
        (?P<setkey>[^\s=!(),]+)\s+(?P<setop>in|notin)\s*\((?P<values>[^()]*)\) |
        (?P<key>[^\s=!(),]+)
    )\s*$""",
    re.VERBOSE,
)
_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


class SelectorError(ValueError):
    """An unparsable selector (the apiserver answers 400 BadRequest)."""


def _split(selector: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    if depth != 0:
        raise SelectorError(f"unable to parse requirement: unbalanced parentheses in {selector!r}")
    return [part for part in parts if part.strip()]


def parse_label_selector(selector: str | None) -> Predicate:
    """Compile ``a=b,c!=d,e in (f,g),h notin (i),j,!k`` into a predicate over a labels dict."""
    if not selector:
        return lambda labels: True
    checks: list[Predicate] = []
    for part in _split(selector):
        match = _REQUIREMENT.match(part)
        if not match:
            raise SelectorError(f"unable to parse requirement: {part!r}")
        key = match["nkey"] or match["skey"] or match["setkey"] or match["key"]
        if not _KEY.match(key):
            raise SelectorError(f"unable to parse requirement: invalid label key {key!r}")
        if match["neg"]:
            checks.append(lambda labels, k=key: k not in labels)
        elif match["sop"]:
            value = match["sval"]
            if match["sop"] == "!=":
                checks.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                checks.append(lambda labels, k=key, v=value: k in labels and labels[k] == v)
        elif match["setop"]:
            values = {v.strip() for v in match["values"].split(",") if v.strip()}
            if match["setop"] == "in":
                checks.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                checks.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        else:
            checks.append(lambda labels, k=key: k in labels)
    return lambda labels: all(check(labels or {}) for check in checks)


def selector_from_label_selector(label_selector: dict | None) -> Predicate:
    """Compile a ``metav1.LabelSelector`` (``matchLabels`` and ``matchExpressions``) into a predicate."""
    if not label_selector:
        return lambda labels: True
    checks: list[Predicate] = []
    for key, value in (label_selector.get("matchLabels") or {}).items():
        checks.append(lambda labels, k=key, v=value: labels.get(k) == v)
    for expr in label_selector.get("matchExpressions") or []:
        key, operator, values = expr.get("key"), expr.get("operator"), set(expr.get("values") or [])
        if operator == "In":
            checks.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
        elif operator == "NotIn":
            checks.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        elif operator == "Exists":
            checks.append(lambda labels, k=key: k in labels)
        elif operator == "DoesNotExist":
            checks.append(lambda labels, k=key: k not in labels)
        else:
            raise SelectorError(f"{operator!r} is not a valid label selector operator")
    return lambda labels: all(check(labels or {}) for check in checks)


def label_selector_string(label_selector: dict | None) -> str:
    """Render a ``metav1.LabelSelector`` the way ``metav1.FormatLabelSelector`` does (Scale ``status.selector``)."""
    parts = [f"{k}={v}" for k, v in sorted((label_selector or {}).get("matchLabels", {}).items())]
    for expr in (label_selector or {}).get("matchExpressions") or []:
        key, operator, values = expr["key"], expr["operator"], ",".join(sorted(expr.get("values") or []))
        parts.append(
            {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key}.get(operator, f"!{key}")
        )
    return ",".join(parts)


def _field(obj: dict, dotted: str) -> str:
    node: Any = obj
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        return ""
    if isinstance(node, bool):
        return str(node).lower()
    return str(node)


def parse_field_selector(selector: str | None, supported: frozenset[str]) -> Callable[[dict], bool]:
    """Compile ``metadata.name=x,status.phase!=Running`` into a predicate over whole objects.

    Only the field labels the apiserver supports for the resource are accepted (``supported``); any other
    is a 400 ``field label not supported``, as on a real apiserver.
    """
    if not selector:
        return lambda obj: True
    checks: list[Callable[[dict], bool]] = []
    for part in _split(selector):
        match = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not match:
            raise SelectorError(f"invalid selector: {part!r}; can't understand {part!r}")
        field, operator, value = match.groups()
        if field not in supported:
            raise SelectorError(f"field label not supported: {field}")
        if operator == "!=":
            checks.append(lambda obj, f=field, v=value: _field(obj, f) != v)
        else:
            checks.append(lambda obj, f=field, v=value: _field(obj, f) == v)
    return lambda obj: all(check(obj) for check in checks)
