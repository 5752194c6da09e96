"""Instruct presets: SillyTavern's way of writing a chat for a text-completion model.

A preset names the sequences around each turn (input = user, output = character, system =
narrator), the first/last variants, whether names are written ("none", "force" for other
speakers, "always"), whether system turns look like user turns, and `wrap` (sequences on
lines of their own). Rendering follows SillyTavern's `public/scripts/instruct-mode.js`
(`formatInstructModeChat`, `formatInstructModePrompt`, `formatInstructModeExamples`,
`formatInstructModeSystemPrompt`, `getInstructStoppingSequences`) and the way `Generate` in
`public/script.js` joins the pieces: story string, examples, chat start, messages, last line.

The shipped set (`resources/instruct/instruct.json`) holds the values of SillyTavern's own
presets; SillyTavern's preset JSON files import and export as they are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any

from app.core.appdata.resources import resources_dir
from app.core.prompt.presets import STORY, ChatTemplate, Message, Rendered
from app.core.prompt.story_string import ContextTemplate


class Names(str, Enum):
    NONE = "none"
    FORCE = "force"  # only for speakers other than the user and the card's character
    ALWAYS = "always"


class Force(Enum):
    FIRST = 1
    LAST = 2


@dataclass(frozen=True)
class InstructPreset:
    name: str
    input_sequence: str = ""
    input_suffix: str = ""
    output_sequence: str = ""
    output_suffix: str = ""
    system_sequence: str = ""
    system_suffix: str = ""
    first_output_sequence: str = ""
    last_output_sequence: str = ""
    first_input_sequence: str = ""
    last_input_sequence: str = ""
    last_system_sequence: str = ""
    system_sequence_prefix: str = ""
    system_sequence_suffix: str = ""
    stop_sequence: str = ""
    user_alignment_message: str = ""
    activation_regex: str = ""
    names_behavior: Names = Names.FORCE
    wrap: bool = False
    macro: bool = True
    skip_examples: bool = False
    system_same_as_user: bool = False

    @classmethod
    def from_st(cls, raw: dict[str, Any]) -> InstructPreset:
        """A SillyTavern instruct preset (any version: old keys are migrated as it does)."""
        if not isinstance(raw, dict):
            raise ValueError("an instruct preset is a JSON object")
        raw = dict(raw)
        if "separator_sequence" in raw:  # renamed to output_suffix
            raw["output_suffix"] = raw.pop("separator_sequence") or ""
        if "names" in raw and "names_behavior" not in raw:
            raw["names_behavior"] = (
                "always"
                if raw["names"]
                else ("force" if raw.get("names_force_groups", True) else "none")
            )
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known or value is None:
                continue
            values[key] = _typed(key, value, known[key].default)
        if not str(values.get("name") or "").strip():
            raise ValueError("the instruct preset has no name")
        return cls(**values)

    def to_st(self) -> dict[str, Any]:
        """SillyTavern's JSON for this preset (its `names_behavior` string, every key)."""
        out = asdict(self)
        out["names_behavior"] = self.names_behavior.value
        return out


def _typed(key: str, value: Any, default: Any) -> Any:
    if key == "names_behavior":
        try:
            return Names(str(value).lower())
        except ValueError:
            raise ValueError(
                f"names_behavior must be none, force or always, not {value!r}"
            ) from None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, not {value!r}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"{key} must be text, not {type(value).__name__}")
    return value


def _substitute(text: str, user: str, char: str) -> str:
    """The macros SillyTavern fills in sequences: {{user}} and {{char}} (case-insensitive)."""
    text = re.sub(r"\{\{user\}\}", lambda _: user, text, flags=re.I)
    return re.sub(r"\{\{char\}\}", lambda _: char, text, flags=re.I)


def _name(text: str, name: str) -> str:
    return re.sub(r"\{\{name\}\}", lambda _: name, text, flags=re.I)


@dataclass
class InstructTemplate(ChatTemplate):
    """A chat template from an instruct preset and a context template (story string)."""

    preset: InstructPreset
    context: ContextTemplate = field(default_factory=ContextTemplate)
    user_name: str = "User"
    in_group: bool = False

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.preset.name

    @property
    def stops(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.stop_strings(self.user_name, "{{char}}"))

    def stop_strings(self, user: str, char: str) -> list[str]:
        """`getInstructStoppingSequences`: every sequence, each on a new line when wrapped."""
        p = self.preset
        lines = "\n".join(
            [
                p.stop_sequence,
                _name(p.input_sequence, user),
                _name(p.output_sequence, char),
                _name(p.first_output_sequence, char),
                _name(p.last_output_sequence, char),
                _name(p.system_sequence, "System"),
                _name(p.last_system_sequence, "System"),
            ]
        ).split("\n")
        out = []
        for line in dict.fromkeys(lines):
            if line.strip():
                stop = ("\n" + line) if p.wrap else line
                out.append(_substitute(stop, user, char) if p.macro else stop)
        if p.wrap and p.stop_sequence.strip():
            # Also unwrapped: SillyTavern leans on the backend's EOS here, but a model whose
            # vocabulary lacks the sequence as a token (ChatML on a Mistral merge) writes it
            # straight after the text.
            out.append(p.stop_sequence)
        if self.context.use_stop_strings:
            out += [
                f"\n{_substitute(s, user, char)}"
                for s in (self.context.chat_start, self.context.example_separator)
                if s
            ]
        return out

    # -- one turn ----------------------------------------------------------------------------
    def turn(self, name: str, text: str, role: str, char: str, force: Force | None = None) -> str:
        """`formatInstructModeChat`: one message with its sequences."""
        p, narrator = self.preset, role == "system"
        names = not narrator and p.names_behavior is Names.ALWAYS
        if not narrator and p.names_behavior is Names.FORCE and self._other(name, role, char):
            names = True
        prefix, suffix = self._affixes(role, force)
        if p.macro:
            prefix = _name(_substitute(prefix, self.user_name, char), name or "System")
            suffix = _name(_substitute(suffix, self.user_name, char), name or "System")
        if not suffix and p.wrap:
            suffix = "\n"
        body = f"{name}: {text}" if names and name else text
        return ("\n" if p.wrap else "").join(x for x in (prefix, body + suffix) if x)

    def _other(self, name: str, role: str, char: str) -> bool:
        # SillyTavern forces names in a group chat for everyone but the user.
        return name != self.user_name and (self.in_group or (role == "assistant" and name != char))

    def _affixes(self, role: str, force: Force | None) -> tuple[str, str]:
        p = self.preset
        if role == "system":
            if p.system_same_as_user:
                return p.input_sequence, p.input_suffix
            return p.system_sequence, p.system_suffix
        if role == "user":
            seq = (
                {Force.FIRST: p.first_input_sequence, Force.LAST: p.last_input_sequence}.get(
                    force, ""
                )
                if force
                else ""
            )
            return seq or p.input_sequence, p.input_suffix
        seq = (
            {Force.FIRST: p.first_output_sequence, Force.LAST: p.last_output_sequence}.get(
                force, ""
            )
            if force
            else ""
        )
        return seq or p.output_sequence, p.output_suffix

    def last_line(self, char: str) -> str:
        """`formatInstructModePrompt` for the character's reply."""
        p = self.preset
        names = bool(char) and (
            p.names_behavior is Names.ALWAYS or (self.in_group and p.names_behavior is Names.FORCE)
        )
        sequence = p.last_output_sequence or p.output_sequence
        filler = ""
        if (
            names
            and p.last_output_sequence
            and p.output_sequence
            and sequence == p.last_output_sequence
            and p.output_sequence[-1:].isspace()
            and not p.last_output_sequence[-1:].isspace()
        ):
            filler = p.output_sequence[-1]  # Mistral's "[/INST] " ends with a space
        if p.macro:
            sequence = _name(_substitute(sequence, self.user_name, char), char or "System")
        sep = "\n" if p.wrap else ""
        text = f"{sep}{sequence}{sep}{filler}{char}:" if names else sep + sequence
        return (text.rstrip() if p.wrap else text) + ("" if names else sep)

    def system_prompt(self, text: str) -> str:
        """`formatInstructModeSystemPrompt`: the system prompt with its prefix and suffix."""
        p, sep = self.preset, "\n" if self.preset.wrap else ""
        if p.system_sequence_prefix:
            text = _name(p.system_sequence_prefix, "System") + sep + text
        if p.system_sequence_suffix:
            text = text + sep + p.system_sequence_suffix
        return text

    def story(
        self,
        texts: dict[str, str],
        examples: list[str],
        user: str,
        char: str,
        expand: Callable[[str], str] | None = None,
    ) -> str:
        """What comes before the chat, as `Generate` joins it: the story string, the example
        turns (unless the story string places `{{mesExamples}}` itself), the chat start.
        `expand` fills in the macros the story string itself holds (`renderStoryString`)."""
        system = texts.get("system", "")
        params = {
            "system": self.system_prompt(system) if system else "",
            "description": texts.get("description", ""),
            "personality": texts.get("personality", ""),
            "scenario": texts.get("scenario", ""),
            "persona": texts.get("persona", ""),
            "wiBefore": texts.get("lore_before", ""),
            "wiAfter": texts.get("lore_after", ""),
            "mesExamples": "".join(examples),
            "char": char,
            "user": user,
        }
        params["loreBefore"], params["loreAfter"] = params["wiBefore"], params["wiAfter"]
        story = self.context.render(params, wrap=self.preset.wrap, expand=expand)
        own = re.search(r"\{\{\s*mesExamples(Raw)?\s*\}\}", self.context.story_string)
        start = self.context.chat_start
        # the author's note in the system block: SillyTavern's before/afterScenarioAnchor
        before, after = texts.get("authors_note_before", ""), texts.get("authors_note", "")
        if after:  # the story string ends with one line break, the anchor is wrapped in two
            story = story.rstrip("\n") + f"\n\n{after}\n"
        story = (f"{before}\n" if before else "") + story
        return (
            story
            + ("" if own else "".join(examples))
            + (_substitute(start + "\n", user, char) if start else "")
        )

    # -- examples ----------------------------------------------------------------------------
    def example_blocks(self, raw: str, user: str, char: str) -> list[str]:
        """`parseMesExamples` then `formatInstructModeExamples`: each block as real turns."""
        sep = _substitute(self.context.example_separator, user, char)
        heading = f"{sep}\n" if sep else ""
        raw = raw.replace("\r", "")
        if not raw or raw == "<START>":
            return []
        if not raw.startswith("<START>"):
            raw = "<START>\n" + raw.strip()
        lead = heading or "<START>\n"
        blocks = [f"{lead}{b.strip()}\n" for b in re.split(r"<START>", raw, flags=re.I)[1:]]
        if self.preset.skip_examples:
            return [re.sub(r"<START>\n", heading, b, count=1, flags=re.I) for b in blocks]
        out = [self._format_block(b, heading, user, char) for b in blocks]
        return [b for b in out if b] or [
            re.sub(r"<START>\n", heading, b, count=1, flags=re.I) for b in blocks
        ]

    def _format_block(self, block: str, heading: str, user: str, char: str) -> str:
        block = re.sub(r"<START>", "{Example Dialogue:}", block, count=1, flags=re.I)
        turns = split_example(block, user, char)
        if not turns:
            return ""
        p, sep = self.preset, "\n" if self.preset.wrap else ""
        names_all = p.names_behavior is Names.ALWAYS or (
            self.in_group and p.names_behavior is Names.FORCE
        )
        pieces = [heading] if heading else []
        for who, content in turns:
            is_user = who == "user"
            prefix, suffix = (
                (p.input_sequence, p.input_suffix)
                if is_user
                else (p.output_sequence, p.output_suffix)
            )
            name = user if is_user else char
            if p.macro:
                prefix = _name(_substitute(prefix, user, char), name)
                suffix = _name(_substitute(suffix, user, char), name)
                if not suffix and p.wrap:
                    suffix = "\n"
            named = names_all or (p.names_behavior is Names.FORCE and is_user)
            body = f"{name}: {content}" if named else content
            pieces.append(sep.join(x for x in (prefix, body + suffix) if x))
        return "".join(pieces)

    # -- the whole chat ----------------------------------------------------------------------
    def render(
        self,
        messages: Sequence[Message],
        *,
        add_generation_prompt: bool = True,
        continue_last: bool = False,
        assistant_name: str = "Assistant",
        chat_from_start: bool = True,
    ) -> Rendered:
        """`chat_from_start`: the first message given is the chat's first (SillyTavern gives
        the first output sequence to the chat's oldest message, even once it is dropped)."""
        char = assistant_name
        segments, chat = [], list(enumerate(messages))
        if chat and chat[0][1].name == STORY:
            segments.append(chat[0][1].text)
            chat = chat[1:]
        first_user = next((i for i, m in chat if m.role == "user"), None)
        last_user = max((i for i, m in chat if m.role == "user"), default=None)
        for pos, (i, m) in enumerate(chat):
            force = Force.FIRST if pos == 0 and chat_from_start else None
            if i == last_user:
                force = Force.LAST
            open_reply = continue_last and pos == len(chat) - 1
            if open_reply:
                force = Force.LAST
            name = m.name or (self.user_name if m.role == "user" else char)
            text = self.turn(name, m.text, m.role, char, force)
            if open_reply:
                text = text[: text.rfind(m.text) + len(m.text)]
            if pos == 0 and first_user != i and self.preset.user_alignment_message:
                text = (
                    self.turn(
                        self.user_name,
                        self.preset.user_alignment_message,
                        "user",
                        char,
                        Force.FIRST,
                    )
                    + text
                )
            segments.append(text)
        trailer = ""
        if add_generation_prompt and not continue_last:
            if chat and self.preset.wrap:
                segments[-1] = segments[-1].removesuffix("\n")
            trailer = self.last_line(char)
        return Rendered("".join(segments) + trailer, [*segments, trailer])


def split_example(block: str, user: str, char: str) -> list[tuple[str, str]]:
    """`parseExampleIntoIndividual`: the turns of one example block, its first line skipped;
    lines before the first speaker belong to the first turn, as in SillyTavern."""
    turns: list[tuple[str, str]] = []
    lines: list[str] = []
    current: str | None = None

    def close(who: str) -> None:
        speaker = user if who == "user" else char
        turns.append((who, "\n".join(lines).replace(speaker + ":", "", 1).strip()))
        lines.clear()

    for line in block.split("\n")[1:]:
        if line.startswith(user + ":"):
            if current == "char":
                close("char")
            current = "user"
        elif line.startswith(char + ":"):
            if current == "user":
                close("user")
            current = "char"
        lines.append(line)
    if current is not None:
        close(current)
    return turns


# -- the shipped presets and files ---------------------------------------------------------------
def _load(name: str, parse: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    data = json.loads((resources_dir() / "instruct" / name).read_text(encoding="utf-8"))
    return {p.name: p for p in map(parse, data["presets"])}


_SHIPPED: dict[str, dict[str, Any]] = {}


def shipped_instruct() -> dict[str, InstructPreset]:
    """SillyTavern's shipped instruct presets, by name."""
    if "instruct" not in _SHIPPED:
        _SHIPPED["instruct"] = _load("instruct.json", InstructPreset.from_st)
    return _SHIPPED["instruct"]


def shipped_context() -> dict[str, ContextTemplate]:
    """SillyTavern's shipped context templates, by name."""
    if "context" not in _SHIPPED:
        _SHIPPED["context"] = _load("context.json", ContextTemplate.from_st)
    return _SHIPPED["context"]


def available_instruct(extra: Iterable[Any] = ()) -> dict[str, InstructPreset]:
    """The shipped presets and the user's own (SillyTavern JSON dicts; theirs win by name).
    A user entry that no longer reads is left out rather than breaking the list."""
    return {**shipped_instruct(), **_readable(extra, InstructPreset.from_st)}


def available_context(extra: Iterable[Any] = ()) -> dict[str, ContextTemplate]:
    return {**shipped_context(), **_readable(extra, ContextTemplate.from_st)}


def _readable(rows: Iterable[Any], parse: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """Presets from the settings: each a JSON text (settings lists hold texts) or a dict."""
    out = {}
    for row in rows:
        try:
            preset = parse(json.loads(row) if isinstance(row, str) else row)
        except ValueError:  # json.JSONDecodeError is one too
            continue
        out[preset.name] = preset
    return out


def preset_text(preset: InstructPreset | ContextTemplate) -> str:
    """How a saved preset is kept in the settings: its SillyTavern JSON, as one text."""
    return json.dumps(preset.to_st(), ensure_ascii=False)


def preset_name(row: Any) -> str | None:
    try:
        raw = json.loads(row) if isinstance(row, str) else row
    except ValueError:
        return None
    return raw.get("name") if isinstance(raw, dict) else None


def instruct_template(
    name: str,
    context: str | None = None,
    *,
    user_name: str = "User",
    extra_instruct: Iterable[Any] = (),
    extra_context: Iterable[Any] = (),
) -> InstructTemplate:
    """A preset with the context template named (else the one of the same name, else
    "Default"), as SillyTavern's "bind to context" picks one."""
    presets = available_instruct(extra_instruct)
    if name not in presets:
        raise KeyError(f"unknown instruct preset {name!r}; known: {', '.join(presets)}")
    contexts = available_context(extra_context)
    ctx = contexts.get(context or name) or contexts.get(name) or contexts["Default"]
    return InstructTemplate(presets[name], ctx, user_name=user_name)


def read_preset_file(path: str | Path) -> InstructPreset | ContextTemplate:
    """A SillyTavern instruct or context JSON file; ValueError says what is wrong."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable JSON file ({exc})") from None
    try:
        if isinstance(raw, dict) and "story_string" in raw:
            return ContextTemplate.from_st(raw)
        return InstructPreset.from_st(raw)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def write_preset_file(preset: InstructPreset | ContextTemplate, path: str | Path) -> None:
    Path(path).write_text(
        json.dumps(preset.to_st(), indent=4, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def renamed(preset: InstructPreset, name: str) -> InstructPreset:
    return replace(preset, name=name)
