"""Which containment steps are outside the containment ledger, and why (issue 15)."""

from __future__ import annotations

import inspect
import sys

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.modules import secret_rotate


def test_secret_rotate_is_not_releasable_and_records_no_claim():
    """A rotation is not undone (the old value may be compromised): no release mode, so nothing to keep for others."""
    spec = secret_rotate.ARGUMENT_SPEC
    assert "state" not in spec and "containments" not in spec, "no release mode"
    assert "claims_bucket" not in spec and "claims_dir" not in spec
    assert "ledger" not in inspect.getsource(secret_rotate), "secret_rotate writes no claim"
    assert "It is not released" in secret_rotate.RETURN
