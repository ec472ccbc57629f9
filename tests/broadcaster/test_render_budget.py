"""The render budget: a hostile template fails with an error naming the template, line and setting, within the
time and size of ``[rendering]``, and its error quotes only a few hundred characters."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from broadcaster.campaigns.messages import Composer
from broadcaster.campaigns.schema import CampaignDefinition
from broadcaster.rendering import Renderer, RenderError
from broadcaster.settings import Settings
from broadcaster.settings_sections import RenderingSettings
from tests.broadcaster.conftest import campaign_definition

SMALL = RenderingSettings(max_output_chars=10_000, max_seconds=5.0)


def ticking_clock(step: float = 1.0) -> Callable[[], float]:
    """A clock that moves ``step`` seconds each time it is read: loops meet the deadline after a few steps,
    whatever the machine's speed."""
    now = [0.0]

    def read() -> float:
        now[0] += step
        return now[0]

    return read


def render_sms(
    source: str, *, limits: RenderingSettings = SMALL, clock: Callable[[], float] | None = None
) -> str:
    renderer = Renderer({"sms/x.txt.j2": source}, limits=limits, clock=clock or ticking_clock(0.0))
    return renderer.render(template="sms/x", channel="sms", context={}).text


def refused(source: str, **kwargs: object) -> RenderError:
    with pytest.raises(RenderError) as caught:
        render_sms(source, **kwargs)  # type: ignore[arg-type]
    assert caught.value.template == "sms/x.txt.j2"
    assert len(str(caught.value)) < 600  # never the value itself
    return caught.value


def test_ordinary_templates_render_as_before() -> None:
    source = (
        "{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{{ i }}{% endfor %} "
        "{{ ns.n }} {{ '%05d'|format(42) }} {{ '{:>4}'.format(7) }} {{ 'ab' * 3 }} {{ [1, 2] + [3] }} "
        "{{ 2 ** 10 }} {{ ['a', 'b']|join('-') }} {{ 'x'|center(5) }}|"
    )
    assert render_sms(source) == "012 3 00042 7 ababab [1, 2, 3] 1024 a-b x |"  # an SMS is one line


def test_string_multiplication_is_refused_before_it_runs() -> None:
    error = refused("Xin chào\n{{ 'a' * 10**9 }}")
    assert error.line == 2
    assert "'*' would make 1,000,000,000 characters" in error.message
    assert "(setting rendering.max_output_chars)" in error.message


def test_nested_loops_stop_at_the_deadline() -> None:
    # Two nested range(100000) loops: 10**10 steps. The clock moves a second per reading.
    source = "{% for i in range(100000) %}\n{% for j in range(100000) %}{% endfor %}{% endfor %}"
    error = refused(source, clock=ticking_clock(1.0))
    assert error.line == 2
    assert "took longer than 5 s (setting rendering.max_seconds)" in error.message


def test_a_macro_calling_itself_twice_stops_at_the_deadline() -> None:
    source = "{% macro grow(n) %}{% if n %}{{ grow(n - 1) }}{{ grow(n - 1) }}{% endif %}{% endmacro %}{{ grow(60) }}"
    assert "(setting rendering.max_seconds)" in refused(source, clock=ticking_clock(1.0)).message
    assert "RecursionError" in refused("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").message


def test_a_long_rendering_stops_at_the_size_limit_and_is_not_quoted() -> None:
    error = refused("{% for i in range(100000) %}{{ 'xin chào ' * 100 }}{% endfor %}")
    assert "the rendering would make" in error.message
    assert "xin chào" not in error.message


@pytest.mark.parametrize(
    ("source", "operation"),
    [
        ("{{ 9 ** 99999 }}", "'**'"),
        ("{{ [0] * 10**6 }}", "'*'"),
        ("{% set row = [0] * 1000 %}{{ [row] * 1000 }}", "'*'"),  # nested lists count in full
        ("{% set s = 'a' * 8000 %}{{ s + s }}", "'+'"),
        ("{% set s = 'a' * 8000 %}{{ s ~ s }}", "'~'"),
        ("{{ '%99999999d' % 1 }}", "'%' formatting"),
        ("{{ '%*d' % (10, 1) }}", "'%' formatting"),
        ("{{ '{:>99999999}'.format(1) }}", "'format'"),
        ("{{ 'a'.ljust(10**8) }}", "'ljust'"),
        ("{{ 'a'|center(10**8) }}", "'center'"),
        ("{{ ('a' * 5000)|replace('a', 'bbb') }}", "'replace'"),
        ("{{ ['a' * 5000, 'b' * 5000, 'c']|join }}", "'join'"),
        ("{{ ('a' * 5000)|wordwrap(1, wrapstring='--') }}", "'wordwrap'"),
        ("{{ lipsum(1000) }}", "'lipsum'"),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "'~'",
        ),
        (
            "{% set ns = namespace(s=['a']) %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
            "'+'",
        ),
    ],
)
def test_operations_that_grow_a_value_are_bounded(source: str, operation: str) -> None:
    error = refused(source)
    assert error.message.startswith(operation), error.message
    assert "10,000" in error.message or "not allowed" in error.message or "bits" in error.message


def test_lists_cannot_be_changed_in_place() -> None:
    # Otherwise {{ l.extend(l) }} in a loop doubles a list at every step, out of reach of any operator.
    error = refused("{% set l = [0] %}{% for i in range(40) %}{{ l.extend(l) }}{% endfor %}")
    assert "'extend' of 'list' object is unsafe" in error.message


def test_error_messages_quote_a_few_hundred_characters() -> None:
    error = refused("{{ {}['a' * 9000] }}")
    assert error.message.startswith("UndefinedError: 'dict object' has no attribute 'aaa")
    assert "characters in all)" in error.message
    assert len(error.message) < 450


def test_the_composer_renders_within_the_settings() -> None:
    # Preview, test sends, the planner and the dispatcher all render through a Composer.
    definition = CampaignDefinition.model_validate(campaign_definition())
    templates = {
        "sms/thu-nghiem.txt.j2": "{% for i in range(50) %}{{ vars.thu_tuc }} {% endfor %}",
        "email/thu-nghiem.subject.j2": "Chủ đề",
        "email/thu-nghiem.txt.j2": "Nội dung",
    }
    roomy = Composer(definition=definition, templates=templates, settings=Settings())
    assert roomy.compose("sms", None).body.count("cap doi") == 50
    tight = Settings(rendering=RenderingSettings(max_output_chars=1_000))
    with pytest.raises(RenderError, match=r"more than the 1,000 a rendering may have"):
        Composer(definition=definition, templates=templates, settings=tight).compose("sms", None)
