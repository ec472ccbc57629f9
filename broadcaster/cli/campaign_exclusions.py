"""``broadcaster campaigns exclude|exclusions``: a campaign's exclusion lists, added from files and listed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from broadcaster import masking
from broadcaster.campaigns.store import get_campaign
from broadcaster.cli.common import (
    CampaignArgument,
    JsonOption,
    UnmaskedOption,
    acting,
    console,
    print_json,
    print_table,
    stored_utc,
)
from broadcaster.clock import local
from broadcaster.consent_lists import exclude_from_campaign
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _
from consent.exclusions import exclusions_of

CHANNELS = {"sms": N_("SMS"), "email": N_("E-mail")}


def register(app: typer.Typer) -> None:
    app.command("exclude")(exclude)
    app.command("exclusions")(exclusions)


def exclude(
    campaign_id: str = CampaignArgument,
    file: Path = typer.Argument(
        ...,
        dir_okay=False,
        help='Phone numbers and e-mail addresses, one per line, or a CSV with "phone" and/or "email" columns; '
        'blank lines and "#" comments are allowed.',
    ),
    name: str | None = typer.Option(None, "--name", help="The list's name (default: the file's name)."),
) -> None:
    """Add FILE's addresses to the campaign's exclusion list: it never reaches them, whatever their consent.
    One bad line refuses the whole file (its line and value are named); pending messages to them stop."""
    with acting("consent.manage") as (context, session, user):
        report = exclude_from_campaign(
            session,
            campaign_id=campaign_id,
            path=file,
            list_name=name,
            actor=user.login,
            clock=context.clock,
            limits=context.settings.contacts,
        )
    console.print(
        _(
            "Exclusion list «%(list)s» of campaign %(campaign)s: %(addresses)s address(es) in the file, "
            "%(added)s newly added; %(stopped)s pending message(s) to them stopped."
        )
        % {
            "list": report.list_name,
            "campaign": campaign_id,
            "addresses": f"{report.addresses:,}",
            "added": f"{report.added:,}",
            "stopped": f"{report.stopped:,}",
        },
        highlight=False,
    )


def exclusions(
    campaign_id: str = CampaignArgument, unmasked: bool = UnmaskedOption, as_json: bool = JsonOption
) -> None:
    """The campaign's excluded addresses, oldest first; masked for the roles that see masked data."""
    with acting("read", write=unmasked) as (context, session, user):
        mask = masking.must_mask(user, unmasked=unmasked)
        get_campaign(session, campaign_id)
        rows: list[dict[str, Any]] = [
            {
                "channel": row.channel,
                "address": masking.mask_address(row.address) if mask else row.address,
                "list": row.list_name,
                "added_by": row.added_by,
                "added_at": local(stored_utc(row.added_at)),
            }
            for row in exclusions_of(session, campaign_id)
        ]
        if unmasked:
            masking.record_unmasked(
                session,
                actor=user,
                what="campaign_exclusions",
                filters={"campaign": campaign_id},
                shown=len(rows),
                clock=context.clock,
            )
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(
            _("Campaign %(campaign)s has no exclusion list yet.") % {"campaign": campaign_id}, highlight=False
        )
        return
    print_table(
        _("Exclusion list — campaign %(campaign)s (%(count)s addresses)")
        % {"campaign": campaign_id, "count": f"{len(rows):,}"},
        [_("Channel"), _("Address"), _("List"), _("Added by"), _("Added at")],
        [
            [
                _(CHANNELS[r["channel"]]) if r["channel"] in CHANNELS else r["channel"],
                r["address"],
                r["list"],
                r["added_by"],
                f"{r['added_at']:%d/%m/%Y %H:%M}",
            ]
            for r in rows
        ],
    )
