"""The error tree every adapter raises or reports, so the engine decides retries in one place.

::

    ChannelError
    ├── ConfigurationError      settings or account problem: stop the provider, pause its campaigns
    ├── TransientError          worth retrying later
    │   ├── Throttled           the provider asked us to slow down (SMPP 0x58/0x14, HTTP 429)
    │   └── ConnectionLost      the provider provably did not get the message (failed before the write)
    ├── PermanentError          this message will never go through as it is
    │   └── RecipientRejected   the address itself is bad: also suppress it
    ├── OutcomeUnknown          the provider may have the message: never resend blindly
    └── Withheld                the engine refused the hand-over (on_handing): never written, nothing to record

Each error carries the provider's own answer (code and text) so that logs and the audit trail can show it.
"""

from __future__ import annotations


class ChannelError(Exception):
    """Base class: ``code`` and ``detail`` are the provider's own answer, kept verbatim."""

    def __init__(self, message: str, *, code: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.detail = detail

    def __str__(self) -> str:
        text = super().__str__()
        if self.code is not None:
            text = f"{text} [{self.code}]"
        if self.detail:
            text = f"{text}: {self.detail}"
        return text


class ConfigurationError(ChannelError):
    """Wrong credentials, sender, brandname or policy: retrying cannot help until a person fixes settings."""


class TransientError(ChannelError):
    """Try again later; ``retry_after`` (seconds) is the provider's hint when it gave one."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        detail: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, detail=detail)
        self.retry_after = retry_after


class Throttled(TransientError):
    """The provider is rate limiting us: wait and slow the bucket."""


class ConnectionLost(TransientError):
    """The connection failed before the message was written: safe to resend."""


class PermanentError(ChannelError):
    """The provider refused this message for good."""


class RecipientRejected(PermanentError):
    """The address does not exist or cannot receive: the message fails and the address is suppressed."""


class OutcomeUnknown(ChannelError):
    """The write happened but no answer came back: the provider may or may not have the message."""


class Withheld(ChannelError):
    """The engine's ``on_handing`` did not let the message go (it was stopped meanwhile, e.g. an opt-out):
    nothing of it was written, and the engine records nothing for it (its row already says why)."""
