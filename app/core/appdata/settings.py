"""Typed settings with their defaults in one place, stored as JSON beside the other config.

Saving writes a temporary file and renames it over the old one, so a crash leaves either
the old settings or the new ones, never a torn file. Unknown keys from newer versions are
kept; a file that cannot be read is set aside and the defaults are used.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

SCHEMA_VERSION = 1


@dataclass
class Settings:
    schema_version: int = SCHEMA_VERSION
    model_path: str = ""          # the GGUF loaded at start; empty: ask the user
    n_ctx: int = 4096             # context size in tokens
    n_gpu_layers: int = 0         # layers offloaded to the GPU (0: CPU only, -1: all)
    n_threads: int = 0            # CPU threads for llama.cpp; 0: its own choice
    n_batch: int = 512            # prompt tokens evaluated per step
    flash_attn: bool = True       # smaller compute buffer; needed for a quantized V cache
    kv_type: str = "f16"          # KV cache precision: f16, q8_0 or q4_0
    use_mmap: bool = True         # map the model file instead of reading it all in
    use_mlock: bool = False       # keep the model in RAM (never swapped out)
    session_cap_mb: int = 2048    # disk for saved chat sessions; 0 keeps none
    max_tokens: int = 300         # longest reply, in tokens
    temperature: float = 0.8
    top_p: float = 0.95
    min_p: float = 0.05
    top_k: int = 40
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64       # how far back the repetition penalty looks
    typical_p: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    mirostat_mode: int = 0        # 0 off, 1 or 2: Mirostat instead of the samplers above
    mirostat_tau: float = 5.0
    mirostat_eta: float = 0.1
    seed: int = -1                # -1: a new random seed for every reply
    user_name: str = "You"        # the persona's name, for {{user}}
    persona: str = ""             # the persona's description
    template: str = "auto"        # "auto": the model's own chat template, else a preset name
    system_prompt: str = ""       # used when a card has none; empty: Parlor's default
    prompt_order: list = field(default_factory=lambda: [
        "system", "description", "personality", "scenario", "persona", "examples",
        "history", "lore", "post_history"])  # parts after "history" follow the chat
    stop_strings: list = field(default_factory=list)  # more strings that end a reply
    lore_scan_depth: int = 4      # how many recent messages lore keys are looked for in
    lore_budget_tokens: int = 512  # the most tokens activated lore may take
    enter_sends: bool = True      # Enter sends and Shift+Enter is a new line (else reversed)
    theme: str = "system"         # system | light | dark
    font_size: int = 0            # points for the chat text; 0: the system's size
    chat_layout: str = "bubbles"  # bubbles | book
    hf_endpoint: str = ""         # a Hugging Face mirror; empty: HF_ENDPOINT or the hub
    first_run_done: bool = False  # the first-run guide was finished or skipped
    extra: dict = field(default_factory=dict)  # keys this version does not know, kept as-is

    @classmethod
    def load(cls, path: Path) -> Settings:
        _remove_stale_temp_files(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError):
            _set_aside(path)
            return cls()
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in raw.items() if k in known}
        settings = cls(**values)
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


def _set_aside(path: Path) -> None:
    try:
        path.replace(path.with_suffix(".broken.json"))
    except OSError:
        pass
