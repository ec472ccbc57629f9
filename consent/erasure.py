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

from consent.lookup import keys_among
from consent.models import SubjectErasure
from consent.suppression import address_key, keys_of

_PAGE = 5000  # hashes per look-up: one parameter whatever their number


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
    return erased_of(session, secret=secret, channel=channel, by_key=keys_of(channel, addresses))


def erased_of(
    session: Session, *, secret: str, channel: str, by_key: Mapping[str, Iterable[str]]
) -> set[str]:
    """``erased_among`` of addresses already grouped by key (``keys_of``). With no tombstone at all (the usual
    case) no hash is computed: one HMAC per address is most of the look-up's cost."""
    if not by_key:
        return set()
    if not secret:
        raise ErasureKeyMissing("no secret to key the subject hash with")
    if session.scalar(select(SubjectErasure.id).limit(1)) is None:
        return set()
    keyed = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    by_hash: dict[str, list[Iterable[str]]] = {}
    for key, addresses in by_key.items():
        digest = keyed.copy()
        digest.update(key.encode())
        by_hash.setdefault(digest.hexdigest(), []).append(addresses)
    wanted = list(by_hash)
    found: set[str] = set()
    for start in range(0, len(wanted), _PAGE):
        query = select(SubjectErasure.subject_hash)
        page = wanted[start : start + _PAGE]
        for digest_found in session.scalars(keys_among(session, query, SubjectErasure.subject_hash, page)):
            for addresses in by_hash[digest_found]:
                found.update(addresses)
    return found
