"""Typed settings with their defaults in one place, stored as JSON beside the other config.

Saving writes a temporary file and renames it over the old one, so a crash leaves either
the old settings or the new ones, never a torn file. Unknown keys from newer versions are
kept. Loading never fails: a file that is not a JSON object is kept as `settings.json.bad`
and the defaults are used; each value is checked against its field's declared type (see
`app.core.appdata.settings_check`), and a bad one falls back to its default with a logged
warning naming the field. Older files are brought up to date by `MIGRATIONS`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from app.core.appdata.choices import ChatLayout, KvType, LoreStrategy, Theme
from app.core.appdata.settings_check import checked_value

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2

# schema_version N -> a function taking a version-N dict and returning a version N+1 dict.
# Add one whenever a field is renamed or its meaning changes; bump SCHEMA_VERSION with it.
Migration = Callable[[dict[str, Any]], dict[str, Any]]


def _v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """Version 1 saved every field, so its defaults were written out as if chosen. Where a
    default changed meaning, a value equal to the old default is taken as untouched and
    gets the new one: the context size from the model (0) instead of a fixed 4096, and
    SillyTavern's world-info scan depth (2) and percentage budget instead of 4 messages and
    a fixed 512 tokens (now an optional cap)."""
    old_defaults = {"n_ctx": (4096, 0), "lore_scan_depth": (4, 2), "lore_budget_tokens": (512, 0)}
    for name, (old, new) in old_defaults.items():
        if raw.get(name) == old:
            raw[name] = new
            log.info("settings: %s was the old default %r; now %r", name, old, new)
    return raw


MIGRATIONS: dict[int, Migration] = {1: _v1_to_v2}


@dataclass
class Settings:
    schema_version: int = SCHEMA_VERSION
    model_path: str = ""  # the GGUF loaded at start; empty: ask the user
    n_ctx: int = 0  # context size in tokens; 0: from the model and the memory
    n_gpu_layers: int = 0  # layers offloaded to the GPU (0: CPU only, -1: all)
    n_cpu_moe: int = 0  # MoE: experts of the first N layers stay in RAM
    n_threads: int = 0  # CPU threads for llama.cpp; 0: its own choice
    n_batch: int = 512  # prompt tokens evaluated per step
    flash_attn: bool = True  # smaller compute buffer; needed for a quantized V cache
    kv_type: KvType = KvType.F16  # KV cache precision
    use_mmap: bool = True  # map the model file instead of reading it all in
    use_mlock: bool = False  # keep the model in RAM (never swapped out)
    session_cap_mb: int = 2048  # disk for saved chat sessions; 0 keeps none
    max_tokens: int = 300  # longest reply, in tokens
    temperature: float = 0.8
    top_p: float = 0.95
    min_p: float = 0.05
    top_k: int = 40
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64  # how far back the repetition penalty looks
    typical_p: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    mirostat_mode: int = 0  # 0 off, 1 or 2: Mirostat instead of the samplers above
    mirostat_tau: float = 5.0
    mirostat_eta: float = 0.1
    seed: int = -1  # -1: a new random seed for every reply
    # DRY and XTC under SillyTavern's names and defaults (off: multiplier, probability 0)
    dry_multiplier: float = 0.0
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_penalty_last_n: int = 0  # 0 or -1: the whole context
    dry_sequence_breakers: str = '["\\n", ":", "\\"", "*"]'  # a JSON list, as SillyTavern's
    xtc_threshold: float = 0.1
    xtc_probability: float = 0.0
    user_name: str = "You"  # the persona's name, for {{user}}
    persona: str = ""  # the persona's description
    template: str = "auto"  # "auto": the model's own chat template, else a preset name
    system_prompt: str = ""  # used when a card has none; empty: Parlor's default
    prompt_order: list[str] = field(
        default_factory=lambda: [
            "system",
            "description",
            "personality",
            "scenario",
            "persona",
            "examples",
            "history",
            "lore",
            "post_history",
        ]
    )  # parts after "history" follow the chat
    stop_strings: list[str] = field(default_factory=list)  # more strings that end a reply
    lore_scan_depth: int = 2  # how many recent messages lore keys are looked for in
    lore_budget_tokens: int = 0  # a cap on activated lore, in tokens; 0: none
    # World info as a new SillyTavern install has it (public/scripts/world-info.js)
    lore_budget_percent: int = 25  # of the context left after the reply
    lore_recursive: bool = True  # fired lore's text can fire more entries
    lore_whole_words: bool = True  # a one-word key must stand as a word
    lore_case_sensitive: bool = False
    lore_include_names: bool = True  # scan "Name: message" lines
    lore_min_activations: int = 0  # widen the scan until this many entries fire
    lore_min_activations_depth_max: int = 0  # ...but not past this depth; 0: the whole chat
    lore_max_recursion_steps: int = 0  # 0: unlimited
    lore_group_scoring: bool = False  # inclusion groups keep the entries matching most keys
    lore_strategy: LoreStrategy = LoreStrategy.CHARACTER_FIRST  # merging books' lore
    # The author's note of a chat that has none of its own (SillyTavern's note defaults)
    note_default_text: str = ""
    note_default_position: int = 1  # 0: after the system block, 1: in the chat, 2: before it
    note_default_depth: int = 4
    note_default_role: int = 0  # 0 system, 1 user, 2 assistant
    note_default_interval: int = 1  # every N user messages; 0: off
    pin_examples: bool = False  # always send the example dialogue (history gives way)
    trim_reply_names: bool = True  # clean-up: drop "Name:" the model writes (SillyTavern: on)
    trim_incomplete_sentences: bool = False  # clean-up: cut after the last sentence end
    single_line: bool = False  # clean-up: replies end at their first line break
    instruct_presets: list[Any] = field(default_factory=list)  # the user's: SillyTavern JSON texts
    context_presets: list[Any] = field(default_factory=list)  # the user's context templates, so too
    context_template: str = ""  # for instruct presets; empty: the preset's own name, else Default
    enter_sends: bool = True  # Enter sends and Shift+Enter is a new line (else reversed)
    theme: Theme = Theme.SYSTEM
    font_size: int = 0  # points for the chat text; 0: the system's size
    chat_layout: ChatLayout = ChatLayout.BUBBLES
    speech_color: str = ""  # "quoted speech" in messages, #rrggbb; empty: the theme's
    action_color: str = ""  # *actions* in messages, #rrggbb; empty: the theme's
    thought_color: str = ""  # __thoughts__ in messages, #rrggbb; empty: the theme's
    # a character's chat background (its id, as text -> a picture in data/backgrounds);
    # a chat's own background (in the chat's extra) comes first
    character_backgrounds: dict[str, str] = field(default_factory=dict)
    hf_endpoint: str = ""  # a Hugging Face mirror; empty: HF_ENDPOINT or the hub
    first_run_done: bool = False  # the first-run guide was finished or skipped
    log_text: bool = False  # the log may quote chat text (for bug reports); else lengths
    extra: dict[str, Any] = field(
        default_factory=dict
    )  # keys this version does not know, kept as-is

    @classmethod
    def load(cls, path: Path) -> Settings:
        _remove_stale_temp_files(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            log.warning("settings file %s could not be read (%s); using defaults", path.name, exc)
            _set_aside(path)
            return cls()
        if not isinstance(raw, dict):
            log.warning(
                "settings file %s holds a JSON %s, not an object; kept as %s.bad, using defaults",
                path.name,
                type(raw).__name__,
                path.name,
            )
            _set_aside(path)
            return cls()
        return cls.from_dict(migrate(raw))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Settings:
        """Typed settings from a dict; each value of the wrong type is replaced by its default."""
        defaults = cls()
        settings = cls()
        for f in fields(cls):
            if f.name in ("extra", "schema_version") or f.name not in raw:
                continue
            default = getattr(defaults, f.name)
            setattr(settings, f.name, checked_value(f.name, raw[f.name], default))
        known = {f.name for f in fields(cls)}
        settings.extra = {k: v for k, v in raw.items() if k not in known}
        return settings

    def save(self, path: Path) -> None:
        data = asdict(self)
        data.update(data.pop("extra"))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".settings-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _remove_stale_temp_files(path: Path) -> None:
    """A crash between writing and renaming leaves a temp file; the real file is intact."""
    for stale in path.parent.glob(".settings-*"):
        try:
            stale.unlink()
        except OSError:
            pass


def migrate(
    raw: dict[str, Any],
    migrations: dict[int, Migration] | None = None,
    target: int = SCHEMA_VERSION,
) -> dict[str, Any]:
    """Bring a settings dict from its `schema_version` up to `target`, one step at a time.

    A file from a newer Parlor (a version above `target`) is read as it is: its known fields
    are still typed-checked, and its unknown ones are kept in `extra` for that version.
    """
    migrations = MIGRATIONS if migrations is None else migrations
    version = raw.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        log.warning("settings: schema_version %r is not a version; read as 1", version)
        version = 1
    if version > target:
        log.warning(
            "settings: written by a newer Parlor (schema %d, this one knows %d)", version, target
        )
        return raw
    while version < target:
        raw = migrations[version](dict(raw))
        version += 1
        raw["schema_version"] = version
    return raw


def _set_aside(path: Path) -> None:
    """Keep the unreadable file for the user (`settings.json.bad`) so nothing is lost."""
    try:
        path.replace(path.with_name(path.name + ".bad"))
    except OSError:
        pass
