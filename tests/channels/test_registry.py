"""The registry: provider types by name or by import path, and stored records parsed from the class alone."""

from __future__ import annotations

import pytest

from channels import registry
from channels.base import EventType
from channels.file import FileAdapter


def test_a_type_may_be_an_import_path() -> None:
    registry.check_type("channels.file:FileAdapter")
    assert registry.load_adapter_class("channels.file:FileAdapter") is FileAdapter


@pytest.mark.parametrize(
    ("type_name", "message"),
    [
        ("channels.file:NoSuchAdapter", r"'channels.file:NoSuchAdapter' cannot be imported"),
        ("channels.no_such_module:Adapter", r"'channels.no_such_module:Adapter' cannot be imported"),
        ("smtpp", r"unknown provider type 'smtpp'.*Did you mean 'smtp'"),
    ],
)
def test_unknown_types_are_refused_with_a_reason(type_name: str, message: str) -> None:
    with pytest.raises(registry.UnknownProviderType, match=message):
        registry.check_type(type_name)


def test_each_channel_has_one_reader_of_its_inbound_records() -> None:
    assert registry.inbound_type("sms") == "smpp"
    assert registry.inbound_type("email") == "smtp"
    with pytest.raises(ValueError, match="no parser for inbound records of channel 'push'"):
        registry.inbound_type("push")


def test_records_parse_without_an_adapter_instance() -> None:
    mo = {"command": "deliver_sm", "esm_class": 0, "data_coding": 0, "short_message_hex": "48454c50"}
    [event] = registry.parse_events("smpp", mo)
    assert (event.type, event.text) == (EventType.INBOUND, "HELP")
    assert registry.parse_events("smtp", {"dsn": "not a report"}) == []
    assert registry.parse_events("file", {}) == []
