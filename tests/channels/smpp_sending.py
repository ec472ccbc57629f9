"""What the SmppAdapter tests share: a Vietnamese text long enough for parts, messages, an inbox, the engine's
way of handing windows to the adapter."""

from __future__ import annotations

import threading
from typing import Any

from channels.base import OutboundMessage
from channels.sms.smpp import SmppAdapter

VIETNAMESE = (
    "Thông báo của UBND thành phố Đà Nẵng: từ ngày 15/01, người dân các quận Hải Châu, Thanh Khê, Sơn Trà "
    "vui lòng không đổ rác ra đường trong thời gian mưa lớn. Mọi thắc mắc xin liên hệ đường dây nóng 1022. "
    "Trân trọng cảm ơn quý vị đã hợp tác! 🌧️"
)


class Inbox:
    """An on_inbound that keeps every record and lets a test wait for a count."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.cond = threading.Condition()

    def __call__(self, record: dict[str, Any]) -> None:
        with self.cond:
            self.records.append(record)
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.records) >= count, timeout)


def message(n: int, body: str = "Xin chào", address: str | None = None) -> OutboundMessage:
    return OutboundMessage(message_id=n, address=address or f"+8490{n:07d}", body=body)


def send_all(adapter: SmppAdapter, messages: list[OutboundMessage]) -> list[Any]:
    """Hand the adapter windows of capabilities.window messages, as the engine does."""
    window = adapter.capabilities.window
    results: list[Any] = []
    for start in range(0, len(messages), window):
        results.extend(adapter.send(messages[start : start + window]))
    return results
