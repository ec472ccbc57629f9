"""Server-rendered pages: one Jinja2 environment (autoescaped, translated through ``broadcaster.i18n``) and
``render``, which gives every page the viewer, the CSRF token, the organisation and the navigation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from broadcaster import i18n
from broadcaster.clock import local
from broadcaster.i18n import N_
from broadcaster.vocabulary import Role
from broadcaster.web.auth import CSRF_FIELD, context_of, current_viewer
from broadcaster.web.labels import label

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str  # a message id
    action: str  # shown only to roles that may do it


# The menu, in order; each page checks the role itself too (the menu only hides what would be refused).
NAVIGATION = (
    NavItem("/", N_("Dashboard"), "read"),
    NavItem("/campaigns", N_("Campaigns"), "read"),
    NavItem("/contacts", N_("Contacts"), "read"),
    NavItem("/messages", N_("Messages"), "read"),
    NavItem("/reports", N_("Reports"), "reports.read"),
    NavItem("/audit", N_("Audit"), "read"),
    NavItem("/admin", N_("Administration"), "users.manage"),
)


def role_names() -> dict[str, str]:
    return {role.value: label(role, "role") for role in Role}


def _local_time(value: datetime | None, pattern: str = "%d/%m/%Y %H:%M") -> str:
    return local(value).strftime(pattern) if value is not None else ""


def _number(value: int | float | None) -> str:
    """Vietnamese digit grouping (1.234.567) or English (1,234,567)."""
    if value is None:
        return ""
    text = f"{value:,.0f}" if isinstance(value, float) else f"{value:,}"
    return text.replace(",", ".") if i18n.current_language() == "vi" else text


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["local_time"] = _local_time
    env.filters["number"] = _number
    env.filters["label"] = label  # {{ run.status|label("run_status") }}: broadcaster.web.labels
    # A text made elsewhere that may be i18n.Translatable (a contacts row's reason): in the page's language.
    env.filters["translate"] = i18n.translate
    return env


def render(request: Request, name: str, *, status_code: int = 200, **values: Any) -> HTMLResponse:
    viewer = current_viewer(request)
    context = context_of(request)
    page = (
        environment()
        .get_template(name)
        .render(
            request=request,
            viewer=viewer,
            csrf_field=CSRF_FIELD,
            csrf_token=viewer.csrf_token if viewer else "",
            org=context.settings.org,
            language=i18n.current_language(),
            navigation=[item for item in NAVIGATION if viewer is not None and viewer.may(item.action)],
            path=request.url.path,
            role_names=role_names(),
            **values,
        )
    )
    # Pages show personal data and change with every run: never cached, by the browser or a proxy.
    return HTMLResponse(page, status_code=status_code, headers={"Cache-Control": "no-store"})
