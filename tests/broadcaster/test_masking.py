"""Masking personal data for those who read without needing to know who (``broadcaster.masking``)."""

from __future__ import annotations

import pytest

import channels.masking
from broadcaster.db.models import User
from broadcaster.masking import mask_address, mask_email, mask_name, mask_phone, mask_text, must_mask
from broadcaster.users import PermissionDenied
from broadcaster.vocabulary import Role


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+84901234456", "090****456"),
        ("+842363822123", "023*****123"),  # a Da Nang landline
        ("+14155550123", "+14******123"),  # not Vietnamese: as stored
        ("12345", "*****"),
        (None, None),
    ],
)
def test_phones_keep_the_first_and_last_three_digits(phone: str | None, masked: str | None) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("nguyen.an@danang.gov.vn", "n***@danang.gov.vn"),
        ("An.Nguyen@Gmail.com", "A***@Gmail.com"),
        ("khong-co-a-cong", "k***"),
        ("", ""),
    ],
)
def test_emails_keep_the_first_letter_and_the_domain(email: str, masked: str) -> None:
    assert mask_email(email) == masked


def test_names_become_initials() -> None:
    assert mask_name("  Trần   Thị  Bích ") == "T. T. B."
    assert mask_name("Nguyễn Văn An") == "N. V. A."


def test_the_engine_re_uses_the_channels_masker() -> None:
    assert (mask_address, mask_phone, mask_email, mask_text) == (
        channels.masking.mask_address,
        channels.masking.mask_phone,
        channels.masking.mask_email,
        channels.masking.mask_text,
    )


def test_addresses_and_free_text() -> None:
    assert mask_address("+84912345678") == "091****678"
    assert mask_address("an@danang.gov.vn") == "a***@danang.gov.vn"
    reply = "550 5.1.1 <an.nguyen@danang.gov.vn>: mailbox unknown; SMS to +84912345678 refused"
    assert mask_text(reply) == "550 5.1.1 <a***@danang.gov.vn>: mailbox unknown; SMS to 091****678 refused"


@pytest.mark.parametrize(
    ("role", "masked"),
    [(Role.AUDITOR, True), (Role.ADMIN, True), (Role.EDITOR, False), (Role.APPROVER, False)],
)
def test_who_sees_personal_data_masked_by_default(role: Role, masked: bool) -> None:
    assert must_mask(User(login="someone", role=role), unmasked=False) is masked


def test_only_an_admin_may_ask_for_it_unmasked() -> None:
    assert must_mask(User(login="quan_tri", role=Role.ADMIN), unmasked=True) is False
    for role in (Role.AUDITOR, Role.EDITOR, Role.APPROVER):
        with pytest.raises(PermissionDenied, match=r"'personal_data\.unmasked' needs one of: admin"):
            must_mask(User(login="someone", role=role), unmasked=True)
