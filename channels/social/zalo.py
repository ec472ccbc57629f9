"""Zalo Notification Service (ZNS): template messages to phone numbers, from a Zalo Official Account.

One message is one ``POST {endpoint}/message/template`` with the OA's ``access_token`` header and the body
``{phone, template_id, template_data, tracking_id}``: ``phone`` in the ``84…`` form, ``tracking_id`` our
message id, ``template_id`` and ``template_data`` from the message's options (or the provider's
``template_id`` and the body as the ``body_param`` parameter). ZNS answers ``{error, message, data}``;
``error == 0`` is success and ``data.msg_id`` the provider id.

Zalo reports each delivery to the OA's webhook as a ``user_received_message`` event, signed with the OA secret
(``X-ZEvent-Signature``): ``verify_signature`` is the check the webhook route makes before it stores the event,
and ``parse_events`` reads a stored event. ZNS has no way to list what was sent, so a message sent again after
``OutcomeUnknown`` may reach the phone twice (docs/social.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from channels.base import (
    AdapterBase,
    Capabilities,
    Channel,
    DeliveryEvent,
    EventType,
    OutboundMessage,
    SendResult,
    normalize_provider_id,
)
from channels.errors import (
    ChannelError,
    ConfigurationError,
    OutcomeUnknown,
    PermanentError,
    RecipientRejected,
    Throttled,
    TransientError,
)
from channels.masking import mask_phone
from channels.social.transport import Answer, exchange, not_sent, retry_after
from channels.social.zns_errors import error_class

PEER = "ZNS"
DELIVERED_EVENT = "user_received_message"
_PHONE = re.compile(r"84\d{8,11}")


class ZaloZnsAdapter(AdapterBase):
    channel: ClassVar[Channel] = Channel.SOCIAL
    # Deliveries come back through the OA's webhook, stored with the social channel and read here.
    # One message per person, to the contact's phone; the campaign names an approved ZNS template.
    capabilities: ClassVar[Capabilities] = Capabilities(
        window=20,
        receipts=True,
        parses_inbound=True,
        peer="ZNS",
        max_length=400,  # a ZNS template's text (docs/social.md: unconfirmed)
        address_field="phone",
        templates_setting="approved_templates",
        webhook=True,
    )

    def __init__(
        self,
        *,
        access_token: str,
        endpoint: str = "https://business.openapi.zalo.me",
        template_id: str | None = None,
        body_param: str | None = None,
        oa_id: str | None = None,
        oa_secret: str | None = None,
        approved_templates: Sequence[str] = (),
        timeout: float = 10.0,
    ) -> None:
        if not isinstance(access_token, str) or not access_token.strip():
            raise ValueError("access_token must be the Official Account's access token")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        if body_param is not None and not body_param.strip():
            raise ValueError("body_param must name a template parameter, or be left out")
        self.access_token = access_token.strip()
        self.endpoint = endpoint.rstrip("/")
        self.template_id = template_id
        self.body_param = body_param
        # Read by the webhook route (verify_signature), not by send(); kept so one settings section holds them.
        self.oa_id = oa_id
        self.oa_secret = oa_secret
        # The template ids Zalo approved for the OA: campaign validation refuses others; empty: not checked.
        self.approved_templates = frozenset(str(t) for t in approved_templates)
        self.timeout = timeout
        self._client: httpx.Client | None = None

    def __repr__(self) -> str:  # the token and secret stay out of logs
        return f"ZaloZnsAdapter(endpoint={self.endpoint!r}, oa_id={self.oa_id!r})"

    def open(self) -> None:
        if self._client is None:
            self._client = httpx.Client(timeout=httpx.Timeout(self.timeout))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        if self._client is None:
            raise ConfigurationError("the Zalo ZNS adapter is not open")
        results = []
        stopped: ChannelError | None = None  # one OA token and one quota: what stops one message stops all
        for message in messages:
            if stopped is not None:
                results.append(SendResult.failed(message.message_id, not_sent(stopped)))
                continue
            try:
                msg_id = self._send_one(self._client, message)
            except ChannelError as error:
                results.append(SendResult.failed(message.message_id, error))
                if isinstance(error, ConfigurationError | Throttled):
                    stopped = error
            else:
                results.append(SendResult.sent(message.message_id, msg_id))
        return results

    def _payload(self, message: OutboundMessage) -> dict[str, Any]:
        template_id = message.options.get("template_id", self.template_id)
        if template_id is None or str(template_id).strip() == "":
            raise PermanentError("options['template_id'] is missing and the provider has no template_id")
        data = message.options.get("template_data")
        if data is None:
            if self.body_param is None:
                raise PermanentError("options['template_data'] is missing and the provider has no body_param")
            data = {self.body_param: message.body}
        if not isinstance(data, Mapping):
            raise PermanentError(f"options['template_data'] must be a mapping, not {type(data).__name__}")
        if self.body_param is not None and self.body_param not in data and message.body:
            data = {**data, self.body_param: message.body}  # the campaign's other parameters, and the text
        return {
            "phone": zns_phone(message.address),
            "template_id": str(template_id),
            "template_data": {str(k): v for k, v in data.items()},
            "tracking_id": str(message.message_id),
        }

    def _send_one(self, client: httpx.Client, message: OutboundMessage) -> str:
        payload = self._payload(message)
        request = client.build_request(
            "POST",
            f"{self.endpoint}/message/template",
            json=payload,
            headers={"access_token": self.access_token},
        )
        answer = exchange(client, request, peer=PEER)
        code = answer.body.get("error")
        if answer.status == 200 and code == 0:
            return _msg_id(answer)
        raise zns_error(answer, phone=payload["phone"])

    @staticmethod
    def verify_inbound(headers: Mapping[str, str], body: bytes, options: Mapping[str, Any]) -> bool:
        """Whether a webhook request is Zalo's for this provider's OA: ``X-ZEvent-Signature`` checked with
        its ``oa_id`` and ``oa_secret`` settings (``options``); False when either setting is missing."""
        oa_id, oa_secret = options.get("oa_id"), options.get("oa_secret")
        header = next((v for k, v in headers.items() if k.lower() == "x-zevent-signature"), None)
        if not oa_id or not oa_secret or not header:
            return False
        return verify_signature(body=body, header=header, oa_id=str(oa_id), oa_secret=str(oa_secret))

    @staticmethod
    def parse_events(raw: Mapping[str, Any]) -> list[DeliveryEvent]:
        """A stored webhook event: ``user_received_message`` is the ZNS delivery (``message.msg_id``)."""
        if raw.get("event_name") != DELIVERED_EVENT:
            return []
        message = raw.get("message")
        if not isinstance(message, Mapping):
            return []
        provider_id = normalize_provider_id(str(message.get("msg_id") or ""))
        if provider_id is None:
            return []
        return [
            DeliveryEvent(
                type=EventType.DELIVERED,
                provider_id=provider_id,
                occurred_at=_from_millis(message.get("delivery_time") or raw.get("timestamp")),
                status_text=DELIVERED_EVENT,
                raw=dict(raw),
            )
        ]


def zns_phone(address: str) -> str:
    """The ``84…`` form ZNS is sent with: ``+84…``, ``84…`` and a national ``0…`` number are accepted."""
    digits = address.strip().replace(" ", "").removeprefix("+")
    if digits.startswith("0"):
        digits = "84" + digits[1:]
    if not _PHONE.fullmatch(digits):
        raise RecipientRejected(f"{mask_phone(address)} is not a Vietnamese phone number (84…)")
    return digits


def zns_error(answer: Answer, *, phone: str) -> ChannelError:
    """The error for a ZNS answer that is not a success."""
    raw_code = answer.body.get("error")
    code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
    if answer.status == 200 and code is None:  # accepted or not, we cannot tell: never resend blindly
        return OutcomeUnknown("ZNS answered without an error code", detail=answer.text[:200])
    cls = error_class(code, answer.status)
    label = str(code) if code is not None else f"HTTP {answer.status}"
    detail = str(answer.body.get("message") or answer.text[:200] or f"HTTP {answer.status}")
    text = f"ZNS refused the message to {mask_phone('+' + phone)}"
    if issubclass(cls, TransientError):
        return cls(text, code=label, detail=detail, retry_after=retry_after(answer.headers))
    return cls(text, code=label, detail=detail)


def _msg_id(answer: Answer) -> str:
    data = answer.body.get("data")
    value = data.get("msg_id") if isinstance(data, Mapping) else None
    msg_id = normalize_provider_id(str(value)) if value else None
    if msg_id is None:  # accepted, but we cannot name it: the engine holds it rather than guessing
        raise OutcomeUnknown("ZNS accepted the message but returned no msg_id", detail=answer.text[:200])
    return msg_id


def _from_millis(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def signature(*, body: bytes | str, oa_id: str, oa_secret: str, timestamp: str) -> str:
    """``X-ZEvent-Signature``: the SHA-256 hex digest of ``oa_id + body + timestamp + oa_secret``."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    return hashlib.sha256(f"{oa_id}{text}{timestamp}{oa_secret}".encode()).hexdigest()


def verify_signature(
    *, body: bytes | str, header: str, oa_id: str, oa_secret: str, timestamp: str | None = None
) -> bool:
    """Whether a webhook body is the one Zalo signed for this OA. ``timestamp`` defaults to the body's own
    ``timestamp`` field; ``header`` is ``X-ZEvent-Signature``'s value, with or without a ``mac=`` prefix."""
    if timestamp is None:
        try:
            parsed = json.loads(body)
        except ValueError:
            return False
        timestamp = str(parsed.get("timestamp", "")) if isinstance(parsed, dict) else ""
        if not timestamp:
            return False
    try:
        expected = signature(body=body, oa_id=oa_id, oa_secret=oa_secret, timestamp=timestamp)
    except UnicodeDecodeError:
        return False
    given = header.strip().removeprefix("mac=").lower()
    return hmac.compare_digest(expected, given)
