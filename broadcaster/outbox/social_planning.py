"""What a social message is planned and sent with: a provider of named targets gets one message per target
and run, to no contact; a social message keeps its link, image and template for the outbound options
(docs/social.md, "Engine side")."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from broadcaster.campaigns.audience import too_big_reason
from broadcaster.campaigns.messages import MessageText
from broadcaster.outbox.fallbacks import FALLBACK_FROM_KEY
from broadcaster.vocabulary import MessageKind, MessageStatus

__all__ = ["social_context", "social_options", "target_rows"]


def social_context(text: MessageText) -> dict[str, Any]:
    """What a social message keeps of its rendering for the outbound options (``outbox/composition.py``)."""
    context: dict[str, Any] = {}
    for key, value in (
        ("link", text.link),
        ("image", text.image),
        ("template_id", text.template_id),
        ("template_data", text.template_data),
    ):
        if value:
            context[key] = value
    return context


def social_options(context: dict[str, Any], *, attempts: int) -> dict[str, Any]:
    """The outbound options of a social message: what ``social_context`` kept, and ``resend`` from its second
    attempt on (an earlier one may have reached the provider: after ``OutcomeUnknown`` with ``on_uncertain:
    resend``, or a worker lost while sending), so a Page adapter looks for the earlier post first."""
    options = {key: value for key, value in context.items() if key != FALLBACK_FROM_KEY}
    if attempts > 1:
        options["resend"] = True
    return options


def target_rows(
    *,
    targets: Iterable[str],
    text: MessageText,
    channel: str,
    provider: str,
    run: int,
    version: int,
    campaign_id: str,
    purpose: str,
    now: datetime,
    not_before: datetime | None,
) -> list[dict[str, Any]]:
    """One row per named target (a Facebook Page), with no contact; the same text for each."""
    exclusion = too_big_reason(channel, too_long=False) if text.too_large else None
    rows = []
    for target in dict.fromkeys(t.strip() for t in targets):
        rows.append(
            {
                "idempotency_key": f"run:{run}:{channel}:target:{target}",
                "kind": MessageKind.CAMPAIGN,
                "run_id": run,
                "campaign_id": campaign_id,
                "version_id": version,
                "contact_id": None,
                "chunk_id": None,
                "channel": channel,
                "provider": provider,
                "address": target,
                "address_key": target,
                "purpose": purpose,
                "status": MessageStatus.SUPPRESSED if exclusion else MessageStatus.QUEUED,
                "hold": False,
                "reason": exclusion,
                "error_code": None,
                "not_before": None if exclusion else not_before,
                "attempts": 0,
                "subject": None,
                "body": text.body,
                "context": social_context(text),
                "encoding": None,
                "segments": None,
                "cost": None,
                "provider_ref": None,
                "parts_total": 0,
                "parts_delivered": 0,
                "created_at": now,
                "claimed_at": None,
                "sent_at": None,
                "final_at": now if exclusion else None,
            }
        )
    return rows
