"""What Decree 91/2020 asks of an advertising message's sample rendering: the label first, the refusal last.

An SMS starts with the label in the form its provider takes (``label_brackets``, art. 15) and its last
sentence tells how to refuse, naming one of the configured opt-out keywords (art. 16); an e-mail's HTML part
carries the unsubscribe link, as its text part always does (docs/domain.md §1.1, §1.4).
"""

from __future__ import annotations

import re
from pathlib import Path

from broadcaster.campaigns.problem import Problem
from broadcaster.campaigns.send_rules import ProviderInfo
from broadcaster.rendering import shorten
from consent.keywords import Keywords, keyword_in
from consent.policy import accepted_sms_labels, rules_for

__all__ = ["html_problems", "last_line_number", "last_sentence", "sms_problems"]

# A sentence ends at . ! ? or … followed by a space; "1.000 đ" and "danang.gov.vn" stay whole.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def last_sentence(text: str) -> str:
    """The last sentence or line of ``text`` with any text in it, as written."""
    pieces = [piece for line in text.splitlines() for piece in _SENTENCE_END.split(line)]
    written = [piece.strip() for piece in pieces if any(ch.isalnum() for ch in piece)]
    return written[-1] if written else ""


def last_line_number(source: str) -> int:
    """The 1-based number of the last line of a template with anything on it (1 for an empty one)."""
    lines = source.splitlines()
    return next((n for n in range(len(lines), 0, -1) if lines[n - 1].strip()), 1)


def _quoted(forms: tuple[str, ...]) -> str:
    return " or ".join(repr(form) for form in forms)


def sms_problems(
    text: str,
    *,
    purpose: str,
    provider: ProviderInfo,
    keywords: Keywords,
    source: str,
    file: Path,
    field: str,
) -> list[Problem]:
    """The label and refusal problems of a sample SMS ``text`` rendered from the template ``source``."""
    problems: list[Problem] = []
    forms = accepted_sms_labels(purpose, brackets_allowed=provider.label_brackets)
    if forms and not text.startswith(forms):
        setting = "true, the default" if provider.label_brackets else "false"
        problems.append(
            Problem(
                file,
                1,
                field,
                f"an advertising SMS must start with {_quoted(forms)} (Decree 91/2020 art. 15): provider"
                f" '{provider.name}' has label_brackets = {setting}; the sample starts {text[:20]!r}",
            )
        )
    last = last_sentence(text)
    if rules_for(purpose).opt_out_last and keyword_in(last, keywords) is None:
        listed = ", ".join(word for _list_name, word in keywords.by_form.values())
        earlier = keyword_in(text, keywords)
        hint = f"; {earlier!r} comes earlier: move the refusal instructions to the end" if earlier else ""
        problems.append(
            Problem(
                file,
                last_line_number(source),
                field,
                "an advertising SMS must end with how to refuse (Decree 91/2020 art. 16): its last sentence"
                f" {shorten(last)!r} names none of the opt-out keywords {listed} ([consent] opt_out_keywords)"
                f"{hint}",
            )
        )
    return problems


def html_problems(html: str, *, purpose: str, url: str, source: str, file: Path, field: str) -> list[Problem]:
    """The HTML part must carry the unsubscribe link ``url``: nothing adds it to a part that drops it, while
    the text part gets the standard line (``campaigns.messages.OPT_OUT_LINE``) when its template has none."""
    if not rules_for(purpose).opt_out_last or url in html:
        return []
    return [
        Problem(
            file,
            last_line_number(source),
            field,
            "the HTML part of an advertising e-mail must carry the unsubscribe link (Decree 91/2020 art. 16):"
            " the sample has no {{ unsubscribe_url }}; show it here or in the layout this template extends",
        )
    ]
