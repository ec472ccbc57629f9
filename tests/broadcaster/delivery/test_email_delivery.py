"""E-mail acceptance: a 500-recipient campaign through the real planner and dispatcher to aiosmtpd.

Every mail must arrive once, to the right envelope recipient, with the recipient's own subject and body (read
back after MIME decoding) and the headers the design requires (VERP sender, Message-ID carrying the outbox id,
Auto-Submitted); official-duty mail never offers List-Unsubscribe.
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32

from sqlalchemy import select

from broadcaster.db.models import Chunk
from broadcaster.unsubscribe import verify_token
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.workdir_files import UNSUBSCRIBE_SECRET, citizens

RECIPIENTS = 500
SUBJECT = "Thông báo cho {{ contact.full_name }}: {{ vars.thu_tuc }}"
BODY = (
    "Kính gửi {{ contact.full_name }},\n\n"
    "Từ ngày {{ vars.ngay }}, thủ tục {{ vars.thu_tuc }} được tiếp nhận trực tuyến.\n"
    "Mã hồ sơ: {{ contact.external_id }}\n\n"
    "{{ org.name }}\n"
)
MESSAGE_ID = re.compile(r"^<msg-(\d+)\.[0-9a-f]+@[^>]+>$")


def decoded_header(content: bytes, name: str) -> str:
    raw = BytesHeaderParser(policy=compat32).parsebytes(content)[name]
    return str(make_header(decode_header(str(raw))))


def email_only(pipeline: Pipeline) -> str:
    return pipeline.approved_campaign(
        channels={"email": {"template": "email/thu-nghiem", "provider": "mail"}},
        email_subject=SUBJECT,
        email_text=BODY,
    )


def test_every_mail_of_a_500_recipient_campaign_arrives_personalised(pipeline: Pipeline) -> None:
    people = citizens(RECIPIENTS)
    report = pipeline.add_contacts(people)
    assert report.created == RECIPIENTS
    campaign_id = email_only(pipeline)

    run_id = pipeline.send(campaign_id)

    assert pipeline.smtp.wait_for_count(RECIPIENTS, timeout=30)
    assert pipeline.counts(run_id) == {("email", "sent"): RECIPIENTS}
    # One task per chunk of chunk_size (200): 500 rows make 3 chunks.
    with pipeline.context.readers() as session:
        sizes = sorted(session.scalars(select(Chunk.size).where(Chunk.run_id == run_id)))
    assert sizes == [100, 200, 200]

    received = pipeline.smtp.received
    assert len(received) == RECIPIENTS  # nothing twice
    by_address = {mail.rcpt_tos: mail for mail in received}
    assert len(by_address) == RECIPIENTS
    rows = {m.address: m for m in pipeline.messages(run_id)}
    for person in people:
        address = person["email"]
        mail = by_address[(address,)]
        row = rows[address]
        message = mail.message()
        name = person["full_name"]
        assert message["Subject"] == f"Thông báo cho {name}: cấp đổi giấy phép lái xe"
        assert message["To"].addresses[0].addr_spec == address
        assert message["From"].addresses[0].addr_spec == "thongbao@skhcn.danang.gov.vn"
        # RFC 2047 §6.2: whitespace between adjacent encoded-words is dropped. The stdlib's address parser
        # keeps the folding space inside a display name, so decode the raw header as a mail reader does.
        assert decoded_header(mail.content, "From").startswith("Sở Khoa học và Công nghệ thành phố Đà Nẵng <")
        match = MESSAGE_ID.match(message["Message-ID"])
        assert match is not None
        assert int(match.group(1)) == row.id
        assert row.provider_ref == message["Message-ID"]
        assert mail.mail_from == f"bounce+m{row.id}@skhcn.danang.gov.vn"  # VERP: a bounce names its message
        assert message["Auto-Submitted"] == "auto-generated"  # RFC 3834: no auto-replies to a bulletin
        assert message["X-Broadcaster-Campaign"]
        text = message.get_body(preferencelist=("plain",))
        assert text is not None
        content = text.get_content()
        assert f"Kính gửi {name}," in content
        assert f"Mã hồ sơ: {person['external_id']}" in content
        assert "Sở Khoa học và Công nghệ thành phố Đà Nẵng" in content


def test_official_duty_mail_has_no_unsubscribe_header(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(3))
    campaign_id = pipeline.approved_campaign(
        purpose="official_duty",
        channels={"email": {"template": "email/thu-nghiem", "provider": "mail"}},
    )
    run_id = pipeline.send(campaign_id)
    assert pipeline.counts(run_id) == {("email", "sent"): 3}
    assert pipeline.smtp.wait_for_count(3)
    assert all(mail.message()["List-Unsubscribe"] is None for mail in pipeline.smtp.received)


def test_public_information_mail_offers_one_click_unsubscribe(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(
        mail={"unsubscribe_base_url": "https://thongbao.example.vn", "unsubscribe_mailto": "huy@example.vn"}
    )
    pipeline.add_contacts(citizens(3))
    campaign_id = pipeline.approved_campaign(
        purpose="public_information",
        channels={"email": {"template": "email/thu-nghiem", "provider": "mail"}},
    )
    run_id = pipeline.send(campaign_id)
    assert pipeline.smtp.wait_for_count(3)
    by_id = {m.id: m for m in pipeline.messages(run_id)}
    for mail in pipeline.smtp.received:
        parsed = mail.message()
        header = str(parsed["List-Unsubscribe"])
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"  # RFC 8058
        link = header.split("<", 1)[1].split(">", 1)[0]
        assert link.startswith("https://thongbao.example.vn/u/")
        assert "mailto:huy@example.vn" in header
        message_id = verify_token(UNSUBSCRIBE_SECRET, link.rsplit("/", 1)[1])
        assert message_id in by_id
        assert by_id[message_id].address in mail.rcpt_tos
