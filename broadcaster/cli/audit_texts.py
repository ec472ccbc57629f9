"""The Vietnamese wording of ``broadcaster audit verify``: the first broken entry, an anchor's signature and
its first day that no longer matches the log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.markup import escape

from broadcaster.audit import anchors
from broadcaster.audit.verify import CONTENT, HEAD_AHEAD, HEAD_BEHIND, LINK, MISSING, Break
from broadcaster.cli.common import console
from broadcaster.clock import local


def _when(moment: datetime | None) -> str:
    return f"{local(moment):%d/%m/%Y %H:%M:%S}" if moment is not None else "không rõ"


def describe_break(broken: Break) -> str:
    """The first broken entry, in Vietnamese, with its time in Da Nang and its action."""
    where = f"lúc {_when(broken.at)} giờ Đà Nẵng, hành động {broken.action or 'không rõ'}"
    if broken.kind == MISSING:
        last = broken.last_missing or broken.entry_id
        gone = "đã bị xoá" if last == broken.entry_id else f"các mục #{broken.entry_id}–#{last} đã bị xoá"
        return f"mục #{broken.entry_id}: {gone} khỏi nhật ký (mục còn lại kế tiếp #{last + 1} {where})"
    problems = {
        CONTENT: "nội dung không khớp với hash của nó: đã bị sửa sau khi ghi",
        LINK: "không nối với mục trước (prev_hash khác): có mục bị xoá, chèn thêm hoặc đổi thứ tự",
        HEAD_AHEAD: "đầu chuỗi ghi nhận mục này nhưng nhật ký không còn: các mục cuối đã bị xoá",
        HEAD_BEHIND: "nhật ký có mục vượt quá đầu chuỗi, hoặc hash mục cuối khác đầu chuỗi: mục bị chèn thêm",
    }
    problem = problems.get(broken.kind, broken.problem)
    if broken.kind == HEAD_AHEAD:
        return f"mục #{broken.entry_id}: {problem}"
    return f"mục #{broken.entry_id} ({where}): {problem}"


_SIGNATURE_TEXT = {
    anchors.VALID: "hợp lệ",
    anchors.INVALID: "KHÔNG hợp lệ (tệp mốc đã bị sửa, hoặc được ký bằng khoá khác)",
    anchors.UNSIGNED: "chưa ký (tệp mốc không có chữ ký)",
    anchors.UNCHECKED: "chưa kiểm tra được (không có khoá công khai: dùng --public-key)",
}


def print_anchor(report: dict[str, Any], first: anchors.Mismatch | None) -> None:
    console.print(
        f"Mốc {escape(report['file'])}: {report['days']} ngày; chữ ký: {_SIGNATURE_TEXT[report['signature']]}.",
        highlight=False,
    )
    if first is None:
        console.print("  Mọi ngày trong mốc khớp với nhật ký.", highlight=False)
        return
    day = f"{first.day.day:%d/%m/%Y}"
    if first.found_hash is None:
        what = "không còn trong nhật ký"
    else:
        what = (
            f"hiện có hash {first.found_hash[:16]}… thay vì {first.day.entry_hash[:16]}… như khi lập mốc "
            f"(lúc {_when(first.found_at)}, hành động {first.found_action})"
        )
    console.print(
        f"  Ngày {day}: mục #{first.day.entry_id} {what}; {len(report['mismatches'])} ngày không khớp.",
        highlight=False,
    )
