"""``broadcaster consent …``: show a person's consent history in Vietnamese; staff record grants and withdrawals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer

from broadcaster import audit
from broadcaster.cli import consent_dnc
from broadcaster.cli.common import JsonOption, acting, console, guarded, print_json, print_table
from broadcaster.clock import local
from broadcaster.consent_withdrawals import parse_address, withdraw_as_staff
from broadcaster.contacts.emails import EmailError
from broadcaster.contacts.phones import PhoneError
from broadcaster.i18n import gettext as _
from consent import ledger
from consent.ledger import ConsentError
from consent.models import ConsentEvent

app = typer.Typer(no_args_is_help=True, help="Consent: the ledger of grants and withdrawals per person.")
app.add_typer(consent_dnc.app, name="dnc")

# What the person reads: the ledger's codes in Vietnamese.
CHANNELS_VI = {"sms": "SMS", "email": "Thư điện tử"}
PURPOSES_VI = {
    ledger.OFFICIAL_DUTY: "Tin điều hành công vụ",
    ledger.PUBLIC_INFORMATION: "Thông tin công",
    ledger.ADVERTISING: "Quảng cáo",
}
ACTIONS_VI = {ledger.GRANT: "Đồng ý", ledger.WITHDRAW: "Rút lại đồng ý"}
SOURCES_VI = {
    "web_form": "Biểu mẫu trên trang web",
    "sms_keyword": "Tin nhắn từ khóa",
    "email_link": "Liên kết hủy đăng ký trong thư",
    "import": "Nhập danh bạ",
    "staff": "Cán bộ ghi nhận",
    "city_app": "Ứng dụng của thành phố",
    "migration": "Chuyển từ dữ liệu cũ",
}
STATES_VI = {True: "Đồng ý", False: "Đã từ chối", None: "Chưa ghi nhận"}

AddressArgument = typer.Argument(..., help="A phone number (any usual spelling) or an e-mail address.")
PurposeOption = typer.Option(..., "--purpose", help="official_duty, public_information or advertising.")
ChannelOption = typer.Option(
    None,
    "--channel",
    help="sms, email or push (default: from the address; push names the person by their phone or e-mail).",
)
ReasonOption = typer.Option(
    ..., "--reason", help="Why staff records this (kept in the ledger and the audit)."
)

KNOWN_ERRORS = (ConsentError, PhoneError, EmailError)


@app.command("show")
@guarded(KNOWN_ERRORS)
def show(address: str = AddressArgument, as_json: bool = JsonOption) -> None:
    """The person's consent history, oldest first, in Vietnamese: fit to hand to them."""
    with acting("read", write=False) as (_context, session, _user):
        channel, key = parse_address(address)  # after the settings: their errors come first
        events = [_as_dict(event) for event in ledger.history(session, channel, key)]
        states = {purpose: ledger.current(session, channel, key, purpose) for purpose in ledger.PURPOSES}
    if as_json:
        print_json({"channel": channel, "address": key, "current": states, "events": events})
        return
    console.print(f"[bold]Lịch sử đồng ý nhận tin — {CHANNELS_VI[channel]}: {key}[/]", highlight=False)
    print_table(
        "Hiện trạng",
        ["Mục đích", "Trạng thái"],
        [[PURPOSES_VI[purpose], STATES_VI[state]] for purpose, state in states.items()],
    )
    if not events:
        console.print("Chưa có ghi nhận nào về sự đồng ý hay từ chối của địa chỉ này.")
        return
    print_table(
        "Lịch sử",
        ["Thời điểm", "Mục đích", "Hành động", "Nguồn", "Thông báo", "Bằng chứng", "Lý do", "Người ghi nhận"],
        [
            [
                f"{local(_utc(e['recorded_at'])):%d/%m/%Y %H:%M}",
                PURPOSES_VI[e["purpose"]],
                ACTIONS_VI[e["action"]],
                SOURCES_VI[e["source"]],
                e["notice_version"],
                e["evidence"],
                e["reason"],
                e["recorded_by"],
            ]
            for e in events
        ],
    )


@app.command("grant")
@guarded(KNOWN_ERRORS)
def grant(
    address: str = AddressArgument,
    purpose: str = PurposeOption,
    reason: str = ReasonOption,
    notice: str = typer.Option(..., "--notice", help="The notice version the person was shown, e.g. v1."),
    channel: str | None = ChannelOption,
    evidence: str | None = typer.Option(None, "--evidence", help="Where the proof is, e.g. a form number."),
) -> None:
    """Record, as staff, that the person agreed after reading notice VERSION (notices/PURPOSE/VERSION.md)."""
    with acting("consent.manage") as (context, session, user):
        channel, key = parse_address(address, channel)
        event = ledger.grant(
            session,
            channel=channel,
            address=key,
            purpose=purpose,
            source="staff",
            notice_version=notice,
            notices_dir=context.notices_dir,
            evidence=evidence,
            reason=reason,
            recorded_by=user.login,
            at=context.clock.now(),
        )
        audit.record_consent_event(session, event)
    console.print(
        _("Recorded: %(key)s agrees to %(purpose)s on %(channel)s (notice %(notice)s).")
        % {"key": key, "purpose": purpose, "channel": channel, "notice": notice},
        highlight=False,
    )


@app.command("withdraw")
@guarded(KNOWN_ERRORS)
def withdraw(
    address: str = AddressArgument,
    purpose: str = PurposeOption,
    reason: str = ReasonOption,
    notice: str | None = typer.Option(None, "--notice", help="The notice version concerned, if any."),
    channel: str | None = ChannelOption,
    evidence: str | None = typer.Option(None, "--evidence", help="Where the proof is, e.g. a letter number."),
) -> None:
    """Record, as staff, that the person no longer agrees; effective for every message not yet sent."""
    with acting("consent.manage") as (context, session, user):
        done = withdraw_as_staff(
            session,
            address=address,
            channel=channel,
            purpose=purpose,
            reason=reason,
            recorded_by=user.login,
            clock=context.clock,
            notice=notice,
            evidence=evidence,
        )
        channel, key, stopped = done.channel, done.address, done.stopped
    console.print(
        _("Recorded: %(key)s withdrew consent to %(purpose)s on %(channel)s.")
        % {"key": key, "purpose": purpose, "channel": channel},
        highlight=False,
    )
    if stopped:
        console.print(
            _("%(stopped)s message(s) not yet sent to %(key)s were stopped.")
            % {"stopped": stopped, "key": key},
            highlight=False,
        )


def _utc(moment: datetime) -> datetime:
    # SQLite hands the stored UTC moment back without its zone.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _as_dict(event: ConsentEvent) -> dict[str, Any]:
    return {
        "recorded_at": _utc(event.recorded_at),
        "channel": event.channel,
        "purpose": event.purpose,
        "action": event.action,
        "source": event.source,
        "notice_version": event.notice_version,
        "evidence": event.evidence,
        "reason": event.reason,
        "recorded_by": event.recorded_by,
    }
