"""Render a campaign's message texts from its approved template snapshot, in a Jinja2 sandbox.

Templates come from an in-memory mapping (``CampaignBundle.templates``), never from the disk, so what is sent
is exactly what was approved (docs/architecture.md §2: the content hash covers definition + templates). The file
layout convention and the context roots are documented in templates/README.md:

- ``sms/NAME``   -> ``sms/NAME.txt.j2`` (whitespace collapsed into one line)
- ``email/NAME`` -> ``email/NAME.subject.j2`` (one line), ``email/NAME.txt.j2``, optional ``email/NAME.html.j2``
- ``push/NAME``  -> ``push/NAME.title.j2`` (one line), ``push/NAME.txt.j2`` (the body), optional
  ``push/NAME.link.j2`` (one line: the deep link the notification opens)
- ``social/NAME`` -> ``social/NAME.txt.j2`` (the post's or ZNS message's text), optional ``social/NAME.link.j2``
  and ``social/NAME.image.j2`` (one line each: a Page post's link and image URL)

Templates are authored with diacritics; ``unaccented`` (an SMS option) strips them after rendering. Every
rendering runs within the time and size of ``[rendering]`` (broadcaster/render_budget.py).
"""

from __future__ import annotations

import re
import time
import traceback
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import (
    BaseLoader,
    Environment,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    meta,
    nodes,
    select_autoescape,
)

from broadcaster.errors import UserError
from broadcaster.render_budget import Budget, BudgetedEnvironment, RenderBudgetExceeded, budget
from broadcaster.settings_sections import RenderingSettings
from channels.base import Channel
from channels.sms.encoding import unaccent

__all__ = [
    "CONTACT_FIELDS",
    "CONTEXT_ROOTS",
    "ORG_FIELDS",
    "TOO_DEEP",
    "RenderError",
    "Rendered",
    "Renderer",
    "build_context",
    "contact_fields",
    "make_environment",
    "message_fields",
    "sample_contact",
    "sample_org",
    "shorten",
    "template_files",
]

TEMPLATE_SUFFIX = ".j2"

# The names a template may use at top level (templates/README.md, "Context").
CONTEXT_ROOTS: frozenset[str] = frozenset(
    ("contact", "campaign", "org", "vars", "message", "unsubscribe_url")
)

# Columns of the contacts file (docs/architecture.md §5) plus the derived first_name; extra columns are in
# ``contact.attributes``.
CONTACT_FIELDS: frozenset[str] = frozenset(
    (
        "full_name",
        "first_name",
        "phone",
        "email",
        "segment",
        "agency",
        "district",
        "ward",
        "language",
        "tags",
        "attributes",
        "external_id",
    )
)

# The sending organisation, from the settings (docs/domain.md §0: agency names are configuration, not constants).
ORG_FIELDS: frozenset[str] = frozenset(
    ("name", "short_name", "parent", "address", "phone", "hotline", "email", "website")
)

_WHITESPACE = re.compile(r"\s+")

TOO_DEEP = "nested too deeply (blocks, brackets or filters inside one another); split it into simpler parts"

# How much of a value an error message quotes: enough to recognise it, never a whole rendering.
QUOTE_CHARS = 200


def shorten(text: str, limit: int = QUOTE_CHARS) -> str:
    """``text``, or its beginning and how long it was when it is longer than ``limit``."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters in all)"


@dataclass(frozen=True)
class Rendered:
    """One rendered message: ``subject`` for e-mail (a push notification's title), ``html`` only for e-mail,
    ``link`` only for push (None: the template has no link part, or it rendered empty)."""

    subject: str | None
    text: str
    html: str | None
    link: str | None = None
    image: str | None = None  # social: the image URL of a Page post (None: no image part, or empty)


class RenderError(UserError):
    """A template failed to render (undefined name, sandbox violation, syntax error, runtime error, past the
    render budget). The message quotes at most a few hundred characters of any value."""

    def __init__(self, *, template: str, line: int | None, message: str) -> None:
        self.template = template
        self.line = line
        self.message = shorten(message, 2 * QUOTE_CHARS)
        where = f"{template}:{line}" if line is not None else template
        super().__init__(f"{where}: {self.message}")


def template_files(template: str, channel: str) -> dict[str, str]:
    """The files behind a template name, by part: ``{"text": "sms/x.txt.j2"}``, subject/text/html for
    e-mail, title/text/link for push.

    The html part of an e-mail and the link part of a push notification are optional; every other part is
    required.
    """
    if channel == Channel.SMS:
        return {"text": f"{template}.txt{TEMPLATE_SUFFIX}"}
    if channel == Channel.EMAIL:
        return {
            "subject": f"{template}.subject{TEMPLATE_SUFFIX}",
            "text": f"{template}.txt{TEMPLATE_SUFFIX}",
            "html": f"{template}.html{TEMPLATE_SUFFIX}",
        }
    if channel == Channel.PUSH:
        return {
            "title": f"{template}.title{TEMPLATE_SUFFIX}",
            "text": f"{template}.txt{TEMPLATE_SUFFIX}",
            "link": f"{template}.link{TEMPLATE_SUFFIX}",
        }
    if channel == Channel.SOCIAL:
        return {
            "text": f"{template}.txt{TEMPLATE_SUFFIX}",
            "link": f"{template}.link{TEMPLATE_SUFFIX}",
            "image": f"{template}.image{TEMPLATE_SUFFIX}",
        }
    raise ValueError(f"no template layout for channel {channel!r} (known: sms, email, push, social)")


OPTIONAL_PARTS: frozenset[tuple[str, str]] = frozenset(
    (
        (Channel.EMAIL, "html"),
        (Channel.PUSH, "link"),
        (Channel.SOCIAL, "link"),
        (Channel.SOCIAL, "image"),
    )
)


class _SnapshotLoader(BaseLoader):
    """Like ``DictLoader`` but reports the template name as its filename, so tracebacks name the template."""

    def __init__(self, templates: Mapping[str, str]) -> None:
        self._templates = dict(templates)

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        if template not in self._templates:
            raise TemplateNotFound(template)
        return self._templates[template], template, lambda: True

    def list_templates(self) -> list[str]:
        return sorted(self._templates)


def make_environment(
    templates: Mapping[str, str], *, limits: RenderingSettings | None = None
) -> BudgetedEnvironment:
    """The one environment all rendering and validation uses: sandboxed, budgeted, strict, HTML autoescaped."""
    return BudgetedEnvironment(
        limits=limits or RenderingSettings(),
        loader=_SnapshotLoader(templates),
        undefined=StrictUndefined,
        # Autoescape only .html.j2 (and .htm/.html); text and SMS must not get &amp; entities.
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "html.j2"), default_for_string=False, default=False
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        cache_size=-1,
    )


def _error_location(exc: BaseException, names: Mapping[str, str], fallback: str) -> tuple[str, int | None]:
    """Find the innermost template frame of ``exc``: Jinja rewrites tracebacks to template names and lines."""
    lineno = getattr(exc, "lineno", None)
    name = getattr(exc, "name", None)
    if isinstance(lineno, int) and isinstance(name, str):  # TemplateSyntaxError knows its own place
        return name, lineno
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename in names:
            return frame.filename, frame.lineno
    return fallback, None


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _one_line(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _text_body(text: str) -> str:
    # Keep line breaks in the plain-text e-mail; drop trailing spaces and runs of blank lines.
    lines = [line.rstrip() for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out) + "\n"


# Errors a template can raise while rendering: Jinja's own (undefined, sandbox, syntax) and what Python
# operations inside expressions raise (1/0, int("x"), a missing key through a filter...).
# RecursionError: a macro that calls itself without end.
_RENDER_ERRORS: tuple[type[BaseException], ...] = (
    TemplateError,
    RecursionError,
    TypeError,
    ValueError,
    ArithmeticError,
    LookupError,
    AttributeError,
)


def _stream(template: Template, context: Mapping[str, Any], active: Budget) -> str:
    """Render chunk by chunk and stop as soon as the text passes the budget (never hold it all first).

    Jinja's low-level API, as ``Template.render`` uses it: ``generate`` would add a generator per chunk."""
    chunks: list[str] = []
    size = 0
    stream = template.root_render_func(template.new_context(dict(context)))
    try:
        for chunk in stream:
            size += len(chunk)
            active.allow(size, "the rendering")
            chunks.append(chunk)
    except Exception:
        template.environment.handle_exception()  # re-raises with the template's names and lines
    return "".join(chunks)


class Renderer:
    """Renders one campaign version; built once from its template snapshot, every template compiled once."""

    def __init__(
        self,
        templates: Mapping[str, str],
        *,
        limits: RenderingSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sources = {name: _nfc(text) for name, text in templates.items()}
        self._limits = limits or RenderingSettings()
        self._clock = clock
        self._env = make_environment(self._sources, limits=self._limits)
        self._compiled: dict[str, Template] = {}
        self._inline: dict[str, Template] = {}
        for name in sorted(self._sources):
            try:
                self._compiled[name] = self._env.get_template(name)
            except TemplateError as exc:
                where, line = _error_location(exc, self._sources, name)
                raise RenderError(template=where, line=line, message=str(exc)) from exc
            except (RecursionError, SyntaxError) as exc:  # Python's own limits on the compiled template
                raise RenderError(template=name, line=None, message=TOO_DEEP) from exc

    @property
    def environment(self) -> BudgetedEnvironment:
        return self._env

    def has(self, name: str) -> bool:
        return name in self._compiled

    def _render_file(self, name: str, context: Mapping[str, Any]) -> str:
        template = self._compiled.get(name)
        if template is None:
            raise RenderError(template=name, line=None, message="template is not in the approved snapshot")
        try:
            with budget(self._limits, self._clock) as active:
                return _nfc(_stream(template, context, active))
        except _RENDER_ERRORS as exc:
            where, line = _error_location(exc, self._sources, name)
            message = str(exc) if isinstance(exc, RenderBudgetExceeded) else f"{type(exc).__name__}: {exc}"
            raise RenderError(template=where, line=line, message=message) from exc

    def render_value(self, source: str, *, field: str, context: Mapping[str, Any]) -> str:
        """One line of template text written in the campaign file itself (a ZNS parameter in
        ``template_data``), rendered in the same sandbox and budget as the files; errors name ``field``."""
        compiled = self._inline.get(source)
        try:
            if compiled is None:
                compiled = self._inline[source] = self._env.from_string(_nfc(source))
            with budget(self._limits, self._clock) as active:
                return _one_line(_nfc(_stream(compiled, context, active)))
        except _RENDER_ERRORS as exc:
            message = str(exc) if isinstance(exc, RenderBudgetExceeded) else f"{type(exc).__name__}: {exc}"
            raise RenderError(template=field, line=None, message=message) from exc

    def render(
        self,
        *,
        template: str,
        channel: str,
        context: Mapping[str, Any],
        unaccented: bool = False,
        with_html: bool = True,
    ) -> Rendered:
        """Render ``template`` (a name like ``sms/thong-bao-dvc``) for ``channel`` with ``context``.

        SMS: one line, whitespace collapsed, NFC (or unaccented when asked). E-mail: one-line subject, plain
        text with line breaks, HTML when the template has an html part. Push: one-line title (as ``subject``),
        body with line breaks, one-line link when the template has a link part.
        """
        files = template_files(template, channel)
        if channel == Channel.SMS:
            text = _one_line(self._render_file(files["text"], context))
            return Rendered(subject=None, text=unaccent(text) if unaccented else text, html=None)
        if channel == Channel.PUSH:
            title = _one_line(self._render_file(files["title"], context))
            body = _text_body(self._render_file(files["text"], context)).rstrip("\n")
            link = _one_line(self._render_file(files["link"], context)) if self.has(files["link"]) else ""
            return Rendered(subject=title, text=body, html=None, link=link or None)
        if channel == Channel.SOCIAL:
            body = _text_body(self._render_file(files["text"], context)).strip("\n")
            link = _one_line(self._render_file(files["link"], context)) if self.has(files["link"]) else ""
            image = _one_line(self._render_file(files["image"], context)) if self.has(files["image"]) else ""
            return Rendered(subject=None, text=body, html=None, link=link or None, image=image or None)
        # A subject is a header: collapse it to one line so no template can inject header lines.
        subject = _one_line(self._render_file(files["subject"], context))
        text = _text_body(self._render_file(files["text"], context))
        html = self.render_html(template=template, context=context) if with_html else None
        return Rendered(subject=subject, text=text, html=html)

    def render_html(self, *, template: str, context: Mapping[str, Any]) -> str | None:
        """Only the HTML part of an e-mail template (the sender re-renders it from the stored context)."""
        name = template_files(template, Channel.EMAIL)["html"]
        return self._render_file(name, context) if self.has(name) else None


def _template_trees(templates: Mapping[str, str], template: str, channel: str) -> list[nodes.Template]:
    """The parsed files of a channel's template and every file they extend, include or import."""
    env = make_environment({})
    queue = [name for name in template_files(template, channel).values() if name in templates]
    seen: set[str] = set()
    trees: list[nodes.Template] = []
    while queue:
        name = queue.pop()
        if name in seen or name not in templates:
            continue
        seen.add(name)
        ast = env.parse(templates[name])
        trees.append(ast)
        queue.extend(ref for ref in meta.find_referenced_templates(ast) if isinstance(ref, str))
    return trees


def _fields_of(tree: nodes.Template, root: str) -> tuple[set[str], bool]:
    """The ``root.NAME`` and ``root["NAME"]`` a tree reads, and whether it uses ``root`` any other way."""
    found: set[str] = set()
    read_by_name: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        base = getattr(node, "node", None)
        if not isinstance(base, nodes.Name) or base.name != root:
            continue
        if isinstance(node, nodes.Getattr):
            found.add(node.attr)
            read_by_name.add(id(base))
        elif isinstance(node, nodes.Getitem):
            key = node.arg.value if isinstance(node.arg, nodes.Const) else None
            if isinstance(key, str):
                found.add(key)
                read_by_name.add(id(base))
    other = any(id(name) not in read_by_name for name in tree.find_all(nodes.Name) if name.name == root)
    return found, other


def message_fields(templates: Mapping[str, str], template: str, channel: str) -> frozenset[str]:
    """The ``message.NAME`` (and ``message["NAME"]``) a channel's template uses, in its own files and every
    file they extend, include or import: the personalisation a single message must be given.

    A name tested with ``is defined`` or given a ``default`` counts too: asking for it is simpler than
    guessing which uses are optional, and a caller can always send it."""
    found: set[str] = set()
    for tree in _template_trees(templates, template, channel):
        found |= _fields_of(tree, "message")[0]
    return frozenset(found)


# Names whose value is the same for every contact of a campaign version, or that build a fresh object per
# rendering (``lipsum`` is random, so it is not here; nor is the ``random`` filter, see ``_is_random``).
_FIXED_NAMES = frozenset(("campaign", "org", "vars", "namespace", "cycler", "dict", "joiner", "range"))


def _is_random(tree: nodes.Template) -> bool:
    """Whether the tree may render differently each time: ``lipsum`` (a global, so never "undeclared"), or
    the ``random`` filter, directly or by name (``map("random")``)."""
    return (
        any(node.name == "lipsum" for node in tree.find_all(nodes.Name))
        or any(node.name == "random" for node in tree.find_all(nodes.Filter))
        or any(node.value == "random" for node in tree.find_all(nodes.Const))
    )


def contact_fields(
    templates: Mapping[str, str], template: str, channel: str, *, also_fixed: frozenset[str] = frozenset()
) -> frozenset[str] | None:
    """The ``contact.NAME`` a channel's template reads, when the rendering depends on nothing else that
    changes from one contact to the next: two contacts equal on these fields get the same text. None when
    that cannot be told from the template (``contact`` passed whole, ``message``, ``lipsum`` or the
    ``random`` filter, an unknown name). ``also_fixed``: roots the caller gives the same value every time."""
    found: set[str] = set()
    for tree in _template_trees(templates, template, channel):
        names = meta.find_undeclared_variables(tree) - _FIXED_NAMES - also_fixed - {"contact"}
        if names or _is_random(tree):
            return None
        fields, other = _fields_of(tree, "contact")
        if other:
            return None
        found |= fields
    return frozenset(found)


def first_name(full_name: str | None) -> str | None:
    """The Vietnamese given name: the last word of the full name (Nguyễn Thị Minh Anh -> Anh)."""
    if not full_name:
        return None
    words = full_name.split()
    return words[-1] if words else None


def build_context(
    *,
    contact: Mapping[str, Any] | None,
    campaign: Mapping[str, Any],
    org: Mapping[str, Any],
    variables: Mapping[str, str],
    unsubscribe_url: str | None = None,
    message: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The template context (roots in ``CONTEXT_ROOTS``).

    Every known contact and org field is present (None when unknown), so templates can test
    ``{% if contact.full_name %}`` under StrictUndefined. ``contact=None`` (test sends, confirmations) gives
    a contact whose fields are all None.
    """
    person: dict[str, Any] = dict.fromkeys(CONTACT_FIELDS)
    person["tags"] = []
    person["attributes"] = {}
    if contact is not None:
        person.update(contact)
    if not person.get("first_name"):
        person["first_name"] = first_name(person.get("full_name"))
    sender: dict[str, Any] = dict.fromkeys(ORG_FIELDS)
    sender.update(org)
    return {
        "contact": person,
        "campaign": dict(campaign),
        "org": sender,
        "vars": dict(variables),
        "message": dict(message or {}),
        "unsubscribe_url": unsubscribe_url,
    }


def sample_contact() -> dict[str, Any]:
    """A made-up Vietnamese contact for validation and preview (no real person)."""
    return {
        "external_id": "MAU-0001",
        "full_name": "Nguyễn Thị Minh Anh",
        "first_name": "Anh",
        "phone": "+84905000123",
        "email": "minhanh.nguyen@example.com",
        "segment": "citizen",
        "agency": "Sở Nội vụ",
        "district": "Hải Châu",
        "ward": "Thạch Thang",
        "language": "vi",
        "tags": ["dau_moi_cchc"],
        "attributes": {},
    }


def sample_org() -> dict[str, Any]:
    """A sample sending organisation for validation and preview; real values come from the settings."""
    return {
        "name": "Sở Khoa học và Công nghệ thành phố Đà Nẵng",
        "short_name": "Sở KHCN Đà Nẵng",
        "parent": "Ủy ban nhân dân thành phố Đà Nẵng",
        "address": "Tầng 21, Trung tâm Hành chính thành phố, 24 Trần Phú, Đà Nẵng",
        "phone": "0236 3822 179",
        "hotline": "1022",
        "email": "skhcn@danang.gov.vn",
        "website": "https://danang.gov.vn",
    }
