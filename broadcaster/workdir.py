"""``broadcaster init``: a working directory with settings, default templates and campaigns, a database.

``init --force`` in an existing working directory restores the defaults (``restore_defaults``): only an admin of
that installation's database may, after confirming; every edited file is backed up first, and the settings that
bind the directory to what exists already (the unsubscribe secret signing links already sent, the database, the
broker) are kept.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from broadcaster import audit
from broadcaster.clock import Clock
from broadcaster.context import AppContext
from broadcaster.db.conflicts import one_line
from broadcaster.db.engine import make_engine
from broadcaster.db.migrate import current_revision, upgrade
from broadcaster.db.models import User
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.settings import CONFIG_FILENAME, load_settings
from broadcaster.settings_sections import DEFAULT_AGENCIES
from broadcaster.unsubscribe import new_secret
from broadcaster.users import add_user, require, resolve_actor, validate_login
from broadcaster.vocabulary import Role

DEFAULT_CONFIG = """\
# Broadcaster settings. Every key can be overridden by an environment variable:
# BROADCASTER_<SECTION>__<KEY>, e.g. BROADCASTER_DATABASE__URL or BROADCASTER_PROVIDERS__SMS_MAIN__HOST.
# Rules that guard four-eyes (BROADCASTER_USER, the second-approver threshold) are not settings: they live in
# the database, an admin changes them (`broadcaster policy list`, `broadcaster policy set`).

[org]
# The agency that sends. It was renamed in 2025: keep these in step with the current decision.
name = "Sở Khoa học và Công nghệ thành phố Đà Nẵng"
short_name = "SKHCN"
parent = "UBND thành phố Đà Nẵng"
city = "Đà Nẵng"
address = "Tầng 20, Trung tâm Hành chính thành phố, 24 Trần Phú, Đà Nẵng"
phone = "0236 3822 123"
hotline = "1022"
email = "skhcn@danang.gov.vn"
website = "https://skhcn.danang.gov.vn"

[database]
url = "sqlite:///broadcaster.sqlite3"

[broker]
# Embedded default: kombu's SQLAlchemy transport on its own SQLite file.
url = "sqla+sqlite:///broker.sqlite3"

[rate_limit]
# Where the providers' tps buckets live: "auto" (Redis when the broker is Redis, else the database),
# "database" or "redis" (redis_url, or the broker's). Redis buckets halve on throttling answers, never
# below throttle_floor of tps, and regain recovery_per_second of tps each second.
backend = "auto"
throttle_floor = 0.1
recovery_per_second = 0.05

[routing]
# SMS routes ([routes.NAME] below): an account is left out while its link has been down this long, or for
# probe_after_seconds after more than max_error_share of its last window_seconds of messages (at least
# min_outcomes) failed transiently or ended unknown, or its windows took longer than max_latency_seconds.
failover_after_seconds = 30
probe_after_seconds = 60
window_seconds = 60
min_outcomes = 20
max_error_share = 0.3
max_latency_seconds = 10

# Share the messages of provider sms_main between SMSC accounts by allocated carrier, with weights:
# [routes.sms_main]
# Viettel = [["viettel_direct", 3], ["sms_main", 1]]
# default = [["sms_main", 1]]

[security]
# Signs the opt-out links of e-mails (List-Unsubscribe). Keep it secret; changing it voids sent links.
unsubscribe_secret = "{unsubscribe_secret}"
# Keys the hash by which people erased on request (`broadcaster subject erase`) are still recognised, so
# their refusal outlives the erasure. Never change it: a new key forgets every erasure.
subject_key = "{subject_key}"

[web]
# Where `broadcaster serve` listens; the unsubscribe_base_url of the mail providers must reach it.
host = "127.0.0.1"
port = 8080

[bounces]
# Where `broadcaster bounces` takes DSNs and mailto opt-outs; each mail provider's bounce_domain MX must reach
# it. start_with_run = true has `broadcaster run` start it too.
host = "127.0.0.1"
port = 2526
start_with_run = false

[health]
# `broadcaster health`: the tick is stopped past beat_stale_seconds (more than delivery.tick_seconds); the
# oldest due queued message makes it degraded, then unhealthy; a provider down this long is unhealthy.
beat_stale_seconds = 180
backlog_degraded_seconds = 600
backlog_unhealthy_seconds = 3600
provider_down_seconds = 300

[metrics]
# `broadcaster metrics` serves Prometheus' /metrics here; `serve` shows /metrics only when a token is set.
host = "127.0.0.1"
port = 9464
token = ""

[alerts]
# E-mails to the admins (a configuration error, a provider down, an auto-paused campaign, a backlog, a stopped
# tick) through the e-mail provider named here (default: the first one), once per incident and again every
# remind_seconds until it is over. List each admin's address: admins = { admin = "it@example.gov.vn" }
enabled = true
provider = ""
remind_seconds = 14400

[delivery]
chunk_size = 500

[rendering]
# What rendering one message part may take; a template past it fails, naming its file and line.
max_output_chars = 200000
max_seconds = 2.0

[sms.prices.default]
gsm7 = 800
ucs2 = 1600

# Price of one SMS part in VND, by allocated carrier and encoding; "default" covers the others.
[sms.prices.Viettel]
gsm7 = 750
ucs2 = 1500

[sms.prices.Vinaphone]
gsm7 = 770
ucs2 = 1540

[sms.prices.MobiFone]
gsm7 = 770
ucs2 = 1540

# The sandbox servers (`broadcaster sandbox`) listen on these ports; point them at the real SMSC and relay
# for production.
[providers.sms_main]
channel = "sms"
type = "smpp"
host = "127.0.0.1"
port = 2775
system_id = "skhcn"
password = "change-me"
source_addr = "SKHCN"
# Whether this route takes the advertising label in brackets: "[QC] …" (true) or "QC …" (false).
label_brackets = true
binds = 1
window = 64
# submit_sm per second (each SMS part is one), shared by every process; no 100 ms carries more than a tenth.
tps = 200
# One gateway process sends this account's chunks in turn; bigger ones spare it the start and finish of each.
chunk_size = 2000

[providers.mail]
channel = "email"
type = "smtp"
host = "127.0.0.1"
port = 2525
from_address = "thongbao@skhcn.danang.gov.vn"
from_name = "Sở Khoa học và Công nghệ thành phố Đà Nẵng"
bounce_domain = "skhcn.danang.gov.vn"
tls = "none"
connections = 4
tps = 200
# Where recipients opt out (RFC 8058 one-click link, and a mailbox for mail clients that prefer it).
unsubscribe_base_url = "https://skhcn.danang.gov.vn/thong-bao"
unsubscribe_mailto = "huy-dang-ky@skhcn.danang.gov.vn"

# The city app's push notifications (docs/push.md). "file" writes them to app-danang.jsonl, a rehearsal: set
# type = "fcm" (or "apns") and its credentials for production.
[providers.app_danang]
channel = "push"
type = "file"
path = "app-danang.jsonl"

# The Facebook Pages the campaigns post to (docs/social.md): each Page id with its Page access token. The id
# below stands for the Sở's Page: replace it, here and in the campaigns' targets, with the real one.
[providers.fanpage_skhcn]
channel = "social"
type = "facebook"
api_version = "v21.0"

[providers.fanpage_skhcn.page_tokens]
"100000000000143" = "change-me"

[reports]
# Half-year report periods (plan 143 section V: reports before 30/5 and 30/11): 2026-H1 runs from the day after
# the previous year's h2_cutoff to h1_cutoff, 2026-H2 from the day after h1_cutoff to h2_cutoff (MM-DD).
h1_cutoff = "05-15"
h2_cutoff = "11-15"
# The agency that files the report (a key of [agencies] below; its name and code head the document), and how
# many days after a half-year ends its daily rollups are frozen (then only an admin rebuilds them).
agency = "skhcn"
freeze_grace_days = 15

# The agencies of plan 143 (campaigns/plan-143/plan.yaml names them by key), after the 2025 reorganisation:
# name, and code = the symbol of their documents ("số / ký hiệu"). Rename here, never in campaign files.
"""


def _agencies_block() -> str:
    return "".join(
        f'\n[agencies.{key}]\nname = "{name}"\ncode = "{code}"\n'
        for key, (name, code) in DEFAULT_AGENCIES.items()
    )


DEFAULT_CONFIG += _agencies_block()


class WorkdirError(UserError):
    pass


def defaults_root() -> Path:
    """Default templates and campaigns: inside the wheel, or at the top of a source checkout."""
    packaged = Path(str(resources.files("broadcaster"))) / "_defaults"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent


DEFAULT_DIRS = ("templates", "campaigns", "notices")
# The settings a restore keeps from the file it replaces: a new secret would void every opt-out link already
# sent, and another database or broker would be another installation.
KEPT_SETTINGS = (
    ("security", "unsubscribe_secret", "{unsubscribe_secret}"),
    ("security", "subject_key", "{subject_key}"),
    ("database", "url", "sqlite:///broadcaster.sqlite3"),
    ("broker", "url", "sqla+sqlite:///broker.sqlite3"),
)


def init_workdir(
    directory: Path,
    *,
    admin_login: str,
    clock: Clock,
    database_url: str | None = None,
    broker_url: str | None = None,
) -> AppContext:
    """A new working directory; an existing one is refused (``restore_defaults`` is for those).

    ``database_url`` (``init --database-url``, e.g. PostgreSQL) goes into the settings instead of the SQLite
    default, and that database is migrated and gets the first admin; it must answer, and must not hold another
    installation's users. ``broker_url`` likewise replaces the embedded broker."""
    directory = directory.resolve()
    # An SQLite URL needs no check: its file is made, relative to the directory, by the migration.
    if database_url is not None and not database_url.startswith("sqlite"):
        _check_new_database(database_url)
    config = directory / CONFIG_FILENAME
    if config.exists():
        raise WorkdirError(
            _(
                "%(config)s already exists; use `broadcaster db upgrade` there, or `broadcaster init --force` "
                "(an admin of that installation) to restore the default settings, templates and campaigns"
            )
            % {"config": config}
        )
    for name in DEFAULT_DIRS:
        if (directory / name).exists():
            raise WorkdirError(
                _(
                    "%(path)s already exists but %(config)s does not; move it away or initialise another "
                    "directory"
                )
                % {"path": directory / name, "config": config}
            )
    validate_login(admin_login)
    directory.mkdir(parents=True, exist_ok=True)
    chosen = {("database", "url"): database_url, ("broker", "url"): broker_url}
    kept = {key: value for key, value in chosen.items() if value is not None}
    config.write_text(_config_text(kept, fresh=True), encoding="utf-8")
    root = defaults_root()
    for name in DEFAULT_DIRS:
        shutil.copytree(root / name, directory / name, ignore=shutil.ignore_patterns("__pycache__"))
    settings = load_settings(config)
    upgrade(settings.database_url)
    context = AppContext.from_settings(settings, clock=clock)
    with context.sessions.begin() as session:
        add_user(session, actor=admin_login, login=admin_login, role=Role.ADMIN, clock=clock)
    return context


def _check_new_database(url: str) -> None:
    """Before anything is written: the database answers and holds no installation yet (its users would be
    another installation's, and its first admin someone else)."""
    shown = masked_url(url)
    engine = make_engine(url)  # a malformed URL or a missing driver: a UserError that says so
    try:
        with engine.connect() as connection:
            revision = current_revision(engine)
            users = connection.scalar(select(func.count()).select_from(User)) if revision else 0
    except SQLAlchemyError as exc:
        raise WorkdirError(
            _("cannot use the database %(url)s (--database-url): %(error)s")
            % {"url": shown, "error": one_line(exc)}
        ) from None
    finally:
        engine.dispose()
    if users:
        raise WorkdirError(
            _(
                "the database %(url)s (--database-url) already has %(n)s user(s): it belongs to an installation; "
                "set [database] url to it in that installation's broadcaster.toml and run `broadcaster db upgrade`"
            )
            % {"url": shown, "n": users}
        )


def masked_url(url: str) -> str:
    """A database URL as it may be shown: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.partition("://")[0] + "://…"


def ensure_first_admin(context: AppContext, *, login: str) -> bool:
    """Make ``login`` the first admin of a database that has no user at all (a database set up by ``db upgrade``
    after ``[database] url`` changed: nobody could log in to add one). True if added."""
    with context.sessions.begin() as session:
        if session.scalar(select(User.id).limit(1)) is not None:
            return False
        add_user(session, actor=login, login=login, role=Role.ADMIN, clock=context.clock)
    return True


# --- init --force in an existing working directory ---------------------------------------------------------


@dataclass(frozen=True)
class Restore:
    """What restoring the defaults changes in an existing working directory; shown before it is confirmed."""

    directory: Path
    actor: str  # the admin who asked, as the installation's database knows them
    replaced: tuple[str, ...]  # edited files (paths relative to the directory): backed up, then replaced
    added: tuple[str, ...]  # default files the directory lacks
    backup_dir: Path  # where the replaced files go (made only when something is replaced)

    def describe(self) -> str:
        lines = [
            _("Restore the default settings, templates and campaigns in %(directory)s.")
            % {"directory": self.directory}
        ]
        if self.replaced:
            lines.append(
                _("These %(n)s edited file(s) are backed up to %(backup)s, then replaced:")
                % {"n": len(self.replaced), "backup": self.backup_dir}
            )
            lines.extend(f"  {name}" for name in self.replaced)
        if self.added:
            lines.append(_("%(n)s missing default file(s) are added.") % {"n": len(self.added)})
        lines.append(
            _(
                "Kept as they are: the unsubscribe secret, the database and broker URLs, users, contacts, "
                "campaigns in the database, and files of your own."
            )
        )
        return "\n".join(lines)


def restore_defaults(directory: Path, *, clock: Clock, confirm: Callable[[Restore], bool]) -> Restore:
    """Restore the default files of an existing working directory, as an admin of its database and after
    ``confirm`` (shown the plan) agrees; audited. Raises before anything changes otherwise."""
    directory = directory.resolve()
    config = directory / CONFIG_FILENAME
    if not config.is_file():
        raise WorkdirError(
            _("%(config)s does not exist: there is nothing to restore; run `broadcaster init` there")
            % {"config": config}
        )
    actor = _admin_of(config)
    for name in DEFAULT_DIRS:
        if (directory / name).exists() and not (directory / name).is_dir():
            raise WorkdirError(
                _("%(path)s is not a folder; move it away, then run this again") % {"path": directory / name}
            )
    kept = _kept_settings(config)
    new_config = _config_text(kept)
    replaced: list[str] = []
    added: list[str] = []
    if config.read_text(encoding="utf-8") != new_config:
        replaced.append(CONFIG_FILENAME)
    for name, source in _default_files():
        target = directory / name
        if not target.exists():
            added.append(name)
        elif not target.is_file() or target.read_bytes() != source.read_bytes():
            replaced.append(name)
    plan = Restore(
        directory=directory,
        actor=actor,
        replaced=tuple(replaced),
        added=tuple(added),
        backup_dir=_free_backup_dir(directory, clock),
    )
    if not replaced and not added:
        return plan
    if not confirm(plan):
        raise WorkdirError(_("not confirmed; nothing was changed"))
    _apply(plan, new_config)
    settings = load_settings(config)
    upgrade(settings.database_url)
    context = AppContext.from_settings(settings, clock=clock)
    try:
        with context.sessions.begin() as session:
            audit.record(
                session,
                actor=actor,
                action="workdir.restore_defaults",
                subject_type="workdir",
                subject_id=str(directory),
                at=clock.now(),
                details={
                    "replaced": list(plan.replaced),
                    "added": len(plan.added),
                    "backup": str(plan.backup_dir) if plan.replaced else None,
                },
            )
    finally:
        context.close()
    return plan


def _admin_of(config: Path) -> str:
    """The caller's login, when they are an admin in the database of the installation ``config`` sets up."""
    settings = load_settings(config)
    context = AppContext.from_settings(settings)
    try:
        with context.readers() as session:
            user = resolve_actor(session)
            require(user, "workdir.restore_defaults")
            return user.login
    except SQLAlchemyError as exc:
        raise WorkdirError(
            _(
                "cannot tell from the database of %(config)s whether you are its admin (%(error)s); nothing "
                "was changed. Check [database] url there, or run `broadcaster db upgrade`"
            )
            % {"config": config, "error": type(exc).__name__}
        ) from None
    finally:
        context.close()


def _kept_settings(config: Path) -> dict[tuple[str, str], str]:
    data = tomllib.loads(config.read_text(encoding="utf-8"))  # valid: load_settings has read it
    kept: dict[tuple[str, str], str] = {}
    for section, key, _default in KEPT_SETTINGS:
        value = data.get(section, {}).get(key)
        if isinstance(value, str) and value:
            kept[(section, key)] = value
    return kept


def _config_text(kept: dict[tuple[str, str], str], *, fresh: bool = False) -> str:
    """The default settings file with the kept values: a new unsubscribe secret where the old file had none; a
    new subject key only for a new installation (an older one keys its erasures with the unsubscribe secret,
    and a new key would forget them)."""
    text = DEFAULT_CONFIG.replace(
        "{unsubscribe_secret}", kept.get(("security", "unsubscribe_secret"), new_secret())
    ).replace("{subject_key}", kept.get(("security", "subject_key"), new_secret() if fresh else ""))
    for section, key, default in KEPT_SETTINGS[2:]:
        value = kept.get((section, key))
        if value is not None:
            # json.dumps writes a valid TOML basic string (quotes and backslashes escaped).
            text = text.replace(f'{key} = "{default}"', f"{key} = {json.dumps(value)}", 1)
    return text


def _default_files() -> Iterator[tuple[str, Path]]:
    """(path relative to a working directory, packaged default) for every default template and campaign."""
    root = defaults_root()
    for name in DEFAULT_DIRS:
        for source in sorted((root / name).rglob("*")):
            if source.is_file() and "__pycache__" not in source.parts:
                yield source.relative_to(root).as_posix(), source


def _free_backup_dir(directory: Path, clock: Clock) -> Path:
    base = directory / "backups" / f"init-{clock.now():%Y%m%dT%H%M%SZ}"
    candidate, number = base, 1
    while candidate.exists():
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate


def _apply(plan: Restore, new_config: str) -> None:
    """Back up every file about to be replaced, then write the defaults."""
    defaults = dict(_default_files())
    for name in plan.replaced:
        target = plan.directory / name
        backup = plan.backup_dir / name
        backup.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            shutil.move(target, backup)  # a folder where a default file belongs
        else:
            shutil.copy2(target, backup)
    for name in (*plan.replaced, *plan.added):
        target = plan.directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()  # write the default here, not into whatever the link leads to
        if name == CONFIG_FILENAME:
            target.write_text(new_config, encoding="utf-8")
        else:
            shutil.copyfile(defaults[name], target)
