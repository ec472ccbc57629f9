"""What settings a process ran with: a fingerprint recorded at the start of each long-running process
(``run``, ``worker``, ``beat``, ``serve``, ``bounces``) when it differs from the last one (docs/audit.md).

The settings (providers included) are flattened to ``dotted.key → value``. Each key gets a digest: a plain
SHA-256 of its value, or, for a secret (a key ``mask_secrets`` would mask, or a URL's password), an HMAC
under the erasure key, so the entry proves a password changed without holding anything that would let anyone
guess it. The fingerprint is the SHA-256 of all the digests. The entry shows the values masked and, against
the previous entry, which keys changed: before and after, or for a secret only that it changed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.audit import record
from broadcaster.clock import Clock
from broadcaster.db.models import AuditEntry
from broadcaster.settings import Settings
from broadcaster.settings_sections import SECRET_MARKERS

ACTION = "settings.fingerprint"
MASKED = "********"
# A secret's digest key when no erasure key is configured (a digest is then only as strong as the secret).
FALLBACK_KEY = "broadcaster-settings"
# user:password@ in a URL (database, broker): the password is a secret even though the key is "url".
_URL_PASSWORD = re.compile(r"(?<=://)([^:/@]*):([^@/]+)@")


@dataclass(frozen=True)
class Flat:
    """One flattened setting: what the entry shows, and the digest that says whether it changed."""

    shown: Any
    digest: str
    secret: bool


def flatten(settings: Settings) -> dict[str, Flat]:
    """Every setting as ``dotted.key`` → ``Flat`` (lists are values)."""
    key = (settings.security.erasure_key() or FALLBACK_KEY).encode()
    flat: dict[str, Flat] = {}
    _walk(settings.model_dump(mode="json"), "", key, flat)
    return flat


def _walk(data: Mapping[str, Any], prefix: str, key: bytes, out: dict[str, Flat]) -> None:
    for name, value in data.items():
        path = f"{prefix}{name}"
        if isinstance(value, Mapping):
            _walk(value, f"{path}.", key, out)
        elif value and any(marker in name.lower() for marker in SECRET_MARKERS):
            out[path] = Flat(MASKED, _keyed(key, value), secret=True)
        elif isinstance(value, str) and _URL_PASSWORD.search(value):
            out[path] = Flat(_URL_PASSWORD.sub(rf"\1:{MASKED}@", value), _keyed(key, value), secret=True)
        else:
            out[path] = Flat(value, hashlib.sha256(_encoded(value)).hexdigest(), secret=False)


def _encoded(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _keyed(key: bytes, value: Any) -> str:
    return hmac.new(key, _encoded(value), hashlib.sha256).hexdigest()


def fingerprint(flat: Mapping[str, Flat]) -> str:
    return hashlib.sha256(_encoded(sorted((k, f.digest) for k, f in flat.items()))).hexdigest()


def record_fingerprint(
    sessions: sessionmaker[Session], settings: Settings, *, component: str, clock: Clock
) -> str | None:
    """Record this process's settings when they differ from the last recorded (or none was); returns the
    new fingerprint, or None when unchanged."""
    flat = flatten(settings)
    digest = fingerprint(flat)
    with sessions.begin() as session:
        last = session.scalars(
            select(AuditEntry).where(AuditEntry.action == ACTION).order_by(AuditEntry.id.desc()).limit(1)
        ).first()
        previous: Mapping[str, Any] = last.details if last is not None else {}
        if previous.get("fingerprint") == digest:
            return None
        record(
            session,
            actor=f"{component}@{socket.gethostname()}:{os.getpid()}",
            action=ACTION,
            subject_type="settings",
            subject_id=digest,
            at=clock.now(),
            details={
                "fingerprint": digest,
                "previous": previous.get("fingerprint"),
                "values": {k: f.shown for k, f in sorted(flat.items())},
                # A list, not a mapping: ``record`` masks every mapping value under a secret-looking key.
                "digests": [[k, f.digest] for k, f in sorted(flat.items())],
                "changed": _changes(previous, flat) if previous else [],
            },
        )
    return digest


def _changes(previous: Mapping[str, Any], flat: Mapping[str, Flat]) -> list[dict[str, Any]]:
    """Keys whose digest differs from the previous entry's (added and removed keys too)."""
    before_digests = {k: d for k, d in previous.get("digests", [])}
    before_values: Mapping[str, Any] = previous.get("values", {})
    changes: list[dict[str, Any]] = []
    for key in sorted(set(before_digests) | set(flat)):
        now = flat.get(key)
        if now is not None and before_digests.get(key) == now.digest:
            continue
        if now is not None and now.secret:
            changes.append({"key": key, "secret": "changed"})
        else:
            changes.append(
                {"key": key, "before": before_values.get(key), "after": now.shown if now else None}
            )
    return changes
