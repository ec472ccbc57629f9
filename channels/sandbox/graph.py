"""A local Graph API peer for Page posts (docs/social.md "Graph API"), served by hypercorn for a test.

It implements what the Facebook Page adapter uses: ``POST /{version}/{page_id}/feed`` (``message``, ``link``),
``POST /{version}/{page_id}/photos`` (``url``, ``caption``) and ``GET /{version}/{page_id}/feed`` or ``/posts``
(``fields``, ``limit``), each with the Page's ``access_token``, and the documented error bodies
``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``: 190 for a wrong or expired token,
100/33 for a page it does not know, 506 for the same text posted twice in a row. Switches in
``GraphBehaviour`` make it throttle (code 4 or 17, with a ``Retry-After`` or Business Use Case usage header),
refuse every token as expired, or create a post and then stall its answer (how a test provokes
``OutcomeUnknown``). It keeps every post it made and every request it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from channels.sandbox.http_server import serving


@dataclass
class GraphBehaviour:
    pages: Mapping[str, str] = field(default_factory=dict)  # page id → the Page access token it accepts
    throttle_code: int | None = None  # answer every post with this rate-limit code (4, 17, 32, 80001…)
    retry_after: int | None = None  # with throttle_code: a Retry-After header (seconds)
    regain_minutes: int | None = None  # with throttle_code: X-Business-Use-Case-Usage's time to regain access
    expired_tokens: bool = False  # every token is refused as expired (190, subcode 463)
    stall_posts: int = 0  # this many posts are created and then answered only when the peer stops


@dataclass(frozen=True)
class Post:
    id: str
    page_id: str
    message: str
    link: str | None
    image: str | None
    created_time: str


@dataclass(frozen=True)
class Received:
    method: str
    page_id: str
    edge: str
    fields: Mapping[str, str]  # the form or query, without the access token


def _error(
    status: int,
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "Apeer",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return JSONResponse({"error": error}, status_code=status, headers=headers)


class GraphPeer:
    def __init__(self, behaviour: GraphBehaviour) -> None:
        self.behaviour = behaviour
        self.posts: list[Post] = []  # oldest first
        self.received: list[Received] = []
        self._ids = itertools.count(100000000001)
        self._lock = threading.Lock()
        self._release: asyncio.Event | None = None
        self.app = Starlette(
            routes=[
                Route("/{version}/{page_id}/feed", self._feed, methods=["GET", "POST"]),
                Route("/{version}/{page_id}/posts", self._feed, methods=["GET"]),
                Route("/{version}/{page_id}/photos", self._photos, methods=["POST"]),
            ]
        )

    def posts_of(self, page_id: str) -> list[Post]:
        with self._lock:
            return [p for p in self.posts if p.page_id == page_id]

    def release(self) -> None:
        """Let the stalled answers go (called in the server's loop when the peer stops)."""
        if self._release is not None:
            self._release.set()

    async def _fields(self, request: Request) -> dict[str, str]:
        if request.method == "POST":
            form = await request.form()
            return {k: str(v) for k, v in form.items()}
        return dict(request.query_params)

    async def _checked(self, request: Request) -> tuple[str, dict[str, str]] | JSONResponse:
        """The page id and fields of an authorised request, or the error the Graph API would answer."""
        page_id = request.path_params["page_id"]
        fields = await self._fields(request)
        token = fields.pop("access_token", None)
        edge = request.url.path.rsplit("/", 1)[-1]
        with self._lock:
            self.received.append(Received(request.method, page_id, edge, fields))
        if not token:
            return _error(400, 104, "An access token is required to request this resource.")
        if self.behaviour.expired_tokens:
            return _error(400, 190, "Error validating access token: Session has expired.", subcode=463)
        expected = self.behaviour.pages.get(page_id)
        if expected is None:
            return _error(
                400,
                100,
                f"Unsupported post request. Object with ID '{page_id}' does not exist, cannot be loaded due to "
                "missing permissions, or does not support this operation.",
                subcode=33,
            )
        if token != expected:
            return _error(400, 190, "Invalid OAuth access token - Cannot parse access token")
        return page_id, fields

    def _throttled(self) -> JSONResponse | None:
        code = self.behaviour.throttle_code
        if code is None:
            return None
        headers: dict[str, str] = {}
        if self.behaviour.retry_after is not None:
            headers["Retry-After"] = str(self.behaviour.retry_after)
        if self.behaviour.regain_minutes is not None:
            usage = {"1234": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 0}]}
            usage["1234"][0]["estimated_time_to_regain_access"] = self.behaviour.regain_minutes
            headers["X-Business-Use-Case-Usage"] = json.dumps(usage)
        return _error(400, code, f"(#{code}) Application request limit reached", headers=headers)

    async def _create(
        self, page_id: str, *, message: str, link: str | None, image: str | None
    ) -> JSONResponse:
        with self._lock:
            latest = next((p for p in reversed(self.posts) if p.page_id == page_id), None)
            if latest is not None and (latest.message, latest.link, latest.image) == (message, link, image):
                return _error(400, 506, "Duplicate status message")
            post = Post(
                id=f"{page_id}_{next(self._ids)}",
                page_id=page_id,
                message=message,
                link=link,
                image=image,
                created_time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
            )
            self.posts.append(post)
            stall = self.behaviour.stall_posts > 0
            if stall:
                self.behaviour.stall_posts -= 1
        if stall:  # the post exists; its answer comes only when the peer stops (the client times out first)
            if self._release is None:
                self._release = asyncio.Event()
            await self._release.wait()
        if image is not None:
            photo_id = post.id.split("_", 1)[1]
            return JSONResponse({"id": photo_id, "post_id": post.id})
        return JSONResponse({"id": post.id})

    async def _feed(self, request: Request) -> JSONResponse:
        checked = await self._checked(request)
        if isinstance(checked, JSONResponse):
            return checked
        page_id, fields = checked
        if request.method == "GET":
            limit = int(fields.get("limit", "25"))
            wanted = set(fields.get("fields", "id,message,created_time").split(","))
            newest = list(reversed(self.posts_of(page_id)))[:limit]
            data = [
                {k: v for k, v in vars(p).items() if k in wanted and v is not None and k != "page_id"}
                for p in newest
            ]
            return JSONResponse({"data": data, "paging": {}})
        throttled = self._throttled()
        if throttled is not None:
            return throttled
        if not fields.get("message") and not fields.get("link"):
            return _error(400, 100, "(#100) Missing message or attachment")
        return await self._create(
            page_id, message=fields.get("message", ""), link=fields.get("link"), image=None
        )

    async def _photos(self, request: Request) -> JSONResponse:
        checked = await self._checked(request)
        if isinstance(checked, JSONResponse):
            return checked
        page_id, fields = checked
        throttled = self._throttled()
        if throttled is not None:
            return throttled
        if not fields.get("url"):
            return _error(400, 324, "(#324) Requires upload file")
        return await self._create(page_id, message=fields.get("caption", ""), link=None, image=fields["url"])


@contextlib.contextmanager
def running_graph(behaviour: GraphBehaviour) -> Iterator[tuple[GraphPeer, str]]:
    """A started Graph peer and its base URL (the adapter's ``graph_url``)."""
    peer = GraphPeer(behaviour)
    with serving(peer.app, name="graph", on_stop=peer.release) as server:
        yield peer, server.url
