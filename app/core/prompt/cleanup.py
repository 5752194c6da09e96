"""Text on its way to the model and back.

`normalize_text` is applied to card and chat text before prompting, as SillyTavern does
(`\\r` gone, no spaces at line ends), without changing what is stored.

`clean_reply` follows SillyTavern's `cleanUpMessage` (`public/script.js`) on every finished
reply, in its order: a stop string cut even when only its start arrived, spaces at line ends,
the reply cut where the model starts the user's turn, instruct sequences the model wrote
itself, the character's own `Name:` at the start of lines, then the optional "trim incomplete
sentences" (`trimToEndSentence`, `public/scripts/utils.js`) and single-line mode. Each step is
a setting with SillyTavern's default; the raw text is returned too, so the clean-up can be
undone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.core.prompt.instruct import InstructPreset

_LINE_END_SPACES = re.compile(r"[^\S\r\n]+$", re.M)
# trimToEndSentence's sentence ends; emoji count too.
_SENTENCE_END = frozenset('.!?*")}`]$。！？”）】’」_')
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff]")


def normalize_text(text: str) -> str:
    """`\\r\\n` and `\\r` to `\\n`, and no spaces or tabs before a line break or the end."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _LINE_END_SPACES.sub("", text)


@dataclass(frozen=True)
class CleanupSettings:
    """SillyTavern's defaults: names trimmed, partial stops dropped, spaces trimmed."""

    trim_names: bool = True  # not `allow_name2_display`: drop "Char:" at line starts
    drop_partial_stops: bool = True
    trim_incomplete_sentences: bool = False  # `trim_sentences`
    single_line: bool = False
    trim_spaces: bool = True


@dataclass(frozen=True)
class Cleaned:
    text: str
    raw: str

    @property
    def changed(self) -> bool:
        """More than surrounding whitespace went. Whitespace alone is not worth storing a
        changed text: the next prompt then holds the reply as it was generated, so its
        tokens match the KV cache (a stripped leading space can force a full re-read)."""
        return self.text != self.raw.strip()


def clean_reply(
    raw: str,
    *,
    char: str,
    user: str,
    stops: Sequence[str] = (),
    instruct: InstructPreset | None = None,
    settings: CleanupSettings | None = None,
) -> Cleaned:
    s = settings or CleanupSettings()
    text = raw
    if s.single_line:  # SillyTavern adds "\n" as the first stop string
        stops = ["\n", *stops]
        text = text.lstrip("\n")
    text = _cut_at_stops(text, stops, partial=s.drop_partial_stops)
    text = _LINE_END_SPACES.sub("", text)
    text = _cut_user_turn(text, user)
    text = _cut(text, "<|endoftext|>")
    if instruct is not None:
        text = _drop_instruct(text, instruct)
    if s.trim_names and char:
        text = re.sub(rf"(^|\n){re.escape(char)}:\s*", r"\1", text)
        if text.startswith(char + ":"):
            text = text.replace(char + ":", "", 1).lstrip()
    if s.trim_incomplete_sentences:
        text = trim_to_end_sentence(text)
    if s.trim_spaces:
        text = text.strip()
    return Cleaned(text, raw)


def _cut(text: str, marker: str) -> str:
    at = text.find(marker) if marker else -1
    return text[:at] if at >= 0 else text


def _cut_at_stops(text: str, stops: Sequence[str], *, partial: bool) -> str:
    """Cut at any whole stop string, then drop the start of one left at the very end
    (it arrived split across tokens and the reply ended first)."""
    for stop in stops:
        text = _cut(text, stop)
    if partial:
        for stop in stops:
            for j in range(len(stop), 0, -1):
                if text.endswith(stop[:j]):
                    text = text[:-j]
                    break
    return text


def _cut_user_turn(text: str, user: str) -> str:
    if not user:
        return text
    if text.startswith(f"{user}:"):
        return ""  # the model answered as the user: nothing of it is the character's
    return _cut(text, f"\n{user}:")


def _drop_instruct(text: str, p: InstructPreset) -> str:
    text = _cut(text, p.stop_sequence)
    text = _cut(text, p.input_sequence)
    for sequence in (p.output_sequence, p.last_output_sequence):
        for line in sequence.split("\n"):
            if line.strip():
                text = text.replace(line, "")
    return text


def trim_to_end_sentence(text: str) -> str:
    """Cut after the last sentence end (or emoji); a space before it goes too."""
    for i in range(len(text) - 1, -1, -1):
        ch = text[i]
        if ch in _SENTENCE_END or _EMOJI.match(ch):
            last = i - 1 if i > 0 and text[i - 1].isspace() else i
            return text[: last + 1].rstrip()
    return text.rstrip()
