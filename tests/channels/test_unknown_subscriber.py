"""Which failed SMPP receipts say the number does not exist (docs/domain.md §4, "Receipts that suppress"), row
by row; the parser marks them ``address_invalid`` and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from channels.sms.receipts import parse_deliver_sm
from channels.sms.unknown_subscriber import RECORD_KEY, checked_errors, error_key
from tests.channels.test_receipts import APPENDIX_B, _receipt


def _text(stat: str, err: str, **extra: Any) -> dict[str, Any]:
    return {**_receipt(APPENDIX_B.format(id="77", stat=stat, err=err)), **extra}


@pytest.mark.parametrize(
    ("record", "invalid"),
    [
        (_text("UNDELIV", "001"), True),  # GSM MAP 1: unknown subscriber
        (_text("REJECTD", "1"), True),  # the same code, unpadded
        (_text("undeliv", "001"), True),  # any case
        (_text("UNDELIV", "005"), False),  # unidentified: the number exists
        (_text("UNDELIV", "027"), False),  # absent subscriber: phone off
        (_text("UNDELIV", "000"), False),
        (_text("DELETED", "001"), False),  # the SMSC deleted it: says nothing about the number
        (_text("EXPIRED", "001"), False),
        (_text("DELIVRD", "001"), False),
        # the GSM network_error_code TLV alone (network type 3, code 1) and another network's code 1
        (_receipt(receipted_message_id="9", message_state=5, network_error_code_hex="030001"), True),
        (_receipt(receipted_message_id="9", message_state=5, network_error_code_hex="010001"), False),
        (_receipt(receipted_message_id="9", message_state=5, network_error_code_hex="03000b"), False),
        (_receipt(receipted_message_id="9", message_state=5, network_error_code_hex="zz"), False),
        # a provider's own list, stamped in the record by the adapter, replaces the default
        (_text("UNDELIV", "00B", **{RECORD_KEY: ["00b", "9"]}), True),
        (_text("UNDELIV", "009", **{RECORD_KEY: ["00b", "9"]}), True),
        (_text("UNDELIV", "001", **{RECORD_KEY: ["00b", "9"]}), False),
        (_text("UNDELIV", "001", **{RECORD_KEY: []}), False),  # an empty list: receipts never suppress
    ],
)
def test_a_failed_receipt_blames_the_address_only_for_listed_codes(
    record: dict[str, Any], invalid: bool
) -> None:
    assert parse_deliver_sm(record).address_invalid is invalid


def test_an_inbound_message_is_never_an_address_failure() -> None:
    record = {"esm_class": 0, "source_addr": "84901234567", "short_message": b"err:001 stat:UNDELIV"}
    assert parse_deliver_sm(record).address_invalid is False


def test_codes_compare_by_value_when_decimal() -> None:
    assert error_key(" 001 ") == error_key("1") == "1"
    assert error_key("0B") == "0b"


@pytest.mark.parametrize("bad", ["001", ["001", ""], ["0 1"], [None]])
def test_a_setting_that_is_no_list_of_codes_is_refused_naming_the_entry(bad: Any) -> None:
    with pytest.raises(ValueError, match="unknown_subscriber_errors"):
        checked_errors(bad)


def test_the_adapter_stamps_the_providers_list_into_every_record() -> None:
    from channels.sms.smpp.adapter import SmppAdapter

    batches: list[list[dict[str, Any]]] = []
    adapter = SmppAdapter(
        host="127.0.0.1",
        port=1,
        system_id="x",
        password="y",
        source_addr="SKHCN",
        on_inbound_batch=batches.append,
        unknown_subscriber_errors=["1", "9"],
    )
    assert adapter._inbound.record_extras == {RECORD_KEY: ["1", "9"]}
    with pytest.raises(ValueError, match="'x y'"):
        SmppAdapter(
            host="127.0.0.1",
            port=1,
            system_id="x",
            password="y",
            source_addr="S",
            unknown_subscriber_errors=["x y"],
        )
