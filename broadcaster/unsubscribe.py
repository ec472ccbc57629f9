"""Opaque opt-out tokens for List-Unsubscribe (RFC 8058): a message id and its HMAC, nothing personal.

``broadcaster.unsubscribe_withdrawal`` turns a verified token into a withdrawal in the consent ledger; the
endpoint that receives the one-click POST calls it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from typing import Any

TAG_BYTES = 12  # 96-bit tag: unguessable, and the token stays short in a header
TAG_CHARS = 16  # TAG_BYTES in unpadded base64url

# The only spelling make_token writes: a positive id in ASCII digits without leading zeros, at most 19 digits
# (a 64-bit row id), then the tag. Anything else (non-ASCII digits, "007", 5,000 digits) is not a token of ours.
_TOKEN = re.compile(rf"([1-9][0-9]{{0,18}})\.([A-Za-z0-9_-]{{{TAG_CHARS}}})")


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _tag(secret: str, message_id: int) -> str:
    digest = hmac.new(secret.encode(), f"unsubscribe:{message_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:TAG_BYTES]).decode().rstrip("=")


def make_token(secret: str, message_id: int) -> str:
    return f"{message_id}.{_tag(secret, message_id)}"


def unsubscribe_link(provider_options: Mapping[str, Any], token: str) -> str | None:
    """The opt-out link written into a mail's text and HTML parts: the provider's https page (RFC 8058), else
    its opt-out mailbox (as in List-Unsubscribe); None when the provider has neither."""
    base = provider_options.get("unsubscribe_base_url")
    if base:
        return f"{str(base).rstrip('/')}/u/{token}"
    mailbox = provider_options.get("unsubscribe_mailto")
    if mailbox:
        return f"mailto:{mailbox}?subject=unsubscribe-{token}"
    return None


def verify_token(secret: str, token: str) -> int | None:
    """The message id the token was made for, or None when it is not one of ours (never raises)."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    message_id = int(match.group(1))
    return message_id if hmac.compare_digest(match.group(2), _tag(secret, message_id)) else None
