"""``broadcaster demo``: the whole path on one machine, as an officer would walk it.

Initialise a working directory, import ~2,000 generated Da Nang contacts, load the sample campaign, submit
and approve it as two different users, send it over real SMTP and SMPP to the sandbox servers started here,
and print a per-channel summary and where the sandbox kept what it received.
"""

from __future__ import annotations

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
from broadcaster.db.models import User
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.i18n import translate
from broadcaster.outbox.sending import start_manual_run
from broadcaster.progress import wait_for_run
from broadcaster.runtime import EmbeddedEngine
from broadcaster.sandbox import Sandbox, SandboxPorts
from broadcaster.settings import CONFIG_FILENAME
from broadcaster.status import run_counts
from broadcaster.tasks import CeleryEnqueuer
from broadcaster.users import add_user, set_password
from broadcaster.vocabulary import Role
from broadcaster.workdir import init_workdir

DEMO_CAMPAIGN = "thong-bao-dich-vu-cong"
EDITOR = "bientap"  # biên tập viên: prepares and submits
APPROVER = "pheduyet"  # người phê duyệt: approves
ADMIN = "quantri"  # quản trị: manages users and policies
AUDITOR = "kiemtoan"  # kiểm toán viên: reads the logs and the audit trail


@dataclass
class DemoResult:
    run_id: int
    counts: dict[str, dict[str, int]]
    sandbox: Path
    mails_received: int
    sms_parts_received: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _point_providers_at(config: Path, ports: SandboxPorts) -> None:
    text = config.read_text(encoding="utf-8")
    text = text.replace("port = 2775", f"port = {ports.smpp}").replace("port = 2525", f"port = {ports.smtp}")
    config.write_text(text, encoding="utf-8")


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
    _point_providers_at(config, ports)
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
            version = workflow.submit(
                session, campaign_id=DEMO_CAMPAIGN, actor=editor, settings=context.settings, clock=clock
            )
            console.print(
                _(
                    "%(editor)s submitted %(campaign)s v%(number)s (hash %(hash)s) for %(audience)s recipients."
                )
                % {
                    "editor": EDITOR,
                    "campaign": DEMO_CAMPAIGN,
                    "number": version.number,
                    "hash": version.content_hash[:12],
                    "audience": version.audience_size,
                }
            )
            content_hash = version.content_hash
        with context.sessions.begin() as session:
            workflow.approve(
                session,
                campaign_id=DEMO_CAMPAIGN,
                actor=approver,
                clock=clock,
                content_hash=content_hash[:16],
            )
        console.print(_("%(approver)s approved it, bound to that hash.") % {"approver": APPROVER})

        console.rule(_("4. Send over SMTP and SMPP to the sandbox"))
        sandbox_dir = context.settings.path(context.settings.sandbox_dir)
        with Sandbox(sandbox_dir, ports=ports) as sandbox:
            with context.sessions.begin() as session:
                run_id = start_manual_run(session, campaign_id=DEMO_CAMPAIGN, actor=editor, clock=clock)
            with EmbeddedEngine(context, config=config, log_dir=directory / "logs") as engine:
                CeleryEnqueuer().plan_run(run_id)
                wait_for_run(engine, run_id, console=console, receipt_timeout=wait_receipts)
            mails = len(sandbox.smtp.received)
            parts = len(sandbox.smsc.submits)
        with context.readers() as session:
            counts = run_counts(session, run_id)
        return DemoResult(
            run_id=run_id, counts=counts, sandbox=sandbox_dir, mails_received=mails, sms_parts_received=parts
        )
    finally:
        context.close()
