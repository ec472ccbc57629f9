"""The REST API on a test working directory: keys made with the real service, one client of the whole app,
and the hand-off of a new run to the workers recorded instead of sent to a broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from broadcaster.api_keys import create_key
from broadcaster.context import AppContext
from broadcaster.vocabulary import Role
from broadcaster.web.api import campaigns as campaigns_api
from broadcaster.web.app import create_app
from tests.broadcaster.conftest import ADMIN_LOGIN, write_campaign

CAMPAIGN = "thong-bao-thu-nghiem"

MakeKey = Callable[..., str]


@pytest.fixture
def make_key(context: AppContext) -> MakeKey:
    """``make_key(Role.EDITOR, campaigns=None, rate=600)``: a new key's secret."""

    def make(role: Role, *, campaigns: list[str] | None = None, rate: int = 600) -> str:
        with context.sessions.begin() as session:
            created = create_key(
                session,
                actor=ADMIN_LOGIN,
                name=f"he-thong-{role.value}",
                role=role,
                clock=context.clock,
                rate_per_minute=rate,
                campaigns=campaigns,
            )
            return created.secret

    return make


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The runs handed to the workers (no broker in these tests)."""
    runs: list[int] = []
    monkeypatch.setattr(campaigns_api, "plan_run", lambda _context, run_id: runs.append(run_id))
    return runs


@pytest.fixture
def api(context: AppContext, planned: list[int]) -> Iterator[TestClient]:
    with TestClient(create_app(context), base_url="http://testserver") as client:
        yield client


def bearer(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def campaign_text(workdir: Path, **overrides: object) -> dict[str, object]:
    """The JSON body of validate/load: a valid campaign's YAML and its templates, as the API takes them."""
    source = write_campaign(workdir / "draft", **overrides)  # type: ignore[arg-type]
    templates_root = workdir / "draft" / "templates"
    templates = {
        str(path.relative_to(templates_root)): path.read_text(encoding="utf-8")
        for path in sorted(templates_root.rglob("*.j2"))
    }
    return {"campaign": source.read_text(encoding="utf-8"), "templates": templates}
