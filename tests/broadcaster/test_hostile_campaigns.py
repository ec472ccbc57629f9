"""Hostile campaign files and templates on the command line: `campaigns validate`, `load` and `preview` end
in bounded time with a short error naming the file and line, and change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.contacts.importer import ImportReport
from broadcaster.context import AppContext
from tests.broadcaster.conftest import campaign_definition, database_dump, write_campaign
from tests.broadcaster.test_cli import CAMPAIGN, CAMPAIGN_FILE, Cli, cli, one_line, team

__all__ = ["cli", "team"]  # the fixtures, shared with test_cli

SMS_TEMPLATE = "templates/sms/thu-nghiem.txt.j2"


def billion_laughs(levels: int = 9) -> str:
    """Nine aliases of nine items, nested nine deep: 9**9 strings once expanded, 400 bytes written."""
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"lol{level}: &lol{level} [" + ", ".join([f"*lol{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(60)  # a hang guard: before the fix the duplicate-key walk never ended
def test_an_alias_bomb_is_refused_at_its_first_anchor(
    cli: Cli, context: AppContext, workdir: Path, team: None
) -> None:
    path = write_campaign(workdir)
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text + "variables_extra:\n" + "".join(f"  {line}\n" for line in billion_laughs().splitlines())
    )
    anchor_line = len(text.splitlines()) + 2
    before = database_dump(context.engine)
    for command in ("validate", "load"):
        result = cli("campaigns", command, CAMPAIGN_FILE, user="bien_tap", expect=1)
        message = one_line(result.stderr)
        assert (
            f"{CAMPAIGN_FILE}:{anchor_line}: YAML anchors and aliases (&name, *name) are not allowed"
            in message
        )
        assert "Traceback" not in result.stderr + result.stdout
    assert database_dump(context.engine) == before


def test_a_merge_key_is_refused_too(cli: Cli, workdir: Path) -> None:
    path = write_campaign(workdir)
    path.write_text("base: &base\n  title: x\n" + path.read_text(encoding="utf-8") + "extra:\n  <<: *base\n")
    result = cli("campaigns", "validate", CAMPAIGN_FILE, expect=1)
    assert f"{CAMPAIGN_FILE}:1: YAML anchors and aliases" in one_line(result.stderr)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("sms_text", "expected"),
    [
        ("{{ 'a' * 10**9 }}", "'*' would make 1,000,000,000 characters or items, more than the 200,000"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "the rendering took longer than 0.5 s (setting rendering.max_seconds)",
        ),
    ],
)
def test_a_hostile_template_fails_validate_and_load_in_bounded_time(
    cli: Cli,
    context: AppContext,
    workdir: Path,
    team: None,
    monkeypatch: pytest.MonkeyPatch,
    sms_text: str,
    expected: str,
) -> None:
    monkeypatch.setenv("BROADCASTER_RENDERING__MAX_SECONDS", "0.5")
    write_campaign(workdir, sms_text=sms_text)
    before = database_dump(context.engine)
    for command in ("validate", "load"):
        result = cli("campaigns", command, CAMPAIGN_FILE, user="bien_tap", expect=1)
        message = one_line(result.stderr)
        assert f"{SMS_TEMPLATE}:1: channels.sms.template: {expected}" in message, message
        assert f"(used by {CAMPAIGN_FILE}:" in message
    assert database_dump(context.engine) == before


def test_a_long_sample_sms_is_quoted_in_part(cli: Cli, workdir: Path) -> None:
    # 60,000 characters: under the size limit, far over max_segments; the error quotes its beginning only.
    channels = campaign_definition()["channels"]
    channels["sms"]["max_segments"] = 5
    write_campaign(workdir, sms_text="{{ 'Xin chào Đà Nẵng ' * 3000 }}", channels=channels)
    result = cli("campaigns", "validate", CAMPAIGN_FILE, expect=1)
    message = one_line(result.stderr)
    assert "more than max_segments 5" in message
    assert "characters in all)" in message
    assert len(result.stderr) < 2_000


def test_preview_renders_within_the_settings(
    cli: Cli,
    context: AppContext,
    workdir: Path,
    team: None,
    contacts: ImportReport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Loaded under the default limits; an operator then tightens [rendering]: preview (like the workers)
    # renders under the settings of the moment, and says which template and setting stopped it.
    write_campaign(
        workdir, email_text="{% for i in range(30) %}{{ vars.thu_tuc }} {{ org.name }}\n{% endfor %}"
    )
    cli("campaigns", "load", CAMPAIGN_FILE, user="bien_tap")
    monkeypatch.setenv("BROADCASTER_RENDERING__MAX_OUTPUT_CHARS", "1000")
    before = database_dump(context.engine)
    result = cli("campaigns", "preview", CAMPAIGN, user="phe_duyet", expect=1)
    message = one_line(result.stderr)
    assert "error: email/thu-nghiem.txt.j2:" in message
    assert "more than the 1,000 a rendering may have (setting rendering.max_output_chars)" in message
    assert "Traceback" not in result.stderr + result.stdout
    assert database_dump(context.engine) == before


def test_a_control_character_is_refused_with_its_line(cli: Cli, workdir: Path) -> None:
    # Found by the property test: PyYAML's reader raised before parsing began, out of the command.
    path = write_campaign(workdir)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] += "\x1f"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli("campaigns", "validate", CAMPAIGN_FILE, expect=1)
    assert f"{CAMPAIGN_FILE}:3: malformed YAML: control character U+001F is not allowed" in one_line(
        result.stderr
    )


@pytest.mark.parametrize(
    "sms_text",
    [
        "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}",  # the parser's stack
        "{{ contact" + ".x" * 5000 + " }}",  # parsed, but every later walk of the tree is recursive
        "{% for i in range(2) %}" * 30 + "{% endfor %}" * 30,  # Python's limit of 20 nested blocks
    ],
    ids=["brackets", "attributes", "loops"],
)
def test_a_template_nested_too_deeply_is_a_problem_not_a_crash(
    cli: Cli, workdir: Path, sms_text: str
) -> None:
    write_campaign(workdir, sms_text=sms_text)
    result = cli("campaigns", "validate", CAMPAIGN_FILE, expect=1)
    assert f"{SMS_TEMPLATE}: " in one_line(result.stderr)
    assert "nested too deeply (blocks, brackets or filters inside one another)" in one_line(result.stderr)


def test_problems_are_printed_as_they_are_not_as_console_markup(cli: Cli, workdir: Path) -> None:
    # A field named like a closing console tag made the printer raise instead of printing the problem.
    path = write_campaign(workdir)
    path.write_text(path.read_text(encoding="utf-8") + "'[/x]': 1\n", encoding="utf-8")
    for command in ("validate", "load"):
        result = cli("campaigns", command, CAMPAIGN_FILE, expect=1)
        assert "unknown field '[/x]'" in one_line(result.stderr)
