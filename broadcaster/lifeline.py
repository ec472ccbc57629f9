"""Embedded workers die with the command that started them (``send --wait``, ``run``).

A worker left running after its parent was killed keeps its SMPP binds and competes with the workers of the
next ``run``. Two mechanisms, because neither covers every case alone:

* Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``): the kernel sends SIGTERM the moment the parent
  dies, even when it was killed with SIGKILL. It exists only on Linux and is cleared by fork, so each Celery
  pool child sets it again for itself.
* A watch thread that compares ``os.getppid()`` with the parent it was started by, every
  ``CHECK_SECONDS``: an orphan is adopted by another process, so the change shows on every POSIX system, and
  also when the parent died before the signal was asked for.

Either way the worker stops as Celery does on SIGTERM (the task at hand finishes, the gateway unbinds); a
worker still alive ``grace`` seconds later exits at once. Distributed workers (``broadcaster worker``) run
under a service manager and have no parent to follow: ``PARENT_PID_ENV`` is set only for embedded ones.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger(__name__)

PARENT_PID_ENV = "BROADCASTER_PARENT_PID"  # set by the embedded engine for the workers it starts
CHECK_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
EXIT_ORPHANED = 70  # os._exit code of a worker that outlived its grace (EX_SOFTWARE)


def expected_parent() -> int | None:
    """The pid of the embedded engine that started this process, or None (not an embedded worker)."""
    value = os.environ.get(PARENT_PID_ENV, "")
    return int(value) if value.isascii() and value.isdigit() else None


def ask_for_parent_death_signal(signum: int = signal.SIGTERM) -> bool:
    """Have the kernel send ``signum`` to this process when its parent dies (Linux only). True if set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)) == 0
    except (OSError, AttributeError) as exc:  # no libc or no prctl: the watch thread still works
        log.debug("prctl(PR_SET_PDEATHSIG) unavailable: %r", exc)
        return False


def follow_parent(parent: int, *, grace: float, what: str) -> threading.Thread:
    """Stop this process when ``parent`` is no longer its parent: SIGTERM now, ``os._exit`` after ``grace``."""
    ask_for_parent_death_signal()
    thread = threading.Thread(target=_watch, args=(parent, grace, what), name="parent-watch", daemon=True)
    thread.start()
    return thread


def _watch(parent: int, grace: float, what: str) -> None:
    while os.getppid() == parent:
        time.sleep(CHECK_SECONDS)
    log.warning("%s: parent process %d is gone; stopping (pid %d)", what, parent, os.getpid())
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)
    log.error("%s: still running %.0f s after its parent died; exiting now", what, grace)
    logging.shutdown()
    os._exit(EXIT_ORPHANED)
