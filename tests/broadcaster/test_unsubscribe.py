"""Opt-out tokens: they round-trip, carry nothing personal, and cannot be forged or moved to another message."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broadcaster.unsubscribe import make_token, new_secret, verify_token


def test_token_round_trips_to_its_message() -> None:
    secret = new_secret()
    assert verify_token(secret, make_token(secret, 4711)) == 4711


def test_token_is_refused_with_another_secret_or_another_message() -> None:
    secret = new_secret()
    token = make_token(secret, 12)
    assert verify_token(new_secret(), token) is None
    _number, _, tag = token.partition(".")
    assert verify_token(secret, f"13.{tag}") is None
    assert verify_token(secret, "12.") is None
    assert verify_token(secret, "abc.def") is None


def test_token_holds_no_address() -> None:
    token = make_token(new_secret(), 99)
    assert "@" not in token
    assert "+84" not in token
    assert token.startswith("99.")


@pytest.mark.parametrize(
    "number",
    ["²", "٤٧١١", "４７１１", "04711", "0", "-4711", "+4711", " 4711", "4711 ", "4_711", "1" * 5000],
)
def test_only_the_canonical_id_is_accepted(number: str) -> None:
    """Malformed ids (superscripts, other scripts' digits, leading zeros, 5,000 digits) return None,
    never raise, even when the tag would be right for the id they spell."""
    secret = new_secret()
    _id, _, tag = make_token(secret, 4711).partition(".")
    assert verify_token(secret, f"{number}.{tag}") is None
    assert verify_token(secret, f"{number}.x") is None


@pytest.mark.parametrize("tag_change", ["", "é" * 16, "=", "\x00", "\n"])
def test_a_malformed_tag_is_refused(tag_change: str) -> None:
    secret = new_secret()
    token = make_token(secret, 4711)
    assert verify_token(secret, token[:-1] + tag_change) is None
    assert verify_token(secret, token + tag_change) == (4711 if tag_change == "" else None)


@settings(max_examples=300, database=None)
@given(st.text())
def test_random_strings_return_none_or_their_own_id(text: str) -> None:
    secret = "hypothesis-secret"
    for candidate in (text, f"{text}.{text}", f"4711.{text}", f"{text}.{make_token(secret, 4711)[5:]}"):
        found = verify_token(secret, candidate)
        assert found is None or make_token(secret, found) == candidate
