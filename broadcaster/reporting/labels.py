"""How the report documents name what the engine stores as keys: activity kinds and the reasons a message
was not sent. The CSV keeps the stored values (machine-readable); DOCX and XLSX are read by officers."""

from __future__ import annotations

from broadcaster.activities import kind_label
from broadcaster.campaigns.audience import Exclusion
from broadcaster.outbox.fallbacks import is_unneeded_fallback

__all__ = ["kind_label", "reason_label"]

_REASONS: dict[str, str] = {
    Exclusion.NO_PHONE: "không có số điện thoại",
    Exclusion.LANDLINE: "số cố định, không nhận được SMS",
    Exclusion.NO_EMAIL: "không có địa chỉ thư điện tử",
    Exclusion.OPTED_OUT: "đã từ chối nhận tin",
    Exclusion.SUPPRESSED: "địa chỉ bị chặn (lỗi vĩnh viễn hoặc từ chối trước đó)",
    Exclusion.NO_PRIOR_CONSENT: "chưa đồng ý trước",
    Exclusion.DO_NOT_CALL: "có trong danh sách không nhận quảng cáo",
    Exclusion.CAMPAIGN_LIST: "thuộc danh sách loại trừ của chiến dịch",
    Exclusion.DUPLICATE: "trùng địa chỉ với người nhận khác",
    Exclusion.TOO_LONG: "tin SMS dài quá số phần cho phép",
    Exclusion.NO_DEVICE: "chưa đăng ký thiết bị nhận thông báo đẩy",
    Exclusion.PUSH_TOO_LARGE: "thông báo đẩy vượt quá giới hạn dữ liệu hoặc độ dài",
    Exclusion.SOCIAL_TOO_LARGE: "tin mạng xã hội trống hoặc vượt quá độ dài cho phép",
}


def reason_label(reason: str) -> str:
    """The Vietnamese wording of a stored reason; one the table does not know is shown as stored."""
    if is_unneeded_fallback(reason):
        return "không cần tin dự phòng: tin trên kênh trước đã đến người nhận"
    return _REASONS.get(reason, reason)
