"""Classify SMTP replies and aiosmtplib exceptions into the channel error tree, by transaction stage.

Sources: RFC 5321 §4.2.1 (reply classes: 2yz done, 4yz transient negative, 5yz permanent negative) and
§4.2.5 (a reply to the final dot is the only proof the server took responsibility for the message);
RFC 3463 (enhanced status codes ``class.subject.detail``, subjects: 1 addressing, 2 mailbox, 3 mail system,
4 network/routing, 5 protocol, 6 content, 7 security/policy) and RFC 2034 §4 (the enhanced code leads the
reply text and its class must equal the reply class).

The rules, first match wins (each row is tested in ``tests/channels/test_smtp_adapter.py``)::

    reply                        stage        class               why
    ---------------------------  -----------  ------------------  --------------------------------------------
    2yz / 3yz                    any          (none)              success
    4yz or 5yz with x.2.2        any          TransientError      RFC 3463 §3.3: mailbox full "should be used
                                                                  as a persistent transient failure"; do not
                                                                  suppress a citizen who clears it tomorrow
    552 without enhanced code    RCPT         TransientError      RFC 5321 §4.2.2: 552 = storage allocation
                                                                  exceeded, the same quota case
    421, or 4yz with 4.7.x       any          Throttled           421 closes the channel (RFC 5321 §3.8);
                                                                  relays rate-limit with 421 and 4.7.x
    other 4yz                    any          TransientError      RFC 5321 §4.2.1 transient negative
    5yz with 5.5.x or 5.7.x      any          ConfigurationError  protocol (our client) or security/policy:
                                                                  relay denied, auth, SPF/DKIM, 5.7.515
    5yz                          CONNECT/MAIL ConfigurationError  greeting, EHLO, AUTH or sender refused: no
                                                                  message of this provider can go through
    5yz                          DATA         ConfigurationError  content refused in a one-recipient
                                                                  transaction: the campaign version is bad
    550/551/553 with 5.1.1,      RCPT         RecipientRejected   address-level (RFC 3463 §3.2: X.1.1 bad
    5.1.10, 5.2.1 or no code                                      mailbox, X.1.10 null MX; X.2.1 disabled)
    other 5yz                    RCPT         PermanentError      e.g. 5.1.2 bad destination system, maybe a
                                                                  DNS hiccup: fail it, do not suppress
    anything else (1yz, -1)      before body  TransientError      a confused server: safe to try again
    anything else                after body   OutcomeUnknown      the server may have queued the message

Exceptions that carry no reply (connection refused or reset, timeouts): before the message body was written
they are ``ConnectionLost`` (safe to resend); after it was written and before the final reply they are
``OutcomeUnknown`` (RFC 5321 §4.2.5 / §6.1: the server may have accepted it and a resend would duplicate it).
"""

from __future__ import annotations

import enum
import re
import ssl

import aiosmtplib

from channels.errors import (
    ChannelError,
    ConfigurationError,
    ConnectionLost,
    OutcomeUnknown,
    PermanentError,
    RecipientRejected,
    Throttled,
    TransientError,
)

__all__ = [
    "Stage",
    "classify_exception",
    "classify_reply",
    "parse_enhanced_code",
]


class Stage(enum.StrEnum):
    """Where in the SMTP transaction (RFC 5321 §3.3) a reply or failure happened."""

    CONNECT = "connect"  # greeting, EHLO/HELO, STARTTLS, AUTH
    MAIL = "mail"  # MAIL FROM
    RCPT = "rcpt"  # RCPT TO
    DATA = "data"  # the DATA command and the reply to the final "." (after the body)


# RFC 2034 §4: "status-code SP" at the start of the text, e.g. "5.1.1 <x@y>: Recipient address rejected".
# Each of subject and detail is 1-3 digits (RFC 3463 §2).
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})(?!\d)")

# RFC 3463 address-level codes that prove the address itself is bad (docs/architecture.md §4); a DSN with
# one of them is a hard bounce (channels/email/dsn.py).
ADDRESS_CODES = frozenset({"5.1.1", "5.1.10", "5.2.1"})
_ADDRESS_REPLIES = frozenset({550, 551, 553})


def parse_enhanced_code(text: str | None, *, reply_code: int | None = None) -> str | None:
    """The RFC 3463 code at the start of ``text``; ignored when its class differs from the reply's."""
    if not text:
        return None
    match = _ENHANCED.match(text)
    if match is None:
        return None
    if reply_code is not None and str(reply_code)[:1] != match.group(1):
        return None  # RFC 2034 §4: the classes must agree, otherwise the code is not trustworthy
    return ".".join(match.groups())


def classify_reply(*, stage: Stage, code: int, text: str, after_body: bool = False) -> ChannelError | None:
    """Map one reply to an error (``None`` for success). ``after_body``: the reply to the final dot."""
    if 200 <= code < 400:
        return None
    enhanced = parse_enhanced_code(text, reply_code=code)
    detail = text.strip() or None
    label = f"SMTP {code} at {stage.value.upper()}"
    str_code = str(code) if enhanced is None else f"{code} {enhanced}"
    subject = enhanced.split(".")[1] if enhanced else None

    if 400 <= code < 600 and enhanced is not None and enhanced[2:] == "2.2":
        return TransientError(f"{label}: mailbox full", code=str_code, detail=detail)
    if code == 552 and enhanced is None and stage is Stage.RCPT:
        return TransientError(f"{label}: storage allocation exceeded", code=str_code, detail=detail)
    if 400 <= code < 500:
        if code == 421 or subject == "7":
            return Throttled(f"{label}: the server asks us to slow down", code=str_code, detail=detail)
        return TransientError(f"{label}: temporary failure", code=str_code, detail=detail)
    if 500 <= code < 600:
        if subject in {"5", "7"}:
            return ConfigurationError(f"{label}: protocol or policy refusal", code=str_code, detail=detail)
        if stage in (Stage.CONNECT, Stage.MAIL):
            return ConfigurationError(f"{label}: session or sender refused", code=str_code, detail=detail)
        if stage is Stage.DATA:
            return ConfigurationError(f"{label}: the content is refused", code=str_code, detail=detail)
        if code in _ADDRESS_REPLIES and (enhanced is None or enhanced in ADDRESS_CODES):
            return RecipientRejected(f"{label}: the address is rejected", code=str_code, detail=detail)
        return PermanentError(f"{label}: permanent failure", code=str_code, detail=detail)
    if after_body:
        return OutcomeUnknown(f"{label}: unexpected reply after the body", code=str_code, detail=detail)
    return TransientError(f"{label}: unexpected reply", code=str_code, detail=detail)


def classify_exception(exc: BaseException, *, stage: Stage, body_written: bool = False) -> ChannelError:
    """Translate an aiosmtplib (or socket) exception raised during ``stage``.

    ``body_written`` is true once the message octets were handed to the transport: from then on a lost
    connection or a timeout leaves the outcome unknown.
    """
    if isinstance(exc, ChannelError):
        return exc
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        # One recipient per transaction, so "all refused" is that recipient's refusal.
        first = exc.recipients[0] if exc.recipients else None
        if first is not None:
            return _reply_error(stage=Stage.RCPT, code=first.code, text=first.message)
        return PermanentError("SMTP recipients refused")
    if isinstance(exc, aiosmtplib.SMTPResponseException) and not isinstance(
        exc, aiosmtplib.SMTPConnectResponseError
    ):
        if isinstance(exc, aiosmtplib.SMTPSenderRefused):
            stage = Stage.MAIL
        elif isinstance(exc, aiosmtplib.SMTPRecipientRefused):
            stage = Stage.RCPT
        elif isinstance(exc, aiosmtplib.SMTPDataError):
            stage = Stage.DATA
        elif isinstance(exc, aiosmtplib.SMTPHeloError | aiosmtplib.SMTPAuthenticationError):
            stage = Stage.CONNECT
        return _reply_error(stage=stage, code=exc.code, text=exc.message, after_body=body_written)
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        # A negative greeting (RFC 5321 §3.1: 554 = no service here, 421 = try later).
        return _reply_error(stage=Stage.CONNECT, code=exc.code, text=exc.message)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConfigurationError("TLS certificate of the relay cannot be verified", detail=str(exc))
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return ConfigurationError("the relay lacks a required extension", detail=exc.message)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        if body_written:
            return OutcomeUnknown(f"SMTP timeout at {stage.value.upper()} after the body", detail=str(exc))
        return ConnectionLost(f"SMTP timeout at {stage.value.upper()} before the body", detail=str(exc))
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError | OSError):
        if body_written:
            return OutcomeUnknown(
                f"SMTP connection lost at {stage.value.upper()} after the body", detail=str(exc)
            )
        return ConnectionLost(
            f"SMTP connection lost at {stage.value.upper()}, before the body", detail=str(exc)
        )
    if isinstance(exc, aiosmtplib.SMTPException):
        if body_written:
            return OutcomeUnknown(f"SMTP failure at {stage.value.upper()} after the body", detail=exc.message)
        return TransientError(f"SMTP failure at {stage.value.upper()}", detail=exc.message)
    raise TypeError(f"not an SMTP failure: {exc!r}") from exc


def _reply_error(*, stage: Stage, code: int, text: str, after_body: bool = False) -> ChannelError:
    error = classify_reply(stage=stage, code=code, text=text, after_body=after_body)
    if error is None:  # a 2yz/3yz carried by an exception: aiosmtplib expected another code
        if after_body:
            return OutcomeUnknown(f"SMTP {code} at {stage.value.upper()}: unexpected reply", code=str(code))
        return TransientError(f"SMTP {code} at {stage.value.upper()}: unexpected reply", code=str(code))
    return error
