"""Adapters of one worker process, built lazily from the provider settings and reused across chunks.

Created after fork (never at import), so sockets, threads and event loops belong to the process that uses
them. What an adapter is given follows from its ``capabilities`` alone, never from its type name: an
``inbound`` adapter gets an ``on_inbound_batch`` callback that commits raw records before they are answered,
one that ``reports_health`` an ``on_health`` that records its link in ``provider_health``, one that ``paces``
(when its provider has a ``tps``) a ``pacer`` that takes tokens of the shared bucket per unit it writes, one
that ``stamps`` an ``on_handing``, one that ``connects_in_background`` the gateway's ``bind_in_background``,
and one that is ``timed`` the engine's ``clock``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Sequence
from typing import Any

from broadcaster.settings import Settings
from channels.base import Adapter, Capabilities, LinkHealth
from channels.clock import SYSTEM_CLOCK, Clock
from channels.registry import load_adapter_class

log = logging.getLogger(__name__)

InboundFactory = Callable[[str], Callable[[list[dict[str, Any]]], None]]
PacerFactory = Callable[[str, float], Callable[[int], int]]  # (provider, tps) -> pacer
HealthFactory = Callable[[str], Callable[[LinkHealth], None]]
# Records (committed) that messages are about to be written: called by the adapter just before their bytes go.
# Returns the ids recorded: only those may be written (the others were stopped since their claim).
HandingRecorder = Callable[[Sequence[int]], Collection[int]]


class AdapterPool:
    def __init__(
        self,
        settings: Settings,
        *,
        inbound: InboundFactory | None = None,
        pacer: PacerFactory | None = None,
        health: HealthFactory | None = None,
        handing: HandingRecorder | None = None,
        bind_in_background: bool = False,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        # ``health``: records what an adapter sees of its link. ``bind_in_background``: a gateway's adapter
        # opens even while its provider is down and keeps trying (the dispatcher waits for the bind).
        self.settings = settings
        self.inbound = inbound
        self.pacer = pacer
        self.health = health
        self.handing = handing
        self.bind_in_background = bind_in_background
        self.clock = clock
        self._adapters: dict[str, Adapter] = {}
        self._lock = threading.Lock()

    def get(self, provider: str) -> Adapter:
        with self._lock:
            adapter = self._adapters.get(provider)
            if adapter is None:
                adapter = self._build(provider)
                adapter.open()
                self._adapters[provider] = adapter
            return adapter

    def _build(self, provider: str) -> Adapter:
        config = self.settings.provider(provider)
        cls = load_adapter_class(config.type)
        can: Capabilities = cls.capabilities
        options = config.options()
        if can.inbound and self.inbound is not None:
            options["on_inbound_batch"] = self.inbound(provider)
        if can.reports_health and self.health is not None:
            options["on_health"] = self.health(provider)
        if can.connects_in_background and self.bind_in_background:
            options["bind_in_background"] = True
        if self.paces(provider):
            assert self.pacer is not None and config.tps
            options["pacer"] = self.pacer(provider, config.tps)
        if self.stamps(provider):
            options["on_handing"] = self.handing
        if can.timed:
            options["clock"] = self.clock
        if can.any_channel:
            options.setdefault("channel", config.channel)
        adapter: Adapter = cls(**options)
        return adapter

    def _capabilities(self, provider: str) -> Capabilities:
        capabilities: Capabilities = load_adapter_class(self.settings.provider(provider).type).capabilities
        return capabilities

    def paces(self, provider: str) -> bool:
        """Whether the provider's adapter keeps its rate limit itself, per unit it writes (SMPP: per PDU)."""
        config = self.settings.provider(provider)
        return self._capabilities(provider).paces and bool(config.tps) and self.pacer is not None

    def stamps(self, provider: str) -> bool:
        """Whether the provider's adapter records itself when each message is handed over (else the
        dispatcher stamps a whole window before it sends it)."""
        return self._capabilities(provider).stamps and self.handing is not None

    def discard(self, provider: str) -> None:
        """Drop a provider's adapter (after a configuration error) so the next use reconnects afresh."""
        with self._lock:
            adapter = self._adapters.pop(provider, None)
        if adapter is not None:
            _close_quietly(provider, adapter)

    def close(self) -> None:
        with self._lock:
            adapters, self._adapters = self._adapters, {}
        for name, adapter in adapters.items():
            _close_quietly(name, adapter)


def _close_quietly(name: str, adapter: Adapter) -> None:
    try:
        adapter.close()
    except OSError as exc:  # the peer may already be gone; closing must not hide the real error
        log.warning("closing provider %s: %s", name, exc)
