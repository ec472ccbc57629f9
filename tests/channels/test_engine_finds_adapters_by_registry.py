"""Adding the push and social adapters changed no engine module: nothing under ``broadcaster/`` imports
``channels.push`` or ``channels.social``, and no engine code branches on their provider types; the engine
finds them through ``channels/registry.py`` alone and wires them from their capabilities
(docs/adding-a-channel.md). The engine may still *say* what a push service accepts (a token's form, a
payload's size) in its comments and texts: those are facts of the channel, not of one adapter."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from channels import registry
from channels.base import Channel

ENGINE = Path(__file__).resolve().parents[2] / "broadcaster"
PACKAGES = ("channels.push", "channels.social")
TYPES = {"fcm": Channel.PUSH, "apns": Channel.PUSH, "facebook": Channel.SOCIAL, "zalo": Channel.SOCIAL}


def _modules() -> list[tuple[Path, ast.Module]]:
    sources = sorted(ENGINE.rglob("*.py"))
    assert sources, f"no engine modules under {ENGINE}"
    return [(path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))) for path in sources]


def test_no_engine_module_imports_the_push_or_social_adapters() -> None:
    found = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            found += [
                f"{path.relative_to(ENGINE.parent)}: {name}" for name in names if name.startswith(PACKAGES)
            ]
    assert found == []


def test_no_engine_code_branches_on_their_provider_types() -> None:
    """A string constant naming one of their types (``if type == "fcm"``) would make the engine know it."""
    found = [
        f"{path.relative_to(ENGINE.parent)}:{node.lineno}: {node.value!r}"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.lower() in TYPES
    ]
    assert found == []


@pytest.mark.parametrize(("type_name", "channel"), sorted(TYPES.items()))
def test_the_registry_is_how_the_engine_finds_them(type_name: str, channel: Channel) -> None:
    target, registered = registry.ADAPTERS[type_name]
    assert target.startswith(PACKAGES)
    assert registered == channel
    assert registry.load_adapter_class(type_name).channel == channel
