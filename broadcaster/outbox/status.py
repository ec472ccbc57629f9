"""The one function that decides which message status may follow which (docs/architecture.md §4); the statuses
themselves are named in ``broadcaster.vocabulary``.

Extra facts are columns, not statuses: ``not_before`` (a deferral), ``hold`` (an ``unknown`` waiting for an
operator), ``reason``.
"""

from __future__ import annotations

from broadcaster.vocabulary import MessageStatus

FINAL = frozenset(
    {
        MessageStatus.DELIVERED,
        MessageStatus.PERMANENT_FAILURE,
        MessageStatus.TECHNICAL_FAILURE,
        MessageStatus.TEMPORARY_FAILURE,
        MessageStatus.SUPPRESSED,
        MessageStatus.CANCELLED,
    }
)

S = MessageStatus
_ALLOWED: dict[MessageStatus, frozenset[MessageStatus]] = {
    # A test send that could not go out fails at once: it never waits in the queue for a later run.
    S.QUEUED: frozenset({S.SENDING, S.SUPPRESSED, S.CANCELLED, S.TECHNICAL_FAILURE}),
    S.SENDING: frozenset(
        {S.SENT, S.QUEUED, S.PERMANENT_FAILURE, S.TECHNICAL_FAILURE, S.UNKNOWN, S.SUPPRESSED, S.CANCELLED}
    ),
    # A receipt may arrive for a message still marked ``sending`` (the SMSC answered faster than we stored
    # the submit_sm_resp), hence SENDING is not needed as a source below: receipts are matched to parts.
    S.SENT: frozenset({S.DELIVERED, S.PERMANENT_FAILURE, S.TEMPORARY_FAILURE}),
    # An operator resolves a held message (``broadcaster messages release|drop``): resend (back to queued) or
    # give up; a late receipt settles it.
    S.UNKNOWN: frozenset({S.QUEUED, S.DELIVERED, S.PERMANENT_FAILURE, S.TEMPORARY_FAILURE, S.CANCELLED}),
    # An expired SMS may still be delivered later (receipts arrive out of order). Final for the engine, a
    # technical or temporary failure may be queued again by an operator (``broadcaster messages retry``) as a
    # fresh attempt: the address was not refused, the provider or the network failed.
    S.TEMPORARY_FAILURE: frozenset({S.DELIVERED, S.QUEUED}),
    S.DELIVERED: frozenset(),
    S.PERMANENT_FAILURE: frozenset(),
    S.TECHNICAL_FAILURE: frozenset({S.QUEUED}),
    S.SUPPRESSED: frozenset(),
    S.CANCELLED: frozenset(),
}


def can_transition(current: MessageStatus, new: MessageStatus) -> bool:
    return new in _ALLOWED[current]


def sources_for(new: MessageStatus) -> frozenset[MessageStatus]:
    """Statuses from which ``new`` may be reached: the ``WHERE status IN (…)`` of a guarded update."""
    return frozenset(src for src, targets in _ALLOWED.items() if new in targets)
