"""One window of a chunk as it travels: the rows claimed for it, what goes on the wire, the send in
progress, and what was recorded before the send returned."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime

from broadcaster.outbox.results import Claimed, WindowOutcome
from channels.base import OutboundMessage, SendResult


@dataclass
class Window:
    """A claimed window: its rows, what goes on the wire, and the send in progress."""

    claimed: dict[int, Claimed]
    outbound: list[OutboundMessage]
    started_at: datetime | None = None
    future: Future[list[SendResult]] | None = None
    # Results the adapter reported (and we recorded) before send() returned, and what recording them did.
    recorded: set[int] = field(default_factory=set)
    early: WindowOutcome = field(default_factory=WindowOutcome)

    def results(self) -> list[SendResult]:
        assert self.future is not None
        return self.future.result()
