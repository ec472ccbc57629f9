"""The state one bind shares between its reader and the senders: the link, the written submit_sm waiting for
their answers, the window slots taken, and the answers handed from the reader to each sender."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Protocol

from channels.sms.smpp.client import LockedClient


class SlotHolder(Protocol):
    """A message that keeps its answered parts' window slots until its result is recorded (on_settled)."""

    held_on: list[Bind]


@dataclass(frozen=True, slots=True)
class Reply:
    token: int
    kind: str  # "resp" (submit_sm_resp or generic_nack) or "lost"
    status: int = 0
    provider_id: str | None = None


@dataclass(eq=False)
class Pending:
    """One written submit_sm waiting for its answer; the sender's queue receives the outcome."""

    token: int
    replies: queue.Queue[list[Reply]]
    # Set when the message's result is reported early (on_settled): its answered part keeps the window slot
    # until that result is recorded, so a crash never holds more messages than a window.
    job: SlotHolder | None = None


# Answers of one read, per sender: id(queue) -> (the sender's queue, its answers).
Answers = dict[int, tuple[queue.Queue[list[Reply]], list[Reply]]]


@dataclass(eq=False)
class Bind:
    """One transceiver session and its reader thread."""

    index: int
    client: LockedClient | None = None
    connecting: LockedClient | None = None  # a bind in progress, so close() can interrupt it
    generation: int = 0  # bumped on every (re)connect and loss, so stale writers cannot touch a new link
    bound: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards the fields below and the client
    pending: dict[int, Pending] = field(default_factory=dict)
    buffer: bytearray = field(default_factory=bytearray)
    enquire_sent_at: float | None = None
    thread: threading.Thread | None = None
    # Counters for health checks and tests.
    connects: int = 0
    enquire_links_sent: int = 0
    enquire_links_answered: int = 0
    deliver_sm_received: int = 0
    peak_outstanding: int = 0  # the most submit_sm ever waiting for an answer at once (never above window)
    # Answered parts of messages whose result the engine has not recorded yet (on_settled): they still hold
    # window slots, so written-but-unrecorded messages never exceed the window.
    settling: int = 0

    def outstanding(self) -> int:
        with self.lock:
            return len(self.pending)

    def in_use(self) -> int:
        """Window slots taken: PDUs waiting for an answer, and answered parts not yet recorded."""
        with self.lock:
            return len(self.pending) + self.settling

    def hold(self, item: Pending) -> None:
        """An early-settled part was answered (or lost): its slot is kept until its result is recorded.
        Called with ``lock`` held."""
        if item.job is not None:
            self.settling += 1
            item.job.held_on.append(self)
