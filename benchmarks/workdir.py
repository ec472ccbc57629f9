"""A benchmark's working directory: N contacts and a one-channel campaign, submitted and approved by two users,
and the sample the raw baseline sends (the same bytes or text the engine sends to the first contact).
"""

from __future__ import annotations

import csv
import getpass
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from sqlalchemy import select

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from broadcaster.clock import Clock

__all__ = [
    "ADMIN",
    "APPROVER",
    "CHANNELS",
    "EDITOR",
    "PROVIDER",
    "Prepared",
    "Sample",
    "add_editor_and_approver",
    "prepare",
]

EXAMPLE_CAMPAIGN = Path("campaigns") / "examples" / "thong-bao-dich-vu-cong.yaml"
ADMIN, EDITOR, APPROVER = "quantri", "bientap", "pheduyet"
CHANNELS = ("email", "sms")
PROVIDER = {"email": "mail", "sms": "sms_main"}


@dataclass
class Sample:
    """What the raw baseline sends: the same bytes (e-mail) or text (SMS) as the engine's campaign."""

    mail_data: bytes = b""
    mail_sender: str = ""
    mail_recipient: str = ""
    sms_text: str = ""
    sms_destinations: list[str] = field(default_factory=list)


def _drop_section(text: str, header: str) -> str:
    out: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        if line.startswith("["):
            skipping = line.strip() == header
        if not skipping:
            out.append(line)
    return "".join(out)


def write_config(
    config: Path,
    *,
    channel: str,
    port: int,
    chunk_size: int | None,
    audit_deliveries: bool = True,
    services: tuple[str, str] | None = None,
    binds: int = 1,
) -> None:
    text = config.read_text(encoding="utf-8")
    if services is not None:  # the distributed deployment: PostgreSQL and a broker server
        database_url, broker_url = services
        text = text.replace('url = "sqlite:///broadcaster.sqlite3"', f'url = "{database_url}"')
        text = text.replace('url = "sqla+sqlite:///broker.sqlite3"', f'url = "{broker_url}"')
    # beat's tick as often as the embedded driver's (engine_run.POLL_SECONDS): the same cadence both ways.
    text = text.replace("[delivery]\n", "[delivery]\ntick_seconds = 0.5\n", 1)
    other = "mail" if channel == "sms" else "sms_main"
    text = _drop_section(text, f"[providers.{other}]")  # one channel per run: only its workers start
    text = text.replace("port = 2775", f"port = {port}").replace("port = 2525", f"port = {port}")
    # No rate limit: we measure the engine, not the provider's contract.
    text = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("tps ="))
    text = text.replace("binds = 1\n", f"binds = {binds}\n")  # the SMPP account's sessions
    if chunk_size is not None:
        text = text.replace("chunk_size = 500", f"chunk_size = {chunk_size}")
    if not audit_deliveries:  # the side-by-side run without the per-window audit entries
        text += "\n[audit]\ndeliveries = false\n"
    config.write_text(text, encoding="utf-8")


def write_contacts(path: Path, count: int) -> None:
    # Viettel 096/097/098 and VinaPhone 091 mobiles (10 digits, 0 + 9 national digits), unique per row.
    prefixes = ("096", "097", "098", "091")
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", "full_name", "phone", "email", "segment"])
        for i in range(count):
            prefix = prefixes[i % len(prefixes)]
            writer.writerow(
                [
                    f"BENCH{i:07d}",
                    f"Nguyễn Văn Thử {i}",
                    f"{prefix}{i // len(prefixes):07d}",
                    f"cd{i:07d}@example.vn",
                    "citizen",
                ]
            )


def write_campaign(directory: Path, example: Path, *, channel: str) -> str:
    data = yaml.safe_load(example.read_text(encoding="utf-8"))
    campaign_id = f"bench-{channel}"
    data["id"] = campaign_id
    data["title"] = f"Đo thông lượng ({channel})"
    data["audience"] = {"segments": ["citizen"]}
    data["channels"] = {channel: data["channels"][channel]}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{campaign_id}.yaml").write_text(
        yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return campaign_id


def add_editor_and_approver(
    session: Session, *, admin: str, editor: str, approver: str, clock: Clock
) -> None:
    """The editor who imports and submits, the approver, and one approval enough for a benchmark audience
    of any size (the second-approver rule is tested elsewhere)."""
    from broadcaster import policies
    from broadcaster.users import add_user
    from broadcaster.vocabulary import Role

    add_user(session, actor=admin, login=editor, role=Role.EDITOR, clock=clock)
    add_user(session, actor=admin, login=approver, role=Role.APPROVER, clock=clock)
    key, reason = policies.SECOND_APPROVER_THRESHOLD, "benchmark: one approver"
    policies.set_policy(session, actor=admin, key=key, text="100000000", reason=reason, clock=clock)


@dataclass
class Prepared:
    directory: Path
    config: Path
    campaign_id: str
    sample: Sample
    setup_seconds: float


def prepare(
    root: Path,
    *,
    channel: str,
    count: int,
    port: int,
    chunk_size: int | None,
    audit_deliveries: bool = True,
    tag: str = "",
    services: tuple[str, str] | None = None,
    binds: int = 1,
) -> Prepared:
    """A working directory with ``count`` contacts and an approved one-channel campaign (``tag`` tells apart
    the directories of runs of the same size); ``services`` (database URL, broker URL) puts it on PostgreSQL
    and a broker server, migrated, with the admin and the operating-system login (who starts the workers) as
    users; ``binds`` is the SMPP account's number of binds."""
    from broadcaster.campaigns import workflow
    from broadcaster.campaigns.files import ProviderInfo, SendRules, validate_paths
    from broadcaster.campaigns.messages import Composer, allow_unsubscribe, contact_view
    from broadcaster.campaigns.store import definition_of, latest_version, load_bundle
    from broadcaster.clock import SystemClock
    from broadcaster.contacts.importer import import_contacts
    from broadcaster.context import AppContext
    from broadcaster.db.migrate import upgrade
    from broadcaster.db.models import Contact, User
    from broadcaster.settings import CONFIG_FILENAME
    from broadcaster.users import add_user
    from broadcaster.vocabulary import Role
    from broadcaster.workdir import init_workdir
    from channels.base import OutboundMessage
    from channels.email.mime import MimeBuilder, verp_sender

    started = time.perf_counter()
    clock = SystemClock()
    directory = root / f"{channel}-{count}{tag}"
    if directory.exists():
        shutil.rmtree(directory)
    init_workdir(directory, admin_login=ADMIN, clock=clock).close()
    config = directory / CONFIG_FILENAME
    write_config(
        config,
        channel=channel,
        port=port,
        chunk_size=chunk_size,
        audit_deliveries=audit_deliveries,
        services=services,
        binds=binds,
    )
    context = AppContext.load(config, clock=clock)
    try:
        if services is not None:
            upgrade(services[0])
            with context.sessions.begin() as session:
                add_user(session, actor=ADMIN, login=ADMIN, role=Role.ADMIN, clock=clock)
                if getpass.getuser() != ADMIN:
                    add_user(session, actor=ADMIN, login=getpass.getuser(), role=Role.EDITOR, clock=clock)
        with context.sessions.begin() as session:
            add_editor_and_approver(session, admin=ADMIN, editor=EDITOR, approver=APPROVER, clock=clock)
        contacts_csv = directory / "contacts.csv"
        write_contacts(contacts_csv, count)
        with context.sessions.begin() as session:
            report = import_contacts(session, path=contacts_csv, actor=EDITOR, clock=clock)
        if report.created != count:
            raise RuntimeError(f"imported {report.created} of {count} contacts: {report.problems[:3]}")
        campaign_dir = context.campaigns_dir / "bench"
        campaign_id = write_campaign(campaign_dir, directory / EXAMPLE_CAMPAIGN, channel=channel)
        bundles, problems = validate_paths(
            [campaign_dir],
            templates_dir=context.templates_dir,
            providers=ProviderInfo.all_from(context.settings),
            rules=SendRules.from_settings(context.settings),
        )
        if problems:
            raise RuntimeError("\n".join(str(p) for p in problems))
        with context.sessions.begin() as session:
            editor = session.scalar(select(User).where(User.login == EDITOR))
            approver = session.scalar(select(User).where(User.login == APPROVER))
            assert editor is not None and approver is not None
            for bundle in bundles:
                load_bundle(session, bundle, actor=EDITOR, clock=clock)
            version = workflow.submit(
                session, campaign_id=campaign_id, actor=editor, settings=context.settings, clock=clock
            )
            workflow.approve(
                session,
                campaign_id=campaign_id,
                actor=approver,
                clock=clock,
                content_hash=version.content_hash,
            )
        # The raw baseline's payload, rendered exactly as the planner and the dispatcher do for contact 1.
        sample = Sample()
        with context.readers() as session:
            version = latest_version(session, campaign_id)
            definition = definition_of(version)
            composer = Composer(
                definition=definition, templates=dict(version.templates), settings=context.settings
            )
            first = session.scalar(select(Contact).order_by(Contact.id).limit(1))
            text = composer.compose(channel, contact_view(first))
            if channel == "email":
                options = context.settings.provider(PROVIDER[channel]).options()
                builder = MimeBuilder(
                    from_address=options["from_address"], from_name=options.get("from_name")
                )
                assert first is not None and first.email is not None
                built = builder.build(
                    OutboundMessage(
                        message_id=1,
                        address=first.email,
                        body=text.body,
                        subject=text.subject,
                        html=text.html,
                        campaign_key=f"v{version.id}",
                        allow_unsubscribe=allow_unsubscribe(definition, "email"),
                    )
                )
                sample.mail_data = built.data
                sample.mail_recipient = built.envelope_recipient
                sample.mail_sender = verp_sender(
                    bounce_local="bounce", domain=str(options["bounce_domain"]), message_id=1
                )
            else:
                sample.sms_text = text.body
                sample.sms_destinations = [
                    phone.lstrip("+")
                    for phone in session.scalars(select(Contact.phone).order_by(Contact.id))
                    if phone
                ]
    finally:
        context.close()
    return Prepared(
        directory=directory,
        config=config,
        campaign_id=campaign_id,
        sample=sample,
        setup_seconds=time.perf_counter() - started,
    )
