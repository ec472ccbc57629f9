"""The report of a period as one person (or API key) gets it: the CLI's ``report`` and the REST API share it.

Roles that may rebuild the rollups (``reports.rollup``) rebuild the open days first and store them; any other
reader (an auditor) gets figures as fresh, rebuilt in a transaction that is rolled back, so nothing is stored.
"""

from __future__ import annotations

from broadcaster.campaigns.plan import plan_from_settings
from broadcaster.context import AppContext
from broadcaster.db.models import User
from broadcaster.reporting.figures import build_report
from broadcaster.reporting.model import Report
from broadcaster.reporting.periods import Period
from broadcaster.reporting.rollups import rebuild, rebuild_in_steps
from broadcaster.users import PERMISSIONS


def report_for(context: AppContext, user: User, period: Period, *, document_number: str = "") -> Report:
    settings = context.settings
    plan = plan_from_settings(settings)
    if user.role in PERMISSIONS["reports.rollup"]:
        rebuild_in_steps(
            context.sessions,
            settings,
            start=period.start,
            end=period.end,
            clock=context.clock,
            actor=user.login,
        )
        with context.readers() as session:  # a snapshot taken after the rebuild
            return build_report(
                session, settings, period, plan, clock=context.clock, document_number=document_number
            )
    with context.sessions() as session:
        rebuild(session, settings, start=period.start, end=period.end, clock=context.clock)
        built = build_report(
            session, settings, period, plan, clock=context.clock, document_number=document_number
        )
        session.rollback()
    return built
