"""While the web app runs, the objects it was built of are frozen out of the cyclic garbage collector (a full
collection no longer walks them: docs/web.md, "A frozen heap"); when it stops they are collectable again."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient

from broadcaster.context import AppContext
from broadcaster.web.app import create_app


def test_the_running_app_freezes_its_heap_and_unfreezes_it_when_it_stops(context: AppContext) -> None:
    app = create_app(context)
    assert gc.get_freeze_count() == 0
    with TestClient(app) as client:
        assert client.get("/sign-in").status_code == 200
        assert gc.get_freeze_count() > 10_000  # the modules, routes and templates, at the least
    assert gc.get_freeze_count() == 0
