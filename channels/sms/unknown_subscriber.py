"""Which failed delivery receipts say the number does not exist, so the engine suppresses it
(docs/domain.md §4, "Receipts that suppress").

SMPP v3.4 Appendix B leaves ``err:`` to the SMSC: most report the GSM MAP error of the failed attempt
(3GPP TS 29.002: 1 unknownSubscriber), written as three decimal digits, and the ``network_error_code`` TLV
(§5.3.2.31: network type 3 = GSM, then the 2-octet code) carries the same value. Aggregators differ, so the list
is a provider setting (``unknown_subscriber_errors``); the SMPP adapter stamps it into the records it stores,
and a record without it is read with the default. Only an UNDELIV or REJECTD receipt can say this: a DELETED
or EXPIRED message says nothing about the number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

# GSM MAP unknownSubscriber (TS 29.002 §17.6.2): the HLR has no such number. Not 5 (unidentified: not in the
# VLR right now) nor 27 (absent subscriber): those numbers exist and may answer later.
DEFAULT_UNKNOWN_SUBSCRIBER_ERRORS: Final = ("001",)
RECORD_KEY: Final = "unknown_subscriber_errors"  # where the adapter stamps the provider's own list
_ADDRESS_STATS: Final = frozenset({"UNDELIV", "UNDELIVERABLE", "REJECTD", "REJECTED"})
_GSM_NETWORK: Final = 3  # §5.3.2.31 network_type


def error_key(value: str) -> str:
    """One spelling per code: decimal digits compare by value (``1`` = ``001``), anything else lower-cased."""
    text = value.strip().lower()
    return str(int(text)) if text.isascii() and text.isdigit() else text


def checked_errors(values: Iterable[Any]) -> tuple[str, ...]:
    """A provider's ``unknown_subscriber_errors`` setting, refused with the offending entry when not codes."""
    if isinstance(values, str | bytes):
        raise ValueError(f"unknown_subscriber_errors must be a list of codes, not {values!r}")
    codes = tuple(values)
    for code in codes:
        if not isinstance(code, str | int) or not str(code).strip() or not str(code).strip().isalnum():
            raise ValueError(f'unknown_subscriber_errors: {code!r} is not an error code such as "001"')
    return tuple(str(code).strip() for code in codes)


def says_no_such_number(
    fields: Mapping[str, Any], *, stat_word: str | None, err: str | None, network_error_hex: str | None
) -> bool:
    """True when a failed receipt's ``err:`` or GSM network error is one of the listed codes."""
    if stat_word is None or stat_word.upper() not in _ADDRESS_STATS:
        return False
    listed = fields.get(RECORD_KEY)
    codes = DEFAULT_UNKNOWN_SUBSCRIBER_ERRORS if not isinstance(listed, list) else listed
    wanted = {error_key(str(code)) for code in codes}
    if err and error_key(err) in wanted:
        return True
    return _gsm_code(network_error_hex) in wanted


def _gsm_code(network_error_hex: str | None) -> str | None:
    try:
        octets = bytes.fromhex(network_error_hex or "")
    except ValueError:
        return None
    if len(octets) != 3 or octets[0] != _GSM_NETWORK:
        return None
    return str(int.from_bytes(octets[1:], "big"))
