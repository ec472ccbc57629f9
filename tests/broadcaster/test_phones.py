"""Tests for broadcaster.contacts.phones: cleaning, the 2018 prefix conversion, carriers and kinds."""

from __future__ import annotations

import dataclasses

import pytest

from broadcaster.contacts.phones import (
    OLD_MOBILE_PREFIXES,
    Phone,
    PhoneError,
    PhoneKind,
    is_sms_capable,
    parse_phone,
)

# docs/domain.md §2 "2018 conversion 11 → 10 digits", written out again here (not derived from the code) with the
# carrier name phonenumbers gives the new prefix (docs/domain.md §2, python phonenumbers notes).
OLD_TO_NEW = [
    ("0120", "070", "MobiFone"),
    ("0121", "079", "MobiFone"),
    ("0122", "077", "MobiFone"),
    ("0126", "076", "MobiFone"),
    ("0128", "078", "MobiFone"),
    ("0123", "083", "Vinaphone"),
    ("0124", "084", "Vinaphone"),
    ("0125", "085", "Vinaphone"),
    ("0127", "081", "Vinaphone"),
    ("0129", "082", "Vinaphone"),
    ("0162", "032", "Viettel"),
    ("0163", "033", "Viettel"),
    ("0164", "034", "Viettel"),
    ("0165", "035", "Viettel"),
    ("0166", "036", "Viettel"),
    ("0167", "037", "Viettel"),
    ("0168", "038", "Viettel"),
    ("0169", "039", "Viettel"),
    ("0186", "056", "Vietnamobile"),
    ("0188", "058", "Vietnamobile"),
    ("0199", "059", "G-Mobile"),
]


def test_code_table_matches_domain_table() -> None:
    assert {"0" + old: "0" + new for old, new in OLD_MOBILE_PREFIXES.items()} == {
        old: new for old, new, _ in OLD_TO_NEW
    }


@pytest.mark.parametrize(("old", "new", "carrier"), OLD_TO_NEW)
@pytest.mark.parametrize("form", ["national", "plus84", "plus84_spaced", "bare84", "double_zero"])
def test_old_prefix_converted_in_every_form(old: str, new: str, carrier: str, form: str) -> None:
    subscriber = "4567123"  # the last 7 digits are kept by the conversion
    old_national = old + subscriber
    raw = {
        "national": old_national,
        "plus84": "+84" + old_national[1:],
        "plus84_spaced": f"+84 {old_national[1:4]} {old_national[4:7]} {old_national[7:]}",
        "bare84": "84" + old_national[1:],
        "double_zero": "0084" + old_national[1:],
    }[form]
    phone = parse_phone(raw)
    assert phone.national == new + subscriber
    assert phone.e164 == "+84" + new[1:] + subscriber
    assert phone.converted_from == old_national
    assert phone.carrier == carrier
    assert phone.kind is PhoneKind.MOBILE


@pytest.mark.parametrize(
    "raw",
    [
        "0912345678",
        "0912 345 678",
        "0912.345.678",
        "0912-345-678",
        "(0912) 345 678",
        "+84912345678",
        "+84 912 345 678",
        "+84 (0)912 345 678",
        "+84(0)912.345.678",
        "0084912345678",
        "0084 912 345 678",
        "84912345678",
        "912345678",  # Excel dropped the leading zero
        "+840912345678",  # trunk zero kept after the country code
        "０９１２３４５６７８",  # full-width digits (NFKC)
        "＋８４ ９１２ ３４５ ６７８",
        "\u00a00912\u00a0345\u00a0678 ",  # no-break spaces from a web page
    ],
)
def test_formats_of_one_mobile(raw: str) -> None:
    phone = parse_phone(raw)
    assert phone == Phone(
        e164="+84912345678",
        national="0912345678",
        kind=PhoneKind.MOBILE,
        carrier="Vinaphone",
        converted_from=None,
    )
    assert is_sms_capable(phone)


@pytest.mark.parametrize(
    ("raw", "national", "carrier"),
    [
        ("0981234567", "0981234567", "Viettel"),
        ("0331234567", "0331234567", "Viettel"),
        ("0881234567", "0881234567", "Vinaphone"),
        ("0901234567", "0901234567", "MobiFone"),
        ("0921234567", "0921234567", "Vietnamobile"),
        ("0591234567", "0591234567", "G-Mobile"),
        ("0998123456", "0998123456", "Indochina Telecom"),
        # 84 + 7 digits is too short to be the country code: it is the national 084… without its zero.
        ("843123456", "0843123456", "Vinaphone"),
    ],
)
def test_carrier_of_current_prefixes(raw: str, national: str, carrier: str) -> None:
    phone = parse_phone(raw)
    assert (phone.national, phone.carrier, phone.converted_from) == (national, carrier, None)


@pytest.mark.parametrize("raw", ["0236 3822 123", "02363822123", "+84 236 3822 123", "842363822123"])
def test_da_nang_landline_is_fixed_without_carrier(raw: str) -> None:
    phone = parse_phone(raw)
    assert phone.national == "02363822123"
    assert phone.e164 == "+842363822123"
    assert phone.kind is PhoneKind.FIXED
    assert phone.carrier is None
    assert not is_sms_capable(phone)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty phone number"),
        ("   ", "empty phone number"),
        ("abc", "contains characters other than digits"),
        ("0912x345x678", "contains characters other than digits"),
        ("0912 345 678 / 0905 111 222", "more than one number"),
        ("0912345678, 0905111222", "more than one number"),
        ("0912345678 hoặc 0905111222", "more than one number"),
        ("8.49123E+10", "scientific notation"),
        ("0101234567", "not a valid Vietnamese number"),
        ("0912345", "not a valid Vietnamese number"),
        ("09123456789012", "not a valid Vietnamese number"),
        ("01111234567", "not a valid Vietnamese number"),  # 0111 was never a mobile prefix
        (
            "0551234567",
            "not a valid Vietnamese number",
        ),  # Reddi range rejected by phonenumbers (docs/domain.md §2)
        ("+1 555", "not a valid phone number"),
    ],
)
def test_invalid_numbers(raw: str, reason: str) -> None:
    with pytest.raises(PhoneError) as info:
        parse_phone(raw)
    assert reason in info.value.reason
    assert info.value.raw == raw
    assert isinstance(info.value, ValueError)
    assert str(info.value) == info.value.reason


@pytest.mark.parametrize("raw", ["+65 9123 4567", "0065 9123 4567"])
def test_foreign_mobile_accepted(raw: str) -> None:
    phone = parse_phone(raw)
    assert phone.e164 == "+6591234567"
    assert phone.kind is PhoneKind.MOBILE
    assert phone.converted_from is None


def test_other_default_region_reads_its_own_national_form() -> None:
    phone = parse_phone("020 7946 0018", default_region="GB")
    assert phone.e164 == "+442079460018"
    assert phone.kind is PhoneKind.FIXED
    # the VN conversion must not apply to another country's national numbers (01689 is Orpington, UK)
    orpington = parse_phone("01689 123456", default_region="GB")
    assert (orpington.e164, orpington.converted_from) == ("+441689123456", None)


def test_toll_free_is_other_and_not_sms_capable() -> None:
    phone = parse_phone("1800 1091")
    assert phone.kind is PhoneKind.OTHER
    assert not is_sms_capable(phone)


def test_phone_is_frozen() -> None:
    phone = parse_phone("0912345678")
    with pytest.raises(dataclasses.FrozenInstanceError):
        phone.national = "0"  # type: ignore[misc]
