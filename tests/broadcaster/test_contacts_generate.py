"""Generated contacts (``broadcaster.contacts.generate``): deterministic, and read back as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.contacts.danang_units import COMMUNES, UNITS, WARDS
from broadcaster.contacts.generate import MAX_VALID_CONTACTS, generate_contacts, generate_valid_contacts
from broadcaster.contacts.phones import is_sms_capable
from broadcaster.contacts.reader import read_contacts


def test_generate_contacts_is_deterministic(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    generate_contacts(a, count=300, seed=7)
    generate_contacts(b, count=300, seed=7)
    generate_contacts(c, count=300, seed=8)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_generated_contacts_read_back(tmp_path: Path) -> None:
    path = tmp_path / "danang.csv"
    count, share = 2000, 0.02
    generate_contacts(path, count=count, seed=143, invalid_share=share)
    result = read_contacts(path)
    assert result.total_rows == count
    broken = round(count * share)
    assert abs(len(result.rows) - (count - broken)) <= count * 0.005
    assert len(result.errors) >= broken * 0.9
    reasons = {p.reason for p in result.problems}
    assert "landline: cannot receive SMS" in reasons
    assert any(r.startswith("old 11-digit number converted to 0") for r in reasons)
    assert {"name is empty", "not a valid Vietnamese number"} <= reasons

    rows = result.rows
    assert all(r.external_id is not None and r.external_id.startswith("DN-") for r in rows)
    assert len({r.external_id for r in rows}) == len(rows)
    assert {r.segment for r in rows} == {"citizen", "civil_servant", "business"}
    civil = [r for r in rows if r.segment == "civil_servant"]
    assert all(r.email is not None and r.email.endswith("@danang.gov.vn") and r.agency for r in civil)
    assert sum(1 for r in rows if r.phone is not None and r.email is not None) > count // 10
    assert any(r.phone is not None and r.phone.converted_from for r in rows)
    assert any("＋" in (r.raw_phone or "") or "０" in (r.raw_phone or "") for r in rows)  # full-width forms
    assert any((r.raw_phone or "").startswith("0084") for r in rows)
    assert any(any(ch in "ăâđêôơưĐ" for ch in r.full_name.lower()) for r in rows)
    # The city's 94 commune-level units since 01/07/2025, and no districts (docs/domain.md §0).
    assert {r.ward for r in rows} <= set(UNITS)
    assert len({r.ward for r in rows}) > 80
    assert {"Phường Hải Châu", "Phường Tam Kỳ", "Phường Hội An", "Xã Hòa Vang"} & {r.ward for r in rows}
    assert all(r.district is None for r in rows)


def test_the_units_are_the_94_of_the_2025_reorganisation() -> None:
    assert (len(WARDS), len(COMMUNES), len(UNITS)) == (23, 70, 94)
    assert len(set(UNITS)) == 94


def test_valid_contacts_all_read_back_with_their_own_number_and_email(tmp_path: Path) -> None:
    path = tmp_path / "city.csv"
    count = 3000
    generate_valid_contacts(path, count=count, seed=5)
    result = read_contacts(path)
    assert result.total_rows == count
    assert result.problems == []
    rows = result.rows
    assert len(rows) == count
    assert all(r.phone is not None and is_sms_capable(r.phone) for r in rows)
    assert len({r.phone.e164 for r in rows if r.phone is not None}) == count
    assert len({r.email for r in rows}) == count
    assert {r.ward for r in rows} == set(UNITS)  # 3,000 draws from 94 units: every unit comes up
    carriers = {r.phone.carrier for r in rows if r.phone is not None}
    assert len(carriers) >= 4, carriers


def test_generate_valid_contacts_is_deterministic_and_bounded(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    generate_valid_contacts(a, count=50, seed=7)
    generate_valid_contacts(b, count=50, seed=7)
    assert a.read_bytes() == b.read_bytes()
    with pytest.raises(ValueError, match="count"):
        generate_valid_contacts(tmp_path / "x.csv", count=MAX_VALID_CONTACTS + 1)


def test_generate_contacts_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid_share"):
        generate_contacts(tmp_path / "x.csv", invalid_share=1.5)
