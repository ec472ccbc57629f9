"""Rendering: strict names, the sandbox, HTML escaping only where HTML is, NFC output, SMS text rules."""

from __future__ import annotations

import unicodedata

import pytest

from broadcaster.rendering import (
    CONTACT_FIELDS,
    OPTIONAL_PARTS,
    Renderer,
    RenderError,
    build_context,
    sample_contact,
    sample_org,
    template_files,
)

LAYOUT = (
    "<html><h1>{{ org.name }}</h1>{% block content %}{% endblock %}"
    "{% if unsubscribe_url %}<a href='{{ unsubscribe_url }}'>Hủy</a>{% endif %}</html>"
)
TEMPLATES = {
    "layouts/email.html.j2": LAYOUT,
    "email/tb.subject.j2": "Gửi {{ contact.full_name }}\n  về {{ vars.chu_de }}",
    "email/tb.txt.j2": "Kính gửi {{ contact.full_name }},\n\n\n{{ vars.chu_de }}   \n",
    "email/tb.html.j2": '{% extends "layouts/email.html.j2" %}{% block content %}<p>{{ contact.full_name }}</p>'
    "{% endblock %}",
    "email/chi-chu.subject.j2": "Chủ đề",
    "email/chi-chu.txt.j2": "Nội dung",
    "sms/tb.txt.j2": "{{ org.short_name }}:\n   Chào {{ contact.first_name }},\n {{ vars.chu_de }}.  ",
    "sms/sai-ten.txt.j2": "Dòng một\nChào {{ contact.nmae }}",
    "sms/thoat.txt.j2": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "sms/chia-khong.txt.j2": "{{ 1 / 0 }}",
    "push/tb.title.j2": "{{ org.short_name }}:\n  {{ vars.chu_de }}",
    "push/tb.txt.j2": "Chào {{ contact.first_name }},\n\n\nhồ sơ đã tiếp nhận.   \n",
    "push/tb.link.j2": "  danang://ho-so/{{ contact.external_id }}\n",
    "push/khong-link.title.j2": "Tiêu đề",
    "push/khong-link.txt.j2": "Nội dung",
}


def context(**contact: object) -> dict[str, object]:
    return build_context(
        contact={**sample_contact(), **contact},
        campaign={"id": "c", "title": "Chiến dịch"},
        org=sample_org(),
        variables={"chu_de": "dịch vụ công trực tuyến"},
        unsubscribe_url="https://example.invalid/u/1",
    )


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES)


def test_sms_is_one_trimmed_line(renderer: Renderer) -> None:
    out = renderer.render(template="sms/tb", channel="sms", context=context())
    assert out.text == "Sở KHCN Đà Nẵng: Chào Anh, dịch vụ công trực tuyến."
    assert out.subject is None
    assert out.html is None
    plain = renderer.render(template="sms/tb", channel="sms", context=context(), unaccented=True)
    assert plain.text == "So KHCN Da Nang: Chao Anh, dich vu cong truc tuyen."


def test_strict_undefined_names_template_and_line(renderer: Renderer) -> None:
    with pytest.raises(RenderError) as caught:
        renderer.render(template="sms/sai-ten", channel="sms", context=context())
    assert caught.value.template == "sms/sai-ten.txt.j2"
    assert caught.value.line == 2
    assert "nmae" in str(caught.value)
    assert str(caught.value).startswith("sms/sai-ten.txt.j2:2:")


def test_sandbox_blocks_dunder_access(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="unsafe"):
        renderer.render(template="sms/thoat", channel="sms", context=context())


def test_runtime_errors_become_render_errors(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="ZeroDivisionError") as caught:
        renderer.render(template="sms/chia-khong", channel="sms", context=context())
    assert caught.value.line == 1


def test_html_escapes_names_text_does_not(renderer: Renderer) -> None:
    out = renderer.render(
        template="email/tb", channel="email", context=context(full_name="Lê <b>Văn</b> Tám")
    )
    assert out.html is not None
    assert "<p>Lê &lt;b&gt;Văn&lt;/b&gt; Tám</p>" in out.html
    assert "<h1>Sở Khoa học và Công nghệ thành phố Đà Nẵng</h1>" in out.html  # layout markup is kept
    assert "https://example.invalid/u/1" in out.html
    assert out.subject == "Gửi Lê <b>Văn</b> Tám về dịch vụ công trực tuyến"
    assert out.text == "Kính gửi Lê <b>Văn</b> Tám,\n\ndịch vụ công trực tuyến\n"


def test_unsubscribe_link_only_when_given(renderer: Renderer) -> None:
    ctx = context()
    ctx["unsubscribe_url"] = None
    out = renderer.render(template="email/tb", channel="email", context=ctx)
    assert out.html is not None
    assert "Hủy" not in out.html


def test_email_without_html_part(renderer: Renderer) -> None:
    out = renderer.render(template="email/chi-chu", channel="email", context=context())
    assert (out.subject, out.text, out.html) == ("Chủ đề", "Nội dung\n", None)


def test_push_has_a_one_line_title_a_body_and_a_one_line_link(renderer: Renderer) -> None:
    out = renderer.render(template="push/tb", channel="push", context=context())
    assert out.subject == "Sở KHCN Đà Nẵng: dịch vụ công trực tuyến"
    assert out.text == "Chào Anh,\n\nhồ sơ đã tiếp nhận."
    assert out.link == "danang://ho-so/MAU-0001"
    assert out.html is None
    bare = renderer.render(template="push/khong-link", channel="push", context=context())
    assert (bare.subject, bare.text, bare.link) == ("Tiêu đề", "Nội dung", None)


def test_push_template_files_and_their_optional_link() -> None:
    assert template_files("push/tb", "push") == {
        "title": "push/tb.title.j2",
        "text": "push/tb.txt.j2",
        "link": "push/tb.link.j2",
    }
    assert ("push", "link") in OPTIONAL_PARTS
    assert ("push", "title") not in OPTIONAL_PARTS


def test_output_is_nfc_even_from_nfd_input() -> None:
    nfd = unicodedata.normalize("NFD", "Thông báo {{ contact.full_name }} về cải cách hành chính")
    renderer = Renderer({"sms/nfd.txt.j2": nfd})
    name = unicodedata.normalize("NFD", "Nguyễn Văn Đức")
    out = renderer.render(template="sms/nfd", channel="sms", context=context(full_name=name))
    assert unicodedata.is_normalized("NFC", out.text)
    assert out.text == "Thông báo Nguyễn Văn Đức về cải cách hành chính"


def test_syntax_error_at_construction_names_line() -> None:
    with pytest.raises(RenderError) as caught:
        Renderer({"sms/x.txt.j2": "một\n{% if %}"})
    assert (caught.value.template, caught.value.line) == ("sms/x.txt.j2", 2)


def test_template_outside_snapshot(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="not in the approved snapshot"):
        renderer.render(template="sms/khong-co", channel="sms", context=context())


def test_build_context_fills_every_field() -> None:
    ctx = build_context(contact=None, campaign={}, org={"name": "Sở Nội vụ"}, variables={})
    contact = ctx["contact"]
    assert set(contact) == CONTACT_FIELDS
    assert contact["full_name"] is None
    assert contact["tags"] == []
    assert contact["attributes"] == {}
    assert ctx["org"]["hotline"] is None
    assert ctx["unsubscribe_url"] is None
    derived = build_context(contact={"full_name": "Trần Thị Thu Hà"}, campaign={}, org={}, variables={})
    assert derived["contact"]["first_name"] == "Hà"


def test_sample_contact_is_complete_vietnamese() -> None:
    sample = sample_contact()
    assert set(sample) == CONTACT_FIELDS
    assert sample["first_name"] == sample["full_name"].split()[-1]
    assert all(unicodedata.is_normalized("NFC", v) for v in sample.values() if isinstance(v, str))
