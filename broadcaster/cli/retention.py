"""``broadcaster retention run [--dry-run] [--json]``: blank the personal data older than ``[retention]
personal_data_days`` now (admins only); the tick does the same once a day (broadcaster/retention.py)."""

from __future__ import annotations

import typer

from broadcaster.cli.common import JsonOption, acting, console, print_json, print_table
from broadcaster.clock import local
from broadcaster.retention import TABLES, apply_retention

app = typer.Typer(
    no_args_is_help=True,
    help="Retention: remove message content and recipient addresses after [retention] personal_data_days.",
)

# What is blanked in each table, in the officer's words.
TABLES_VI = {
    "messages": "Tin nhắn (xoá địa chỉ và nội dung, giữ mã băm và trạng thái)",
    "inbound_records": "Bản ghi nhận từ nhà mạng, thư báo lỗi (xoá nội dung)",
    "inbox_replies": "Tin nhắn trả lời trong hộp thư (xoá số điện thoại và nội dung)",
    "contact_import_problems": "Cảnh báo trong báo cáo nhập danh bạ (xoá giá trị)",
}


@app.command("run")
def run(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Only count what would be removed; change nothing."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Remove addresses and content settled before the retention period, keeping hashes, statuses, events and
    frozen report figures (one audit entry per run)."""
    with acting("retention.run", write=not dry_run) as (context, session, user):
        report = apply_retention(
            session, settings=context.settings, clock=context.clock, dry_run=dry_run, actor=user.login
        )
    if json_output:
        print_json(
            {
                "cutoff": report.cutoff,
                "dry_run": report.dry_run,
                "counts": report.counts,
                "frozen_days": report.frozen_days,
            }
        )
        return
    cutoff = f"{local(report.cutoff):%H:%M %d/%m/%Y}"
    verb = "Sẽ xoá" if dry_run else "Đã xoá"
    print_table(
        f"{verb} dữ liệu cá nhân trước {cutoff}",
        ["Bảng", "Số bản ghi"],
        [[TABLES_VI[name], report.counts[name]] for name in TABLES],
    )
    if report.frozen_days:
        console.print(
            f"Đã chốt số liệu báo cáo của {report.frozen_days} ngày trước khi xoá.", highlight=False
        )
    if dry_run:
        console.print("Chạy thử: không có gì thay đổi.", highlight=False)
    elif not report.total:
        console.print("Không có dữ liệu nào quá hạn lưu trữ.", highlight=False)
