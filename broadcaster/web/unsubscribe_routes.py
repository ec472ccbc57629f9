"""RFC 8058 one-click unsubscribe: a POST of ``List-Unsubscribe=One-Click`` to the link records the withdrawal.

The link is the one mails already carry (``broadcaster.unsubscribe.unsubscribe_link``): ``<base>/u/<token>``.
It is served at ``/u/<token>`` and under the path of every configured ``unsubscribe_base_url``, so it works
whether or not a reverse proxy strips that path. A GET only shows a confirmation page: mail scanners fetch
links, and a GET must never opt anyone out.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool
from starlette.formparsers import MultiPartException

from broadcaster.context import AppContext
from broadcaster.settings import Settings
from broadcaster.unsubscribe_withdrawal import message_for_token, withdraw_by_token
from broadcaster.web.pages import (
    ONE_CLICK_FIELD,
    ONE_CLICK_VALUE,
    bad_request_page,
    confirm_page,
    done_page,
    unknown_link_page,
)


def link_paths(settings: Settings) -> list[str]:
    """The URL paths the opt-out links of this installation arrive at, ``/u/{token}`` first."""
    prefixes = {""}
    for provider in settings.providers.values():
        base = provider.options().get("unsubscribe_base_url")
        if provider.channel == "email" and base:
            prefixes.add(urlsplit(str(base)).path.rstrip("/"))
    return [f"{prefix}/u/{{token}}" for prefix in sorted(prefixes)]


def unsubscribe_router(context: AppContext) -> APIRouter:
    settings = context.settings
    secret = settings.security.unsubscribe_secret

    def known(token: str) -> bool:
        with context.readers() as session:
            return message_for_token(session, secret=secret, token=token) is not None

    def withdraw(token: str) -> bool:
        with context.sessions.begin() as session:
            return withdraw_by_token(session, secret=secret, token=token, at=context.clock.now()) is not None

    async def show(token: str) -> HTMLResponse:
        if not await run_in_threadpool(known, token):
            return unknown_link_page()
        return confirm_page(settings.org)

    async def one_click(token: str, request: Request) -> HTMLResponse:
        # application/x-www-form-urlencoded as RFC 8058 asks, or multipart/form-data as some clients send.
        try:
            form = await request.form()
        except MultiPartException:
            return bad_request_page()
        if form.get(ONE_CLICK_FIELD) != ONE_CLICK_VALUE:
            return bad_request_page()
        if not await run_in_threadpool(withdraw, token):
            return unknown_link_page()
        return done_page(settings.org)

    router = APIRouter()
    for path in link_paths(settings):
        router.add_api_route(path, show, methods=["GET"], response_class=HTMLResponse)
        router.add_api_route(path, one_click, methods=["POST"], response_class=HTMLResponse)
    return router
