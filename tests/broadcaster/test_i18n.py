"""The catalogue is complete: every text the code and the templates mark for translation has a Vietnamese
translation with the same placeholders; the language is chosen as documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from broadcaster import i18n

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w+)\}")


def _used_entries() -> dict[str, tuple[str, str | None]]:
    """Each marked text, the first file that uses it and, for an ``ngettext``, its plural."""
    method_map = [
        ("broadcaster/**.py", "python"),
        ("broadcaster/web/templates/**.html", "jinja2"),
    ]
    options = {"broadcaster/web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    found: dict[str, tuple[str, str | None]] = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options, keywords=KEYWORDS
    ):
        text, plural = (message[0], message[1]) if isinstance(message, tuple) else (message, None)
        if text:
            found.setdefault(text, (filename, plural))
    for text in _cli_help_texts():
        found.setdefault(text, ("broadcaster/cli (--help)", None))
    return found


def _cli_help_texts() -> list[str]:
    """The CLI's help texts (docstrings and ``help=`` of commands and parameters): typer keeps them as English
    message ids and ``broadcaster.cli.language`` translates them when a help page is shown."""
    import typer.main

    from broadcaster.cli import app

    texts: list[str] = []
    pending = [typer.main.get_command(app)]
    while pending:
        command = pending.pop()
        pending.extend(getattr(command, "commands", {}).values())
        texts += [getattr(command, name, None) or "" for name in ("help", "short_help", "epilog")]
        texts += [getattr(param, "help", None) or "" for param in command.params]
    return [text for text in texts if text]


def _catalogue() -> Catalog:
    with i18n.catalogue_path("vi").open("rb") as source:
        return read_po(source, locale="vi")


def _translation(catalogue: Catalog, text: str) -> str | None:
    entry = catalogue.get(text)
    if entry is None or entry.fuzzy:
        return None
    translated = entry.string
    return str(translated[0] if isinstance(translated, tuple | list) else translated) or None


def add_missing() -> int:
    """``make messages``: append the texts in use that the catalogue lacks, with an empty translation."""
    catalogue = _catalogue()
    entries = _used_entries()
    missing = [text for text in sorted(entries) if catalogue.get(text) is None]
    if missing:
        with i18n.catalogue_path("vi").open("a", encoding="utf-8") as out:
            out.write("\n# --- new (make messages): translate, then move to their section\n")
            for text in missing:
                plural = entries[text][1]
                if plural is None:
                    out.write(f'\nmsgid {_po_string(text)}\nmsgstr ""\n')
                else:  # Vietnamese has one form (Plural-Forms: nplurals=1)
                    out.write(
                        f'\nmsgid {_po_string(text)}\nmsgid_plural {_po_string(plural)}\nmsgstr[0] ""\n'
                    )
    return len(missing)


def _po_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def test_every_text_in_use_is_translated_into_vietnamese() -> None:
    catalogue = _catalogue()
    missing = []
    for text, (where, plural) in sorted(_used_entries().items()):
        translated = _translation(catalogue, text)
        entry = catalogue.get(text)
        if not translated or (plural is not None and (entry is None or not entry.pluralizable)):
            missing.append(f"{where}: {text!r}" + (f" (plural {plural!r})" if plural else ""))
            continue
        original = plural or text  # the one Vietnamese form translates the plural
        assert set(PLACEHOLDER.findall(original)) == set(PLACEHOLDER.findall(translated)), (
            f"{where}: {text!r} and its translation {translated!r} name different placeholders"
        )
    assert not missing, "not translated in broadcaster.po (run `make messages`):\n" + "\n".join(missing)


def test_translation_follows_the_current_language() -> None:
    with i18n.using("vi"):
        assert i18n.gettext("Sign in") == "Đăng nhập"
    with i18n.using("en"):
        assert i18n.gettext("Sign in") == "Sign in"
    with pytest.raises(ValueError, match="unsupported language"):
        i18n.set_language("fr")


@pytest.mark.parametrize(
    ("configured", "environ", "expected"),
    [
        ("en", {"LANG": "vi_VN.UTF-8"}, "en"),
        (None, {"LANG": "en_US.UTF-8"}, "en"),
        (None, {"LC_ALL": "vi_VN.UTF-8", "LANG": "en_US.UTF-8"}, "vi"),
        (None, {"LANG": "C.UTF-8"}, "vi"),
        (None, {"LANG": "fr_FR.UTF-8"}, "vi"),
        (None, {}, "vi"),
    ],
)
def test_the_language_is_the_setting_else_lang_else_vietnamese(
    configured: str | None, environ: dict[str, str], expected: str
) -> None:
    assert i18n.choose(configured, environ) == expected


def test_a_translatable_text_is_its_english_and_is_shown_in_the_current_language() -> None:
    import copy
    import json

    inner = i18n.Translatable("control character %(code)s (invisible in a spreadsheet)", code="U+0007")
    reason = i18n.Translatable("%(problem)s; retype the cell", problem=inner)
    assert reason == "control character U+0007 (invisible in a spreadsheet); retype the cell"
    assert json.dumps(reason) == json.dumps(str(reason))
    kept = copy.deepcopy(reason)  # dataclasses.asdict copies it
    with i18n.using("vi"):
        assert (
            kept.translated() == "ký tự điều khiển U+0007 (không nhìn thấy trong bảng tính); hãy gõ lại ô này"
        )
        assert i18n.translate(reason) == kept.translated()
        assert i18n.translate("data stays as it is") == "data stays as it is"
    with i18n.using("en"):
        assert i18n.translate(reason) == str(reason)


if __name__ == "__main__":
    print(f"{add_missing()} text(s) added to {i18n.catalogue_path('vi')}")
