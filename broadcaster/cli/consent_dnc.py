"""``broadcaster consent dnc …``: import the do-not-call register (each import replaces it) and show which
import is in force."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from broadcaster.cli.common import JsonOption, acting, console, print_json, print_table, stored_utc
from broadcaster.clock import local
from broadcaster.consent_lists import import_do_not_call
from consent.dnc import current_import

app = typer.Typer(no_args_is_help=True, help="The do-not-call register (DNC), applied to advertising SMS.")

FileArgument = typer.Argument(
    ...,
    dir_okay=False,
    help='One phone number per line (plain text) or a CSV with a "phone" column; blank lines and "#" '
    "comments are allowed.",
)


@app.command("import")
def import_(file: Path = FileArgument) -> None:
    """Replace the register with the numbers of FILE. One bad line refuses the whole file (its line and value
    are named) and nothing changes; pending advertising SMS to listed numbers stop at once."""
    with acting("consent.manage") as (context, session, user):
        report = import_do_not_call(
            session, path=file, actor=user.login, clock=context.clock, limits=context.settings.contacts
        )
    console.print(
        f"Đã nhập danh sách DNC từ {file.name}: {report.numbers:,} số (thay cho {report.previous:,} số trước đó); "
        f"{report.stopped:,} tin quảng cáo đang chờ gửi đến các số này đã dừng.",
        highlight=False,
    )


@app.command("status")
def status(as_json: bool = JsonOption) -> None:
    """The import whose numbers are the register now."""
    with acting("read", write=False) as (_context, session, _user):
        entry = current_import(session)
        shown: dict[str, Any] | None = (
            None
            if entry is None
            else {
                "import_id": entry.id,
                "file": entry.source_name,
                "numbers": entry.numbers,
                "sha256": entry.sha256,
                "imported_by": entry.imported_by,
                "imported_at": local(stored_utc(entry.imported_at)),
            }
        )
    if as_json:
        print_json(shown)
        return
    if shown is None:
        console.print(
            "Chưa nhập danh sách DNC nào: `broadcaster consent dnc import TỆP` để nhập.", highlight=False
        )
        return
    print_table(
        "Danh sách không nhận quảng cáo (DNC) đang áp dụng",
        ["Lần nhập", "Tệp", "Số lượng số", "SHA-256", "Người nhập", "Thời điểm nhập"],
        [
            [
                shown["import_id"],
                shown["file"],
                f"{shown['numbers']:,}",
                shown["sha256"],
                shown["imported_by"],
                f"{shown['imported_at']:%d/%m/%Y %H:%M}",
            ]
        ],
    )
