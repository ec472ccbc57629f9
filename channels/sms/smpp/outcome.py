"""The outcome rules: the states of a message's parts -> its SendResult.

* every part accepted -> ``SendResult.sent(message_id, *part_ids)`` (part order);
* any part refused -> failed with ``classify(status)``, even when other parts were accepted (the detail
  says which: the handset may show a fragment);
* otherwise, a part whose answer never came (timeout, or connection lost after its write) -> ``OutcomeUnknown``;
  a part never written because the connection was down -> ``ConnectionLost``.

A failed message whose SMSC accepted some parts says which (``SendResult.accepted_parts``) and under which
concatenation reference, so that a retry sends only the missing parts under that reference."""

from __future__ import annotations

from channels.base import SendResult
from channels.errors import ChannelError, ConnectionLost, OutcomeUnknown, Throttled, Withheld
from channels.sms.smpp.window import MessageJob, PartState
from channels.sms.smpp_errors import classify, status_name


def result(job: MessageJob, *, host: str, port: int, throttle_backoff_max: float) -> SendResult:
    """The SendResult of a message whose every part is answered (or never will be)."""
    message_id = job.message.message_id
    total = len(job.part_state)
    states = job.part_state
    if all(state == PartState.OK for state in states):
        return SendResult.sent(message_id, *(pid or "" for pid in job.part_ids))
    if job.withheld:
        return SendResult.failed(message_id, Withheld("the engine withheld the message: not written"))
    accepted_parts = {n + 1: pid or "" for n, pid in enumerate(job.part_ids) if states[n] == PartState.OK}
    accepted = [f"{n}={pid}" for n, pid in accepted_parts.items()]
    accepted_text = f"; parts accepted: {', '.join(accepted)}" if accepted else ""

    def failed(error: ChannelError) -> SendResult:
        # A retry sends only the parts not accepted, under this reference: no orphan, no duplicate part.
        reference = job.split.reference if accepted_parts else None
        return SendResult.failed(message_id, error, accepted_parts=accepted_parts, sms_reference=reference)

    if job.refusals:
        # Answers come back out of order (gotcha 3): report the first part in message order.
        number = min(job.refusals)
        status = job.refusals[number]
        refused = ", ".join(f"{n}={status_name(s)}" for n, s in sorted(job.refusals.items()))
        detail = f"part {number}/{total} refused (refused: {refused}){accepted_text}"
        if accepted:
            detail += " (the handset may show a fragment)"
        error = classify(status, detail=detail)
        if isinstance(error, Throttled):
            error.retry_after = throttle_backoff_max
        return failed(error)
    unknown = [n + 1 for n, state in enumerate(states) if state == PartState.UNKNOWN]
    if unknown:
        detail = f"part(s) {unknown} of {total} unanswered{accepted_text}"
        return failed(OutcomeUnknown("SMSC may have the message: no answer after the write", detail=detail))
    # Parts never written (the link was down): a retry sends them, and only them.
    unwritten = [n + 1 for n, state in enumerate(states) if state == PartState.UNWRITTEN]
    unwritten_detail = f"part(s) {unwritten} of {total} not written{accepted_text}" if accepted else None
    return failed(
        ConnectionLost(f"no SMPP bind to {host}:{port}: message not written", detail=unwritten_detail)
    )
