"""``broadcaster apikeys create|list|revoke``: keys of the REST API (admins only).

The services are ``broadcaster.api_keys``; this module only reads options and prints. A key is printed once,
at creation: only its SHA-256 is stored, so it cannot be shown again.
"""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy import select

from broadcaster.api_keys import create_key, revoke_key
from broadcaster.cli.common import JsonOption, acting, console, err_console, print_json, print_table
from broadcaster.clock import local
from broadcaster.db.models import ApiKey
from broadcaster.i18n import gettext as _
from broadcaster.vocabulary import Role

app = typer.Typer(no_args_is_help=True, help="Keys of the REST API (/api/v1): create, list, revoke.")


@app.command()
def create(
    name: str = typer.Argument(..., help="Which system uses the key (e.g. city-portal)."),
    role: Role = typer.Option(..., "--role", help="The role the key acts with."),
    campaigns: list[str] = typer.Option(
        [], "--campaign", help="Only this campaign (repeat for several; default: every campaign)."
    ),
    rate: int | None = typer.Option(
        None, "--rate", help="Requests per minute (default: [web] api_rate_per_minute)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Create a key; it is printed once and never again (only its hash is stored)."""
    with acting("api_keys.manage") as (context, session, user):
        created = create_key(
            session,
            actor=user.login,
            name=name,
            role=role,
            clock=context.clock,
            rate_per_minute=rate if rate is not None else context.settings.web.api_rate_per_minute,
            campaigns=campaigns or None,
        )
        listed = _as_dict(created.key)
    if as_json:
        print_json({**listed, "key": created.secret})
    else:
        console.print(
            _("API key %(prefix)s (%(name)s, %(role)s):")
            % {"prefix": listed["prefix"], "name": listed["name"], "role": listed["role"]},
            highlight=False,
        )
        console.print(created.secret, highlight=False, markup=False, soft_wrap=True)
    err_console.print(
        f"[bold yellow]{_('warning')}:[/] "
        + _(
            "copy the key now: it will not be shown again (only its hash is stored; revoke it and create "
            "another if it is lost)."
        ),
        highlight=False,
    )


@app.command("list")
def list_(as_json: bool = JsonOption) -> None:
    """Every key, newest first: prefix, name, role, campaigns, rate, created, last used, revoked."""
    with acting("api_keys.manage", write=False) as (_context, session, _user):
        rows = [_as_dict(key) for key in session.scalars(select(ApiKey).order_by(ApiKey.id.desc()))]
    if as_json:
        print_json(rows)
        return
    print_table(
        _("API keys"),
        [
            _("prefix"),
            _("name"),
            _("role"),
            _("campaigns"),
            _("rate/min"),
            _("created"),
            _("last used"),
            _("revoked"),
        ],
        [
            [
                r["prefix"],
                r["name"],
                r["role"],
                ", ".join(r["campaigns"]) if r["campaigns"] is not None else _("(all)"),
                r["rate_per_minute"],
                r["created_at"],
                r["last_used_at"],
                r["revoked_at"],
            ]
            for r in rows
        ],
    )


@app.command()
def revoke(
    prefix: str = typer.Argument(..., help="The key's prefix, as apikeys list shows it."),
    reason: str = typer.Option(..., "--reason", "-m", help="Why (kept in the audit log)."),
) -> None:
    """Revoke a key: from now on every request with it is refused (401)."""
    with acting("api_keys.manage") as (context, session, user):
        revoke_key(session, actor=user.login, prefix=prefix, clock=context.clock, reason=reason)
    console.print(_("Revoked API key %(prefix)s.") % {"prefix": prefix}, highlight=False)


def _as_dict(key: ApiKey) -> dict[str, Any]:
    def moment(value: Any) -> str | None:
        return local(value).isoformat() if value is not None else None

    return {
        "prefix": key.prefix,
        "name": key.name,
        "role": key.role.value,
        "campaigns": key.campaigns,
        "rate_per_minute": key.rate_per_minute,
        "created_by": key.created_by,
        "created_at": moment(key.created_at),
        "last_used_at": moment(key.last_used_at),
        "revoked_at": moment(key.revoked_at),
        "revoked_by": key.revoked_by,
    }
