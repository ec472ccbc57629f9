"""Map an SMPP ``command_status`` to the error class the engine acts on (``channels.errors``).

The table is engineering judgement on the descriptions in SMPP v3.4 Issue 1.2 §5.1.3 ("command_status")
and follows docs/architecture.md §4 and docs/domain.md §4: throttling slows the bucket, address-level answers suppress
the address, bind and sender answers stop the provider, and anything we do not know is retried (with its
code kept) rather than guessed permanent: a wrong "permanent" would fail a message for good.
"""

from __future__ import annotations

from typing import Final

from channels.errors import (
    ChannelError,
    ConfigurationError,
    PermanentError,
    RecipientRejected,
    Throttled,
    TransientError,
)

__all__ = ["STATUS_TABLE", "classify", "status_name"]

# command_status -> (error class, SMPP name, why). SMPP v3.4 §5.1.3, Table 5-2.
STATUS_TABLE: Final[dict[int, tuple[type[ChannelError], str, str]]] = {
    # --- Throttled: the SMSC asks us to slow down (docs/domain.md §4 "transient").
    0x58: (Throttled, "ESME_RTHROTTLED", "throttling error: ESME exceeded allowed message limits"),
    0x14: (Throttled, "ESME_RMSGQFUL", "message queue full"),
    # --- Transient: a fault on the SMSC side or in the receiving application; retry later.
    0x08: (TransientError, "ESME_RSYSERR", "system error"),
    0x64: (TransientError, "ESME_RX_T_APPN", "ESME receiver temporary app error"),
    0x45: (TransientError, "ESME_RSUBMITFAIL", "submit_sm failed (generic; retry-limited)"),
    # --- RecipientRejected: the destination address itself is bad; the address is also suppressed.
    0x0B: (RecipientRejected, "ESME_RINVDSTADR", "invalid destination address"),
    0x50: (RecipientRejected, "ESME_RINVDSTTON", "invalid destination address TON"),
    0x51: (RecipientRejected, "ESME_RINVDSTNPI", "invalid destination address NPI"),
    # --- ConfigurationError: account, bind or sender (brandname) settings; a person must fix them.
    0x0D: (ConfigurationError, "ESME_RBINDFAIL", "bind failed"),
    0x0E: (ConfigurationError, "ESME_RINVPASWD", "invalid password"),
    0x0F: (ConfigurationError, "ESME_RINVSYSID", "invalid system_id"),
    0x0A: (ConfigurationError, "ESME_RINVSRCADR", "invalid source address (brandname not registered?)"),
    0x48: (ConfigurationError, "ESME_RINVSRCTON", "invalid source address TON"),
    0x49: (ConfigurationError, "ESME_RINVSRCNPI", "invalid source address NPI"),
    0x04: (ConfigurationError, "ESME_RINVBNDSTS", "incorrect bind status for given command"),
    0x05: (ConfigurationError, "ESME_RALYBND", "ESME already in bound state"),
    # --- PermanentError: this message, as built, will never be accepted.
    0x01: (PermanentError, "ESME_RINVMSGLEN", "message length is invalid"),
    0x02: (PermanentError, "ESME_RINVCMDLEN", "command length is invalid"),
    0x03: (PermanentError, "ESME_RINVCMDID", "invalid command id"),
    0x43: (PermanentError, "ESME_RINVESMCLASS", "invalid esm_class field data"),
    0x65: (PermanentError, "ESME_RX_P_APPN", "ESME receiver permanent app error"),
    0x66: (PermanentError, "ESME_RX_R_APPN", "ESME receiver reject message error"),
    0x06: (PermanentError, "ESME_RINVPRTFLG", "invalid priority flag"),
    0x07: (PermanentError, "ESME_RINVREGDLVFLG", "invalid registered delivery flag"),
    0x40: (PermanentError, "ESME_RINVDESTFLAG", "invalid destination flag (submit_multi)"),
    0x42: (PermanentError, "ESME_RINVSUBREP", "invalid submit with replace request"),
    0x53: (PermanentError, "ESME_RINVSERTYP", "invalid service type"),
    0x61: (PermanentError, "ESME_RINVSCHED", "invalid scheduled delivery time"),
    0x62: (PermanentError, "ESME_RINVEXPIRY", "invalid message validity period"),
    0x63: (PermanentError, "ESME_RINVDFTMSGID", "predefined message invalid or not found"),
    0xC0: (PermanentError, "ESME_RINVOPTPARSTREAM", "error in the optional part of the PDU body"),
    0xC1: (PermanentError, "ESME_ROPTPARNOTALLWD", "optional parameter not allowed"),
    0xC2: (PermanentError, "ESME_RINVPARLEN", "invalid parameter length"),
    0xC3: (PermanentError, "ESME_RMISSINGOPTPARAM", "expected optional parameter missing"),
    0xC4: (PermanentError, "ESME_RINVOPTPARAMVAL", "invalid optional parameter value"),
}


def status_name(status: int) -> str:
    """The SMPP name of a status (``ESME_RTHROTTLED``), or its hex form when we do not know it."""
    entry = STATUS_TABLE.get(status)
    return entry[1] if entry else f"0x{status:08X}"


def classify(status: int, *, detail: str | None = None) -> ChannelError:
    """The error instance for a non-zero ``command_status``; unknown codes are transient, code kept.

    ``code`` is always the 8-digit hex form (``0x00000058``) so that logs and the audit trail are uniform.
    """
    if status == 0:
        raise ValueError("command_status 0 (ESME_ROK) is not an error")
    code = f"0x{status:08X}"
    entry = STATUS_TABLE.get(status)
    if entry is None:
        return TransientError(f"SMSC answered an unknown command_status {code}", code=code, detail=detail)
    cls, name, why = entry
    return cls(f"SMSC answered {name}: {why}", code=code, detail=detail)
