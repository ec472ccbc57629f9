"""campaign_runs.plan_touched_at: when a planner last stored a page of a run being planned, so the tick asks
the workers again for a run whose plan task a broker refused or a dead worker lost

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30 20:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broadcaster.db.types

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


# A plain ADD/DROP COLUMN: SQLite's batch mode would copy the table and drop the old one, which the foreign
# keys of messages and chunks refuse once there are runs.
def upgrade() -> None:
    op.add_column(
        "campaign_runs",
        sa.Column("plan_touched_at", broadcaster.db.types.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("campaign_runs", "plan_touched_at")
