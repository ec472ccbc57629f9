"""The adapter protocol and the value types that cross the boundary between the engine and an adapter.

An adapter is synchronous at the boundary: the engine hands it one *window* of messages (at most
``capabilities.window``) and gets one ``SendResult`` per message back, in the same order. Whatever
concurrency the protocol allows (an SMPP window, several SMTP connections) lives inside the adapter. An
adapter whose ``capabilities.overlap`` is above 1 must accept that many ``send()`` calls at once, from
different threads.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

from channels.errors import ChannelError


class Channel(enum.StrEnum):
    SMS = "sms"
    EMAIL = "email"
    PUSH = "push"
    SOCIAL = "social"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the engine may assume about an adapter."""

    window: int = 1  # messages handed to one send() call
    receipts: bool = False  # the provider reports delivery asynchronously
    max_length: int | None = None  # characters of body, if the provider caps it
    # send() calls the engine may run at once on one adapter. An adapter that keeps its own window across
    # calls (SMPP) says 2, so its window never drains between two calls; the others take one at a time.
    overlap: int = 1
    # send() takes ``on_settled`` and reports each message's result through it as soon as it is known, before
    # the call returns, so the engine records it at once: after a crash only what is really in flight is held.
    settles: bool = False
    # The engine wires its callbacks from these flags alone; it never asks which protocol an adapter speaks.
    # Takes ``on_inbound_batch`` and hands it what the provider sends back (receipts, replies) as raw
    # JSON-able records, which the engine stores before the adapter answers and later gives to parse_events.
    inbound: bool = False
    # Its parse_events reads the records its channel's provider sends back (receipts, replies, bounces),
    # whether they came through ``on_inbound_batch`` or another listener (e-mail bounces).
    parses_inbound: bool = False
    # Takes a ``pacer`` and asks it for rate-limit tokens per unit it writes (SMPP: per submit_sm); else the
    # engine takes a window's tokens before it calls send().
    paces: bool = False
    # Takes ``on_health`` and reports its link to the provider as it changes.
    reports_health: bool = False
    # Takes ``on_handing`` and says, message by message, when its bytes are about to go; else the engine
    # records a whole window as handed over before it calls send().
    stamps: bool = False
    # Takes ``clock`` (``channels.clock.Clock``) and reads its deadlines and back-offs from it, so the engine's
    # clock (and a test's) is the adapter's too.
    timed: bool = False
    # Takes ``bind_in_background``: opens even while the provider is down and keeps connecting (``Reconnecting``).
    connects_in_background: bool = False
    # Serves whichever channel its provider settings name (takes ``channel``): the local file and console.
    any_channel: bool = False
    # Owns long-lived sessions to its provider (SMPP binds): each provider account gets one gateway worker
    # process of its own, which keeps them up for the life of the process.
    gateway: bool = False
    # What an officer calls the provider's server, in notes such as "SMSC unreachable since 13:02".
    peer: str = "provider"
    # The contact field a message is addressed to when the channel's own rule does not say (a channel with
    # several adapter kinds, e.g. social: ZNS messages go to the contact's "phone"). None: the channel's rule.
    address_field: str | None = None
    # The campaign names the targets (Facebook Pages): one message per target and run, to no contact. The
    # name of the provider setting whose keys are the targets it can post to (Facebook: "page_tokens").
    targets_setting: str | None = None
    # Each message is a template approved at the provider, named by the campaign (ZNS ``template_id``). The
    # name of the provider setting that lists the approved ids (ZNS: "approved_templates").
    templates_setting: str | None = None
    # The provider posts its events (deliveries) to the engine's webhook route, ``POST /webhooks/{type}/{name}``;
    # the class's ``verify_inbound(headers, body, options)`` (a staticmethod) says whether a body is genuine.
    webhook: bool = False


def normalize_provider_id(value: str | bytes | None) -> str | None:
    """The stored and compared form of a provider id: as given, NULs and blanks stripped, lower-cased.

    Adapters report ids in this form (``SendResult.provider_ids``, ``DeliveryEvent.provider_id``)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    text = value.replace("\x00", "").strip().lower()
    return text or None


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One rendered message, ready for the wire. ``message_id`` is the outbox row id."""

    message_id: int
    address: str  # E.164 for SMS, e-mail address as stored (local part case kept, RFC 5321 §2.4), device token, page id
    body: str
    subject: str | None = None
    html: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # SMS: encoding chosen by the planner ("gsm7" or "ucs2"); the adapter splits with our splitter.
    encoding: str | None = None
    campaign_key: str | None = None  # groups messages that share a MIME skeleton (campaign version)
    allow_unsubscribe: bool = False  # List-Unsubscribe headers are added only when opting out is allowed
    options: Mapping[str, Any] = field(default_factory=dict)
    # SMS sent again after the SMSC accepted some of its parts: the concatenation reference those parts
    # carry and the parts accepted (number -> provider id). Only the other parts go out, under that reference,
    # so the handset joins them to the parts it has (TS 23.040 §9.2.3.24.1).
    sms_reference: int | None = None
    accepted_parts: Mapping[int, str] = field(default_factory=dict)


class SendOutcome(enum.StrEnum):
    SENT = "sent"  # the provider accepted it (e-mail: relayed, not delivered)
    FAILED = "failed"  # see ``error`` for the class


@dataclass(frozen=True, slots=True)
class SendResult:
    """What happened to one message of a window. ``error`` is set exactly when ``outcome`` is FAILED."""

    message_id: int
    outcome: SendOutcome
    # SMS: one id per part, in part order, normalised (``normalize_provider_id``); e-mail: the Message-ID.
    provider_ids: tuple[str, ...] = ()
    error: ChannelError | None = None
    # SMS that failed part-way: the parts the SMSC accepted (number -> provider id) and their concatenation
    # reference, so that a retry sends only the others under the same reference.
    accepted_parts: Mapping[int, str] = field(default_factory=dict)
    sms_reference: int | None = None

    @classmethod
    def sent(cls, message_id: int, *provider_ids: str) -> SendResult:
        return cls(message_id=message_id, outcome=SendOutcome.SENT, provider_ids=tuple(provider_ids))

    @classmethod
    def failed(
        cls,
        message_id: int,
        error: ChannelError,
        *,
        accepted_parts: Mapping[int, str] | None = None,
        sms_reference: int | None = None,
    ) -> SendResult:
        return cls(
            message_id=message_id,
            outcome=SendOutcome.FAILED,
            error=error,
            accepted_parts=dict(accepted_parts or {}),
            sms_reference=sms_reference,
        )


class EventType(enum.StrEnum):
    """The normalised delivery vocabulary (after anymail's EventType, extended with SMS receipt states)."""

    DELIVERED = "delivered"  # SMPP DELIVRD, DSN Action: delivered
    FAILED = "failed"  # SMPP UNDELIV / REJECTD / DELETED, DSN Action: failed 5.x.x
    EXPIRED = "expired"  # SMPP EXPIRED, DSN delayed past its limit
    ACCEPTED = "accepted"  # intermediate: SMPP ACCEPTD / ENROUTE, DSN relayed
    UNKNOWN = "unknown"  # SMPP UNKNOWN or a receipt we could not read
    INBOUND = "inbound"  # a mobile-originated message or reply


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """One normalised fact from the provider about one provider id (one SMS part, one mail)."""

    type: EventType
    provider_id: str | None  # normalised id the event refers to (None for inbound)
    occurred_at: datetime | None = None
    status_text: str | None = None  # the provider's own word, e.g. "DELIVRD", "5.1.1"
    error_code: str | None = None
    sender: str | None = None  # inbound: who wrote
    recipient: str | None = None  # inbound: to which number / address
    text: str | None = None  # inbound: what they wrote
    raw: Mapping[str, Any] = field(default_factory=dict)
    # The outbox id, when the provider echoed it back (e-mail: the VERP return path): matched to the message
    # itself. Otherwise ``provider_id`` is matched to a stored part under any of ``provider_id_forms`` (other
    # spellings of the same id, e.g. hex and decimal; the exact one wins).
    outbox_id: int | None = None
    provider_id_forms: frozenset[str] = frozenset()
    # The failure is the address's: the number does not exist (an SMPP receipt's error code), the mailbox is
    # unknown or disabled (a DSN's 5.1.1). Decided by the adapter's parser; the engine suppresses the address.
    address_invalid: bool = False


@runtime_checkable
class Adapter(Protocol):
    """What every channel adapter provides. ``send`` never raises for a per-message problem."""

    channel: ClassVar[Channel]
    capabilities: ClassVar[Capabilities]

    def open(self) -> None: ...

    def close(self) -> None: ...

    def send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]: ...

    # A classmethod or staticmethod in every adapter: the engine parses stored records without a connection.
    def parse_events(self, raw: Mapping[str, Any]) -> list[DeliveryEvent]: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class LinkHealth:
    """What an adapter last saw of its provider's link, reported as it changes (``on_health``)."""

    reachable: bool
    since: datetime  # when it became (un)reachable
    detail: str  # host:port and the last error, or where it is bound
    retry_at: datetime | None = None  # while unreachable: the next connection attempt


@runtime_checkable
class Reconnecting(Protocol):
    """An adapter that keeps its own connection up (SMPP binds): the engine waits for it instead of
    claiming messages that could not be written."""

    def wait_bound(self, timeout: float, *, count: int = 1) -> bool: ...


class AdapterBase:
    """Context-manager plumbing shared by the concrete adapters."""

    def open(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
