"""Fixtures of the consent tests: the consent tables in an in-memory database, and notice files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from consent import ledger
from consent.models import consent_metadata


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    consent_metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


@pytest.fixture
def notices(tmp_path: Path) -> Path:
    """``notices/<purpose>/v1.md`` for every purpose."""
    for purpose in ledger.PURPOSES:
        (tmp_path / purpose).mkdir()
        (tmp_path / purpose / "v1.md").write_text("Thông báo", encoding="utf-8")
    return tmp_path
