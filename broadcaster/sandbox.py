"""Local stand-ins for the city's mail relay and the carrier SMSC, for rehearsals and the demo.

They keep what they receive in a folder: one ``.eml`` per mail under ``mail/``, one JSON line per SMS part
in ``sms/sms.jsonl``, and the SMSC sends delivery receipts back like a carrier would.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from broadcaster.errors import UserError
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _
from broadcaster.settings import Settings

if TYPE_CHECKING:
    from channels.sandbox.peers import RunningPeer, Starter

HOST = "127.0.0.1"


class SandboxUnavailable(RuntimeError):
    pass


class SandboxPortInUse(UserError):
    """Another program listens on a port the sandbox needs."""


@dataclass(frozen=True)
class SandboxPorts:
    smtp: int
    smpp: int
    # The providers whose ``port`` setting points at each server (None: no such provider is configured).
    smtp_provider: str | None = None
    smpp_provider: str | None = None


def ports_from_settings(settings: Settings) -> SandboxPorts:
    """The sandbox listens where the configured providers point (the first SMTP and SMPP provider)."""
    smtp = next((name for name, p in settings.providers.items() if p.type == "smtp"), None)
    smpp = next((name for name, p in settings.providers.items() if p.type == "smpp"), None)
    return SandboxPorts(
        smtp=int(settings.providers[smtp].options().get("port", 2525)) if smtp else 2525,
        smpp=int(settings.providers[smpp].options().get("port", 2775)) if smpp else 2775,
        smtp_provider=smtp,
        smpp_provider=smpp,
    )


def _address_in_use(exc: BaseException) -> bool:
    """The servers report a taken port as an OSError, directly or as the cause of their own error."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.EADDRINUSE:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextlib.contextmanager
def _port_needed(port: int, server: str, option: str, provider: str | None) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        if not _address_in_use(exc):
            raise
        setting = (
            _(
                "set port = PORT under [providers.%(provider)s] in broadcaster.toml "
                "(or BROADCASTER_PROVIDERS__%(env)s__PORT) so that the engine sends there"
            )
            % {"provider": provider, "env": provider.upper()}
            if provider
            else _("point the provider's port setting there")
        )
        raise SandboxPortInUse(
            _(
                "port %(port)s on %(host)s is already in use, so the sandbox %(server)s cannot listen on it "
                "(another sandbox, or a real server, may be running). Stop that program, or use a free port: "
                "`broadcaster sandbox %(option)s PORT`, and %(setting)s"
            )
            % {"port": port, "host": HOST, "server": _(server), "option": option, "setting": setting}
        ) from None


def http_providers(settings: Settings) -> dict[str, tuple[str, dict[str, Any]]]:
    """The configured providers by name: their type and options, for the HTTP peers (push and social)."""
    return {name: (p.type, p.options()) for name, p in settings.providers.items()}


class Sandbox:
    """The SMTP server and the SMSC on threads of this process, and an HTTP peer for each provider in
    ``providers`` whose type has one and whose endpoint is a local ``http://`` URL
    (``channels.sandbox.peers``). Needs the ``sandbox`` extra (aiosmtpd, smpp34, hypercorn)."""

    def __init__(
        self,
        folder: Path,
        *,
        ports: SandboxPorts,
        receipt_delay: float = 0.2,
        providers: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
        host: str = HOST,
    ) -> None:
        try:
            from channels.sandbox.peers import peer_for
            from channels.sandbox.smsc import SandboxSmsc, SmscBehaviour
            from channels.sandbox.smtp import SandboxSmtpServer
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise SandboxUnavailable(
                _(
                    "the sandbox needs the optional extra: pip install 'broadcaster-engine[sandbox]' (%(error)s)"
                )
                % {"error": exc}
            ) from None
        self.folder = folder
        self.ports = ports
        self.mail_folder = folder / "mail"
        self.sms_folder = folder / "sms"
        self.smtp = SandboxSmtpServer(self.mail_folder, host, ports.smtp)
        self.smsc = SandboxSmsc(
            host=host,
            port=ports.smpp,
            folder=self.sms_folder,
            behaviour=SmscBehaviour(receipt_delay=receipt_delay),
        )
        self._peer_starters = {
            name: (starter, options)
            for name, (type_name, options) in (providers or {}).items()
            if (starter := peer_for(type_name, options)) is not None
        }
        self.peers: dict[str, RunningPeer] = {}  # provider name → its running peer
        self._peer_stack = contextlib.ExitStack()

    def start(self) -> Sandbox:
        """Start both servers; a port in use is a ``SandboxPortInUse`` naming the port and the setting."""
        ports = self.ports
        with _port_needed(ports.smtp, N_("SMTP server"), "--smtp-port", ports.smtp_provider):
            self.smtp.start()
        try:
            with _port_needed(ports.smpp, N_("SMSC"), "--smpp-port", ports.smpp_provider):
                self.smsc.start()
        except BaseException:
            self.smtp.stop()
            raise
        try:
            for name, (starter, options) in self._peer_starters.items():
                self.peers[name] = self._start_peer(name, starter, options)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_peer(self, name: str, starter: Starter, options: Mapping[str, Any]) -> RunningPeer:
        try:
            return self._peer_stack.enter_context(starter(options))
        except Exception as exc:
            if not _address_in_use(exc):
                raise
            raise SandboxPortInUse(
                _(
                    "the port of the endpoint of provider %(provider)s is already in use, so its sandbox peer "
                    "cannot listen there: stop that program, or point the provider's endpoint at a free port"
                )
                % {"provider": name}
            ) from None

    def stop(self) -> None:
        self._peer_stack.close()
        self.smsc.stop()
        self.smtp.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
