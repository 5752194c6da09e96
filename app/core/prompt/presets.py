"""The chat-template interface and the built-in formats.

A template turns a list of messages into the text the model continues. Besides the text it
returns `segments`: the text cut into one piece per input message (plus a trailer), so the
builder can count tokens message by message, and the app's tokenizer cache sees the same
strings turn after turn. `"".join(segments) == text` always holds.

Presets cover models without a chat template of their own, and users who prefer another
format: ChatML, Mistral/Llama-2 `[INST]`, Llama 3, Alpaca, Vicuna, Gemma, plain text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

ROLES = ("system", "user", "assistant")
# The name of the system message that carries a rendered story string, written as it is.
STORY = "\x00story"
# What a strict template gets as the first user turn when the chat opens with the character.
CHAT_START = "[Start a new chat]"


@dataclass(frozen=True)
class Message:
    role: str  # "user", "assistant" or "system"
    text: str
    name: str | None = None


@dataclass
class Rendered:
    text: str
    segments: list[str]  # one per input message, then the trailer
    warnings: list[str] = field(default_factory=list)


class ChatTemplate(ABC):
    name: str
    stops: tuple[str, ...]

    @abstractmethod
    def render(
        self,
        messages: Sequence[Message],
        *,
        add_generation_prompt: bool = True,
        continue_last: bool = False,
        assistant_name: str = "Assistant",
    ) -> Rendered:
        """The prompt for `messages`; with `continue_last` the last message stays open."""


def normalize(
    messages: Sequence[Message], *, system: bool, alternate: bool
) -> tuple[list[Message], list[list[int]]]:
    """Reshape `messages` for formats with fewer freedoms.

    System messages a format cannot take (all of them without `system`; all but the leading
    ones with `alternate`) are folded into a user turn: the next one if it follows at once,
    else the previous user turn, else a user turn of their own. With `alternate`, turns of
    one role in a row merge and the chat starts with a user turn. Returns the new messages
    and, for each, the input indices it carries.
    """
    items: list[tuple[str, str, str | None, list[int]]] = []
    pending: list[int] = []
    leading = True
    for i, m in enumerate(messages):
        leading = leading and m.role == "system"
        if m.role == "system" and not (system and (leading or not alternate)):
            pending.append(i)
            continue
        if pending and m.role == "user":
            folded = _join(*(messages[j].text for j in pending), m.text)
            items.append(("user", folded, m.name, [*pending, i]))
        else:
            _fold_back(messages, pending, items)
            items.append((m.role, m.text, m.name, [i]))
        pending = []
    _fold_back(messages, pending, items)
    if alternate:
        items = _alternate(items)
    return [Message(r, t, n) for r, t, n, _ in items], [idxs for *_, idxs in items]


def _fold_back(messages: Sequence[Message], pending: list[int], items: list[Any]) -> None:
    if not pending:
        return
    text = _join(*(messages[j].text for j in pending))
    if items and items[-1][0] == "user":
        role, before, name, idxs = items[-1]
        items[-1] = (role, _join(before, text), name, idxs + pending)
    else:
        items.append(("user", text, None, list(pending)))


def _alternate(items: list[Any]) -> list[Any]:
    merged: list[Any] = []
    for role, text, name, idxs in items:
        if merged and merged[-1][0] == role:
            _, before, first_name, before_idxs = merged[-1]
            merged[-1] = (role, _join(before, text), first_name, before_idxs + idxs)
        else:
            merged.append((role, text, name, idxs))
    first = 1 if merged and merged[0][0] == "system" else 0
    if len(merged) > first and merged[first][0] == "assistant":
        merged.insert(first, ("user", CHAT_START, None, []))
    return merged


def _join(*texts: str) -> str:
    return "\n\n".join(t for t in texts if t)


def spread(
    segments: Sequence[str], members: Sequence[Sequence[int]], n_inputs: int, trailer: str
) -> list[str]:
    """Give each normalized segment to the last input it carries; inputs merged away get ""."""
    out = [""] * n_inputs
    carry = ""
    for seg, idxs in zip(segments, members, strict=True):
        if not idxs:
            carry += seg
            continue
        out[max(idxs)] += carry + seg
        carry = ""
    return out + [carry + trailer]


@dataclass(frozen=True)
class Preset(ChatTemplate):
    name: str
    user: tuple[str, str]
    assistant: tuple[str, str]
    system: tuple[str, str] | None  # None: system text goes into a user turn
    generation: str
    stops: tuple[str, ...] = ()

    def render(
        self,
        messages: Sequence[Message],
        *,
        add_generation_prompt: bool = True,
        continue_last: bool = False,
        assistant_name: str = "Assistant",
    ) -> Rendered:
        norm, members = normalize(messages, system=self.system is not None, alternate=False)
        segments = []
        for i, m in enumerate(norm):
            wrap = {"system": self.system, "user": self.user}.get(m.role) or self.assistant
            prefix, suffix = wrap
            if continue_last and i == len(norm) - 1:
                suffix = ""
            default = "User" if m.role == "user" else assistant_name
            segments.append(prefix.replace("{name}", m.name or default) + m.text + suffix)
        trailer = ""
        if add_generation_prompt and not continue_last:
            trailer = self.generation.replace("{name}", assistant_name)
        pieces = spread(segments, members, len(messages), trailer)
        return Rendered("".join(pieces), pieces)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "chatml",
            user=("<|im_start|>user\n", "<|im_end|>\n"),
            assistant=("<|im_start|>assistant\n", "<|im_end|>\n"),
            system=("<|im_start|>system\n", "<|im_end|>\n"),
            generation="<|im_start|>assistant\n",
            stops=("<|im_end|>", "<|im_start|>"),
        ),
        Preset(
            "mistral",  # also Llama 2: the [INST] family, system text inside the user turn
            user=("[INST] ", " [/INST]"),
            assistant=("", "</s>"),
            system=None,
            generation="",
            stops=("</s>", "[INST]"),
        ),
        Preset(
            "llama3",
            user=("<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"),
            assistant=("<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"),
            system=("<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>"),
            generation="<|start_header_id|>assistant<|end_header_id|>\n\n",
            stops=("<|eot_id|>", "<|end_of_text|>", "<|start_header_id|>"),
        ),
        Preset(
            "alpaca",
            user=("### Instruction:\n", "\n\n"),
            assistant=("### Response:\n", "\n\n"),
            system=("", "\n\n"),
            generation="### Response:\n",
            stops=("### Instruction:", "### Response:"),
        ),
        Preset(
            "vicuna",
            user=("USER: ", "\n"),
            assistant=("ASSISTANT: ", "</s>\n"),
            system=("", "\n\n"),
            generation="ASSISTANT:",
            stops=("</s>", "\nUSER:"),
        ),
        Preset(
            "gemma",
            user=("<start_of_turn>user\n", "<end_of_turn>\n"),
            assistant=("<start_of_turn>model\n", "<end_of_turn>\n"),
            system=None,
            generation="<start_of_turn>model\n",
            stops=("<end_of_turn>", "<start_of_turn>"),
        ),
        Preset(
            "plain",
            user=("{name}: ", "\n"),
            assistant=("{name}: ", "\n"),
            system=("", "\n\n"),
            generation="{name}:",
        ),
    )
}
PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)
_ALIASES = {"llama2": "mistral", "inst": "mistral", "llama-3": "llama3", "text": "plain"}
# Markers that tell which family a model's own template belongs to, most specific first.
_FAMILY_MARKERS = (
    ("<|im_start|>", "chatml"),
    ("<|start_header_id|>", "llama3"),
    ("<start_of_turn>", "gemma"),
    ("[INST]", "mistral"),
    ("### Instruction", "alpaca"),
    ("ASSISTANT:", "vicuna"),
)


def preset(name: str) -> Preset:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in PRESETS:
        raise KeyError(f"unknown prompt format {name!r}; known: {', '.join(PRESET_NAMES)}")
    return PRESETS[key]


def guess_preset(source: str | None, eos: str = "") -> Preset:
    """The preset closest to a model's template (or its end token); ChatML when unsure."""
    text = (source or "") + " " + (eos or "")
    for marker, name in _FAMILY_MARKERS:
        if marker in text:
            return PRESETS[name]
    if eos in ("<|eot_id|>", "<end_of_turn>", "<|im_end|>"):
        return PRESETS[{"<|eot_id|>": "llama3", "<end_of_turn>": "gemma"}.get(eos, "chatml")]
    return PRESETS["chatml"]
