"""ix_contacts_email_lower: contacts by their e-mail address with the case ignored, as an import merges them (a
batch of rows at a time, docs/architecture.md §5 "Contacts file") and as the city app's devices and held
subjects look them up

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_contacts_email_lower", "contacts", [sa.text("lower(email)")])


def downgrade() -> None:
    op.drop_index("ix_contacts_email_lower", table_name="contacts")
