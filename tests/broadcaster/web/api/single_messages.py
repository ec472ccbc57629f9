"""Fixtures of the single-message tests: API keys made with ``broadcaster.api_keys.create_key``, a client of
the whole app whose new messages are chunked before it answers and handed to a recording enqueuer, and an
approved campaign loaded through the same services as the CLI. Imported by the tests that use them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from broadcaster.api_keys import create_key
from broadcaster.campaigns import workflow
from broadcaster.campaigns.files import ProviderInfo, SendRules, load_campaign_file
from broadcaster.campaigns.store import load_bundle
from broadcaster.context import AppContext
from broadcaster.db.models import User
from broadcaster.outbox.queues import RecordingEnqueuer
from broadcaster.vocabulary import Role
from broadcaster.web.app import create_app
from tests.broadcaster.conftest import ADMIN_LOGIN, write_campaign


def api_app(app: FastAPI) -> FastAPI:
    """The REST API's own app, mounted at /api/v1 (its state holds the enqueuer)."""
    for route in app.routes:
        if getattr(route, "path", None) == "/api/v1":
            sub: FastAPI = route.app  # type: ignore[attr-defined]
            return sub
    raise AssertionError("the API is not mounted")


def approve_campaign(context: AppContext, path: Any, editor: User, approver: User) -> str:
    """Load, submit and approve a campaign file; returns its id."""
    settings = context.settings
    bundle, problems = load_campaign_file(
        path,
        templates_dir=context.templates_dir,
        providers=ProviderInfo.all_from(settings),
        rules=SendRules.from_settings(settings),
    )
    assert problems == [], problems
    assert bundle is not None
    with context.sessions.begin() as session:
        campaign_id = load_bundle(session, bundle, actor=editor.login, clock=context.clock).campaign_id
    with context.sessions.begin() as session:
        version = workflow.submit(
            session, campaign_id=campaign_id, actor=editor, settings=settings, clock=context.clock
        )
        content_hash = version.content_hash
    with context.sessions.begin() as session:
        workflow.approve(
            session, campaign_id=campaign_id, actor=approver, clock=context.clock, content_hash=content_hash
        )
    return campaign_id


@pytest.fixture
def enqueuer() -> RecordingEnqueuer:
    return RecordingEnqueuer()


@pytest.fixture
def single_api(context: AppContext, enqueuer: RecordingEnqueuer) -> Iterator[TestClient]:
    app = create_app(context)
    api_app(app).state.enqueuer = enqueuer
    api_app(app).state.chunk_in_background = False  # each request chunks before it answers
    with TestClient(app, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def single_key(context: AppContext) -> Callable[..., str]:
    """``single_key(role=Role.EDITOR, campaigns=None, rate=1000)``: a new key's secret."""

    def make(role: Role = Role.EDITOR, campaigns: list[str] | None = None, rate: int = 1000) -> str:
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
        return str(created.secret)

    return make


@pytest.fixture
def write_approved(context: AppContext, workdir: Any, create_user: Callable[..., User]) -> Callable[..., str]:
    """``write_approved(sms_text=..., **overrides)``: a campaign written, loaded and approved; its id."""
    editor = create_user(role=Role.EDITOR)
    approver = create_user(role=Role.APPROVER)

    def make(**overrides: Any) -> str:
        return approve_campaign(context, write_campaign(workdir, **overrides), editor, approver)

    return make
