"""The inbound SMTP listener (aiosmtpd, on a thread of its own) for the bounce domain and the mailto opt-out
address: it accepts only those recipients (550 for others), refuses mails over the size limit (552), and
answers 250 only once :class:`~broadcaster.bounces.intake.Intake` committed the mail (451 when it could not:
the sending MTA retries). The bounce domain's MX must reach it (README, "Bounces")."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from broadcaster.bounces.intake import Intake, ReceivedMail
from broadcaster.bounces.routes import Routes
from broadcaster.context import AppContext
from channels.masking import mask_email

log = logging.getLogger(__name__)

NOT_OURS = "550 5.1.1 No such mailbox here"
STORED = "250 2.0.0 OK: stored"
NOT_STORED = "451 4.3.0 Could not store the message, try again later"


class _Handler:
    def __init__(self, routes: Routes, intake: Intake, executor: ThreadPoolExecutor) -> None:
        self.routes = routes
        self.intake = intake
        self.executor = executor

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.routes.find(address) is None:
            log.info("refused mail to %s: not a bounce or opt-out address", mask_email(address))
            return NOT_OURS
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        peer = session.peer if isinstance(session.peer, tuple) else (str(session.peer), "")
        mail = ReceivedMail(
            mail_from="" if envelope.mail_from in (None, "<>") else envelope.mail_from,  # "": null sender
            rcpt_tos=tuple(envelope.rcpt_tos),
            content=content if isinstance(content, bytes) else content.encode("utf-8", "surrogateescape"),
            peer=":".join(str(part) for part in peer[:2]),
        )
        try:
            # The database work runs on one thread of its own: the loop keeps talking SMTP meanwhile.
            await asyncio.get_running_loop().run_in_executor(self.executor, self.intake.take, mail)
        except Exception:
            log.exception("could not store a mail from %s; answered 451", mail.peer)
            return NOT_STORED
        return STORED


class BounceListener:
    """The listener on ``host:port``; ``start()``/``stop()`` or use it as a context manager."""

    def __init__(
        self, intake: Intake, *, routes: Routes, host: str, port: int, max_message_bytes: int
    ) -> None:
        self.host = host
        self.port = port
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bounces")
        self._handler = _Handler(routes, intake, self._executor)
        self._max_message_bytes = max_message_bytes
        self._controller: Controller | None = None

    def start(self) -> Self:
        # data_size_limit: aiosmtpd advertises SIZE and answers 552 to a bigger mail (RFC 1870).
        kwargs: dict[str, Any] = {"data_size_limit": self._max_message_bytes}
        controller = Controller(self._handler, hostname=self.host, port=self.port, **kwargs)
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
        self._executor.shutdown(wait=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def listener_for(context: AppContext, *, host: str | None = None, port: int | None = None) -> BounceListener:
    """The listener the settings describe (``[bounces]``, the e-mail providers' mailboxes)."""
    settings = context.settings
    routes = Routes.from_settings(settings)
    intake = Intake(
        context.sessions,
        routes=routes,
        clock=context.clock,
        unsubscribe_secret=settings.security.unsubscribe_secret,
    )
    return BounceListener(
        intake,
        routes=routes,
        host=host or settings.bounces.host,
        port=port or settings.bounces.port,
        max_message_bytes=settings.bounces.max_message_bytes,
    )
