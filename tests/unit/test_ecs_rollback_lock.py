"""The rollback lock of ecs_service_rollback (found by the load proof, issue 20 item 3: two responders running
service_down on one service at once both read the bad revision and both called UpdateService): one run at a time
rolls a service back from one revision; a lock left by a run that died is taken over once stale."""

from __future__ import annotations

import os
import sys

from sandbox import REPO_ROOT

if str(REPO_ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "collections"))

from ansible_collections.firebreak.runbooks.plugins.modules.ecs_service_rollback import RollbackLock

ARN = "arn:aws:ecs:us-east-1:123456789012:service/shop/shop-api"


def test_one_run_at_a_time_per_service_and_revision(tmp_path):
    first, second = RollbackLock(ARN, "shop-api:4", root=tmp_path), RollbackLock(ARN, "shop-api:4", root=tmp_path)
    assert first.take("{}") is True
    assert second.take("{}") is False, "the second run must not roll back too"
    assert RollbackLock(ARN, "shop-api:5", root=tmp_path).take("{}") is True, "another revision is another rollback"
    other = "arn:aws:ecs:us-east-1:123456789012:service/shop/shop-web"
    assert RollbackLock(other, "shop-api:4", root=tmp_path).take("{}") is True
    first.release()
    assert second.take("{}") is True, "released: a later run may roll back (it reads the service first)"
    second.release()
    second.release()  # twice: nothing left to remove, no error


def test_a_lock_left_by_a_dead_run_is_taken_over_once_stale(tmp_path):
    dead = RollbackLock(ARN, "shop-api:4", root=tmp_path, stale=600)
    assert dead.take("{}")
    path = dead.store._path(dead.key)
    later = RollbackLock(ARN, "shop-api:4", root=tmp_path, stale=600)
    assert later.take("{}", now=lambda: os.path.getmtime(path) + 599) is False
    assert later.take("{}", now=lambda: os.path.getmtime(path) + 601) is True
    assert os.path.exists(path)
