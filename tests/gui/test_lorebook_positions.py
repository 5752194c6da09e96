"""The lorebook editor's Position, Depth and Role fields change where the entry lands in the
prompt, as SillyTavern's `world_info_position` does (`checkWorldInfo`, `doChatInject`)."""

from __future__ import annotations

import pytest

from app.core.prompt import Message, PromptInput, build_prompt, preset
from app.gui.characters.lorebook_editor import LorebookEditor

CARD = {
    "name": "Mira",
    "description": "Mira keeps the lighthouse.",
    "scenario": "A storm.",
    "mes_example": "<START>\n{{char}}: Mind the stairs.",
}
HISTORY = [
    Message("assistant", "Welcome."),
    Message("user", "Where is the lamp?"),
    Message("assistant", "Upstairs."),
    Message("user", "Show me the lamp."),
]


def book():
    return {
        "entries": [
            {
                "keys": ["lamp"],
                "content": "The lamp burns whale oil.",
                "enabled": True,
                "insertion_order": 100,
                "name": "lamp",
                "position": "before_char",
                "use_regex": True,
                "extensions": {"position": 0},
            }
        ]
    }


@pytest.fixture
def editor(qtbot):
    widget = LorebookEditor(book())
    qtbot.addWidget(widget)
    widget.entries.setCurrentRow(0)
    return widget


def prompt_with(edited: dict) -> str:
    built = build_prompt(
        PromptInput({**CARD, "character_book": edited}, "Ann", history=HISTORY),
        preset("chatml"),
        lambda s: (len(s) + 3) // 4,
        4096,
        256,
    )
    assert built.lore == ["lamp"]
    return built.text


def choose(editor: LorebookEditor, position: int) -> None:
    form = editor.form
    form.position.setCurrentIndex(form.position.findData(position))


def test_before_and_after_the_character(editor):
    text = prompt_with(editor.book())
    assert text.index("whale oil") < text.index("Mira keeps")
    choose(editor, 1)
    text = prompt_with(editor.book())
    assert text.index("A storm.") < text.index("whale oil") < text.index("Mind the stairs")


def test_around_the_examples(editor):
    choose(editor, 5)
    text = prompt_with(editor.book())
    assert text.index("The lamp burns") < text.index("Mind the stairs")  # an example turn
    choose(editor, 6)
    text = prompt_with(editor.book())
    assert text.index("Mind the stairs") < text.index("The lamp burns")


def test_at_a_depth_with_a_role(editor):
    form = editor.form
    assert not form.depth.isEnabled()
    choose(editor, 4)
    assert form.depth.isEnabled() and form.role.isEnabled()
    form.depth.setValue(1)
    form.role.setCurrentIndex(form.role.findData(1))  # user
    entry = editor.book()["entries"][0]
    assert entry["extensions"] == {"position": 4, "depth": 1, "role": 1}
    text = prompt_with(editor.book())
    assert text.index("Upstairs.") < text.index("whale oil") < text.index("Show me the lamp")
    assert "<|im_start|>user\nThe lamp burns whale oil.<|im_end|>" in text


def test_the_authors_note_positions_reach_the_note(editor):
    """With no note text, SillyTavern's author's note still carries its lore (interval 1, in
    the chat at depth 4 as system)."""
    choose(editor, 2)
    text = prompt_with(editor.book())
    assert (
        "<|im_start|>system\nThe lamp burns whale oil.<|im_end|>\n<|im_start|>assistant\n"
        "Welcome." in text
    )


def test_keys_split_on_commas_but_not_inside_a_regex():
    """SillyTavern's `splitKeywordsAndRegexes`: a comma inside `/…/` belongs to the regex; a
    `/` that never closes a valid regex is plain text split as usual."""
    from app.gui.characters.lorebook_editor import split_keys

    assert split_keys("a, b ,/x{1,3}/i, c") == ["a", "b", "/x{1,3}/i", "c"]
    assert split_keys("/a,b") == ["/a", "b"]
    assert split_keys(r"/a\/b,c/, d") == [r"/a\/b,c/", "d"]
    assert split_keys(" , a,") == ["a"]
