"""The render budget: what one rendering may cost in time and size, enforced inside the Jinja sandbox.

A template is input, and input can be hostile: ``{{ 'a' * 10**9 }}`` fills the memory, two nested loops over
``range(100000)`` never end. No signal can stop a render in a worker thread, so the limits of
``[rendering]`` (``RenderingSettings``) are checked by the template's own steps:

- operations that make a value much larger than their operands (``*``, ``**``, ``+``, ``%``, the ``center``,
  ``indent``, ``wordwrap``, ``format``, ``join`` and ``replace`` filters, ``str`` methods that pad, join or
  translate, ``lipsum``) are refused *before* they run when the result would pass ``max_output_chars``;
- every loop step, call and namespace assignment checks the clock against ``max_seconds``; calls,
  concatenations (``~``), assignments, output values and the rendering so far are measured;
- lists and dicts cannot be changed in place (``ImmutableSandboxedEnvironment``), so nothing doubles by
  ``x.extend(x)`` in a loop.

The budget of the rendering under way is a context variable: renders in several threads do not share it.
"""

from __future__ import annotations

import copy
import functools
import math
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeGuard

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, generate_lorem_ipsum

from broadcaster.i18n import gettext as _
from broadcaster.settings_sections import RenderingSettings

__all__ = ["Budget", "BudgetedEnvironment", "RenderBudgetExceeded", "budget", "size_of"]

# Python integers have no size limit (9**9**9 computes for hours); numbers in a message are counts, dates and
# prices, far below 4096 bits (1,233 digits).
MAX_INT_BITS = 4096

# A width or precision in a format: "%08.2f", "{:>20}".
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


class RenderBudgetExceeded(SecurityError):
    """A rendering went past ``[rendering] max_output_chars`` or ``max_seconds``."""


@dataclass(frozen=True)
class Budget:
    """The limits of one rendering and the moment it must be done by."""

    limits: RenderingSettings
    clock: Callable[[], float]
    deadline: float

    def tick(self) -> None:
        if self.clock() > self.deadline:
            raise RenderBudgetExceeded(
                _(
                    "the rendering took longer than %(seconds)s s (setting rendering.max_seconds); look for loops "
                    "inside loops or a macro that calls itself"
                )
                % {"seconds": f"{self.limits.max_seconds:g}"}
            )

    def allow(self, size: int, what: str) -> None:
        limit = self.limits.max_output_chars
        if size > limit:
            raise RenderBudgetExceeded(
                _(
                    "%(what)s would make %(size)s characters or items, more than the %(limit)s a rendering may "
                    "have (setting rendering.max_output_chars)"
                )
                % {"what": what, "size": f"{size:,}", "limit": f"{limit:,}"}
            )

    def allow_bits(self, bits: int, what: str) -> None:
        if bits > MAX_INT_BITS:
            raise RenderBudgetExceeded(
                _("%(what)s would make a number of about %(bits)s bits (at most %(max)s)")
                % {"what": what, "bits": f"{bits:,}", "max": MAX_INT_BITS}
            )


_ACTIVE: ContextVar[Budget | None] = ContextVar("render_budget", default=None)


@contextmanager
def budget(limits: RenderingSettings, clock: Callable[[], float] = time.monotonic) -> Iterator[Budget]:
    """The budget of one rendering, active for the sandbox's checks until the block ends."""
    active = Budget(limits=limits, clock=clock, deadline=clock() + limits.max_seconds)
    token = _ACTIVE.set(active)
    try:
        yield active
    finally:
        _ACTIVE.reset(token)


def size_of(value: Any, limit: int) -> int:
    """Characters of a string, or items of a list, tuple, set or dict counted through the nested ones (a list
    repeated inside a list is as big as its printed form). Counting stops once past ``limit``."""
    if isinstance(value, str | bytes):
        return len(value)
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, Mapping):
            total += len(item)
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item)
            if total <= limit:
                stack.extend(item)
    return total


def _is_sequence(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_widths(active: Budget, widths: Iterable[str], what: str) -> None:
    for width in widths:
        if not width.isdecimal():  # '*' or a nested '{...}': the width would come from the arguments
            raise RenderBudgetExceeded(
                _("%(what)s: a width taken from the arguments is not allowed in templates") % {"what": what}
            )
        active.allow(int(width) if len(width) <= 18 else 10**18, what)


def _check_percent_format(active: Budget, text: str) -> None:
    widths = [group for match in _PERCENT_SPEC.finditer(text) for group in match.groups() if group]
    _check_widths(active, widths, "'%' formatting")


def _check_brace_format(active: Budget, text: str) -> None:
    try:
        specs = [spec for _literal, _field, spec, _conversion in string.Formatter().parse(text) if spec]
    except ValueError:
        return  # a malformed format: str.format raises its own error
    for spec in specs:
        _check_widths(active, ["{"] if "{" in spec else _DIGITS.findall(spec), "'format'")


def _check_binop(active: Budget, operator: str, left: Any, right: Any) -> None:
    limit = active.limits.max_output_chars
    what = f"'{operator}'"
    if operator == "*":
        for sequence, times in ((left, right), (right, left)):
            if _is_sequence(sequence) and _is_int(times):
                active.allow(size_of(sequence, limit) * max(times, 0), what)
        if _is_int(left) and _is_int(right):
            active.allow_bits(left.bit_length() + right.bit_length(), what)
    elif operator == "**":
        if _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
            active.allow_bits(left.bit_length() * right, what)
    elif operator == "+":
        if _is_sequence(left) and _is_sequence(right):
            active.allow(size_of(left, limit) + size_of(right, limit), what)
    elif operator == "%" and isinstance(left, str):
        _check_percent_format(active, left)


def _check_method(active: Budget, method: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse a ``str`` (or ``bytes``) method call whose result would pass the size limit."""
    method = getattr(method, "__wrapped__", method)  # the sandbox wraps str.format
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str | bytes):
        return
    name = getattr(method, "__name__", "")
    first = args[0] if args else next(iter(kwargs.values()), None)
    what = f"'{name}'"
    limit = active.limits.max_output_chars
    if name in ("center", "ljust", "rjust", "zfill") and _is_int(first):
        active.allow(first, what)
    elif name == "expandtabs" and _is_int(first):
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        active.allow(len(owner) + tabs * first, what)
    elif name == "replace" and len(args) >= 2 and _is_sequence(args[1]):
        old = args[0]
        count = owner.count(old) if old else len(owner) + 1
        active.allow(len(owner) + count * len(args[1]), what)
    elif name == "join" and isinstance(first, list | tuple):
        active.allow(sum(size_of(item, limit) for item in first) + len(owner) * len(first), what)
    elif name == "translate" and isinstance(first, Mapping):
        longest = max((size_of(value, limit) for value in first.values()), default=1)
        active.allow(len(owner) * longest, what)
    elif name in ("format", "format_map") and isinstance(owner, str):
        _check_brace_format(active, owner)


# --- filters that can make a value much longer than their input -----------------------------------------


def _center(active: Budget, value: Any, width: Any = 80, *_: Any, **__: Any) -> None:
    if _is_int(width):
        active.allow(width, "'center'")


def _indent(active: Budget, value: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    text = str(value)
    per_line = len(width) if isinstance(width, str) else width if _is_int(width) else 0
    active.allow(len(text) + (text.count("\n") + 1) * per_line, "'indent'")


def _wordwrap(active: Budget, value: Any, width: Any = 79, *args: Any, **kwargs: Any) -> None:
    wrapstring = kwargs.get("wrapstring", args[1] if len(args) > 1 else None)
    if _is_int(width) and width > 0 and isinstance(wrapstring, str):
        text = str(value)
        lines = len(text) // width + text.count("\n") + 1
        active.allow(len(text) + lines * len(wrapstring), "'wordwrap'")


def _format(active: Budget, value: Any, *_: Any, **__: Any) -> None:
    if isinstance(value, str):
        _check_percent_format(active, value)


def _join(active: Budget, value: Any, d: Any = "", *_: Any, **__: Any) -> None:
    if isinstance(value, list | tuple):
        limit = active.limits.max_output_chars
        separator = len(d) if isinstance(d, str) else 0
        active.allow(sum(size_of(item, limit) for item in value) + separator * len(value), "'join'")


def _replace(active: Budget, value: Any, old: Any = "", new: Any = "", *_: Any, **__: Any) -> None:
    if isinstance(value, str) and isinstance(old, str) and isinstance(new, str):
        count = value.count(old) if old else len(value) + 1
        active.allow(len(value) + count * len(new), "'replace'")


def _tojson(active: Budget, value: Any, indent: Any = None, *_: Any, **__: Any) -> None:
    per_item = indent + 1 if _is_int(indent) and indent > 0 else 1
    active.allow(size_of(value, active.limits.max_output_chars) * per_item, "'tojson'")


def _count(name: str) -> Callable[..., None]:
    """``batch(n)`` and ``slice(n)`` make n-item lists whatever the input."""

    def check(active: Budget, value: Any, count: Any = 0, *_: Any, **__: Any) -> None:
        if _is_int(count):
            active.allow(count, f"'{name}'")

    return check


def _whole(name: str) -> Callable[..., None]:
    """Filters that turn the whole value into text: measured before (a list of lists repeated prints big)."""

    def check(active: Budget, value: Any, *_: Any, **__: Any) -> None:
        active.allow(size_of(value, active.limits.max_output_chars), f"'{name}'")

    return check


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": _center,
    "indent": _indent,
    "wordwrap": _wordwrap,
    "format": _format,
    "join": _join,
    "replace": _replace,
    "tojson": _tojson,
    "batch": _count("batch"),
    "slice": _count("slice"),
    "string": _whole("string"),
    "pprint": _whole("pprint"),
}


class BudgetedNamespace(Namespace):
    """``namespace()``: the only value a template can change from one loop step to the next, so each
    assignment is measured (``{% set ns.s = ns.s ~ ns.s %}`` in a loop would double it each step)."""

    def __setitem__(self, name: str, value: Any) -> None:
        active = _ACTIVE.get()
        if active is not None:
            active.tick()
            active.allow(size_of(value, active.limits.max_output_chars), f"namespace attribute '{name}'")
        super().__setitem__(name, value)


class _BudgetedCodeGenerator(CodeGenerator):
    """Compiles every loop to step through ``environment.budgeted_loop``, and every ``~`` to measure its
    parts before they are turned into text and the result after."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        node = copy.copy(node)
        node.iter = nodes.Call(
            nodes.EnvironmentAttribute("budgeted_loop"), [node.iter], [], None, None, lineno=node.lineno
        )
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        node = copy.copy(node)
        node.nodes = [
            nodes.Call(
                nodes.EnvironmentAttribute("checked_output"), [part], [], None, None, lineno=part.lineno
            )
            for part in node.nodes
        ]
        self.write("environment.checked_concat(")
        super().visit_Concat(node, frame)
        self.write(")")


class BudgetedEnvironment(ImmutableSandboxedEnvironment):
    """The Jinja sandbox with the render budget: see the module's docstring."""

    code_generator_class = _BudgetedCodeGenerator
    intercepted_binops = frozenset(("*", "**", "+", "%"))

    def __init__(self, *, limits: RenderingSettings, **options: Any) -> None:
        super().__init__(**options)
        self.limits = limits
        self.finalize = self.checked_output
        self.globals["namespace"] = BudgetedNamespace
        self.globals["lipsum"] = self._lipsum
        for name, check in _FILTER_CHECKS.items():
            self.filters[name] = self._checked_filter(name, self.filters[name], check)

    def budget(self) -> Budget:
        """The budget of the rendering under way; outside one (compile-time folding) only the sizes."""
        active = _ACTIVE.get()
        return active or Budget(limits=self.limits, clock=time.monotonic, deadline=math.inf)

    def _checked_filter(
        self, name: str, func: Callable[..., Any], check: Callable[..., None]
    ) -> Callable[..., Any]:
        # Filters marked pass_context / pass_environment / pass_eval_context get that first; the mark is
        # copied by functools.wraps (it lives in the function's __dict__).
        skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

        @functools.wraps(func)
        def checked(*args: Any, **kwargs: Any) -> Any:
            active = self.budget()
            active.tick()
            check(active, *args[skip:], **kwargs)
            result = func(*args, **kwargs)
            active.allow(size_of(result, self.limits.max_output_chars), f"'{name}'")
            return result

        return checked

    def _lipsum(self, n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
        if _is_int(n) and _is_int(max):
            self.budget().allow(n * max * 12, "'lipsum'")  # a word and its space: at most ~12 characters
        return generate_lorem_ipsum(n=n, html=html, min=min, max=max)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        active = self.budget()
        active.tick()
        _check_binop(active, operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        active = __self.budget()
        active.tick()
        _check_method(active, __obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        active.allow(size_of(result, __self.limits.max_output_chars), "a call")
        return result

    def budgeted_loop(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """What every ``{% for %}`` steps through: two nested loops of 100,000 steps stop at the deadline."""
        active = self.budget()
        for item in iterable:
            active.tick()
            yield item

    def checked_concat(self, value: str) -> str:
        # No clock here or in checked_output: outside loops and calls, these run once per place in the template.
        self.budget().allow(len(value), "'~'")
        return value

    def checked_output(self, value: Any) -> Any:
        """Every ``{{ value }}`` and ``~`` part that is not text yet is measured before it is turned into
        text."""
        if not isinstance(value, str):
            self.budget().allow(size_of(value, self.limits.max_output_chars), "an output value")
        return value
