"""Preview: per-channel counts, exclusions by reason, SMS encoding, parts and cost by carrier, samples."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from broadcaster.campaigns.audience import Exclusion, iter_audience
from broadcaster.campaigns.files import ProviderInfo, SendRules, load_campaign_file
from broadcaster.campaigns.preview import ChannelPreview, Preview, preview_version
from broadcaster.campaigns.schema import Audience
from broadcaster.campaigns.store import get_version, load_bundle
from broadcaster.contacts.importer import ImportReport, import_contacts
from broadcaster.context import AppContext
from broadcaster.db.models import Contact
from broadcaster.settings import Settings
from broadcaster.settings_sections import PriceTable
from channels.sms.encoding import analyse
from consent.suppression import suppress
from tests.broadcaster.conftest import ADMIN_LOGIN, database_dump, write_campaign
from tests.broadcaster.opt_outs import opt_out

CAMPAIGN = "thong-bao-thu-nghiem"
# The contacts of danh-ba.csv that get an SMS, by allocated carrier (DN-000007 is a landline, DN-000009 has
# no valid number). Only Viettel has its own price in the settings init writes; the rest pay the default.
VIETTEL = {"DN-000002", "DN-000006", "DN-000010"}
VINAPHONE_MOBIFONE = {"DN-000001", "DN-000003", "DN-000004", "DN-000005", "DN-000013"}
DEFAULT_PRICED = {None}  # Lý Công Minh, G-Mobile: no price of its own in the settings `init` writes


def _preview(
    context: AppContext, path: Path, *, samples: int = 3, settings: Settings | None = None
) -> Preview:
    bundle, problems = load_campaign_file(
        path,
        templates_dir=context.templates_dir,
        providers=ProviderInfo.all_from(context.settings),
        rules=SendRules.from_settings(context.settings),
    )
    assert bundle is not None, problems
    with context.sessions.begin() as session:
        outcome = load_bundle(session, bundle, actor=ADMIN_LOGIN, clock=context.clock)
        version = get_version(session, CAMPAIGN, outcome.version)
        return preview_version(
            session, version, settings or context.settings, now=context.clock.now(), samples=samples
        )


def _channel(preview: Preview, name: str) -> ChannelPreview:
    return next(item for item in preview.channels if item.channel == name)


def _import_text(context: AppContext, tmp_path: Path, text: str) -> ImportReport:
    path = tmp_path / "them.csv"
    path.write_text("full_name,phone,email,segment\n" + text, encoding="utf-8")
    with context.sessions.begin() as session:
        return import_contacts(session, path=path, actor=ADMIN_LOGIN, clock=context.clock)


def test_counts_and_exclusions_per_channel(
    context: AppContext, contacts: ImportReport, workdir: Path
) -> None:
    preview = _preview(context, write_campaign(workdir))
    assert (preview.campaign_id, preview.version, preview.status) == (CAMPAIGN, 1, "draft")
    assert preview.audience_contacts == 11
    assert preview.reached_contacts == 11
    sms, email = _channel(preview, "sms"), _channel(preview, "email")
    assert (sms.provider, sms.template) == ("sms_main", "sms/thu-nghiem")
    assert sms.recipients == 9
    assert sms.exclusions == {Exclusion.LANDLINE: 1, Exclusion.NO_PHONE: 1}
    assert email.recipients == 3  # DN-000001, DN-000007, DN-000009 (DN-000010's address was invalid)
    assert email.exclusions == {Exclusion.NO_EMAIL: 8}
    assert email.encodings == {}
    assert email.segments == 0
    assert email.estimated_cost == 0


def test_opted_out_suppressed_and_duplicate_addresses_are_excluded(
    context: AppContext, contacts: ImportReport, workdir: Path, tmp_path: Path
) -> None:
    with context.sessions.begin() as session:
        opt_out(session, "DN-000001", "sms", at=context.clock.now())
        opt_out(session, "DN-000007", "email", at=context.clock.now())
        suppress(
            session,
            channel="sms",
            address="+84935111222",  # DN-000005
            reason="unknown subscriber",
            source="smpp:0x0B",
            at=context.clock.now(),
        )
        suppress(
            session,
            channel="email",
            address="mai.dang@danang.gov.vn",  # DN-000009
            reason="5.1.1 user unknown",
            source="smtp:5.1.1",
            at=context.clock.now(),
        )
    # Another person sharing Lý Công Minh's phone, and someone using DN-000001's e-mail in upper case.
    _import_text(
        context, tmp_path, "Lý Thị Minh,0599 123 456,,citizen\nNguyễn An,,AN.NGUYEN@gmail.com,citizen\n"
    )

    preview = _preview(context, write_campaign(workdir))
    sms, email = _channel(preview, "sms"), _channel(preview, "email")
    assert sms.exclusions == {
        Exclusion.LANDLINE: 1,
        Exclusion.NO_PHONE: 2,  # DN-000009 and the new e-mail-only contact
        Exclusion.OPTED_OUT: 1,
        Exclusion.SUPPRESSED: 1,
        Exclusion.DUPLICATE: 1,
    }
    assert sms.recipients == 7
    assert email.exclusions == {
        Exclusion.NO_EMAIL: 9,
        Exclusion.OPTED_OUT: 1,
        Exclusion.SUPPRESSED: 1,
        Exclusion.DUPLICATE: 1,
    }
    assert email.recipients == 1
    assert preview.audience_contacts == 13
    # Reached on neither channel: DN-000005 (suppressed, no e-mail), DN-000007 (landline, opted out of
    # e-mail), DN-000009 (no phone, e-mail suppressed) and the two duplicates. DN-000001 still gets e-mail.
    assert preview.reached_contacts == 13 - 5


def test_unaccented_sms_is_gsm7_and_priced_by_carrier(
    context: AppContext, contacts: ImportReport, workdir: Path
) -> None:
    preview = _preview(context, write_campaign(workdir))
    sms = _channel(preview, "sms")
    text = sms.samples[0]["text"]
    assert text.isascii()
    assert text.startswith("SKHCN thong bao: tu 01/07/2025")
    parts = analyse(text).segments
    assert sms.encodings == {"gsm7": 9}
    assert sms.segments == 9 * parts
    assert sms.max_segments == parts
    assert sms.currency == "VND"
    assert sms.estimated_cost == pytest.approx(
        parts * (750 * len(VIETTEL) + 770 * len(VINAPHONE_MOBIFONE) + 800 * len(DEFAULT_PRICED))
    )


def test_accented_sms_is_ucs2_and_long_texts_take_more_parts(
    context: AppContext, contacts: ImportReport, workdir: Path
) -> None:
    long_text = "{{ org.short_name }}: " + "Thành phố Đà Nẵng thông báo lịch tiếp công dân định kỳ. " * 2
    path = write_campaign(
        workdir,
        sms_text=long_text,
        channels={
            "sms": {"template": "sms/thu-nghiem", "provider": "sms_main", "max_segments": 3},
            "email": {"template": "email/thu-nghiem", "provider": "mail"},
        },
    )
    sms = _channel(_preview(context, path), "sms")
    analysis = analyse(sms.samples[0]["text"])
    assert analysis.encoding.value == "ucs2"
    assert analysis.segments == 2  # 121 UCS-2 characters: more than 70, at most 2 x 67
    assert sms.encodings == {"ucs2": 9}
    assert (sms.segments, sms.max_segments) == (18, 2)
    assert sms.estimated_cost == pytest.approx(
        2 * (1500 * len(VIETTEL) + 1540 * len(VINAPHONE_MOBIFONE) + 1600 * len(DEFAULT_PRICED))
    )


def test_cost_follows_the_prices_in_the_settings(
    context: AppContext, contacts: ImportReport, workdir: Path
) -> None:
    cheap = context.settings.model_copy(deep=True)
    cheap.sms.prices = {"default": PriceTable(gsm7=100, ucs2=200), "Vinaphone": PriceTable(gsm7=10, ucs2=20)}
    cheap.sms.currency = "đồng"
    sms = _channel(_preview(context, write_campaign(workdir), settings=cheap), "sms")
    parts = sms.max_segments
    vinaphone = 2  # DN-000001, DN-000013
    assert sms.currency == "đồng"
    assert sms.estimated_cost == pytest.approx(parts * (10 * vinaphone + 100 * (9 - vinaphone)))


def test_samples_show_the_rendered_messages(
    context: AppContext, contacts: ImportReport, workdir: Path
) -> None:
    preview = _preview(context, write_campaign(workdir), samples=2)
    sms, email = _channel(preview, "sms"), _channel(preview, "email")
    assert len(sms.samples) == 2
    assert len(email.samples) == 2
    first = sms.samples[0]
    assert (first["to"], first["name"], first["subject"], first["encoding"]) == (
        "+84912345678",
        "Nguyễn Văn An",
        None,
        "gsm7",
    )
    mail = email.samples[0]
    assert mail["to"] == "an.nguyen@gmail.com"
    assert mail["subject"] == "Thông báo từ 01/07/2025: cấp đổi giấy phép lái xe"
    assert mail["text"].startswith("Kính gửi Nguyễn Văn An,")
    assert "Sở Khoa học và Công nghệ thành phố Đà Nẵng" in mail["text"]
    assert mail["segments"] is None
    none = _preview(context, write_campaign(workdir), samples=0)
    assert all(item.samples == [] for item in none.channels)


def test_preview_changes_nothing(context: AppContext, contacts: ImportReport, workdir: Path) -> None:
    _preview(context, write_campaign(workdir))
    before = database_dump(context.engine)
    with context.sessions() as session:
        preview_version(session, get_version(session, CAMPAIGN, 1), context.settings, now=context.clock.now())
    assert database_dump(context.engine) == before


@pytest.mark.parametrize(
    ("audience", "expected"),
    [
        ({"segments": ["business"]}, {"DN-000003"}),
        ({"segments": ["citizen"], "filters": {"district": ["Hải Châu", "Sơn Trà"]}}, {"DN-000001"}),
        ({"segments": "civil_servant", "filters": {"tags_any": ["cchc"]}}, set()),
        ({"segments": ["citizen"], "filters": {"tags_any": ["y-te"]}}, {"DN-000013"}),
        ({"segments": ["citizen"], "filters": {"language": ["en"]}}, {"DN-000013"}),
        (
            {"segments": ["citizen"], "filters": {"ward": ["Hòa Châu"]}, "exclude_tags": ["cchc"]},
            {"DN-000006"},
        ),
    ],
)
def test_audience_filters(
    context: AppContext, contacts: ImportReport, workdir: Path, audience: dict[str, Any], expected: set[str]
) -> None:
    preview = _preview(context, write_campaign(workdir, audience=audience))
    assert preview.audience_contacts == len(expected)
    with context.sessions() as session:
        found = {
            c.external_id for page in iter_audience(session, Audience.model_validate(audience)) for c in page
        }
    assert found == expected


def test_audience_pages_by_id_without_repeats(context: AppContext, contacts: ImportReport) -> None:
    audience = Audience.model_validate({"segments": ["citizen", "civil_servant", "business"]})
    with context.sessions() as session:
        pages = [[c.id for c in page] for page in iter_audience(session, audience, page_size=3)]
        all_ids = sorted(session.scalars(select(Contact.id)))
    assert [len(p) for p in pages] == [3, 3, 3, 2]
    assert [i for page in pages for i in page] == all_ids


def test_exclude_tags_drop_contacts_before_channels(
    context: AppContext, contacts: ImportReport, workdir: Path, import_fixture: Callable[..., ImportReport]
) -> None:
    audience = {"segments": ["citizen", "civil_servant", "business"], "exclude_tags": ["cchc", "thue"]}
    preview = _preview(context, write_campaign(workdir, audience=audience))
    assert preview.audience_contacts == 9  # DN-000001 (cchc) and DN-000013 (thue) are left out
    assert _channel(preview, "sms").recipients == 7
