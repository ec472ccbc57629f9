"""What is wrong now, as alert conditions: each one a key (its kind and subject), since when, and a line.

Kinds: ``config_error`` (a provider's configuration error paused its campaigns), ``campaign_paused`` (the
engine paused a campaign over its failure threshold), ``provider_down`` (an SMPP account without a bound
gateway, a mail relay that does not answer), ``backlog`` (the oldest due queued message waits past
``[health] backlog_unhealthy_seconds``), ``beat_stopped`` (no tick for ``[health] beat_stale_seconds``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _
from broadcaster.observe import facts
from broadcaster.observe.health import State, run_checks
from broadcaster.observe.heartbeat import last_beat

CONFIG_ERROR = "config_error"
CAMPAIGN_PAUSED = "campaign_paused"
PROVIDER_DOWN = "provider_down"
BACKLOG = "backlog"
BEAT_STOPPED = "beat_stopped"
KINDS = (CONFIG_ERROR, CAMPAIGN_PAUSED, PROVIDER_DOWN, BACKLOG, BEAT_STOPPED)
# What each kind is called in the alert's subject (translated when the mail is written).
TITLES = {
    CONFIG_ERROR: N_("configuration error of provider %(subject)s"),
    CAMPAIGN_PAUSED: N_("campaign %(subject)s paused by the engine"),
    PROVIDER_DOWN: N_("provider %(subject)s down"),
    BACKLOG: N_("messages wait too long"),
    BEAT_STOPPED: N_("the tick (beat) stopped"),
}
# broadcaster.outbox.recording pauses a provider's campaigns with "provider NAME: configuration error: …".
_CONFIG_REASON = re.compile(r"provider (?P<provider>\S+): configuration error: ")
_PAUSE_SEPARATOR = "|"  # broadcaster.campaigns.workflow: paused_reason is "<state before>|<reason>"


@dataclass(frozen=True)
class Condition:
    kind: str
    subject: str
    detail: str
    since: datetime

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject}"


def current_conditions(context: AppContext) -> list[Condition]:
    """Everything an admin should hear of now. The tick's own staleness is judged from its heartbeat, so an
    evaluation outside the tick (``broadcaster metrics``) sees a stopped beat."""
    now = context.clock.now()
    found: list[Condition] = []
    with context.readers() as session:
        paused = facts.paused_campaigns(session)
        pausers = _engine_paused(session, [campaign for campaign, _reason in paused])
        beat = last_beat(session)
        backlog = facts.backlog(session, now)
    config_errors: dict[str, tuple[str, datetime]] = {}
    for campaign, stored in paused:
        reason = (stored or "").partition(_PAUSE_SEPARATOR)[2]
        at = pausers.get(campaign)
        if at is None:
            continue  # paused by a person: nothing to tell
        match = _CONFIG_REASON.search(reason)
        if match is not None:
            config_errors.setdefault(match["provider"], (reason, at))
        else:
            found.append(Condition(CAMPAIGN_PAUSED, campaign, reason, at))
    found.extend(Condition(CONFIG_ERROR, p, reason, at) for p, (reason, at) in sorted(config_errors.items()))
    for check in run_checks(context, ("providers",)):
        if check.state is not State.OK:
            found.append(Condition(PROVIDER_DOWN, check.name, check.detail, now))
    limits = context.settings.health
    if backlog.since is not None and backlog.age_seconds(now) >= limits.backlog_unhealthy_seconds:
        detail = _("oldest due queued message waits %(seconds)s s") % {
            "seconds": round(backlog.age_seconds(now))
        }
        found.append(Condition(BACKLOG, "outbox", detail, backlog.since))
    if beat is not None and (now - beat[0]).total_seconds() > limits.beat_stale_seconds:
        detail = _("last tick at %(at)s on %(holder)s") % {
            "at": beat[0].isoformat(timespec="seconds"),
            "holder": beat[1],
        }
        found.append(Condition(BEAT_STOPPED, "tick", detail, beat[0]))
    return found


def _engine_paused(session: Session, campaigns: list[str]) -> dict[str, datetime]:
    """The campaigns among ``campaigns`` whose last pause was the engine's, with when it paused them."""
    if not campaigns:
        return {}
    rows = session.execute(
        select(AuditEntry.subject_id, AuditEntry.actor, AuditEntry.at)
        .where(
            AuditEntry.action == "campaign.pause",
            AuditEntry.subject_type == "campaign",
            AuditEntry.subject_id.in_(campaigns),
        )
        .order_by(AuditEntry.id)
    )
    last: dict[str, tuple[str, datetime]] = {}
    for campaign, actor, at in rows:
        last[campaign] = (actor, at)
    return {campaign: at for campaign, (actor, at) in last.items() if actor == "engine"}
