"""A local Zalo Notification Service peer (docs/social.md "Zalo"), served by hypercorn for a test.

It implements ``POST /message/template`` as the ZNS adapter uses it: the OA's ``access_token`` header, the body
``{phone, template_id, template_data, tracking_id}``, and the answer ``{error, message, data}`` with
``data.msg_id`` on success. Refusals use the codes of docs/social.md: -124 for a wrong or expired token, -108
for a malformed phone, -118 for a phone with no Zalo account, -119 for one that cannot receive ZNS, -109 for an
unknown template, -111/-112 for missing or wrong template data, -144 when ``throttle`` is on. ``stall_sends``
accepts messages and then holds their answers until the peer stops (how a test provokes ``OutcomeUnknown``).

For each message it accepts it also writes the ``user_received_message`` event Zalo would post to the OA's
webhook, signed like Zalo signs it (``X-ZEvent-Signature``), into ``webhooks`` (the events as the webhook route
stores them) and ``signed`` (the raw bodies with their headers).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from channels.sandbox.http_server import serving
from channels.social.zalo import signature

OA_ID = "1032900368158093040"
OA_SECRET = "peer-oa-secret"  # noqa: S105  the local peer's own, never a real secret


@dataclass
class ZaloBehaviour:
    access_token: str = "zalo-oa-access-token"  # noqa: S105  the local peer's own
    templates: Mapping[str, frozenset[str]] = field(
        default_factory=lambda: {"231677": frozenset({"content"})}
    )  # approved template id → its parameters
    not_on_zalo: frozenset[str] = frozenset()  # phones (84…) with no Zalo account: -118
    cannot_receive: frozenset[str] = frozenset()  # phones whose account refuses ZNS: -119
    expired_token: bool = False  # every request is refused with -124
    throttle: bool = False  # every request is refused with -144 (daily limit reached)
    stall_sends: int = 0  # this many messages are accepted and answered only when the peer stops
    oa_id: str = OA_ID
    oa_secret: str = OA_SECRET


@dataclass(frozen=True)
class Sent:
    msg_id: str
    phone: str
    template_id: str
    template_data: Mapping[str, Any]
    tracking_id: str


@dataclass(frozen=True)
class SignedWebhook:
    body: bytes
    headers: Mapping[str, str]


def _answer(error: int, message: str, data: Mapping[str, Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": error, "message": message}
    if data is not None:
        body["data"] = dict(data)
    return JSONResponse(body)  # ZNS answers HTTP 200 and says what happened in ``error``


class ZaloPeer:
    def __init__(self, behaviour: ZaloBehaviour) -> None:
        self.behaviour = behaviour
        self.sent: list[Sent] = []
        self.received: list[Mapping[str, Any]] = []  # every request body, as sent
        self.webhooks: list[dict[str, Any]] = []
        self.signed: list[SignedWebhook] = []
        self._ids = itertools.count(1)
        self._clock = itertools.count(1_764_460_800_000, 1000)  # event times in ms, one second apart
        self._lock = threading.Lock()
        self._release: asyncio.Event | None = None
        self.app = Starlette(routes=[Route("/message/template", self._template, methods=["POST"])])

    def release(self) -> None:
        if self._release is not None:
            self._release.set()

    def deliver(self, msg_id: str, *, user_id: str = "2468013579") -> dict[str, Any]:
        """Write the signed ``user_received_message`` event for ``msg_id`` (what Zalo posts to the webhook)."""
        with self._lock:
            now = str(next(self._clock))
        event = {
            "app_id": "4318471539123456789",
            "oa_id": self.behaviour.oa_id,
            "event_name": "user_received_message",
            "sender": {"id": self.behaviour.oa_id},
            "recipient": {"id": user_id},
            "message": {"msg_id": msg_id, "delivery_time": now},
            "timestamp": now,
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        mac = signature(
            body=body, oa_id=self.behaviour.oa_id, oa_secret=self.behaviour.oa_secret, timestamp=now
        )
        with self._lock:
            self.signed.append(SignedWebhook(body, {"X-ZEvent-Signature": mac}))
            self.webhooks.append(event)
        return event

    async def _template(self, request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return _answer(-112, "Body is not JSON")
        with self._lock:
            self.received.append(body)
        behaviour = self.behaviour
        if request.headers.get("access_token") != behaviour.access_token or behaviour.expired_token:
            return _answer(-124, "Access token invalid")
        if behaviour.throttle:
            return _answer(-144, "OA has reached its daily sending limit")
        phone = str(body.get("phone", ""))
        if not re.fullmatch(r"(84|0)\d{8,11}", phone):
            return _answer(-108, "Phone number invalid")
        if phone in behaviour.not_on_zalo:
            return _answer(-118, "Zalo account not existed")
        if phone in behaviour.cannot_receive:
            return _answer(-119, "Account can not receive ZNS")
        template_id = str(body.get("template_id", ""))
        params = behaviour.templates.get(template_id)
        if params is None:
            return _answer(-109, "Template ID invalid")
        data = body.get("template_data")
        if not data:
            return _answer(-111, "Template data empty")
        if not isinstance(data, dict) or set(data) != set(params):
            return _answer(-112, "Template data invalid")
        with self._lock:
            msg_id = f"{next(self._ids):032x}"
            self.sent.append(Sent(msg_id, phone, template_id, data, str(body.get("tracking_id", ""))))
            stall = behaviour.stall_sends > 0
            if stall:
                behaviour.stall_sends -= 1
        self.deliver(msg_id)
        if stall:  # accepted; its answer comes only when the peer stops (the client times out first)
            if self._release is None:
                self._release = asyncio.Event()
            await self._release.wait()
        quota = {"dailyQuota": "1000", "remainingQuota": str(1000 - len(self.sent))}
        return _answer(0, "Success", {"msg_id": msg_id, "sent_time": "1764460800000", "quota": quota})


@contextlib.contextmanager
def running_zalo(behaviour: ZaloBehaviour) -> Iterator[tuple[ZaloPeer, str]]:
    """A started ZNS peer and its base URL (the adapter's ``endpoint``)."""
    peer = ZaloPeer(behaviour)
    with serving(peer.app, name="zalo", on_stop=peer.release) as server:
        yield peer, server.url
