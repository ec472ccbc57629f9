"""SmppAdapter against an SMSC that throttles or rejects: nothing lost, only the refused message fails."""

from __future__ import annotations

import unicodedata

from channels.base import OutboundMessage, SendOutcome
from channels.errors import PermanentError, RecipientRejected, Throttled
from tests.channels.smpp_sending import VIETNAMESE, message, send_all
from tests.peers.smsc import SmscBehaviour, adapter_for, running_smsc


def test_throttling_every_fifth_pdu_loses_nothing() -> None:
    messages = [message(n, "Chào " * (1 + n % 40)) for n in range(120)]
    with running_smsc(SmscBehaviour(throttle_every=5, receipts=False)) as smsc, adapter_for(smsc) as adapter:
        results = send_all(adapter, messages)

        assert all(r.outcome is SendOutcome.SENT for r in results), [str(r.error) for r in results if r.error]
        throttled = [r for r in smsc.submits if r.status == 0x58]
        assert throttled, "the SMSC should have throttled some PDUs"
        reassembled = smsc.reassembled()
        assert len(reassembled) == 120
        assert all(m.complete for m in reassembled)
        assert len(smsc.accepted) == sum(len(r.provider_ids) for r in results)


def test_throttled_beyond_the_retries_is_reported_throttled() -> None:
    behaviour = SmscBehaviour(throttle_every=1, throttle_status=0x14, receipts=False)
    with (
        running_smsc(behaviour) as smsc,
        adapter_for(smsc, throttle_retries=2, throttle_backoff=0.05) as adapter,
    ):
        (result,) = adapter.send([message(1)])
        assert isinstance(result.error, Throttled)
        assert result.error.code == "0x00000014"
        assert result.error.retry_after
        assert len(smsc.submits) == 3  # the first try and two retries


def test_a_part_throttled_for_good_is_resent_alone_under_the_same_reference() -> None:
    """One part of four refused (throttled) past the retries: the result names the parts accepted and their
    reference; handed back, only the refused part goes out again, under that reference: the message is whole
    and no part is billed twice."""
    behaviour = SmscBehaviour(throttle_every=3, receipts=False)  # the 3rd submit_sm is refused
    with running_smsc(behaviour) as smsc, adapter_for(smsc, throttle_retries=0) as adapter:
        (first,) = adapter.send([message(1, VIETNAMESE, "+84905123456")])

        assert isinstance(first.error, Throttled)
        assert len(first.accepted_parts) == 3
        assert first.sms_reference is not None
        (refused,) = {1, 2, 3, 4} - set(first.accepted_parts)
        retry = OutboundMessage(
            message_id=1,
            address="+84905123456",
            body=VIETNAMESE,
            sms_reference=first.sms_reference,
            accepted_parts=first.accepted_parts,
        )
        (second,) = adapter.send([retry])  # the 5th submit_sm: accepted

        assert second.outcome is SendOutcome.SENT, second.error
        assert sorted(r.udh_number or 0 for r in smsc.submits) == sorted([1, 2, 3, 4, refused])
        assert {r.udh_reference for r in smsc.submits} == {first.sms_reference}
        (whole,) = smsc.reassembled()
        assert whole.complete
        assert whole.text == unicodedata.normalize("NFC", VIETNAMESE)
        assert len(smsc.accepted) == 4
        assert {n: second.provider_ids[n - 1] for n in first.accepted_parts} == first.accepted_parts


def test_rejected_destination_fails_only_that_message() -> None:
    behaviour = SmscBehaviour(reject={"84911111111": 0x0B}, receipts=False)
    with running_smsc(behaviour) as smsc, adapter_for(smsc) as adapter:
        results = adapter.send(
            [
                message(1),
                message(2),
                message(3, address="+84911111111"),
                message(4, VIETNAMESE, "+84911111111"),
            ]
        )

        assert [r.outcome for r in results] == [
            SendOutcome.SENT,
            SendOutcome.SENT,
            SendOutcome.FAILED,
            SendOutcome.FAILED,
        ]
        for failed in results[2:]:
            assert isinstance(failed.error, RecipientRejected)
            assert failed.error.code == "0x0000000B"
        assert "part 1/" in str(results[3].error.detail)  # type: ignore[union-attr]
        assert len(smsc.accepted) == 2


def test_an_address_too_long_for_submit_sm_fails_only_that_message() -> None:
    """smpplib would cut a 21-digit destination to 20 and reach someone else; the adapter refuses it."""
    with running_smsc(SmscBehaviour(receipts=False)) as smsc, adapter_for(smsc) as adapter:
        results = adapter.send([message(1), message(2, address="+" + "8" * 21), message(3)])

        assert [r.outcome for r in results] == [SendOutcome.SENT, SendOutcome.FAILED, SendOutcome.SENT]
        assert isinstance(results[1].error, PermanentError)
        assert "destination_addr" in str(results[1].error.detail)
        assert sorted(m.destination for m in smsc.reassembled()) == ["84900000001", "84900000003"]


class SlowingPacer:
    """A pacer that grants what is asked and counts the throttling answers it is told of."""

    def __init__(self) -> None:
        self.throttled_answers = 0

    def __call__(self, wanted: int) -> int:
        return wanted

    def throttled(self) -> None:
        self.throttled_answers += 1


def test_each_throttling_answer_is_told_to_a_pacer_that_slows_on_them() -> None:
    """The shared bucket halves its share on throttling answers (broadcaster's Redis bucket): the adapter
    tells its pacer of every one it gets."""
    pacer = SlowingPacer()
    with (
        running_smsc(SmscBehaviour(throttle_every=4, receipts=False)) as smsc,
        adapter_for(smsc, pacer=pacer) as adapter,
    ):
        results = send_all(adapter, [message(n) for n in range(20)])

        assert all(r.outcome is SendOutcome.SENT for r in results)
        assert pacer.throttled_answers == len([r for r in smsc.submits if r.status == 0x58]) > 0
