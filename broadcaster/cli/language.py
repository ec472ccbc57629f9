"""The language of one CLI run, and its ``--help`` in that language.

The language is ``[org] language`` of the settings the run uses, else ``LANG`` (``broadcaster.i18n.choose``).
Typer builds the command tree, help texts included, when the module is imported — before anyone knows the
language — so the help texts stay English message ids in the tree and ``translated_help`` swaps in their
translations for the duration of one run (and puts the originals back: the tests run many commands, in both
languages, in one process).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from typer import rich_utils

from broadcaster import i18n
from broadcaster.errors import UserError
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _
from broadcaster.settings import find_config, load_settings

# typer's own texts of a help page (rich_utils reads these module constants when it prints).
_TYPER_TEXTS = {
    "ARGUMENTS_PANEL_TITLE": N_("Arguments"),
    "OPTIONS_PANEL_TITLE": N_("Options"),
    "COMMANDS_PANEL_TITLE": N_("Commands"),
    "ERRORS_PANEL_TITLE": N_("Error"),
    "DEFAULT_STRING": N_("[default: {}]"),
    "REQUIRED_LONG_STRING": N_("[required]"),
    "ABORTED_TEXT": N_("Aborted."),
    "RICH_HELP": N_("Try [blue]'{command_path} {help_option}'[/] for help."),
}
# The help option click adds to every command.
N_("Show this message and exit.")


def _usage_formatter(base: type[Any]) -> type[Any]:
    """click's help formatter, whose usage line ("Usage: broadcaster users add …") begins in the current
    language: click writes that prefix in English, on help pages and above usage errors alike."""

    class UsageFormatter(base):  # type: ignore[misc]
        def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
            super().write_usage(prog, args, _("Usage:") + " " if prefix is None else prefix)

    return UsageFormatter


def cli_language(config: Path | None) -> str:
    """``[org] language`` of the settings at ``config`` (or the usual place), else from ``LANG``. A run
    without a working directory (``init``, ``--help`` anywhere) or with broken settings still gets a
    language: the settings' own error is reported later, by the command that needs them."""
    if not find_config(config).is_file():
        return i18n.choose(None)
    try:
        return i18n.choose(load_settings(config).org.language)
    except (UserError, ValueError, OSError):
        return i18n.choose(None)


def config_argument(args: Sequence[str]) -> Path | None:
    """``--config``/``-c`` as written on the command line, read before click parses it: the root help is
    printed while parsing, before the root callback knows the settings."""
    for index, arg in enumerate(args):
        if arg.startswith("--config="):
            return Path(arg.split("=", 1)[1])
        if arg in ("--config", "-c") and index + 1 < len(args):
            return Path(args[index + 1])
        if arg == "--":
            break
    return None


def _translate(text: Any) -> Any:
    return _(text) if isinstance(text, str) and text else text


def _commands(root: Any) -> Iterator[Any]:
    yield root
    for command in getattr(root, "commands", {}).values():
        yield from _commands(command)


@contextmanager
def translated_help(root: Any) -> Iterator[None]:
    """The help texts of ``root``, its sub-commands and their parameters, and typer's panel titles, in the
    current language until the block ends."""
    from typer.core import TyperGroup

    saved: list[tuple[object, str, object]] = []

    def swap(owner: object, name: str, value: object) -> None:
        saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    try:
        for name, text in _TYPER_TEXTS.items():
            if hasattr(rich_utils, name):
                swap(rich_utils, name, _(text))
        context_class = TyperGroup.context_class
        swap(context_class, "formatter_class", _usage_formatter(context_class.formatter_class))
        context = context_class(root)
        for command in _commands(root):
            for attribute in ("help", "short_help", "epilog"):
                swap(command, attribute, _translate(getattr(command, attribute, None)))
            help_option = command.get_help_option(context)
            params = [*command.params, *([help_option] if help_option is not None else [])]
            for param in params:
                if getattr(param, "help", None):
                    swap(param, "help", _translate(param.help))
        yield
    finally:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)
