"""The fast path for Vietnamese numbers (broadcaster/contacts/phones.py) answers as phonenumbers does: for every
first 4 national digits and every length of the plan, a number's answers computed from another number of the
same shape are those phonenumbers gives for it. Fails when a phonenumbers upgrade tells numbers apart deeper."""

from __future__ import annotations

import random

import pytest

from broadcaster.contacts import phones
from broadcaster.contacts.phones import Phone, PhoneError


def _answer(parse: object, *args: object) -> Phone | str:
    try:
        return parse(*args)  # type: ignore[operator, no-any-return]
    except PhoneError as exc:
        return f"PhoneError: {exc.reason}"


def test_every_shape_answers_as_phonenumbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(phones, "_SHAPES", {})
    rng = random.Random(84)
    differ = []
    for length in sorted(phones._VN_LENGTHS):
        for prefix in range(1000, 10_000):
            first, second = (f"{prefix}{rng.randrange(10 ** (length - 4)):0{length - 4}d}" for _ in range(2))
            _answer(phones._vn_phone, first, first, None)  # the shape comes from this one…
            fast = _answer(phones._vn_phone, second, second, None)  # …and answers for this one
            general = _answer(phones._general_phone, second, "+84" + second, None, None)
            if fast != general:
                differ.append((second, fast, general))
    assert differ == []


def test_converted_numbers_keep_what_they_were(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(phones, "_SHAPES", {})
    converted = phones.parse_phone("0168 912 3456")
    assert (converted.e164, converted.national, converted.converted_from) == (
        "+84389123456",
        "0389123456",
        "01689123456",
    )
    assert (converted.kind, converted.carrier) == (phones.PhoneKind.MOBILE, "Viettel")
