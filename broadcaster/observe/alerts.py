"""Alerts to the admins: each incident told once when it starts (after its grace), again every
``[alerts] remind_seconds`` while it lasts, and once when it is over (docs/supervision.md, "Alerts").

The mail goes straight through the engine's own e-mail adapter from the process that evaluates (the tick, or
``broadcaster metrics``), never through the broker: an alert must not wait in the queue it warns about. Each
alert is also a log line, and ``broadcaster_alerts_open`` counts the open ones. Evaluations run under the lease
``alerts``, so two evaluators never tell one incident twice."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from broadcaster import i18n
from broadcaster.clock import local
from broadcaster.context import AppContext
from broadcaster.db.models import User
from broadcaster.db.monitoring import AlertIncident
from broadcaster.i18n import gettext as _
from broadcaster.lease import run_exclusively
from broadcaster.observe.conditions import PROVIDER_DOWN, TITLES, Condition, current_conditions
from broadcaster.outbox.adapters import AdapterPool
from broadcaster.vocabulary import Role
from channels.base import OutboundMessage, SendOutcome

log = logging.getLogger(__name__)

LEASE = "alerts"
OPENED, REMINDER, RESOLVED = "opened", "reminder", "resolved"


@dataclass(frozen=True)
class Notice:
    """One mail to write: an incident's start, a reminder, or its end."""

    incident_id: int
    what: str
    kind: str
    subject: str
    detail: str
    opened_at: datetime


def evaluate_alerts(context: AppContext) -> list[Notice]:
    """Compare what is wrong now with the open incidents, and tell the admins what changed. Returns the
    notices sent (none when another process is evaluating)."""
    if not context.settings.alerts.enabled:
        return []
    if not current_conditions(context) and not _incidents_pending(context):
        return []  # the usual tick: nothing wrong, nothing to close, no write at all
    passes = run_exclusively(context.sessions, LEASE, lambda: _evaluate(context), clock=context.clock)
    return [notice for sent in passes or [] for notice in sent]


def _incidents_pending(context: AppContext) -> bool:
    """Whether an incident is open, or over and its end not told yet."""
    with context.readers() as session:
        pending = session.scalar(
            select(AlertIncident.id).where(AlertIncident.resolution_notified_at.is_(None)).limit(1)
        )
    return pending is not None


def _evaluate(context: AppContext) -> list[Notice]:
    conditions = {condition.key: condition for condition in current_conditions(context)}
    notices = _record(context, conditions)
    sent = []
    for notice in notices:
        _log(notice)
        if _mail(context, notice):
            _mark(context, notice)
            sent.append(notice)
    return sent


def _grace(context: AppContext, kind: str) -> timedelta:
    """How long a condition lasts before it is told: a provider's link may drop for a moment."""
    seconds = context.settings.health.provider_down_seconds if kind == PROVIDER_DOWN else 0.0
    return timedelta(seconds=seconds)


def _record(context: AppContext, conditions: dict[str, Condition]) -> list[Notice]:
    """Open an incident per new condition, close those whose condition is gone; the notices now due."""
    now = context.clock.now()
    remind = timedelta(seconds=context.settings.alerts.remind_seconds)
    notices: list[Notice] = []
    with context.sessions.begin() as session:
        open_rows = {
            row.key: row
            for row in session.scalars(select(AlertIncident).where(AlertIncident.resolved_at.is_(None)))
        }
        for key, condition in conditions.items():
            row = open_rows.get(key)
            if row is None:
                row = AlertIncident(
                    key=key,
                    kind=condition.kind,
                    detail=condition.detail,
                    opened_at=condition.since,
                    reminders=0,
                )
                session.add(row)
                session.flush()
            else:
                row.detail = condition.detail
            if row.notified_at is None and now - row.opened_at >= _grace(context, row.kind):
                notices.append(_notice(row, OPENED))
            elif row.notified_at is not None and now - row.notified_at >= remind:
                notices.append(_notice(row, REMINDER))
        for key, row in open_rows.items():
            if key not in conditions:
                row.resolved_at = now
                if row.notified_at is None:  # never told: nothing to take back
                    row.resolution_notified_at = now
        for row in session.scalars(
            select(AlertIncident).where(
                AlertIncident.resolved_at.is_not(None),
                AlertIncident.notified_at.is_not(None),
                AlertIncident.resolution_notified_at.is_(None),
            )
        ):
            notices.append(_notice(row, RESOLVED))
    return notices


def _notice(row: AlertIncident, what: str) -> Notice:
    subject = row.key.partition(":")[2]
    return Notice(row.id, what, row.kind, subject, row.detail, row.opened_at)


def _mark(context: AppContext, notice: Notice) -> None:
    now = context.clock.now()
    table = AlertIncident
    with context.sessions.begin() as session:
        if notice.what == OPENED:
            statement = update(table).where(table.id == notice.incident_id, table.notified_at.is_(None))
            session.execute(statement.values(notified_at=now))
        elif notice.what == REMINDER:
            statement = update(table).where(table.id == notice.incident_id)
            session.execute(statement.values(notified_at=now, reminders=table.reminders + 1))
        else:
            statement = update(table).where(
                table.id == notice.incident_id, table.resolution_notified_at.is_(None)
            )
            session.execute(statement.values(resolution_notified_at=now))


def _log(notice: Notice) -> None:
    line = "alert %s %s: %s"
    if notice.what == RESOLVED:
        log.info(line, notice.what, f"{notice.kind}:{notice.subject}", notice.detail)
    else:
        log.error(line, notice.what, f"{notice.kind}:{notice.subject}", notice.detail)


def admin_addresses(context: AppContext, session: Session) -> list[str]:
    """The addresses of the active admins listed in ``[alerts] admins``."""
    listed = context.settings.alerts.admins
    admins = session.scalars(select(User.login).where(User.role == Role.ADMIN, User.active.is_(True)))
    return sorted({listed[login] for login in admins if login in listed})


def alert_provider(context: AppContext) -> str | None:
    """``[alerts] provider``, else the first e-mail provider."""
    settings = context.settings
    if settings.alerts.provider:
        return settings.alerts.provider
    return next((name for name, p in sorted(settings.providers.items()) if p.channel == "email"), None)


def _mail(context: AppContext, notice: Notice) -> bool:
    """Send the notice to the admins; True when it went (or there is nobody to send it to: the log line
    and the metric then tell). False: try again at the next evaluation."""
    with context.readers() as session:
        addresses = admin_addresses(context, session)
    provider = alert_provider(context)
    if not addresses or provider is None:
        log.warning(
            "alert %s not mailed: no admin address in [alerts] admins or no e-mail provider", notice.kind
        )
        return True
    with i18n.using(i18n.choose(context.settings.org.language)):
        subject, body = compose(notice, org=context.settings.org.short_name)
    pool = AdapterPool(context.settings, clock=context.clock)
    try:
        adapter = pool.get(provider)
        results = adapter.send(
            [
                OutboundMessage(message_id=0, address=address, subject=subject, body=body)
                for address in addresses
            ]
        )
    except Exception as exc:  # a relay that cannot be opened: logged, and tried again at the next evaluation
        log.error("alert %s not mailed through %s: %s", notice.kind, provider, exc)
        return False
    finally:
        pool.close()
    failed = [r for r in results if r.outcome is not SendOutcome.SENT]
    for result in failed:
        log.error("alert %s not mailed through %s: %s", notice.kind, provider, result.error)
    return len(failed) < len(results)


def compose(notice: Notice, *, org: str) -> tuple[str, str]:
    """The subject and body of a notice, in the installation's language."""
    title = _(TITLES[notice.kind]) % {"subject": notice.subject}
    heads = {
        OPENED: _("[%(org)s] Alert: %(title)s"),
        REMINDER: _("[%(org)s] Still ongoing: %(title)s"),
        RESOLVED: _("[%(org)s] Resolved: %(title)s"),
    }
    subject = heads[notice.what] % {"org": org, "title": title}
    since = _("Since: %(at)s") % {"at": f"{local(notice.opened_at):%H:%M %d/%m/%Y}"}
    lines = [title, "", notice.detail, since]
    if notice.what == RESOLVED:
        lines.append(_("It is over; nothing more to do."))
    else:
        lines.append(_("Check with `broadcaster health`; this alert is sent again while it lasts."))
    return subject, "\n".join(lines) + "\n"
