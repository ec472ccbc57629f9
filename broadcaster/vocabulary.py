"""The engine's shared vocabulary: the states and kinds that rows carry, named once for every layer.

Only names live here (no rules): which message status may follow which is decided in
``broadcaster.outbox.status``; the tables that store these values are in ``broadcaster.db.models``.
"""

from __future__ import annotations

import enum


class MessageStatus(enum.StrEnum):
    QUEUED = "queued"  # planned, waiting for a worker (``not_before`` may defer it)
    SENDING = "sending"  # claimed by a worker for one window
    SENT = "sent"  # the provider accepted it (e-mail: relayed, not delivered)
    DELIVERED = "delivered"  # receipt / DSN says the handset or mailbox got it
    TEMPORARY_FAILURE = "temporary_failure"  # expired at the provider
    PERMANENT_FAILURE = "permanent_failure"  # refused for good (bad address, undeliverable)
    TECHNICAL_FAILURE = "technical_failure"  # our side or the provider's kept failing; retries exhausted
    UNKNOWN = "unknown"  # the provider may have it; see ``hold``
    SUPPRESSED = "suppressed"  # consent or policy said no; ``reason`` says which
    CANCELLED = "cancelled"  # the campaign or run was cancelled before sending


class MessageKind(enum.StrEnum):
    CAMPAIGN = "campaign"
    TEST = "test"
    SYSTEM = "system"
    FALLBACK = "fallback"
    POST = "post"


class RunStatus(enum.StrEnum):
    PLANNING = "planning"
    SENDING = "sending"
    COMPLETED = "completed"  # every message reached sent or a final status
    # Nothing left to send, but some messages are held as ``unknown`` (a worker died after writing them):
    # an operator settles them (``messages release|drop``), then the tick completes the run.
    COMPLETED_WITH_HELD = "completed_with_held"
    CANCELLED = "cancelled"


class CampaignState(enum.StrEnum):
    DRAFT = "draft"  # no approved version yet (or the latest was rejected)
    APPROVED = "approved"  # an approved version exists, not yet scheduled
    SCHEDULED = "scheduled"  # the tick creates runs for due occurrences
    PAUSED = "paused"  # nothing is sent until resumed
    CANCELLED = "cancelled"  # terminal
    COMPLETED = "completed"  # no occurrence left


class VersionStatus(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"  # a newer version was loaded before this one was approved


class Decision(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class Role(enum.StrEnum):
    ADMIN = "admin"  # manages users and settings; may do everything an editor does
    EDITOR = "editor"  # imports contacts, loads, submits, schedules and sends campaigns
    APPROVER = "approver"  # approves or rejects submitted versions
    AUDITOR = "auditor"  # reads everything, changes nothing


# A provider's answer to one attempt that was not an acceptance (a retry, a refusal, no answer): stored as a
# ``delivery_events`` row of this type, beside the receipts and bounces, so the history shows every attempt.
# Accepted attempts get no row (the happy path writes one UPDATE per window); the history derives them from
# the message's ``sent_at`` and ``provider_ref``.
ATTEMPT_FAILED = "attempt_failed"
