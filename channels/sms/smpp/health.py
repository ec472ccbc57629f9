"""Telling the engine when the SMSC becomes unreachable (since when, why, the next attempt) and reachable again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from channels.base import LinkHealth
from channels.errors import ChannelError

log = logging.getLogger(__name__)

HealthHandler = Callable[[LinkHealth], None]


class HealthReporter:
    """Reports the link of all binds as one: down when no bind is bound and an attempt failed, up once."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        system_id: str,
        on_health: HealthHandler | None,
        bound_count: Callable[[], int],
        closing: threading.Event,
    ) -> None:
        self.host = host
        self.port = port
        self.system_id = system_id
        self.on_health = on_health
        self._bound_count = bound_count
        self._closing = closing
        self._down_since: datetime | None = None
        self._reported_up = False
        self._health_lock = threading.Lock()

    def report_down(self, error: ChannelError, *, retry_in: float) -> None:
        """No session is bound and a connection attempt failed: tell the engine (since when, why, next try)."""
        if self.on_health is None or self._bound_count() > 0 or self._closing.is_set():
            return
        now = datetime.now(UTC)
        with self._health_lock:
            self._down_since = self._down_since or now
            self._reported_up = False
            since = self._down_since
        reason = error.detail or str(error)
        self._tell_health(
            LinkHealth(
                reachable=False,
                since=since,
                detail=f"{self.host}:{self.port}: {reason}",
                retry_at=datetime.fromtimestamp(now.timestamp() + retry_in, UTC),
            )
        )

    def report_up(self) -> None:
        if self.on_health is None:
            return
        with self._health_lock:
            if self._reported_up:
                return  # another bind of a link already reported up
            self._down_since, self._reported_up = None, True
        self._tell_health(
            LinkHealth(
                reachable=True,
                since=datetime.now(UTC),
                detail=f"bound to {self.host}:{self.port} as {self.system_id}",
            )
        )

    def _tell_health(self, health: LinkHealth) -> None:
        assert self.on_health is not None
        try:
            self.on_health(health)
        except Exception:  # a health report must never stop a reader (it is what keeps the link up)
            log.exception("could not record the health of %s:%d", self.host, self.port)
