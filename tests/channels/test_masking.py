"""One address masker for every log line and masked listing (``channels.masking``)."""

from __future__ import annotations

import channels.email.smtp
import channels.sms.smpp.submit
import channels.sms.smpp.window
from channels.masking import mask_address, mask_email, mask_text


def test_an_smpp_log_line_shows_a_phone_as_the_listings_do() -> None:
    assert mask_address("+84905123456") == "090****456"
    assert mask_address("84905123456") == "849*****456"  # not in E.164: as given, still only 6 digits shown
    assert mask_address(None) is None


def test_an_smtp_log_line_shows_the_first_letter_and_the_domain() -> None:
    assert mask_address("nguyen.an@danang.gov.vn") == "n***@danang.gov.vn"
    assert mask_text("550 5.1.1 <an@danang.gov.vn> unknown") == "550 5.1.1 <a***@danang.gov.vn> unknown"


def test_the_adapters_use_the_one_masker() -> None:
    # vars(): the names the adapters' modules bind, which they do not export.
    assert vars(channels.sms.smpp.window)["mask_address"] is mask_address
    assert vars(channels.sms.smpp.submit)["mask_address"] is mask_address
    assert vars(channels.email.smtp)["mask_email"] is mask_email
