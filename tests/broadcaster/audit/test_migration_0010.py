"""Migration 0010 on a log written before the chain: ids with gaps become positions 1…n in their order, the
addresses in them are masked, the chain verifies; downgrading to 0009 works."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from broadcaster.audit.verify import verify_chain
from broadcaster.db.engine import make_engine
from broadcaster.db.migrate import alembic_config, upgrade

PHONE = "+84905123456"
# (old id, action, reason, details)
OLD_ROWS = [
    (3, "users.add", "thêm người dùng", {"login": "bien_tap"}),
    (7, "test_send.sent", f"gửi thử tới {PHONE}", {"recipients": [PHONE, "an.nguyen@example.vn"]}),
    (12, "policy.set", None, {"key": "x", "old": "1", "new": "2"}),
]


def _migrate(engine: Engine, url: str, revision: str, *, down: bool = False) -> None:
    with engine.begin() as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    url = (
        request.getfixturevalue("postgres_url")
        if request.param == "postgresql"
        else f"sqlite:///{tmp_path / 'm.db'}"
    )
    engine = make_engine(url)
    yield engine, url
    engine.dispose()


def _as_text(reason: str | None, details: object) -> str:
    """SQLite hands JSON back as text, PostgreSQL parsed."""
    return f"{reason} {details if isinstance(details, str) else json.dumps(details, ensure_ascii=False)}"


def test_0010_chains_the_old_entries_and_downgrades(database: tuple[Engine, str]) -> None:
    engine, url = database
    _migrate(engine, url, "0009")
    with engine.begin() as connection:
        for old_id, action, reason, details in OLD_ROWS:
            connection.execute(
                text(
                    "INSERT INTO audit_log (id, at, actor, action, subject_type, subject_id, reason, details)"
                    " VALUES (:id, :at, 'quan_tri', :action, 'x', :id, :reason, :details)"
                ),
                {
                    "id": old_id,
                    "at": f"2026-06-0{old_id % 9 + 1} 01:00:00",
                    "action": action,
                    "reason": reason,
                    "details": json.dumps(details),
                },
            )

    upgrade(url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, action, reason, details FROM audit_log ORDER BY id")).all()
        head = connection.execute(text("SELECT last_id FROM audit_chain_head")).scalar_one()
    assert [(row.id, row.action) for row in rows] == [
        (1, "users.add"),
        (2, "test_send.sent"),
        (3, "policy.set"),
    ]
    assert head == 3
    stored = " ".join(_as_text(row.reason, row.details) for row in rows)
    assert PHONE not in stored
    assert "an.nguyen@example.vn" not in stored
    assert "090****456" in stored
    assert "a***@example.vn" in stored
    with Session(engine) as session:
        verdict = verify_chain(session)
    assert verdict.ok, verdict.broken
    assert verdict.entries == 3

    _migrate(engine, url, "0009", down=True)
    with engine.connect() as connection:
        columns = set(connection.execute(text("SELECT * FROM audit_log")).keys())
        count = connection.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    assert not columns & {"prev_hash", "entry_hash"}
    assert count == 3
    upgrade(url)  # and up again: the entries are chained afresh
    with Session(engine) as session:
        assert verify_chain(session).ok
