"""Every route of ``create_app(context)`` (the mounted ``/api/v1`` app's too), with the action it declares:
what the permission matrix and the CSRF sweep walk, so a route added later is checked without editing them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Mount, Route

API_PREFIX = "/api/v1"
# Routes anyone may call: signing in, the language switch, the stylesheet and script, the opt-out links of
# the messages (`/u/{token}`, also under an e-mail provider's `unsubscribe_base_url` path such as
# `/huy-dang-ky/u/{token}`), the city app's signed consent and device endpoints (`/city-app/…`, HMAC-signed:
# tests/broadcaster/delivery/test_city_app_consent.py, test_city_app_devices.py, test_fallback.py), the
# providers' webhooks (`/webhooks/{type}/{provider}`, signed by the provider: test_zalo_webhook.py) and the API's
# OpenAPI document.
PUBLIC_EXACT = frozenset({"/sign-in", "/language", f"{API_PREFIX}/openapi.json"})
PUBLIC_PREFIXES = ("/static", "/u/", "/huy-dang-ky/", "/city-app/", "/webhooks/")
_OPT_OUT_LINK = re.compile(r"(^|/)u/\{token\}$")
_PARAMETER = re.compile(r"\{([^}:]+)(?::([^}]+))?\}")


@dataclass(frozen=True)
class Endpoint:
    """One method of one route: ``api`` for the REST API's (key, problem details), else the staff UI's."""

    method: str
    path: str
    api: bool
    actions: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def changes(self) -> bool:
        return self.method not in ("GET", "HEAD")


def is_public(path: str) -> bool:
    return path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIXES) or bool(_OPT_OUT_LINK.search(path))


def declared_actions(dependant: Dependant) -> tuple[str, ...]:
    """The ``broadcaster_action`` of every dependency below ``dependant`` (router-level ones included)."""
    found: list[str] = []
    for dependency in dependant.dependencies:
        action = getattr(dependency.call, "broadcaster_action", None)
        if isinstance(action, str):
            found.append(action)
        found.extend(declared_actions(dependency))
    return tuple(found)


@dataclass(frozen=True)
class _Found:
    path: str
    methods: frozenset[str]
    dependant: Dependant | None
    api: bool


def _found(path: str, route: Any, api: bool) -> _Found:
    dependant = getattr(route, "dependant", None)
    methods = getattr(route, "methods", None) or {"GET"}
    return _Found(path, frozenset(methods), dependant if isinstance(dependant, Dependant) else None, api)


def _walk(routes: list[BaseRoute], prefix: str, api: bool) -> Iterator[_Found]:
    for route in routes:
        if isinstance(route, Mount):
            inner = getattr(route.app, "routes", None)
            if inner is None:  # StaticFiles and other plain ASGI apps: the mount itself is the route
                yield _found(prefix + route.path, route, api)
            else:
                yield from _walk(list(inner), prefix + route.path, api or route.path == API_PREFIX)
        elif hasattr(route, "effective_route_contexts"):
            # FastAPI ≥ 0.16x keeps an included router as one lazy route; its contexts are the routes as
            # served (the include's prefix and router-level dependencies applied).
            for effective in route.effective_route_contexts():
                yield _found(prefix + effective.path, effective, api)
        elif isinstance(route, APIRoute | Route):
            yield _found(prefix + route.path, route, api)
        else:
            yield _Found(prefix + str(getattr(route, "path", repr(route))), frozenset({"GET"}), None, api)


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every (method, path) the app serves, sorted; a route without FastAPI dependencies (a plain Starlette
    route, a mounted ASGI app) has no actions, so it fails the matrix unless it is public."""
    found: set[Endpoint] = set()
    for route in _walk(list(app.routes), "", False):
        actions = declared_actions(route.dependant) if route.dependant is not None else ()
        for method in route.methods - {"HEAD"}:
            found.add(Endpoint(method, route.path, route.api, actions))
    return sorted(found, key=lambda e: (e.path, e.method))


def fill_path(path: str, values: dict[str, Any]) -> str:
    """``/campaigns/{campaign_id}/runs/{run_id:int}`` with values that exist: the first key of ``values``
    found in the parameter's name (``campaign`` in ``campaign_id``), else ``1`` (a dummy of the right type
    for an ``int`` converter and for a string)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1).lower()
        for key, known in values.items():
            if key in name:
                return str(known)
        return "1"

    return _PARAMETER.sub(value, path)
