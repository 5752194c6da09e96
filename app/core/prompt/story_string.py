"""Context templates: SillyTavern's "story string" and the separators around the chat.

The story string is a Handlebars template over the card's fields (`{{system}}`,
`{{description}}`, `{{personality}}`, `{{scenario}}`, `{{persona}}`, `{{wiBefore}}`,
`{{wiAfter}}`, `{{mesExamples}}`, `{{char}}`, `{{user}}`) with `{{#if}}`/`{{#unless}}`/
`{{else}}` blocks. It is translated to Jinja and rendered in the same sandbox as a GGUF's
own chat template (`templates.SafeEnvironment`), then finished as SillyTavern's
`renderStoryString` (`public/scripts/power-user.js`) does: the other macros are expanded
(the prompt's macro context, when given), `{{trim}}` eats the line breaks around it, leading
line breaks go, and a line break ends it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

PARAMS = (
    "system",
    "description",
    "personality",
    "scenario",
    "persona",
    "wiBefore",
    "wiAfter",
    "loreBefore",
    "loreAfter",
    "mesExamples",
    "mesExamplesRaw",
    "char",
    "user",
)
DEFAULT_STORY = (
    "{{#if system}}{{system}}\n{{/if}}{{#if wiBefore}}{{wiBefore}}\n{{/if}}"
    "{{#if description}}{{description}}\n{{/if}}{{#if personality}}{{char}}'s "
    "personality: {{personality}}\n{{/if}}{{#if scenario}}Scenario: {{scenario}}\n"
    "{{/if}}{{#if wiAfter}}{{wiAfter}}\n{{/if}}{{#if persona}}{{persona}}\n{{/if}}"
)
_TAG = re.compile(r"\{\{\s*(#if|#unless|/if|/unless|else)?\s*([^{}]*?)\s*\}\}")
# Handlebars drops a block tag's line when the tag stands alone on it ("standalone" rule).
_STANDALONE = re.compile(
    r"(^|\n)[ \t]*(\{\{\s*(?:#if|#unless|/if|/unless|else)\b[^{}]*\}\})"
    r"[ \t]*(?:\r?\n|$)"
)
_TRIM = re.compile(r"(?:\r?\n)*\{\{trim\}\}(?:\r?\n)*", re.I)


class StoryStringError(ValueError):
    """The story string does not parse or render; the message says where."""


@dataclass(frozen=True)
class ContextTemplate:
    name: str = "Default"
    story_string: str = DEFAULT_STORY
    example_separator: str = "***"
    chat_start: str = "***"
    use_stop_strings: bool = False
    allow_jailbreak: bool = False
    always_force_name2: bool = True
    trim_sentences: bool = False
    single_line: bool = False

    @classmethod
    def from_st(cls, raw: dict[str, Any]) -> ContextTemplate:
        if not isinstance(raw, dict) or not isinstance(raw.get("story_string"), str):
            raise ValueError("a context template is a JSON object with a story_string")
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in raw or raw[f.name] is None:
                continue
            value = raw[f.name]
            if not isinstance(value, type(f.default)):
                raise ValueError(
                    f"{f.name} must be {type(f.default).__name__}, not {type(value).__name__}"
                )
            values[f.name] = value
        if not str(values.get("name") or "").strip():
            raise ValueError("the context template has no name")
        translate(values["story_string"])  # refuse a broken template at import, not later
        return cls(**values)

    def to_st(self) -> dict[str, Any]:
        return asdict(self)

    def render(
        self,
        params: dict[str, str],
        *,
        wrap: bool = True,
        expand: Callable[[str], str] | None = None,
    ) -> str:
        """The story string for these fields (missing ones are empty). `expand` fills in the
        other macros afterwards, as `renderStoryString` runs `substituteParams` on its output
        (the fields given are already expanded; expanding them again changes nothing)."""
        from app.core.prompt.templates import SafeEnvironment

        env = SafeEnvironment()
        env.trim_blocks = env.lstrip_blocks = False  # Handlebars keeps the text as written
        env.keep_trailing_newline = True
        try:
            compiled = env.compile_template(translate(self.story_string))
            values = {k: str(params.get(k) or "") for k in PARAMS}
            out = env.render_limited(compiled, values, sum(map(len, values.values())))
        except StoryStringError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of a user's template: say so
            raise StoryStringError(
                f"the story string of {self.name!r} cannot be rendered: {exc}"
            ) from None
        if expand is not None:
            out = expand(out)
        out = _TRIM.sub("", out).lstrip("\n")
        if out and not out.endswith("\n") and wrap:
            out += "\n"
        return out


def translate(source: str) -> str:
    """Handlebars (the subset story strings use) to Jinja; other `{{macros}}` stay as text."""
    source = _STANDALONE.sub(lambda m: m.group(1) + m.group(2), source)
    out, pos, depth = [], 0, []
    for m in _TAG.finditer(source):
        out.append(_raw(source[pos : m.start()]))
        pos = m.end()
        kind, name = m.group(1), m.group(2)
        if kind in ("#if", "#unless"):
            if name not in PARAMS:
                raise StoryStringError(
                    f"{{{{{kind} {name}}}}}: only {', '.join(PARAMS)} can be tested"
                )
            depth.append(kind)
            out.append(f"{{% if {'not ' if kind == '#unless' else ''}{name} %}}")
        elif kind in ("/if", "/unless"):
            if not depth or depth.pop() != "#" + kind[1:]:
                raise StoryStringError(f"{{{{{kind}}}}} without its opening block")
            out.append("{% endif %}")
        elif kind == "else":
            if not depth:
                raise StoryStringError("{{else}} outside a block")
            out.append("{% else %}")
        elif name in PARAMS:
            out.append(f"{{{{ {name} }}}}")
        else:
            out.append(_raw(m.group(0)))  # {{trim}}, {{random}}...: for the macro pass
    if depth:
        raise StoryStringError(f"{{{{{depth[-1]}}}}} is never closed")
    out.append(_raw(source[pos:]))
    return "".join(out)


def _raw(text: str) -> str:
    if not text:
        return ""
    return (
        "{% raw %}"
        + text.replace("{% endraw %}", "{% endraw %}{{ '{% endraw %}' }}{% raw %}")
        + "{% endraw %}"
    )
