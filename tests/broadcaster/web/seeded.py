"""One of each thing a route's path may name, for the route sweeps: a campaign (loaded), a contact, a run, a
message, an audit entry, a spare user and an API key per role. ``values`` maps a word of a path parameter's
name to an existing value (``routes.fill_path``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from broadcaster.api_keys import create_key
from broadcaster.campaigns.store import get_version
from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry, CampaignRun, Contact, ContactImport, User
from broadcaster.users import add_user
from broadcaster.vocabulary import Role, RunStatus
from tests.broadcaster.campaigns.steps import CAMPAIGN, load
from tests.broadcaster.conftest import ADMIN_LOGIN, write_campaign
from tests.broadcaster.pending_messages import pending

# A user only the sweeps' path parameters name: an admin route that deactivates or renames "{login}" acts on
# it, never on the people whose sessions the sweep uses.
SPARE_LOGIN = "nguoi_thu"


@dataclass
class Seeded:
    values: dict[str, Any]
    api_keys: dict[Role, str] = field(default_factory=dict)


def seed(context: AppContext, workdir: Path) -> Seeded:
    """Needs the ``people`` and ``contacts`` fixtures first (the campaign is loaded by ``bien_tap``)."""
    load(context, write_campaign(workdir))
    message_id = pending(context, "0905123456", campaign_id=CAMPAIGN)
    now = context.clock.now()
    keys: dict[Role, str] = {}
    with context.sessions.begin() as session:
        add_user(session, actor=ADMIN_LOGIN, login=SPARE_LOGIN, role=Role.EDITOR, clock=context.clock)
        run = CampaignRun(
            campaign_id=CAMPAIGN,
            version_id=get_version(session, CAMPAIGN, None).id,
            occurrence_at=now,
            trigger="manual",
            status=RunStatus.COMPLETED,  # finished: nothing for an engine to pick up
            created_at=now,
            finished_at=now,
        )
        session.add(run)
        session.flush()
        run_id = run.id
        contact_id = session.scalar(select(func.min(Contact.id)))
        import_id = session.scalar(select(func.min(ContactImport.id)))
        for role in Role:
            created = create_key(
                session,
                actor=ADMIN_LOGIN,
                name=f"sweep {role.value}",
                role=role,
                clock=context.clock,
                rate_per_minute=1_000_000,
            )
            keys[role] = created.secret
        # A spare key for the routes that act on one ({prefix}): revoking it must not cost a role its key.
        spare = create_key(
            session,
            actor=ADMIN_LOGIN,
            name="sweep spare",
            role=Role.AUDITOR,
            clock=context.clock,
            rate_per_minute=1,
        )
        prefix = spare.key.prefix
        entry_id = session.scalar(select(func.max(AuditEntry.id)))
        assert session.scalar(select(User.id).where(User.login == SPARE_LOGIN)) is not None
    # The first key found in a parameter's name wins: the specific words before the general ones.
    values: dict[str, Any] = {
        "campaign": CAMPAIGN,
        "message": message_id,
        "import": import_id,
        "contact": contact_id,
        "run": run_id,
        "entry": entry_id,
        "audit": entry_id,
        "login": SPARE_LOGIN,
        "user": SPARE_LOGIN,
        "prefix": prefix,
        "key": prefix,
        "version": 1,
        "number": 1,
    }
    return Seeded(values, keys)
