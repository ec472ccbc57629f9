"""Tests for broadcaster.contacts.emails.normalize_email."""

from __future__ import annotations

import pytest

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
