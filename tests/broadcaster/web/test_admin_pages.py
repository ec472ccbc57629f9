"""The administration page: users and roles, API keys shown once, provider status; admins only."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from broadcaster.api_keys import find_key
from broadcaster.context import AppContext
from broadcaster.db.models import ProviderHealth, User
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.pending_messages import pending
from tests.broadcaster.web.conftest import Browser
from tests.broadcaster.web.records_fixtures import HOSTILE_NAME


def test_only_an_admin_opens_it(browser: Callable[[str | None], Browser]) -> None:
    for login in ("bien_tap", "phe_duyet", "kiem_toan"):
        assert browser(login).get("/admin").status_code == 403
    assert browser(ADMIN_LOGIN).get("/admin").status_code == 200


def test_an_admin_adds_a_user_changes_a_role_and_deactivates(
    browser: Callable[[str | None], Browser], context: AppContext
) -> None:
    admin = browser(ADMIN_LOGIN)
    admin.get("/admin")
    added = admin.post("/admin/users", {"login": "moi_vao", "role": "editor", "display_name": HOSTILE_NAME})
    assert added.status_code == 303
    page = admin.get("/admin")
    assert HOSTILE_NAME not in page.text
    assert "&lt;img src=x" in page.text
    assert admin.post("/admin/users/moi_vao/role", {"role": "approver"}).status_code == 303
    short = admin.post("/admin/users/moi_vao/password", {"password": "ngan"})
    assert short.status_code == 422
    assert admin.post("/admin/users/moi_vao/deactivate").status_code == 303
    with context.readers() as session:
        user = session.scalar(select(User).where(User.login == "moi_vao"))
        assert user is not None
        assert user.role.value == "approver"
        assert not user.active
    refused = admin.post(f"/admin/users/{ADMIN_LOGIN}/role", {"role": "editor"})
    assert refused.status_code == 422


def test_a_deactivated_user_is_signed_out(browser: Callable[[str | None], Browser]) -> None:
    editor = browser("bien_tap")
    admin = browser(ADMIN_LOGIN)
    admin.get("/admin")
    assert admin.post("/admin/users/bien_tap/deactivate").status_code == 303
    assert editor.client.get("/contacts", follow_redirects=False).status_code == 401


def test_an_api_key_is_shown_once_and_can_be_revoked(
    browser: Callable[[str | None], Browser], context: AppContext
) -> None:
    admin = browser(ADMIN_LOGIN)
    admin.get("/admin")
    created = admin.post("/admin/api-keys", {"name": "Cổng dịch vụ công", "role": "editor", "rate": "60"})
    assert created.status_code == 200
    secret = created.text.split('id="new-key" readonly size="70" value="')[1].split('"')[0]
    assert secret.startswith("bk_")
    again = admin.get("/admin")
    assert secret not in again.text
    assert "Cổng dịch vụ công" in again.text
    prefix = secret.split("_")[1]
    assert admin.post(f"/admin/api-keys/{prefix}/revoke", {"reason": "lộ khoá"}).status_code == 303
    with context.readers() as session:
        assert find_key(session, secret) is None


def test_provider_status_shows_health_and_backlog(
    browser: Callable[[str | None], Browser], context: AppContext
) -> None:
    now = context.clock.now()
    with context.sessions.begin() as session:
        session.add(ProviderHealth(provider="sms_main", state="unreachable", since=now, detail="bind refused",
                                   retry_at=now, updated_at=now))  # fmt: skip
    pending(context, "+84905111222")
    page = browser(ADMIN_LOGIN).get("/admin")
    assert "bind refused" in page.text
    assert '<th scope="row">sms_main</th><td>1</td>' in page.text
