"""Write each role README's variable table from its meta/argument_specs.yml (the single source).

The table sits between two markers in roles/<role>/README.md; everything outside them is prose kept by hand.

    python tools/role_readme.py            # rewrite the tables (make docs)
    python tools/role_readme.py --check    # exit 1 naming every README whose table differs
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- BEGIN variables: generated from meta/argument_specs.yml by tools/role_readme.py (make docs) -->"
END = "<!-- END variables -->"

# Ansible's documentation markup, as Markdown (O(opt=value), V(value), C(code), M(fqcn), I(), B(), L(), U()).
_MARKUP = [
    (re.compile(r"[OVCM]\(([^()]*)\)"), r"`\1`"),
    (re.compile(r"I\(([^()]*)\)"), r"*\1*"),
    (re.compile(r"B\(([^()]*)\)"), r"**\1**"),
    (re.compile(r"L\(([^(),]*),\s*([^()]*)\)"), r"[\1](\2)"),
    (re.compile(r"U\(([^()]*)\)"), r"<\1>"),
]


def roles(root: Path = REPO_ROOT) -> list[Path]:
    """Every role directory under roles/, sorted."""
    return sorted(path for path in (root / "roles").iterdir() if (path / "meta" / "argument_specs.yml").is_file())


def options(role: Path) -> dict:
    """The role's entry-point options, in the order the spec lists them."""
    spec = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    return spec["argument_specs"]["main"].get("options") or {}


def _markdown(text: str) -> str:
    for pattern, replacement in _MARKUP:
        text = pattern.sub(replacement, text)
    return " ".join(text.split()).replace("|", "\\|")


def _default(opt: dict) -> str:
    if opt.get("required"):
        return "*required*"
    if "default" not in opt or opt["default"] is None:
        return "*none*"
    return f"`{json.dumps(opt['default'])}`"


def _type(opt: dict) -> str:
    kind = opt.get("type", "str")
    return f"{kind} of {opt['elements']}" if kind == "list" and opt.get("elements") else kind


def table(role: Path) -> str:
    """The variable table (with its markers) that the README must hold."""
    lines = [BEGIN, "| Variable | Type | Default | Description |", "|---|---|---|---|"]
    for name, opt in options(role).items():
        description = opt.get("description") or ""
        if isinstance(description, list):
            description = " ".join(description)
        choices = opt.get("choices")
        if choices:
            description += " Choices: " + ", ".join(f"`{json.dumps(choice)}`" for choice in choices) + "."
        lines.append(f"| `{name}` | {_type(opt)} | {_default(opt)} | {_markdown(description)} |")
    lines.append(END)
    return "\n".join(lines)


def rendered(role: Path) -> str:
    """The README as the generator writes it: the text between the markers replaced by the table."""
    readme = (role / "README.md").read_text(encoding="utf-8")
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{role / 'README.md'} has no variable table markers ({BEGIN} ... {END})")
    return readme[:start] + table(role) + readme[end + len(END) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; fail if a README table differs")
    args = parser.parse_args(argv)
    stale = []
    for role in roles():
        readme = role / "README.md"
        text = rendered(role)
        if text == readme.read_text(encoding="utf-8"):
            continue
        stale.append(str(readme.relative_to(REPO_ROOT)))
        if not args.check:
            readme.write_text(text, encoding="utf-8")
    verb = "differ from meta/argument_specs.yml (run: make docs)" if args.check else "rewritten"
    for path in stale:
        print(f"{path}: {verb}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
