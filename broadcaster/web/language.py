"""Each request is translated into the language it chose, else the installation's (pure ASGI, so the context
variable is set in the task that runs the route). A page chooses by the language cookie (the switch in the
header); an API request by ``Accept-Language`` (its first ``vi`` or ``en``)."""

from __future__ import annotations

from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Receive, Scope, Send

from broadcaster import i18n

LANGUAGE_COOKIE = "broadcaster_language"


def _accepted_language(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"accept-language":
            text: str = value.decode("latin-1")
            for part in text.split(","):
                code = part.split(";")[0].strip().split("-")[0].lower()
                if code in i18n.LANGUAGES:
                    return code
    return None


def _cookie_language(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            cookie: SimpleCookie = SimpleCookie()
            try:
                cookie.load(value.decode("latin-1"))
            except Exception:  # a malformed Cookie header chooses nothing
                return None
            morsel = cookie.get(LANGUAGE_COOKIE)
            return morsel.value if morsel is not None else None
    return None


class LanguageMiddleware:
    def __init__(self, app: ASGIApp, *, default: str) -> None:
        self.app = app
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = str(scope.get("path", "")).startswith("/api/")
        chosen = _accepted_language(scope) if api else _cookie_language(scope)
        with i18n.using(chosen if chosen in i18n.LANGUAGES else self.default):
            await self.app(scope, receive, send)
