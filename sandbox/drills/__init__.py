"""Drill scenarios for ``make drill``: one module per scenario playbook.

A scenario module defines::

    PLAYBOOK = "playbooks/<scenario>.yml"
    DESCRIPTION = "one line"
    def inject(sandbox) -> dict        # make the fault; return the playbook's extra vars, plus under the
                                       # key "_drill" what verify needs and "fault": one line saying what
                                       # was broken (recorded as the timeline's first note)
    def verify(sandbox, context) -> list[str]
                                       # check recovery in the sandbox; raise AssertionError if it did not happen
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def available() -> dict[str, ModuleType]:
    """Scenario name -> module, for every drill in this package."""
    scenarios = {}
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            scenarios[info.name] = importlib.import_module(f"{__name__}.{info.name}")
    return dict(sorted(scenarios.items()))
