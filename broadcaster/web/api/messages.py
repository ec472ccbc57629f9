"""The API's messages operations: the outbox query of ``broadcaster messages`` (its filters, newest first,
a cursor per page) and its export (``format=csv|jsonl``), masked as the CLI masks them for the key's role.

Listings mask addresses for auditors and admins; exports leave the installation, so they are masked for
every role (``masking.must_mask_export``). The API has no ``--unmasked``: full data is for people, audited.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from broadcaster import masking
from broadcaster.clock import LOCAL_TZ
from broadcaster.context import AppContext
from broadcaster.errors import UserError
from broadcaster.history.export import WRITERS, ExportFormat, row_dict
from broadcaster.history.filters import HistoryFilter, PeriodOn, recipient
from broadcaster.history.query import iter_history
from broadcaster.i18n import gettext as _
from broadcaster.vocabulary import MessageStatus
from broadcaster.web.api.auth import ApiCaller, api_requires
from broadcaster.web.api.errors import PROBLEMS, problem_of
from broadcaster.web.auth import context_of
from broadcaster.web.problems import Problem

router = APIRouter(prefix="/messages", tags=["messages"], responses=PROBLEMS)

PAGE_LIMIT = 500
# An export is written to a spooled file (memory up to this size, then disk) and streamed from it in chunks.
SPOOL_BYTES = 8 * 1024 * 1024
CHUNK_BYTES = 64 * 1024


class MessagePage(BaseModel):
    messages: list[dict[str, Any]]
    next_cursor: int | None


class _Query:
    """The filters of ``broadcaster messages`` as query parameters."""

    def __init__(
        self,
        campaign: str | None = Query(None, max_length=100),
        status: list[MessageStatus] = Query([]),
        channel: str | None = Query(None, pattern="^(sms|email|push|social)$"),
        run: int | None = Query(None, ge=1),
        recipient_text: str | None = Query(None, alias="recipient", max_length=320),
        period_from: datetime | None = Query(None, alias="from"),
        period_to: datetime | None = Query(None, alias="to"),
        period_on: PeriodOn = Query(PeriodOn.CREATED),
    ) -> None:
        self.campaign = campaign
        self.statuses = tuple(status)
        self.channel = channel
        self.run = run
        self.recipient_text = recipient_text
        self.period_from = period_from
        self.period_to = period_to
        self.period_on = period_on

    def filters(self, caller: ApiCaller, context: AppContext, before_id: int | None = None) -> HistoryFilter:
        if self.campaign is not None:
            caller.check_campaign(self.campaign)
        elif caller.campaigns is not None:
            raise Problem(
                422,
                "campaign-required",
                _("Invalid request"),
                _("This API key is bound to some campaigns: name one in campaign."),
                field="campaign",
            )
        if self.period_from and self.period_to and self.period_from >= self.period_to:
            raise Problem(
                422,
                "invalid-period",
                _("Invalid request"),
                _("The field %(field)s is not valid: %(reason)s") % {"field": "from", "reason": "from >= to"},
                field="from",
            )
        try:
            who = recipient(self.recipient_text) if self.recipient_text is not None else None
        except UserError as exc:
            raise problem_of(exc, field="recipient") from None
        return HistoryFilter(
            campaign=self.campaign,
            run=self.run,
            recipient=who,
            statuses=self.statuses,
            channel=self.channel,
            period_from=_aware(self.period_from),
            period_to=_aware(self.period_to),
            period_on=self.period_on,
            before_id=before_id,
        ).keyed(context.settings.security.erasure_key())


def _aware(moment: datetime | None) -> datetime | None:
    """A time without a zone is Da Nang time, as the CLI's --from/--to."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=LOCAL_TZ)


@router.get("", response_model=MessagePage)
def query_messages(
    request: Request,
    query: _Query = Depends(),
    cursor: int | None = Query(None, ge=1, description="next_cursor of the previous page"),
    limit: int = Query(50, ge=1, le=PAGE_LIMIT),
    caller: ApiCaller = Depends(api_requires("read")),
) -> MessagePage:
    """Outbox messages, newest first, with their events; ``next_cursor`` fetches the next page."""
    context = context_of(request)
    filters = query.filters(caller, context, before_id=cursor)
    mask = masking.must_mask(caller.user(), unmasked=False)
    with context.readers() as session:
        rows = [
            row_dict(r) for r in iter_history(session, filters, mask=mask, newest_first=True, limit=limit)
        ]
    return MessagePage(messages=rows, next_cursor=rows[-1]["id"] if len(rows) == limit else None)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/jsonl": {}}, "description": "The export"}},
)
def export_messages(
    request: Request,
    query: _Query = Depends(),
    output_format: ExportFormat = Query(ExportFormat.CSV, alias="format"),
    caller: ApiCaller = Depends(api_requires("read")),
) -> StreamingResponse:
    """Every message the filters select, oldest first, as CSV or JSON Lines; always masked."""
    if output_format == ExportFormat.TABLE:
        raise Problem(
            422,
            "invalid-format",
            _("Invalid request"),
            _("The field %(field)s is not valid: %(reason)s") % {"field": "format", "reason": "csv, jsonl"},
            field="format",
        )
    context = context_of(request)
    filters = query.filters(caller, context)
    mask = masking.must_mask_export(caller.user(), unmasked=False)
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115  # closed by the stream
    text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
    with context.readers() as session:
        WRITERS[output_format](iter_history(session, filters, mask=mask), text)
    text.flush()
    text.detach()
    spool.seek(0)

    def chunks() -> Iterator[bytes]:
        try:
            while block := spool.read(CHUNK_BYTES):
                yield block
        finally:
            spool.close()

    media = "text/csv; charset=utf-8" if output_format == ExportFormat.CSV else "application/jsonl"
    name = f"messages.{output_format.value}"
    return StreamingResponse(
        chunks(), media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
