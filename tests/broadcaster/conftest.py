"""Factories for the engine's tests: a working directory made by ``init_workdir``, users, campaign files, contacts.

Every test that touches the database gets its own ``broadcaster init`` directory in ``tmp_path`` with a
frozen clock, so tests never share state and never sleep.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from argon2 import PasswordHasher
from sqlalchemy import Engine, select

from broadcaster import i18n, policies, users
from broadcaster.clock import FrozenClock
from broadcaster.contacts.importer import ImportReport, import_contacts
from broadcaster.context import AppContext
from broadcaster.db.migrations_support import target_metadata
from broadcaster.db.models import User
from broadcaster.users import add_user
from broadcaster.vocabulary import Role
from tests.broadcaster.workdir_templates import WorkdirTemplates

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "contacts"

# The person at the keyboard in every test: getpass.getuser() is patched to return this login.
ADMIN_LOGIN = "quan_tri"

# Test-run switches, not settings: they survive the isolation.
KEEP_ENV = frozenset({"BROADCASTER_TEST_POSTGRES_URL", "BROADCASTER_REQUIRE_SERVICES"})

# Monday 2 June 2025, 08:00 in Da Nang (UTC+7).
START = datetime(2025, 6, 2, 1, 0, tzinfo=UTC)

DEFAULT_SMS = "{{ org.short_name }} thông báo: từ {{ vars.ngay }}, thủ tục {{ vars.thu_tuc }} được tiếp nhận trực tuyến."
DEFAULT_EMAIL_SUBJECT = "Thông báo từ {{ vars.ngay }}: {{ vars.thu_tuc }}"
DEFAULT_EMAIL_TEXT = (
    "Kính gửi {{ contact.full_name or 'Quý ông/bà' }},\n\n"
    "Từ ngày {{ vars.ngay }}, thủ tục {{ vars.thu_tuc }} được tiếp nhận trực tuyến.\n\n"
    "{{ org.name }}\n"
)


def campaign_definition(*, template: str = "thu-nghiem", **overrides: Any) -> dict[str, Any]:
    """A valid SMS + e-mail campaign (like campaigns/examples); top-level keys of ``overrides`` replace."""
    definition: dict[str, Any] = {
        "id": "thong-bao-thu-nghiem",
        "title": "Thông báo thử nghiệm tiếp nhận hồ sơ trực tuyến",
        "plan_item": "III.9",
        "lead_agency": "Sở Khoa học và Công nghệ",
        "topics": ["thu_tuc_hanh_chinh"],
        "purpose": "public_information",
        "audience": {"segments": ["citizen", "civil_servant", "business"]},
        "channels": {
            "sms": {"template": f"sms/{template}", "provider": "sms_main", "unaccented": True},
            "email": {"template": f"email/{template}", "provider": "mail"},
        },
        "variables": {"ngay": "01/07/2025", "thu_tuc": "cấp đổi giấy phép lái xe"},
    }
    definition.update(overrides)
    return definition


def write_campaign(
    directory: Path,
    *,
    sms_text: str = DEFAULT_SMS,
    email_subject: str = DEFAULT_EMAIL_SUBJECT,
    email_text: str = DEFAULT_EMAIL_TEXT,
    template: str = "thu-nghiem",
    **overrides: Any,
) -> Path:
    """Write a valid campaign file into ``directory/campaigns/tests/`` and its templates into
    ``directory/templates/`` (a working directory's layout); returns the campaign file's path.

    ``template`` names the template files (and the channels, unless ``channels=`` is given); ``overrides``
    replace top-level keys of the definition (``id=``, ``audience=``, ``schedule=`` ...).
    """
    definition = campaign_definition(template=template, **overrides)
    templates = directory / "templates"
    (templates / "sms").mkdir(parents=True, exist_ok=True)
    (templates / "email").mkdir(parents=True, exist_ok=True)
    (templates / "sms" / f"{template}.txt.j2").write_text(sms_text, encoding="utf-8")
    (templates / "email" / f"{template}.subject.j2").write_text(email_subject, encoding="utf-8")
    (templates / "email" / f"{template}.txt.j2").write_text(email_text, encoding="utf-8")
    target = directory / "campaigns" / "tests" / f"{definition['id']}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(definition, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


def database_dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, ordered: compare two dumps to prove a refused action changed nothing."""
    dump: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for metadata in target_metadata():
            for table in metadata.sorted_tables:
                rows = connection.execute(select(table)).all()
                dump[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return dump


def set_policy(context: AppContext, key: str, value: str) -> None:
    """Set a policy as the admin, committed (what `broadcaster policy set` does)."""
    with context.sessions.begin() as session:
        policies.set_policy(
            session, actor=ADMIN_LOGIN, key=key, text=value, reason="test", clock=context.clock
        )


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with its smallest cost in this process: the tests sign people in hundreds of times, and what
    they check (a password matches or not, a hash is argon2id) does not depend on the cost."""
    monkeypatch.setattr(users, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture(autouse=True)
def english(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The tests read English: ``LANG=en_US.UTF-8`` (inherited by the commands a test starts) and English
    in this process; a test of the Vietnamese texts asks for them (``language = "vi"``, ``LANG``, ``using``)."""
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    with i18n.using("en"):
        yield


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, english: None) -> None:
    """No settings or identity leak in from the developer's shell (the language is English, see ``english``);
    the OS login is ``ADMIN_LOGIN``."""
    for name in list(os.environ):
        if name.startswith("BROADCASTER_") and name not in KEEP_ENV:
            monkeypatch.delenv(name)
    monkeypatch.setattr(getpass, "getuser", lambda: ADMIN_LOGIN)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture(scope="session")
def workdir_templates(tmp_path_factory: pytest.TempPathFactory) -> WorkdirTemplates:
    """``workdir_templates.make(directory, admin_login=..., clock=...)``: a new working directory as
    ``init_workdir`` makes it, copied from one made once per session (see workdir_templates.py)."""
    return WorkdirTemplates(tmp_path_factory.mktemp("workdir-templates"))


@pytest.fixture
def workdir(
    tmp_path: Path, clock: FrozenClock, isolated_env: None, workdir_templates: WorkdirTemplates
) -> Path:
    """A working directory made by ``init_workdir`` (settings, default files, migrated database, admin)."""
    directory = tmp_path / "wd"
    workdir_templates.make(directory, admin_login=ADMIN_LOGIN, clock=clock)
    return directory


@pytest.fixture
def context(workdir: Path, clock: FrozenClock) -> Iterator[AppContext]:
    ctx = AppContext.load(workdir / "broadcaster.toml", clock=clock)
    yield ctx
    ctx.close()


@pytest.fixture
def admin(context: AppContext) -> User:
    with context.sessions() as session:
        user = session.scalar(select(User).where(User.login == ADMIN_LOGIN))
    assert user is not None
    return user


@pytest.fixture
def create_user(context: AppContext) -> Callable[..., User]:
    """``create_user(role=Role.EDITOR, login=None)``: a stored user (login defaults to the role + a number)."""
    counter = iter(range(1, 1000))

    def create(*, role: Role | str = Role.EDITOR, login: str | None = None) -> User:
        role = Role(role)
        login = login or f"{role.value}_{next(counter)}"
        with context.sessions.begin() as session:
            user = add_user(session, actor=ADMIN_LOGIN, login=login, role=role, clock=context.clock)
        return user

    return create


@pytest.fixture
def import_fixture(context: AppContext) -> Callable[..., ImportReport]:
    """``import_fixture("danh-ba.csv")``: import a committed fixture file through the importer, committed."""

    def run(name: str = "danh-ba.csv", *, actor: str = ADMIN_LOGIN) -> ImportReport:
        with context.sessions.begin() as session:
            return import_contacts(session, path=FIXTURES / name, actor=actor, clock=context.clock)

    return run


@pytest.fixture
def contacts(import_fixture: Callable[..., ImportReport]) -> ImportReport:
    """The contacts of danh-ba.csv (11 stored) in the database."""
    return import_fixture("danh-ba.csv")
