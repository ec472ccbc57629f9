"""The engine's tables. Consent keeps its own tables on its own MetaData (see ``consent.models``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from broadcaster.db.base import Base, BigId, str_enum
from broadcaster.db.types import UTCDateTime
from broadcaster.vocabulary import (
    CampaignState,
    Decision,
    MessageKind,
    MessageStatus,
    Role,
    RunStatus,
    VersionStatus,
)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(str_enum(Role, 16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(64))
    # The web application's sign-in (argon2id, set by `users password`); None: no local password.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Failed sign-ins in a row; at [web] lockout_attempts the account is locked until locked_until.
    failed_signins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebSession(Base):
    """A signed-in browser: the cookie holds a random token, the table only its SHA-256 (a leaked table signs
    nobody in). Signing in always makes a new row, so a session id set before sign-in is never promoted."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_login", "login"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    login: Mapped[str] = mapped_column(String(64))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # How the person proved who they are: "password" or "sso".
    method: Mapped[str] = mapped_column(String(16))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiKey(Base):
    """A key of the REST API: shown once, stored as the SHA-256 of its secret (the secret is 256 random bits,
    so a plain hash is enough); bound to a role and optionally to some campaigns."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # The key's public prefix ("bk_" + 8 characters), shown in listings and logs to tell keys apart.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[Role] = mapped_column(str_enum(Role, 16))
    # Campaign ids the key may act on; None: every campaign its role allows.
    campaigns: Mapped[list[str] | None] = mapped_column(JSON)
    rate_per_minute: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IdempotencyRecord(Base):
    """The answer to a POST with an ``Idempotency-Key``: replayed to the same request, refused to another."""

    __tablename__ = "idempotency_records"

    api_key_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        Index("ix_contacts_segment_id", "segment", "id"),
        Index("ix_contacts_phone", "phone"),
        Index("ix_contacts_email_lower", text("lower(email)")),  # merges and look-ups ignore the case
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164
    phone_kind: Mapped[str | None] = mapped_column(String(10))  # mobile | fixed | other
    carrier: Mapped[str | None] = mapped_column(String(50))  # allocated carrier (number portability!)
    email: Mapped[str | None] = mapped_column(String(320))
    segment: Mapped[str | None] = mapped_column(String(50))
    agency: Mapped[str | None] = mapped_column(String(200))
    district: Mapped[str | None] = mapped_column(String(100))
    ward: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(10), default="vi")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    import_id: Mapped[int | None] = mapped_column(ForeignKey("contact_imports.id"))


class DeviceToken(Base):
    """A device of a contact that takes push notifications (docs/push.md): one row per token, several per
    person. The city app registers and refreshes them; a provider answering that a token is unregistered
    deletes its row (``outbox/results.py``), so no later campaign targets it."""

    __tablename__ = "device_tokens"
    __table_args__ = (Index("ix_device_tokens_contact_id", "contact_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    # FCM tokens are ~160 characters, APNs ones 64 hex digits; 320 is what an address (or suppression) holds.
    token: Mapped[str] = mapped_column(String(320), unique=True)
    platform: Mapped[str] = mapped_column(String(8))  # android | ios | web (broadcaster.devices.Platform)
    app_version: Mapped[str | None] = mapped_column(String(32))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ContactImport(Base):
    __tablename__ = "contact_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    imported_by: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rows_total: Mapped[int] = mapped_column(Integer)
    created: Mapped[int] = mapped_column(Integer)
    updated: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    state: Mapped[CampaignState] = mapped_column(str_enum(CampaignState, 16))
    approved_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign_versions.id", use_alter=True, name="fk_campaigns_approved_version")
    )
    next_occurrence_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paused_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    versions: Mapped[list[CampaignVersion]] = relationship(
        back_populates="campaign",
        foreign_keys="CampaignVersion.campaign_id",
        order_by="CampaignVersion.number",
    )


class CampaignVersion(Base):
    """An immutable snapshot of a definition and every template it uses, under a content hash."""

    __tablename__ = "campaign_versions"
    __table_args__ = (UniqueConstraint("campaign_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    number: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    templates: Mapped[dict[str, Any]] = mapped_column(JSON)
    source_path: Mapped[str] = mapped_column(String(500))
    source_text: Mapped[str] = mapped_column(Text)
    status: Mapped[VersionStatus] = mapped_column(str_enum(VersionStatus, 16))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    submitted_by: Mapped[str | None] = mapped_column(String(64))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    audience_size: Mapped[int | None] = mapped_column(Integer)  # counted at submission
    required_approvals: Mapped[int] = mapped_column(Integer, default=1)

    campaign: Mapped[Campaign] = relationship(back_populates="versions", foreign_keys=[campaign_id])
    approvals: Mapped[list[Approval]] = relationship(back_populates="version", order_by="Approval.id")


class Approval(Base):
    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("version_id", "user_login"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("campaign_versions.id"))
    user_login: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))  # what the approver saw; must equal the version's
    decision: Mapped[Decision] = mapped_column(str_enum(Decision, 8))
    reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())

    version: Mapped[CampaignVersion] = relationship(back_populates="approvals")


class AuditEntry(Base):
    """Who did what, when and why; written only via ``audit.record``, never updated or deleted.

    The rows form a hash chain (docs/audit.md): ``id`` is the position, 1, 2, 3… without gaps, and
    ``entry_hash`` is SHA-256 over the canonical encoding of the row and ``prev_hash``, the previous row's
    ``entry_hash``. A trigger refuses UPDATE and DELETE."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_subject", "subject_type", "subject_id"),
        Index("ix_audit_log_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The last entry of the audit chain: one row (id 1), locked by every append on PostgreSQL so concurrent
    writers take turns (SQLite's BEGIN IMMEDIATE already does)."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(BigId)
    last_hash: Mapped[str] = mapped_column(String(64))


class CampaignRun(Base):
    """One occurrence of a campaign; the unique key makes racing ticks create it once."""

    __tablename__ = "campaign_runs"
    __table_args__ = (UniqueConstraint("campaign_id", "occurrence_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("campaign_versions.id"))
    occurrence_at: Mapped[datetime] = mapped_column(UTCDateTime())
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | manual
    status: Mapped[RunStatus] = mapped_column(str_enum(RunStatus, 24))
    planned_messages: Mapped[int] = mapped_column(Integer, default=0)
    plan_checkpoint: Mapped[int] = mapped_column(Integer, default=0)  # last contact id planned (keyset)
    plan_touched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # last page planned, or re-asked
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Why a run stopped before it ran out (superseded by a newer version, cancelled): shown by ``status``.
    ended_reason: Mapped[str | None] = mapped_column(Text)


class Chunk(Base):
    """A batch of queued messages; the queue carries only its id."""

    __tablename__ = "chunks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_runs.id"))
    channel: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The worker process running it ("host:pid"): the supervisor hands a dead worker's chunks back at once.
    worker: Mapped[str | None] = mapped_column(String(100))


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        # The oldest undeferred queued message is its first entry, on PostgreSQL too (0023; observe/facts.py).
        Index("ix_messages_status_not_before", "status", "not_before", "id"),
        Index("ix_messages_chunk_status", "chunk_id", "status"),
        Index("ix_messages_run_status", "run_id", "status"),
        # A run's counts per channel and status from the index alone (dashboard, campaign page; 0012).
        Index("ix_messages_run_channel_status", "run_id", "channel", "status"),
        Index("ix_messages_campaign_kind_channel_status", "campaign_id", "kind", "channel", "status"),
        # The message log filtered by status and channel, newest first without a sort (0012).
        Index("ix_messages_status_channel", "status", "channel"),
        Index("ix_messages_campaign_status", "campaign_id", "status"),
        # Opt-outs stop an address's pending messages, caps count its recent ones, subject requests find them.
        Index("ix_messages_channel_address_key", "channel", "address_key"),
        # Rollups read one range of days at a time (broadcaster/reporting/rollups.py).
        Index("ix_messages_created_at", "created_at"),
        Index("ix_messages_channel_address_hash", "channel", "address_hash"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[MessageKind] = mapped_column(str_enum(MessageKind, 16))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_runs.id"))
    campaign_id: Mapped[str | None] = mapped_column(ForeignKey("campaigns.id"))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_versions.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    chunk_id: Mapped[int | None] = mapped_column(ForeignKey("chunks.id"))
    channel: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(320))  # E.164, or e-mail as stored (case kept)
    # consent.suppression.address_key(channel, address): e-mail lower-cased, the form consent lists use.
    address_key: Mapped[str | None] = mapped_column(String(320))
    # The campaign's purpose (consent.policy.Purpose); None for test sends to staff and for system messages
    # (an opt-out's confirmation), which no consent rule stops.
    purpose: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[MessageStatus] = mapped_column(str_enum(MessageStatus, 24))
    hold: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(50))
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    context: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict
    )  # what rendering saw (HTML re-rendered)
    encoding: Mapped[str | None] = mapped_column(String(8))  # SMS: gsm7 | ucs2
    segments: Mapped[int | None] = mapped_column(Integer)
    cost: Mapped[float | None] = mapped_column(Numeric(12, 2))
    # e-mail Message-ID; a long SMS accepted part-way: its concatenation reference ("concat-ref:N", results.py)
    provider_ref: Mapped[str | None] = mapped_column(String(200))
    parts_total: Mapped[int] = mapped_column(Integer, default=0)
    parts_delivered: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Which worker process claimed it ("host:pid"), and when its bytes were about to be written (committed
    # before the write): after a crash, a claimed row never handed over goes back to the queue, and only a
    # handed one may be at the provider.
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    handed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    final_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Retention (broadcaster/retention.py) removes the address and the content of a settled message after
    # [retention] personal_data_days and keeps these: the keyed hash of the address key (the auditor's search
    # still finds the person's messages) and the SHA-256 of subject and body (audit.hashes).
    address_hash: Mapped[str | None] = mapped_column(String(64))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class MessageTally(Base):
    """How many messages of a campaign's run (or of no run: test sends, one-off messages) are of each kind,
    channel and status, kept by triggers on ``messages`` in the writing transaction (migration 0013): the
    dashboard, a campaign's page and ``status`` read a few rows here instead of counting the messages. SQLite
    only; on PostgreSQL the table stays empty and the messages are counted (``broadcaster.status``;
    docs/architecture.md, "Message tallies"). An empty campaign id and run 0 stand for "none"."""

    __tablename__ = "message_tallies"
    __table_args__ = (Index("ix_message_tallies_run_id", "run_id"),)

    campaign_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    status: Mapped[str] = mapped_column(String(24), primary_key=True)
    messages: Mapped[int] = mapped_column(Integer)  # 0 once every such message changed


class MessagePart(Base):
    """One submitted SMS part and the provider id it got: receipts are matched per part."""

    __tablename__ = "message_parts"
    __table_args__ = (
        UniqueConstraint("message_id", "number"),
        Index("ix_message_parts_provider_id", "provider", "provider_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    number: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str] = mapped_column(String(64))
    provider_id: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default="sent")  # sent | delivered | failed | expired
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InboundRecord(Base):
    """What a provider sent us, stored raw before it is answered or interpreted."""

    __tablename__ = "inbound_records"
    __table_args__ = (Index("ix_inbound_records_unprocessed", "processed_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(200))


class InboxReply(Base):
    """An SMS reply that is not an opt-out keyword: a member of staff reads it and marks it handled."""

    __tablename__ = "inbox_replies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inbound_id: Mapped[int] = mapped_column(BigId, unique=True)  # one row per stored record
    provider: Mapped[str] = mapped_column(String(64))
    from_number: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    handled: Mapped[bool] = mapped_column(Boolean, default=False)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    handled_by: Mapped[str | None] = mapped_column(String(100))


class DeliveryEventRow(Base):
    """A normalised delivery fact; the unique key makes a repeated receipt a no-op."""

    __tablename__ = "delivery_events"
    __table_args__ = (UniqueConstraint("dedupe_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(300))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_records.id"))
    provider: Mapped[str] = mapped_column(String(64))
    provider_id: Mapped[str | None] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(16))
    status_text: Mapped[str | None] = mapped_column(String(50))
    error_code: Mapped[str | None] = mapped_column(String(50))
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Lease(Base):
    """A named lease: at most one holder at a time among every process on the database (``broadcaster.lease``)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(100))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    again: Mapped[bool] = mapped_column(Boolean, default=False)  # asked for while held: the holder goes on


class RateBucket(Base):
    """A token bucket in a row: shared by every process on one database (embedded mode)."""

    __tablename__ = "rate_buckets"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    tokens: Mapped[float] = mapped_column(Numeric(14, 4, asdecimal=False))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Policy(Base):
    """A rule that guards four-eyes (who may act as whom, when a second approver is needed).

    It lives with the data, not in a settings file or an environment variable the caller chooses: only an
    admin changes it (``broadcaster policy set``), and every change is audited. A missing row means the
    built-in default (``broadcaster.policies``)."""

    __tablename__ = "policies"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProviderHealth(Base):
    """What the process talking to a provider last saw of it, so that a waiting officer is told
    ("SMSC unreachable since 13:02, retrying in 20 s") instead of watching a bar that does not move."""

    __tablename__ = "provider_health"

    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # up | unreachable
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    detail: Mapped[str | None] = mapped_column(Text)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Activity(Base):
    """A communication activity of the plan that is not a broadcast (a press briefing, a dialogue, the
    fortnightly TV segment, printed materials), recorded by staff with its evidence; reports count it under
    its plan item beside the broadcast runs."""

    __tablename__ = "activities"
    __table_args__ = (Index("ix_activities_plan_item_occurred_on", "plan_item", "occurred_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    occurred_on: Mapped[date] = mapped_column(Date)
    plan_item: Mapped[str] = mapped_column(String(16))  # e.g. "III.3" (campaigns/plan-143/plan.yaml)
    agency: Mapped[str] = mapped_column(String(64))  # an agency key from the settings, never a name
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(Text)  # a link, or the stored file's name
    evidence_sha256: Mapped[str | None] = mapped_column(String(64))
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RollupDay(Base):
    """Messages of one local day counted per slice (campaign, run, plan item, purpose, channel, final status and,
    for suppressed ones, the reason): reports read these, not the messages (broadcaster/reporting/rollups.py).
    Empty strings and run 0 stand for "none" so that the slice's key stays unique."""

    __tablename__ = "rollup_days"
    __table_args__ = (
        UniqueConstraint(
            "day", "campaign_id", "run_id", "plan_item", "purpose", "channel", "status", "reason",
            name="uq_rollup_days_slice",
        ),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    campaign_id: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[int] = mapped_column(Integer)
    plan_item: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(String(200))
    messages: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)  # handed to and accepted by a provider (sent_at set)
    sms_parts: Mapped[int] = mapped_column(Integer)
    cost: Mapped[Any] = mapped_column(Numeric(16, 2))
    # Delivered messages by seconds from acceptance to delivery, in the buckets of reporting.rollups.BUCKETS.
    delivery_seconds: Mapped[list[int]] = mapped_column(JSON)


class RollupReach(Base):
    """Who was reached (sent to) on one local day in one slice: a contact id, or a keyed hash of the address,
    never the address. Distinct people over any range is a COUNT(DISTINCT person) of these rows."""

    __tablename__ = "rollup_reach"
    __table_args__ = (
        UniqueConstraint("day", "plan_item", "channel", "purpose", "person", name="uq_rollup_reach"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    plan_item: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(32))
    person: Mapped[str] = mapped_column(String(80))


class RollupOptOut(Base):
    """Consent withdrawals recorded on one local day, per channel and purpose."""

    __tablename__ = "rollup_opt_outs"
    __table_args__ = (UniqueConstraint("day", "channel", "purpose", name="uq_rollup_opt_outs"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(32))
    count: Mapped[int] = mapped_column(Integer)


class RollupFrozenDay(Base):
    """A day whose rollups no rebuild touches (its half-year is closed); ``report rollup --refreeze`` by an
    admin is the only way back, audited."""

    __tablename__ = "rollup_frozen_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    frozen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    frozen_by: Mapped[str] = mapped_column(String(64))
