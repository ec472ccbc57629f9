"""Group commit: the requests of one event loop hand their writes to one writer thread, which writes
everything that came in while it wrote the batch before, in one transaction.

A request still answers only after its own rows are committed; under load it waits for at most one batch
before its own, and the database sees a few transactions a second instead of one per request (SQLite's
one writer is the limit of the single-message API otherwise: docs/web.md, "Single messages").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# Written by ``write`` for an item it leaves to the next batch (e.g. a second request with an idempotency
# key the batch already holds: the next batch finds the first one's answer stored).
LATER = object()


class GroupCommit(Generic[Item, Result]):
    """``await submit(item)`` → ``write(batch)``'s result for the item. ``write`` runs in one thread at a
    time and returns one result per item, in order: a result, an exception (raised to that request only),
    or ``LATER``. If ``write`` itself raises, the batch's items are written again one at a time, so one bad
    item fails only its own request."""

    def __init__(self, write: Callable[[Sequence[Item]], Sequence[object]], *, max_batch: int = 500) -> None:
        self._write = write
        self._max_batch = max_batch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="group-commit")
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[Item, asyncio.Future[Result]]]] = {}
        self._draining: set[asyncio.AbstractEventLoop] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.setdefault(loop, []).append((item, future))
        if loop not in self._draining:
            self._draining.add(loop)
            task = loop.create_task(self._drain(loop))
            self._tasks.add(task)  # kept until done (the loop holds tasks weakly)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while pending := self._pending.get(loop):
                batch, rest = pending[: self._max_batch], pending[self._max_batch :]
                self._pending[loop] = rest
                items = [i for i, _f in batch]
                results = await loop.run_in_executor(self._executor, written, self._write, items)
                for (item, future), result in zip(batch, results, strict=True):
                    if result is LATER:
                        self._pending[loop].append((item, future))
                    elif future.done():  # the client went away; what it asked for is written all the same
                        continue
                    elif isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)  # type: ignore[arg-type]
        finally:
            for _item, future in self._pending.pop(loop, []):  # only when the loop stops under us
                if not future.done():
                    future.cancel()
            self._draining.discard(loop)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def written(write: Callable[[Sequence[Item]], Sequence[object]], items: Sequence[Item]) -> Sequence[object]:
    """``write(items)``; if it raises, each item written alone, so one bad item fails only its own request."""
    try:
        return write(items)
    except Exception as exc:
        if len(items) == 1:
            return [exc]
    answers: list[object] = []
    for item in items:
        try:
            [answer] = write([item])
        except Exception as exc:
            answer = exc
        answers.append(answer)
    return answers
