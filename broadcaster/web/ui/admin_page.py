"""The administration page itself: users, API keys and provider status on one page, with the result of the
last change (or its refusal) above them."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.db.models import ApiKey, User
from broadcaster.vocabulary import Role
from broadcaster.web.auth import context_of
from broadcaster.web.templating import render
from broadcaster.web.ui.admin_providers import provider_status

ROLES = [role.value for role in Role]


def key_rows(session: Session) -> list[dict[str, Any]]:
    """What the list shows: never the secret (only its hash is stored), the prefix names the key."""
    return [
        {
            "name": key.name,
            "prefix": key.prefix,
            "role": key.role.value,
            "campaigns": ", ".join(key.campaigns or []),
            "rate": key.rate_per_minute,
            "created_at": key.created_at,
            "created_by": key.created_by,
            "last_used_at": key.last_used_at,
            "revoked_at": key.revoked_at,
        }
        for key in session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id.desc()))
    ]


def admin_page(request: Request, *, status_code: int = 200, **values: Any) -> HTMLResponse:
    context = context_of(request)
    with context.readers() as session:
        users = list(session.scalars(select(User).order_by(User.login)))
        keys = key_rows(session)
        providers = provider_status(session, now=context.clock.now())
    defaults: dict[str, Any] = {"error": None, "created_key": None, "done": request.query_params.get("done")}
    return render(request, "admin/page.html", status_code=status_code, users=users, roles=ROLES, keys=keys,
                  providers=providers, **{**defaults, **values})  # fmt: skip
