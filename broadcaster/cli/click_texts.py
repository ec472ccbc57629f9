"""click's own usage errors ("No such option", "Missing argument"…) in the language of the run.

The click that typer vendors writes these as plain English f-strings (no gettext), so they are translated where
they are shown: the finished English text is matched against the patterns below — click's wording, with
``%(name)s`` where click puts a value — and the match's Vietnamese is filled with the same values (docs/i18n.md,
"The CLI"). Values named ``message`` are messages of their own and are translated in turn; option names,
commands and the values people typed stay as they are. A text no pattern knows (a pydantic explanation, a
newer click's wording) is shown in English rather than not at all.
"""

from __future__ import annotations

import re
from functools import cache

from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _

CLICK_TEXTS = (
    N_("No such option: %(name)s"),
    N_("No such option: %(name)s (Possible options: %(options)s)"),
    N_("No such command %(name)s."),
    N_("No such command %(name)s. Did you mean %(suggestions)s?"),
    N_("Missing command."),
    N_("Missing argument %(name)s."),
    N_("Missing argument %(name)s. %(message)s"),
    N_("Missing option %(name)s."),
    N_("Missing option %(name)s. %(message)s"),
    N_("Missing parameter: %(name)s"),
    N_("Choose from:%(choices)s"),
    N_("Invalid value for %(name)s: %(message)s"),
    N_("Invalid value: %(message)s"),
    N_("Option %(name)s requires an argument."),
    N_("Option %(name)s requires %(count)s arguments."),
    N_("Option %(name)s does not take a value."),
    N_("Argument %(name)s takes %(count)s values."),
    N_("Got unexpected extra argument(s) (%(arguments)s)"),
    N_("Got unexpected extra argument (%(arguments)s)"),
    N_("Got unexpected extra arguments (%(arguments)s)"),
    N_("Value error, %(message)s"),  # pydantic's prefix, as typer validates a value
    N_("Input should be a valid integer, unable to parse string as an integer"),
    N_("%(value)s is not one of %(choices)s."),
    N_("Value %(value)s is not a valid %(kind)s."),
    N_("file %(name)s does not exist."),
    N_("directory %(name)s does not exist."),
    N_("path %(name)s does not exist."),
    N_("file %(name)s is a directory."),
    N_("directory %(name)s is a file."),
    N_("path %(name)s is not readable."),
    N_("file %(name)s is not readable."),
    N_("file %(name)s is not writable."),
    N_("directory %(name)s is not writable."),
)

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _pattern(msgid: str) -> re.Pattern[str]:
    parts = _PLACEHOLDER.split(msgid)  # literal, name, literal, name, …, literal
    regex = "".join(
        re.escape(part) if index % 2 == 0 else f"(?P<{part}>.+?)" for index, part in enumerate(parts)
    )
    return re.compile(regex, re.DOTALL)


@cache
def _patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """The most specific first: those that begin with fixed text (so that "Value error, X is not one of Y"
    is a "Value error, <message>"), then the longest fixed text (so that "No such option: X (Possible
    options: Y)" is not "No such option: <X (Possible options: Y)>")."""
    ordered = sorted(
        CLICK_TEXTS,
        key=lambda msgid: (msgid.startswith("%("), -len(_PLACEHOLDER.sub("", msgid))),
    )
    return tuple((msgid, _pattern(msgid)) for msgid in ordered)


def translate_click_message(text: str) -> str:
    """``text``, one of click's usage errors, in the current language; any other text as it is."""
    for msgid, pattern in _patterns():
        match = pattern.fullmatch(text)
        if match is None:
            continue
        values = {
            name: translate_click_message(value) if name == "message" else value
            for name, value in match.groupdict().items()
        }
        return _(msgid) % values
    return text
