"""The group commit of the single-message API: what arrives together is written together, each request
gets its own result, a failing item fails only its own request, and ``LATER`` items go with the next batch."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from broadcaster.web.group_commit import LATER, GroupCommit
from tests.broadcaster.web.loops import run_alone


def test_requests_waiting_together_are_written_in_one_batch() -> None:
    batches: list[list[int]] = []
    first_batch_started = threading.Event()
    release_first_batch = threading.Event()

    def write(items: Sequence[int]) -> list[object]:
        batches.append(list(items))
        if len(batches) == 1:
            first_batch_started.set()
            release_first_batch.wait(timeout=10)
        return [item * 10 for item in items]

    commit: GroupCommit[int, int] = GroupCommit(write)

    async def scenario() -> list[int]:
        first = asyncio.ensure_future(commit.submit(1))
        assert await asyncio.to_thread(first_batch_started.wait, 10)  # the writer holds the first item
        others = [asyncio.ensure_future(commit.submit(n)) for n in (2, 3, 4)]
        await asyncio.sleep(0)  # one turn of the loop: the three queue behind the running batch
        release_first_batch.set()
        return list(await asyncio.gather(first, *others))

    try:
        assert run_alone(scenario()) == [10, 20, 30, 40]
    finally:
        commit.close()
    assert batches == [[1], [2, 3, 4]]


def test_a_failing_item_fails_only_its_own_request() -> None:
    def write(items: Sequence[int]) -> list[object]:
        if 13 in items:
            raise ValueError("item 13 cannot be written")
        return [item + 1 for item in items]

    commit: GroupCommit[int, int] = GroupCommit(write)

    async def scenario() -> list[object]:
        return list(await asyncio.gather(*(commit.submit(n) for n in (12, 13, 14)), return_exceptions=True))

    try:
        first, failed, last = run_alone(scenario())
    finally:
        commit.close()
    assert (first, last) == (13, 15)
    assert isinstance(failed, ValueError)


def test_a_result_that_is_an_exception_is_raised_to_that_request() -> None:
    commit: GroupCommit[str, str] = GroupCommit(lambda items: [KeyError(i) if i == "x" else i for i in items])

    async def scenario() -> str:
        return await commit.submit("x")

    try:
        with pytest.raises(KeyError):
            run_alone(scenario())
    finally:
        commit.close()


def test_an_item_left_for_later_goes_with_the_next_batch() -> None:
    batches: list[list[str]] = []

    def write(items: Sequence[str]) -> list[object]:
        batches.append(list(items))
        seen: set[str] = set()
        answers: list[object] = []
        for item in items:  # a second item with the same key waits for the next batch
            answers.append(LATER if item in seen else f"{item}#{len(batches)}")
            seen.add(item)
        return answers

    commit: GroupCommit[str, str] = GroupCommit(write)

    async def scenario() -> list[str]:
        return list(await asyncio.gather(commit.submit("k"), commit.submit("k")))

    try:
        assert run_alone(scenario()) == ["k#1", "k#2"]
    finally:
        commit.close()
    assert batches == [["k", "k"], ["k"]]
