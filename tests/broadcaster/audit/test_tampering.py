"""Each way of changing the audit log directly in the database makes `broadcaster audit verify` fail at the
right entry, on SQLite and PostgreSQL; an untouched log verifies; the triggers refuse the application's
UPDATE, DELETE (and TRUNCATE on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import delete, insert, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from broadcaster.audit.chain import entry_hash
from broadcaster.audit.verify import verify_chain
from broadcaster.clock import LOCAL_TZ
from broadcaster.users import add_user
from broadcaster.vocabulary import Role
from tests.broadcaster.audit.conftest import (
    LOG,
    Installation,
    cli_in,
    last_id,
    row,
    set_row,
    triggers_off,
    write_log,
)
from tests.broadcaster.test_cli import one_line

K = 9  # an entry in the middle of the log


def _update_field(installation: Installation, n: int) -> tuple[int, str]:
    set_row(installation.engine, K, actor="ke_gian")
    return K, "it was changed after it was written"


def _delete_entry(installation: Installation, n: int) -> tuple[int, str]:
    with installation.engine.begin() as connection:
        connection.execute(delete(LOG).where(LOG.c.id == K))
    return K, f"entry #{K}: was deleted from the log (the next remaining entry #{K + 1}"


def _delete_entries(installation: Installation, n: int) -> tuple[int, str]:
    with installation.engine.begin() as connection:
        connection.execute(delete(LOG).where(LOG.c.id.between(K, K + 2)))
    return (
        K,
        f"entry #{K}: entries #{K}–#{K + 2} were deleted from the log (the next remaining entry #{K + 3}",
    )


def _delete_last(installation: Installation, n: int) -> tuple[int, str]:
    with installation.engine.begin() as connection:
        connection.execute(delete(LOG).where(LOG.c.id == n))
    return n, "the last entries were deleted"


def _forged(installation: Installation, n: int, *, prev_hash: str) -> None:
    fields = {
        key: value
        for key, value in row(installation.engine, n).items()
        if key not in ("prev_hash", "entry_hash")
    }
    fields |= {"id": n + 1, "action": "campaign.approve", "subject_id": "gia-mao", "reason": "giả mạo"}
    with installation.engine.begin() as connection:
        connection.execute(
            insert(LOG).values(
                **fields, prev_hash=prev_hash, entry_hash=entry_hash(prev_hash=prev_hash, **fields)
            )
        )


def _insert_wrong_link(installation: Installation, n: int) -> tuple[int, str]:
    _forged(installation, n, prev_hash="f" * 64)
    return n + 1, "does not link to the entry before"


def _insert_rehashed(installation: Installation, n: int) -> tuple[int, str]:
    """A forged entry that links and hashes correctly: only the chain head (not updated) gives it away."""
    _forged(installation, n, prev_hash=row(installation.engine, n)["entry_hash"])
    return n + 1, "the log has entries beyond the chain head"


def _swap(installation: Installation, n: int) -> tuple[int, str]:
    """Two rows' contents exchanged whole (hashes too): the log reordered."""
    first, second = row(installation.engine, K), row(installation.engine, K + 4)
    set_row(installation.engine, K, **{key: value for key, value in second.items() if key != "id"})
    set_row(installation.engine, K + 4, **{key: value for key, value in first.items() if key != "id"})
    return (
        K,
        "it does not link to the entry before (prev_hash differs): an entry was deleted, inserted or reordered",
    )


def _swap_content(installation: Installation, n: int) -> tuple[int, str]:
    """Two rows' contents exchanged, each keeping its own hashes."""
    keep = ("id", "prev_hash", "entry_hash")
    first, second = row(installation.engine, K), row(installation.engine, K + 1)
    set_row(installation.engine, K, **{key: value for key, value in second.items() if key not in keep})
    set_row(installation.engine, K + 1, **{key: value for key, value in first.items() if key not in keep})
    return K, "it was changed after it was written"


TAMPERINGS: dict[str, Callable[[Installation, int], tuple[int, str]]] = {
    "update a field": _update_field,
    "delete an entry": _delete_entry,
    "delete three entries": _delete_entries,
    "delete the last entry": _delete_last,
    "insert with a wrong link": _insert_wrong_link,
    "insert correctly hashed": _insert_rehashed,
    "swap two rows": _swap,
    "swap two contents": _swap_content,
}


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_tampering_is_found_at_the_right_entry(
    installation: Installation, tampering: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = write_log(installation)
    assert n >= 20
    cli = cli_in(installation, monkeypatch)
    intact = cli("audit", "verify")
    assert f"intact: {n} entries; last entry #{n}" in one_line(intact.stdout)

    triggers_off(installation.engine)
    broken_id, phrase = TAMPERINGS[tampering](installation, n)

    result = one_line(cli("audit", "verify", expect=1).stdout)
    assert f"tampered with at entry #{broken_id}" in result
    assert phrase in result
    with Session(installation.engine) as session:
        verdict = verify_chain(session)
    assert verdict.broken is not None
    assert verdict.broken.entry_id == broken_id


def test_a_broken_entry_is_named_with_its_da_nang_time_and_action(
    installation: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_log(installation)
    original = row(installation.engine, K)
    triggers_off(installation.engine)
    set_row(installation.engine, K, reason="đã sửa")
    cli = cli_in(installation, monkeypatch)
    result = one_line(cli("audit", "verify", expect=1).stdout)
    local = original["at"].astimezone(LOCAL_TZ)
    assert f"entry #{K} (at {local:%d/%m/%Y %H:%M:%S} Da Nang time, action {original['action']})" in result


def test_every_reading_role_may_verify(installation: Installation, monkeypatch: pytest.MonkeyPatch) -> None:
    with installation.context.sessions.begin() as session:
        add_user(session, actor="quan_tri", login="kiem_toan", role=Role.AUDITOR, clock=installation.clock)
    n = last_id(installation.engine)
    cli = cli_in(installation, monkeypatch)
    verdict = cli.json("audit", "verify", user="kiem_toan")
    assert verdict["ok"] is True
    assert (verdict["last_id"], verdict["broken"]) == (n, None)


def test_the_triggers_refuse_the_applications_changes(installation: Installation) -> None:
    write_log(installation, 3)
    statements = ["UPDATE audit_log SET actor = 'x' WHERE id = 1", "DELETE FROM audit_log WHERE id = 2"]
    if installation.dialect == "postgresql":
        statements.append("TRUNCATE audit_log")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), installation.engine.begin() as connection:
            connection.execute(text(statement))
    with Session(installation.engine) as session:
        assert verify_chain(session).ok
