"""``python -m benchmarks.run``: a campaign through the engine next to the raw-client baseline, in one run.

For each channel (e-mail, SMS) and each size N: a fresh working directory with N contacts and a one-channel
campaign, submitted and approved by two users; the raw baseline on the same peer (before and after the
engine, their mean is the reference, so drift on this noisy machine hits both sides); then the embedded
engine (Celery workers as child processes on the SQLite broker, the tick here) sends the run. Printed per N:
engine messages/s (N over first claim to last ``sent_at``), raw messages/s, their ratio, the end-to-end wall
time from enqueuing the plan, and the peak RSS (VmHWM) of every engine process. Targets (the issue): e-mail
≥ 0.7× raw aiosmtplib on one connection, SMS ≥ 0.7× raw windowed smpplib on one bind, peak RSS flat in N.

Peers (docs/peers.md): postfix's ``smtp-sink`` for e-mail (the sandbox aiosmtpd server if it is missing, with a
note: it is 2-3× slower as a sink), the sandbox SMSC on smpp34 for SMS, each in its own process so it gets a
core of its own. Everything listens on 127.0.0.1; every child process is stopped on the way out.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any, TypeVar

import yaml
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from benchmarks.raw_smpp import RawSmppResult, run_raw_smpp
from benchmarks.raw_smtp import RawSmtpResult, run_raw_smtp

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
EXAMPLE_CAMPAIGN = Path("campaigns") / "examples" / "thong-bao-dich-vu-cong.yaml"
ADMIN, EDITOR, APPROVER = "quantri", "bientap", "pheduyet"
TARGET_RATIO = 0.7
POLL_SECONDS = 0.5
CHANNELS = ("email", "sms")
PROVIDER = {"email": "mail", "sms": "sms_main"}

T = TypeVar("T")


# ----------------------------------------------------------------------------------------------- helpers
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s") from None
            time.sleep(0.05)  # polling a port that is coming up; bounded by the deadline above


def vm_hwm_kib(pid: int | str) -> int:
    """Peak resident set size (VmHWM, KiB) of one process; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    stack = [pid]
    while stack:
        current = stack.pop()
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                kids = [int(k) for k in children.read_text().split()]
            except OSError:
                continue
            found.extend(kids)
            stack.extend(kids)
    return found


def in_child(func: Callable[..., T], **kwargs: Any) -> T:
    """Run a raw client in a fresh spawned process: its own GIL, and no trace in the driver's RSS."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(func, **kwargs).result()


# ----------------------------------------------------------------------------------------------- peers
@dataclass
class Peer:
    kind: str
    port: int
    note: str = ""


def _serve_aiosmtpd(port: int, folder: str, ready: MpEvent, stop: MpEvent) -> None:
    from channels.sandbox.smtp import SandboxSmtpServer

    with SandboxSmtpServer(Path(folder), "127.0.0.1", port):
        ready.set()
        stop.wait()


def _serve_smsc(port: int, receipt_delay: float | None, ready: MpEvent, stop: MpEvent) -> None:
    from channels.sandbox.smsc import SandboxSmsc, SmscBehaviour

    # relay=False: clients talk to smpp34 directly (the relay only adds idle cut-offs we do not test here).
    behaviour = SmscBehaviour(
        receipts=receipt_delay is not None, receipt_delay=receipt_delay or 0.0, relay=False
    )
    with SandboxSmsc(host="127.0.0.1", port=port, behaviour=behaviour):
        ready.set()
        stop.wait()


@contextmanager
def child_server(target: Callable[..., None], *args: Any, port: int) -> Iterator[None]:
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    process = context.Process(target=target, args=(port, *args, ready, stop), daemon=True)
    process.start()
    try:
        if not ready.wait(30):
            raise RuntimeError(f"{target.__name__} did not start within 30 s")
        wait_port(port)
        yield
    finally:
        stop.set()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join(5)


def smtp_sink_path() -> str | None:
    return shutil.which("smtp-sink") or next(
        (p for p in ("/usr/sbin/smtp-sink", "/usr/lib/postfix/smtp-sink") if os.access(p, os.X_OK)), None
    )


@contextmanager
def email_peer(scratch: Path, console: Console) -> Iterator[Peer]:
    port = free_port()
    sink = smtp_sink_path()
    if sink is None:
        note = (
            "smtp-sink not found (install it with `apt-get install postfix`; only the binary is used): "
            "falling back to the sandbox aiosmtpd server, 2.3-2.9x slower as a sink (docs/peers.md)"
        )
        console.print(f"[yellow]{note}[/]")
        with child_server(_serve_aiosmtpd, str(scratch / "mail"), port=port):
            yield Peer(kind="aiosmtpd", port=port, note=note)
        return
    # As root, smtp-sink must drop privileges (docs/peers.md "Environment"); 1000 = listen backlog.
    command = [sink, *(["-u", "nobody"] if os.geteuid() == 0 else []), f"127.0.0.1:{port}", "1000"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield Peer(kind="smtp-sink", port=port)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextmanager
def sms_peer(receipt_delay: float | None) -> Iterator[Peer]:
    port = free_port()
    receipts = "no receipts" if receipt_delay is None else f"receipts after {receipt_delay:g} s"
    with child_server(_serve_smsc, receipt_delay, port=port):
        yield Peer(kind=f"sandbox SMSC (smpp34, {receipts})", port=port)


# ----------------------------------------------------------------------------------------------- workdir
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


def write_config(config: Path, *, channel: str, port: int, chunk_size: int | None) -> None:
    text = config.read_text(encoding="utf-8")
    other = "mail" if channel == "sms" else "sms_main"
    text = _drop_section(text, f"[providers.{other}]")  # one channel per run: only its workers start
    text = text.replace("port = 2775", f"port = {port}").replace("port = 2525", f"port = {port}")
    # No rate limit: we measure the engine, not the provider's contract.
    text = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("tps ="))
    if chunk_size is not None:
        text = text.replace("chunk_size = 500", f"chunk_size = {chunk_size}")
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


@dataclass
class Prepared:
    directory: Path
    config: Path
    campaign_id: str
    sample: Sample
    setup_seconds: float


def prepare(root: Path, *, channel: str, count: int, port: int, chunk_size: int | None) -> Prepared:
    """A working directory with ``count`` contacts and an approved one-channel campaign."""
    from broadcaster import policies
    from broadcaster.campaigns import workflow
    from broadcaster.campaigns.files import ProviderInfo, validate_paths
    from broadcaster.campaigns.messages import Composer, allow_unsubscribe, contact_view
    from broadcaster.campaigns.store import definition_of, latest_version, load_bundle
    from broadcaster.clock import SystemClock
    from broadcaster.contacts.importer import import_contacts
    from broadcaster.context import AppContext
    from broadcaster.db.models import Contact, User
    from broadcaster.settings import CONFIG_FILENAME
    from broadcaster.users import add_user
    from broadcaster.vocabulary import Role
    from broadcaster.workdir import init_workdir
    from channels.base import OutboundMessage
    from channels.email.mime import MimeBuilder, verp_sender

    started = time.perf_counter()
    clock = SystemClock()
    directory = root / f"{channel}-{count}"
    if directory.exists():
        shutil.rmtree(directory)
    init_workdir(directory, admin_login=ADMIN, clock=clock).close()
    config = directory / CONFIG_FILENAME
    write_config(config, channel=channel, port=port, chunk_size=chunk_size)
    context = AppContext.load(config, clock=clock)
    try:
        with context.sessions.begin() as session:
            add_user(session, actor=ADMIN, login=EDITOR, role=Role.EDITOR, clock=clock)
            add_user(session, actor=ADMIN, login=APPROVER, role=Role.APPROVER, clock=clock)
            # One approver is enough for a benchmark audience (the second-approver rule is tested elsewhere).
            policies.set_policy(
                session,
                actor=ADMIN,
                key=policies.SECOND_APPROVER_THRESHOLD,
                text="100000000",
                reason="benchmark: one approver",
                clock=clock,
            )
        contacts_csv = directory / "contacts.csv"
        write_contacts(contacts_csv, count)
        with context.sessions.begin() as session:
            report = import_contacts(session, path=contacts_csv, actor=EDITOR, clock=clock)
        if report.created != count:
            raise RuntimeError(f"imported {report.created} of {count} contacts: {report.problems[:3]}")
        campaign_dir = context.campaigns_dir / "bench"
        campaign_id = write_campaign(campaign_dir, directory / EXAMPLE_CAMPAIGN, channel=channel)
        providers = {
            n: ProviderInfo(name=n, channel=p.channel) for n, p in context.settings.providers.items()
        }
        bundles, problems = validate_paths(
            [campaign_dir], templates_dir=context.templates_dir, providers=providers
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


# ----------------------------------------------------------------------------------------------- engine
@dataclass
class EngineResult:
    planned: int = 0
    sent: int = 0  # reached sent or a later success state
    statuses: dict[str, int] = field(default_factory=dict)
    send_seconds: float = 0.0  # first claimed_at to last sent_at
    wall_seconds: float = 0.0  # plan enqueued to "nothing left to send"
    receipts_seconds: float | None = None  # plan enqueued to the last receipt (SMS)
    delivered: int = 0
    peak_rss_kib: dict[str, int] = field(default_factory=dict)  # process name -> VmHWM
    driver_peak_rss_kib: int = 0
    timed_out: bool = False

    @property
    def rate(self) -> float:
        return self.sent / self.send_seconds if self.send_seconds > 0 else 0.0


def run_engine(
    prepared: Prepared, *, channel: str, timeout: float, receipt_timeout: float, wait_receipts: bool = True
) -> EngineResult:
    from broadcaster.clock import SystemClock
    from broadcaster.context import AppContext
    from broadcaster.db.models import Message, User
    from broadcaster.outbox.sending import start_manual_run
    from broadcaster.progress import campaign_paused, run_progress
    from broadcaster.runtime import EmbeddedEngine
    from broadcaster.tasks import CeleryEnqueuer
    from broadcaster.vocabulary import MessageStatus

    clock = SystemClock()
    context = AppContext.load(prepared.config, clock=clock)
    result = EngineResult()
    try:
        with context.sessions.begin() as session:
            editor = session.scalar(select(User).where(User.login == EDITOR))
            assert editor is not None
            run_id = start_manual_run(session, campaign_id=prepared.campaign_id, actor=editor, clock=clock)
        with EmbeddedEngine(context, config=prepared.config, log_dir=prepared.directory / "logs") as engine:
            started = time.perf_counter()
            CeleryEnqueuer().plan_run(run_id)
            deadline = started + timeout
            receipts_deadline: float | None = None
            while True:
                engine.tick()
                progress = run_progress(context, run_id)
                paused = campaign_paused(context, run_id)
                if paused:
                    raise RuntimeError(f"the benchmark campaign paused itself: {paused}")
                now = time.perf_counter()
                if progress.finished and progress.planned:
                    if not result.wall_seconds:
                        result.wall_seconds = now - started
                        receipts_deadline = now + receipt_timeout
                    if channel != "sms" or not wait_receipts or not progress.pending_receipts:
                        if channel == "sms" and wait_receipts:
                            result.receipts_seconds = now - started
                        break
                    if receipts_deadline is not None and now > receipts_deadline:
                        break
                if now > deadline:
                    result.timed_out = True
                    break
                time.sleep(POLL_SECONDS)  # the tick's cadence (as `wait_for_run`), not a synchronisation
            # VmHWM before the workers stop: the peak of each engine process over the whole run.
            for spec, process in engine.processes:
                result.peak_rss_kib[spec.name] = vm_hwm_kib(process.pid)
                # Numbered, not by pid, so the same column lines up across sizes (prefork pool children).
                for number, child in enumerate(sorted(descendants(process.pid)), start=1):
                    result.peak_rss_kib[f"{spec.name}/child{number}"] = vm_hwm_kib(child)
        result.driver_peak_rss_kib = vm_hwm_kib("self")
        with context.readers() as session:
            result.statuses = {
                str(status.value): int(n)
                for status, n in session.execute(
                    select(Message.status, func.count())
                    .where(Message.run_id == run_id)
                    .group_by(Message.status)
                ).all()
            }
            first_claim, last_sent = session.execute(
                select(func.min(Message.claimed_at), func.max(Message.sent_at)).where(
                    Message.run_id == run_id
                )
            ).one()
        result.planned = sum(result.statuses.values())
        ok = (MessageStatus.SENT, MessageStatus.DELIVERED)
        result.sent = sum(result.statuses.get(str(s.value), 0) for s in ok)
        result.delivered = result.statuses.get(str(MessageStatus.DELIVERED.value), 0)
        if first_claim is not None and last_sent is not None:
            result.send_seconds = (last_sent - first_claim).total_seconds()
    finally:
        context.close()
    return result


# ----------------------------------------------------------------------------------------------- one size
@dataclass
class Measurement:
    channel: str
    count: int
    peer: str
    engine: EngineResult
    raw: list[dict[str, Any]]  # before and after the engine
    setup_seconds: float

    @property
    def raw_rate(self) -> float:
        rates = [float(r["rate"]) for r in self.raw]
        return sum(rates) / len(rates) if rates else 0.0

    @property
    def ratio(self) -> float:
        return self.engine.rate / self.raw_rate if self.raw_rate else 0.0

    def to_json(self) -> dict[str, Any]:
        engine = self.engine
        return {
            "channel": self.channel,
            "n": self.count,
            "peer": self.peer,
            "engine": {
                "rate": round(engine.rate, 1),
                "sent": engine.sent,
                "planned": engine.planned,
                "statuses": engine.statuses,
                "send_seconds": round(engine.send_seconds, 3),
                "wall_seconds": round(engine.wall_seconds, 3),
                "receipts_seconds": None
                if engine.receipts_seconds is None
                else round(engine.receipts_seconds, 3),
                "delivered": engine.delivered,
                "peak_rss_kib": engine.peak_rss_kib,
                "driver_peak_rss_kib": engine.driver_peak_rss_kib,
                "timed_out": engine.timed_out,
            },
            "raw": self.raw,
            "raw_rate": round(self.raw_rate, 1),
            "ratio": round(self.ratio, 3),
            "target_ratio": TARGET_RATIO,
            "setup_seconds": round(self.setup_seconds, 2),
        }


def _raw_email(peer: Peer, sample: Sample, count: int) -> dict[str, Any]:
    result: RawSmtpResult = in_child(
        run_raw_smtp,
        host="127.0.0.1",
        port=peer.port,
        sender=sample.mail_sender,
        recipient=sample.mail_recipient,
        data=sample.mail_data,
        count=count,
    )
    return result.to_json()


def _raw_sms(peer: Peer, sample: Sample, *, receipts: bool, receipt_timeout: float) -> dict[str, Any]:
    result: RawSmppResult = in_child(
        run_raw_smpp,
        host="127.0.0.1",
        port=peer.port,
        text=sample.sms_text,
        destinations=sample.sms_destinations,
        receipts=receipts,
        receipt_timeout=receipt_timeout,
    )
    return result.to_json()


def measure(channel: str, count: int, args: argparse.Namespace, root: Path, console: Console) -> Measurement:
    peer_context = (
        email_peer(root, console)
        if channel == "email"
        else sms_peer(args.receipt_delay if args.receipts else None)
    )
    with peer_context as peer:
        console.print(f"[bold]{channel}, N={count:,}[/] — peer: {peer.kind} on 127.0.0.1:{peer.port}")
        # Set-up and the engine's driver each run in a fresh process: the driver's RSS is then this run's
        # alone, and Celery's cached broker connection never points at the previous run's broker file.
        prepared: Prepared = in_child(
            prepare, root=root, channel=channel, count=count, port=peer.port, chunk_size=args.chunk_size
        )
        console.print(f"  set-up (contacts, campaign, approval): {prepared.setup_seconds:.1f} s")

        def raw() -> dict[str, Any]:
            if channel == "email":
                return _raw_email(peer, prepared.sample, count)
            return _raw_sms(
                peer, prepared.sample, receipts=args.receipts, receipt_timeout=args.receipt_timeout
            )

        raws = [raw()]
        console.print(f"  raw (before): {raws[0]['rate']:,.0f} msgs/s")
        engine: EngineResult = in_child(
            run_engine,
            prepared=prepared,
            channel=channel,
            timeout=args.timeout,
            receipt_timeout=args.receipt_timeout,
            wait_receipts=args.receipts,
        )
        console.print(
            f"  engine: {engine.rate:,.0f} msgs/s ({engine.sent:,}/{engine.planned:,} sent, "
            f"wall {engine.wall_seconds:.1f} s){' [red]TIMED OUT[/]' if engine.timed_out else ''}"
        )
        raws.append(raw())
        console.print(f"  raw (after): {raws[1]['rate']:,.0f} msgs/s")
    if not args.keep:
        shutil.rmtree(prepared.directory, ignore_errors=True)
    return Measurement(
        channel=channel,
        count=count,
        peer=peer.kind + (f" — {peer.note}" if peer.note else ""),
        engine=engine,
        raw=raws,
        setup_seconds=prepared.setup_seconds,
    )


# ----------------------------------------------------------------------------------------------- output
def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


def print_tables(measurements: list[Measurement], console: Console) -> None:
    for channel in CHANNELS:
        rows = [m for m in measurements if m.channel == channel]
        if not rows:
            continue
        raw_name = "raw aiosmtplib, 1 connection" if channel == "email" else "raw smpplib, 1 bind, window 64"
        processes = sorted({name for m in rows for name in m.engine.peak_rss_kib})
        table = Table(title=f"{channel}: engine vs {raw_name}\npeer: {rows[0].peer}")
        for column in ("N", "engine/s", "raw/s", "ratio", "send s", "wall s"):
            table.add_column(column, justify="right")
        if channel == "sms":
            table.add_column("receipts s\nengine|raw", justify="right")
        table.add_column("peak RSS MiB\n" + " | ".join([*processes, "driver"]), justify="right")
        for m in rows:
            ratio_style = "green" if m.ratio >= TARGET_RATIO else "red"
            cells = [
                f"{m.count:,}",
                f"{m.engine.rate:,.0f}",
                f"{m.raw_rate:,.0f}",
                f"[{ratio_style}]{m.ratio:.2f}[/]",
                f"{m.engine.send_seconds:.1f}",
                f"{m.engine.wall_seconds:.1f}",
            ]
            if channel == "sms":
                raw_receipts = [r.get("receipts_seconds") for r in m.raw]
                raw_text = "/".join("-" if r is None else f"{r:.1f}" for r in raw_receipts)
                engine_text = "-" if m.engine.receipts_seconds is None else f"{m.engine.receipts_seconds:.1f}"
                cells.append(f"{engine_text}|{raw_text}")
            rss = [_mib(m.engine.peak_rss_kib.get(name, 0)) for name in processes]
            cells.append(" | ".join([*rss, _mib(m.engine.driver_peak_rss_kib)]))
            table.add_row(*cells)
        console.print(table)
        console.print(
            "engine/s: sent / (last sent_at - first claimed_at); raw/s: mean of the raw runs before/after; "
            "wall: plan enqueued to nothing left to send; RSS: VmHWM per process.",
            style="dim",
        )


def write_json(path: Path, measurements: list[Measurement], argv: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "command": " ".join(["python -m benchmarks.run", *argv]),
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "notes": [
            "engine msgs/s = sent / (last sent_at - first claimed_at) of the run, from the database",
            "raw msgs/s = mean of the raw client run just before and just after the engine, same peer",
            "wall = from enqueuing plan_run to nothing left to send (includes planning)",
            "peak RSS = VmHWM of each engine worker just before it stops, and of the driving process (tick, "
            "progress polling; a fresh process per run)",
        ],
        "results": [m.to_json() for m in measurements],
    }
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--n", default="2000,10000", help="comma-separated campaign sizes (default 2000,10000)"
    )
    parser.add_argument("--channels", default="email,sms", help="comma-separated: email,sms")
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="[delivery] chunk_size (default: as init)"
    )
    parser.add_argument("--receipt-delay", type=float, default=0.2, help="SMSC receipt delay, seconds")
    parser.add_argument(
        "--no-receipts",
        dest="receipts",
        action="store_false",
        help="the SMSC sends no receipts (diagnostic: the submit path alone; targets are with receipts)",
    )
    parser.add_argument("--receipt-timeout", type=float, default=60.0, help="wait for SMS receipts, seconds")
    parser.add_argument("--timeout", type=float, default=900.0, help="bound on one engine run, seconds")
    parser.add_argument("--workdir", type=Path, default=None, help="where the working directories go")
    parser.add_argument("--keep", action="store_true", help="keep the working directories (logs, databases)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in str(args.n).split(",") if s.strip()]
    args.channel_list = [c.strip() for c in str(args.channels).split(",") if c.strip()]
    unknown = set(args.channel_list) - set(CHANNELS)
    if unknown or not args.sizes or min(args.sizes) < 1:
        parser.error(f"unknown channels {sorted(unknown)}; sizes must be positive" if unknown else "bad --n")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    # Not a terminal (make bench | tee): rich would wrap the tables at 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=140)
    owned_root = args.workdir is None
    root = Path(tempfile.mkdtemp(prefix="broadcaster-bench-")) if owned_root else args.workdir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    measurements: list[Measurement] = []
    try:
        for channel in args.channel_list:
            for count in args.sizes:
                measurements.append(measure(channel, count, args, root, console))
                write_json(args.out, measurements, argv)  # partial results survive an interrupted run
    finally:
        if owned_root and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print_tables(measurements, console)
    console.print(f"Results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
