"""A PostgreSQL installation bootstrapped as the README shows (issue 16, defect 2): ``init --database-url``
writes the URL into the settings, migrates that database and makes the first admin there (no SQLite file);
``db upgrade`` gives a database with no user its first admin, after ``[database] url`` changed."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from sqlalchemy import select

from broadcaster.db.engine import make_engine
from broadcaster.db.models import User
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.test_cli import Cli, one_line
from tests.conftest import free_port

FIRST_ADMIN = "is its first admin"


def users_in(url: str) -> list[tuple[str, str]]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return [(login, role.value) for login, role in connection.execute(select(User.login, User.role))]
    finally:
        engine.dispose()


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_env: None) -> Cli:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    return Cli(monkeypatch)


@pytest.mark.services
def test_init_with_a_database_url_migrates_it_and_makes_the_admin_there(
    cli: Cli, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = cli("init", "lam-viec", "--admin", "quan_tri_so", "--database-url", postgres_url)

    shown = one_line(result.stdout)
    assert "admin user quan_tri_so" in shown
    assert "Database: postgresql://postgres@127.0.0.1:5432/test" in shown
    workdir = tmp_path / "lam-viec"
    settings = tomllib.loads((workdir / "broadcaster.toml").read_text(encoding="utf-8"))
    assert settings["database"]["url"] == postgres_url
    assert not list(workdir.glob("*.sqlite3"))  # nothing went to the SQLite default
    assert users_in(postgres_url) == [("quan_tri_so", "admin")]

    monkeypatch.chdir(workdir)
    assert [u["login"] for u in cli.json("users", "list", user="quan_tri_so")] == ["quan_tri_so"]
    assert FIRST_ADMIN not in cli("db", "upgrade", user="quan_tri_so").stdout


@pytest.mark.services
def test_db_upgrade_gives_a_database_with_no_user_its_first_admin(
    cli: Cli, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path the README used to show: init (SQLite), then [database] url switched to PostgreSQL."""
    cli("init", "lam-viec")
    monkeypatch.chdir(tmp_path / "lam-viec")
    monkeypatch.setenv("BROADCASTER_DATABASE__URL", postgres_url)

    first = one_line(cli("db", "upgrade").stdout)

    assert f"{ADMIN_LOGIN} {FIRST_ADMIN}" in first
    assert users_in(postgres_url) == [(ADMIN_LOGIN, "admin")]
    cli("users", "add", "bien_tap", "--role", "editor")
    again = one_line(cli("db", "upgrade", "--admin", "nguoi_khac").stdout)
    assert FIRST_ADMIN not in again
    assert sorted(users_in(postgres_url)) == [("bien_tap", "editor"), (ADMIN_LOGIN, "admin")]


@pytest.mark.services
def test_init_refuses_a_database_that_already_holds_an_installation(
    cli: Cli, tmp_path: Path, postgres_url: str
) -> None:
    cli("init", "so-cu", "--database-url", postgres_url)

    refused = cli("init", "so-moi", "--admin", "ke_khac", "--database-url", postgres_url, expect=1)

    assert "already has 1 user(s): it belongs to an installation" in one_line(refused.stderr)
    assert "--database-url" in one_line(refused.stderr)
    assert not (tmp_path / "so-moi").exists()
    assert users_in(postgres_url) == [(ADMIN_LOGIN, "admin")]


def test_init_with_a_database_that_does_not_answer_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    url = f"postgresql://broadcaster:mat-khau@127.0.0.1:{free_port()}/broadcaster"

    refused = cli("init", "lam-viec", "--database-url", url, expect=1)

    said = one_line(refused.stderr)
    assert "cannot use the database postgresql://broadcaster:***@127.0.0.1" in said
    assert "(--database-url)" in said
    assert "mat-khau" not in said
    assert not (tmp_path / "lam-viec").exists()


def test_init_with_a_malformed_database_url_says_which_setting(cli: Cli, tmp_path: Path) -> None:
    refused = cli("init", "lam-viec", "--database-url", "khong-phai-url", expect=1)

    assert "the database URL is not usable" in one_line(refused.stderr)
    assert not (tmp_path / "lam-viec").exists()
