"""Đà Nẵng's 94 commune-level units since 01/07/2025: 23 phường, 70 xã and the đặc khu Hoàng Sa
(docs/domain.md §0, where the list's source is cited).

Sample data for generated contacts (``contacts.generate``) only: the engine keeps ``ward`` as free text that
campaigns filter on, so the list of units stays data that an installation's own files bring, not code.
"""

from __future__ import annotations

from typing import Final

__all__ = ["COMMUNES", "SPECIAL_ZONE", "UNITS", "WARDS"]

WARDS: Final = (
    "Hải Châu", "Hòa Cường", "Thanh Khê", "An Khê", "An Hải", "Sơn Trà", "Ngũ Hành Sơn", "Hòa Khánh",
    "Hải Vân", "Liên Chiểu", "Cẩm Lệ", "Hòa Xuân", "Tam Kỳ", "Quảng Phú", "Hương Trà", "Bàn Thạch",
    "Điện Bàn", "Điện Bàn Đông", "An Thắng", "Điện Bàn Bắc", "Hội An", "Hội An Đông", "Hội An Tây",
)  # fmt: skip
COMMUNES: Final = (
    "Hòa Vang", "Hòa Tiến", "Bà Nà", "Núi Thành", "Tam Mỹ", "Tam Anh", "Đức Phú", "Tam Xuân", "Tây Hồ",
    "Chiên Đàn", "Phú Ninh", "Lãnh Ngọc", "Tiên Phước", "Thạnh Bình", "Sơn Cẩm Hà", "Trà Liên", "Trà Giáp",
    "Trà Tân", "Trà Đốc", "Trà My", "Nam Trà My", "Trà Tập", "Trà Vân", "Trà Linh", "Trà Leng", "Thăng Bình",
    "Thăng An", "Thăng Trường", "Thăng Điền", "Thăng Phú", "Đồng Dương", "Quế Sơn Trung", "Quế Sơn",
    "Xuân Phú", "Nông Sơn", "Quế Phước", "Duy Nghĩa", "Nam Phước", "Duy Xuyên", "Thu Bồn", "Điện Bàn Tây",
    "Gò Nổi", "Đại Lộc", "Hà Nha", "Thượng Đức", "Vu Gia", "Phú Thuận", "Thạnh Mỹ", "Bến Giằng", "Nam Giang",
    "Đắc Pring", "La Dêê", "La Êê", "Sông Vàng", "Sông Kôn", "Đông Giang", "Bến Hiên", "Avương", "Tây Giang",
    "Hùng Sơn", "Hiệp Đức", "Việt An", "Phước Trà", "Khâm Đức", "Phước Năng", "Phước Chánh", "Phước Thành",
    "Phước Hiệp",
    "Tam Hải", "Tân Hiệp",  # the two communes the 2025 reorganisation left as they were
)  # fmt: skip
SPECIAL_ZONE: Final = "Hoàng Sa"

# As a contacts file's ward column names them: with the unit's level, which tells "phường Điện Bàn" from
# "xã Điện Bàn Tây" at a glance.
UNITS: Final = (
    *(f"Phường {name}" for name in WARDS),
    *(f"Xã {name}" for name in COMMUNES),
    f"Đặc khu {SPECIAL_ZONE}",
)
