"""The ``broadcaster`` command: the officer's interface to the engine (typer + rich, ``--json`` on reads)."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from broadcaster import i18n, policies
from broadcaster.cli import activities as activities_cli
from broadcaster.cli import apikeys as apikeys_cli
from broadcaster.cli import audit as audit_cli
from broadcaster.cli import backup as backup_cli
from broadcaster.cli import bounces as bounces_cli
from broadcaster.cli import campaigns as campaigns_cli
from broadcaster.cli import consent as consent_cli
from broadcaster.cli import contacts as contacts_cli
from broadcaster.cli import delivery as delivery_cli
from broadcaster.cli import inbox as inbox_cli
from broadcaster.cli import observe as observe_cli
from broadcaster.cli import report as report_cli
from broadcaster.cli import retention as retention_cli
from broadcaster.cli import serve as serve_cli
from broadcaster.cli import subject as subject_cli
from broadcaster.cli.click_texts import translate_click_message
from broadcaster.cli.common import (
    ConfigOption,
    JsonOption,
    acting,
    check_role,
    console,
    fail,
    print_error,
    print_json,
    print_table,
    report_unexpected,
    state,
)
from broadcaster.cli.language import cli_language, config_argument, translated_help
from broadcaster.clock import SystemClock, local
from broadcaster.context import AppContext
from broadcaster.db.migrate import current_revision, upgrade
from broadcaster.db.models import User
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.logs import configure_logging
from broadcaster.settings import CONFIG_FILENAME, LOG_FORMAT_ENV, configured_log_format, load_settings
from broadcaster.users import add_user, set_password, set_role
from broadcaster.vocabulary import Role
from broadcaster.web.labels import label
from broadcaster.workdir import Restore, ensure_first_admin, init_workdir, masked_url, restore_defaults

try:  # typer ≥ 0.25 vendors click: its usage errors derive from TyperException
    from typer import TyperException as _ClickError
    from typer._click.exceptions import UsageError as _UsageError
except ImportError:  # pragma: no cover - older typer raises click's own
    from click import ClickException as _ClickError  # type: ignore[assignment]
    from click import UsageError as _UsageError  # type: ignore[assignment]


class LogFormatChoice(StrEnum):
    text = "text"
    json = "json"


class _Group(TyperGroup):
    """Every command's errors become one red line and exit code 1, however the app is invoked (the console
    script, or ``typer.testing.CliRunner`` in the tests), never a traceback: a fixable error says what to do,
    an unexpected one where its traceback was written (``--debug`` prints it instead)."""

    def main(self, args: Sequence[str] | None = None, *rest: Any, **extra: Any) -> Any:
        """The whole run in one language: the settings' (``--config`` read ahead, for the root's help) or
        ``LANG``'s; the root callback sets it again from the settings it loads."""
        argv = list(sys.argv[1:] if args is None else args)
        with i18n.using(cli_language(config_argument(argv))), translated_help(self):
            return super().main(args, *rest, **extra)

    # ``Any``: typer ≥ 0.25 vendors click (``typer._click``), older typer uses click itself.
    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        """The root's own options are parsed here: a typo in them is reported in the run's language too."""
        try:
            return super().make_context(*args, **kwargs)
        except _UsageError as exc:
            raise _translated(exc) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            print_error(str(exc))
            raise typer.Exit(1) from None
        except _UsageError as exc:
            raise _translated(exc) from None  # exit code 2, as click's own
        except (typer.Exit, typer.Abort, _ClickError):
            raise  # click's own exits and usage errors (exit code 2) are not crashes
        except Exception as exc:
            report_unexpected(exc)
            raise typer.Exit(1) from None


def _translated(exc: Any) -> Any:
    """click's usage error with its message in the run's language (``broadcaster.cli.click_texts``); the
    usage line and the hint that click prints with it come from the same context. A command group called
    without a command shows its help through this exception: that one is left alone."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        return exc
    return _UsageError(translate_click_message(exc.format_message()), exc.ctx)


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    help="The officer's interface to the engine: contacts, campaigns and their approval, sending, watching.",
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
users_app = typer.Typer(no_args_is_help=True, help="Users and roles.")
policy_app = typer.Typer(
    no_args_is_help=True,
    help="Rules that guard four-eyes, kept in the database: anyone reads them, only an admin changes them.",
)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(policy_app, name="policy")
app.add_typer(contacts_cli.app, name="contacts")
app.add_typer(campaigns_cli.app, name="campaigns")
app.add_typer(consent_cli.app, name="consent")
app.add_typer(inbox_cli.app, name="inbox")
app.add_typer(bounces_cli.app, name="bounces")
app.add_typer(activities_cli.app, name="activities")
app.add_typer(report_cli.app, name="report")
app.add_typer(subject_cli.app, name="subject")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(retention_cli.app, name="retention")
app.add_typer(apikeys_cli.app, name="apikeys")
delivery_cli.register(app)
observe_cli.register(app)
app.command()(serve_cli.serve)
app.command()(backup_cli.backup)


@app.callback()
def _global(
    config: Path | None = ConfigOption,
    debug: bool = typer.Option(
        False,
        "--debug",
        help="Print the traceback of an unexpected error instead of writing it to a log file.",
    ),
    log_format: LogFormatChoice | None = typer.Option(
        None,
        "--log-format",
        help="How log lines are written, here and by the workers this command starts: text, or json "
        "(one object per line). Default: [logging] format in the settings.",
    ),
) -> None:
    state.config = config
    state.debug = debug
    i18n.set_language(cli_language(config))
    if log_format is not None:
        # An override like any other: settings loaded from now on, and the workers started, inherit it.
        os.environ[LOG_FORMAT_ENV] = log_format.value
    configure_logging(log_format.value if log_format is not None else configured_log_format(state.config))


@app.command()
def init(
    directory: Path = typer.Argument(Path("."), help="Working directory to create or fill."),
    admin: str | None = typer.Option(
        None, help="Login of the first admin of a new directory (default: your OS login)."
    ),
    force: bool = typer.Option(
        False,
        help="In an existing working directory, restore the default settings, templates and campaigns "
        "(admins of its database only, after confirming): edited files are backed up first; the "
        "unsubscribe secret, database and broker are kept.",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Confirm --force without asking."),
    database_url: str | None = typer.Option(
        None,
        "--database-url",
        help="The database of a new directory (default: an SQLite file in it), e.g. "
        "postgresql://broadcaster@db.example/broadcaster: written into the settings, migrated, and given "
        "the first admin.",
    ),
    broker_url: str | None = typer.Option(
        None,
        "--broker-url",
        help="The broker of a new directory (default: the embedded one), e.g. amqp://user:password@host//.",
    ),
) -> None:
    """Create a working directory: broadcaster.toml, default templates and campaigns, a migrated database."""
    if force and (directory / CONFIG_FILENAME).exists():
        if admin is not None or database_url is not None or broker_url is not None:
            fail(
                _(
                    "--admin, --database-url and --broker-url set up a new directory; here use `broadcaster "
                    "users add`, or edit [database] url and [broker] url in broadcaster.toml"
                )
            )
        _restore(directory, yes=yes)
        return
    login = admin or getpass.getuser()
    context = init_workdir(
        directory, admin_login=login, clock=SystemClock(), database_url=database_url, broker_url=broker_url
    )
    context.close()
    console.print(
        _("[green]Initialised[/] %(directory)s — admin user [bold]%(login)s[/].")
        % {"directory": directory.resolve(), "login": login}
    )
    if database_url is not None:
        console.print(
            _("Database: %(url)s (migrated; the admin is there).") % {"url": masked_url(database_url)},
            highlight=False,
        )
    console.print(
        _(
            "Next: `broadcaster users add LOGIN --role editor|approver|auditor`, then "
            "`broadcaster contacts import FILE`."
        )
    )


def _restore(directory: Path, *, yes: bool) -> None:
    def confirm(plan: Restore) -> bool:
        console.print(plan.describe(), highlight=False)
        return yes or typer.confirm(_("Restore the defaults?"), default=False)

    plan = restore_defaults(directory, clock=SystemClock(), confirm=confirm)
    if not plan.replaced and not plan.added:
        console.print(
            _("The default files in %(directory)s are as shipped; nothing to restore.")
            % {"directory": plan.directory}
        )
        return
    console.print(
        _("[green]Restored[/] the default files in %(directory)s.") % {"directory": plan.directory},
        highlight=False,
    )
    if plan.replaced:
        console.print(
            _("Your edited files are in %(directory)s: copy back what you still need.")
            % {"directory": plan.backup_dir},
            highlight=False,
        )


@db_app.command("upgrade")
def db_upgrade(
    revision: str = typer.Argument("head", help="Alembic revision to upgrade to (default: the newest)."),
    admin: str | None = typer.Option(
        None, help="Login of the first admin if the database has no user yet (default: your OS login)."
    ),
) -> None:
    """Apply database migrations (SQLite or PostgreSQL); a database with no user gets its first admin."""
    settings = load_settings(state.config)
    upgrade(settings.database_url, revision)
    console.print(_("[green]Database is up to date.[/]"))
    if revision != "head":
        return  # an older schema: the users table may not be what this version writes
    login = admin or getpass.getuser()
    context = AppContext.from_settings(settings, clock=SystemClock())
    try:
        created = ensure_first_admin(context, login=login)
    finally:
        context.close()
    if created:
        console.print(
            _(
                "The database had no user: [bold]%(login)s[/] is its first admin "
                "(`broadcaster users add` for the others)."
            )
            % {"login": login}
        )


@db_app.command("current")
def db_current(as_json: bool = JsonOption) -> None:
    """Show the schema revision of the database."""
    from broadcaster.db.engine import make_engine

    settings = load_settings(state.config)
    engine = make_engine(settings.database_url)
    revision = current_revision(engine)
    engine.dispose()
    if as_json:
        print_json({"revision": revision})
    else:
        console.print(revision or _("(empty database: run `broadcaster db upgrade`)"))


def _user_dict(user: User) -> dict[str, Any]:
    return {
        "login": user.login,
        "role": user.role.value,
        "display_name": user.display_name,
        "active": user.active,
        "created_at": local(user.created_at).isoformat(),
    }


@users_app.command("add")
def users_add(
    login: str = typer.Argument(..., help="The person's OS login (lower-case letters, digits, _ . -)."),
    role: Role = typer.Option(..., "--role", "-r", help="admin, editor, approver or auditor."),
    name: str | None = typer.Option(None, "--name", help="Display name."),
) -> None:
    """Add a user (admins only)."""
    with acting("users.manage") as (context, session, actor):
        add_user(session, actor=actor.login, login=login, role=role, display_name=name, clock=context.clock)
    console.print(_("Added [bold]%(login)s[/] as %(role)s.") % {"login": login, "role": role.value})


@users_app.command("set-role")
def users_set_role(
    login: str = typer.Argument(..., help="The user's login."),
    role: Role = typer.Argument(..., help="admin, editor, approver or auditor."),
) -> None:
    """Change a user's role (admins only)."""
    with acting("users.manage") as (context, session, actor):
        set_role(session, actor=actor.login, login=login, role=role, clock=context.clock)
    console.print(_("%(login)s is now %(role)s.") % {"login": login, "role": role.value})


@users_app.command("password")
def users_password(
    login: str = typer.Argument(..., help="The user's login."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of standard input."
    ),
) -> None:
    """Set a user's password for the web application (admins only); it ends their open web sessions."""
    check_role("users.manage")  # before asking: a non-admin or a missing working directory is told at once
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt(_("New password"), hide_input=True, confirmation_prompt=True)
    with acting("users.manage") as (context, session, actor):
        set_password(session, actor=actor.login, login=login, password=password, clock=context.clock)
    console.print(
        _("Password of %(login)s set; open web sessions of %(login)s were ended.") % {"login": login}
    )


@users_app.command("list")
def users_list(as_json: bool = JsonOption) -> None:
    """List users and their roles."""
    from sqlalchemy import select

    with acting("read", write=False) as (_context, session, _actor):
        users = [_user_dict(u) for u in session.scalars(select(User).order_by(User.login))]
    if as_json:
        print_json(users)
        return
    print_table(
        _("Users"),
        [_("login"), _("role"), _("name"), _("active"), _("created")],
        [
            [
                u["login"],
                label(u["role"], "role"),
                u["display_name"],
                _("yes") if u["active"] else _("no"),
                u["created_at"],
            ]
            for u in users
        ],
    )


@policy_app.command("list")
def policy_list(as_json: bool = JsonOption) -> None:
    """Show each policy: its value, its default, what it means and who last set it."""
    with acting("read", write=False) as (_context, session, _actor):
        states = [state.as_dict() for state in policies.list_policies(session)]
    if as_json:
        print_json(states)
        return
    print_table(
        _("Policies"),
        [_("key"), _("value"), _("default"), _("meaning"), _("set by"), _("set at")],
        [
            [
                e["key"],
                _shown(e["value"]),
                _shown(e["default"]),
                _(str(e["meaning"])),
                e["updated_by"] or "-",
                e["updated_at"] or "-",
            ]
            for e in states
        ],
    )


def _shown(value: object) -> str:
    """A policy value as it is typed in `policy set` (true/false, not Python's True/False)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


@policy_app.command("set")
def policy_set(
    key: str = typer.Argument(..., help="allow_env_user or second_approver_threshold."),
    value: str = typer.Argument(
        ..., help="true/false for allow_env_user; a whole number ≥ 0 for a threshold."
    ),
    reason: str = typer.Option(..., "--reason", "-m", help="Why; kept in the audit trail."),
) -> None:
    """Change a policy (admins only; audited with the value before and after)."""
    with acting("policies.manage") as (context, session, actor):
        before, after = policies.set_policy(
            session, actor=actor.login, key=key, text=value, reason=reason, clock=context.clock
        )
    console.print(
        _("Policy %(key)s: %(before)s → [bold]%(after)s[/].")
        % {"key": key, "before": _shown(before), "after": _shown(after)},
        highlight=False,
    )


def main() -> None:
    try:
        app()
    except UserError as exc:
        print_error(str(exc))
        raise SystemExit(1) from None
