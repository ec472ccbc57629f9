"""Opt-out tokens: they round-trip, carry nothing personal, and cannot be forged or moved to another message."""

from __future__ import annotations

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
    assert "@" not in token and "+84" not in token and token.startswith("99.")
