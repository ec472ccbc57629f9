"""``broadcaster campaigns test-send``: a version to test addresses now, with what to check when it fails."""

from __future__ import annotations

import typer

from broadcaster.cli.common import (
    CampaignArgument,
    JsonOption,
    VersionOption,
    acting,
    load_context,
    print_error,
    print_json,
    print_table,
)
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _
from broadcaster.outbox.sending import ProviderFailure
from broadcaster.settings import Settings
from broadcaster.web.labels import label
from channels.base import Channel


def register(app: typer.Typer) -> None:
    app.command("test-send")(test_send)


def test_send(
    campaign_id: str = CampaignArgument,
    to: list[str] = typer.Option(
        ..., "--to", help="Phone number, e-mail address or push:DEVICE_TOKEN; repeat for several."
    ),
    version: int | None = VersionOption,
    as_json: bool = JsonOption,
) -> None:
    """Send the latest (or given) version to test addresses now, before approval, with sample contact data.

    A provider that does not take the message now makes the command fail (exit code 1) with what to check;
    the message is marked failed and is never sent later."""
    from sqlalchemy import select as sa_select

    from broadcaster.db.models import Message
    from broadcaster.outbox.sending import create_test_messages, send_test_messages

    with acting("campaigns.test_send") as (context, session, user):
        test = create_test_messages(
            session,
            campaign_id=campaign_id,
            to=to,
            actor=user,
            settings=context.settings,
            clock=context.clock,
            version_number=version,
        )
    context = load_context()
    try:
        failures = send_test_messages(context, test)
        with context.readers() as session:
            messages = session.scalars(
                sa_select(Message).where(Message.id.in_(test.message_ids)).order_by(Message.id)
            )
            rows = [
                {
                    "id": m.id,
                    "channel": m.channel,
                    "to": m.address,
                    "status": m.status.value,
                    "reason": m.reason,
                    "provider": m.provider,
                }
                for m in messages
            ]
    finally:
        context.close()
    failed = {f.provider for f in failures}
    if as_json:
        print_json(rows)
    else:
        shown = [r for r in rows if r["provider"] not in failed]  # the others get one line each below
        if shown:
            print_table(
                _("Test send"),
                [_("id"), _("channel"), _("to"), _("status"), _("reason")],
                [
                    [
                        r["id"],
                        r["channel"],
                        r["to"],
                        label(r["status"], "message_status"),
                        _(str(r["reason"])) if r["reason"] else "",
                    ]
                    for r in shown
                ],
            )
    for failure in failures:
        print_error(_provider_failure(context.settings, failure))
    if failures or any(r["status"] not in ("sent", "delivered") for r in rows):
        raise typer.Exit(1)


# What a provider's address points at, per channel, in the "check that … is running" advice.
_PEERS = {Channel.SMS: N_("SMSC"), Channel.EMAIL: N_("mail relay"), Channel.PUSH: N_("push service")}


def _provider_failure(settings: Settings, failure: ProviderFailure) -> str:
    """One line: which provider, where it is, what went wrong and what to check."""
    config = settings.provider(failure.provider)
    options = config.options()
    address = f"{options.get('host', '?')}:{options.get('port', '?')}"
    where = f"{config.type.upper()} {address}"
    if failure.configuration:
        check = _("Check the account settings under [providers.%(provider)s] in broadcaster.toml") % {
            "provider": failure.provider
        }
    else:
        peer = _PEERS.get(Channel(config.channel), N_("provider"))
        check = _(
            "Check that the %(peer)s at %(address)s is running and reachable from this machine (host and port "
            "under [providers.%(provider)s] in broadcaster.toml; `broadcaster sandbox` runs local ones for a "
            "rehearsal)"
        ) % {"peer": _(peer), "address": address, "provider": failure.provider}
    return _(
        "test send via provider %(provider)s (%(where)s) failed: %(reason)s. %(check)s. The test message was "
        "marked failed and will not be sent later."
    ) % {"provider": failure.provider, "where": where, "reason": failure.reason, "check": check}
