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

This module drives the sizes and channels; the parts have modules of their own: ``peers``, ``workdir`` (set-up),
``engine_run``, ``raw_runs``, ``report`` (tables and JSON) and ``processes`` (ports, RSS, spawned children).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks.binds_report import print_binds
from benchmarks.deployment import BROKERS, distributed_services
from benchmarks.deployments_report import print_deployments
from benchmarks.engine_run import EngineResult, run_engine
from benchmarks.peers import Peer, email_peer, sms_peer
from benchmarks.processes import in_child
from benchmarks.raw_runs import raw_email, raw_sms
from benchmarks.report import Measurement, print_audit_cost, print_tables, write_json
from benchmarks.workdir import CHANNELS, Prepared, prepare

DEPLOYMENTS = ("embedded", "distributed")
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def measure(
    channel: str, count: int, args: argparse.Namespace, root: Path, console: Console, *, binds: int = 1
) -> list[Measurement]:
    """One measurement per ``--audit-deliveries`` mode, in the order given, between one raw run before and
    one after (their mean is every mode's reference). SMS: the engine's account and the raw client both on
    ``binds`` binds."""
    peer_context = (
        email_peer(root, console)
        if channel == "email"
        else sms_peer(args.receipt_delay if args.receipts else None)
    )
    done: list[tuple[str, Prepared, EngineResult]] = []
    with peer_context as peer:
        on_binds = f", {binds} bind{'s' if binds > 1 else ''}" if channel == "sms" else ""
        console.print(
            f"[bold]{channel}, N={count:,}{on_binds}[/] — peer: {peer.kind} on 127.0.0.1:{peer.port}"
        )
        raws: list[dict[str, Any]] = []
        for number, (deployment, mode) in enumerate(args.variants, start=1):
            with ExitStack() as stack:
                services = (
                    stack.enter_context(distributed_services(args.broker, root))
                    if deployment == "distributed"
                    else None
                )
                # Set-up and the engine's driver each run in a fresh process: the driver's RSS is then this
                # run's alone, and Celery's cached broker connection never points at the previous run's broker.
                prepared: Prepared = in_child(
                    prepare,
                    root=root,
                    channel=channel,
                    count=count,
                    port=peer.port,
                    chunk_size=args.chunk_size,
                    audit_deliveries=mode == "on",
                    tag=(f"-{deployment}-audit-{mode}-{number}" if len(args.variants) > 1 else "")
                    + (f"-binds-{binds}" if binds > 1 else ""),
                    services=None if services is None else (services.database_url, services.broker_url),
                    binds=binds,
                )
                console.print(f"  set-up (contacts, campaign, approval): {prepared.setup_seconds:.1f} s")
                if not raws:
                    raws.append(_raw(channel, peer, prepared, count, args, binds))
                    console.print(f"  raw (before): {raws[0]['rate']:,.0f} msgs/s")
                engine: EngineResult = in_child(
                    run_engine,
                    prepared=prepared,
                    channel=channel,
                    timeout=args.timeout,
                    receipt_timeout=args.receipt_timeout,
                    wait_receipts=args.receipts,
                    services=services,
                )
            lag = (
                ""
                if engine.receipt_lag_seconds is None
                else f", receipt lag {engine.receipt_lag_seconds:.1f} s"
            )
            console.print(
                f"  engine {deployment}, audit deliveries {mode}: {engine.rate:,.0f} msgs/s "
                f"({engine.sent:,}/{engine.planned:,} sent, wall {engine.wall_seconds:.1f} s{lag}, "
                f"CPU s {engine.cpu_by_process}, audit entries {engine.audit_entries or 'none'}; "
                f"load {_load()}{f', restarted {engine.restarts}' if engine.restarts else ''})"
                f"{' [red]TIMED OUT[/]' if engine.timed_out else ''}"
            )
            done.append((mode, prepared, engine))
            if not args.keep:
                shutil.rmtree(prepared.directory, ignore_errors=True)
        raws.append(_raw(channel, peer, done[-1][1], count, args, binds))
        console.print(f"  raw (after): {raws[1]['rate']:,.0f} msgs/s")
    return [
        Measurement(
            channel=channel,
            count=count,
            peer=peer.kind + (f" — {peer.note}" if peer.note else ""),
            engine=engine,
            raw=raws,
            setup_seconds=prepared.setup_seconds,
            audit_deliveries=mode,
            binds=binds if channel == "sms" else 1,
        )
        for mode, prepared, engine in done
    ]


def _load() -> str:
    return " ".join(f"{figure:.2f}" for figure in os.getloadavg())


def _raw(
    channel: str, peer: Peer, prepared: Prepared, count: int, args: argparse.Namespace, binds: int
) -> dict[str, Any]:
    if channel == "email":
        return raw_email(peer, prepared.sample, count)
    return raw_sms(
        peer, prepared.sample, receipts=args.receipts, receipt_timeout=args.receipt_timeout, binds=binds
    )


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
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"JSON results (default {RESULTS}; with a distributed run results/deployments-BROKER-DATE.json)",
    )
    parser.add_argument(
        "--audit-deliveries",
        default="on",
        help="comma-separated on/off, one engine run each in this order, e.g. on,off,off,on: the same send "
        "with [audit] deliveries on and off side by side, and the cost of the entries in %% (default on)",
    )
    parser.add_argument(
        "--deployment",
        default="embedded",
        help="comma-separated embedded,distributed: one engine run each in this order (distributed: "
        "PostgreSQL, a broker server and the broadcaster worker/beat processes; default embedded)",
    )
    parser.add_argument("--broker", default="rabbitmq", choices=BROKERS, help="distributed: the broker")
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat the deployments and audit modes this many times"
    )
    parser.add_argument(
        "--binds",
        default="1",
        help="SMS: comma-separated bind counts, e.g. 1,2,4: for each, the engine's SMPP account and the raw "
        "client (one process per bind) on that many binds, with its own raw runs (default 1)",
    )
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in str(args.n).split(",") if s.strip()]
    args.channel_list = [c.strip() for c in str(args.channels).split(",") if c.strip()]
    args.audit_modes = [m.strip() for m in str(args.audit_deliveries).split(",") if m.strip()]
    if not args.audit_modes or set(args.audit_modes) - {"on", "off"}:
        parser.error("--audit-deliveries takes on and off, comma-separated (e.g. on,off)")
    deployments = [d.strip() for d in str(args.deployment).split(",") if d.strip()]
    if not deployments or set(deployments) - set(DEPLOYMENTS):
        parser.error(f"--deployment takes {' and '.join(DEPLOYMENTS)}, comma-separated")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    try:
        args.bind_counts = [int(b) for b in str(args.binds).split(",") if b.strip()]
    except ValueError:
        args.bind_counts = []
    if not args.bind_counts or min(args.bind_counts) < 1:
        parser.error("--binds takes positive bind counts, comma-separated (e.g. 1,2,4)")
    if args.out is None:
        distributed = "distributed" in deployments
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        args.out = RESULTS.with_name(f"deployments-{args.broker}-{day}.json") if distributed else RESULTS
    # Alternating (A B A B …): the drift of a shared machine hits every variant alike.
    args.variants = [(d, m) for _ in range(args.rounds) for d in deployments for m in args.audit_modes]
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
                for binds in args.bind_counts if channel == "sms" else [1]:
                    measurements.extend(measure(channel, count, args, root, console, binds=binds))
                write_json(args.out, measurements, argv)  # partial results survive an interrupted run
    finally:
        if owned_root and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print_tables(measurements, console)
    print_audit_cost(measurements, console)
    print_deployments(measurements, console)
    print_binds(measurements, console)
    console.print(f"Results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
