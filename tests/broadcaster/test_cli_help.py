"""Every command of the ``broadcaster`` app, however many are added later: help texts without raw double
backticks (typer prints them as they are), and a help text on every option and argument."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer

from broadcaster.cli import app


def commands(command: Any, path: tuple[str, ...] = ("broadcaster",)) -> Iterator[tuple[str, Any]]:
    """(the command line, the click command) for the app and every command and sub-command under it."""
    yield " ".join(path), command
    for name, sub in sorted(getattr(command, "commands", {}).items()):  # typer vendors click: duck-typed
        yield from commands(sub, (*path, name))


def test_the_walk_reaches_the_nested_commands() -> None:
    names = {line for line, _command in commands(typer.main.get_command(app))}
    assert {"broadcaster contacts import", "broadcaster campaigns approve", "broadcaster send"} <= names


def test_help_texts_have_no_raw_double_backticks() -> None:
    offending = []
    for line, command in commands(typer.main.get_command(app)):
        texts = [command.help, command.short_help, *(getattr(p, "help", None) for p in command.params)]
        offending += [f"{line}: {text!r}" for text in texts if text and "``" in text]
    assert offending == []


def test_every_option_and_argument_has_help() -> None:
    missing = [
        f"{line} {param.name}"
        for line, command in commands(typer.main.get_command(app))
        for param in command.params
        if not (getattr(param, "help", None) or "").strip()
    ]
    assert missing == []
