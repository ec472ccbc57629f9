"""SMS opt-out keywords: normalisation, exact matching, configuration errors and the confirmation text."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.sms.encoding import Encoding, detect_encoding
from consent.keywords import (
    DEFAULT_OPT_OUT_KEYWORDS,
    KeywordConfigError,
    OptOut,
    ToInbox,
    classify_reply,
    confirmation_sms,
    keyword_in,
    keywords_from,
    normalise_reply,
)

DEFAULTS = keywords_from({"opt_out": DEFAULT_OPT_OUT_KEYWORDS})


@pytest.mark.parametrize(
    ("reply", "keyword"),
    [
        ("Huỷ", "HUY"),
        ("hủy", "HUY"),
        ("HUY", "HUY"),
        ("Hu\u0309y", "HUY"),  # NFD, as some phones send it
        (" tu  chối ", "TU CHOI"),
        ("Từ\tChối", "TU CHOI"),
        ("STOP.", "STOP"),
        ("stop!!", "STOP"),
        ("«tc»", "TC"),
        ("tC", "TC"),
    ],
)
def test_a_reply_that_is_one_keyword_opts_out(reply: str, keyword: str) -> None:
    assert classify_reply(reply, DEFAULTS) == OptOut(keyword=keyword, list_name="opt_out")


@pytest.mark.parametrize(
    "reply",
    ["toi muon huy", "huy dang ky", "STOP STOP", "tuchoi", "", "   ", "?", "h.u.y", "Cảm ơn"],
)
def test_any_other_reply_goes_to_the_inbox_unchanged(reply: str) -> None:
    assert classify_reply(reply, DEFAULTS) == ToInbox(reply)


def test_normalisation_maps_d_with_stroke_and_folds_case() -> None:
    assert normalise_reply("  ĐỒNG   Ý… ") == "dong y"
    assert normalise_reply("đ") == "d"
    assert normalise_reply("İ") == "i"  # folding gives i + a combining dot, which goes like any mark


def test_lists_are_merged_and_each_match_names_its_list() -> None:
    keywords = keywords_from({"defaults": DEFAULT_OPT_OUT_KEYWORDS, "account": ["HUY DK", "Dừng"]})

    assert classify_reply("dung", keywords) == OptOut(keyword="Dừng", list_name="account")
    assert classify_reply("Stop", keywords) == OptOut(keyword="STOP", list_name="defaults")


def test_a_keyword_configured_twice_is_an_error_naming_both() -> None:
    with pytest.raises(
        KeywordConfigError, match=r"'Hủy' in account duplicates 'HUY' in defaults \(both read 'huy'\)"
    ):
        keywords_from({"defaults": DEFAULT_OPT_OUT_KEYWORDS, "account": ["Hủy"]})


def test_a_keyword_repeated_in_one_list_is_an_error_too() -> None:
    with pytest.raises(KeywordConfigError, match=r"'stop\.' in opt_out duplicates 'STOP' in opt_out"):
        keywords_from({"opt_out": ["STOP", "stop."]})


def test_a_keyword_that_normalises_to_nothing_is_an_error() -> None:
    with pytest.raises(KeywordConfigError, match="'!!' in opt_out is empty"):
        keywords_from({"opt_out": ["TC", "!!"]})


def test_the_confirmation_names_the_sender_and_has_an_unaccented_gsm7_variant() -> None:
    accented = confirmation_sms("SO KHCN DN")
    plain = confirmation_sms("SO KHCN DN", unaccented=True)

    assert accented.startswith("SO KHCN DN: Đã ghi nhận yêu cầu từ chối")
    assert "QC" not in accented
    assert plain.startswith("SO KHCN DN: Da ghi nhan yeu cau tu choi")
    assert detect_encoding(plain) is Encoding.GSM7
    assert len(plain) <= 160  # one SMS part


@given(st.text())
def test_normalisation_is_idempotent(text: str) -> None:
    once = normalise_reply(text)

    assert normalise_reply(once) == once


# Vietnamese vowels with their tone and shape marks, as combining characters a phone may send decomposed.
_MARKS = ["\u0300", "\u0301", "\u0303", "\u0309", "\u0323", "\u0302", "\u0306", "\u031b"]


@st.composite
def disguised(draw: st.DrawFn, keyword: str) -> str:
    """``keyword`` with random case, marks on its letters, whitespace runs and punctuation at the ends."""
    parts: list[str] = []
    for word in keyword.split(" "):
        letters = []
        for ch in word:
            ch = ch.upper() if draw(st.booleans()) else ch.lower()
            if ch in "dD" and draw(st.booleans()):
                ch = "đ" if ch == "d" else "Đ"
            marks = draw(st.lists(st.sampled_from(_MARKS), max_size=2))
            letters.append(ch + "".join(marks))
        parts.append("".join(letters))
    gaps = [draw(st.sampled_from([" ", "  ", "\t", " \u00a0"])) for _ in parts[1:]]
    body = parts[0] + "".join(gap + part for gap, part in zip(gaps, parts[1:], strict=True))
    decomposed = draw(st.booleans())
    before = draw(st.sampled_from(["", " ", "  ", "\n"]))
    after = draw(st.sampled_from(["", ".", "!", " .", "?!", " "]))
    return before + unicodedata.normalize("NFD" if decomposed else "NFC", body) + after


# The defaults have no "d"; an account's own words do, and "đ" is the letter NFD cannot take apart.
_EXTRA = ("DUNG", "HUY DK")
_WITH_EXTRA = keywords_from({"opt_out": DEFAULT_OPT_OUT_KEYWORDS, "extra": _EXTRA})


@given(
    st.sampled_from(DEFAULT_OPT_OUT_KEYWORDS + _EXTRA).flatmap(lambda k: st.tuples(st.just(k), disguised(k)))
)
def test_any_keyword_in_any_case_spacing_or_marks_opts_out(case: tuple[str, str]) -> None:
    keyword, reply = case

    outcome = classify_reply(reply, _WITH_EXTRA)

    assert outcome == OptOut(keyword=keyword, list_name="extra" if keyword in _EXTRA else "opt_out")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Từ chối: soạn TC gửi 8079.", "TC"),  # the first configured keyword named wins
        ("Nhắn hủy tới 8079", "HUY"),
        ("soan   tu\tchoi gui 8079", "TU CHOI"),
        ("Gọi nonstop 1022", None),  # only whole words
        ("TCVN 2025", None),
        ("", None),
    ],
)
def test_keyword_in_finds_a_keyword_as_a_whole_word(text: str, found: str | None) -> None:
    assert keyword_in(text, DEFAULTS) == found
