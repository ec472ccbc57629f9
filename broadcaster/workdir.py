"""``broadcaster init``: a working directory with settings, default templates and campaigns, a database."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from broadcaster.clock import Clock
from broadcaster.context import AppContext
from broadcaster.db.migrate import upgrade
from broadcaster.db.models import Role
from broadcaster.errors import UserError
from broadcaster.settings import CONFIG_FILENAME, load_settings
from broadcaster.unsubscribe import new_secret
from broadcaster.users import add_user, validate_login

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

[security]
# Signs the opt-out links of e-mails (List-Unsubscribe). Keep it secret; changing it voids sent links.
unsubscribe_secret = "{unsubscribe_secret}"

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
"""


class WorkdirError(UserError):
    pass


def defaults_root() -> Path:
    """Default templates and campaigns: inside the wheel, or at the top of a source checkout."""
    packaged = Path(str(resources.files("broadcaster"))) / "_defaults"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent


def init_workdir(directory: Path, *, admin_login: str, clock: Clock, force: bool = False) -> AppContext:
    directory = directory.resolve()
    config = directory / CONFIG_FILENAME
    if config.exists() and not force:
        raise WorkdirError(f"{config} already exists; use `broadcaster db upgrade` there, or --force")
    validate_login(admin_login)
    directory.mkdir(parents=True, exist_ok=True)
    config.write_text(DEFAULT_CONFIG.replace("{unsubscribe_secret}", new_secret()), encoding="utf-8")
    root = defaults_root()
    for name in ("templates", "campaigns"):
        target = directory / name
        if target.exists() and force:
            shutil.rmtree(target)
        shutil.copytree(root / name, target, ignore=shutil.ignore_patterns("__pycache__"))
    settings = load_settings(config)
    upgrade(settings.database_url)
    context = AppContext.from_settings(settings, clock=clock)
    with context.sessions.begin() as session:
        add_user(session, actor=admin_login, login=admin_login, role=Role.ADMIN, clock=clock)
    return context
