"""Settings: ``broadcaster.toml`` written by ``init``, ``BROADCASTER_*`` overrides, clear errors, masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.settings import (
    CONFIG_FILENAME,
    LOG_FORMAT_ENV,
    SettingsError,
    configured_log_format,
    find_config,
    load_settings,
)
from broadcaster.settings_sections import mask_secrets
from consent.keywords import DEFAULT_OPT_OUT_KEYWORDS


@pytest.fixture
def config(workdir: Path) -> Path:
    return workdir / CONFIG_FILENAME


def test_init_writes_settings_that_load_with_the_files_values(config: Path) -> None:
    settings = load_settings(config)
    assert settings.org.short_name == "SKHCN"
    assert settings.sms.prices["Viettel"].gsm7 == 750
    assert settings.providers["sms_main"].channel == "sms"
    assert settings.providers["mail"].options()["port"] == 2525
    # Relative paths resolve against the file's directory, not the process's working directory.
    assert settings.base_dir == config.parent
    assert settings.database_url == f"sqlite:///{config.parent / 'broadcaster.sqlite3'}"
    assert settings.broker_url == f"sqla+sqlite:///{config.parent / 'broker.sqlite3'}"
    assert settings.path(settings.templates_dir) == config.parent / "templates"


def test_values_in_the_file_change_the_settings(config: Path) -> None:
    text = config.read_text(encoding="utf-8")
    text = text.replace("chunk_size = 500", "chunk_size = 12")
    text = text.replace('short_name = "SKHCN"', 'short_name = "SỞ KH&CN"')
    config.write_text(text, encoding="utf-8")
    settings = load_settings(config)
    assert settings.delivery.chunk_size == 12
    assert settings.org.short_name == "SỞ KH&CN"


def test_environment_overrides_the_file_key_by_key(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROADCASTER_DELIVERY__CHUNK_SIZE", "7")
    monkeypatch.setenv("BROADCASTER_PROVIDERS__SMS_MAIN__HOST", "10.1.2.3")
    settings = load_settings(config)
    assert settings.delivery.chunk_size == 7
    sms_main = settings.providers["sms_main"].options()
    assert sms_main["host"] == "10.1.2.3"
    # The other keys of the same section still come from the file.
    assert sms_main["port"] == 2775
    assert sms_main["system_id"] == "skhcn"


def test_missing_file_says_how_to_create_one(tmp_path: Path, isolated_env: None) -> None:
    with pytest.raises(SettingsError, match=r"no settings file at .*broadcaster init"):
        load_settings(tmp_path / CONFIG_FILENAME)


def test_defaults_apply_without_a_file_when_allowed(tmp_path: Path, isolated_env: None) -> None:
    settings = load_settings(tmp_path / CONFIG_FILENAME, require_file=False)
    assert settings.delivery.chunk_size == 500
    assert settings.sms.price(carrier="Viettel", encoding="ucs2") == 1500


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        (
            "chunk_size = 500",
            'chunk_size = "nhiều"',
            r"delivery\.chunk_size: Input should be a valid integer",
        ),
        ("chunk_size = 500", "chunk_size = 0", r"delivery\.chunk_size: Input should be greater than"),
        ("[delivery]", "[delivery]\nchunk_sise = 3", r"delivery\.chunk_sise: Extra inputs"),
        ('type = "smpp"', 'type = "carrier-pigeon"', r"providers.*carrier-pigeon"),
        ("gsm7 = 750", "gsm7 = -1", r"sms\.prices\.Viettel\.gsm7"),
    ],
)
def test_invalid_values_name_the_key_and_the_file(config: Path, replace: str, by: str, expected: str) -> None:
    text = config.read_text(encoding="utf-8")
    assert replace in text
    config.write_text(text.replace(replace, by, 1), encoding="utf-8")
    with pytest.raises(SettingsError, match=expected) as caught:
        load_settings(config)
    assert str(config) in str(caught.value)


def test_push_and_social_providers_are_accepted_and_an_unknown_channel_named(config: Path) -> None:
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text + '\n[providers.ung_dung]\nchannel = "push"\ntype = "file"\npath = "push.jsonl"\n',
        encoding="utf-8",
    )
    assert load_settings(config).provider("ung_dung").channel == "push"
    config.write_text(text + '\n[providers.fanpage]\nchannel = "social"\ntype = "file"\n', encoding="utf-8")
    assert load_settings(config).provider("fanpage").channel == "social"
    config.write_text(text + '\n[providers.fax]\nchannel = "fax"\ntype = "file"\n', encoding="utf-8")
    with pytest.raises(
        SettingsError, match=r"providers\.fax\.channel: Input should be 'sms', 'email', 'push' or 'social'"
    ):
        load_settings(config)


def test_invalid_environment_value_is_reported(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROADCASTER_DELIVERY__CHUNK_SIZE", "-3")
    with pytest.raises(SettingsError, match=r"delivery\.chunk_size"):
        load_settings(config)


def test_init_writes_no_rule_that_guards_four_eyes(config: Path) -> None:
    text = config.read_text(encoding="utf-8")
    assert "[identity]" not in text
    assert "[approval]" not in text
    assert "broadcaster policy" in text  # the file says where those rules went


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("[identity]\nallow_env_user = true", "allow_env_user"),
        ("[approval]\nsecond_approver_threshold = 1000000", "second_approver_threshold"),
    ],
)
def test_a_file_that_still_sets_a_four_eyes_rule_is_refused(config: Path, section: str, key: str) -> None:
    config.write_text(config.read_text(encoding="utf-8") + "\n" + section + "\n", encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert str(config) in message
    assert "no longer a setting" in message
    assert f"broadcaster policy set {key} VALUE --reason" in message


@pytest.mark.parametrize(
    ("variable", "key"),
    [
        ("BROADCASTER_IDENTITY__ALLOW_ENV_USER", "allow_env_user"),
        ("broadcaster_approval__second_approver_threshold", "second_approver_threshold"),
    ],
)
def test_an_environment_variable_that_sets_a_four_eyes_rule_is_refused(
    config: Path, monkeypatch: pytest.MonkeyPatch, variable: str, key: str
) -> None:
    monkeypatch.setenv(variable, "true")
    with pytest.raises(SettingsError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert f"the environment variable {variable} sets" in message
    assert "Unset it" in message
    assert f"broadcaster policy set {key} VALUE --reason" in message


def test_toml_syntax_error_is_a_settings_error(config: Path) -> None:
    config.write_text(config.read_text(encoding="utf-8") + "\n[database\nurl = \n", encoding="utf-8")
    with pytest.raises(SettingsError, match=str(config)):
        load_settings(config)


def test_config_location_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_env: None
) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config() == tmp_path / CONFIG_FILENAME
    monkeypatch.setenv("BROADCASTER_CONFIG", "/etc/broadcaster/elsewhere.toml")
    assert find_config() == Path("/etc/broadcaster/elsewhere.toml")
    assert find_config(tmp_path / "explicit.toml") == tmp_path / "explicit.toml"


def test_masked_hides_passwords_in_providers_and_urls(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROADCASTER_DATABASE__URL", "postgresql://broadcaster:mat-khau-bi-mat@db.local/bc")
    settings = load_settings(config)
    masked = settings.masked()
    assert "mat-khau-bi-mat" not in repr(masked)
    assert masked["database"]["url"].startswith("postgresql://broadcaster:")
    assert masked["providers"]["sms_main"]["password"] == "********"
    assert masked["providers"]["sms_main"]["host"] == "127.0.0.1"
    # The real value is still there for the adapter.
    assert settings.providers["sms_main"].options()["password"] == "change-me"


def test_masked_hides_every_value_below_a_secret_table() -> None:
    masked = mask_secrets(
        {"fanpage": {"type": "facebook", "page_tokens": {"1234": "EAAB-bi-mat", "5678": ""}}}
    )
    assert masked == {"fanpage": {"type": "facebook", "page_tokens": {"1234": "********", "5678": ""}}}


def test_sms_price_by_carrier_with_default(config: Path) -> None:
    sms = load_settings(config).sms
    assert sms.price(carrier="Viettel", encoding="gsm7") == 750
    assert sms.price(carrier="Vietnamobile", encoding="gsm7") == 800
    assert sms.price(carrier=None, encoding="ucs2") == 1600


def test_unknown_provider_lists_the_configured_ones(config: Path) -> None:
    settings = load_settings(config)
    with pytest.raises(
        SettingsError,
        match=r"unknown provider 'sms_backup' \(configured: app_danang, fanpage_skhcn, mail, sms_main\)",
    ):
        settings.provider("sms_backup")
    assert settings.provider("mail").type == "smtp"


def test_the_log_format_comes_from_the_file_or_the_environment(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings(config).logging.format == "text"
    assert configured_log_format(config) == "text"
    config.write_text(config.read_text(encoding="utf-8") + '\n[logging]\nformat = "json"\n', encoding="utf-8")
    assert load_settings(config).logging.format == "json"
    monkeypatch.setenv(LOG_FORMAT_ENV, "text")
    assert configured_log_format(config) == "text"
    monkeypatch.setenv(LOG_FORMAT_ENV, "xml")
    with pytest.raises(SettingsError, match=r"logging\.format"):
        load_settings(config)
    assert configured_log_format(config) == "text"  # the command that loads them says what is wrong


def test_opt_out_keywords_default_to_the_consent_list(config: Path) -> None:
    settings = load_settings(config)
    assert settings.consent.opt_out_keywords == list(DEFAULT_OPT_OUT_KEYWORDS)
    assert set(settings.consent.keywords().by_form) == {"tc", "huy", "tu choi", "stop"}


def test_opt_out_keywords_are_configurable(config: Path) -> None:
    with config.open("a", encoding="utf-8") as handle:
        handle.write('\n[consent]\nopt_out_keywords = ["HUY", "KHONG NHAN"]\n')
    settings = load_settings(config)
    assert set(settings.consent.keywords().by_form) == {"huy", "khong nhan"}


@pytest.mark.parametrize(
    ("keywords", "expected"),
    [
        ('["HUY", "Hủy"]', r"consent\.opt_out_keywords.*'Hủy'.*duplicates 'HUY'.*'huy'"),
        ('["TC", " "]', r"consent\.opt_out_keywords.*empty once normalised"),
    ],
)
def test_unusable_opt_out_keywords_are_refused_at_load(config: Path, keywords: str, expected: str) -> None:
    with config.open("a", encoding="utf-8") as handle:
        handle.write(f"\n[consent]\nopt_out_keywords = {keywords}\n")
    with pytest.raises(SettingsError, match=expected) as caught:
        load_settings(config)
    assert str(config) in str(caught.value)
