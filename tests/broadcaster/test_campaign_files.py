"""Campaign files: the shipped campaigns validate, bad files give the right line, the content hash is stable."""

from __future__ import annotations

import shutil
import unicodedata
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from broadcaster.campaigns.files import (
    Problem,
    ProviderInfo,
    compute_content_hash,
    load_campaign_file,
    validate_paths,
)
from broadcaster.campaigns.schema import CampaignDefinition, Purpose, Topic
from channels.social.facebook import FacebookPageAdapter

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "campaigns"
FIXTURE_TEMPLATES = FIXTURES / "templates"
PROVIDERS = {
    "sms_main": ProviderInfo("sms_main", "sms"),
    "mail": ProviderInfo("mail", "email"),
    "app": ProviderInfo("app", "push"),
    "app_danang": ProviderInfo("app_danang", "push"),
    "fanpage": ProviderInfo("fanpage", "social", capabilities=FacebookPageAdapter.capabilities),
    "fanpage_skhcn": ProviderInfo(
        "fanpage_skhcn",
        "social",
        capabilities=FacebookPageAdapter.capabilities,
        targets=frozenset({"100000000000143"}),  # the Page id of the settings broadcaster init writes
    ),
}
VN = ZoneInfo("Asia/Ho_Chi_Minh")


def line_of(path: Path, needle: str) -> int:
    """1-based line of the first line containing ``needle`` (so tests do not hard-code line numbers)."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def load_bad(name: str) -> list[Problem]:
    bundle, problems = load_campaign_file(
        FIXTURES / "bad" / name, templates_dir=FIXTURE_TEMPLATES, providers=PROVIDERS
    )
    assert bundle is None
    assert problems
    return problems


# --- shipped campaigns ------------------------------------------------------------------------------------


def test_every_shipped_campaign_validates() -> None:
    bundles, problems = validate_paths(
        [REPO / "campaigns"], templates_dir=REPO / "templates", providers=PROVIDERS
    )
    assert [str(p) for p in problems] == []
    ids = {bundle.definition.id for bundle in bundles}
    assert "thong-bao-dich-vu-cong" in ids
    plan = [b for b in bundles if "plan-143" in b.source.parts]
    assert 5 <= len(plan) <= 7
    # The plan's own activities, with the forms of schedule the plan asks for.
    rules = {b.definition.plan_item: b.definition.schedule for b in plan}
    assert {"III.2", "III.4", "III.9", "V"} <= set(rules)
    rrules = {b.definition.schedule.rrule for b in plan if b.definition.schedule}
    assert {"FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", "FREQ=MONTHLY;INTERVAL=3", "FREQ=YEARLY"} <= rrules
    report = rules["V"]
    assert report is not None
    assert report.before_deadlines == ["05-30", "11-30"]


def test_example_campaign_is_the_demo_shape() -> None:
    bundle, problems = load_campaign_file(
        REPO / "campaigns" / "examples" / "thong-bao-dich-vu-cong.yaml",
        templates_dir=REPO / "templates",
        providers=PROVIDERS,
    )
    assert problems == []
    assert bundle is not None
    definition = bundle.definition
    assert definition.audience.segments == ["citizen", "civil_servant"]
    assert definition.channels["sms"].unaccented is True
    assert set(definition.channels) == {"sms", "email"}
    # The snapshot holds every file the templates use, layouts and includes too.
    assert "layouts/email.html.j2" in bundle.templates
    assert "partials/chu-ky.txt.j2" in bundle.templates
    assert "sms/thong-bao-dvc.txt.j2" in bundle.templates


def test_shipped_text_is_nfc_utf8() -> None:
    files = [p for root in ("campaigns", "templates") for p in (REPO / root).rglob("*") if p.is_file()]
    assert len(files) > 20
    for file in files:
        text = file.read_text(encoding="utf-8")
        assert unicodedata.normalize("NFC", text) == text, file


def test_agency_names_come_from_the_plan() -> None:
    seed = REPO.parent / "shared" / "seed" / "plan-143-KH-UBND-2022.txt"
    if not seed.is_file():
        pytest.skip(f"the plan text is not on this machine ({seed})")
    plan_text = seed.read_text(encoding="utf-8")
    bundles, _ = validate_paths(
        [REPO / "campaigns" / "plan-143"], templates_dir=REPO / "templates", providers=PROVIDERS
    )
    for bundle in bundles:
        for agency in [bundle.definition.lead_agency, *bundle.definition.co_agencies]:
            assert agency in plan_text, (bundle.definition.id, agency)


# --- bad files --------------------------------------------------------------------------------------------


def test_malformed_yaml_points_at_the_bad_line() -> None:
    path = FIXTURES / "bad" / "malformed.yaml"
    (problem,) = load_bad("malformed.yaml")
    assert problem.file == path
    assert problem.line == line_of(path, "   provider: sms_main")
    assert "malformed YAML" in problem.message


def test_typo_field_names_the_field_and_its_line() -> None:
    path = FIXTURES / "bad" / "typo-field.yaml"
    problems = load_bad("typo-field.yaml")
    typo = next(p for p in problems if p.field == "channels.sms.provder")
    assert typo.line == line_of(path, "provder:")
    assert "unknown field 'provder'" in typo.message
    assert "did you mean 'provider'" in typo.message
    missing = next(p for p in problems if p.field == "channels.sms.provider")
    assert missing.line == line_of(path, "  sms:")


def test_unknown_template_variables_name_template_and_line() -> None:
    problems = load_bad("unknown-variable.yaml")
    template = FIXTURE_TEMPLATES / "sms" / "bien-la.txt.j2"
    found = {(p.file, p.line): p.message for p in problems}
    assert "contact.nmae" in found[(template, 2)]
    assert "vars.khong_khai_bao" in found[(template, 3)]
    assert "bien_tu_do" in found[(template, 4)]
    # A template problem also says which campaign line uses the template.
    campaign = FIXTURES / "bad" / "unknown-variable.yaml"
    assert f"{campaign}:{line_of(campaign, 'template:')}" in found[(template, 2)]


def test_missing_template_names_the_expected_path() -> None:
    path = FIXTURES / "bad" / "missing-template.yaml"
    (problem,) = load_bad("missing-template.yaml")
    assert problem.line == line_of(path, "template:")
    assert str(FIXTURE_TEMPLATES / "sms" / "khong-ton-tai.txt.j2") in problem.message


def test_missing_include_names_the_including_template_line() -> None:
    (problem,) = load_bad("missing-include.yaml")
    assert problem.file == FIXTURE_TEMPLATES / "sms" / "thieu-layout.txt.j2"
    assert problem.line == 1
    assert "partials/khong-co.txt.j2" in problem.message


def test_template_syntax_error_has_template_and_line() -> None:
    (problem,) = load_bad("syntax-error.yaml")
    assert problem.file == FIXTURE_TEMPLATES / "sms" / "cu-phap-loi.txt.j2"
    assert problem.line == 3
    assert "syntax error" in problem.message


def test_unknown_provider_message() -> None:
    path = FIXTURES / "bad" / "unknown-provider.yaml"
    (problem,) = load_bad("unknown-provider.yaml")
    assert str(problem) == (
        f"{path}:{line_of(path, 'provider:')}: channels.sms.provider: "
        "unknown provider 'smsc_main' (known: sms_main, mail, app, app_danang, fanpage, fanpage_skhcn)"
    )


def test_provider_of_the_wrong_channel() -> None:
    (problem,) = load_bad("wrong-channel.yaml")
    assert problem.field == "channels.sms.provider"
    assert "sends email, not sms" in problem.message


def test_bad_rrule_points_at_rrule() -> None:
    path = FIXTURES / "bad" / "bad-rrule.yaml"
    (problem,) = load_bad("bad-rrule.yaml")
    assert problem.field == "schedule.rrule"
    assert problem.line == line_of(path, "rrule:")
    assert "FORTNIGHTLY" in problem.message


def test_a_page_provider_without_targets_is_refused_on_its_line() -> None:
    path = FIXTURES / "bad" / "social-channel.yaml"
    problems = load_bad("social-channel.yaml")
    social = next(p for p in problems if p.field == "channels.social.provider")
    assert social.line == line_of(path, "provider: fanpage")
    assert "posts to named targets: list them under targets" in social.message


def test_push_campaign_validates_with_its_title_body_and_link() -> None:
    bundle, problems = load_campaign_file(
        FIXTURES / "push.yaml", templates_dir=FIXTURE_TEMPLATES, providers=PROVIDERS
    )
    assert problems == []
    assert bundle is not None
    assert sorted(bundle.templates) == ["push/ok.link.j2", "push/ok.title.j2", "push/ok.txt.j2"]


def test_push_payload_over_4096_bytes_is_refused_naming_the_file() -> None:
    (problem,) = load_bad("push-too-large.yaml")
    assert problem.field == "channels.push.template"
    assert problem.file == FIXTURE_TEMPLATES / "push" / "qua-lon.txt.j2"
    assert "more than FCM's 4096" in problem.message


def test_push_title_past_its_limit_is_refused_naming_the_file() -> None:
    (problem,) = load_bad("push-long-title.yaml")
    assert problem.file == FIXTURE_TEMPLATES / "push" / "tieu-de-dai.title.j2"
    assert "more than 100" in problem.message


def test_push_channel_needs_a_push_provider() -> None:
    path = FIXTURES / "bad" / "push-wrong-provider.yaml"
    (problem,) = load_bad("push-wrong-provider.yaml")
    assert problem.field == "channels.push.provider"
    assert problem.line == line_of(path, "provider:")
    assert "sends sms, not push" in problem.message


def test_duplicate_ids_across_files() -> None:
    bundles, problems = validate_paths(
        [FIXTURES / "duplicates"], templates_dir=FIXTURE_TEMPLATES, providers=PROVIDERS
    )
    assert len(bundles) == 1
    (problem,) = problems
    assert problem.file == FIXTURES / "duplicates" / "b.yaml"
    assert problem.field == "id"
    assert problem.line == 1
    assert "a.yaml" in problem.message


def test_duplicate_key_in_one_file() -> None:
    path = FIXTURES / "bad" / "duplicate-key.yaml"
    (problem,) = load_bad("duplicate-key.yaml")
    assert problem.line == line_of(path, "lần hai")
    assert "appears twice" in problem.message


def test_advertising_sms_needs_the_label_first() -> None:
    (problem,) = load_bad("advertising-no-label.yaml")
    assert problem.file == FIXTURE_TEMPLATES / "sms" / "quang-cao.txt.j2"
    assert "[QC]" in problem.message
    assert "art. 15" in problem.message
    bundle, problems = load_campaign_file(
        FIXTURES / "advertising-labelled.yaml", templates_dir=FIXTURE_TEMPLATES, providers=PROVIDERS
    )
    assert problems == []
    assert bundle is not None
    assert bundle.definition.purpose is Purpose.ADVERTISING


def test_sms_longer_than_max_segments() -> None:
    path = FIXTURES / "bad" / "too-long.yaml"
    (problem,) = load_bad("too-long.yaml")
    assert problem.field == "channels.sms.max_segments"
    assert problem.line == line_of(path, "max_segments:")
    assert "4 parts" in problem.message


def test_sms_only_option_on_email_is_located() -> None:
    path = FIXTURES / "bad" / "email-sms-option.yaml"
    (problem,) = load_bad("email-sms-option.yaml")
    assert problem.field == "channels.email.unaccented"
    assert problem.line == line_of(path, "unaccented:")


def test_validate_paths_reports_a_missing_path(tmp_path: Path) -> None:
    bundles, problems = validate_paths(
        [tmp_path / "nope.yaml"], templates_dir=FIXTURE_TEMPLATES, providers=PROVIDERS
    )
    assert bundles == []
    assert "no such file" in problems[0].message


# --- content hash and YAML details -----------------------------------------------------------------------


REORDERED = """\
variables:
  loi_nhan: Hồ sơ của ông/bà đã được tiếp nhận.
channels:
  email: {provider: mail, template: email/ok}
  sms: {max_segments: 2, unaccented: true, provider: sms_main, template: sms/ok}
audience: {segments: [citizen]}
purpose: public_information
topics: [thu_tuc_hanh_chinh]
lead_agency: Sở Thông tin và Truyền thông
plan_item: III.9
title: Chiến dịch mẫu cho kiểm thử
id: chien-dich-mau
"""


def test_content_hash_ignores_key_order_and_follows_templates(tmp_path: Path) -> None:
    original, problems = load_campaign_file(
        FIXTURES / "good.yaml", templates_dir=FIXTURE_TEMPLATES, providers=PROVIDERS
    )
    assert problems == []
    assert original is not None
    reordered_file = tmp_path / "reordered.yaml"
    reordered_file.write_text(REORDERED, encoding="utf-8")
    reordered, problems = load_campaign_file(
        reordered_file, templates_dir=FIXTURE_TEMPLATES, providers=PROVIDERS
    )
    assert problems == []
    assert reordered is not None
    assert reordered.content_hash == original.content_hash

    templates = tmp_path / "templates"
    shutil.copytree(FIXTURE_TEMPLATES, templates)
    same, _ = load_campaign_file(FIXTURES / "good.yaml", templates_dir=templates, providers=PROVIDERS)
    assert same is not None
    assert same.content_hash == original.content_hash
    layout = templates / "layouts" / "email.html.j2"
    layout.write_text(layout.read_text(encoding="utf-8").replace("<h1>", "<h1 class='x'>"), encoding="utf-8")
    changed, _ = load_campaign_file(FIXTURES / "good.yaml", templates_dir=templates, providers=PROVIDERS)
    assert changed is not None
    assert changed.content_hash != original.content_hash

    # The stored JSON form hashes the same as the model (a stored snapshot can be re-verified).
    dumped = original.definition.model_dump(mode="json")
    assert compute_content_hash(definition=dumped, templates=original.templates) == original.content_hash


def _link_out(templates: Path, linked: str, outside: Path) -> Path:
    """Move ``templates/linked`` (a file or a folder) to ``outside`` and leave a symbolic link to it."""
    shutil.move(templates / linked, outside)
    (templates / linked).symlink_to(outside)
    return outside


@pytest.mark.parametrize(
    "linked",
    ["sms/ok.txt.j2", "layouts/email.html.j2", "layouts"],
    ids=["template", "extended layout", "folder"],
)
def test_a_template_linked_to_a_file_outside_the_templates_is_refused(tmp_path: Path, linked: str) -> None:
    """A symbolic link (the template itself, a layout it extends, or a folder on the way) that leads outside
    the templates directory (e.g. to /etc/hostname) is refused, naming the file and where it leads."""
    templates = tmp_path / "templates"
    shutil.copytree(FIXTURE_TEMPLATES, templates)
    target = _link_out(templates, linked, tmp_path / "elsewhere")

    bundle, problems = load_campaign_file(
        FIXTURES / "good.yaml", templates_dir=templates, providers=PROVIDERS
    )

    assert bundle is None
    (problem,) = problems
    assert problem.file == templates / ("layouts/email.html.j2" if linked == "layouts" else linked)
    assert str(target.resolve()) in problem.message
    assert "outside the templates directory" in problem.message


def test_a_link_inside_the_templates_directory_is_followed(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(FIXTURE_TEMPLATES, templates)
    shared = templates / "sms" / "chung.txt.j2"
    shared.write_text("{{ org.name }}: {{ vars.loi_nhan }}", encoding="utf-8")
    (templates / "sms" / "ok.txt.j2").unlink()
    (templates / "sms" / "ok.txt.j2").symlink_to(shared)
    bundle, problems = load_campaign_file(
        FIXTURES / "good.yaml", templates_dir=templates, providers=PROVIDERS
    )
    assert problems == []
    assert bundle is not None
    assert bundle.templates["sms/ok.txt.j2"] == shared.read_text(encoding="utf-8")


def test_clock_times_and_phone_like_numbers_keep_their_meaning(tmp_path: Path) -> None:
    text = (FIXTURES / "good.yaml").read_text(encoding="utf-8")
    text = text.replace("variables:\n", "variables:\n  hotline: 02363822\n")
    text += "schedule:\n  start: 2025-03-03 08:00\n  window:\n    start: 7:30\n    end: 21:00\n"
    path = tmp_path / "times.yaml"
    path.write_text(text, encoding="utf-8")
    bundle, problems = load_campaign_file(path, templates_dir=FIXTURE_TEMPLATES, providers=PROVIDERS)
    assert problems == []
    assert bundle is not None
    schedule = bundle.definition.schedule
    assert schedule is not None
    assert schedule.window is not None
    assert (schedule.window.start, schedule.window.end) == (time(7, 30), time(21, 0))
    assert bundle.definition.variables["hotline"] == "02363822"
    assert schedule.start == datetime(2025, 3, 3, 8, 0, tzinfo=VN)


def test_topics_have_vietnamese_labels() -> None:
    assert len(Topic) == 6
    assert Topic.THE_CHE.label == "Cải cách thể chế"
    assert all(topic.label and unicodedata.is_normalized("NFC", topic.label) for topic in Topic)


def test_schema_rejects_bad_ids_and_advertising_without_refusal() -> None:
    base = {
        "id": "ok-id",
        "title": "T",
        "lead_agency": "Sở Nội vụ",
        "topics": ["cong_vu"],
        "purpose": "public_information",
        "audience": {"segments": "civil_servant"},
        "channels": {"email": {"template": "email/ok", "provider": "mail"}},
    }
    assert CampaignDefinition.model_validate(base).audience.segments == ["civil_servant"]
    with pytest.raises(ValidationError):
        CampaignDefinition.model_validate({**base, "id": "Bad_Id"})
    with pytest.raises(ValidationError, match=r"art\. 16"):
        CampaignDefinition.model_validate(
            {
                **base,
                "purpose": "advertising",
                "channels": {
                    "email": {"template": "email/ok", "provider": "mail", "allow_unsubscribe": False}
                },
            }
        )
    with pytest.raises(ValidationError, match="not a sms template"):
        CampaignDefinition.model_validate(
            {**base, "channels": {"sms": {"template": "email/ok", "provider": "x"}}}
        )
