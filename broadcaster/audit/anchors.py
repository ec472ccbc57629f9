"""Anchors: the chain head of each Da Nang day, exported for the auditor to keep outside the system, signed
with Ed25519 when ``[audit] signing_key`` is set (docs/audit.md).

An anchored (entry id, hash) commits to every entry up to that one. Someone with write access to the database
can rewrite the log and recompute every hash so that the chain verifies again, but cannot change the anchors
already handed out: the rewritten entry's hash no longer matches the anchor of its day or any later day.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.clock import LOCAL_TZ
from broadcaster.db.models import AuditEntry
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _

FORMAT = "broadcaster-audit-anchor/1"
ALGORITHM = "sha256-chain; ed25519 over the canonical JSON of the document without its signature"
_LOG = AuditEntry.__table__
_BATCH = 5_000


class AnchorError(UserError):
    """A key or anchor file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class DayHead:
    """The last entry of one Da Nang day."""

    day: date
    entry_id: int
    entry_hash: str
    at: datetime


@dataclass(frozen=True)
class Mismatch:
    """An anchored day whose entry the log no longer holds as anchored (``found_hash`` None: no such entry)."""

    day: DayHead
    found_hash: str | None
    found_at: datetime | None = None
    found_action: str | None = None


# --- days ------------------------------------------------------------------------------------------------


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, LOCAL_TZ).astimezone(UTC)


def day_heads(session: Session, first: date | None, last: date) -> list[DayHead]:
    """The last entry (highest position) of each Da Nang day from ``first`` (None: the first entry's day) to
    ``last``, both included; days without entries are left out."""
    query = select(_LOG.c.id, _LOG.c.at, _LOG.c.entry_hash).where(_LOG.c.at < _start_of(last + timedelta(1)))
    if first is not None:
        query = query.where(_LOG.c.at >= _start_of(first))
    heads: dict[date, DayHead] = {}
    after = 0
    while True:
        batch = session.execute(query.where(_LOG.c.id > after).order_by(_LOG.c.id).limit(_BATCH)).all()
        if not batch:
            break
        for row in batch:  # in position order: a later row of the same day replaces the earlier one
            day = row.at.astimezone(LOCAL_TZ).date()
            heads[day] = DayHead(day, row.id, row.entry_hash, row.at)
        after = batch[-1].id
    return [heads[day] for day in sorted(heads)]


def check_days(session: Session, days: Sequence[DayHead]) -> list[Mismatch]:
    """The anchored days whose entry is missing or hashes differently now, in day order."""
    found: dict[int, Any] = {}
    ids = sorted({day.entry_id for day in days})
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        query = select(_LOG.c.id, _LOG.c.entry_hash, _LOG.c.at, _LOG.c.action).where(_LOG.c.id.in_(chunk))
        found.update((row.id, row) for row in session.execute(query))
    mismatches = []
    for day in days:
        row = found.get(day.entry_id)
        if row is None:
            mismatches.append(Mismatch(day, None))
        elif row.entry_hash != day.entry_hash:
            mismatches.append(Mismatch(day, row.entry_hash, row.at, row.action))
    return mismatches


# --- keys ------------------------------------------------------------------------------------------------


def new_private_key() -> tuple[bytes, Ed25519PublicKey]:
    """A fresh Ed25519 key as PEM (PKCS#8, unencrypted: the file's mode protects it) and its public half."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, key.public_key()


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise AnchorError(
            _("[audit] signing_key: cannot read %(path)s: %(reason)s")
            % {"path": path, "reason": exc.strerror}
        ) from None
    except (ValueError, TypeError) as exc:
        raise AnchorError(
            _("[audit] signing_key: %(path)s is not an unencrypted PEM private key (%(error)s)")
            % {"path": path, "error": exc}
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AnchorError(
            _("[audit] signing_key: %(path)s holds a %(type)s key, not an Ed25519 key")
            % {"path": path, "type": type(key).__name__}
        )
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A PEM public key, or the base64 of the 32 raw bytes (as ``audit keygen`` prints it)."""
    try:
        data = path.read_bytes().strip()
    except OSError as exc:
        raise AnchorError(
            _("--public-key: cannot read %(path)s: %(reason)s") % {"path": path, "reason": exc.strerror}
        ) from None
    try:
        if data.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
            if isinstance(key, Ed25519PublicKey):
                return key
            raise AnchorError(
                _("--public-key: %(path)s holds a %(type)s key, not an Ed25519 key")
                % {"path": path, "type": type(key).__name__}
            )
        return raw_public_key(data.decode("ascii"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise AnchorError(
            _(
                "--public-key: %(path)s is neither a PEM public key nor the base64 of an Ed25519 key (%(error)s)"
            )
            % {"path": path, "error": exc}
        ) from None


def raw_public_key(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text.strip(), validate=True))


def public_key_b64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def fingerprint(key: Ed25519PublicKey) -> str:
    """``SHA256:`` and the hex SHA-256 of the raw public key: short enough to read out over the phone."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + hashlib.sha256(raw).hexdigest()[:32]


# --- documents -------------------------------------------------------------------------------------------


def _canonical(document: dict[str, Any]) -> bytes:
    unsigned = {key: value for key, value in document.items() if key != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def build_anchor(
    *, installation: str, generated_at: datetime, days: Iterable[DayHead], key: Ed25519PrivateKey | None
) -> dict[str, Any]:
    """The anchor document; signed over the canonical JSON of everything but ``signature`` when ``key``."""
    public = key.public_key() if key is not None else None
    document: dict[str, Any] = {
        "format": FORMAT,
        "installation": installation,
        "generated_at": generated_at.astimezone(UTC).isoformat(timespec="seconds"),
        "algorithm": ALGORITHM,
        "days": [
            {
                "day": day.day.isoformat(),
                "entry_id": day.entry_id,
                "entry_hash": day.entry_hash,
                "at": day.at.astimezone(UTC).isoformat(timespec="microseconds"),
            }
            for day in days
        ],
        "public_key": public_key_b64(public) if public is not None else None,
        "fingerprint": fingerprint(public) if public is not None else None,
    }
    signature = key.sign(_canonical(document)) if key is not None else None
    document["signature"] = base64.b64encode(signature).decode("ascii") if signature is not None else None
    return document


@dataclass(frozen=True)
class Anchor:
    path: Path
    document: dict[str, Any]
    days: list[DayHead]


def read_anchor(path: Path) -> Anchor:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AnchorError(
            _("--anchor: cannot read %(path)s: %(reason)s") % {"path": path, "reason": exc.strerror}
        ) from None
    except ValueError as exc:
        raise AnchorError(
            _("--anchor: %(path)s is not JSON (%(error)s)") % {"path": path, "error": exc}
        ) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise AnchorError(
            _("--anchor: %(path)s is not an audit anchor file (its format is not %(format)s)")
            % {"path": path, "format": FORMAT}
        )
    try:
        days = [
            DayHead(
                date.fromisoformat(item["day"]),
                int(item["entry_id"]),
                str(item["entry_hash"]),
                datetime.fromisoformat(item["at"]),
            )
            for item in document["days"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise AnchorError(
            _("--anchor: %(path)s: a day in 'days' is malformed (%(error)s)")
            % {"path": path, "error": repr(exc)}
        ) from None
    return Anchor(path, document, days)


# Signature states.
VALID, INVALID, UNSIGNED, UNCHECKED = "valid", "invalid", "unsigned", "unchecked"


def signature_state(document: dict[str, Any], key: Ed25519PublicKey | None) -> str:
    """``unsigned`` (no signature), ``unchecked`` (signed, but no key to check it with), ``valid`` or
    ``invalid`` (a changed document, or signed by another key)."""
    signature = document.get("signature")
    if not signature:
        return UNSIGNED
    if key is None:
        return UNCHECKED
    try:
        key.verify(base64.b64decode(signature, validate=True), _canonical(document))
    except (InvalidSignature, ValueError):
        return INVALID
    return VALID
