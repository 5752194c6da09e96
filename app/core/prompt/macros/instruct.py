"""The instruct macros (`{{instructInput}}`, `{{instructSystem}}`, `{{chatStart}}` ...), as
SillyTavern's `replaceInstructMacros` (`public/scripts/instruct-mode.js`) names them.

Without an instruct preset (a model's own chat template, ChatML...) the sequence macros are
empty, as in SillyTavern with instruct mode off; the system prompt ones always have the
system prompt, since Parlor always sends one.
"""

from __future__ import annotations

from typing import Any

# (names, the preset field, the field used when it is empty)
_SEQUENCES = (
    (("instructsystempromptprefix",), "system_sequence_prefix", None),
    (("instructsystempromptsuffix",), "system_sequence_suffix", None),
    (("instructinput", "instructuserprefix"), "input_sequence", None),
    (("instructusersuffix",), "input_suffix", None),
    (("instructoutput", "instructassistantprefix"), "output_sequence", None),
    (("instructseparator", "instructassistantsuffix"), "output_suffix", None),
    (("instructsystemprefix",), "system_sequence", None),
    (("instructsystemsuffix",), "system_suffix", None),
    (
        ("instructfirstoutput", "instructfirstassistantprefix"),
        "first_output_sequence",
        "output_sequence",
    ),
    (
        ("instructlastoutput", "instructlastassistantprefix"),
        "last_output_sequence",
        "output_sequence",
    ),
    (("instructstop",), "stop_sequence", None),
    (("instructuserfiller",), "user_alignment_message", None),
    (("instructsysteminstructionprefix",), "last_system_sequence", None),
    (("instructfirstinput", "instructfirstuserprefix"), "first_input_sequence", "input_sequence"),
    (("instructlastinput", "instructlastuserprefix"), "last_input_sequence", "input_sequence"),
)


def instruct_values(
    preset: Any | None,
    *,
    system_prompt: str,
    default_system_prompt: str,
    example_separator: str,
    chat_start: str,
) -> dict[str, str]:
    """Every instruct macro by lower-case name. `preset` is an `InstructPreset` or None;
    `system_prompt` is the one sent (the card's when it has one), `default_system_prompt`
    the user's own."""
    out: dict[str, str] = {}
    for names, key, fallback in _SEQUENCES:
        value = ""
        if preset is not None:
            value = str(getattr(preset, key, "") or "")
            if not value and fallback:
                value = str(getattr(preset, fallback, "") or "")
        out.update(dict.fromkeys(names, value))
    out["systemprompt"] = system_prompt
    for name in ("defaultsystemprompt", "instructsystem", "instructsystemprompt"):
        out[name] = default_system_prompt
    out["exampleseparator"] = example_separator
    out["chatstart"] = chat_start
    return out
