"""Tests for broadcaster.contacts.emails.normalize_email."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from broadcaster.contacts import emails
from broadcaster.contacts.emails import EmailError, normalize_email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("an.nguyen@gmail.com", "an.nguyen@gmail.com"),
        ("  Nguyen.Van.An@DaNang.GOV.vn ", "Nguyen.Van.An@danang.gov.vn"),  # local part kept, domain lowered
        ("hoa＠ｇmail．com", "hoa@gmail.com"),  # full-width forms typed with an IME
        ("an@tênmiền.vn", "an@tênmiền.vn"),  # internationalised domain stays allowed
    ],
)
def test_normalises(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("nguyen.van.a@", "after the @-sign"),
        ("@yahoo.com", "before the @-sign"),
        ("an@@gmail.com", "invalid characters"),
        ("hoa.le@gmail", "period"),
        ("trang le@danang.gov.vn", "invalid character"),
        ("an.nguyễn@gmail.com", "Internationalized characters"),  # needs SMTPUTF8; a typing slip here
    ],
)
def test_rejects_with_library_reason(raw: str, reason: str) -> None:
    with pytest.raises(EmailError) as info:
        normalize_email(raw)
    assert reason in info.value.reason
    assert info.value.raw == raw
    assert isinstance(info.value, ValueError)


def _library_answer(text: str) -> str:
    try:
        return validate_email(text, check_deliverability=False, allow_smtputf8=False).normalized
    except EmailNotValidError:
        return "refused"


# Characters that make or break an address: atext, the specials, dots and hyphens, upper case, non-ASCII
# letters and digits, combining marks, an IDNA prefix, and the reserved or special-use names.
_PIECES = st.one_of(
    st.sampled_from([*"aZ9._-+!#$%&'*/=?^`{|}~@\"<>()[],;:\\ ", "\u00e9", "\u0301", "\u0338", "\uff0e"]),
    st.sampled_from(
        ["xn--", "xn--tnmin-hsa1b9a.vn", ".local", ".invalid", ".vn", ".com", "gmail", "Info", "POSTMASTER"]
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=3),
)


@given(st.lists(_PIECES, max_size=30).map("".join))
@settings(max_examples=1500, deadline=None)
def test_plain_path_answers_as_the_library(text: str) -> None:
    assert (emails._plain_address(text) or _library_answer(text)) == _library_answer(text)


@given(
    st.one_of(
        st.from_regex(r"[a-zA-Z0-9_!#$%&'*+/=?^`{|}~-]{1,70}(\.[a-z0-9-]{1,10}){0,3}", fullmatch=True),
        st.sampled_from(["Info", "POSTMASTER", "www", "nOc"]),  # lower-cased by the library (RFC 2142)
    ),
    st.from_regex(
        r"([a-zA-Z0-9-]{1,63}\.){1,4}([a-zA-Z]{2,6}|local|invalid|test|onion|arpa)", fullmatch=True
    ),
)
@example("a" * 64, "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".vn")  # 254 characters: accepted
@example("a" * 64, "b" * 63 + "." + "c" * 63 + "." + "d" * 59 + ".vn")  # 255: refused
@example("a" * 65, "gmail.com")  # longer than a strict local part, accepted when not strict
@example("an", "xn--tnmin-hsa1b9a.vn")  # an IDNA domain comes back in its Unicode form
@settings(max_examples=1500, deadline=None)
def test_plain_addresses_take_the_plain_path(local: str, domain: str) -> None:
    text = f"{local}@{domain}"
    plain = emails._plain_address(text)
    assert plain is None or plain == _library_answer(text)
    if _library_answer(text) != "refused" and len(local) <= 64:
        assert plain is not None
