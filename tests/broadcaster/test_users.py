"""Users and roles: the permission table, who the CLI acts as, adding users and changing roles (audited)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from broadcaster.clock import FrozenClock
from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry, User
from broadcaster.errors import NotFound, StateError, UserError
from broadcaster.users import (
    PERMISSIONS,
    IdentityError,
    PermissionDenied,
    add_user,
    current_login,
    deactivate,
    require,
    resolve_actor,
    set_role,
)
from broadcaster.vocabulary import Role
from broadcaster.workdir import WorkdirError, init_workdir
from tests.broadcaster.conftest import ADMIN_LOGIN, database_dump, set_policy

# Reading a report rebuilds the open days' rollups (derived data, no fact changes): auditors may.
READ_ACTIONS = ("read", "reports.read")
WRITE_ACTIONS = [action for action in PERMISSIONS if action not in READ_ACTIONS]


def _user(role: Role, login: str = "someone") -> User:
    return User(login=login, role=role)


@pytest.mark.parametrize("role", list(Role))
def test_everyone_may_read(role: Role) -> None:
    require(_user(role), "read")


def test_auditors_read_reports_but_approvers_do_not() -> None:
    require(_user(Role.AUDITOR), "reports.read")
    with pytest.raises(
        PermissionDenied, match=re.escape("'reports.read' needs one of: admin, auditor, editor")
    ):
        require(_user(Role.APPROVER), "reports.read")


@pytest.mark.parametrize("action", WRITE_ACTIONS)
def test_auditors_change_nothing(action: str) -> None:
    with pytest.raises(PermissionDenied, match=re.escape(f"has role 'auditor'; '{action}' needs one of")):
        require(_user(Role.AUDITOR, "kiem_toan"), action)


def test_approving_is_kept_apart_from_editing() -> None:
    require(_user(Role.APPROVER), "campaigns.approve")
    for role in (Role.ADMIN, Role.EDITOR):
        with pytest.raises(PermissionDenied, match="needs one of: approver"):
            require(_user(role), "campaigns.approve")
    for action in ("contacts.import", "campaigns.load", "campaigns.submit", "campaigns.send", "users.manage"):
        with pytest.raises(PermissionDenied):
            require(_user(Role.APPROVER), action)


def test_only_admins_manage_users() -> None:
    require(_user(Role.ADMIN), "users.manage")
    with pytest.raises(PermissionDenied, match=r"'users\.manage' needs one of: admin"):
        require(_user(Role.EDITOR, "bien_tap"), "users.manage")


def test_editors_run_campaigns() -> None:
    for action in ("contacts.import", "campaigns.load", "campaigns.submit", "campaigns.schedule"):
        require(_user(Role.EDITOR), action)
        require(_user(Role.ADMIN), action)


def test_permission_message_names_user_role_and_fix() -> None:
    with pytest.raises(PermissionDenied) as caught:
        require(_user(Role.EDITOR, "bien_tap"), "campaigns.approve")
    message = str(caught.value)
    assert "'bien_tap' has role 'editor'" in message
    assert "broadcaster users set-role" in message


def test_cli_acts_as_the_os_login(context: AppContext) -> None:
    with context.sessions() as session:
        assert current_login(session) == ADMIN_LOGIN
        user = resolve_actor(session)
    assert (user.login, user.role) == (ADMIN_LOGIN, Role.ADMIN)


def test_broadcaster_user_is_refused_unless_the_policy_allows(
    context: AppContext, create_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    create_user(role=Role.APPROVER, login="phe_duyet")
    monkeypatch.setenv("BROADCASTER_USER", "phe_duyet")
    with context.sessions() as session, pytest.raises(IdentityError, match=r"policy allow_env_user is false"):
        current_login(session)
    set_policy(context, "allow_env_user", "true")
    with context.sessions() as session:
        assert current_login(session) == "phe_duyet"
        assert resolve_actor(session).role == Role.APPROVER


def test_unknown_login_is_told_how_to_get_added(context: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "nguoi_la")
    with context.sessions() as session, pytest.raises(IdentityError) as caught:
        resolve_actor(session)
    assert "'nguoi_la' is not a Broadcaster user" in str(caught.value)
    assert "broadcaster users add nguoi_la --role editor" in str(caught.value)


def test_deactivated_user_cannot_act(
    context: AppContext, create_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    create_user(role=Role.EDITOR, login="da_nghi")
    with context.sessions.begin() as session:
        user = session.scalar(select(User).where(User.login == "da_nghi"))
        assert user is not None
        user.active = False
    monkeypatch.setattr("getpass.getuser", lambda: "da_nghi")
    with context.sessions() as session, pytest.raises(IdentityError, match="deactivated"):
        resolve_actor(session)


def test_add_user_is_stored_and_audited(context: AppContext, clock: FrozenClock) -> None:
    with context.sessions.begin() as session:
        add_user(
            session,
            actor=ADMIN_LOGIN,
            login="nguyen.van-an",
            role=Role.EDITOR,
            display_name="Nguyễn Văn An",
            clock=clock,
        )
    with context.sessions() as session:
        user = session.scalar(select(User).where(User.login == "nguyen.van-an"))
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert user is not None
    assert (user.role, user.display_name, user.active, user.created_by) == (
        Role.EDITOR,
        "Nguyễn Văn An",
        True,
        ADMIN_LOGIN,
    )
    assert user.created_at == clock.now()
    assert entry is not None
    assert (entry.actor, entry.action, entry.subject_id, entry.details) == (
        ADMIN_LOGIN,
        "user.add",
        "nguyen.van-an",
        {"role": "editor"},
    )


@pytest.mark.parametrize("login", ["Nguyen", "an nguyen", "1an", "", "ân", "a" * 65])
def test_invalid_logins_are_refused(context: AppContext, clock: FrozenClock, login: str) -> None:
    before = database_dump(context.engine)
    with pytest.raises(UserError, match="is not valid"), context.sessions.begin() as session:
        add_user(session, actor=ADMIN_LOGIN, login=login, role=Role.EDITOR, clock=clock)
    assert database_dump(context.engine) == before


def test_duplicate_login_is_refused_and_changes_nothing(
    context: AppContext, create_user: Callable[..., User], clock: FrozenClock
) -> None:
    create_user(role=Role.EDITOR, login="bien_tap")
    before = database_dump(context.engine)
    with pytest.raises(StateError, match="already exists"), context.sessions.begin() as session:
        add_user(session, actor=ADMIN_LOGIN, login="bien_tap", role=Role.APPROVER, clock=clock)
    assert database_dump(context.engine) == before


def test_set_role_is_audited_with_old_and_new_role(
    context: AppContext, create_user: Callable[..., User], clock: FrozenClock
) -> None:
    create_user(role=Role.EDITOR, login="bien_tap")
    with context.sessions.begin() as session:
        set_role(session, actor=ADMIN_LOGIN, login="bien_tap", role=Role.APPROVER, clock=clock)
    with context.sessions() as session:
        user = session.scalar(select(User).where(User.login == "bien_tap"))
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert user is not None
    assert user.role == Role.APPROVER
    assert entry is not None
    assert (entry.action, entry.details) == ("user.set_role", {"from": "editor", "to": "approver"})


def test_set_role_of_unknown_user(context: AppContext, clock: FrozenClock) -> None:
    with pytest.raises(NotFound, match="no user 'khong_co'"), context.sessions.begin() as session:
        set_role(session, actor=ADMIN_LOGIN, login="khong_co", role=Role.EDITOR, clock=clock)


def test_the_last_admin_cannot_be_demoted(
    context: AppContext, create_user: Callable[..., User], clock: FrozenClock
) -> None:
    before = database_dump(context.engine)
    with pytest.raises(StateError, match="last admin"), context.sessions.begin() as session:
        set_role(session, actor=ADMIN_LOGIN, login=ADMIN_LOGIN, role=Role.EDITOR, clock=clock)
    assert database_dump(context.engine) == before
    create_user(role=Role.ADMIN, login="quan_tri_2")
    with context.sessions.begin() as session:
        set_role(session, actor=ADMIN_LOGIN, login=ADMIN_LOGIN, role=Role.AUDITOR, clock=clock)
    with context.sessions() as session:
        roles = {user.login: user.role for user in session.scalars(select(User))}
    assert roles == {ADMIN_LOGIN: Role.AUDITOR, "quan_tri_2": Role.ADMIN}


def test_init_creates_the_first_admin_and_audits_it(context: AppContext) -> None:
    with context.sessions() as session:
        users = list(session.scalars(select(User)))
        entries = list(session.scalars(select(AuditEntry)))
    assert [(u.login, u.role) for u in users] == [(ADMIN_LOGIN, Role.ADMIN)]
    assert [(e.actor, e.action, e.subject_id) for e in entries] == [(ADMIN_LOGIN, "user.add", ADMIN_LOGIN)]


def test_init_refuses_an_existing_directory_without_force(workdir: Path, clock: FrozenClock) -> None:
    config = workdir / "broadcaster.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n# giữ nguyên\n", encoding="utf-8")
    with pytest.raises(WorkdirError, match="already exists"):
        init_workdir(workdir, admin_login=ADMIN_LOGIN, clock=clock)
    assert config.read_text(encoding="utf-8").endswith("# giữ nguyên\n")


def test_init_with_an_invalid_admin_login_creates_nothing(
    tmp_path: Path, clock: FrozenClock, isolated_env: None
) -> None:
    with pytest.raises(UserError, match="is not valid"):
        init_workdir(tmp_path / "wd", admin_login="Quản Trị", clock=clock)
    assert not (tmp_path / "wd").exists()


def test_deactivate_ends_sessions_protects_the_last_admin_and_is_audited(context: AppContext) -> None:
    with context.sessions.begin() as session:
        add_user(session, actor=ADMIN_LOGIN, login="tam_nghi", role=Role.EDITOR, clock=context.clock)
    with context.sessions.begin() as session:
        user = deactivate(session, actor=ADMIN_LOGIN, login="tam_nghi", clock=context.clock)
        assert user.active is False
    with context.readers() as session:
        assert session.scalar(select(AuditEntry).where(AuditEntry.action == "user.deactivate")) is not None
    with context.sessions.begin() as session, pytest.raises(StateError):
        deactivate(session, actor="someone", login=ADMIN_LOGIN, clock=context.clock)
    with context.sessions.begin() as session, pytest.raises(StateError):
        deactivate(session, actor=ADMIN_LOGIN, login="tam_nghi", clock=context.clock)
