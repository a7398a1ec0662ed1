"""Splitting a bad-input matrix between ``make test`` and ``make proof``.

A bad-input matrix is proof (docs/development.md): each case costs a playbook run that fails. ``make test`` keeps
the first case of each matrix, so every module still shows there that it names a bad value and changes nothing;
``make proof`` (``pytest -m proof``) runs the other cases.
"""

from __future__ import annotations

import pytest

ParameterSet = type(pytest.param(None))  # what pytest.param returns


def proof_after_first(cases) -> list:
    """``cases`` (the argvalues of a parametrize with several argnames) with every case after the first marked
    ``proof``; a ``pytest.param`` keeps its id and marks."""
    split = []
    for index, case in enumerate(cases):
        if index == 0:
            split.append(case)
        elif isinstance(case, ParameterSet):
            split.append(pytest.param(*case.values, marks=[*case.marks, pytest.mark.proof], id=case.id))
        elif isinstance(case, tuple):
            split.append(pytest.param(*case, marks=pytest.mark.proof))
        else:
            raise TypeError(f"a case of several argnames is a tuple or a pytest.param, got {case!r}")
    return split


def first_case_in_make_test(test):
    """Decorator above a test's ``@pytest.mark.parametrize(argnames, cases, ...)``: the first case stays in
    ``make test``, the others are marked ``proof``."""
    marks = list(getattr(test, "pytestmark", []))
    parametrized = [mark for mark in marks if mark.name == "parametrize"]
    if len(parametrized) != 1:
        raise TypeError(f"{test.__name__}: expected one parametrize below first_case_in_make_test")
    mark = parametrized[0]
    test.pytestmark = [other for other in marks if other is not mark]
    argnames, cases, *rest = mark.args
    return pytest.mark.parametrize(argnames, proof_after_first(cases), *rest, **mark.kwargs)(test)
