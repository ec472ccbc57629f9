"""One window of a chunk as it travels: the rows claimed for it, what goes on the wire, the send in
progress, and what was recorded before the send returned."""

from __future__ import annotations

from collections.abc import Collection
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

    def keep_only(self, ids: Collection[int]) -> None:
        """Drop the rows not in ``ids`` (stopped since the claim): they are neither written nor recorded."""
        keep = set(ids)
        self.claimed = {i: c for i, c in self.claimed.items() if i in keep}
        self.outbound = [m for m in self.outbound if m.message_id in keep]

    def results(self) -> list[SendResult]:
        assert self.future is not None
        return self.future.result()
