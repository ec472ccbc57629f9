"""Local stand-ins for the city's mail relay and the carrier SMSC, for rehearsals and the demo.

They keep what they receive in a folder: one ``.eml`` per mail under ``mail/``, one JSON line per SMS part
in ``sms/sms.jsonl``, and the SMSC sends delivery receipts back like a carrier would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from broadcaster.settings import Settings


class SandboxUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class SandboxPorts:
    smtp: int
    smpp: int


def ports_from_settings(settings: Settings) -> SandboxPorts:
    """The sandbox listens where the configured providers point (the first SMTP and SMPP provider)."""
    smtp = next((p for p in settings.providers.values() if p.type == "smtp"), None)
    smpp = next((p for p in settings.providers.values() if p.type == "smpp"), None)
    return SandboxPorts(
        smtp=int(smtp.options().get("port", 2525)) if smtp else 2525,
        smpp=int(smpp.options().get("port", 2775)) if smpp else 2775,
    )


class Sandbox:
    """Both servers on threads of this process. Needs the ``sandbox`` extra (aiosmtpd, smpp34)."""

    def __init__(self, folder: Path, *, ports: SandboxPorts, receipt_delay: float = 0.2) -> None:
        try:
            from channels.sandbox.smsc import SandboxSmsc, SmscBehaviour
            from channels.sandbox.smtp import SandboxSmtpServer
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise SandboxUnavailable(
                f"the sandbox needs the optional extra: pip install 'broadcaster-engine[sandbox]' ({exc})"
            ) from None
        self.folder = folder
        self.mail_folder = folder / "mail"
        self.sms_folder = folder / "sms"
        self.smtp = SandboxSmtpServer(self.mail_folder, "127.0.0.1", ports.smtp)
        self.smsc = SandboxSmsc(
            host="127.0.0.1",
            port=ports.smpp,
            folder=self.sms_folder,
            behaviour=SmscBehaviour(receipt_delay=receipt_delay),
        )

    def start(self) -> Sandbox:
        self.smtp.start()
        try:
            self.smsc.start()
        except BaseException:
            self.smtp.stop()
            raise
        return self

    def stop(self) -> None:
        self.smsc.stop()
        self.smtp.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
