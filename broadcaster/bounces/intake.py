"""Storing a mail the listener received, committed before it answers 250 (a failure raises: it answers 451
and the sending MTA retries, so nothing is lost).

A bounce becomes one inbound record per bounce recipient (provider, channel ``email``, the raw mail as text
or base64, envelope and peer), stored by the same ``inbound_batch_handler`` as SMPP receipts and then handed
to the same applier (``apply_pending``), here in this process: bounces are few, and the e-mail adapter's
``parse_events`` reads them (RFC 3464, VERP id first). A mailto opt-out (subject ``unsubscribe-<token>``,
:mod:`broadcaster.unsubscribe`) is stored and withdrawn in one transaction: the record is closed with what
happened, so the tick never reads it as a DSN. A forged token is recorded as refused and still answered 250
(refusing would send a bounce to whoever the forger named: backscatter).
"""

from __future__ import annotations

import base64
import email
import email.policy
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from broadcaster.bounces.routes import Kind, Routes
from broadcaster.clock import Clock
from broadcaster.db.models import InboundRecord
from broadcaster.outbox.inbound import apply_pending, inbound_batch_handler
from broadcaster.unsubscribe_withdrawal import withdraw_by_token

CHANNEL = "email"
REFUSED_NO_TOKEN = "refused: no unsubscribe-<token> subject"  # noqa: S105  an outcome, not a secret
REFUSED_FORGED = "refused: forged or unknown token"

_SUBJECT_TOKEN = re.compile(r"unsubscribe-(\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class ReceivedMail:
    """One SMTP transaction as the listener saw it (only the recipients it accepted)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    peer: str


def raw_fields(content: bytes, key: str) -> dict[str, str]:
    """The mail as JSON can hold it, byte for byte: ``{key: text}`` when it is UTF-8; else read as Latin-1
    (every byte one character) with ``key_encoding``, so the addresses in it stay plain text for a data
    subject's export and erasure (broadcaster.subjects.held searches payloads as text); base64 only for NULs,
    which PostgreSQL's JSON refuses."""
    if b"\x00" in content:
        return {f"{key}_base64": base64.b64encode(content).decode("ascii")}
    try:
        return {key: content.decode("utf-8")}
    except UnicodeDecodeError:
        return {key: content.decode("latin-1"), f"{key}_encoding": "latin-1"}


def token_in_subject(content: bytes) -> str | None:
    """The ``<token>`` of a ``unsubscribe-<token>`` subject (as the mailto link writes it), or None."""
    try:
        subject = str(email.message_from_bytes(content, policy=email.policy.default).get("Subject") or "")
    except (ValueError, TypeError, IndexError):  # a hostile header the parser gives up on
        return None
    match = _SUBJECT_TOKEN.search(subject)
    return match.group(1) if match else None


class Intake:
    """Stores what the listener accepted; ``take`` returns once everything is committed."""

    def __init__(
        self, sessions: sessionmaker[Session], *, routes: Routes, clock: Clock, unsubscribe_secret: str
    ) -> None:
        self.sessions = sessions
        self.routes = routes
        self.clock = clock
        self.unsubscribe_secret = unsubscribe_secret
        self._stores: dict[str, Callable[[list[dict[str, Any]]], None]] = {}

    def take(self, mail: ReceivedMail) -> None:
        bounces: dict[str, list[dict[str, Any]]] = defaultdict(list)
        opt_outs: dict[str, str] = {}  # provider -> the opt-out mailbox it came to
        for rcpt in mail.rcpt_tos:
            route = self.routes.find(rcpt)
            if route is None:  # refused at RCPT already; a route removed since then
                continue
            if route.kind is Kind.UNSUBSCRIBE:
                opt_outs.setdefault(route.provider, rcpt)
            else:
                bounces[route.provider].append(self._payload(mail, Kind.BOUNCE, envelope_to=rcpt))
        for provider, payloads in sorted(bounces.items()):
            self._store_for(provider)(payloads)
        for provider, rcpt in sorted(opt_outs.items()):
            self._unsubscribe(provider, mail, rcpt=rcpt)

    def _store_for(self, provider: str) -> Callable[[list[dict[str, Any]]], None]:
        if provider not in self._stores:
            self._stores[provider] = inbound_batch_handler(
                self.sessions,
                provider=provider,
                channel=CHANNEL,
                clock=self.clock,
                hand_off=lambda: self._apply(provider),
            )
        return self._stores[provider]

    def _apply(self, provider: str) -> None:
        apply_pending(self.sessions, provider=provider, clock=self.clock)

    def _payload(self, mail: ReceivedMail, kind: Kind, *, envelope_to: str) -> dict[str, Any]:
        # "dsn" is the key the e-mail adapter's parse_events reads.
        key = "dsn" if kind is Kind.BOUNCE else "mail"
        return {
            "kind": kind.value,
            **raw_fields(mail.content, key),
            "envelope_from": mail.mail_from,
            "envelope_to": envelope_to,
            "peer": mail.peer,
        }

    def _unsubscribe(self, provider: str, mail: ReceivedMail, *, rcpt: str) -> None:
        now = self.clock.now()
        token = token_in_subject(mail.content)
        with self.sessions.begin() as session:
            outcome = REFUSED_NO_TOKEN
            if token is not None:
                event = withdraw_by_token(session, secret=self.unsubscribe_secret, token=token, at=now)
                outcome = REFUSED_FORGED if event is None else f"withdrawn: consent event {event.id}"
            session.add(
                InboundRecord(
                    provider=provider,
                    channel=CHANNEL,
                    received_at=now,
                    payload=self._payload(mail, Kind.UNSUBSCRIBE, envelope_to=rcpt),
                    processed_at=now,
                    outcome=outcome,
                )
            )
