"""Erasure tombstones: a person erased at their request is still recognised, by a keyed hash only.

A data-subject erasure (PDP Law, docs/domain.md §1.2) removes the address everywhere, but a refusal must
outlive it: without a trace, the next contacts import would message someone who opted out. The tombstone keeps
HMAC-SHA256(secret, address_key), which matches the same address again without storing it. The engine is
never imported; the secret and the time come from the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.models import SubjectErasure
from consent.suppression import address_key

_PAGE = 500


class ErasureKeyMissing(ValueError):
    """No secret to key the hash with: an unkeyed hash of a phone number is reversed by trying them all."""


def subject_hash(secret: str, channel: str, address: str) -> str:
    """The hex HMAC-SHA256 of the address's key (E.164, or the e-mail lower-cased) under ``secret``."""
    if not secret:
        raise ErasureKeyMissing("no secret to key the subject hash with")
    key = address_key(channel, address)
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()


def record_erasure(
    session: Session,
    *,
    reference: str,
    subject_hash: str,
    summary: Mapping[str, int],
    erased_by: str,
    at: datetime,
) -> SubjectErasure:
    """Add the tombstone in the caller's transaction (the erasure itself commits with it)."""
    tombstone = SubjectErasure(
        reference=reference,
        subject_hash=subject_hash,
        summary=json.dumps(dict(summary), sort_keys=True),
        erased_by=erased_by,
        erased_at=at,
    )
    session.add(tombstone)
    session.flush()
    return tombstone


def erasures_of(session: Session, subject_hash: str) -> list[SubjectErasure]:
    """Every tombstone left for the hash, oldest first."""
    query = (
        select(SubjectErasure)
        .where(SubjectErasure.subject_hash == subject_hash)
        .order_by(SubjectErasure.erased_at, SubjectErasure.id)
    )
    return list(session.scalars(query))


def erased_among(session: Session, *, secret: str, channel: str, addresses: Iterable[str]) -> set[str]:
    """The subset of ``addresses`` (as given) whose owner was erased on request: planning treats them as
    having withdrawn (one query per page of addresses)."""
    by_hash: dict[str, set[str]] = {}
    for address in addresses:
        by_hash.setdefault(subject_hash(secret, channel, address), set()).add(address)
    wanted = list(by_hash)
    found: set[str] = set()
    for start in range(0, len(wanted), _PAGE):
        page = wanted[start : start + _PAGE]
        for digest in session.scalars(
            select(SubjectErasure.subject_hash).where(SubjectErasure.subject_hash.in_(page))
        ):
            found.update(by_hash[digest])
    return found
