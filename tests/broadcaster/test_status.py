"""The status table of docs/architecture.md §4: which transitions exist, and the guards derived from them."""

from __future__ import annotations

import pytest

from broadcaster.outbox.status import FINAL, can_transition, sources_for
from broadcaster.vocabulary import MessageStatus

S = MessageStatus


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.QUEUED, S.SENDING),  # claimed
        (S.SENDING, S.SENT),  # submit_sm_resp OK / SMTP 250
        (S.SENDING, S.QUEUED),  # transient error: back-off via not_before
        (S.SENDING, S.PERMANENT_FAILURE),  # 5.1.1, ESME_RINVDSTADR
        (S.SENDING, S.TECHNICAL_FAILURE),  # retries exhausted
        (S.SENDING, S.UNKNOWN),  # written, no answer
        (S.SENT, S.DELIVERED),  # DELIVRD for every part
        (S.SENT, S.PERMANENT_FAILURE),  # UNDELIV, REJECTD, DSN failed
        (S.SENT, S.TEMPORARY_FAILURE),  # EXPIRED
        (S.TEMPORARY_FAILURE, S.DELIVERED),  # a late DELIVRD after EXPIRED
        (S.UNKNOWN, S.QUEUED),  # an operator resends a held message
        (S.UNKNOWN, S.CANCELLED),  # an operator drops it
        (S.TECHNICAL_FAILURE, S.QUEUED),  # an operator retries it as a fresh attempt
        (S.TEMPORARY_FAILURE, S.QUEUED),
        (S.QUEUED, S.CANCELLED),
        (S.QUEUED, S.SUPPRESSED),
        (S.QUEUED, S.TECHNICAL_FAILURE),  # a test send that could not go out fails at once
    ],
)
def test_allowed_transitions(current: MessageStatus, new: MessageStatus) -> None:
    assert can_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.DELIVERED, S.PERMANENT_FAILURE),  # a late failure receipt does not undo a delivery
        (S.PERMANENT_FAILURE, S.DELIVERED),
        (S.QUEUED, S.SENT),  # nothing is sent without a claim
        (S.SENT, S.QUEUED),  # the provider has it: never resend blindly
        (S.CANCELLED, S.QUEUED),
        (S.PERMANENT_FAILURE, S.QUEUED),  # a refused address is never retried
        (S.SUPPRESSED, S.SENDING),
    ],
)
def test_refused_transitions(current: MessageStatus, new: MessageStatus) -> None:
    assert not can_transition(current, new)


def test_final_statuses_have_no_way_out_except_a_late_delivery_or_an_operators_retry() -> None:
    retried = {S.TECHNICAL_FAILURE, S.TEMPORARY_FAILURE}  # `broadcaster messages retry`
    for status in FINAL:
        exits = {new for new in S if can_transition(status, new)}
        assert exits <= ({S.DELIVERED, S.QUEUED} if status in retried else {S.DELIVERED}), status


def test_guards_are_derived_from_the_table() -> None:
    assert sources_for(S.DELIVERED) == {S.SENT, S.UNKNOWN, S.TEMPORARY_FAILURE}
    assert sources_for(S.SENDING) == {S.QUEUED}
