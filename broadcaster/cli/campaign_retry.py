"""``broadcaster campaigns retry-failed``: a new run to the recipients whose messages in a run failed."""

from __future__ import annotations

import typer

from broadcaster.cli.common import CampaignArgument, JsonOption, acting, console, load_context, print_json
from broadcaster.cli.deployment import senders
from broadcaster.i18n import gettext as _
from broadcaster.outbox.retry_failed import start_retry_run
from broadcaster.tasks import CeleryEnqueuer, configure


def register(app: typer.Typer) -> None:
    app.command("retry-failed")(retry_failed)


def retry_failed(
    campaign_id: str = CampaignArgument,
    run: int | None = typer.Option(None, "--run", help="The run to retry (default: the campaign's latest)."),
    as_json: bool = JsonOption,
) -> None:
    """Send the approved version again, only to the recipients whose message in the run failed (permanent,
    technical or temporary failure), screened again by the consent policy. A new run; editors and admins, as
    send; audited. Retrying the same run again skips those a retry already reached."""
    with acting("campaigns.send") as (context, session, user):
        started = start_retry_run(
            session, campaign_id=campaign_id, source_run_id=run, actor=user, clock=context.clock
        )
    context = load_context()
    try:
        configure(context.settings)
        CeleryEnqueuer().plan_run(started.run_id)
    finally:
        context.close()
    if as_json:
        print_json({"run_id": started.run_id, "retries_run": started.source_run_id, "failed": started.failed})
        return
    console.print(
        _(
            "Retry run %(run)s (of run %(source)s): %(failed)s failed message(s) planned again, screened again "
            "by the consent policy; %(senders)s will send them."
        )
        % {
            "run": started.run_id,
            "source": started.source_run_id,
            "failed": started.failed,
            "senders": senders(context.settings),
        },
        highlight=False,
    )
