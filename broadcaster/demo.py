"""``broadcaster demo``: the whole path on one machine, as an officer would walk it.

Initialise a working directory, import ~2,000 generated Da Nang contacts (a quarter of them with the city app
on a phone), load the two sample campaigns, submit and approve them as two different users, send them over
real SMTP and SMPP, FCM and the Graph API to the sandbox servers and peers started here, and print a
per-channel summary and where the sandbox kept what it received.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from sqlalchemy import select

from broadcaster import policies
from broadcaster.campaigns import workflow
from broadcaster.campaigns.files import ProviderInfo, SendRules, validate_paths
from broadcaster.campaigns.store import load_bundle
from broadcaster.clock import SystemClock
from broadcaster.contacts.generate import generate_contacts
from broadcaster.contacts.importer import import_contacts
from broadcaster.context import AppContext
from broadcaster.db.models import Contact, User
from broadcaster.devices import Platform, register_token
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.i18n import translate
from broadcaster.outbox.sending import start_manual_run
from broadcaster.progress import wait_for_run
from broadcaster.runtime import EmbeddedEngine
from broadcaster.sandbox import Sandbox, SandboxPorts, http_providers
from broadcaster.settings import CONFIG_FILENAME
from broadcaster.status import run_counts
from broadcaster.tasks import CeleryEnqueuer
from broadcaster.users import add_user, set_password
from broadcaster.vocabulary import Role
from broadcaster.workdir import init_workdir

DEMO_CAMPAIGN = "thong-bao-dich-vu-cong"
# The second sample campaign: push to the city app's devices and a post on the Sở's Page.
APP_CAMPAIGN = "thong-bao-ung-dung-fanpage"
PUSH_PROVIDER = "app_danang"  # as broadcaster init names them
PAGE_PROVIDER = "fanpage_skhcn"
EDITOR = "bientap"  # biên tập viên: prepares and submits
APPROVER = "pheduyet"  # người phê duyệt: approves
ADMIN = "quantri"  # quản trị: manages users and policies
AUDITOR = "kiemtoan"  # kiểm toán viên: reads the logs and the audit trail


@dataclass
class DemoResult:
    runs: dict[int, dict[str, dict[str, int]]]  # run id → channel → status → messages
    sandbox: Path
    mails_received: int
    sms_parts_received: int
    notifications_received: int  # by the sandbox FCM peer
    posts_received: int  # by the sandbox Graph API peer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _point_providers_at(config: Path, ports: SandboxPorts, *, push: int, graph: int, keys: Path) -> None:
    """The providers ``init`` wrote, sending to the sandbox: its SMTP server and SMSC, and instead of the
    rehearsal file, the city app's push through FCM to the sandbox's FCM peer (with a service account the
    sandbox makes), the Page's posts to its Graph API peer."""
    text = config.read_text(encoding="utf-8")
    text = text.replace("port = 2775", f"port = {ports.smpp}").replace("port = 2525", f"port = {ports.smtp}")
    changes = {
        'type = "file"\npath = "app-danang.jsonl"\n': (
            'type = "fcm"\nproject_id = "danang-city-app"\n'
            f"service_account_file = {json.dumps(str(keys / 'fcm-service-account.json'))}\n"
            f'endpoint = "http://127.0.0.1:{push}"\n'
        ),
        'type = "facebook"\n': f'type = "facebook"\ngraph_url = "http://127.0.0.1:{graph}"\n',
    }
    for old, new in changes.items():
        if old not in text:
            raise UserError(
                f"{config}: the demo expected {old.splitlines()[0]!r} as broadcaster init writes it"
            )
        text = text.replace(old, new, 1)
    config.write_text(text, encoding="utf-8")


def _register_devices(context: AppContext, clock: SystemClock) -> int:
    """A quarter of the contacts have the city app: one registered device each (as ``POST /city-app/devices``
    would register it)."""
    with context.sessions.begin() as session:
        ids = list(session.scalars(select(Contact.id).order_by(Contact.id)))[::4]
        for contact_id in ids:
            register_token(
                session,
                contact_id=contact_id,
                token=f"demo{contact_id:06d}:APA91b{secrets.token_hex(16)}",
                platform=Platform.ANDROID,
                app_version="2.4.1",
                now=clock.now(),
            )
    return len(ids)


def _user(context: AppContext, login: str) -> User:
    with context.sessions() as session:
        user = session.scalar(select(User).where(User.login == login))
        if user is None:
            raise UserError(f"demo user {login!r} is missing")
        return user


def run_demo(
    directory: Path, *, contacts: int = 2000, console: Console, wait_receipts: float = 30.0
) -> DemoResult:
    clock = SystemClock()
    if directory.exists():
        shutil.rmtree(directory)
    console.rule(_("1. Working directory"))
    context = init_workdir(directory, admin_login=ADMIN, clock=clock)
    context.close()
    ports = SandboxPorts(smtp=_free_port(), smpp=_free_port())
    config = directory / CONFIG_FILENAME
    sandbox_keys = directory / "sandbox" / "keys"
    _point_providers_at(config, ports, push=_free_port(), graph=_free_port(), keys=sandbox_keys)
    context = AppContext.load(config, clock=clock)
    console.print(
        _("%(directory)s — settings, templates, campaigns, SQLite database (WAL).")
        % {"directory": directory.resolve()}
    )
    try:
        with context.sessions.begin() as session:
            add_user(
                session,
                actor=ADMIN,
                login=EDITOR,
                role=Role.EDITOR,
                clock=clock,
                display_name="Biên tập viên",
            )
            add_user(
                session,
                actor=ADMIN,
                login=APPROVER,
                role=Role.APPROVER,
                clock=clock,
                display_name="Lãnh đạo phòng",
            )
            add_user(
                session,
                actor=ADMIN,
                login=AUDITOR,
                role=Role.AUDITOR,
                clock=clock,
                display_name="Kiểm toán viên",
            )
            # The web application's sign-in: one password for the demo's people, new at each demo, printed.
            password = "demo-" + secrets.token_urlsafe(9)
            for login in (ADMIN, EDITOR, APPROVER, AUDITOR):
                set_password(session, actor=ADMIN, login=login, password=password, clock=clock)
            # Two people rehearse on one machine: the admin lets BROADCASTER_USER stand in for the OS login.
            policies.set_policy(
                session,
                actor=ADMIN,
                key=policies.ALLOW_ENV_USER,
                text="true",
                reason="demo: several people act on one machine",
                clock=clock,
            )
        console.print(
            _(
                "Users: %(admin)s (admin), %(editor)s (editor), %(approver)s (approver), %(auditor)s (auditor); "
                "web sign-in password of each: %(password)s"
            )
            % {
                "admin": ADMIN,
                "editor": EDITOR,
                "approver": APPROVER,
                "auditor": AUDITOR,
                "password": password,
            },
            highlight=False,
        )
        console.print(
            _("Policy allow_env_user set to true by %(admin)s: BROADCASTER_USER=LOGIN acts as LOGIN here.")
            % {"admin": ADMIN}
        )

        console.rule(_("2. Contacts"))
        csv_path = directory / "danh-ba-mau.csv"
        generate_contacts(csv_path, count=contacts)
        with context.sessions.begin() as session:
            report = import_contacts(session, path=csv_path, actor=EDITOR, clock=clock)
        console.print(
            _(
                "%(file)s: %(rows)s rows, %(created)s created, %(skipped)s skipped, %(problems)s problems "
                "reported (row, column, reason)."
            )
            % {
                "file": csv_path.name,
                "rows": report.total_rows,
                "created": report.created,
                "skipped": report.skipped,
                "problems": len(report.problems),
            }
        )
        devices = _register_devices(context, clock)
        console.print(
            _("%(devices)s of them have the city app: one registered device each.") % {"devices": devices}
        )
        for problem in report.problems[:5]:
            console.print(
                _("  row %(row)s, %(column)s: %(reason)s (%(value)s)")
                % {
                    "row": problem.row,
                    "column": problem.column,
                    "reason": translate(problem.reason),
                    "value": repr(problem.value),
                },
                highlight=False,
            )

        console.rule(_("3. Campaign: load, submit, approve"))
        bundles, problems = validate_paths(
            [context.campaigns_dir / "examples"],
            templates_dir=context.templates_dir,
            providers=ProviderInfo.all_from(context.settings),
            rules=SendRules.from_settings(context.settings),
        )
        if problems:
            raise UserError("\n".join(str(p) for p in problems))
        editor, approver = _user(context, EDITOR), _user(context, APPROVER)
        with context.sessions.begin() as session:
            for bundle in bundles:
                load_bundle(session, bundle, actor=EDITOR, clock=clock)
        for campaign_id in (DEMO_CAMPAIGN, APP_CAMPAIGN):
            with context.sessions.begin() as session:
                version = workflow.submit(
                    session, campaign_id=campaign_id, actor=editor, settings=context.settings, clock=clock
                )
                console.print(
                    _(
                        "%(editor)s submitted %(campaign)s v%(number)s (hash %(hash)s) for %(audience)s "
                        "recipients."
                    )
                    % {
                        "editor": EDITOR,
                        "campaign": campaign_id,
                        "number": version.number,
                        "hash": version.content_hash[:12],
                        "audience": version.audience_size,
                    }
                )
                content_hash = version.content_hash
            with context.sessions.begin() as session:
                workflow.approve(
                    session,
                    campaign_id=campaign_id,
                    actor=approver,
                    clock=clock,
                    content_hash=content_hash[:16],
                )
            console.print(_("%(approver)s approved it, bound to that hash.") % {"approver": APPROVER})

        console.rule(_("4. Send over SMTP, SMPP, FCM and the Graph API to the sandbox"))
        sandbox_dir = context.settings.path(context.settings.sandbox_dir)
        providers = http_providers(context.settings)
        with Sandbox(sandbox_dir, ports=ports, providers=providers) as sandbox:
            run_ids = []
            with EmbeddedEngine(context, config=config, log_dir=directory / "logs") as engine:
                for campaign_id in (DEMO_CAMPAIGN, APP_CAMPAIGN):
                    with context.sessions.begin() as session:
                        run_id = start_manual_run(session, campaign_id=campaign_id, actor=editor, clock=clock)
                    CeleryEnqueuer().plan_run(run_id)
                    wait_for_run(engine, run_id, console=console, receipt_timeout=wait_receipts)
                    run_ids.append(run_id)
            mails = len(sandbox.smtp.received)
            parts = len(sandbox.smsc.submits)
            notifications = sandbox.peers[PUSH_PROVIDER].received()
            posts = sandbox.peers[PAGE_PROVIDER].received()
        with context.readers() as session:
            runs = {run_id: run_counts(session, run_id) for run_id in run_ids}
        return DemoResult(
            runs=runs,
            sandbox=sandbox_dir,
            mails_received=mails,
            sms_parts_received=parts,
            notifications_received=notifications,
            posts_received=posts,
        )
    finally:
        context.close()
