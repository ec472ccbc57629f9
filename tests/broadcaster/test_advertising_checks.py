"""Advertising campaigns at validation (Decree 91/2020 arts. 15-16, docs/domain.md §1.1): the SMS label in the
form the provider's `label_brackets` setting asks for, the opt-out instructions as the SMS's last sentence with
a configured keyword, and the unsubscribe link in the HTML part of an e-mail. Each refusal names the template
file, its line and the field; through the CLI, a refused load changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from broadcaster.campaigns.files import Problem, ProviderInfo, SendRules, load_campaign_file
from broadcaster.campaigns.messages import Composer
from broadcaster.campaigns.sample_checks import SAMPLE_UNSUBSCRIBE_URL
from broadcaster.context import AppContext
from broadcaster.settings import Settings
from broadcaster.settings_sections import ConsentSettings, ProviderSettings
from tests.broadcaster.conftest import database_dump, write_campaign
from tests.broadcaster.test_cli import CAMPAIGN_FILE, Cli, cli, one_line, team

__all__ = ["cli", "team"]  # the fixtures, shared with test_cli

REFUSAL = "Từ chối: soạn TC gửi 8079."
BRACKETS = {"sms_main": ProviderInfo("sms_main", "sms"), "mail": ProviderInfo("mail", "email")}
NO_BRACKETS = {**BRACKETS, "sms_main": ProviderInfo("sms_main", "sms", label_brackets=False)}
HTML_WITHOUT_LINK = "<p>Kính gửi {{ contact.full_name }}</p>\n<p>Ưu đãi phí chuyển phát hồ sơ.</p>\n"


def campaign(
    tmp_path: Path, *, sms: str | None = None, html: str | None = None, purpose: str = "advertising"
) -> Path:
    """An advertising campaign file with an SMS channel (text ``sms``) or an e-mail one (HTML ``html``)."""
    templates = tmp_path / "templates"
    channels: dict[str, Any] = {}
    if sms is not None:
        (templates / "sms").mkdir(parents=True, exist_ok=True)
        (templates / "sms" / "qc.txt.j2").write_text(sms, encoding="utf-8")
        channels["sms"] = {"template": "sms/qc", "provider": "sms_main"}
    if html is not None:
        (templates / "email").mkdir(parents=True, exist_ok=True)
        (templates / "email" / "qc.subject.j2").write_text("[QC] Ưu đãi", encoding="utf-8")
        (templates / "email" / "qc.txt.j2").write_text("Ưu đãi phí chuyển phát hồ sơ.\n", encoding="utf-8")
        (templates / "email" / "qc.html.j2").write_text(html, encoding="utf-8")
        channels["email"] = {"template": "email/qc", "provider": "mail"}
    definition = {
        "id": "quang-cao-thu",
        "title": "Quảng cáo thử",
        "lead_agency": "Bưu điện thành phố",
        "topics": ["thu_tuc_hanh_chinh"],
        "purpose": purpose,
        "audience": {"segments": ["citizen"]},
        "channels": channels,
    }
    path = tmp_path / "quang-cao-thu.yaml"
    path.write_text(yaml.safe_dump(definition, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def problems_of(
    path: Path, providers: dict[str, ProviderInfo] = BRACKETS, rules: SendRules | None = None
) -> list[Problem]:
    bundle, problems = load_campaign_file(
        path, templates_dir=path.parent / "templates", providers=providers, rules=rules
    )
    assert (bundle is None) == bool(problems)
    return problems


def sms_file(path: Path) -> Path:
    return path.parent / "templates" / "sms" / "qc.txt.j2"


# --- the label --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("providers", "text"),
    [
        (BRACKETS, f"[QC] Ưu đãi phí chuyển phát. {REFUSAL}"),
        (BRACKETS, f"[AD] Delivery fee discount. {REFUSAL}"),
        (NO_BRACKETS, f"QC Ưu đãi phí chuyển phát. {REFUSAL}"),
        (NO_BRACKETS, f"AD Delivery fee discount. {REFUSAL}"),
    ],
)
def test_the_label_the_provider_takes_is_accepted(
    tmp_path: Path, providers: dict[str, ProviderInfo], text: str
) -> None:
    assert problems_of(campaign(tmp_path, sms=text), providers) == []


@pytest.mark.parametrize(
    ("providers", "text", "wanted", "setting"),
    [
        (BRACKETS, f"QC Ưu đãi. {REFUSAL}", "'[QC]' or '[AD]'", "label_brackets = true, the default"),
        (BRACKETS, f"[ADV] Ưu đãi. {REFUSAL}", "'[QC]' or '[AD]'", "label_brackets = true"),
        (BRACKETS, f"Ưu đãi. {REFUSAL}", "'[QC]' or '[AD]'", "label_brackets = true"),
        (NO_BRACKETS, f"[QC] Ưu đãi. {REFUSAL}", "'QC ' or 'AD '", "label_brackets = false"),
        (NO_BRACKETS, f"QCVN ưu đãi. {REFUSAL}", "'QC ' or 'AD '", "label_brackets = false"),
    ],
)
def test_a_label_in_the_wrong_form_names_the_file_line_field_and_setting(
    tmp_path: Path, providers: dict[str, ProviderInfo], text: str, wanted: str, setting: str
) -> None:
    path = campaign(
        tmp_path, sms="\n" + text
    )  # a leading blank line: the rendered SMS still starts at line 1
    (problem,) = problems_of(path, providers)
    assert (problem.file, problem.line, problem.field) == (sms_file(path), 1, "channels.sms.template")
    assert f"must start with {wanted}" in problem.message
    assert "art. 15" in problem.message
    assert f"provider 'sms_main' has {setting}" in problem.message
    assert f"(used by {path}:" in problem.message


def test_purposes_without_the_label_rule_need_neither_label_nor_refusal(tmp_path: Path) -> None:
    assert problems_of(campaign(tmp_path, sms="Thủ tục mới.", purpose="public_information")) == []
    assert problems_of(campaign(tmp_path, sms="QC thông báo.", purpose="official_duty"), NO_BRACKETS) == []


def test_the_provider_setting_reaches_validation() -> None:
    sms = ProviderSettings(channel="sms", type="smpp", label_brackets=False)
    assert ProviderInfo.from_settings("sms_main", sms) == ProviderInfo("sms_main", "sms", False)
    assert (
        "label_brackets" not in sms.options()
    )  # the adapter is built from the options: it takes no such key
    default = ProviderSettings(channel="sms", type="smpp")
    assert ProviderInfo.from_settings("sms_main", default).label_brackets is True


# --- the refusal at the end -------------------------------------------------------------------------------


def test_an_sms_without_refusal_instructions_is_refused_at_its_last_line(tmp_path: Path) -> None:
    path = campaign(tmp_path, sms="[QC] Ưu đãi phí chuyển phát hồ sơ.\nChi tiết: danang.gov.vn.\n\n")
    (problem,) = problems_of(path)
    assert (problem.file, problem.line, problem.field) == (sms_file(path), 2, "channels.sms.template")
    assert "must end with how to refuse" in problem.message
    assert "art. 16" in problem.message
    assert "'Chi tiết: danang.gov.vn.'" in problem.message
    assert "TC, HUY, TU CHOI, STOP ([consent] opt_out_keywords)" in problem.message
    assert "comes earlier" not in problem.message


def test_refusal_instructions_in_the_middle_are_not_enough(tmp_path: Path) -> None:
    path = campaign(tmp_path, sms=f"[QC] {REFUSAL} Ưu đãi giảm 20% phí chuyển phát!")
    (problem,) = problems_of(path)
    assert (problem.file, problem.line) == (sms_file(path), 1)
    assert "its last sentence 'Ưu đãi giảm 20% phí chuyển phát!'" in problem.message
    assert "'TC' comes earlier: move the refusal instructions to the end" in problem.message


@pytest.mark.parametrize(
    "ending",
    [
        "Từ chối nhận tin, soạn HUỶ gửi 8079",  # diacritics and no final full stop
        "Không muốn nhận? Nhắn tc tới 8079.",  # any case; the last sentence after a question
        "Giá 1.000 đ/tin. Tu  choi:   soan STOP gui 8079 (mien phi).",  # unaccented, spaces, "1.000" whole
    ],
)
def test_any_configured_keyword_in_the_last_sentence_counts(tmp_path: Path, ending: str) -> None:
    assert problems_of(campaign(tmp_path, sms=f"[QC] Ưu đãi phí chuyển phát. {ending}")) == []


def test_a_keyword_counts_only_as_a_whole_word(tmp_path: Path) -> None:
    (problem,) = problems_of(campaign(tmp_path, sms="[QC] Ưu đãi. Tổng đài hỗ trợ nonstop 1022."))
    assert "names none of the opt-out keywords" in problem.message


def test_the_configured_keyword_list_is_the_one_looked_for(tmp_path: Path) -> None:
    rules = SendRules(opt_out_keywords=ConsentSettings(opt_out_keywords=["NGỪNG", "DUNG LAI"]).keywords())
    refused = campaign(tmp_path, sms=f"[QC] Ưu đãi. {REFUSAL}")
    (problem,) = problems_of(refused, rules=rules)
    assert "opt-out keywords NGỪNG, DUNG LAI ([consent] opt_out_keywords)" in problem.message
    accepted = campaign(tmp_path, sms="[QC] Ưu đãi. Không nhận nữa: soạn NGUNG gửi 8079.")
    assert problems_of(accepted, rules=rules) == []
    assert problems_of(accepted) != []  # the default list has no NGUNG


# --- e-mail -----------------------------------------------------------------------------------------------


def test_an_advertising_email_whose_html_drops_the_unsubscribe_link_is_refused(tmp_path: Path) -> None:
    path = campaign(tmp_path, html=HTML_WITHOUT_LINK)
    (problem,) = problems_of(path)
    html_file = path.parent / "templates" / "email" / "qc.html.j2"
    assert (problem.file, problem.line, problem.field) == (html_file, 2, "channels.email.template")
    assert "must carry the unsubscribe link" in problem.message
    assert "{{ unsubscribe_url }}" in problem.message
    # The same HTML is fine for public information, which the rule does not bind.
    assert problems_of(campaign(tmp_path, html=HTML_WITHOUT_LINK, purpose="public_information")) == []


def test_both_parts_of_an_accepted_advertising_email_carry_the_link(tmp_path: Path) -> None:
    html = HTML_WITHOUT_LINK + '<a href="{{ unsubscribe_url }}">Hủy đăng ký</a>\n'
    path = campaign(tmp_path, html=html)
    bundle, problems = load_campaign_file(path, templates_dir=path.parent / "templates", providers=BRACKETS)
    assert problems == []
    assert bundle is not None
    composer = Composer(definition=bundle.definition, templates=bundle.templates, settings=Settings())
    # The text template shows no link: the composer adds the standard line, so the sent text carries it.
    text = composer.email_text(None, unsubscribe_url=SAMPLE_UNSUBSCRIBE_URL)
    assert text.rstrip().endswith(SAMPLE_UNSUBSCRIBE_URL)
    assert SAMPLE_UNSUBSCRIBE_URL in (composer.html(None, unsubscribe_url=SAMPLE_UNSUBSCRIBE_URL) or "")


# --- through the command line: the working directory's settings, nothing changed on refusal -------------


def test_load_follows_the_provider_setting_and_a_refused_load_changes_nothing(
    cli: Cli, context: AppContext, workdir: Path, team: None
) -> None:
    sms_only = {"sms": {"template": "sms/thu-nghiem", "provider": "sms_main"}}
    write_campaign(
        workdir, sms_text=f"[QC] Ưu đãi phí chuyển phát. {REFUSAL}", purpose="advertising", channels=sms_only
    )
    cli("campaigns", "validate", CAMPAIGN_FILE)  # the default setting takes brackets

    config = workdir / "broadcaster.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("label_brackets = true", "label_brackets = false"),
        encoding="utf-8",
    )
    before = database_dump(context.engine)
    for command in ("validate", "load"):
        result = cli("campaigns", command, CAMPAIGN_FILE, user="bien_tap", expect=1)
        message = one_line(result.stderr)
        assert "templates/sms/thu-nghiem.txt.j2:1: channels.sms.template:" in message
        assert "must start with 'QC ' or 'AD '" in message
        assert "provider 'sms_main' has label_brackets = false" in message
    assert database_dump(context.engine) == before

    write_campaign(
        workdir, sms_text=f"QC Ưu đãi phí chuyển phát. {REFUSAL}", purpose="advertising", channels=sms_only
    )
    cli("campaigns", "load", CAMPAIGN_FILE, user="bien_tap")
    assert database_dump(context.engine) != before
