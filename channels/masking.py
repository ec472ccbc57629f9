"""The one address masker: how log lines and masked listings show a phone number or an e-mail address.

It lives in ``channels`` because adapters log addresses too and ``channels`` never imports ``broadcaster``;
``broadcaster.masking`` re-uses it for its listings and log lines (docs/style.md, personal data).
"""

from __future__ import annotations

import re

# Addresses inside free text (a provider's reply quoting the recipient, in a message's ``reason``).
_EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE_IN_TEXT = re.compile(r"\+?\d{9,15}")


def mask_phone(phone: str | None) -> str | None:
    """``+84901234456`` → ``090****456``: Vietnamese numbers in their national form, first 3 and last 3 kept."""
    if not phone:
        return phone
    shown = "0" + phone[3:] if phone.startswith("+84") else phone
    if len(shown) <= 6:
        return "*" * len(shown)
    return shown[:3] + "*" * (len(shown) - 6) + shown[-3:]


def mask_email(email: str | None) -> str | None:
    """``nguyen.an@danang.gov.vn`` → ``n***@danang.gov.vn``: the domain says the organisation, not the person."""
    if not email:
        return email
    local, at, domain = email.rpartition("@")
    if not at:
        return email[:1] + "***"
    return f"{local[:1]}***@{domain}"


def mask_address(address: str | None) -> str | None:
    """A message's address, an e-mail or a phone number."""
    if address and "@" in address:
        return mask_email(address)
    return mask_phone(address)


def mask_text(text: str | None) -> str | None:
    """Free text with every e-mail address and phone number in it masked."""
    if not text:
        return text
    text = _EMAIL_IN_TEXT.sub(lambda found: mask_email(found.group()) or "", text)
    return _PHONE_IN_TEXT.sub(lambda found: mask_phone(found.group()) or "", text)
