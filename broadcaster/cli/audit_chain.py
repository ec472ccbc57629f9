"""``broadcaster audit verify|anchor|keygen``: check the hash chain (and the anchors kept outside), export the
daily anchors, make a signing key (docs/audit.md). Verify and anchor only read the database."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.markup import escape

from broadcaster.audit import anchors
from broadcaster.audit.verify import verify_chain
from broadcaster.cli.audit_texts import describe_break, print_anchor
from broadcaster.cli.common import JsonOption, acting, console, print_json
from broadcaster.clock import local
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.reporting.periods import parse_date
from broadcaster.settings import Settings
from broadcaster.whole_files import writing_whole

AnchorOption = typer.Option(
    [],
    "--anchor",
    help="An anchor file from `broadcaster audit anchor` to check the log against; repeatable.",
)
PublicKeyOption = typer.Option(
    None,
    "--public-key",
    help="The Ed25519 public key (PEM, or base64 as keygen prints it) that signed the anchors "
    "(default: the public half of [audit] signing_key).",
)


def _verification_key(settings: Settings, public_key: Path | None) -> tuple[Ed25519PublicKey | None, str]:
    """The key anchors are checked with, and where it came from (said in the output)."""
    if public_key is not None:
        return anchors.load_public_key(public_key), f"--public-key {public_key}"
    if settings.audit.signing_key:
        path = settings.path(settings.audit.signing_key)
        return anchors.load_private_key(path).public_key(), _(
            "the public half of [audit] signing_key %(path)s"
        ) % {"path": path}
    return None, _("none (no --public-key, and [audit] signing_key is not set)")


def _anchor_report(anchor: anchors.Anchor, state: str, mismatches: list[anchors.Mismatch]) -> dict[str, Any]:
    return {
        "file": str(anchor.path),
        "days": len(anchor.days),
        "signature": state,
        "signed_fingerprint": anchor.document.get("fingerprint"),
        "mismatches": [
            {
                "day": m.day.day.isoformat(),
                "entry_id": m.day.entry_id,
                "anchored_hash": m.day.entry_hash,
                "found_hash": m.found_hash,
            }
            for m in mismatches
        ],
    }


def verify(
    anchor: list[Path] = AnchorOption, public_key: Path | None = PublicKeyOption, as_json: bool = JsonOption
) -> None:
    """Check the audit chain (and anchors kept outside); exit 0 when intact, 1 naming the first broken entry."""
    with acting("read", write=False) as (context, session, _user):
        read = [anchors.read_anchor(path) for path in anchor]
        key, key_source = _verification_key(context.settings, public_key) if read else (None, "")
        verdict = verify_chain(session)
        checked = [(item, anchors.check_days(session, item.days)) for item in read]
    reports = [
        _anchor_report(item, anchors.signature_state(item.document, key), found) for item, found in checked
    ]
    ok = verdict.ok and all(not r["mismatches"] and r["signature"] != anchors.INVALID for r in reports)
    if as_json:
        broken = verdict.broken
        print_json({
            "ok": ok,
            "entries": verdict.entries,
            "last_id": verdict.last_id,
            "last_hash": verdict.last_hash,
            "broken": None if broken is None else {
                "entry_id": broken.entry_id, "kind": broken.kind, "problem": broken.problem,
                "at": broken.at, "action": broken.action, "message": describe_break(broken),
            },
            "key": None if key is None else {"source": key_source, "fingerprint": anchors.fingerprint(key)},
            "anchors": reports,
        })  # fmt: skip
    else:
        if verdict.broken is None:
            console.print(
                _("The audit log is intact: %(entries)s entries; last entry #%(last)s, hash %(hash)s.")
                % {"entries": verdict.entries, "last": verdict.last_id, "hash": verdict.last_hash},
                highlight=False,
            )
        else:
            console.print(
                "[bold red]"
                + _("The audit log was tampered with")
                + "[/] "
                + _("at %(where)s. Checked %(entries)s entries.")
                % {"where": escape(describe_break(verdict.broken)), "entries": verdict.entries},
                highlight=False,
            )
        if read:
            fingerprint = f" ({anchors.fingerprint(key)})" if key is not None else ""
            console.print(
                _("Key that checks the signatures: %(source)s%(fingerprint)s.")
                % {"source": escape(key_source), "fingerprint": fingerprint},
                highlight=False,
            )
        for report, (_item, found) in zip(reports, checked, strict=True):
            print_anchor(report, found[0] if found else None)
    if not ok:
        raise typer.Exit(1)


def anchor(
    start: str | None = typer.Option(
        None, "--from", help="First day, YYYY-MM-DD (default: the first entry's)."
    ),
    end: str | None = typer.Option(None, "--to", help="Last day, YYYY-MM-DD (default: yesterday)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the anchor here (default: print it)."),
) -> None:
    """Export the chain head of each Da Nang day (signed with [audit] signing_key when set), for the auditor
    to keep outside the system."""
    with acting("read", write=False) as (context, session, _user):
        settings = context.settings
        key_path = settings.path(settings.audit.signing_key) if settings.audit.signing_key else None
        key = anchors.load_private_key(key_path) if key_path is not None else None
        now = context.clock.now()
        yesterday = local(now).date() - timedelta(days=1)
        last = parse_date(end, option="--to") if end is not None else yesterday
        if last > yesterday:
            raise UserError(
                _("--to: the day %(day)s has not ended; anchors can be made up to yesterday (%(yesterday)s)")
                % {"day": last, "yesterday": yesterday}
            )
        first = parse_date(start, option="--from") if start is not None else None
        if first is not None and first > last:
            raise UserError(
                _("--from: the day %(first)s is after --to (%(last)s)") % {"first": first, "last": last}
            )
        days = anchors.day_heads(session, first, last)
    document = anchors.build_anchor(installation=settings.org.name, generated_at=now, days=days, key=key)
    if out is None:
        print_json(document)
        return
    with writing_whole(out) as partial:
        partial.write_text(_json_text(document), encoding="utf-8")
    signed = (
        _("signed with %(path)s (%(fingerprint)s)")
        % {"path": key_path, "fingerprint": document["fingerprint"]}
        if key is not None
        else _("NOT SIGNED ([audit] signing_key is not set; make a key with `broadcaster audit keygen`)")
    )
    span = f"{days[0].day:%d/%m/%Y}–{days[-1].day:%d/%m/%Y}" if days else _("no day has entries")
    console.print(
        _("Wrote the anchor of %(days)s days (%(span)s) to %(out)s; %(signed)s.")
        % {"days": len(days), "span": span, "out": escape(str(out)), "signed": escape(signed)},
        highlight=False,
    )


def _json_text(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def keygen(
    out: Path = typer.Option(
        ..., "--out", "-o", help="Where to write the new private key (PEM); never replaced."
    ),
) -> None:
    """Make a new Ed25519 signing key for anchors (file mode 0600) and print its public half."""
    pem, public = anchors.new_private_key()
    try:
        descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UserError(
            _("--out: %(out)s already exists; a signing key is never overwritten, choose another file")
            % {"out": out}
        ) from None
    except OSError as exc:
        raise UserError(
            _("--out: cannot create %(out)s: %(reason)s") % {"out": out, "reason": exc.strerror}
        ) from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    public_pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    console.print(
        _("Made an Ed25519 signing key at %(out)s (mode 0600).") % {"out": escape(str(out))}, highlight=False
    )
    console.print(
        _("Public key (base64): %(key)s") % {"key": anchors.public_key_b64(public)}, highlight=False
    )
    console.print(
        _("Fingerprint: %(fingerprint)s") % {"fingerprint": anchors.fingerprint(public)}, highlight=False
    )
    console.print(public_pem, highlight=False, markup=False)
    console.print(_("Add to broadcaster.toml:"), highlight=False)
    console.print(f'[audit]\nsigning_key = "{out.resolve()}"', highlight=False, markup=False)
