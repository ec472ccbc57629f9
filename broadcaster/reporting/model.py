"""What a communications report says, as data: computed once (``reporting.figures``), then written as CSV,
XLSX or DOCX by the writers, which never query the database (docs/plan.md, "Reports").

Every number is a plain value so that a closed period regenerated from the frozen rollups gives the same
bytes. Counts are per message, except ``people`` (distinct contacts, or keyed hashes of erased ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from broadcaster.reporting.periods import Period

__all__ = [
    "ActivityLine",
    "Breakdown",
    "ComplianceLine",
    "DeliveryFigures",
    "MonthlyLine",
    "Report",
    "ReportHeader",
]


@dataclass(frozen=True)
class DeliveryFigures:
    """What happened to the messages of one slice (a plan item, an agency, a channel, a purpose, or all)."""

    planned: int = 0
    sent: int = 0  # accepted by a provider
    delivered: int = 0
    failed: int = 0  # permanent, technical or temporary failure at the end
    suppressed: int = 0
    suppressed_by_reason: Mapping[str, int] = field(default_factory=dict)
    people: int = 0  # distinct recipients reached (sent to)
    opt_outs: int = 0  # withdrawals recorded in the period for the slice's channel(s)
    median_seconds_to_delivery: float | None = None
    p95_seconds_to_delivery: float | None = None
    sms_parts: int = 0
    cost_vnd: Decimal = Decimal(0)

    @property
    def delivery_rate(self) -> float | None:
        """Delivered over sent; None when nothing was sent."""
        return self.delivered / self.sent if self.sent else None


@dataclass(frozen=True)
class Breakdown:
    """One row of a breakdown: ``key`` names the slice (plan item id, agency key, channel or purpose) and
    ``label`` says it in Vietnamese (the item's title, the agency's name from the settings…)."""

    key: str
    label: str
    campaigns: int
    runs: int
    activities: int  # recorded activities (not broadcasts) in the slice
    figures: DeliveryFigures


@dataclass(frozen=True)
class ActivityLine:
    """A recorded activity or a broadcast run, as the report lists them."""

    day: date
    plan_item: str
    agency: str  # the agency's name from the settings
    kind: str  # an activity kind, or "broadcast"
    title: str
    evidence: str | None  # a link, the stored evidence file's name, or the run's reference


@dataclass(frozen=True)
class ComplianceLine:
    """One plan item's required frequency against what was done in the period."""

    plan_item: str
    title: str
    lead_agency: str
    frequency: str  # the plan vocabulary (``campaigns.plan.Frequency``)
    frequency_text: str  # the plan's own words
    required: int  # occurrences the frequency asks for in the period (0: as needed)
    done: int
    done_days: tuple[date, ...]
    missed: tuple[date, ...]  # the due dates (ends of the required intervals) with nothing done

    @property
    def met(self) -> bool:
        return not self.missed and self.done >= self.required


@dataclass(frozen=True)
class MonthlyLine:
    """Messages by channel per month: the data of the first chart."""

    month: str  # YYYY-MM
    channel: str
    sent: int
    delivered: int
    failed: int


@dataclass(frozen=True)
class ReportHeader:
    """The document's header block (Decree 30/2020): who reports, under which number, where and when."""

    agency_name: str
    agency_code: str
    superior_name: str  # the governing body printed above the agency (e.g. UBND THÀNH PHỐ ĐÀ NẴNG)
    document_number: str  # "số": left blank for the clerk when not given
    place: str
    issued_on: date
    title: str


@dataclass(frozen=True)
class Report:
    """Everything one report prints."""

    header: ReportHeader
    period: Period
    generated_at: datetime
    totals: DeliveryFigures
    by_plan_item: tuple[Breakdown, ...]
    by_agency: tuple[Breakdown, ...]
    by_channel: tuple[Breakdown, ...]
    by_purpose: tuple[Breakdown, ...]
    activities: tuple[ActivityLine, ...]
    compliance: tuple[ComplianceLine, ...]
    monthly: tuple[MonthlyLine, ...]
