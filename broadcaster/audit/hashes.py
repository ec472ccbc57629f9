"""The hashes that stand for personal data in audit entries and in messages after retention (docs/audit.md).

An address is named by its keyed hash (HMAC-SHA256 of the address key under ``[security] subject_key``, the
key erasure tombstones use): whoever holds the key can find a person's entries from a phone number or an
e-mail address, nobody else can turn a hash back into one. Content is named by its plain SHA-256: it is the
same for every recipient of a campaign and proves what was sent, not to whom.
"""

from __future__ import annotations

import hashlib
import json

from consent.erasure import subject_hash


def address_hash(key: str, channel: str, address: str) -> str | None:
    """The keyed hash of ``address`` on ``channel``; None when the installation has no key configured."""
    if not key:
        return None
    return subject_hash(key, channel, address)


def content_hash(subject: str | None, body: str) -> str:
    """SHA-256 over the subject (None for SMS) and the body as sent."""
    encoded = json.dumps([subject, body], ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()
