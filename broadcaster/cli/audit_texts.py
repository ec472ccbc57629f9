"""The wording of ``broadcaster audit verify``: the first broken entry, an anchor's signature and its first
day that no longer matches the log (English message ids, translated through the catalogue)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.markup import escape

from broadcaster.audit import anchors
from broadcaster.audit.verify import CONTENT, HEAD_AHEAD, HEAD_BEHIND, LINK, MISSING, Break
from broadcaster.cli.common import console
from broadcaster.clock import local
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _


def _when(moment: datetime | None) -> str:
    return f"{local(moment):%d/%m/%Y %H:%M:%S}" if moment is not None else _("unknown")


def describe_break(broken: Break) -> str:
    """The first broken entry, with its time in Da Nang and its action."""
    where = _("at %(time)s Da Nang time, action %(action)s") % {
        "time": _when(broken.at),
        "action": broken.action or _("unknown"),
    }
    if broken.kind == MISSING:
        last = broken.last_missing or broken.entry_id
        gone = (
            _("was deleted")
            if last == broken.entry_id
            else _("entries #%(first)s–#%(last)s were deleted") % {"first": broken.entry_id, "last": last}
        )
        return _("entry #%(id)s: %(gone)s from the log (the next remaining entry #%(next)s %(where)s)") % {
            "id": broken.entry_id,
            "gone": gone,
            "next": last + 1,
            "where": where,
        }
    problems = {
        CONTENT: N_("its content does not match its hash: it was changed after it was written"),
        LINK: N_(
            "it does not link to the entry before (prev_hash differs): an entry was deleted, inserted or "
            "reordered"
        ),
        HEAD_AHEAD: N_(
            "the chain head records this entry but the log no longer has it: the last entries were deleted"
        ),
        HEAD_BEHIND: N_(
            "the log has entries beyond the chain head, or the last entry's hash differs from the head: "
            "entries were inserted"
        ),
    }
    problem = _(problems[broken.kind]) if broken.kind in problems else broken.problem
    if broken.kind == HEAD_AHEAD:
        return _("entry #%(id)s: %(problem)s") % {"id": broken.entry_id, "problem": problem}
    return _("entry #%(id)s (%(where)s): %(problem)s") % {
        "id": broken.entry_id,
        "where": where,
        "problem": problem,
    }


_SIGNATURE_TEXT = {
    anchors.VALID: N_("valid"),
    anchors.INVALID: N_("NOT valid (the anchor file was changed, or signed with another key)"),
    anchors.UNSIGNED: N_("unsigned (the anchor file has no signature)"),
    anchors.UNCHECKED: N_("not checked (no public key: use --public-key)"),
}


def print_anchor(report: dict[str, Any], first: anchors.Mismatch | None) -> None:
    console.print(
        _("Anchor %(file)s: %(days)s days; signature: %(signature)s.")
        % {
            "file": escape(report["file"]),
            "days": report["days"],
            "signature": _(_SIGNATURE_TEXT[report["signature"]]),
        },
        highlight=False,
    )
    if first is None:
        console.print("  " + _("Every day in the anchor matches the log."), highlight=False)
        return
    day = f"{first.day.day:%d/%m/%Y}"
    if first.found_hash is None:
        what = _("is no longer in the log")
    else:
        what = _(
            "now has hash %(found)s… instead of %(anchored)s… as when anchored (at %(time)s, action %(action)s)"
        ) % {
            "found": first.found_hash[:16],
            "anchored": first.day.entry_hash[:16],
            "time": _when(first.found_at),
            "action": first.found_action,
        }
    console.print(
        "  "
        + _("Day %(day)s: entry #%(id)s %(what)s; %(count)s days do not match.")
        % {"day": day, "id": first.day.entry_id, "what": what, "count": len(report["mismatches"])},
        highlight=False,
    )
