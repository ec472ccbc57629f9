"""Provider ``type`` → adapter class, imported only when used (after kombu's transport aliases).

Optional dependencies of an adapter therefore cost nothing until a provider of that type is configured.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from typing import Any

from channels.base import Channel

# type name → ("module:Class", channel)
ADAPTERS: Mapping[str, tuple[str, Channel]] = {
    "smpp": ("channels.sms.smpp:SmppAdapter", Channel.SMS),
    "smtp": ("channels.email.smtp:SmtpAdapter", Channel.EMAIL),
    "file": ("channels.file:FileAdapter", Channel.SMS),  # channel is taken from the provider settings
    "console": ("channels.file:ConsoleAdapter", Channel.SMS),
}


class UnknownProviderType(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def known_types() -> list[str]:
    return sorted(ADAPTERS)


def check_type(type_name: str) -> None:
    """Raise ``UnknownProviderType`` with the nearest known names when ``type_name`` is not registered."""
    if type_name in ADAPTERS:
        return
    close = difflib.get_close_matches(type_name, ADAPTERS, n=2)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownProviderType(
        f"unknown provider type {type_name!r}; known types: {', '.join(known_types())}.{hint}"
    )


def load_adapter_class(type_name: str) -> Any:
    check_type(type_name)
    target, _channel = ADAPTERS[type_name]
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
