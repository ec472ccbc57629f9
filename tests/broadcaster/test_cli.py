"""The ``broadcaster`` command, driven through typer's CliRunner inside a working directory.

Every command's happy path (``--json`` parsed), the role check on every command that changes something,
identity errors, and bad input that must fail with one clear line and change nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from broadcaster.cli import app
from broadcaster.context import AppContext
from broadcaster.db.migrate import head_revision
from broadcaster.db.models import AuditEntry, User
from broadcaster.vocabulary import Role
from tests.broadcaster.conftest import ADMIN_LOGIN, FIXTURES, database_dump, write_campaign

CAMPAIGN = "thong-bao-thu-nghiem"
CAMPAIGN_FILE = f"campaigns/tests/{CAMPAIGN}.yaml"


class Cli:
    """Runs the app in the working directory as a given OS login."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.runner = CliRunner()

    def __call__(self, *args: str, user: str = ADMIN_LOGIN, expect: int = 0) -> Result:
        self.monkeypatch.setattr("getpass.getuser", lambda: user)
        result = self.runner.invoke(app, list(args))
        assert result.exit_code == expect, (args, result.stdout, result.stderr, result.exception)
        if expect == 0:
            assert result.exception is None
        return result

    def json(self, *args: str, user: str = ADMIN_LOGIN) -> Any:
        return json.loads(self(*args, "--json", user=user).stdout)


def one_line(text: str) -> str:
    """Rich wraps long lines at the terminal width; compare messages with whitespace collapsed."""
    return " ".join(text.split())


@pytest.fixture
def cli(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("COLUMNS", "200")
    return Cli(monkeypatch)


@pytest.fixture
def team(create_user: Callable[..., User]) -> None:
    create_user(role=Role.EDITOR, login="bien_tap")
    create_user(role=Role.APPROVER, login="phe_duyet")
    create_user(role=Role.APPROVER, login="pho_giam_doc")
    create_user(role=Role.AUDITOR, login="kiem_toan")


def test_init_and_db_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_env: None) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    cli = Cli(monkeypatch)
    result = cli("init", "lam-viec")
    assert f"admin user {ADMIN_LOGIN}" in one_line(result.stdout)
    workdir = tmp_path / "lam-viec"
    assert (workdir / "broadcaster.toml").is_file()
    assert (workdir / "templates" / "README.md").is_file()
    assert any((workdir / "campaigns").rglob("*.yaml"))

    again = cli("init", "lam-viec", expect=1)
    assert "already exists" in one_line(again.stderr)

    monkeypatch.chdir(workdir)
    assert cli.json("db", "current") == {"revision": head_revision()}
    assert "up to date" in cli("db", "upgrade").stdout
    users = cli.json("users", "list")
    assert [(u["login"], u["role"], u["active"]) for u in users] == [(ADMIN_LOGIN, "admin", True)]
    # --config works from anywhere.
    monkeypatch.chdir(tmp_path)
    assert cli.json("--config", str(workdir / "broadcaster.toml"), "db", "current") == {
        "revision": head_revision()
    }


def test_users_commands(cli: Cli) -> None:
    cli("users", "add", "bien_tap", "--role", "editor", "--name", "Trần Thị Bích")
    cli("users", "add", "kiem_toan", "-r", "auditor")
    cli("users", "set-role", "kiem_toan", "approver")
    users = {u["login"]: u for u in cli.json("users", "list", user="bien_tap")}
    assert users["bien_tap"]["display_name"] == "Trần Thị Bích"
    assert {login: u["role"] for login, u in users.items()} == {
        ADMIN_LOGIN: "admin",
        "bien_tap": "editor",
        "kiem_toan": "approver",
    }
    assert users["bien_tap"]["created_at"].endswith("+07:00")  # shown in Da Nang time
    table = cli("users", "list").stdout
    assert "Trần Thị Bích" in table
    assert "Approver" in table  # the role in words (broadcaster/web/labels.py)
    assert "already exists" in one_line(cli("users", "add", "bien_tap", "--role", "editor", expect=1).stderr)
    assert "not valid" in cli("users", "add", "Bien Tap", "--role", "editor", expect=1).stderr
    assert "no user 'khong_co'" in cli("users", "set-role", "khong_co", "editor", expect=1).stderr
    bad_role = cli("users", "add", "x_y", "--role", "boss", expect=2)
    assert "boss" in bad_role.stderr


def test_contacts_commands(cli: Cli, context: AppContext, team: None) -> None:
    report = cli.json("contacts", "import", str(FIXTURES / "danh-ba.csv"), user="bien_tap")
    assert (report["total_rows"], report["created"], report["skipped"]) == (15, 11, 4)
    assert any(
        p["row"] == 9 and p["column"] == "phone" and p["severity"] == "error" for p in report["problems"]
    )
    again = cli("contacts", "import", str(FIXTURES / "danh-ba.csv"), "--show", "2", user="bien_tap")
    summary = one_line(again.stdout)
    assert "15 rows — 0 created, 11 updated, 4 skipped, 11 merged" in summary
    assert "more; use --json for all" in summary

    listing = cli.json("contacts", "list", user="bien_tap")
    assert listing["total"] == 11
    assert len(listing["contacts"]) == 11
    names = {c["full_name"] for c in listing["contacts"]}
    assert "Nguyễn Văn An" in names
    business = cli.json("contacts", "list", "--segment", "business", "--limit", "5")
    assert [c["external_id"] for c in business["contacts"]] == ["DN-000003"]
    assert "Phạm Thu Hà" in cli("contacts", "list", user="bien_tap").stdout


def _contact_an(listing: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in listing["contacts"] if c["external_id"] == "DN-000001")
    return found


def test_auditors_and_admins_see_contacts_masked_unless_an_admin_asks(
    cli: Cli, context: AppContext, team: None
) -> None:
    cli("contacts", "import", str(FIXTURES / "danh-ba.csv"), user="bien_tap")
    for user in ("kiem_toan", ADMIN_LOGIN):
        masked = _contact_an(cli.json("contacts", "list", user=user))
        assert (masked["full_name"], masked["phone"], masked["email"]) == (
            "N. V. A.",
            "091****678",
            "a***@gmail.com",
        )
    table = cli("contacts", "list", user="kiem_toan").stdout
    assert "091****678" in table
    assert "a***@gmail.com" in table
    assert "Nguyễn Văn An" not in table
    assert "+84912345678" not in table
    assert "an.nguyen" not in table
    # Editors work with the contacts themselves.
    assert _contact_an(cli.json("contacts", "list", user="bien_tap"))["phone"] == "+84912345678"

    before = database_dump(context.engine)
    refused = cli("contacts", "list", "--unmasked", user="kiem_toan", expect=1)
    assert "'personal_data.unmasked' needs one of: admin" in one_line(refused.stderr)
    assert database_dump(context.engine) == before

    full = _contact_an(cli.json("contacts", "list", "--unmasked", "--segment", "citizen"))
    assert (full["full_name"], full["phone"]) == ("Nguyễn Văn An", "+84912345678")
    with context.sessions() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry is not None
    assert (entry.actor, entry.action, entry.subject_type) == (
        ADMIN_LOGIN,
        "personal_data.unmasked",
        "contacts",
    )
    assert entry.details["filters"] == {"segment": "citizen", "limit": 20}
    assert entry.details["shown"] > 0


@pytest.mark.parametrize(
    ("name", "message"),
    [("missing-name-column.csv", "full_name"), ("not-utf8.csv", "UTF-8")],
)
def test_a_broken_contacts_file_imports_nothing(
    cli: Cli, context: AppContext, team: None, name: str, message: str
) -> None:
    before = database_dump(context.engine)
    result = cli("contacts", "import", str(FIXTURES / name), user="bien_tap", expect=1)
    assert message in result.stderr
    assert "Nothing was imported" in one_line(result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert database_dump(context.engine) == before


FORBIDDEN = [
    (["users", "add", "moi", "--role", "editor"], "bien_tap", "editor", "users.manage"),
    (["users", "set-role", "bien_tap", "admin"], "phe_duyet", "approver", "users.manage"),
    (["policy", "set", "allow_env_user", "true", "-m", "diễn tập"], "bien_tap", "editor", "policies.manage"),
    (
        ["policy", "set", "second_approver_threshold", "0", "-m", "x"],
        "phe_duyet",
        "approver",
        "policies.manage",
    ),
    (["contacts", "import", str(FIXTURES / "danh-ba.csv")], "kiem_toan", "auditor", "contacts.import"),
    (["contacts", "import", str(FIXTURES / "danh-ba.csv")], "phe_duyet", "approver", "contacts.import"),
    (["campaigns", "load", CAMPAIGN_FILE], "kiem_toan", "auditor", "campaigns.load"),
    (["campaigns", "submit", CAMPAIGN], "phe_duyet", "approver", "campaigns.submit"),
    (["campaigns", "approve", CAMPAIGN], "bien_tap", "editor", "campaigns.approve"),
    (["campaigns", "approve", CAMPAIGN], ADMIN_LOGIN, "admin", "campaigns.approve"),
    (["campaigns", "reject", CAMPAIGN, "-m", "không"], "kiem_toan", "auditor", "campaigns.approve"),
    (["campaigns", "schedule", CAMPAIGN], "phe_duyet", "approver", "campaigns.schedule"),
    (["campaigns", "pause", CAMPAIGN], "kiem_toan", "auditor", "campaigns.pause"),
    (["campaigns", "resume", CAMPAIGN], "phe_duyet", "approver", "campaigns.resume"),
    (["campaigns", "cancel", CAMPAIGN], "kiem_toan", "auditor", "campaigns.cancel"),
    (
        ["campaigns", "test-send", CAMPAIGN, "--to", "0912345678"],
        "kiem_toan",
        "auditor",
        "campaigns.test_send",
    ),
    (["send", CAMPAIGN], "phe_duyet", "approver", "campaigns.send"),
    (["send", CAMPAIGN], "kiem_toan", "auditor", "campaigns.send"),
    (["run", "--once"], "kiem_toan", "auditor", "engine.run"),
    (["messages", "drop", "--campaign", CAMPAIGN, "-m", "sai"], "phe_duyet", "approver", "messages.operate"),
    (["messages", "release", "--campaign", CAMPAIGN, "-m", "x"], "kiem_toan", "auditor", "messages.operate"),
    (["messages", "retry", "--campaign", CAMPAIGN, "--dry-run"], "kiem_toan", "auditor", "messages.operate"),
]


@pytest.mark.parametrize(("args", "user", "role", "action"), FORBIDDEN)
def test_wrong_role_is_refused_and_changes_nothing(
    cli: Cli,
    context: AppContext,
    team: None,
    workdir: Path,
    args: list[str],
    user: str,
    role: str,
    action: str,
) -> None:
    write_campaign(workdir)
    cli("campaigns", "load", CAMPAIGN_FILE, user="bien_tap")
    cli("campaigns", "submit", CAMPAIGN, user="bien_tap")
    before = database_dump(context.engine)
    result = cli(*args, user=user, expect=1)
    message = one_line(result.stderr)
    assert f"user '{user}' has role '{role}'; '{action}' needs one of:" in message
    assert database_dump(context.engine) == before


def test_unknown_login_gets_a_clear_error(cli: Cli, context: AppContext) -> None:
    before = database_dump(context.engine)
    result = cli("users", "list", user="nguoi_la", expect=1)
    message = one_line(result.stderr)
    assert "login 'nguoi_la' is not a Broadcaster user" in message
    assert "broadcaster users add nguoi_la --role editor" in message
    assert cli("contacts", "import", str(FIXTURES / "danh-ba.csv"), user="nguoi_la", expect=1).stderr
    assert database_dump(context.engine) == before


def test_broadcaster_user_only_where_the_policy_allows(
    cli: Cli, context: AppContext, team: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROADCASTER_USER", "bien_tap")
    refused = one_line(cli("users", "list", expect=1).stderr)
    assert "policy allow_env_user is false" in refused
    assert "broadcaster policy set allow_env_user true" in refused

    monkeypatch.delenv("BROADCASTER_USER")
    cli("policy", "set", "allow_env_user", "true", "--reason", "diễn tập trên một máy")
    monkeypatch.setenv("BROADCASTER_USER", "bien_tap")
    # Now the variable stands in for the OS login: an editor may not add users.
    denied = cli("users", "add", "moi", "--role", "auditor", expect=1)
    assert "user 'bien_tap' has role 'editor'" in one_line(denied.stderr)
    assert cli.json("users", "list")


def _submitted_by_the_editor(cli: Cli, workdir: Path) -> str:
    write_campaign(workdir)
    content_hash: str = cli.json("campaigns", "load", CAMPAIGN_FILE, user="bien_tap")[0]["content_hash"]
    cli("campaigns", "submit", CAMPAIGN, user="bien_tap")
    return content_hash


def test_an_environment_variable_cannot_switch_off_four_eyes(
    cli: Cli, context: AppContext, team: None, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The editor who submitted, at their own keyboard, cannot approve by claiming another login."""
    content_hash = _submitted_by_the_editor(cli, workdir)
    before = database_dump(context.engine)
    monkeypatch.setenv("BROADCASTER_IDENTITY__ALLOW_ENV_USER", "true")
    monkeypatch.setenv("BROADCASTER_USER", "phe_duyet")
    result = cli("campaigns", "approve", CAMPAIGN, "--hash", content_hash[:12], user="bien_tap", expect=1)
    message = one_line(result.stderr)
    assert "BROADCASTER_IDENTITY__ALLOW_ENV_USER" in message
    assert "no longer a setting" in message
    monkeypatch.delenv("BROADCASTER_IDENTITY__ALLOW_ENV_USER")
    result = cli("campaigns", "approve", CAMPAIGN, "--hash", content_hash[:12], user="bien_tap", expect=1)
    assert "policy allow_env_user is false" in one_line(result.stderr)
    assert database_dump(context.engine) == before


@pytest.mark.parametrize(
    "own_rules",
    ["", "[identity]\nallow_env_user = true\n", "[approval]\nsecond_approver_threshold = 100000000\n"],
)
def test_a_settings_file_of_ones_own_cannot_switch_off_four_eyes(
    cli: Cli,
    context: AppContext,
    team: None,
    workdir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    own_rules: str,
) -> None:
    """``--config`` pointing at a file the editor wrote, with the same database, changes no rule."""
    content_hash = _submitted_by_the_editor(cli, workdir)
    before = database_dump(context.engine)
    own = tmp_path / "cua-toi" / "broadcaster.toml"
    own.parent.mkdir()
    own.write_text(f'[database]\nurl = "{context.settings.database_url}"\n{own_rules}', encoding="utf-8")
    monkeypatch.setenv("BROADCASTER_USER", "phe_duyet")
    approve = ("--config", str(own), "campaigns", "approve", CAMPAIGN, "--hash", content_hash[:12])
    message = one_line(cli(*approve, user="bien_tap", expect=1).stderr)
    assert ("no longer a setting" if own_rules else "policy allow_env_user is false") in message
    assert database_dump(context.engine) == before


def test_policy_commands(cli: Cli, context: AppContext, team: None) -> None:
    defaults = cli.json("policy", "list", user="kiem_toan")
    assert [(p["key"], p["value"], p["default"], p["updated_by"]) for p in defaults] == [
        ("allow_env_user", False, False, None),
        ("second_approver_threshold", 5000, 5000, None),
    ]
    changed = cli("policy", "set", "second_approver_threshold", "200", "--reason", "chiến dịch lớn")
    assert "second_approver_threshold: 5000 → 200" in one_line(changed.stdout)
    policies = {p["key"]: p for p in cli.json("policy", "list", user="bien_tap")}
    assert (
        policies["second_approver_threshold"]["value"],
        policies["second_approver_threshold"]["updated_by"],
    ) == (
        200,
        ADMIN_LOGIN,
    )
    assert policies["second_approver_threshold"]["updated_at"].endswith("+07:00")
    table = one_line(cli("policy", "list").stdout)
    assert "second_approver_threshold │ 200 │ 5000" in table
    assert "allow_env_user │ false │ false" in table
    with context.sessions() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry is not None
    assert (entry.actor, entry.action, entry.subject_id, entry.reason, entry.details) == (
        ADMIN_LOGIN,
        "policy.set",
        "second_approver_threshold",
        "chiến dịch lớn",
        {"from": 5000, "to": 200},
    )

    before = database_dump(context.engine)
    for args, expected in [
        (("allow_env_user", "co-le"), "policy 'allow_env_user' is true or false, not 'co-le'"),
        (("second_approver_threshold", "-1"), "is a whole number ≥ 0, not '-1'"),
        (("second_approver_threshold", "nhiều"), "is a whole number ≥ 0, not 'nhiều'"),
        (("allow_everything", "true"), "no policy 'allow_everything'; the policies are: allow_env_user,"),
    ]:
        # "--" so that "-1" reaches the command as a value, not an option.
        assert expected in one_line(cli("policy", "set", "--reason", "thử", "--", *args, expect=1).stderr)
    assert "needs a reason" in cli("policy", "set", "allow_env_user", "true", "-m", " ", expect=1).stderr
    assert "--reason" in cli("policy", "set", "allow_env_user", "true", expect=2).stderr
    assert database_dump(context.engine) == before


def test_no_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_env: None) -> None:
    monkeypatch.chdir(tmp_path)
    result = Cli(monkeypatch)("users", "list", expect=1)
    assert "no settings file" in one_line(result.stderr)
    assert "broadcaster init" in one_line(result.stderr)


def test_unknown_campaign(cli: Cli) -> None:
    for args in (
        ["status", "khong-co"],
        ["campaigns", "preview", "khong-co"],
        ["campaigns", "pause", "khong-co"],
    ):
        result = cli(*args, expect=1)
        assert "no campaign 'khong-co'" in one_line(result.stderr)
