"""SMS opt-out keywords: which replies are a refusal, and the one confirmation a refusal gets.

A reply opts out when, normalised, it is exactly one configured keyword; anything else is for a person to read
(docs/domain.md §1.1: Decree 91/2020 art. 16 prescribes no keyword, so the list is configuration).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "DEFAULT_OPT_OUT_KEYWORDS",
    "KeywordConfigError",
    "Keywords",
    "OptOut",
    "ToInbox",
    "classify_reply",
    "confirmation_sms",
    "keyword_in",
    "keywords_from",
    "normalise_reply",
]

DEFAULT_OPT_OUT_KEYWORDS: tuple[str, ...] = ("TC", "HUY", "TU CHOI", "STOP")

# đ/Đ have no canonical decomposition, so dropping combining marks leaves them (docs/domain.md §2).
_D_WITH_STROKE = str.maketrans({"đ": "d", "Đ": "D"})


def _strip_diacritics(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.translate(_D_WITH_STROKE))
    return unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))


def _is_edge_noise(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch).startswith("P")


def normalise_reply(text: str) -> str:
    """The form replies and keywords are compared in: "  Huỷ. " and "HUY" both read "huy".

    Case-folded before the marks are dropped, because folding can itself produce a mark ("İ" folds to
    "i" + U+0307); whitespace runs become one space; punctuation and spaces at either end go.
    """
    folded = unicodedata.normalize("NFC", text).casefold()
    plain = _strip_diacritics(folded)
    collapsed = " ".join(plain.split())
    start, end = 0, len(collapsed)
    while start < end and _is_edge_noise(collapsed[start]):
        start += 1
    while end > start and _is_edge_noise(collapsed[end - 1]):
        end -= 1
    return collapsed[start:end]


class KeywordConfigError(ValueError):
    """A keyword list that cannot be used as configured (an empty keyword, or one configured twice)."""


@dataclass(frozen=True)
class Keywords:
    """The configured opt-out keywords by normalised form, each with its list's name and its spelling there."""

    by_form: Mapping[str, tuple[str, str]]


def keywords_from(lists: Mapping[str, Iterable[str]]) -> Keywords:
    """Merge named keyword lists (e.g. the defaults and an account's own); a duplicate names both places."""
    by_form: dict[str, tuple[str, str]] = {}
    for list_name, words in lists.items():
        for word in words:
            form = normalise_reply(word)
            if not form:
                raise KeywordConfigError(f"keyword {word!r} in {list_name} is empty once normalised")
            if form in by_form:
                other_list, other_word = by_form[form]
                raise KeywordConfigError(
                    f"keyword {word!r} in {list_name} duplicates {other_word!r} in {other_list}"
                    f" (both read {form!r})"
                )
            by_form[form] = (list_name, word)
    return Keywords(by_form)


def keyword_in(text: str, keywords: Keywords) -> str | None:
    """The first configured keyword (as configured) that ``text`` names as a whole word, compared the way
    replies are: "Từ chối: soạn TC gửi 8079" names TC and TU CHOI; "nonstop" does not name STOP."""
    plain = normalise_reply(text)
    for form, (_list_name, word) in keywords.by_form.items():
        if re.search(rf"(?<!\w){re.escape(form)}(?!\w)", plain):
            return word
    return None


@dataclass(frozen=True)
class OptOut:
    """The reply is a refusal: record the withdrawal and send one confirmation."""

    keyword: str
    """The keyword as configured."""
    list_name: str


@dataclass(frozen=True)
class ToInbox:
    """Any other reply: a person reads it in the staff inbox."""

    text: str


def classify_reply(text: str, keywords: Keywords) -> OptOut | ToInbox:
    """OptOut when the whole reply is one keyword ("Huỷ", " tu  chối ", "STOP."), else ToInbox."""
    match = keywords.by_form.get(normalise_reply(text))
    if match is None:
        return ToInbox(text)
    list_name, word = match
    return OptOut(keyword=word, list_name=list_name)


# Decree 91/2020 art. 16: after a refusal, one confirmation without advertising content (docs/domain.md §1.1).
_CONFIRMATION = (
    "{sender}: Đã ghi nhận yêu cầu từ chối nhận tin nhắn của Quý vị. "
    "Quý vị sẽ không nhận thêm tin nhắn thông tin và quảng cáo qua SMS từ chúng tôi."
)


def confirmation_sms(sender: str, *, unaccented: bool = False) -> str:
    """The confirmation of a refusal; ``unaccented`` gives the "không dấu" text that fits GSM-7."""
    text = _CONFIRMATION.format(sender=sender)
    return _strip_diacritics(text) if unaccented else text
