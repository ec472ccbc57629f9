"""The one gettext catalogue of everything people read: the CLI's messages, the web UI, the API's problems.

Message ids are English; ``broadcaster/locale/vi/LC_MESSAGES/broadcaster.po`` translates them into Vietnamese
(docs/i18n.md). The catalogue is compiled in memory when first used, so the repository holds no binary
``.mo`` file. The language of a process is ``[org] language``, else ``LANG`` when it names a supported one,
else Vietnamese; a web request may choose another for itself (``using``), which is why the current language
is a context variable and not a global.
"""

from __future__ import annotations

import gettext as _gettext
import io
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
DOMAIN = "broadcaster"
LOCALE_DIR = Path(__file__).parent / "locale"

_current: ContextVar[str] = ContextVar("broadcaster_language", default=DEFAULT_LANGUAGE)


def choose(configured: str | None, environ: Mapping[str, str] | None = None) -> str:
    """``[org] language`` if set; else the first of LC_ALL, LC_MESSAGES, LANG that names a supported
    language (``en_US.UTF-8`` → ``en``); else Vietnamese."""
    if configured:
        return configured
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value:
            code = value.split(".")[0].split("_")[0].lower()
            return code if code in LANGUAGES else DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(language: str) -> _gettext.NullTranslations:
    """The compiled catalogue of ``language``; English is the message ids themselves."""
    path = catalogue_path(language)
    if language == "en" or not path.is_file():
        return _gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with path.open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return _gettext.GNUTranslations(compiled)


def set_language(language: str) -> None:
    """The language of this process (or of the current context) from now on."""
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}; supported: {', '.join(LANGUAGES)}")
    _current.set(language)


def current_language() -> str:
    return _current.get()


@contextmanager
def using(language: str) -> Iterator[None]:
    """Translate into ``language`` inside the block only (a web request, a test)."""
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}; supported: {', '.join(LANGUAGES)}")
    token = _current.set(language)
    try:
        yield
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    return translations(_current.get()).pgettext(context, message)


def N_(message: str) -> str:  # the usual gettext name
    """Marks a text for the catalogue where it is defined (a menu label, an error's reason) and translated
    later, where it is shown."""
    return message


_ = gettext


class Translatable(str):
    """English text — a message id with its values filled in — that can still be shown in another language.

    For texts made in one place and shown in others, some of which keep them as data in English (a contacts
    file's row reasons: the JSON report keeps the English, the table shows ``translate(reason)``). Being a
    ``str``, it compares, serialises and prints as its English text.
    """

    msgid: str
    values: dict[str, object]

    def __new__(cls, msgid: str, /, **values: object) -> Translatable:
        text = super().__new__(cls, msgid % values if values else msgid)
        text.msgid = msgid
        text.values = values
        return text

    def translated(self) -> str:
        """In the current language, as are the values that are ``Translatable`` themselves."""
        text = gettext(self.msgid)
        return text % {name: translate(value) for name, value in self.values.items()} if self.values else text


def translate(text: object) -> str:
    """``text`` in the current language when it is ``Translatable``; any other text (data, a library's own
    message) as it is."""
    return text.translated() if isinstance(text, Translatable) else str(text)
