"""A model's own chat template (`tokenizer.chat_template` in the GGUF), rendered safely.

A GGUF file comes from a stranger, and so does its template. It runs in Jinja's
`ImmutableSandboxedEnvironment` (attribute walks to `__globals__` and friends raise
`SecurityError`) with limits on top: every loop iteration and every call checks a deadline,
operators and filters that can build huge strings or numbers check the size first, and the
output is measured while it is generated. Memory has a hard limit of its own: every value
the template builds (each operator's, call's, filter's and `~`'s result) is added to a
ledger of bytes for the render, so a template cannot hold gigabytes by keeping many values
that each pass the size check (a namespace list grown in a loop, hundreds of `set`s, deep
recursion). The ledger never subtracts, so it bounds what the render allocates, and with it
what it can hold; it lives in the sandbox rather than in `RLIMIT_AS`, which is per process
(llama.cpp's mmap shares the engine child's address space, the GUI's everything else) and
missing on Windows and macOS. A template that breaks a limit is refused for good;
one that fails (for example `raise_exception` on a system message) is retried with the
conversation reshaped, and otherwise the closest preset renders it, with a visible warning.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from datetime import datetime
from functools import partial, wraps
from typing import Any, TypeVar

from jinja2 import Template, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from app.core.prompt.format_checks import (
    deep_bytes,
    deep_size,
    format_width,
    percent_width,
    wordwrap_cost,
)
from app.core.prompt.presets import (
    ChatTemplate,
    Message,
    Rendered,
    guess_preset,
    normalize,
    spread,
)

# End-of-turn markers: when a template contains one, the model may write it, so it stops.
END_MARKERS = (
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<end_of_turn>",
    "<|end|>",
    "<|endoftext|>",
    "<|end_of_turn|>",
    "<|END_OF_TURN_TOKEN|>",
    "</s>",
    "[INST]",
)
_MAX_INT_BITS = 1_000_000
# textwrap's work on one string (see `wordwrap_cost`): about 0.2 s here.
_MAX_WRAP_WORK = 2_000_000_000
# Calls (macros, recursive loops) nest at most this deep: far below Python's own limit, so a
# recursive template never gets near the C stack of a worker thread (512 KB on macOS).
MAX_CALL_DEPTH = 64


T = TypeVar("T")
Args = tuple[Any, ...]
Kwargs = dict[str, Any]


class TemplateLimitError(TemplateError):
    """The template ran too long or built something too big."""


@dataclass(frozen=True)
class Limits:
    seconds: float = 2.0
    max_chars: int = 4_000_000  # output and any one value; raised for long chats (4 x input)
    max_source: int = 256_000
    # Bytes of all the values one render builds; raised for long chats (32 x input). Real
    # templates build a few times their input (trimmed contents, the joined output).
    max_memory: int = 128 * 2**20


class _Budget:
    def __init__(self, limits: Limits, input_chars: int) -> None:
        self.seconds = limits.seconds
        self.deadline = time.monotonic() + limits.seconds
        self.max_chars = max(limits.max_chars, 4 * input_chars)
        self.max_bytes = max(limits.max_memory, 32 * input_chars)
        self.built = 0  # bytes of the values built so far (the ledger)
        self.depth = 0


class SafeEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox plus limits on time and size; see the module docstring."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, limits: Limits | None = None) -> None:
        super().__init__(
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=False,
            extensions=["jinja2.ext.loopcontrols"],
        )
        self.limits = limits or Limits()
        self._local = threading.local()
        self.globals.pop("lipsum", None)  # unbounded work on request; no template needs it
        self.globals.update(raise_exception=_raise_exception, strftime_now=_strftime_now)
        self.filters["tojson"] = _tojson
        self.filters = {name: self._guard_filter(name, f) for name, f in self.filters.items()}

    # -- compiling and rendering -------------------------------------------------------------
    def compile_template(self, source: str) -> Template:
        if len(source) > self.limits.max_source:
            raise TemplateLimitError(
                f"the template is longer than {self.limits.max_source} characters"
            )
        tree = self.parse(source)
        tree = _Guard().visit(tree)
        tree.set_environment(self)
        return self.from_string(tree)

    def render_limited(self, template: Template, context: dict[str, Any], input_chars: int) -> str:
        budget = _Budget(self.limits, input_chars)
        self._local.budget = budget
        try:
            out, size = [], 0
            for chunk in template.generate(**context):
                size += len(chunk)
                if size > budget.max_chars:
                    raise TemplateLimitError(f"output longer than {budget.max_chars} characters")
                self.tick()
                out.append(chunk)
            return "".join(out)
        finally:
            self._local.budget = None

    # -- checks ------------------------------------------------------------------------------
    def tick(self) -> None:
        budget = getattr(self._local, "budget", None)
        if budget is not None and time.monotonic() > budget.deadline:
            raise TemplateLimitError(f"rendering took longer than {budget.seconds:g} s")

    def max_chars(self) -> int:
        budget = getattr(self._local, "budget", None)
        return budget.max_chars if budget is not None else self.limits.max_chars

    def check_size(self, value: Any) -> Any:
        if _size(value) > self.max_chars():
            raise TemplateLimitError(f"a value longer than {self.max_chars()} characters")
        return self.charge(value)

    def charge(self, value: T) -> T:
        """Add a value just built to the render's ledger; over the limit, stop the render."""
        budget = getattr(self._local, "budget", None)
        if budget is not None:  # None while compiling: constants are checked by size only
            budget.built += deep_bytes(value)
            if budget.built > budget.max_bytes:
                raise TemplateLimitError(
                    f"the template built more than {budget.max_bytes // 2**20} MB of values "
                    "(its memory limit)"
                )
        return value

    def refuse_if(self, condition: bool, what: str) -> None:
        if condition:
            raise TemplateLimitError(
                f"{what} would be too large (the limit is {self.max_chars()} characters)"
            )

    # -- hooks the sandbox calls -------------------------------------------------------------
    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        # The stock sandbox returns an undefined that only fails when used; refuse at once.
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
        )

    def call(  # noqa: N805 (names as in the sandbox)
        __self, __context: Context, __obj: Any, *args: Any, **kwargs: Any
    ) -> Any:
        __self.tick()
        _precheck_call(__self, __obj, args, kwargs)
        budget = getattr(__self._local, "budget", None)
        if budget is None:
            return __self.check_size(super().call(__context, __obj, *args, **kwargs))
        budget.depth += 1
        try:
            if budget.depth > MAX_CALL_DEPTH:
                raise TemplateLimitError(f"calls nested more than {MAX_CALL_DEPTH} deep")
            return __self.check_size(super().call(__context, __obj, *args, **kwargs))
        finally:
            budget.depth -= 1

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        self.tick()
        _precheck_binop(self, operator, left, right)
        return self.check_size(super().call_binop(context, operator, left, right))

    def parlor_iter(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """Every `{% for %}` loops through this (see `_Guard`), so no loop outlives the deadline."""
        for item in iterable:
            self.tick()
            yield item

    def parlor_concat(self, values: list[Any]) -> str:
        """The `~` operator, measured before it joins."""
        strings = [v if isinstance(v, str) else str(v) for v in values]
        self.refuse_if(sum(map(len, strings)) > self.max_chars(), "joining with ~")
        return self.charge("".join(strings))

    def _guard_filter(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        precheck = _FILTER_CHECKS.get(name)

        @wraps(func)  # keeps the pass_context/pass_environment marks
        def guarded(*args: Any, **kwargs: Any) -> Any:
            self.tick()
            if precheck is not None:
                precheck(self, _filter_value_args(func, args), kwargs)
            return self.check_size(func(*args, **kwargs))

        return guarded


class _Guard(NodeTransformer):
    """Route loops and `~` through the environment's checked helpers.

    The helpers are reached as environment attributes, which template code cannot name or
    replace.
    """

    def visit_For(self, node: nodes.For) -> nodes.For:
        self.generic_visit(node)
        node.iter = _env_call("parlor_iter", node.iter, node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Call:
        self.generic_visit(node)
        return _env_call("parlor_concat", nodes.List(node.nodes, lineno=node.lineno), node.lineno)


def _env_call(helper: str, arg: nodes.Node, lineno: int) -> nodes.Call:
    target = nodes.EnvironmentAttribute(helper, lineno=lineno)
    return nodes.Call(target, [arg], [], None, None, lineno=lineno)


_size = deep_size  # nested lists count their items: [[x] * 1000] * 1000 is a million x


def _precheck_binop(env: SafeEnvironment, op: str, left: Any, right: Any) -> None:
    ints = isinstance(left, int) and isinstance(right, int)
    if op == "*" and ints:
        env.refuse_if(left.bit_length() + right.bit_length() > _MAX_INT_BITS, "a product")
    elif op == "*":
        count, seq = (right, left) if isinstance(right, int) else (left, right)
        if isinstance(count, int):
            env.refuse_if(count * _size(seq) > env.max_chars(), "repeating a value")
    elif op == "**" and ints and abs(left) > 1 and right > 0:
        env.refuse_if(right * left.bit_length() > _MAX_INT_BITS, "a power")
    elif op == "+":
        env.refuse_if(_size(left) + _size(right) > env.max_chars(), "adding values")
    elif op == "%" and isinstance(left, str):
        env.refuse_if(percent_width(left) > env.max_chars(), "formatting with a huge width")


def _precheck_call(
    env: SafeEnvironment, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    name = getattr(func, "__name__", "")
    owner = getattr(getattr(func, "__wrapped__", func), "__self__", None)
    if not isinstance(owner, str):
        return
    if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        env.refuse_if(args[0] > env.max_chars(), f"str.{name}")
    elif name == "expandtabs":
        tab = args[0] if args and isinstance(args[0], int) else 8
        env.refuse_if(len(owner) * tab > env.max_chars(), "str.expandtabs")
    elif name == "replace" and len(args) >= 2:
        _check_replace(env, owner, args[0], args[1])
    elif name == "join" and args and isinstance(args[0], (list, tuple)):
        env.refuse_if(len(owner) * len(args[0]) + _size(args[0]) > env.max_chars(), "str.join")
    elif name == "format":
        env.refuse_if(
            format_width(owner, args, kwargs) > env.max_chars(), "formatting with a huge width"
        )
    elif name == "format_map" and args and isinstance(args[0], dict):
        env.refuse_if(
            format_width(owner, (), args[0]) > env.max_chars(), "formatting with a huge width"
        )
    elif name == "translate" and args and isinstance(args[0], dict):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
        env.refuse_if(len(owner) * longest > env.max_chars(), "str.translate")


def _check_replace(env: SafeEnvironment, text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        grows = text.count(old) * max(0, len(new) - len(old)) if old else len(new) * len(text)
        env.refuse_if(len(text) + grows > env.max_chars(), "replacing text")


def _filter_value_args(func: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, ...]:
    # Filters marked pass_context/pass_environment/pass_eval_context get that object first.
    return args[1:] if getattr(func, "jinja_pass_arg", None) is not None else args


def _check_center(env: SafeEnvironment, args: Args, kwargs: Kwargs) -> None:
    width = args[1] if len(args) > 1 else kwargs.get("width", 80)
    env.refuse_if(isinstance(width, int) and width > env.max_chars(), "center")


def _check_indent(env: SafeEnvironment, args: Args, kwargs: Kwargs) -> None:
    width = args[1] if len(args) > 1 else kwargs.get("width", 4)
    text = str(args[0]) if args else ""
    if isinstance(width, int):
        env.refuse_if((text.count("\n") + 1) * width > env.max_chars(), "indent")
    elif isinstance(width, str):
        env.refuse_if((text.count("\n") + 1) * len(width) > env.max_chars(), "indent")


def _check_format(env: SafeEnvironment, args: Args, kwargs: Kwargs) -> None:
    if args and isinstance(args[0], str):
        env.refuse_if(percent_width(args[0]) > env.max_chars(), "formatting with a huge width")


def _check_wordwrap(env: SafeEnvironment, args: Args, kwargs: Kwargs) -> None:
    width = args[1] if len(args) > 1 else kwargs.get("width", 79)
    if args and isinstance(width, int):
        env.refuse_if(wordwrap_cost(len(str(args[0])), width) > _MAX_WRAP_WORK, "wordwrap")


# Filters whose one call runs long on a big input, some in C holding the interpreter lock
# (sorting 4 M strings took 6 s, urlize on 4 MB 8 s): no chat template needs them on more.
_MAX_ITEMS_FOR = {
    "sort": 100_000,
    "unique": 100_000,
    "dictsort": 100_000,
    "groupby": 100_000,
    "urlize": 200_000,
}


def _check_work(name: str) -> Callable[..., None]:
    def check(env: SafeEnvironment, args: Args, kwargs: Kwargs) -> None:
        value = args[0] if args else None
        limit = _MAX_ITEMS_FOR[name]
        if isinstance(value, Sized) and len(value) > limit:
            raise TemplateLimitError(
                f"|{name} on {len(value):,} items is too large a job (at most {limit:,})"
            )

    return check


def _check_sum(
    env: SafeEnvironment, args: Args, kwargs: Kwargs
) -> None:  # sum(lists, start=[]) concatenates them all
    start = args[2] if len(args) > 2 else kwargs.get("start", 0)
    if isinstance(start, (list, tuple)) and args and isinstance(args[0], (list, tuple)):
        env.refuse_if(_size(args[0]) + _size(start) > env.max_chars(), "sum")


def _check_join(env: SafeEnvironment, args: Args, kwargs: Kwargs) -> None:
    glue = args[1] if len(args) > 1 else kwargs.get("d", "")
    if args and hasattr(args[0], "__len__") and isinstance(glue, str):
        env.refuse_if(len(args[0]) * len(glue) > env.max_chars(), "join")


def _check_replace_filter(env: SafeEnvironment, args: Args, kwargs: Kwargs) -> None:
    if len(args) >= 3:
        _check_replace(env, str(args[0]), args[1], args[2])


def _check_count(
    env: SafeEnvironment, args: Args, kwargs: Kwargs
) -> None:  # batch and slice pad up to their count
    count = args[1] if len(args) > 1 else kwargs.get("linecount", kwargs.get("slices", 0))
    env.refuse_if(isinstance(count, int) and count > env.max_chars(), "batch/slice")


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": _check_center,
    "indent": _check_indent,
    "format": _check_format,
    "join": _check_join,
    "replace": _check_replace_filter,
    "batch": _check_count,
    "slice": _check_count,
    "wordwrap": _check_wordwrap,
    "sum": _check_sum,
    **{name: _check_work(name) for name in _MAX_ITEMS_FOR},
}


def _raise_exception(message: str) -> None:
    raise TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(str(fmt)[:100])


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: Any = None,
    sort_keys: bool = False,
) -> str:
    # As transformers renders chat templates: no HTML escaping, unicode kept.
    if indent is not None:
        indent = min(int(indent), 16)
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


# -- the chat template --------------------------------------------------------------------------
# Shapes to try, in order: as given; only a leading system message, strict alternation;
# no system role at all. The first one the template renders faithfully is remembered.
_SHAPES: tuple[Callable[[Sequence[Message]], tuple[list[Message], list[list[int]]]], ...] = (
    lambda ms: (list(ms), [[i] for i in range(len(ms))]),
    partial(normalize, system=True, alternate=True),
    partial(normalize, system=False, alternate=True),
)


class JinjaChatTemplate(ChatTemplate):
    """A model's Jinja chat template; the closest preset stands in when it cannot be used."""

    def __init__(
        self, source: str, bos: str = "", eos: str = "", *, limits: Limits | None = None
    ) -> None:
        self.name = "model"
        self.source, self.bos, self.eos = source, bos or "", eos or ""
        self.fallback = guess_preset(source, self.eos)
        markers = [m for m in END_MARKERS if m in source]
        stops = (self.eos, *markers, *self.fallback.stops)
        self.stops = tuple(dict.fromkeys(s for s in stops if s))
        self.refused: str | None = None  # set when the template may never run again
        self._shape = 0
        self._env = SafeEnvironment(limits)
        try:
            self._template = self._env.compile_template(source)
        except Exception as exc:  # noqa: BLE001 - any failure means: use the preset
            self.refused = f"it does not compile: {_describe(exc)}"

    def render(
        self,
        messages: Sequence[Message],
        *,
        add_generation_prompt: bool = True,
        continue_last: bool = False,
        assistant_name: str = "Assistant",
    ) -> Rendered:
        reason = self.refused
        for shape in range(self._shape, len(_SHAPES)):
            if self.refused is not None:
                break
            shaped, members = _SHAPES[shape](messages)
            try:
                text = self._render_text(shaped, add_generation_prompt and not continue_last)
            except (
                SecurityError,
                TemplateLimitError,
                OverflowError,
                MemoryError,
                RecursionError,
            ) as exc:
                reason = self.refused = f"it was stopped: {_describe(exc)}"
                break
            except Exception as exc:  # noqa: BLE001 - raise_exception and friends: try a reshape
                reason = _describe(exc)
                continue
            segments = _locate(text, shaped, continue_last)
            if segments is None:
                reason = "it leaves out part of the conversation"
                continue
            self._shape = shape
            segments = _strip_bos(segments, self.bos)
            pieces = spread(segments[:-1], members, len(messages), segments[-1])
            return Rendered("".join(pieces), pieces)
        out = self.fallback.render(
            messages,
            add_generation_prompt=add_generation_prompt,
            continue_last=continue_last,
            assistant_name=assistant_name,
        )
        out.warnings.append(
            f"The model's chat template could not be used ({reason}); "
            f"the {self.fallback.name} format was used instead."
        )
        return out

    def _render_text(self, messages: Sequence[Message], add_generation_prompt: bool) -> str:
        context = {
            "messages": [{"role": m.role, "content": m.text} for m in messages],
            "add_generation_prompt": add_generation_prompt,
            "bos_token": self.bos,
            "eos_token": self.eos,
        }
        return self._env.render_limited(self._template, context, sum(len(m.text) for m in messages))


def template_from_gguf(
    chat_template: str | None, bos: str = "", eos: str = "", *, limits: Limits | None = None
) -> ChatTemplate:
    """The model's own template, or the preset its end token suggests when it has none."""
    if not chat_template or not chat_template.strip():
        return guess_preset(None, eos)
    return JinjaChatTemplate(chat_template, bos, eos, limits=limits)


def _locate(text: str, messages: Sequence[Message], continue_last: bool) -> list[str] | None:
    """Cut `text` after each message's content; None if one cannot be found in order.

    Contents are looked for stripped, since many templates `trim` them.
    """
    cuts, pos = [], 0
    for m in messages:
        content = m.text.strip()
        if content:
            found = text.find(content, pos)
            if found < 0:
                return None
            pos = found + len(content)
        cuts.append(pos)
    if continue_last:
        text = text[:pos]
    starts = [0, *cuts]
    return [text[a:b] for a, b in zip(starts, cuts, strict=False)] + [text[starts[-1] :]]


def _strip_bos(segments: list[str], bos: str) -> list[str]:
    """Drop a leading BOS: the tokenizer adds it, as llama.cpp's own chat code assumes."""
    for i, seg in enumerate(segments):
        if seg:
            if bos and seg.startswith(bos):
                segments[i] = seg[len(bos) :]
            break
    return segments


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
