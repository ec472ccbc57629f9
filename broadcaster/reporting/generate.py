"""Build the report of a period as its reader may: roles that may rebuild the rollups rebuild the open days
first (stored); anyone else — an auditor — gets figures as fresh from a rebuild in a transaction that is
rolled back, so nothing (no rollup, no newly frozen day) is stored. The CLI's ``report`` and the web's
reports page both call this."""

from __future__ import annotations

from broadcaster.campaigns.plan import plan_from_settings
from broadcaster.context import AppContext
from broadcaster.db.models import User
from broadcaster.reporting.figures import build_report
from broadcaster.reporting.model import Report
from broadcaster.reporting.periods import Period
from broadcaster.reporting.rollups import rebuild, rebuild_in_steps
from broadcaster.users import PERMISSIONS


def generate_report(
    context: AppContext, user: User, period: Period, *, number: str = "", store: bool = True
) -> Report:
    """``store=False``: never store the rebuild, whatever the role (a web GET, e.g. a chart image, changes
    nothing)."""
    settings = context.settings
    plan = plan_from_settings(settings)
    if store and user.role in PERMISSIONS["reports.rollup"]:
        rebuild_in_steps(
            context.sessions,
            settings,
            start=period.start,
            end=period.end,
            clock=context.clock,
            actor=user.login,
        )
        with context.readers() as session:  # a snapshot taken after the rebuild
            return build_report(session, settings, period, plan, clock=context.clock, document_number=number)
    with context.sessions() as session:
        rebuild(session, settings, start=period.start, end=period.end, clock=context.clock)
        built = build_report(session, settings, period, plan, clock=context.clock, document_number=number)
        session.rollback()
        return built
