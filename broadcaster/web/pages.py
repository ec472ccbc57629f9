"""The small Vietnamese HTML pages a person sees after following an opt-out link."""

from __future__ import annotations

from html import escape

from fastapi.responses import HTMLResponse

from broadcaster.settings_sections import OrgSettings

ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"


def _page(title: str, body: str, *, status_code: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    # Personal links: keep them out of shared caches and of the Referer sent to other sites.
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return HTMLResponse(html, status_code=status_code, headers=headers)


def confirm_page(org: OrgSettings) -> HTMLResponse:
    """What a GET shows: a button that sends the same POST as a mail client (the GET itself changes nothing)."""
    return _page(
        "Hủy đăng ký nhận thư",
        f"<p>Bạn sẽ không nhận thư thông báo loại này từ {escape(org.name)} nữa.</p>"
        '<form method="post">'
        f'<input type="hidden" name="{ONE_CLICK_FIELD}" value="{ONE_CLICK_VALUE}">'
        '<button type="submit">Xác nhận hủy đăng ký</button></form>',
    )


def done_page(org: OrgSettings) -> HTMLResponse:
    return _page(
        "Đã hủy đăng ký",
        f"<p>Bạn đã hủy đăng ký nhận thư thông báo loại này từ {escape(org.name)}.</p>",
    )


def unknown_link_page() -> HTMLResponse:
    return _page(
        "Liên kết không hợp lệ",
        "<p>Liên kết hủy đăng ký này không đúng hoặc không còn hiệu lực.</p>",
        status_code=404,
    )


def bad_request_page() -> HTMLResponse:
    return _page(
        "Yêu cầu không hợp lệ",
        f"<p>Yêu cầu hủy đăng ký phải gửi {ONE_CLICK_FIELD}={ONE_CLICK_VALUE}.</p>",
        status_code=400,
    )
