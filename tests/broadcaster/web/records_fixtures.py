"""Data the records pages' tests share: a contact whose name is markup, which every page must escape."""

from __future__ import annotations

from broadcaster.context import AppContext
from broadcaster.db.models import Contact

HOSTILE_NAME = "<img src=x onerror=alert(1)>"
HOSTILE_PHONE = "+84905111222"
HOSTILE_EMAIL = "hostile@example.vn"


def add_hostile_contact(context: AppContext) -> int:
    with context.sessions.begin() as session:
        contact = Contact(
            full_name=HOSTILE_NAME,
            phone=HOSTILE_PHONE,
            email=HOSTILE_EMAIL,
            segment="citizen",
            language="vi",
            tags=[],
            attributes={},
            created_at=context.clock.now(),
            updated_at=context.clock.now(),
        )
        session.add(contact)
        session.flush()
        return contact.id
