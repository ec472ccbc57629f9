"""The engine finds the push adapters through the registry alone: nothing under ``broadcaster/`` imports
``channels.push`` or names FCM or APNs (docs/adding-a-channel.md, "The engine never names a protocol")."""

from __future__ import annotations

import re
from pathlib import Path

from channels import registry
from channels.base import Channel

ENGINE = Path(__file__).resolve().parents[2] / "broadcaster"
NAMES = re.compile(r"channels\.push|\bfcm\b|\bapns\b|firebase", re.IGNORECASE)


def test_no_engine_module_names_the_push_protocols() -> None:
    sources = sorted(ENGINE.rglob("*.py"))
    assert sources, f"no engine modules under {ENGINE}"
    naming = [
        f"{path.relative_to(ENGINE.parent)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if NAMES.search(line)
    ]
    assert naming == []


def test_the_registry_is_how_the_engine_finds_them() -> None:
    for type_name in ("fcm", "apns"):
        target, channel = registry.ADAPTERS[type_name]
        assert target.startswith("channels.push.")
        assert channel == Channel.PUSH
        assert registry.load_adapter_class(type_name).channel == Channel.PUSH
