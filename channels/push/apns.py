"""The APNs adapter: send windows of alert notifications to Apple devices over HTTP/2, token-based auth.

One ``POST {endpoint}/3/device/{token}`` per message, ``concurrency`` of them in flight as streams of one
HTTP/2 connection (:mod:`channels.push.http2`), each with the shared ES256 provider token
(:mod:`channels.push.apns_auth`). Answers are classified by :mod:`channels.push.apns_errors`.

The engine's message contract (docs/push.md): ``address`` is the device token, ``subject`` the alert's title,
``body`` its text, ``options["link"]`` a deep link (a ``link`` key beside ``aps``) and ``options["data"]``
extra keys beside it. The provider id of a sent message is the ``apns-id`` APNs answers with, normalised.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

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
from channels.errors import ConfigurationError, PermanentError
from channels.push.apns_auth import ProviderToken, load_signing_key
from channels.push.apns_errors import classify
from channels.push.http2 import Http2Runner, json_object, positive_int, positive_seconds, transport_error
from channels.push.payload import PayloadError, extra_data, mask_token, request_body

__all__ = ["ApnsAdapter"]

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://api.push.apple.com"


def apns_payload(message: OutboundMessage) -> dict[str, Any]:
    """The notification's JSON; PayloadError naming the field when its options are wrong."""
    alert: dict[str, str] = {"body": message.body}
    if message.subject:
        alert["title"] = message.subject
    extra = extra_data(message.options)
    if "aps" in extra:
        raise PayloadError("options.data may not have an 'aps' key (APNs reserves it)")
    return {"aps": {"alert": alert}, **extra}


class ApnsAdapter(AdapterBase):
    """Apple Push Notification service, HTTP/2 provider API with token-based auth (docs/push.md)."""

    channel: ClassVar[Channel] = Channel.PUSH
    capabilities: ClassVar[Capabilities] = Capabilities(window=500, overlap=2, timed=True, peer="APNs")

    def __init__(
        self,
        *,
        team_id: str,
        key_id: str,
        private_key_file: str | Path,
        topic: str,
        endpoint: str = DEFAULT_ENDPOINT,
        concurrency: int = 100,
        timeout: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        for field, value in (("team_id", team_id), ("key_id", key_id), ("topic", topic)):
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(f"{field} must be set (a non-empty string), not {value!r}")
        if not str(endpoint).startswith(("https://", "http://")):
            raise ConfigurationError(f"endpoint must be an http(s) URL, not {endpoint!r}")
        self.team_id = team_id
        self.key_id = key_id
        self.private_key_file = Path(private_key_file)
        self.topic = topic
        self.endpoint = str(endpoint).rstrip("/")
        self.concurrency = positive_int(concurrency, field="concurrency")
        self.timeout = positive_seconds(timeout, field="timeout")
        self.clock = clock
        self._token: ProviderToken | None = None
        self._runner = Http2Runner(name="apns", timeout=self.timeout, concurrency=self.concurrency)

    @property
    def token_renewals(self) -> int:
        """Provider tokens made since the adapter was built."""
        return self._token.renewals if self._token else 0

    def open(self) -> None:
        if self._token is None:  # the provider token survives a close and reopen
            key = load_signing_key(self.private_key_file)
            self._token = ProviderToken(team_id=self.team_id, key_id=self.key_id, key=key, clock=self.clock)
        self._runner.start()

    def close(self) -> None:
        self._runner.stop()

    def send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        if not messages:
            return []
        return self._runner.run(self._send_window(messages))

    @staticmethod
    def parse_events(raw: Mapping[str, Any]) -> list[DeliveryEvent]:
        """APNs sends nothing back to us (no receipts, no replies)."""
        return []

    async def _send_window(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        client = self._runner.client
        jobs = [self._runner.limited(self._send_one(client, message)) for message in messages]
        return list(await asyncio.gather(*jobs))

    async def _send_one(self, client: httpx.AsyncClient, message: OutboundMessage) -> SendResult:
        try:
            content = request_body(lambda: apns_payload(message), peer="APNs")
        except PermanentError as exc:
            return SendResult.failed(message.message_id, exc)
        assert self._token is not None
        our_id = str(uuid.uuid4())  # APNs echoes it back; ours is the id if it ever did not
        headers = {
            "authorization": f"bearer {self._token.current()}",
            "apns-topic": self.topic,
            "apns-push-type": "alert",
            "apns-priority": "10",
            "apns-id": our_id,
            "content-type": "application/json",
        }
        url = f"{self.endpoint}/3/device/{quote(message.address, safe='')}"
        try:
            response = await client.post(url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            return SendResult.failed(message.message_id, transport_error(exc, peer="APNs"))
        if response.status_code == 200:
            apns_id = normalize_provider_id(response.headers.get("apns-id") or our_id)
            assert apns_id is not None
            return SendResult.sent(message.message_id, apns_id)
        error = classify(response, json_object(response))
        log.info(
            "APNs refused message %s to %s: %s",
            message.message_id,
            mask_token(message.address),
            error,
            extra={"message_id": message.message_id, "provider": "apns"},
        )
        return SendResult.failed(message.message_id, error)
