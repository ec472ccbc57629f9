"""The consent room's refusals in the current language.

``consent/`` may not import ``broadcaster`` (nor its catalogue), so its errors keep their English template and
values (``ConsentError.template``, ``.values``; ``UnknownPurpose`` likewise) and are translated here, where they
are shown: the CLI's consent commands, the contact page, the API's problem ``detail`` (docs/i18n.md).
"""

from __future__ import annotations

from broadcaster.i18n import N_, translate
from broadcaster.i18n import gettext as _

# The templates of consent/ledger.py and consent/policy.py, for the catalogue.
CONSENT_TEXTS = (
    N_("notice version %(version)s is not valid: use letters, digits, '.', '_', '-'"),
    N_("notice version %(version)s does not exist: %(path)s is missing"),
    N_("unknown channel %(channel)s; use one of: %(known)s"),
    N_("unknown purpose %(purpose)s; use one of: %(known)s"),
    N_("unknown source %(source)s; use one of: %(known)s"),
    N_("a change made by staff needs a reason"),
    N_("recorded_by must name the user or component that records the event"),
    N_("unknown purpose %(purpose)s (known purposes: %(known)s)"),
)

# consent.policy.REASON_TEXTS: why a message was not sent, stored in English with it, translated where shown.
EXCLUSION_TEXTS = (
    N_("address suppressed (earlier hard failure or refusal)"),
    N_("opted out of this channel"),
    N_("no prior consent"),
    N_("on the do-not-call register"),
    N_("excluded by the campaign's list"),
)


def consent_message(exc: BaseException) -> str:
    """``exc``'s text in the current language: from its template when it carries one (the consent room's
    errors), else its ``i18n.Translatable`` reason (a phone number's or an address's), else as it is."""
    template = getattr(exc, "template", None)
    values = getattr(exc, "values", None)
    if isinstance(template, str) and isinstance(values, dict):
        return _(template) % values if values else _(template)
    return translate(getattr(exc, "reason", None) or str(exc))
