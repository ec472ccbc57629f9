"""Property: no campaign file or template, however broken or hostile, makes `campaigns validate` or
`campaigns load` raise, hang past the render budget, or change the database when it is refused.

Hypothesis writes campaign files (the valid test campaign with a field replaced, a hostile YAML snippet
spliced into it, or any text) and templates (pieces of Jinja, hostile ones among them, in any order) into a
working directory, then runs both commands through the CLI runner.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from broadcaster.cli import app
from broadcaster.context import AppContext
from tests.broadcaster.conftest import (
    DEFAULT_EMAIL_SUBJECT,
    DEFAULT_EMAIL_TEXT,
    DEFAULT_SMS,
    campaign_definition,
    database_dump,
    write_campaign,
)
from tests.broadcaster.test_cli import CAMPAIGN_FILE, team

__all__ = ["team"]  # the fixture, shared with test_cli

YAML_SNIPPETS = [
    "x: &a [1, 2]",
    "y: *a",
    "<<: {title: x}",
    "z: " + "[" * 3000 + "]" * 3000,
    "z: " + "{a: " * 400 + "1" + "}" * 400,
    "big: " + "9" * 5000,
    "f: 1e99999",
    "t: !!python/object/apply:os.system ['true']",
    "b: !!binary aGVsbG8=",
    "d: 2025-13-45",
    "? [complex, key]\n: v",
    "id: id",
    "id: " + "a" * 20_000,
    "title:\n  - [nested]",
    "---\nsecond: document",
    "\t- tab",
    "'unterminated",
    "channels: {sms: {template: '[/red]', provider: '[bold]'}}",
    "variables: {'[/x]': 1}",
    "'[/x]': unknown field",
    "\x00\x07",
]

TEMPLATE_SNIPPETS = [
    "{{ contact.full_name }}",
    "{{ vars.thu_tuc }}",
    "{{ org.name }}",
    "{{ 'a' * 10**9 }}",
    "{{ 9 ** 99999 }}",
    "{% for i in range(100000) %}",
    "{% endfor %}",
    "{% if contact.phone %}",
    "{% endif %}",
    "{{ ('x' * 5000)|replace('x', 'yy') }}",
    "{{ '%*d' % (10, 1) }}",
    "{% macro m(n) %}{{ m(n) }}{{ m(n) }}{% endmacro %}{{ m(1) }}",
    "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{{ {}['k' * 5000] }}",
    "{{ lipsum(10**6) }}",
    "{% include 'sms/thu-nghiem.txt.j2' %}",
    "{% extends '../../etc/passwd' %}",
    "{{ ''.__class__ }}",
    "{{ [1].extend([2]) }}",
    "{{ 1 / 0 }}",
    "{{",
    "}}",
    "{%",
    "[/red]",
    "\x00",
    "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}",
    "{{ contact" + ".x" * 3000 + " }}",
    "{% if 1 %}" * 30 + "{% endif %}" * 30,
]


VALID_CAMPAIGN = yaml.safe_dump(campaign_definition(), allow_unicode=True, sort_keys=False)


def _replaced_field() -> st.SearchStrategy[str]:
    """The valid test campaign with one top-level field replaced by any YAML value."""
    values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=12,
    )
    fields = st.sampled_from(sorted(campaign_definition()))

    def build(field: str, value: Any) -> str:
        return yaml.safe_dump(campaign_definition(**{field: value}), allow_unicode=True)

    return st.builds(build, fields, values)


def _spliced_snippet() -> st.SearchStrategy[str]:
    """The valid test campaign with a hostile snippet as one of its lines (often malformed, sometimes not)."""
    lines = VALID_CAMPAIGN.splitlines()

    def splice(at: int, snippet: str) -> str:
        return "\n".join([*lines[:at], snippet, *lines[at:]]) + "\n"

    return st.builds(splice, st.integers(0, len(lines)), st.sampled_from(YAML_SNIPPETS))


# The valid campaign too, so that the templates are rendered (a broken file stops before its templates).
CAMPAIGN_TEXT = st.one_of(
    st.just(VALID_CAMPAIGN), _replaced_field(), _spliced_snippet(), st.text(max_size=300)
)
TEMPLATE_TEXT = st.lists(
    st.one_of(st.sampled_from(TEMPLATE_SNIPPETS), st.text(max_size=15)), min_size=1, max_size=5
).map("".join)


def _run(runner: CliRunner, *args: str) -> int:
    result = runner.invoke(app, list(args))
    # Exit 0 or 1 through typer.Exit; any other exception escaped the command.
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args} raised {result.exception!r}\n{result.stderr}") from result.exception
    assert result.exit_code in (0, 1), (args, result.exit_code, result.stderr)
    assert len(result.stderr) < 20_000, (args, result.stderr[:500])  # errors quote, never echo
    return result.exit_code


@pytest.mark.timeout(600)  # the hang guard: each example is bounded by the render budget below
def test_no_campaign_input_escapes_hangs_or_changes_the_database_on_error(
    workdir: Path, context: AppContext, team: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("BROADCASTER_RENDERING__MAX_SECONDS", "0.2")
    monkeypatch.setattr("getpass.getuser", lambda: "bien_tap")
    runner = CliRunner()
    campaign = write_campaign(workdir)
    sms = workdir / "templates" / "sms" / "thu-nghiem.txt.j2"
    subject = workdir / "templates" / "email" / "thu-nghiem.subject.j2"
    text = workdir / "templates" / "email" / "thu-nghiem.txt.j2"

    @settings(
        max_examples=60,
        deadline=timedelta(seconds=20),
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        campaign_text=CAMPAIGN_TEXT,
        sms_text=st.one_of(st.just(DEFAULT_SMS), TEMPLATE_TEXT),
        email_text=st.one_of(st.just(DEFAULT_EMAIL_TEXT), TEMPLATE_TEXT),
    )
    def property(campaign_text: str, sms_text: str, email_text: str) -> None:
        campaign.write_text(campaign_text, encoding="utf-8")
        sms.write_text(sms_text, encoding="utf-8")
        subject.write_text(DEFAULT_EMAIL_SUBJECT, encoding="utf-8")
        text.write_text(email_text, encoding="utf-8")
        before = database_dump(context.engine)
        validated = _run(runner, "campaigns", "validate", CAMPAIGN_FILE)
        assert database_dump(context.engine) == before  # validate never writes
        loaded = _run(runner, "campaigns", "load", CAMPAIGN_FILE)
        assert loaded == validated
        if loaded != 0:
            assert database_dump(context.engine) == before

    property()
