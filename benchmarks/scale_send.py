"""The send phase of the scale benchmark (``python -m benchmarks.scale --send``): the imported city is sent one
SMS each, with receipts, through the engine, and every message must end terminal.

In the phase's own process: the sandbox SMSC in a process of its own (``benchmarks.peers.sms_peer``, keeping no
per-message records: at millions they would grow by GiB), the working directory's settings pointed at it
(``workdir.write_config``: no e-mail provider, no ``tps``, the tick every 0.5 s) with ``accounts`` SMSC accounts
sharing the campaign's messages by a route (one gateway process each, docs/deployment.md "What to scale
when"), and the run sent by ``engine_run.run_engine``: embedded (Celery workers on the SQLite broker, the tick
in this process), or with a broker distributed (``broadcaster worker``, ``worker --gateway`` per account,
``worker --inbound``, ``beat``) on the case's PostgreSQL database and a broker of its own. The planning is the
main worker's, as ``broadcaster send`` does it; the gateways send the chunks cut while it plans.

Reported: planning seconds (plan enqueued to the run's ``planned_at``), messages/s (first claim to last
``sent_at``), wall seconds to "nothing left to send" and to the last receipt, the receipt lag, the statuses,
how many messages are not terminal (``lost``: queued, sending, sent without receipt, unknown), and the peak RSS
(VmHWM) of every process: engine workers and their pool children, the gateways, the inbound applier, beat or
the tick (the driver), the SMSC peer.
"""

from __future__ import annotations

import getpass
import re
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from benchmarks.deployment import Services, broker_service
from benchmarks.engine_run import EngineResult, run_engine
from benchmarks.peers import sms_peer
from benchmarks.processes import vm_hwm_kib
from benchmarks.workdir import PROVIDER, Prepared, Sample, write_config

__all__ = ["TERMINAL", "SendOptions", "add_accounts", "describe", "send", "sms_only"]

SMS_PROVIDER = PROVIDER["sms"]
# With receipts, a message is done when its receipt (or a final failure) is in: "sent" still waits for one,
# "unknown" is held for an operator, "queued"/"sending" never left.
TERMINAL = frozenset(
    {"delivered", "temporary_failure", "permanent_failure", "technical_failure", "suppressed", "cancelled"}
)


@dataclass(frozen=True)
class SendOptions:
    broker: str | None = None  # None: embedded; "rabbitmq" or "redis": distributed (on PostgreSQL)
    accounts: int = 1  # SMSC accounts sharing the messages, one gateway process each
    receipt_delay: float = 0.2  # the SMSC's receipt after this many seconds
    timeout: float | None = None  # bound on the run, seconds (default: from N)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def run_timeout(self, n: int) -> float:
        # A hung run must end, a slow one must not: 100 msgs/s at worst, plus the start and the planning.
        return self.timeout if self.timeout is not None else 900.0 + n / 100

    @staticmethod
    def receipt_timeout(n: int) -> float:
        # After the last send, the receipts still to apply: a backlog grows with N if the applier is slower.
        return 600.0 + n / 500


def sms_only(campaign: dict[str, Any]) -> dict[str, Any]:
    """The scale campaign with its SMS channel alone (the city-wide notice is SMS only)."""
    return campaign | {"channels": {"sms": campaign["channels"]["sms"]}}


def _provider_section(text: str, name: str) -> str:
    found = re.search(rf"^\[providers\.{name}\]\n(?:(?!\[).*\n)*", text, flags=re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no [providers.{name}] in the settings")
    return found.group(0)


def add_accounts(config: Path, accounts: int) -> None:
    """``accounts - 1`` more SMSC accounts like the first one, and a route sharing its messages evenly."""
    if accounts <= 1:
        return
    text = config.read_text(encoding="utf-8")
    section = _provider_section(text, SMS_PROVIDER)
    names = [SMS_PROVIDER, *(f"{SMS_PROVIDER}_{number}" for number in range(2, accounts + 1))]
    extra = "".join(
        "\n" + section.replace(f"[providers.{SMS_PROVIDER}]", f"[providers.{name}]") for name in names[1:]
    )
    shares = ", ".join(f'["{name}", 1]' for name in names)
    route = f"\n[routes.{SMS_PROVIDER}]\ndefault = [{shares}]\n"
    config.write_text(text + extra + route, encoding="utf-8")


def send(
    workdir: Path, config: Path, campaign_id: str, *, n: int, database_url: str | None, options: SendOptions
) -> dict[str, Any]:
    """One run of ``campaign_id`` to the SMSC peer; the figures, JSON-ready."""
    with ExitStack() as stack:
        peer = stack.enter_context(sms_peer(options.receipt_delay, keep_records=False))
        services: Services | None = None
        if options.broker is not None:
            if database_url is None or not database_url.startswith("postgresql"):
                raise RuntimeError("a distributed send needs --database postgresql")
            name = str(make_url(database_url).database)
            broker_url, redis_pid = stack.enter_context(broker_service(options.broker, workdir, name))
            services = Services(database_url, broker_url, options.broker, name, redis_pid=redis_pid)
        write_config(
            config,
            channel="sms",
            port=peer.port,
            chunk_size=None,
            services=None if services is None else (services.database_url, services.broker_url),
        )
        add_accounts(config, options.accounts)
        prepared = Prepared(
            directory=workdir, config=config, campaign_id=campaign_id, sample=Sample(), setup_seconds=0.0
        )
        engine = run_engine(
            prepared,
            channel="sms",
            timeout=options.run_timeout(n),
            receipt_timeout=options.receipt_timeout(n),
            services=services,
            editor=getpass.getuser(),
        )
        peer_kib = vm_hwm_kib(peer.pid) if peer.pid else 0
    figures = _figures(engine, peer_kib, options) | {"by_account": _by_account(config, engine.run_id)}
    if database_url is not None and database_url.startswith("postgresql"):
        figures["autovacuum"] = _autovacuum(database_url)
    return figures


def _autovacuum(database_url: str) -> str:
    """The server's autovacuum: off, the run's updates leave dead rows that every count and every receipt
    page reads again (a server of tests may turn it off; a deployment never should)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SHOW autovacuum")).scalar())
    finally:
        engine.dispose()


def _by_account(config: Path, run_id: int) -> dict[str, int]:
    """The run's messages per SMSC account: the route shared them (one gateway process each)."""
    from broadcaster.context import AppContext
    from broadcaster.db.models import Message

    context = AppContext.load(config)
    try:
        with context.readers() as session:
            rows = session.execute(
                select(Message.provider, func.count())
                .where(Message.run_id == run_id)
                .group_by(Message.provider)
            ).all()
    finally:
        context.close()
    return {str(provider): int(count) for provider, count in rows}


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


def _figures(engine: EngineResult, peer_kib: int, options: SendOptions) -> dict[str, Any]:
    terminal = sum(count for status, count in engine.statuses.items() if status in TERMINAL)
    rss = {name: _mib(kib) for name, kib in engine.peak_rss_kib.items()}
    # Embedded, the driver runs the tick; distributed, it only enqueues the plan and watches.
    rss["driver (tick)" if engine.deployment == "embedded" else "driver"] = _mib(engine.driver_peak_rss_kib)
    rss["smsc peer"] = _mib(peer_kib)
    return {
        "deployment": engine.deployment,
        "broker": options.broker,
        "accounts": options.accounts,
        "planned": engine.planned,
        "terminal": terminal,
        "lost": engine.planned - terminal,  # not terminal when the run ended: counted as lost
        "statuses": engine.statuses,
        "plan_seconds": _round(engine.plan_seconds),
        "send_seconds": round(engine.send_seconds, 2),
        "msgs_per_s": round(engine.rate, 1),
        "last_sent_seconds": _round(engine.last_sent_seconds),  # from the plan enqueued
        "last_receipt_seconds": _round(engine.last_final_seconds),
        "wall_seconds": round(engine.wall_seconds, 2),
        "receipts_seconds": _round(engine.receipts_seconds),
        "receipt_lag_seconds": _round(engine.receipt_lag_seconds),
        "timed_out": engine.timed_out,
        "restarts": engine.restarts,
        "peak_rss_mib_by_process": rss,
        "cpu_seconds_by_process": engine.cpu_by_process,
        "load_average": list(engine.load_average),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def describe(figures: dict[str, Any]) -> list[str]:
    """The send phase in three lines for the table: timings, statuses (lost loudly), peak RSS per process."""
    lost = figures["lost"]
    statuses = ", ".join(f"{status} {count:,}" for status, count in sorted(figures["statuses"].items()))
    rss = ", ".join(f"{name} {mib:g}" for name, mib in figures["peak_rss_mib_by_process"].items())
    receipt = figures["last_receipt_seconds"]
    return [
        f"{'':>12}send ({figures['deployment']}, {figures['accounts']} SMSC account(s)): "
        f"planned in {figures['plan_seconds'] or 0:.1f} s, {figures['msgs_per_s']:,.0f} msgs/s, "
        f"last sent after {figures['last_sent_seconds'] or 0:.1f} s, last receipt after "
        f"{'-' if receipt is None else f'{receipt:.1f}'} s (lag {figures['receipt_lag_seconds']} s)"
        f"{'; TIMED OUT' if figures['timed_out'] else ''}",
        f"{'':>12}terminal {figures['terminal']:,}/{figures['planned']:,} "
        f"({'none lost' if lost == 0 else f'LOST {lost:,}: not terminal'}): {statuses}; per account "
        f"{', '.join(f'{name} {count:,}' for name, count in figures['by_account'].items())}",
        f"{'':>12}peak RSS MiB: {rss}; load {' '.join(f'{x:.2f}' for x in figures['load_average'])}",
        *(
            [
                f"{'':>12}PostgreSQL's autovacuum is off: dead rows slow the run as it grows (not a deployment's)"
            ]
            if figures.get("autovacuum") == "off"
            else []
        ),
    ]
