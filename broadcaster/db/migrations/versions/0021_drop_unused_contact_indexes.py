"""Drop ix_contacts_email and ix_contacts_full_name: no query reads them. E-mail addresses are looked up with
the case ignored (``ix_contacts_email_lower``, the contacts search included), and a name is searched as a
part of it (``ILIKE '%…%'``), which a B-tree cannot serve. Each index cost every imported contact an insert
into it.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01 03:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_contacts_full_name", table_name="contacts")
    op.drop_index("ix_contacts_email", table_name="contacts")


def downgrade() -> None:
    op.create_index("ix_contacts_email", "contacts", ["email"])
    op.create_index("ix_contacts_full_name", "contacts", ["full_name"])
