"""Prompt assembly: macros, chat templates (sandboxed Jinja and presets), lore, the budget.

    template = template_from_gguf(header.chat_template, bos, eos)   # or preset("chatml")
    built = build_prompt(PromptInput(card.data, "Ann", history=[...]), template,
                         count_tokens, n_ctx=8192, max_new_tokens=400)
    built.text, built.stop, built.parts, built.dropped_messages, built.warnings

`built.text` never starts with the BOS token: tokenize it with the model's usual BOS (as
llama.cpp's own chat code does). `built.parts` are the prompt's parts in order ("system",
"lore_before", "description", "personality", "scenario", "lore_after", "persona", "examples",
"history", "post_history", each when present; lore at other positions sits in the examples or
in the history) with their token counts, then "template": what the chat template adds around
them. Warnings (a refused template, lore over budget, a prompt that
cannot fit) are meant to be shown to the user, and so are `built.unknown_macros` (left as
written). `PromptInput.macros` brings the chat's variables and state to the macros;
`built.variables` is what the prompt's `{{setvar}}`s made of them, to save once it is sent.
"""

from app.core.prompt.builder import (
    DEFAULT_ORDER,
    DEFAULT_SYSTEM_PROMPT,
    BuiltPrompt,
    Part,
    PromptInput,
    PromptSettings,
    build_prompt,
    estimate_tokens,
)
from app.core.prompt.macros import MacroContext, expand_macros
from app.core.prompt.presets import (
    PRESET_NAMES,
    ChatTemplate,
    Message,
    Rendered,
    guess_preset,
    preset,
)
from app.core.prompt.templates import (
    JinjaChatTemplate,
    Limits,
    TemplateLimitError,
    template_from_gguf,
)
from app.core.prompt.worldinfo import LoreResult, TraceItem, WorldInfoSettings, activate_lore
from app.core.prompt.worldinfo.in_prompt import LoreInput

__all__ = [
    "DEFAULT_ORDER",
    "DEFAULT_SYSTEM_PROMPT",
    "PRESET_NAMES",
    "BuiltPrompt",
    "ChatTemplate",
    "JinjaChatTemplate",
    "Limits",
    "LoreResult",
    "MacroContext",
    "Message",
    "Part",
    "PromptInput",
    "PromptSettings",
    "Rendered",
    "TemplateLimitError",
    "activate_lore",
    "build_prompt",
    "estimate_tokens",
    "expand_macros",
    "guess_preset",
    "preset",
    "template_from_gguf",
    "LoreInput",
    "TraceItem",
    "WorldInfoSettings",
]
