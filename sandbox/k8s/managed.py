"""Field ownership for server-side apply: ``metadata.managedFields`` as sets of field paths.

A path is a tuple of elements ``("f", name)`` (a map key), ``("k", json)`` (a list item by its merge key)
and ``(".", "")`` (the list item itself), as in ``fieldsV1`` (structured-merge-diff). Maps are granular,
lists with a merge key are associative, other lists are atomic (one leaf).
"""

from __future__ import annotations

import json

from . import patch as patches

Path = tuple[tuple[str, str], ...]
ITEM = (".", "")


def _key(item: dict, merge_key: str) -> str:
    return json.dumps({merge_key: item[merge_key]}, separators=(",", ":"))


def leaves(obj: dict, status: bool = False) -> set[Path]:
    """The field paths an object (or an applied configuration) sets; ``status`` alone when ``status``."""
    out: set[Path] = set()
    for key, value in (obj or {}).items():
        if key in ("apiVersion", "kind") or (key == "status") != status:
            continue
        if key == "metadata":
            for meta_key in ("labels", "annotations"):
                for name in (value or {}).get(meta_key) or {}:
                    out.add((("f", "metadata"), ("f", meta_key), ("f", name)))
            continue
        out |= _walk(value, (key,), (("f", key),))
    return out


def _walk(value, names: tuple[str, ...], prefix: Path) -> set[Path]:
    if isinstance(value, dict) and value:
        out: set[Path] = set()
        for key, sub in value.items():
            if key.startswith("$"):  # patch directives are not fields
                continue
            out |= _walk(sub, (*names, key), (*prefix, ("f", key)))
        return out
    if isinstance(value, list) and value:
        merge_key = patches.merge_key(names)
        if merge_key and all(isinstance(item, dict) and merge_key in item for item in value):
            out = set()
            for item in value:
                item_path = (*prefix, ("k", _key(item, merge_key)))
                out.add((*item_path, ITEM))
                out |= _walk(item, names, item_path)
            return out
    return {prefix}


def value_at(obj, path: Path) -> tuple[bool, object]:
    """(found, value) of ``path`` in ``obj``."""
    current = obj
    for kind, name in path:
        if kind == "f":
            if not isinstance(current, dict) or name not in current:
                return False, None
            current = current[name]
        elif kind == "k":
            key = json.loads(name)
            if not isinstance(current, list):
                return False, None
            current = next(
                (i for i in current if isinstance(i, dict) and all(i.get(k) == v for k, v in key.items())), None
            )
            if current is None:
                return False, None
        else:
            return True, True
    return True, current


def remove(obj: dict, path: Path) -> None:
    """Delete ``path`` from ``obj`` (a field no manager owns any more)."""
    if path[-1] == ITEM:
        found, parent = value_at(obj, path[:-2])
        if found and isinstance(parent, list):
            key = json.loads(path[-2][1])
            parent[:] = [i for i in parent if not all(i.get(k) == v for k, v in key.items())]
        return
    found, parent = value_at(obj, path[:-1])
    if found and isinstance(parent, dict) and path[-1][0] == "f":
        parent.pop(path[-1][1], None)


def changed(old: dict, new: dict, status: bool = False) -> set[Path]:
    """The paths whose value differs between two versions of an object."""
    return {path for path in leaves(old, status) | leaves(new, status) if value_at(old, path) != value_at(new, path)}


def to_fields_v1(paths: set[Path]) -> dict:
    root: dict = {}
    for path in sorted(paths):
        node = root
        for kind, name in path:
            node = node.setdefault("." if kind == "." else f"{kind}:{name}", {})
    return root


def from_fields_v1(fields: dict, prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for key, sub in (fields or {}).items():
        if key == ".":
            out.add((*prefix, ITEM))
            continue
        kind, _, name = key.partition(":")
        path = (*prefix, (kind, name))
        if sub:
            out |= from_fields_v1(sub, path)
        else:
            out.add(path)
    return out


def path_string(path: Path) -> str:
    """structured-merge-diff's ``Path.String()``: ``.spec.template.spec.containers[name="web"].image``."""
    out = ""
    for kind, name in path:
        if kind == "f":
            out += f".{name}"
        elif kind == "k":
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(name).items()) + "]"
    return out
