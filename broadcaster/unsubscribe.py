"""Opaque opt-out tokens for List-Unsubscribe (RFC 8058): a message id and its HMAC, nothing personal.

The endpoint that receives the one-click POST (web UI / consent issue) verifies the token, finds the message,
and from it the address and campaign to opt out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

TAG_BYTES = 12  # 96-bit tag: unguessable, and the token stays short in a header


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
    """The message id the token was made for, or None when it is not one of ours."""
    number, _, tag = token.partition(".")
    if not number.isdigit() or not tag:
        return None
    message_id = int(number)
    return message_id if hmac.compare_digest(tag, _tag(secret, message_id)) else None
