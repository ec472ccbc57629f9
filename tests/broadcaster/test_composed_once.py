"""A composer renders once per distinct value of the contact fields its template reads
(``rendering.contact_fields``): what it gives from that is what rendering each contact gives."""

from __future__ import annotations

import random
from typing import Any

import pytest

from broadcaster.campaigns.messages import Composer, contact_view
from broadcaster.campaigns.schema import CampaignDefinition
from broadcaster.db.models import Contact
from broadcaster.rendering import contact_fields
from broadcaster.settings import Settings


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Sở KHCN thông báo {{ vars.ngay }}.", frozenset()),
        ("Chào {{ contact.first_name }}, {{ org.name }}", frozenset({"first_name"})),
        ("{{ contact['ward'] }} {{ contact.full_name.split()[0] }}", frozenset({"ward", "full_name"})),
        ("{% for t in contact.tags %}{{ t }}{% endfor %}", frozenset({"tags"})),
        ("{{ contact }}", None),  # passed whole: depends on every field
        ("{% set c = contact %}{{ c.ward }}", None),
        ("{{ message.ma_ho_so }}", None),
        ("{{ lipsum(1) }}", None),
        ("{{ ['a', 'b'] | random }}", None),
        ("{{ ['a', 'b'] | map('random') | first }}", None),
        ("{{ unsubscribe_url }}", None),
        ("{% include 'sms/phan.txt.j2' %}", frozenset({"phone"})),
    ],
)
def test_the_fields_a_template_reads(source: str, expected: frozenset[str] | None) -> None:
    templates = {"sms/x.txt.j2": source, "sms/phan.txt.j2": "{{ contact.phone }}"}
    assert contact_fields(templates, "sms/x", "sms") == expected


def test_a_root_the_caller_holds_fixed_is_allowed() -> None:
    templates = {"sms/x.txt.j2": "{{ contact.ward }}{% if unsubscribe_url %}!{% endif %}"}
    found = contact_fields(templates, "sms/x", "sms", also_fixed=frozenset({"unsubscribe_url"}))
    assert found == frozenset({"ward"})


TEMPLATES = {
    "sms/ten.txt.j2": "Chào {{ contact.first_name }} ở {{ contact.ward or 'Đà Nẵng' }}: €5 [{{ vars.a }}] 😀",
    "sms/chung.txt.j2": "Thông báo – {{ vars.a }}: hồ sơ “trực tuyến”…",
    "sms/ca-nguoi.txt.j2": "{{ contact | tojson }}",
    "email/ten.subject.j2": "Gửi {{ contact.full_name }}",
    "email/ten.txt.j2": "Kính gửi {{ contact.full_name or 'Quý ông/bà' }}, {{ vars.a }}",
    "email/ten.html.j2": "<p>{{ contact.full_name }}</p><a href='{{ unsubscribe_url }}'>Hủy</a>",
}
NAMES = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Minh", "", "Phạm Ngọc Ánh", "Võ  Thị   Đào"]
WARDS = ["Hải Châu", "Thạch Thang", None, "Hội An Tây"]


def _composer(sms: str, *, unaccented: bool) -> Composer:
    definition = CampaignDefinition.model_validate(
        {
            "id": "thu",
            "title": "Thử",
            "purpose": "public_information",
            "topics": ["chinh_quyen_so"],
            "lead_agency": "Sở Nội vụ",
            "plan_item": "III.9",
            "audience": {"segments": ["citizen"]},
            "channels": {
                "sms": {"template": sms, "provider": "sms_main", "unaccented": unaccented},
                "email": {"template": "email/ten", "provider": "mail"},
            },
            "variables": {"a": "dịch vụ công"},
        }
    )
    return Composer(definition=definition, templates=TEMPLATES, settings=Settings())


def _contacts(count: int) -> list[dict[str, Any]]:
    rng = random.Random(15)
    views: list[dict[str, Any]] = []
    for n in range(count):
        contact = Contact(
            id=n + 1,
            external_id=f"C{n}",
            full_name=rng.choice(NAMES) or None,
            phone=f"+8490{n:07d}",
            email=f"c{n}@example.vn",
            segment="citizen",
            ward=rng.choice(WARDS),
            tags=rng.choice([[], ["a"]]),
            attributes={},
        )
        view = contact_view(contact)
        assert view is not None
        views.append(view)
    return views


@pytest.mark.parametrize("template", ["sms/ten", "sms/chung", "sms/ca-nguoi"])
@pytest.mark.parametrize("unaccented", [False, True])
def test_composing_once_per_distinct_fields_gives_what_rendering_each_contact_gives(
    template: str, unaccented: bool
) -> None:
    composer = _composer(template, unaccented=unaccented)
    for view in _contacts(120):
        for channel, with_html in (("sms", False), ("email", False), ("email", True)):
            composed = composer.compose(channel, view, with_html=with_html)
            assert composed == composer._compose(channel, view, with_html=with_html)  # rendered afresh


def test_the_renderings_kept_are_one_per_distinct_value() -> None:
    composer = _composer("sms/ten", unaccented=True)
    views = _contacts(200)
    for view in views:
        composer.compose("sms", view, with_html=False)
    distinct = {(view["first_name"], view["ward"]) for view in views}
    assert len(composer._composed) == len(distinct) < len(views)
    whole = _composer("sms/ca-nguoi", unaccented=False)
    for view in views:
        whole.compose("sms", view, with_html=False)
    assert whole._composed == {}  # the template takes the whole contact: every one rendered
