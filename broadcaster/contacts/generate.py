"""Generate a realistic, deterministic contacts CSV of Da Nang citizens, civil servants and businesses.

Used for demos, benchmarks and tests of the import path: names carry Vietnamese diacritics, phone numbers come
in every format people type (old 11-digit numbers, +84, 0084, dots, full-width digits), and a share of rows is
deliberately broken so that the import report has something to show. The same seed gives the same bytes.
Each contact lives in one of the city's 94 commune-level units (``danang_units``).

``generate_valid_contacts`` is the scale benchmark's variant (benchmarks/scale.py): every row imports, each
with a mobile number and an e-mail of its own, written row by row in constant memory for millions of rows.
"""

from __future__ import annotations

import csv
import random
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from broadcaster.contacts.danang_units import UNITS
from broadcaster.contacts.phones import OLD_MOBILE_PREFIXES
from broadcaster.contacts.reader import FIELDS

__all__ = ["generate_contacts", "generate_valid_contacts"]

HEADER: Final = FIELDS  # the contacts file's columns, as the reader expects them

# Family names with rough weights (Nguyễn alone is close to 40 % of the population).
_HO: Final = (
    ("Nguyễn", 38),
    ("Trần", 11),
    ("Lê", 9),
    ("Phạm", 7),
    ("Hoàng", 5),
    ("Huỳnh", 5),
    ("Phan", 4),
    ("Võ", 4),
    ("Đặng", 2),
    ("Bùi", 2),
    ("Đỗ", 2),
    ("Hồ", 2),
    ("Ngô", 2),
    ("Dương", 1),
    ("Lý", 1),
    ("Trương", 1),
    ("Đoàn", 1),
    ("Lương", 1),
)
_DEM_NAM: Final = ("Văn", "Hữu", "Đức", "Minh", "Quốc", "Công", "Thanh", "Ngọc", "Xuân", "Tấn")
_DEM_NU: Final = ("Thị", "Ngọc", "Thu", "Thanh", "Thùy", "Kim", "Mỹ", "Phương", "Bảo", "Khánh")
_TEN_NAM: Final = (
    "An", "Bình", "Cường", "Dũng", "Đạt", "Hải", "Hùng", "Huy", "Khoa", "Long", "Lộc", "Minh", "Nam",
    "Phong", "Phúc", "Quang", "Sơn", "Tài", "Thắng", "Trung", "Tuấn", "Việt", "Vinh", "Vũ",
)  # fmt: skip
_TEN_NU: Final = (
    "Anh", "Châu", "Dung", "Giang", "Hà", "Hạnh", "Hoa", "Hương", "Lan", "Linh", "Mai", "Ngân", "Nhung",
    "Oanh", "Phương", "Quỳnh", "Thảo", "Trang", "Uyên", "Vy", "Yến", "Hằng", "Diệp", "Trâm",
)  # fmt: skip

# City departments after the 2025 mergers (docs/domain.md §0: Sở TT&TT merged into Sở Khoa học và Công nghệ).
_AGENCIES: Final = (
    "Văn phòng UBND thành phố",
    "Sở Khoa học và Công nghệ",
    "Sở Nội vụ",
    "Sở Tài chính",
    "Sở Xây dựng",
    "Sở Y tế",
    "Sở Giáo dục và Đào tạo",
    "Sở Văn hóa, Thể thao và Du lịch",
    "Sở Tư pháp",
    "Sở Công Thương",
    "Sở Nông nghiệp và Môi trường",
    "Thanh tra thành phố",
    "Trung tâm Phục vụ hành chính công",
)
_COMPANY_DOMAINS: Final = (
    "sontraseafood.vn",
    "hanriverlogistics.com.vn",
    "myanhotel.vn",
    "danangsoft.com",
    "camle-construction.vn",
    "hoakhanhtextile.com.vn",
    "nguhanhson-stone.vn",
    "thanhkhe-trading.vn",
)
_WEBMAIL: Final = ("gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com")
_TAGS: Final = ("cchc", "chuyen-doi-so", "ban-tin", "dich-vu-cong", "thue", "y-te")

# Current 10-digit mobile prefixes per carrier (docs/domain.md §2 table). 055x is left out: phonenumbers rejects
# most of it, and 087/099x are small ranges. Of 089 the metadata of phonenumbers 9.0.43 validates only
# 0896–0899 (checked by running it), so only those are generated.
_MOBILE_PREFIXES: Final = (
    "086", "096", "097", "098", "032", "033", "034", "035", "036", "037", "038", "039",  # Viettel
    "088", "091", "094", "081", "082", "083", "084", "085",  # VinaPhone
    "0896", "0897", "0898", "0899", "090", "093", "070", "076", "077", "078", "079",  # MobiFone
    "092", "056", "058",  # Vietnamobile
    "059",  # Gmobile
)  # fmt: skip
_OLD_PREFIXES: Final = tuple("0" + old for old in OLD_MOBILE_PREFIXES)
_BAD_PHONES: Final = ("0912 345", "0101234567", "09123456789012", "không có", "0000000000", "+84 12")
_BAD_EMAILS: Final = (
    "nguyen.van.a@",
    "an@@gmail.com",
    "hoa.le@gmail",
    "trang le@danang.gov.vn",
    "@yahoo.com",
)
_FULLWIDTH: Final = str.maketrans("0123456789+", "０１２３４５６７８９＋")


def _ascii(text: str) -> str:
    bare = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    return bare.replace("đ", "d").replace("Đ", "D").lower()


def _format_phone(rng: random.Random, national: str) -> str:
    """``national`` is "0" + 9 digits; return it the way one more person would type it."""
    nsn = national[1:]
    groups = f"{nsn[:3]} {nsn[3:6]} {nsn[6:]}"
    styles: Sequence[Callable[[], str]] = (
        lambda: national,
        lambda: national,
        lambda: national,
        lambda: f"{national[:4]} {national[4:7]} {national[7:]}",
        lambda: f"{national[:4]}.{national[4:7]}.{national[7:]}",
        lambda: f"{national[:4]}-{national[4:7]}-{national[7:]}",
        lambda: f"+84 {groups}",
        lambda: f"+84{nsn}",
        lambda: f"84{nsn}",
        lambda: f"0084{nsn}",
        lambda: f"+84 (0){groups}",
        lambda: national.translate(_FULLWIDTH),
    )
    return rng.choice(styles)()


def _old_phone(rng: random.Random) -> str:
    old = rng.choice(_OLD_PREFIXES) + "".join(rng.choices("0123456789", k=7))
    return rng.choice((old, old, f"+84{old[1:]}", f"+84 {old[1:4]} {old[4:7]} {old[7:]}", f"84{old[1:]}"))


def _mobile(rng: random.Random) -> str:
    prefix = rng.choice(_MOBILE_PREFIXES)
    return prefix + "".join(rng.choices("0123456789", k=10 - len(prefix)))


class _Generator:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used_emails: set[str] = set()

    def name(self) -> tuple[str, str, str, str]:
        rng = self.rng
        ho = rng.choices([h for h, _ in _HO], weights=[w for _, w in _HO])[0]
        if rng.random() < 0.5:
            dem, ten = rng.choice(_DEM_NAM), rng.choice(_TEN_NAM)
        else:
            dem, ten = rng.choice(_DEM_NU), rng.choice(_TEN_NU)
        return f"{ho} {dem} {ten}", ho, dem, ten

    def unique_email(self, local: str, domain: str) -> str:
        candidate, n = f"{local}@{domain}", 1
        while candidate in self.used_emails:
            n += 1
            candidate = f"{local}{n}@{domain}"
        self.used_emails.add(candidate)
        return candidate

    def phone(self) -> str:
        rng = self.rng
        if rng.random() < 0.08:
            return _old_phone(rng)
        return _format_phone(rng, _mobile(rng))

    def row(self, index: int) -> dict[str, str]:
        rng = self.rng
        full_name, ho, dem, ten = self.name()
        roll = rng.random()
        segment = "citizen" if roll < 0.6 else "civil_servant" if roll < 0.85 else "business"
        agency = phone = email = ""
        if segment == "civil_servant":
            agency = rng.choice(_AGENCIES)
            # Gov mailboxes follow "given name + initials of family and middle names": anhnt@danang.gov.vn.
            email = self.unique_email(_ascii(ten + ho[0] + dem[0]), "danang.gov.vn")
            if rng.random() < 0.85:
                phone = self.phone()
            elif rng.random() < 0.5:
                phone = f"0236 3{rng.randrange(800000, 899999)}"  # office landline (Da Nang area code 0236)
        elif segment == "business":
            agency = ""
            email = self.unique_email(f"{_ascii(ten)}.{_ascii(ho)}", rng.choice(_COMPANY_DOMAINS))
            if rng.random() < 0.7:
                phone = self.phone()
        else:
            phone = self.phone()
            if rng.random() < 0.3:
                local = f"{_ascii(ten)}{_ascii(ho)}{rng.randrange(70, 100) if rng.random() < 0.5 else ''}"
                email = self.unique_email(local, rng.choice(_WEBMAIL))
        tags = ";".join(rng.sample(_TAGS, k=rng.choice((0, 0, 1, 2))))
        return {
            "external_id": f"DN-{index:06d}",
            "full_name": full_name,
            "phone": phone,
            "email": email,
            "segment": segment,
            "agency": agency,
            "district": "",  # no districts since 01/07/2025 (docs/domain.md §0); the column stays legacy
            "ward": rng.choice(UNITS),
            "language": "en" if rng.random() < 0.02 else "vi",
            "tags": tags,
        }

    def break_row(self, row: dict[str, str]) -> None:
        """Make ``row`` fail import: a bad phone with no e-mail, a bad e-mail with no phone, or no name."""
        kind = self.rng.randrange(3)
        if kind == 0:
            row["phone"], row["email"] = self.rng.choice(_BAD_PHONES), ""
        elif kind == 1:
            row["phone"], row["email"] = "", self.rng.choice(_BAD_EMAILS)
        else:
            row["full_name"] = self.rng.choice(("", "   "))


def generate_contacts(path: Path, *, count: int = 2000, seed: int = 143, invalid_share: float = 0.02) -> None:
    """Write ``count`` contacts to ``path`` (UTF-8 CSV with BOM, "," delimited) using a seeded RNG.

    About ``round(count * invalid_share)`` rows are broken so that importing them yields an error and skips
    the row; all other rows import (some with warnings: old numbers, office landlines).
    """
    if count < 0:
        raise ValueError("count must not be negative")
    if not 0.0 <= invalid_share <= 1.0:
        raise ValueError("invalid_share must be between 0 and 1")
    rng = random.Random(seed)  # noqa: S311  demo data, reproducible from the seed; no secret
    generator = _Generator(rng)
    broken = set(rng.sample(range(count), k=round(count * invalid_share)))
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER, lineterminator="\r\n")
        writer.writeheader()
        for index in range(count):
            row = generator.row(index + 1)
            if index in broken:
                generator.break_row(row)
            writer.writerow(row)


# A stride coprime to 10 walks every subscriber number of a prefix once, so the numbers of one prefix are
# unique and spread over its whole range rather than counting up from 0000000.
_STRIDE: Final = 7_654_321
MAX_VALID_CONTACTS: Final = len(_MOBILE_PREFIXES) * 10 ** (10 - max(len(p) for p in _MOBILE_PREFIXES))


def _unique_mobile(index: int) -> str:
    """The ``index``-th of distinct valid mobiles, round-robin over the carriers' prefixes."""
    prefix = _MOBILE_PREFIXES[index % len(_MOBILE_PREFIXES)]
    digits = 10 - len(prefix)
    return prefix + str((index // len(_MOBILE_PREFIXES) * _STRIDE) % 10**digits).zfill(digits)


def generate_valid_contacts(path: Path, *, count: int, seed: int = 143) -> None:
    """Write ``count`` citizens to ``path`` (the same CSV as ``generate_contacts``), every row valid: a unique
    mobile number in the national form, a unique e-mail, a commune-level unit; row by row, so memory stays flat."""
    if not 0 <= count <= MAX_VALID_CONTACTS:
        raise ValueError(f"count must be between 0 and {MAX_VALID_CONTACTS:,}")
    generator = _Generator(random.Random(seed))  # noqa: S311  demo data, reproducible from the seed; no secret
    rng = generator.rng
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(HEADER)
        for index in range(count):
            full_name, ho, _dem, ten = generator.name()
            email = f"{_ascii(ten)}.{_ascii(ho)}.{index + 1}@{rng.choice(_WEBMAIL)}"
            fields = {"external_id": f"DN-{index + 1:07d}", "full_name": full_name, "phone": _unique_mobile(index),
                      "email": email, "segment": "citizen", "ward": rng.choice(UNITS), "language": "vi"}  # fmt: skip
            writer.writerow([fields.get(column, "") for column in HEADER])
