"""A hand-built ``Report`` for the document writers' tests: the dataclasses filled in directly, no database,
with numbers chosen so that every table cell can be checked (no two figures alike where it matters)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

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

SMS = DeliveryFigures(
    planned=1200,
    sent=1150,
    delivered=1081,
    failed=69,
    suppressed=50,
    suppressed_by_reason={"opted_out": 30, "invalid": 20},
    people=1100,
    opt_outs=7,
    median_seconds_to_delivery=4.5,
    p95_seconds_to_delivery=31.0,
    sms_parts=2300,
    cost_vnd=Decimal(1840000),
)
EMAIL = DeliveryFigures(planned=400, sent=390, delivered=351, failed=39, people=385, opt_outs=2)
TOTALS = DeliveryFigures(
    planned=1600,
    sent=1540,
    delivered=1432,
    failed=108,
    suppressed=50,
    suppressed_by_reason={"opted_out": 30, "invalid": 20},
    people=1460,
    opt_outs=9,
    median_seconds_to_delivery=5.0,
    p95_seconds_to_delivery=40.0,
    sms_parts=2300,
    cost_vnd=Decimal(1840000),
)


def sample_report() -> Report:
    header = ReportHeader(
        agency_name="Sở Khoa học và Công nghệ",
        agency_code="SKHCN",
        superior_name="UBND THÀNH PHỐ ĐÀ NẴNG",
        document_number="5",
        place="Đà Nẵng",
        issued_on=date(2026, 2, 3),
        title="Kết quả công tác truyền thông cải cách hành chính 6 tháng đầu năm 2026",
    )
    return Report(
        header=header,
        period=Period(date(2025, 11, 16), date(2026, 5, 15), "2026-H1"),
        generated_at=datetime(2026, 5, 20, 2, 30, tzinfo=UTC),
        totals=TOTALS,
        by_plan_item=(
            Breakdown("III.2", "Đối thoại với doanh nghiệp", 2, 3, 1, SMS),
            Breakdown("III.4", "Chuyên mục trên Đài PT-TH Đà Nẵng", 1, 1, 9, EMAIL),
            Breakdown("III.9", "Báo cáo định kỳ", 0, 0, 1, DeliveryFigures()),
        ),
        by_agency=(
            Breakdown("skhcn", "Sở Khoa học và Công nghệ", 2, 3, 8, SMS),
            Breakdown("stc", "Sở Tài chính", 1, 1, 3, EMAIL),
        ),
        by_channel=(
            Breakdown("sms", "Tin nhắn SMS", 2, 3, 0, SMS),
            Breakdown("email", "Thư điện tử", 1, 1, 0, EMAIL),
        ),
        by_purpose=(Breakdown("public_service", "Thông tin công vụ", 3, 4, 0, TOTALS),),
        activities=(
            ActivityLine(
                date(2025, 12, 4), "III.2", "Sở Tài chính", "dialogue", "Đối thoại doanh nghiệp", None
            ),
            ActivityLine(
                date(2026, 1, 9),
                "III.4",
                "Đài PT-TH Đà Nẵng",
                "tv_segment",
                "Chuyên mục CCHC số 1",
                "https://x.vn/1",
            ),
            ActivityLine(
                date(2026, 3, 2), "III.2", "Sở Khoa học và Công nghệ", "broadcast", "Mời đối thoại", "run 12"
            ),
        ),
        compliance=(
            ComplianceLine(
                "III.2",
                "Đối thoại với doanh nghiệp",
                "Sở Tài chính",
                "at_least_once_a_year",
                "Mỗi năm ít nhất 01 lần",
                1,
                2,
                (date(2025, 12, 4), date(2026, 3, 2)),
                (),
            ),
            ComplianceLine(
                "III.4",
                "Chuyên mục trên Đài PT-TH Đà Nẵng",
                "Đài PT-TH Đà Nẵng",
                "every_two_weeks",
                "02 tuần/kỳ",
                13,
                9,
                (date(2026, 1, 9),),
                (date(2025, 11, 29), date(2025, 12, 13), date(2026, 4, 25), date(2026, 5, 9)),
            ),
        ),
        monthly=(
            MonthlyLine("2026-01", "sms", 600, 570, 30),
            MonthlyLine("2026-01", "email", 200, 180, 20),
            MonthlyLine("2026-02", "sms", 550, 511, 39),
            MonthlyLine("2026-03", "email", 190, 171, 19),
        ),
    )
