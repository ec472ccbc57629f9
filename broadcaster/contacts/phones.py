"""Normalise a phone number as people type it in Vietnam into one checked ``Phone`` value.

The cleaning steps (full-width digits, separators, ``+84 (0)``, ``0084``, bare ``84``) and the 2018
11→10-digit conversion run first because libphonenumber rejects the old numbers outright
(docs/domain.md §2: "Old 11-digit numbers (0169…, 0120…) are invalid → apply the conversion table before
parsing"). Validation, the number type and the allocated carrier then come from ``phonenumbers``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import phonenumbers

from broadcaster.i18n import N_, Translatable

__all__ = [
    "OLD_MOBILE_PREFIXES",
    "Phone",
    "PhoneError",
    "PhoneKind",
    "is_sms_capable",
    "parse_phone",
]


class PhoneKind(StrEnum):
    MOBILE = "mobile"  # can receive SMS
    FIXED = "fixed"  # landline: SMS sending refuses it
    OTHER = "other"  # toll-free, premium, VoIP, pager, unknown… (phonenumbers' other types)


@dataclass(frozen=True, slots=True)
class Phone:
    e164: str  # "+84912345678"
    national: str  # "0912345678" (national digits with the trunk 0, no spaces)
    kind: PhoneKind
    # The carrier the number range was *allocated* to; with mobile number portability (since 16/11/2018,
    # Circular 35/2017/TT-BTTTT, docs/domain.md §2) the subscriber may have moved since.
    carrier: str | None
    converted_from: str | None = None  # the old 11-digit national number ("01689123456") when converted


class PhoneError(ValueError):
    """The text is not a usable phone number; ``reason`` says why (English, shown translated: ``i18n.translate``), ``raw`` is the input."""

    def __init__(self, reason: str, *, raw: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw

    def __str__(self) -> str:
        return self.reason


# 2018 conversion of 11-digit mobile numbers to 10 digits (15/09/2018 – 30/06/2019, the last 7 digits kept).
# Keys and values are prefixes of national significant numbers (no trunk 0): "1689123456" → "389123456".
# Source: docs/domain.md §2 "2018 conversion 11 → 10 digits", citing
# https://lawnet.vn/en/laws/what-is-the-current-list-of-prefixes-of-vietnamese-phone-numbers-of-mobile-network-operators-what-i-134777.html
# and http://kynguyenso.plo.vn/ky-nguyen-so/tuyet-chieu/2-cach-chuyen-so-dien-thoai-11-so-ve-10-so-773007.html
OLD_MOBILE_PREFIXES: Final[dict[str, str]] = {
    # MobiFone: 0120→070, 0121→079, 0122→077, 0126→076, 0128→078
    "120": "70",
    "121": "79",
    "122": "77",
    "126": "76",
    "128": "78",
    # VinaPhone: 0123→083, 0124→084, 0125→085, 0127→081, 0129→082
    "123": "83",
    "124": "84",
    "125": "85",
    "127": "81",
    "129": "82",
    # Viettel: 0162→032 … 0169→039
    "162": "32",
    "163": "33",
    "164": "34",
    "165": "35",
    "166": "36",
    "167": "37",
    "168": "38",
    "169": "39",
    # Vietnamobile: 0186→056, 0188→058
    "186": "56",
    "188": "58",
    # Gmobile: 0199→059
    "199": "59",
}

_VN_COUNTRY_CODE: Final = "84"
# "+84 (0)912…": the "(0)" is the national trunk prefix that must not be dialled after the country code.
_TRUNK_IN_PARENS: Final = re.compile(r"^(\+|00)\s*84\s*\(\s*0\s*\)")
# Separators people put inside numbers; NFKC has already turned full-width forms and NBSP into these.
_SEPARATORS: Final = re.compile(r"[\s.\-()\u2010-\u2015]")
# Cells like "0912 345 678 / 0905 111 222" hold two numbers; say so rather than "too long".
_LIST_MARKS: Final = re.compile(r"[/,;|&]|\b(?:va|và|hoac|hoặc|or|and)\b", re.IGNORECASE)
_SCIENTIFIC: Final = re.compile(r"^\d(?:[.,]\d+)?[eE]\+?\d+$")

# phonenumbers.PhoneNumberType values → our kinds. FIXED_LINE_OR_MOBILE is reported for regions whose
# numbering plan cannot tell them apart; it can take SMS often enough to treat it as mobile.
_KINDS: Final[dict[int, PhoneKind]] = {
    phonenumbers.PhoneNumberType.MOBILE: PhoneKind.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: PhoneKind.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE: PhoneKind.FIXED,
}


def _clean(raw: str) -> str:
    """NFKC (full-width ０９… → 09…), drop a "(0)" trunk after +84/0084, then drop separators."""
    if raw.isdigit() and raw.isascii():  # the usual cell: nothing of the above applies
        return raw
    text = unicodedata.normalize("NFKC", raw).strip()
    text = _TRUNK_IN_PARENS.sub("+84", text)
    return _SEPARATORS.sub("", text)


def _vn_significant_number(digits: str, *, default_region: str) -> str | None:
    """The VN national significant number when ``digits`` (no "+") is written in a VN form, else None."""
    if digits.startswith("00" + _VN_COUNTRY_CODE):
        return digits[4:]
    if digits.startswith("00"):
        return None  # international prefix for another country
    if default_region != "VN":
        return None
    if digits.startswith("0"):
        return digits[1:]
    # Bare "84…" is the country code only at the lengths of 84 + a 9-digit mobile or 84 + a 10-digit
    # landline / old 11-digit mobile; a shorter "84…" is a 9-digit national number (084…) without its 0.
    if digits.startswith(_VN_COUNTRY_CODE) and len(digits) in (11, 12):
        return digits[2:]
    # A national number whose leading 0 was lost (Excel stores 0912345678 as the number 912345678).
    if len(digits) in (9, 10):
        return digits
    return None


def parse_phone(raw: str, *, default_region: str = "VN") -> Phone:
    """Parse ``raw`` into a validated ``Phone``; raise ``PhoneError`` when it is not a valid number.

    Accepts ``0912 345 678``, ``0912.345.678``, ``+84 912 345 678``, ``+84 (0)912…``, ``0084912…``,
    ``84912345678``, full-width digits and the old 11-digit mobile numbers (``01689…``, ``+841689…``),
    which are converted with ``OLD_MOBILE_PREFIXES``.
    """
    text = _clean(raw)
    if not text:
        raise PhoneError(Translatable(N_("empty phone number")), raw=raw)
    plus = text.startswith("+")
    digits = text[1:] if plus else text
    if not digits.isdigit() or not digits.isascii():
        if _SCIENTIFIC.match(unicodedata.normalize("NFKC", raw).strip()):
            # Excel shows long numbers as 8.49123E+10 and exports them so; the digits are lost.
            raise PhoneError(
                Translatable(
                    N_("number in scientific notation (format the column as Text in the spreadsheet)")
                ),
                raw=raw,
            )
        if _LIST_MARKS.search(unicodedata.normalize("NFC", raw)):
            raise PhoneError(
                Translatable(N_("more than one number in the cell (keep one per contact)")), raw=raw
            )
        raise PhoneError(Translatable(N_("contains characters other than digits")), raw=raw)

    if plus:
        nsn = digits[2:] if digits.startswith(_VN_COUNTRY_CODE) else None
    else:
        nsn = _vn_significant_number(digits, default_region=default_region)

    converted_from: str | None = None
    if nsn is not None:
        # "+84 0912…" written with the trunk 0 kept: dialled as is it fails, but the intent is unambiguous.
        if nsn.startswith("0") and len(nsn) == 10:
            nsn = nsn[1:]
        new_prefix = OLD_MOBILE_PREFIXES.get(nsn[:3]) if len(nsn) == 10 else None
        if new_prefix is not None:
            converted_from = "0" + nsn
            nsn = new_prefix + nsn[3:]
        if not nsn.startswith("0") and len(nsn) in _VN_LENGTHS:
            return _vn_phone(raw, nsn, converted_from)
        candidate = "+" + _VN_COUNTRY_CODE + nsn
        parse_region: str | None = None
    elif plus:
        candidate = "+" + digits
        parse_region = None
    elif digits.startswith("00"):
        candidate = "+" + digits[2:]
        parse_region = None
    else:
        candidate = digits
        parse_region = default_region

    return _general_phone(raw, candidate, parse_region, converted_from)


def _general_phone(raw: str, candidate: str, region: str | None, converted_from: str | None) -> Phone:
    """``parse_phone`` of ``candidate`` by phonenumbers alone: any country, any length."""
    number = _parse(raw, candidate, region)
    kind = _KINDS.get(phonenumbers.number_type(number), PhoneKind.OTHER)
    carrier_name = _carrier(number)
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return Phone(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        national="".join(ch for ch in national if ch.isdigit()),
        kind=kind,
        carrier=carrier_name,
        converted_from=converted_from,
    )


def _parse(raw: str, candidate: str, region: str | None) -> phonenumbers.PhoneNumber:
    """``phonenumbers.parse`` of a valid number, or the PhoneError that says why it is not."""
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(
            Translatable(N_("not a valid phone number (%(detail)s)"), detail=exc._msg), raw=raw
        ) from exc
    if not phonenumbers.is_valid_number(number):
        vn = number.country_code == int(_VN_COUNTRY_CODE)
        raise PhoneError(
            Translatable(N_("not a valid Vietnamese number") if vn else N_("not a valid phone number")),
            raw=raw,
        )

    return number


def _carrier(number: phonenumbers.PhoneNumber) -> str | None:
    # The carrier tables are imported on the first number parsed, not with this module: they cost more than the
    # rest of phonenumbers, and every `broadcaster` command imports this module.
    from phonenumbers import carrier as pn_carrier

    return pn_carrier.name_for_number(number, "en") or None


# Every pattern of Vietnam's numbering plan in phonenumbers' metadata (validity, number types, formats) tells
# numbers apart by their first 4 national digits at most and then takes any digits to a fixed length, and the
# carrier prefixes for +84 are at most 3 national digits: so the answers for a Vietnamese number are those of
# any number of the same length and first 4 digits. They are computed once per such pair, by phonenumbers
# itself; a test holds this to phonenumbers for every pair (tests/broadcaster/test_phones_fast_path.py).
_VN_LENGTHS: Final = frozenset({7, 8, 9, 10})  # the lengths of the plan's national numbers
_VN_SHAPE_DIGITS: Final = 4


@dataclass(frozen=True, slots=True)
class _Shape:
    valid: bool
    kind: PhoneKind
    carrier: str | None
    trunk: str  # what the national form puts before the national digits ("0", or "" for 1800/1900…)


_SHAPES: dict[tuple[str, int], _Shape] = {}  # at most 10,000 prefixes × 4 lengths


def _vn_shape(nsn: str) -> _Shape:
    key = (nsn[:_VN_SHAPE_DIGITS], len(nsn))
    shape = _SHAPES.get(key)
    if shape is None:
        shape = _SHAPES[key] = _shape_of(nsn)
    return shape


def _shape_of(nsn: str) -> _Shape:
    number = phonenumbers.PhoneNumber(country_code=int(_VN_COUNTRY_CODE), national_number=int(nsn))
    if not phonenumbers.is_valid_number(number):
        return _Shape(valid=False, kind=PhoneKind.OTHER, carrier=None, trunk="")
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    digits = "".join(ch for ch in national if ch.isdigit())
    return _Shape(
        valid=True,
        kind=_KINDS.get(phonenumbers.number_type(number), PhoneKind.OTHER),
        carrier=_carrier(number),
        trunk=digits.removesuffix(nsn),
    )


def _vn_phone(raw: str, nsn: str, converted_from: str | None) -> Phone:
    """``parse_phone`` of the Vietnamese national significant number ``nsn`` (digits, no leading 0)."""
    shape = _vn_shape(nsn)
    if not shape.valid:
        raise PhoneError(Translatable(N_("not a valid Vietnamese number")), raw=raw)
    return Phone(
        e164="+" + _VN_COUNTRY_CODE + nsn,
        national=shape.trunk + nsn,
        kind=shape.kind,
        carrier=shape.carrier,
        converted_from=converted_from,
    )


def is_sms_capable(phone: Phone) -> bool:
    """Only mobiles take SMS; landlines (and toll-free and the like) are refused for SMS campaigns."""
    return phone.kind is PhoneKind.MOBILE
