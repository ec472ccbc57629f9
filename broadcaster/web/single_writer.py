"""One writer process for the single-message API of all the web workers (``serve --workers N`` on SQLite).

Each worker checks and renders its requests on its event loop and hands them in batches (``group_commit``)
to this process over a Unix socket; the process judges and writes one batch at a time
(``single_batches``) and answers each item. A writer thread in every worker instead shares its process's
interpreter lock with the busy event loop, and the workers queue for SQLite's one writer: a batch then took
two to three times its CPU time, and the latency followed (docs/web.md, "Single messages").

``serve`` starts the process before the workers, starts it again if it dies, and stops it after them. A
worker that cannot reach it answers 503 with Retry-After: a batch in flight when the writer died may or may
not be written, which the caller settles by sending again with the same Idempotency-Key.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import queue
import secrets
import shutil
import signal
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection, Listener, wait
from multiprocessing.synchronize import Event
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from broadcaster.campaigns.messages import MessageText
from broadcaster.context import AppContext
from broadcaster.outbox.single import Prepared, Refused, SingleRequest, VersionCache
from broadcaster.web.group_commit import LATER, written
from broadcaster.web.single_batches import BatchWrite, Submission, batch_writer, urgent_chunker

log = logging.getLogger(__name__)

WRITER_ENV = "BROADCASTER_SINGLE_WRITER"  # the writer's socket, for the workers
WRITER_KEY_ENV = "BROADCASTER_SINGLE_WRITER_KEY"  # the hex of the key its connections authenticate with
# How long ``serve`` waits for a writer to listen before it gives up starting (imports, the database).
START_SECONDS = 60.0


class WriterUnavailable(Exception):
    """The writer process could not be reached, or went away before it answered."""


@dataclass(frozen=True)
class _Wire:
    """A submission as it travels: the version by id and hash (its compiled templates stay behind)."""

    key_id: int
    idempotency_key: str | None
    fingerprint: str
    request: SingleRequest
    content_hash: str
    version_id: int
    address: str
    text: MessageText


def _wire(submission: Submission) -> _Wire:
    prepared = submission.prepared
    return _Wire(
        submission.key_id,
        submission.idempotency_key,
        submission.fingerprint,
        prepared.request,
        prepared.content_hash,
        prepared.version.id,
        prepared.address,
        prepared.text,
    )


class RemoteWrite:
    """A worker's ``write`` for its group commit: the batch to the writer process, its answers back.

    Called from the group commit's one thread, so one connection, opened on first use and again after a
    failure. It never raises: when the writer cannot answer, every item of the batch gets
    ``WriterUnavailable`` (a batch is not sent twice, since the first may have been written)."""

    def __init__(self, address: str, authkey: bytes) -> None:
        self._address = address
        self._authkey = authkey
        self._connection: Connection | None = None

    @classmethod
    def from_environment(cls) -> RemoteWrite | None:
        address = os.environ.get(WRITER_ENV)
        if not address:
            return None
        return cls(address, bytes.fromhex(os.environ.get(WRITER_KEY_ENV, "")))

    def __call__(self, batch: Sequence[Submission]) -> list[object]:
        wires = [_wire(submission) for submission in batch]
        try:
            if self._connection is None:
                self._connection = Client(self._address, family="AF_UNIX", authkey=self._authkey)
            self._connection.send(wires)
            answers: list[object] = self._connection.recv()
        except (OSError, EOFError, multiprocessing.AuthenticationError) as exc:
            self.close()
            log.warning("the single-message writer did not answer a batch of %s: %s", len(batch), exc)
            return [WriterUnavailable(str(exc)) for _ in batch]
        return answers

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def serve_writes(config: Path, address: str, authkey: bytes, ready: Event) -> None:
    """The writer process: listen on ``address``; write what the workers send, everything waiting at once.

    Ctrl-C and SIGTERM reach the whole process group: the writer ignores them, so that the workers' last
    requests are still written while they shut down; ``serve`` stops it after them, and it ends by itself if
    ``serve`` is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_end_with_parent, name="parent-watch", daemon=True).start()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    context = AppContext.load(config)
    versions = VersionCache(context.settings)
    write = batch_writer(context, versions, urgent_chunker(context))
    inbox: queue.SimpleQueue[tuple[Connection, list[_Wire]]] = queue.SimpleQueue()
    if os.path.exists(address):  # the socket of a writer that was killed
        os.unlink(address)
    listener = Listener(address, family="AF_UNIX", authkey=authkey)
    threading.Thread(target=_accept, args=(listener, inbox), name="accept", daemon=True).start()
    gc.freeze()  # what lives as long as the process, out of the collector's full passes (as in web.app)
    ready.set()
    while True:
        # What every worker sent while the last write ran is one write: at most one batch per worker
        # waits here (a worker sends its next batch after its answer), and the database sees one
        # transaction for them all.
        taken = [inbox.get()]
        while not inbox.empty():
            taken.append(inbox.get())
        answers = _written_all(context, versions, write, [wire for _c, wires in taken for wire in wires])
        start = 0
        for connection, wires in taken:
            with contextlib.suppress(OSError):  # a worker gone: what it sent is written all the same
                connection.send(answers[start : start + len(wires)])
            start += len(wires)


def _end_with_parent() -> None:
    parent = multiprocessing.parent_process()
    if parent is not None:
        wait([parent.sentinel])
        os._exit(0)


def _accept(listener: Listener, inbox: queue.SimpleQueue[tuple[Connection, list[_Wire]]]) -> None:
    while True:
        try:
            connection = listener.accept()
        except (OSError, multiprocessing.AuthenticationError) as exc:
            log.warning("a connection to the single-message writer was refused: %s", exc)
            continue
        threading.Thread(target=_receive, args=(connection, inbox), daemon=True).start()


def _receive(connection: Connection, inbox: queue.SimpleQueue[tuple[Connection, list[_Wire]]]) -> None:
    """One worker's batches into the inbox, until it disconnects."""
    with connection:
        while True:
            try:
                wires: list[_Wire] = connection.recv()
            except (EOFError, OSError):
                return
            inbox.put((connection, wires))


def _written_all(
    context: AppContext, versions: VersionCache, write: BatchWrite, wires: Sequence[_Wire]
) -> list[object]:
    """Every item answered: one left for later (a second request with a key the batch holds) goes with
    the next write here, as the worker's group commit would have done."""
    with context.readers() as session:
        batch = [
            Submission(
                wire.key_id,
                wire.idempotency_key,
                wire.fingerprint,
                Prepared(
                    wire.request,
                    wire.content_hash,
                    versions.get(session, wire.version_id, wire.content_hash),
                    wire.address,
                    wire.text,
                ),
            )
            for wire in wires
        ]
    answers: list[object] = [LATER] * len(batch)
    todo = list(range(len(batch)))
    while todo:
        for n, answer in zip(todo, written(write, [batch[n] for n in todo]), strict=True):
            answers[n] = _sendable(answer)
        todo = [n for n in todo if answers[n] is LATER]
    return answers


def _sendable(answer: object) -> object:
    """An answer that pickles and means the same to the worker: an unexpected error is logged here, and
    the worker gets its text (its request answers 500, as a worker's own writer would)."""
    if answer is LATER or not isinstance(answer, BaseException):
        return answer
    if isinstance(answer, Refused | IntegrityError):
        return answer
    log.error("writing a single message failed", exc_info=answer)
    return RuntimeError(f"{type(answer).__name__}: {answer}")


class WriterProcess:
    """The writer process of ``serve``: started before the workers, started again whenever it dies, stopped
    after them. ``environment()`` is what the workers need to reach it."""

    def __init__(self, config: Path) -> None:
        self._config = config
        self._directory = tempfile.mkdtemp(prefix="broadcaster-writer-")  # private (0700): the socket's home
        self.address = os.path.join(self._directory, "writer.sock")
        self._authkey = secrets.token_bytes(32)
        self._spawn = multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self.starts = 0  # processes started so far

    def environment(self) -> dict[str, str]:
        return {WRITER_ENV: self.address, WRITER_KEY_ENV: self._authkey.hex()}

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        self._start()
        self._watcher = threading.Thread(target=self._watch, name="single-writer-watch", daemon=True)
        self._watcher.start()

    def _start(self) -> None:
        ready = self._spawn.Event()
        process = self._spawn.Process(
            target=serve_writes,
            args=(self._config, self.address, self._authkey, ready),
            name="broadcaster-single-writer",
            daemon=True,
        )
        process.start()
        waited = 0.0
        while not ready.wait(0.5):
            waited += 0.5
            if not process.is_alive() or waited >= START_SECONDS:
                process.kill()
                raise RuntimeError(
                    f"the single-message writer did not start (exit code {process.exitcode}); its log says why"
                )
        self._process = process
        self.starts += 1

    def _watch(self) -> None:
        while not self._stopping.is_set():
            assert self._process is not None
            self._process.join()
            if self._stopping.is_set():
                return
            log.error("the single-message writer exited (code %s); starting it again", self._process.exitcode)
            try:
                self._start()
            except Exception:
                log.exception("the single-message writer could not be started again; trying once more")
                self._stopping.wait(1.0)  # not a busy loop when the database is gone

    def stop(self) -> None:
        """After the workers: nothing is in flight (the writer ignores SIGTERM, see ``serve_writes``)."""
        self._stopping.set()
        if self._process is not None:
            self._process.kill()
            self._process.join(10)
        if self._watcher is not None:
            self._watcher.join(10)
        shutil.rmtree(self._directory, ignore_errors=True)
