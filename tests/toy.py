"""A toy adapter that keeps what it is given in a list: a provider type the engine has never heard of.

A provider section names it by import path (``type = "tests.toy:ToyAdapter"``); nothing else registers it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from channels.base import AdapterBase, Capabilities, Channel, DeliveryEvent, OutboundMessage, SendResult


class ToyAdapter(AdapterBase):
    channel: ClassVar[Channel] = Channel.SMS
    capabilities: ClassVar[Capabilities] = Capabilities(window=10)
    sent: ClassVar[list[OutboundMessage]] = []  # every message any instance was given, in order

    def __init__(self, *, prefix: str = "toy") -> None:
        self.prefix = prefix

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        self.sent.extend(messages)
        return [SendResult.sent(m.message_id, f"{self.prefix}-{m.message_id}") for m in messages]

    @staticmethod
    def parse_events(raw: Mapping[str, Any]) -> list[DeliveryEvent]:
        return []
