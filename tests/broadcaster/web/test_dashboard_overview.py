"""The dashboard's lean overview (last runs counted in one query) says what ``campaign_status`` says of the
same campaign: the figures a campaign's page and ``broadcaster status`` show."""

from __future__ import annotations

from pathlib import Path

from broadcaster.contacts.importer import ImportReport
from broadcaster.context import AppContext
from broadcaster.outbox.sending import start_manual_run
from broadcaster.status import campaign_status, runs_message_counts
from broadcaster.web.ui.dashboard import _overview
from tests.broadcaster.web.campaign_setup import CAMPAIGN, approve_campaign, load_campaign, plan, user_named


def _run(context: AppContext) -> int:
    with context.sessions.begin() as session:
        return start_manual_run(
            session, campaign_id=CAMPAIGN, actor=user_named(session, "bien_tap"), clock=context.clock
        )


def test_the_overview_counts_the_last_run_as_the_campaign_status_does(
    context: AppContext, workdir: Path, people: object, contacts: ImportReport
) -> None:
    load_campaign(context, workdir)
    with context.readers() as session:
        [before] = [row for row in _overview(session) if row["id"] == CAMPAIGN]
    assert before["runs"] == []
    assert before["approved_version"] is None
    approve_campaign(context)
    run_id = _run(context)
    plan(context, run_id)
    with context.readers() as session:
        [row] = [row for row in _overview(session) if row["id"] == CAMPAIGN]
        full = campaign_status(session, CAMPAIGN)
        assert runs_message_counts(session, []) == {}
    last = full["runs"][-1]
    assert row["runs"] == [{"id": last["id"], "status": last["status"], "messages": last["messages"]}]
    assert sum(n for per in row["runs"][0]["messages"].values() for n in per.values()) > 0
    assert {k: row[k] for k in ("id", "title", "state", "approved_version")} == {
        k: full[k] for k in ("id", "title", "state", "approved_version")
    }
