"""A mail that offers opting out carries the opt-out link in both parts, text/plain as well as HTML, and
``campaigns preview`` shows it; official-duty mail has it in neither."""

from __future__ import annotations

from email.message import EmailMessage

from broadcaster.campaigns.preview import PREVIEW_TOKEN, preview_version
from broadcaster.campaigns.store import get_version
from tests.broadcaster.delivery.pipeline import Pipeline
from tests.broadcaster.delivery.workdir_files import citizens

HTML = '<p>Kính gửi {{ contact.full_name }}</p>{% if unsubscribe_url %}<a href="{{ unsubscribe_url }}">Hủy</a>{% endif %}'
BASE = "https://skhcn.danang.gov.vn/huy-dang-ky"  # the pipeline's unsubscribe_base_url


def email_campaign(pipeline: Pipeline, *, purpose: str, email_text: str | None = None) -> str:
    html = pipeline.directory / "templates" / "email" / "thu-nghiem.html.j2"
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(HTML, encoding="utf-8")
    extra = {"email_text": email_text} if email_text is not None else {}
    return pipeline.approved_campaign(
        purpose=purpose, channels={"email": {"template": "email/thu-nghiem", "provider": "mail"}}, **extra
    )


def parts(mail: EmailMessage) -> tuple[str, str]:
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


def one_click_link(mail: EmailMessage) -> str:
    return str(mail["List-Unsubscribe"]).split("<", 1)[1].split(">", 1)[0]


def test_both_parts_of_a_mail_that_offers_opting_out_carry_the_link(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(2))
    run_id = pipeline.send(email_campaign(pipeline, purpose="public_information"))

    assert pipeline.smtp.wait_for_count(2)
    assert pipeline.counts(run_id) == {("email", "sent"): 2}
    links = set()
    for received in pipeline.smtp.received:
        mail = received.message()
        link = one_click_link(mail)
        assert link.startswith(f"{BASE}/u/")
        text, html = parts(mail)
        assert f"Hủy đăng ký nhận tin: {link}" in text  # the template has no opt-out line: the standard one
        assert f'href="{link}"' in html
        links.add(link)
    assert len(links) == 2  # personal links


def test_a_text_template_that_shows_the_link_gets_it_once(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(1))
    text_template = "Kính gửi {{ contact.full_name }},\n{% if unsubscribe_url %}Từ chối nhận tin: {{ unsubscribe_url }}{% endif %}\n"
    pipeline.send(email_campaign(pipeline, purpose="public_information", email_text=text_template))

    assert pipeline.smtp.wait_for_count(1)
    mail = pipeline.smtp.received[0].message()
    text, _html = parts(mail)
    link = one_click_link(mail)
    assert f"Từ chối nhận tin: {link}" in text
    assert text.count(link) == 1


def test_official_duty_mail_has_no_opt_out_line(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(1))
    pipeline.send(email_campaign(pipeline, purpose="official_duty"))

    assert pipeline.smtp.wait_for_count(1)
    text, html = parts(pipeline.smtp.received[0].message())
    assert "Hủy" not in text
    assert "/u/" not in html


def test_preview_shows_the_opt_out_line(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(1))
    campaign_id = email_campaign(pipeline, purpose="public_information")
    with pipeline.context.readers() as session:
        preview = preview_version(
            session,
            get_version(session, campaign_id, None),
            pipeline.context.settings,
            now=pipeline.clock.now(),
        )
    (sample,) = preview.channels[0].samples
    assert f"Hủy đăng ký nhận tin: {BASE}/u/{PREVIEW_TOKEN}" in sample["text"]
