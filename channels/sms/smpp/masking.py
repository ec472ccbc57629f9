"""What the adapter's log lines may show of a phone number (docs/style.md, personal data)."""

from __future__ import annotations


def mask_address(address: str | None) -> str:
    """A phone number for logs: everything but the last 3 digits hidden (docs/style.md, personal data)."""
    if not address:
        return "-"
    return "*" * max(len(address) - 3, 0) + address[-3:]
