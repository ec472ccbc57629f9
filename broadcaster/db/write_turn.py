"""Turns at SQLite's one writer for the threads and processes that write often (the web workers).

A connection that finds the database locked sleeps in growing steps (up to 100 ms) before it tries again,
so under load a transaction may wait far longer than the one before it took. Writers that take a turn here
queue instead: threads of a process on a lock, processes on an ``flock`` of a file beside the database, and
each is woken the moment the one before it is done. PostgreSQL has row locks and many writers: no turns
there. Writers that take no turn (the engine's workers) still get the database's own lock, as before.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from sqlalchemy.orm import Session, sessionmaker

_THREADS = threading.Lock()
_files: dict[str, tuple[int, int]] = {}  # lock file -> (pid that opened it, descriptor)


def write_turn(sessions: sessionmaker[Session]) -> AbstractContextManager[object]:
    """This thread's turn at the database's one writer (SQLite), or nothing to wait for (PostgreSQL)."""
    bind = sessions.kw.get("bind")
    if bind is None or bind.dialect.name != "sqlite":
        return nullcontext()
    database = bind.url.database
    if not database or database == ":memory:":
        return _THREADS
    return _turn(f"{os.path.abspath(database)}.writer-lock")


@contextmanager
def _turn(path: str) -> Iterator[None]:
    with _THREADS:
        descriptor = _descriptor(path)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)


def _descriptor(path: str) -> int:
    """The lock file's descriptor of this process (a forked child opens its own: a descriptor inherited
    from the parent would share the parent's lock)."""
    opened = _files.get(path)
    if opened is None or opened[0] != os.getpid():
        opened = (os.getpid(), os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        _files[path] = opened
    return opened[1]
