"""``broadcaster subject …``: a person's data-subject requests under the PDP Law (docs/domain.md §1.2):
export everything held about an address, or erase it leaving a tombstone."""

from __future__ import annotations

from pathlib import Path

import typer

from broadcaster.cli.common import acting, console, err_console, fail, print_table
from broadcaster.i18n import gettext as _
from broadcaster.subjects import export as exporting
from broadcaster.subjects.erase import checked_reference, erase, held_about, nothing_held
from broadcaster.subjects.held import keyed_hash, parse_subject

app = typer.Typer(
    no_args_is_help=True, help="Data-subject requests: export or erase what is held about a person."
)

AddressArgument = typer.Argument(..., help="A phone number (any usual spelling) or an e-mail address.")

# What the confirmation lists, in the officer's words.
TABLES_VI = {
    "contacts": "Danh bạ",
    "messages": "Tin nhắn đã gửi (ẩn danh, giữ để thống kê)",
    "consent_events": "Lịch sử đồng ý",
    "suppressions": "Danh sách chặn gửi",
    "do_not_call": "Danh sách không nhận quảng cáo",
    "campaign_exclusions": "Danh sách loại trừ theo chiến dịch",
    "inbox_replies": "Tin nhắn trả lời trong hộp thư",
    "inbound_records": "Bản ghi nhận từ nhà mạng (xóa nội dung)",
    "contact_import_problems": "Cảnh báo trong báo cáo nhập danh bạ (xóa giá trị)",
}


@app.command("export")
def export(
    address: str = AddressArgument,
    out: Path | None = typer.Option(
        None, "--out", help="Write the JSON to this file (default: standard output)."
    ),
) -> None:
    """Everything held about the person, as JSON (UTF-8); the export is recorded in the audit trail."""
    with acting("subjects.export") as (context, session, user):
        subject = parse_subject(address)
        digest = keyed_hash(context.settings.security.erasure_key(), subject)
        document = exporting.export(
            session, subject, subject_hash=digest, actor=user.login, now=context.clock.now()
        )
        text = exporting.dumps(document)
        if out is not None:
            try:
                out.write_text(text, encoding="utf-8")
            except OSError as exc:  # the audit entry is rolled back with the export that did not happen
                fail(_("cannot write %(out)s: %(value)s") % {"out": out, "value": exc.strerror or exc})
    if out is None:
        typer.echo(text, nl=False)
        return
    total = sum(document["header"]["counts"].values())
    err_console.print(f"Đã ghi {total} bản ghi về {subject.key} vào {out}.", highlight=False)


@app.command("erase")
def erase_subject(
    address: str = AddressArgument,
    reference: str | None = typer.Option(
        None, "--reference", help="The request's reference, e.g. a dossier number (kept on the tombstone)."
    ),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Remove or anonymise everything held about the person, in one transaction; a tombstone remains."""
    with acting("subjects.erase", write=False) as (context, session, _user):
        subject = parse_subject(address)
        reference = checked_reference(reference, subject)
        digest = keyed_hash(context.settings.security.erasure_key(), subject)
        counts = held_about(session, subject).counts()
        if not any(counts.values()):
            raise nothing_held(session, subject, subject_hash=digest)
    print_table(
        f"Dữ liệu sẽ bị xóa về {subject.key} (hồ sơ {reference})",
        ["Bảng", "Số bản ghi"],
        [[TABLES_VI[name], n] for name, n in counts.items() if n],
    )
    if not yes and not typer.confirm("Xóa vĩnh viễn? Không thể hoàn tác.", default=False):
        fail("Đã hủy: không có gì thay đổi.")
    with acting("subjects.erase") as (context, session, user):
        done = erase(
            session,
            subject,
            reference=reference,
            subject_hash=digest,
            actor=user.login,
            now=context.clock.now(),
        )
    console.print(
        f"Đã xóa dữ liệu về {subject.key}: {sum(done.counts.values())} bản ghi; "
        f"dấu vết xóa số {done.tombstone_id} (hồ sơ {reference}).",
        highlight=False,
    )
