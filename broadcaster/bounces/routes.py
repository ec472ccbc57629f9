"""Which recipients the bounce listener takes, and for which e-mail provider: its VERP bounce addresses
(``bounce`` or ``bounce+m{id}`` at its ``bounce_domain``) and its ``unsubscribe_mailto`` mailbox. Any other
recipient is refused at RCPT (550), so the listener is never an open relay."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from broadcaster.settings import Settings

DEFAULT_BOUNCE_LOCAL = "bounce"  # channels.email.smtp.SmtpAdapter's default


class Kind(StrEnum):
    BOUNCE = "bounce"
    UNSUBSCRIBE = "unsubscribe"


@dataclass(frozen=True)
class Route:
    provider: str
    kind: Kind


@dataclass(frozen=True)
class _Mailbox:
    provider: str
    kind: Kind
    local: str
    domain: str


class Routes:
    """The mailboxes of every e-mail provider in the settings (compared case-insensitively)."""

    def __init__(self, mailboxes: list[_Mailbox]) -> None:
        self._mailboxes = mailboxes

    @classmethod
    def from_settings(cls, settings: Settings) -> Routes:
        mailboxes: list[_Mailbox] = []
        for name, provider in sorted(settings.providers.items()):
            if provider.channel != "email":
                continue
            options = provider.options()
            domain = str(options.get("bounce_domain") or "").strip().lower()
            if domain:
                local = str(options.get("bounce_local") or DEFAULT_BOUNCE_LOCAL).strip().lower()
                mailboxes.append(_Mailbox(name, Kind.BOUNCE, local, domain))
            mailto = str(options.get("unsubscribe_mailto") or "").strip().lower()
            if "@" in mailto:
                local, _, domain = mailto.rpartition("@")
                mailboxes.append(_Mailbox(name, Kind.UNSUBSCRIBE, local, domain))
        return cls(mailboxes)

    def __bool__(self) -> bool:
        return bool(self._mailboxes)

    def describe(self) -> list[str]:
        """``bounce+*@domain (mail)`` lines for the start-up message."""
        return [
            f"{m.local}+*@{m.domain} ({m.provider})"
            if m.kind is Kind.BOUNCE
            else f"{m.local}@{m.domain} ({m.provider}, hủy đăng ký)"
            for m in self._mailboxes
        ]

    def find(self, address: str) -> Route | None:
        """The route of one RCPT TO address, or None when it is not ours."""
        local, at, domain = address.strip().strip("<>").lower().rpartition("@")
        if not at or not local:
            return None
        # The opt-out mailbox first: it may sit under the bounce domain with a name like a VERP address.
        ordered = sorted(self._mailboxes, key=lambda m: m.kind is not Kind.UNSUBSCRIBE)
        for mailbox in ordered:
            if domain != mailbox.domain:
                continue
            if local == mailbox.local or (
                mailbox.kind is Kind.BOUNCE and local.startswith(mailbox.local + "+")
            ):
                return Route(mailbox.provider, mailbox.kind)
        return None
