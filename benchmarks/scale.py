"""The scale benchmark (issue 15): a city-sized contact list imported, and one run of an e-mail + SMS campaign
planned for all of it, on SQLite and on PostgreSQL:

    .venv/bin/python -m benchmarks.scale --n 100000,3000000 --database sqlite,postgresql

(``make bench-scale``). For each N the contacts file is generated once (``generate_valid_contacts``: N valid,
unique mobiles round-robin over the carriers' prefixes, unique e-mails, the city's 94 commune-level units,
written row by row); then, per database, in a working directory of its own (on PostgreSQL a database of its
own, dropped afterwards):

- ``init``: the working directory, its users (the operating-system login as editor: the CLI acts as it);
- ``import``: ``broadcaster contacts import FILE --json`` in a subprocess, the CLI's own code path, with the
  ``[contacts]`` row and size limits raised to the file (``BROADCASTER_CONTACTS__*``);
- ``approve``: the example campaign (``thong-bao-dich-vu-cong``: SMS and e-mail) for the citizens, loaded,
  submitted and approved;
- ``plan``: one manual run planned by the planner's entry point (``plan_run``) with a recording enqueuer: the
  messages are inserted and the chunks cut, nothing is sent.

Each phase runs in a child process of its own, so the peak RSS it reports is that phase's alone (the child's
``ru_maxrss``, or its own children's, e.g. the CLI's). Printed as a table (rows/s: contacts for generate and
import, the CLI's start included; planned messages for plan); the JSON goes to
``benchmarks/results/scale-<date>.json``.

``--send`` (``make bench-scale-send``) is the city-wide SMS itself: the campaign is SMS only, and a ``send``
phase takes the place of ``plan``: the engine plans the run and sends it to the sandbox SMSC with receipts,
embedded, or with ``--broker`` distributed on PostgreSQL (``--sms-accounts`` gateway processes sharing it by a
route), and says whether every message ended terminal (``benchmarks.scale_send``; JSON in
``benchmarks/results/scale-send[-BROKER]-<date>.json``):

    .venv/bin/python -m benchmarks.scale --n 3000000 --database sqlite --send
    .venv/bin/python -m benchmarks.scale --n 3000000 --database postgresql --send --broker rabbitmq --sms-accounts 2
"""

from __future__ import annotations

import argparse
import getpass
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from benchmarks.deployment import BROKERS, postgres_database
from benchmarks.scale_send import SendOptions, describe, send, sms_only
from benchmarks.web_api import save_result
from benchmarks.workdir import add_editor_and_approver
from broadcaster.campaigns import workflow
from broadcaster.campaigns.files import ProviderInfo, SendRules, validate_paths
from broadcaster.campaigns.store import load_bundle
from broadcaster.clock import SystemClock
from broadcaster.contacts.generate import generate_valid_contacts
from broadcaster.context import AppContext
from broadcaster.db.models import Message, User
from broadcaster.outbox.planner import plan_run
from broadcaster.outbox.queues import RecordingEnqueuer
from broadcaster.outbox.sending import start_manual_run
from broadcaster.workdir import init_workdir

__all__ = ["DATABASES", "PHASES", "SEND_PHASES", "Case", "run"]

DATABASES = ("sqlite", "postgresql")
APPROVER = "pheduyet"
CAMPAIGN_ID = "quy-mo-thanh-pho"
EXAMPLE_CAMPAIGN = Path("campaigns") / "examples" / "thong-bao-dich-vu-cong.yaml"
# The CLI as its console script starts it, from this interpreter (so PYTHONPATH and the venv are the same).
CLI = "import sys; from broadcaster.cli import main; sys.argv[0] = 'broadcaster'; sys.exit(main())"


@dataclass(frozen=True)
class Case:
    """One size on one database: where its file and working directory are."""

    n: int
    contacts: Path  # the generated file, shared by the databases of one N
    workdir: Path
    send: SendOptions | None = None  # --send: an SMS-only campaign, sent instead of planned alone

    @property
    def config(self) -> Path:
        return self.workdir / "broadcaster.toml"


def _generate(case: Case, database_url: str | None) -> dict[str, Any]:
    case.contacts.parent.mkdir(parents=True, exist_ok=True)
    generate_valid_contacts(case.contacts, count=case.n)
    return {"rows": case.n, "file_mib": round(case.contacts.stat().st_size / 2**20, 1)}


def _init(case: Case, database_url: str | None) -> dict[str, Any]:
    clock = SystemClock()
    admin, editor = "quantri", getpass.getuser()
    context = init_workdir(case.workdir, admin_login=admin, clock=clock, database_url=database_url)
    try:
        with context.sessions.begin() as session:
            add_editor_and_approver(session, admin=admin, editor=editor, approver=APPROVER, clock=clock)
    finally:
        context.close()
    return {"database": context.settings.database_url.partition(":")[0]}


def _import(case: Case, database_url: str | None) -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if key != "BROADCASTER_USER"}
    env["BROADCASTER_CONTACTS__MAX_ROWS"] = str(max(case.n, 1))
    env["BROADCASTER_CONTACTS__MAX_FILE_MB"] = str(math.ceil(case.contacts.stat().st_size / 2**20) + 1)
    done = subprocess.run(  # noqa: S603  this interpreter running the project's CLI, arguments built here
        [sys.executable, "-c", CLI, "contacts", "import", str(case.contacts), "--json"],
        cwd=case.workdir, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"contacts import exited with {done.returncode}: {done.stderr.strip()[-2000:]}")
    report = json.loads(done.stdout[done.stdout.find("{") :])  # after any progress lines
    return {
        "rows": report["total_rows"],
        "created": report["created"],
        "updated": report["updated"],
        "skipped": report["skipped"],
        "problems": len(report.get("problems") or []),
    }


def _approve(case: Case, database_url: str | None) -> dict[str, Any]:

    context = AppContext.load(case.config)
    try:
        data = yaml.safe_load((case.workdir / EXAMPLE_CAMPAIGN).read_text(encoding="utf-8"))
        data |= {
            "id": CAMPAIGN_ID,
            "title": "Thông báo toàn thành phố",
            "audience": {"segments": ["citizen"]},
        }
        if case.send is not None:
            data = sms_only(data)
        folder = context.campaigns_dir / "scale"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{CAMPAIGN_ID}.yaml").write_text(
            yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        settings = context.settings
        bundles, problems = validate_paths(
            [folder],
            templates_dir=context.templates_dir,
            providers=ProviderInfo.all_from(settings),
            rules=SendRules.from_settings(settings),
        )
        if problems:
            raise RuntimeError("\n".join(str(problem) for problem in problems))
        with context.sessions.begin() as session:
            editor = session.scalar(select(User).where(User.login == getpass.getuser()))
            approver = session.scalar(select(User).where(User.login == APPROVER))
            assert editor is not None and approver is not None
            for bundle in bundles:
                load_bundle(session, bundle, actor=editor.login, clock=context.clock)
            version = workflow.submit(
                session, campaign_id=CAMPAIGN_ID, actor=editor, settings=settings, clock=context.clock
            )
            workflow.approve(
                session,
                campaign_id=CAMPAIGN_ID,
                actor=approver,
                clock=context.clock,
                content_hash=version.content_hash,
            )
    finally:
        context.close()
    return {"channels": sorted(data["channels"])}


def _plan(case: Case, database_url: str | None) -> dict[str, Any]:

    context = AppContext.load(case.config)
    try:
        with context.sessions.begin() as session:
            editor = session.scalar(select(User).where(User.login == getpass.getuser()))
            assert editor is not None
            run_id = start_manual_run(session, campaign_id=CAMPAIGN_ID, actor=editor, clock=context.clock)
        enqueuer = RecordingEnqueuer()
        planned = plan_run(
            context.sessions, run_id=run_id, settings=context.settings, clock=context.clock, enqueuer=enqueuer
        )
        with context.readers() as session:
            counted = session.execute(
                select(Message.channel, Message.status, func.count())
                .where(Message.run_id == run_id)
                .group_by(Message.channel, Message.status)
            ).all()
    finally:
        context.close()
    return {
        "rows": planned,
        "by_channel_status": {f"{channel}/{status}": count for channel, status, count in counted},
        "chunks": len(enqueuer.chunks),
    }


def _send(case: Case, database_url: str | None) -> dict[str, Any]:
    assert case.send is not None
    where = (case.workdir, case.config, CAMPAIGN_ID)
    return send(*where, n=case.n, database_url=database_url, options=case.send)


Phase = Callable[[Case, "str | None"], dict[str, Any]]
# The order they run in; "generate" once per N, the others once per database.
PHASES: dict[str, Phase] = {
    "generate": _generate,
    "init": _init,
    "import": _import,
    "approve": _approve,
    "plan": _plan,
}
# --send: the engine plans the run as it sends it (``broadcaster send``), so "send" takes the place of "plan".
SEND_PHASES: dict[str, Phase] = {name: phase for name, phase in PHASES.items() if name != "plan"} | {
    "send": _send
}


def phases_of(case: Case) -> dict[str, Phase]:
    return PHASES if case.send is None else SEND_PHASES


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def _child(phase: str, case: Case, database_url: str | None) -> None:
    """One phase in this (fresh) process; one JSON line: its seconds, peak RSS and CPU (the phase's: not this
    process's start; its peak RSS does include the imports every phase needs)."""
    cpu_before = _cpu(resource.getrusage(resource.RUSAGE_SELF))
    started = time.perf_counter()
    out = phases_of(case)[phase](case, database_url)
    seconds = time.perf_counter() - started
    own, below = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = {
        "phase": phase,
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(max(own.ru_maxrss, below.ru_maxrss) / 1024, 1),  # Linux: KiB
        # The largest of the processes it started and waited for (the CLI; a planner's workers, if any).
        "children_peak_rss_mib": round(below.ru_maxrss / 1024, 1),
        "cpu_seconds": round(_cpu(own) - cpu_before + _cpu(below), 2),
    }
    rows = out.get("rows")
    if isinstance(rows, int) and seconds > 0:
        figures["rows_per_s"] = round(rows / seconds)
    print(json.dumps(figures | out, ensure_ascii=False))


def _in_child(phase: str, case: Case, database_url: str | None) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.scale", "--child", phase, str(case.n), str(case.contacts),
               str(case.workdir), database_url or ""]  # fmt: skip
    if case.send is not None:
        command += ["--child-send", json.dumps(case.send.to_json())]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603  our own module
    if done.returncode != 0:
        raise RuntimeError(f"phase {phase} (N={case.n:,}) failed:\n{done.stderr.strip()[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@contextmanager
def _database(kind: str) -> Iterator[str | None]:
    """None for SQLite (the working directory's own file); a fresh PostgreSQL database, dropped afterwards."""
    if kind == "sqlite":
        yield None
        return
    with postgres_database(f"bench_scale_{uuid.uuid4().hex[:10]}") as url:
        yield url


def run(
    sizes: list[int],
    databases: list[str],
    root: Path,
    *,
    keep: bool = False,
    echo: Callable[[str], None] = print,
    send: SendOptions | None = None,
    on_result: Callable[[list[dict[str, Any]]], None] | None = None,
) -> list[dict[str, Any]]:
    """Every phase for each size and database; one result per (N, database), with the generation's figures.
    With ``send`` the campaign is SMS only and the engine sends it (the "send" phase instead of "plan").
    ``on_result`` gets the results so far after each (N, database): an interrupted long run keeps them."""
    results: list[dict[str, Any]] = []
    for n in sizes:
        contacts = root / f"n{n}" / "contacts.csv"
        generated = _in_child("generate", Case(n, contacts, contacts.parent), None)
        echo(_line(n, "-", generated))
        for kind in databases:
            case = Case(n, contacts, root / f"n{n}" / kind, send=send)
            if case.workdir.exists():
                shutil.rmtree(case.workdir)
            phases: dict[str, Any] = {"generate": generated}
            with _database(kind) as url:
                for phase in list(phases_of(case))[1:]:
                    phases[phase] = _in_child(phase, case, url)
                    echo(_line(n, kind, phases[phase]))
                    if phase == "send":
                        for line in describe(phases[phase]):
                            echo(line)
            results.append({"n": n, "database": kind, "phases": phases})
            if on_result is not None:
                on_result(results)
            if not keep:
                shutil.rmtree(case.workdir, ignore_errors=True)
        if not keep:
            contacts.unlink(missing_ok=True)
    return results


def _line(n: int, database: str, figures: dict[str, Any]) -> str:
    rate = f"{figures['rows_per_s']:>9,}" if "rows_per_s" in figures else f"{'':>9}"
    return (
        f"{n:>10,}  {database:<10}  {figures['phase']:<8}  {figures['seconds']:>8.1f}  {rate}  "
        f"{figures['peak_rss_mib']:>8.1f}  {figures['cpu_seconds']:>7.1f}"
    )


HEADER = (
    f"{'N':>10}  {'database':<10}  {'phase':<8}  {'seconds':>8}  {'rows/s':>9}  {'peak MiB':>8}  {'CPU s':>7}"
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", default="100000", help="contact counts, comma-separated (e.g. 100000,3000000)")
    parser.add_argument("--database", default="sqlite", help=f"comma-separated: {', '.join(DATABASES)}")
    parser.add_argument(
        "--workdir", type=Path, help="where the files and working directories go (a temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the files and working directories")
    parser.add_argument("--no-save", action="store_true", help="print only (no benchmarks/results file)")
    parser.add_argument(
        "--send",
        action="store_true",
        help="an SMS-only campaign, sent through the engine to the sandbox SMSC with receipts (instead of "
        "planned alone): wall time, msgs/s, statuses (every message must end terminal), peak RSS per process",
    )
    parser.add_argument(
        "--broker",
        choices=BROKERS,
        help="--send on PostgreSQL: the distributed deployment (broadcaster worker/beat processes) on this "
        "broker (default: embedded)",
    )
    parser.add_argument(
        "--sms-accounts", type=int, default=1, help="--send: SMSC accounts sharing the run, a gateway each"
    )
    parser.add_argument(
        "--receipt-delay", type=float, default=0.2, help="--send: the SMSC's receipt delay, seconds"
    )
    parser.add_argument(
        "--send-timeout", type=float, help="--send: bound on the run, seconds (default 900 + N/100)"
    )
    parser.add_argument(
        "--child", nargs=5, metavar=("PHASE", "N", "CONTACTS", "WORKDIR", "DB"), help=argparse.SUPPRESS
    )
    parser.add_argument("--child-send", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        phase, n, contacts, workdir, database_url = args.child
        options = SendOptions(**json.loads(args.child_send)) if args.child_send else None
        _child(phase, Case(int(n), Path(contacts), Path(workdir), send=options), database_url or None)
        return
    databases = [part.strip() for part in args.database.split(",") if part.strip()]
    unknown = [kind for kind in databases if kind not in DATABASES]
    if unknown:
        parser.error(f"--database: {', '.join(unknown)} is not one of {', '.join(DATABASES)}")
    sizes = [int(part) for part in args.n.split(",")]
    send_options: SendOptions | None = None
    if args.send:
        if args.broker is not None and databases != ["postgresql"]:
            parser.error("--broker: the distributed deployment runs on --database postgresql alone")
        if args.sms_accounts < 1:
            parser.error("--sms-accounts must be at least 1")
        send_options = SendOptions(
            broker=args.broker,
            accounts=args.sms_accounts,
            receipt_delay=args.receipt_delay,
            timeout=args.send_timeout,
        )
    elif args.broker is not None:
        parser.error("--broker goes with --send")
    root = args.workdir or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    print(HEADER, flush=True)
    command = " ".join(["python", "-m", "benchmarks.scale", *sys.argv[1:]])
    # The send runs apart from the planning ones, each deployment apart (results/scale-send-rabbitmq-<date>).
    name = "scale" if send_options is None else "-".join(filter(None, ["scale-send", send_options.broker]))
    written: list[Path] = []

    def save(results: list[dict[str, Any]]) -> None:
        if not args.no_save:
            written[:] = [save_result(name, {"command": command, "results": results})]

    run(sizes, databases, root, keep=args.keep, echo=lambda line: print(line, flush=True), send=send_options,
        on_result=save)  # fmt: skip
    if written:
        print(f"written to {written[0]}")
    if not args.keep and args.workdir is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
