"""Normalise one e-mail address with ``email_validator`` (syntax only, no DNS) or say why it is unusable."""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

__all__ = ["EmailError", "normalize_email"]


class EmailError(ValueError):
    """The text is not a usable e-mail address; ``reason`` is email_validator's explanation."""

    def __init__(self, reason: str, *, raw: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw

    def __str__(self) -> str:
        return self.reason


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
        raise EmailError("empty e-mail address", raw=raw)
    try:
        result = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise EmailError(str(exc), raw=raw) from exc
    return result.normalized
