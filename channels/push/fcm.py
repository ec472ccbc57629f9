"""The FCM adapter: send windows of notifications through Firebase Cloud Messaging HTTP v1 over HTTP/2.

One ``POST {endpoint}/v1/projects/{project_id}/messages:send`` per device token, ``concurrency`` of them in
flight as streams of one HTTP/2 connection (:mod:`channels.push.http2`), with an OAuth 2.0 access token from
the service account (:mod:`channels.push.fcm_auth`). Answers are classified by :mod:`channels.push.fcm_errors`.

The engine's message contract (docs/push.md): ``address`` is the device token, ``subject`` the notification's
title, ``body`` its text, ``options["link"]`` a deep link (sent as ``data.link``) and ``options["data"]`` extra
data (string values). The provider id of a sent message is the ``name`` FCM returns, normalised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import httpx

from channels.base import (
    AdapterBase,
    Capabilities,
    Channel,
    DeliveryEvent,
    OutboundMessage,
    SendResult,
    normalize_provider_id,
)
from channels.clock import SYSTEM_CLOCK, Clock
from channels.errors import ChannelError, ConfigurationError, OutcomeUnknown, PermanentError
from channels.push.fcm_auth import OAuthTokenSource, ServiceAccount
from channels.push.fcm_errors import classify, error_code
from channels.push.http2 import Http2Runner, json_object, positive_int, positive_seconds, transport_error
from channels.push.payload import extra_data, mask_token, request_body

__all__ = ["FcmAdapter"]

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://fcm.googleapis.com"


def fcm_request(message: OutboundMessage) -> dict[str, Any]:
    """The ``messages:send`` body for one message; PayloadError naming the field when its options are wrong."""
    notification: dict[str, str] = {"body": message.body}
    if message.subject:
        notification["title"] = message.subject
    data = extra_data(message.options)
    body: dict[str, Any] = {"token": message.address, "notification": notification}
    if data:
        body["data"] = data
    return {"message": body}


class FcmAdapter(AdapterBase):
    """Firebase Cloud Messaging HTTP v1 (docs/push.md)."""

    channel: ClassVar[Channel] = Channel.PUSH
    # A window of a few hundred keeps the HTTP/2 streams busy; two overlapping calls keep them busy between
    # windows too (the requests of both share the one connection and the ``concurrency`` cap).
    capabilities: ClassVar[Capabilities] = Capabilities(window=500, overlap=2, timed=True, peer="FCM")

    def __init__(
        self,
        *,
        project_id: str,
        service_account_file: str | Path,
        endpoint: str = DEFAULT_ENDPOINT,
        token_uri: str | None = None,
        concurrency: int = 100,
        timeout: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not project_id or "/" in str(project_id):
            raise ConfigurationError(f"project_id must be a Firebase project id, not {project_id!r}")
        if not str(endpoint).startswith(("https://", "http://")):
            raise ConfigurationError(f"endpoint must be an http(s) URL, not {endpoint!r}")
        self.project_id = str(project_id)
        self.service_account_file = Path(service_account_file)
        self.endpoint = str(endpoint).rstrip("/")
        self.token_uri = token_uri
        self.concurrency = positive_int(concurrency, field="concurrency")
        self.timeout = positive_seconds(timeout, field="timeout")
        self.clock = clock
        self._auth: OAuthTokenSource | None = None
        self._runner = Http2Runner(name="fcm", timeout=self.timeout, concurrency=self.concurrency)

    @property
    def send_url(self) -> str:
        return f"{self.endpoint}/v1/projects/{self.project_id}/messages:send"

    @property
    def token_fetches(self) -> int:
        """Access tokens fetched since the adapter was built."""
        return self._auth.fetches if self._auth else 0

    def open(self) -> None:
        if self._auth is None:  # the token survives a close and reopen
            account = ServiceAccount.load(self.service_account_file, token_uri=self.token_uri)
            self._auth = OAuthTokenSource(account, clock=self.clock)
            self._auth.assertion()  # a key that cannot sign is a settings problem: say so now
        self._runner.start()

    def close(self) -> None:
        self._runner.stop()

    def send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        if not messages:
            return []
        return self._runner.run(self._send_window(messages))

    @staticmethod
    def parse_events(raw: Mapping[str, Any]) -> list[DeliveryEvent]:
        """FCM sends nothing back to us (no receipts, no replies)."""
        return []

    async def _send_window(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        client = self._runner.client
        assert self._auth is not None
        try:
            token = await self._auth.token(client)
        except ChannelError as exc:  # no message was written: each gets the same answer
            return [SendResult.failed(m.message_id, exc) for m in messages]
        jobs = [self._runner.limited(self._send_one(client, message, token)) for message in messages]
        return list(await asyncio.gather(*jobs))

    async def _send_one(self, client: httpx.AsyncClient, message: OutboundMessage, token: str) -> SendResult:
        try:
            content = request_body(lambda: fcm_request(message), peer="FCM")
        except PermanentError as exc:
            return SendResult.failed(message.message_id, exc)
        for attempt in (1, 2):
            try:
                response = await client.post(
                    self.send_url,
                    content=content,
                    headers={
                        "authorization": f"Bearer {token}",
                        "content-type": "application/json; charset=utf-8",
                    },
                )
            except httpx.HTTPError as exc:
                return SendResult.failed(message.message_id, transport_error(exc, peer="FCM"))
            body = json_object(response)
            if response.status_code == 200:
                name = normalize_provider_id(str(body.get("name") or ""))
                if name is None:  # accepted, but with nothing to match later: never resend blindly
                    return SendResult.failed(
                        message.message_id, OutcomeUnknown("FCM answered 200 without a message name")
                    )
                return SendResult.sent(message.message_id, name)
            # An access token FCM no longer takes (revoked, expired early): one more try with a new one.
            if response.status_code == 401 and error_code(body) is None and attempt == 1:
                try:
                    token = await self._auth.token(client, refused=token) if self._auth else token
                except ChannelError as exc:
                    return SendResult.failed(message.message_id, exc)
                continue
            break
        error = classify(response, body)
        log.info(
            "FCM refused message %s to %s: %s",
            message.message_id,
            mask_token(message.address),
            error,
            extra={"message_id": message.message_id, "provider": "fcm"},
        )
        return SendResult.failed(message.message_id, error)
