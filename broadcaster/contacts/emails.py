"""Normalise one e-mail address with ``email_validator`` (syntax only, no DNS) or say why it is unusable."""

from __future__ import annotations

import functools
import importlib
import re
import unicodedata
from typing import Final

import email_validator
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import ATEXT, CASE_INSENSITIVE_MAILBOX_NAMES, EMAIL_MAX_LENGTH

from broadcaster.i18n import N_, Translatable

__all__ = ["EmailError", "normalize_email"]


class EmailError(ValueError):
    """The text is not a usable e-mail address; ``reason`` is email_validator's explanation (English, shown
    translated when the catalogue knows it: ``i18n.translate``)."""

    def __init__(self, reason: str, *, raw: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw

    def __str__(self) -> str:
        return self.reason


# Two thirds of email_validator's time per address goes to the domain (IDNA, the special-use names), and a
# city's list has a few hundred domains for millions of addresses. The domain check is a pure function of its
# arguments (no DNS: that is the deliverability check, off here), so it is memoised where validate_email looks
# it up; a refused domain raises every time, as before. Bounded, so memory stays flat.
_DOMAIN_CHECK_CACHE = 4096
_library = importlib.import_module("email_validator.validate_email")
_DOMAIN_CHECK = "validate_email_domain_name"
if not hasattr(getattr(_library, _DOMAIN_CHECK), "cache_info"):
    setattr(
        _library,
        _DOMAIN_CHECK,
        functools.lru_cache(maxsize=_DOMAIN_CHECK_CACHE)(getattr(_library, _DOMAIN_CHECK)),
    )


def normalize_email(raw: str) -> str:
    """Return the normalised address (domain lower-cased) or raise ``EmailError``.

    Deliverability (MX lookup) is not checked: imports must work offline and a DNS hiccup must not reject a
    contacts file; bounces are handled by the e-mail channel (docs/domain.md §5). Non-ASCII *local parts* are
    refused (``allow_smtputf8=False``): they need SMTPUTF8 (RFC 6531) end to end, which common mailbox
    providers do not offer, and in a Vietnamese list "an.nguyễn@…" is a typing slip, not a real mailbox.
    Internationalised domains stay allowed and are returned in their Unicode form.
    """
    # NFKC first: full-width "＠" and "．" typed with a Vietnamese IME are common and must not fail the row.
    text = unicodedata.normalize("NFKC", raw).strip()
    if not text:
        raise EmailError(Translatable(N_("empty e-mail address")), raw=raw)
    plain = _plain_address(text)
    if plain is not None:
        return plain
    try:
        result = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise EmailError(_library_reason(str(exc)), raw=raw) from exc
    return result.normalized


# Nearly every address of a list is a plain ASCII dot-atom, one @-sign and a host name: for those, the steps
# validate_email takes (its per-character split, the local part's regex, the memoised domain check, the length
# checks) come down to the few below, with the same answer. Anything else, or any doubt, goes to the library,
# which also gives the reason of a refusal (tests/broadcaster/test_emails.py compares the two).
_PLAIN: Final = re.compile(rf"([{ATEXT}]+(?:\.[{ATEXT}]+)*)@([a-zA-Z0-9.-]+)")
_LOCAL_PART_MAX_LENGTH: Final = 64  # email_validator's strict mode refuses longer local parts


def _plain_address(text: str) -> str | None:
    """The address validate_email would return for ``text``, or None when ``text`` is not plain or is refused."""
    match = _PLAIN.fullmatch(text)
    if match is None or len(text) > EMAIL_MAX_LENGTH:
        return None
    local, domain_part = match.groups()
    if len(local) > _LOCAL_PART_MAX_LENGTH:
        return None
    if local.lower() in CASE_INSENSITIVE_MAILBOX_NAMES:
        local = local.lower()
    try:
        domain = getattr(_library, _DOMAIN_CHECK)(
            domain_part,
            test_environment=email_validator.TEST_ENVIRONMENT,
            globally_deliverable=email_validator.GLOBALLY_DELIVERABLE,
        )
    except EmailNotValidError:
        return None
    normalized: str = local + "@" + domain["domain"]
    if max(len(normalized.encode()), len(local) + 1 + len(domain["ascii_domain"])) > EMAIL_MAX_LENGTH:
        return None
    return normalized


# email_validator's explanations that a contacts file meets, so that they can be shown translated; those that
# end with the offending characters are matched on their beginning. Any other stays as the library says it.
_LIBRARY_REASONS = (
    N_("An email address must have an @-sign."),
    N_("There must be something before the @-sign."),
    N_("An email address cannot have two periods in a row."),
    N_("An email address cannot have a period and a hyphen next to each other."),
    N_("The email address contains an invalid character."),
    N_("The email address contains invalid characters before the @-sign."),
    N_("The part after the @-sign is not valid. It should have a period."),
    N_("The part after the @-sign is not valid. It is not within a valid top-level domain."),
    N_("The part after the @-sign is a special-use or reserved name that cannot be used with email."),
    N_("Internationalized characters before the @-sign are not supported."),
    N_("There can't be anything after the email address."),
)
_LIBRARY_REASONS_WITH_DETAIL = (
    N_("The email address contains invalid characters before the @-sign: %(detail)s"),
    N_("The part after the @-sign contains invalid characters: %(detail)s"),
    N_("Internationalized characters before the @-sign are not supported: %(detail)s"),
    N_("The email address contains unsafe characters: %(detail)s"),
)


def _library_reason(message: str) -> str:
    if message in _LIBRARY_REASONS:
        return Translatable(message)
    for template in _LIBRARY_REASONS_WITH_DETAIL:
        start = template.removesuffix("%(detail)s")
        if message.startswith(start):
            return Translatable(template, detail=message.removeprefix(start))
    return message
