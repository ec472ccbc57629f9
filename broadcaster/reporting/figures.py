"""A report's figures for a period, computed from the daily rollups, the recorded activities and the plan
(``build_report``); the writers turn the ``Report`` into CSV, XLSX or DOCX without querying anything.

Messages, people and opt-outs come from the rollups only (``reporting.rollups``), so a closed period whose
messages were blanked by retention or erasure gives the same numbers; the caller rebuilds the open days first.
Activities and runs come from ``activities.list_activities`` (neither is erased). Compliance: each plan item's
frequency cut into required intervals, docs/plan.md "Reports".
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql import ColumnElement

from broadcaster.activities import list_activities
from broadcaster.campaigns.plan import Frequency, Plan, PlanItem
from broadcaster.clock import Clock, SystemClock
from broadcaster.db.models import RollupDay, RollupOptOut, RollupReach
from broadcaster.reporting.model import (
    ActivityLine,
    Breakdown,
    ComplianceLine,
    DeliveryFigures,
    MonthlyLine,
    Report,
    ReportHeader,
)
from broadcaster.reporting.periods import Period
from broadcaster.reporting.rollups import BUCKETS, NO_ITEM
from broadcaster.settings import Settings
from broadcaster.vocabulary import MessageStatus

__all__ = ["CHANNEL_LABELS", "PURPOSE_LABELS", "build_report", "due_intervals", "quantile_seconds"]

CHANNEL_LABELS: Mapping[str, str] = {
    "sms": "Tin nhắn SMS",
    "email": "Thư điện tử",
    "push": "Thông báo ứng dụng",
    "social": "Mạng xã hội (Fanpage, Zalo)",
}
PURPOSE_LABELS: Mapping[str, str] = {
    "official_duty": "Tin nhắn điều hành",
    "public_information": "Thông tin công cộng",
    "advertising": "Quảng cáo",
    "": "Không xác định",
}
OUTSIDE_PLAN = "Ngoài kế hoạch"  # messages of campaigns that name no plan item
_FAILED = {MessageStatus.TEMPORARY_FAILURE, MessageStatus.PERMANENT_FAILURE, MessageStatus.TECHNICAL_FAILURE}
_EARLIEST, _LATEST = date(1900, 1, 1), date(9998, 12, 31)


@dataclass
class _Slice:
    """Running sums of one breakdown row."""

    planned: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    suppressed: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    sms_parts: int = 0
    cost: Decimal = Decimal(0)
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    campaigns: set[str] = field(default_factory=set)
    runs: set[int] = field(default_factory=set)
    channels: set[str] = field(default_factory=set)

    def add(self, row: RollupDay) -> None:
        status = MessageStatus(row.status)
        self.planned += row.messages
        self.sent += row.accepted
        self.delivered += row.messages if status is MessageStatus.DELIVERED else 0
        self.failed += row.messages if status in _FAILED else 0
        if status is MessageStatus.SUPPRESSED or (status is MessageStatus.CANCELLED and row.reason):
            # A cancelled row keeps its reason only when it is a fallback its primary's delivery made unneeded.
            self.suppressed += row.messages
            self.by_reason[row.reason] += row.messages
        self.sms_parts += row.sms_parts
        self.cost += Decimal(row.cost)
        self.buckets = [a + b for a, b in zip(self.buckets, row.delivery_seconds, strict=True)]
        if row.campaign_id:
            self.campaigns.add(row.campaign_id)
        if row.run_id:
            self.runs.add(row.run_id)
        self.channels.add(row.channel)

    def figures(self, *, people: int, opt_outs: int) -> DeliveryFigures:
        return DeliveryFigures(
            planned=self.planned,
            sent=self.sent,
            delivered=self.delivered,
            failed=self.failed,
            suppressed=self.suppressed,
            suppressed_by_reason=dict(sorted(self.by_reason.items())),
            people=people,
            opt_outs=opt_outs,
            median_seconds_to_delivery=quantile_seconds(self.buckets, 0.5),
            p95_seconds_to_delivery=quantile_seconds(self.buckets, 0.95),
            sms_parts=self.sms_parts,
            cost_vnd=self.cost.quantize(Decimal("0.01")),
        )


def quantile_seconds(buckets: list[int], q: float) -> float | None:
    """The upper bound of the bucket holding the ``q`` quantile (None without deliveries); the open last
    bucket reports its lower bound."""
    total = sum(buckets)
    if not total:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= rank:
            return float(BUCKETS[min(index, len(BUCKETS) - 1)])
    return float(BUCKETS[-1])


def build_report(
    session: Session,
    settings: Settings,
    period: Period,
    plan: Plan,
    *,
    clock: Clock | None = None,
    document_number: str = "",
) -> Report:
    """Every figure of the period, from rollups already rebuilt for its open days."""
    clock = clock or SystemClock()
    zone = ZoneInfo(settings.timezone)
    start, end = max(period.start, _EARLIEST), min(period.end, _LATEST)
    lead = {item.id: item.lead_agency for item in plan.items}

    def agency_of(item: str) -> str:
        return lead.get(item, "")

    total = _Slice()
    slices: dict[str, dict[str, _Slice]] = {name: defaultdict(_Slice) for name in _DIMENSIONS}
    months: dict[tuple[str, str], _Slice] = defaultdict(_Slice)
    rows = session.scalars(select(RollupDay).where(RollupDay.day.between(start, end)))
    for row in rows:
        total.add(row)
        keys = {"plan_item": row.plan_item, "agency": agency_of(row.plan_item), "channel": row.channel}
        keys["purpose"] = row.purpose
        for name, key in keys.items():
            slices[name][key].add(row)
        months[(f"{row.day:%Y-%m}", row.channel)].add(row)

    people = _people(session, start, end, plan)
    opt_outs = _opt_outs(session, start, end)
    activities = list_activities(
        session, plan=plan, agencies=settings.agencies, zone=zone, start=start, end=end
    )
    recorded: dict[str, Counter[str]] = {"plan_item": Counter(), "agency": Counter()}
    for line in activities:
        if line.source == "recorded":
            recorded["plan_item"][line.plan_item] += 1
            recorded["agency"][line.agency] += 1

    def opt_outs_for(part: _Slice) -> int:
        return sum(n for (channel, _purpose), n in opt_outs.items() if channel in part.channels)

    def breakdown(name: str, keys: Iterable[str], label: Callable[[str], str]) -> tuple[Breakdown, ...]:
        out = []
        for key in keys:
            part = slices[name].get(key, _Slice())
            if name == "channel":
                outs = sum(n for (channel, _p), n in opt_outs.items() if channel == key)
            elif name == "purpose":
                outs = sum(n for (_c, purpose), n in opt_outs.items() if purpose == key)
            else:  # withdrawals name no plan item: those on the channels the slice sent on
                outs = opt_outs_for(part)
            out.append(
                Breakdown(
                    key=key,
                    label=label(key),
                    campaigns=len(part.campaigns),
                    runs=len(part.runs),
                    activities=recorded.get(name, Counter())[key],
                    figures=part.figures(people=people[name].get(key, 0), opt_outs=outs),
                )
            )
        return tuple(out)

    items = [item.id for item in plan.items] + ([NO_ITEM] if NO_ITEM in slices["plan_item"] else [])
    titles = {item.id: item.title for item in plan.items}
    used_agencies = set(slices["agency"]) | set(recorded["agency"]) | set(lead.values())
    agencies = [key for key in settings.agencies if key in used_agencies]
    agencies += sorted(used_agencies - set(agencies))

    def agency_name(key: str) -> str:
        found = settings.agencies.get(key)
        return found.name if found is not None else (key or OUTSIDE_PLAN)

    channels = sorted(set(slices["channel"]) | {channel for channel, _ in opt_outs})
    purposes = sorted(set(slices["purpose"]) | {purpose for _, purpose in opt_outs})
    reporting = settings.agencies[settings.reports.agency]
    return Report(
        header=ReportHeader(
            agency_name=reporting.name,
            agency_code=reporting.code,
            superior_name=settings.org.parent.upper(),
            document_number=document_number,
            place=settings.org.city,
            issued_on=clock.now().astimezone(zone).date(),
            title=f"Báo cáo kết quả thực hiện Kế hoạch {plan.plan}, kỳ {period.label} ({period.describe()})",
        ),
        period=period,
        generated_at=clock.now(),
        totals=total.figures(people=people["total"].get("", 0), opt_outs=sum(opt_outs.values())),
        by_plan_item=breakdown("plan_item", items, lambda key: titles.get(key, OUTSIDE_PLAN)),
        by_agency=breakdown("agency", agencies, agency_name),
        by_channel=breakdown("channel", channels, lambda key: CHANNEL_LABELS.get(key, key)),
        by_purpose=breakdown("purpose", purposes, lambda key: PURPOSE_LABELS.get(key, key)),
        activities=tuple(
            ActivityLine(
                day=line.occurred_on,
                plan_item=line.plan_item,
                agency=line.agency_name,
                kind=line.kind,
                title=line.title,
                evidence=line.evidence,
            )
            for line in activities
        ),
        compliance=tuple(
            _compliance(
                item,
                [a.occurred_on for a in activities if a.plan_item == item.id],
                # Nothing is due before the plan was issued, nor, in a range left open, after today.
                max(start, plan.issued),
                end if period.end < _LATEST else min(end, clock.now().astimezone(zone).date()),
                agency_name(item.lead_agency),
            )
            for item in plan.items
        ),
        monthly=tuple(
            MonthlyLine(month, channel, part.sent, part.delivered, part.failed)
            for (month, channel), part in sorted(months.items())
        ),
    )


_DIMENSIONS = ("plan_item", "agency", "channel", "purpose")


def _people(session: Session, start: date, end: date, plan: Plan) -> dict[str, dict[str, int]]:
    """Distinct people reached per breakdown row: one COUNT(DISTINCT) per dimension over the reach rollup."""
    agency: ColumnElement[str] = case(
        {item.id: literal(item.lead_agency) for item in plan.items}, value=RollupReach.plan_item, else_=""
    )
    columns: dict[str, ColumnElement[str] | InstrumentedAttribute[str]] = {
        "total": literal(""),
        "plan_item": RollupReach.plan_item,
        "agency": agency,
        "channel": RollupReach.channel,
        "purpose": RollupReach.purpose,
    }
    found: dict[str, dict[str, int]] = {}
    for name, column in columns.items():
        query = (
            select(column.label("k"), func.count(RollupReach.person.distinct()))
            .where(RollupReach.day.between(start, end))
            .group_by("k")
        )
        found[name] = {str(key): int(count) for key, count in session.execute(query)}
    return found


def _opt_outs(session: Session, start: date, end: date) -> dict[tuple[str, str], int]:
    query = (
        select(RollupOptOut.channel, RollupOptOut.purpose, func.sum(RollupOptOut.count))
        .where(RollupOptOut.day.between(start, end))
        .group_by(RollupOptOut.channel, RollupOptOut.purpose)
    )
    return {(channel, purpose): int(n) for channel, purpose, n in session.execute(query)}


def due_intervals(frequency: Frequency, start: date, end: date) -> list[tuple[date, date]]:
    """The intervals in which ``frequency`` asks for one occurrence, each ending on its due date, within the
    period; an interval whose due date falls after the period's end is not yet due and is left out."""
    if start > end:
        return []
    if frequency is Frequency.EVERY_TWO_WEEKS:  # counted from the period's first day
        spans = []
        first = start
        while first + timedelta(days=13) <= end:
            spans.append((first, first + timedelta(days=13)))
            first += timedelta(days=14)
        return spans
    if frequency in (Frequency.MONTHLY, Frequency.QUARTERLY):
        step = 1 if frequency is Frequency.MONTHLY else 3
        spans = []
        month = ((start.month - 1) // step) * step + 1
        first = date(start.year, month, 1)
        while first <= end:
            following = _add_months(first, step)
            due = following - timedelta(days=1)
            if due <= end:
                spans.append((max(first, start), due))
            first = following
        return spans
    if frequency is Frequency.SEMI_ANNUAL:
        return [(start, end)]  # the report's own period
    if frequency in (Frequency.YEARLY, Frequency.AT_LEAST_ONCE_A_YEAR):
        return [
            (max(date(year, 1, 1), start), date(year, 12, 31))
            for year in range(start.year, end.year + 1)
            if date(year, 12, 31) <= end
        ]
    return []  # ongoing, as needed: no count to check


def _add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    return date(day.year + index // 12, index % 12 + 1, 1)


def _compliance(item: PlanItem, done_days: list[date], start: date, end: date, lead: str) -> ComplianceLine:
    intervals = due_intervals(item.frequency, start, end)
    missed = tuple(due for first, due in intervals if not any(first <= day <= due for day in done_days))
    return ComplianceLine(
        plan_item=item.id,
        title=item.title,
        lead_agency=lead,
        frequency=item.frequency.value,
        frequency_text=item.frequency_text,
        required=len(intervals),
        done=len(done_days),
        done_days=tuple(sorted(done_days)),
        missed=missed,
    )
