"""The settings fingerprint a long-running process records at start: once per change, secrets never in clear."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from broadcaster.audit.settings_fingerprint import ACTION, fingerprint, flatten, record_fingerprint
from broadcaster.audit.verify import verify_chain
from broadcaster.cli import app
from broadcaster.clock import FrozenClock
from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry
from broadcaster.settings import load_settings


def fingerprints(context: AppContext) -> list[AuditEntry]:
    with context.readers() as session:
        return list(
            session.scalars(select(AuditEntry).where(AuditEntry.action == ACTION).order_by(AuditEntry.id))
        )


def start(workdir: Path, context: AppContext, clock: FrozenClock, component: str = "worker") -> str | None:
    """A process starting with the settings file as it is now."""
    return record_fingerprint(
        context.sessions, load_settings(workdir / "broadcaster.toml"), component=component, clock=clock
    )


def edit(workdir: Path, old: str, new: str) -> None:
    path = workdir / "broadcaster.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_first_start_records_an_unchanged_one_nothing(
    workdir: Path, context: AppContext, clock: FrozenClock
) -> None:
    recorded = start(workdir, context, clock)

    [entry] = fingerprints(context)
    assert recorded == entry.details["fingerprint"] == entry.subject_id
    assert entry.actor.startswith("worker@")
    assert entry.actor.rsplit(":", 1)[1].isdigit()
    assert entry.details["changed"] == []
    values = entry.details["values"]
    assert values["providers.sms_main.tps"] == 200
    assert values["providers.sms_main.password"] == "********"
    assert "change-me" not in str(entry.details)
    assert start(workdir, context, clock, component="beat") is None
    assert len(fingerprints(context)) == 1


def test_a_changed_provider_setting_is_recorded_with_before_and_after(
    workdir: Path, context: AppContext, clock: FrozenClock
) -> None:
    start(workdir, context, clock)
    edit(workdir, "tps = 200", "tps = 50")

    assert start(workdir, context, clock) is not None

    first, second = fingerprints(context)
    assert second.details["previous"] == first.details["fingerprint"]
    assert second.details["changed"] == [{"key": "providers.sms_main.tps", "before": 200, "after": 50.0}]
    with context.readers() as session:
        assert verify_chain(session).ok


def test_a_changed_password_shows_changed_without_the_value(
    workdir: Path, context: AppContext, clock: FrozenClock
) -> None:
    start(workdir, context, clock)
    edit(workdir, 'password = "change-me"', 'password = "s3cret-mới"')

    start(workdir, context, clock)

    second = fingerprints(context)[-1]
    assert second.details["changed"] == [{"key": "providers.sms_main.password", "secret": "changed"}]
    assert "s3cret" not in str(second.details)
    assert "change-me" not in str(second.details)
    # The digest of a secret is keyed: not the plain SHA-256 of the value.
    digests = dict(second.details["digests"])
    assert (
        digests["providers.sms_main.password"]
        != flatten(load_settings(workdir / "broadcaster.toml"))["providers.sms_main.tps"].digest
    )


def test_a_database_url_password_is_a_secret(workdir: Path) -> None:
    settings = load_settings(workdir / "broadcaster.toml")
    with_password = settings.model_copy(
        update={"database": settings.database.model_copy(update={"url": "postgresql://app:pw123@db/prod"})}
    )
    flat = flatten(with_password)
    assert flat["database.url"].shown == "postgresql://app:********@db/prod"
    assert flat["database.url"].secret
    assert fingerprint(flat) != fingerprint(flatten(settings))


def test_beat_records_the_fingerprint_as_it_starts(
    workdir: Path, context: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real command: ``beat`` records before its first tick (stopped here by the tick itself)."""

    def stop(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("broadcaster.beat.engine_tick", stop)
    result = CliRunner().invoke(app, ["--config", str(workdir / "broadcaster.toml"), "beat"])
    assert result.exit_code == 0, result.output
    [entry] = fingerprints(context)
    assert entry.actor.startswith("beat@")
