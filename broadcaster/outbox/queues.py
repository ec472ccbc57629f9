"""Queue names and the enqueue interface: queues carry only ids (chunks to send, runs to plan, providers whose
stored receipts and replies are to be applied)."""

from __future__ import annotations

from typing import Protocol

PLAN_QUEUE = "plan"


def send_queue(channel: str, provider: str, *, urgent: bool = False) -> str:
    """``send.<channel>.<provider>`` (+ ``.urgent``): one consumer family per provider account."""
    name = f"send.{channel}.{provider}"
    return f"{name}.urgent" if urgent else name


def inbound_queue(provider: str) -> str:
    """``inbound.<provider>``: applying a provider's stored receipts and replies never waits behind sends (a
    receipt queued on ``plan`` waited behind e-mail chunks; docs/deployment.md, "Queues")."""
    return f"inbound.{provider}"


class Enqueuer(Protocol):
    def plan_run(self, run_id: int) -> None: ...

    def dispatch_chunk(self, chunk_id: int, *, queue: str) -> None: ...

    def apply_inbound(self, provider: str) -> None: ...


class RecordingEnqueuer:
    """Keeps what would have been enqueued; the caller decides when to run it (used by the tick's tests)."""

    def __init__(self) -> None:
        self.runs: list[int] = []
        self.chunks: list[tuple[int, str]] = []
        self.inbound: list[str] = []

    def plan_run(self, run_id: int) -> None:
        self.runs.append(run_id)

    def dispatch_chunk(self, chunk_id: int, *, queue: str) -> None:
        self.chunks.append((chunk_id, queue))

    def apply_inbound(self, provider: str) -> None:
        self.inbound.append(provider)
