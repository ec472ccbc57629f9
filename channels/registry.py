"""Provider ``type`` → adapter class, imported only when used (after kombu's transport aliases).

Optional dependencies of an adapter therefore cost nothing until a provider of that type is configured. A type
may also be written as ``"package.module:Class"``: an adapter kept outside this package is used without a line
here. Stored inbound records are parsed here too, by the adapter class that wrote them, with no connection.
"""

from __future__ import annotations

import difflib
import functools
import importlib
from collections.abc import Mapping
from typing import Any

from channels.base import Channel, DeliveryEvent

# type name → ("module:Class", channel)
ADAPTERS: Mapping[str, tuple[str, Channel]] = {
    "smpp": ("channels.sms.smpp:SmppAdapter", Channel.SMS),
    "smtp": ("channels.email.smtp:SmtpAdapter", Channel.EMAIL),
    "file": ("channels.file:FileAdapter", Channel.SMS),  # channel is taken from the provider settings
    "console": ("channels.file:ConsoleAdapter", Channel.SMS),
    "facebook": ("channels.social.facebook:FacebookPageAdapter", Channel.SOCIAL),
    "zalo": ("channels.social.zalo:ZaloZnsAdapter", Channel.SOCIAL),
}


class UnknownProviderType(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def known_types() -> list[str]:
    return sorted(ADAPTERS)


def _is_import_path(type_name: str) -> bool:
    module_name, colon, class_name = type_name.partition(":")
    return bool(colon and module_name and class_name)


def check_type(type_name: str) -> None:
    """Raise ``UnknownProviderType`` with the nearest known names when ``type_name`` is not registered."""
    if type_name in ADAPTERS:
        return
    if _is_import_path(type_name):
        try:
            load_adapter_class(type_name)
        except (ImportError, AttributeError) as exc:
            raise UnknownProviderType(f"provider type {type_name!r} cannot be imported: {exc}") from None
        return
    close = difflib.get_close_matches(type_name, ADAPTERS, n=2)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownProviderType(
        f"unknown provider type {type_name!r}; known types: {', '.join(known_types())}.{hint}"
    )


@functools.cache
def load_adapter_class(type_name: str) -> Any:
    if type_name in ADAPTERS:
        target, _channel = ADAPTERS[type_name]
    elif _is_import_path(type_name):
        target = type_name
    else:
        check_type(type_name)  # raises
        raise AssertionError(type_name)  # pragma: no cover - check_type raised
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def parse_events(type_name: str, raw: Mapping[str, Any]) -> list[DeliveryEvent]:
    """The events in one stored inbound record, read by the adapter class of ``type_name`` (no instance)."""
    events: list[DeliveryEvent] = load_adapter_class(type_name).parse_events(raw)
    return events


@functools.cache
def inbound_type(channel: str) -> str:
    """The registered type whose adapter reads the inbound records stored for ``channel``.

    Stored records name their provider and channel, not the provider's type (a provider may since have left
    the settings), so the channel finds the one adapter that reads its records (``capabilities.parses_inbound``:
    SMPP receipts and replies, e-mail DSNs). ValueError when none does, or when two would."""
    readers = [
        type_name
        for type_name, (_target, registered) in ADAPTERS.items()
        if registered == channel and load_adapter_class(type_name).capabilities.parses_inbound
    ]
    if not readers:
        raise ValueError(f"no parser for inbound records of channel {channel!r}")
    if len(readers) > 1:
        raise ValueError(f"inbound records of channel {channel!r} have two parsers: {', '.join(readers)}")
    return readers[0]
