"""The prompt inspector explains lore: every entry, fired or not, and why — what SillyTavern
only prints to its browser console (`checkWorldInfo`'s `log`)."""

from __future__ import annotations

from pathlib import Path

from app.core.cards import load_card
from app.core.prompt import Message, PromptInput, build_prompt, preset
from app.gui.chat.inspector import PromptInspector

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "worldinfo"


def test_the_inspector_lists_every_entry_with_its_reason(qtbot):
    card = load_card(FIXTURES / "seraphina_like.json").data
    prompt = build_prompt(
        PromptInput(
            card,
            "Ann",
            history=[Message("assistant", card["first_mes"]), Message("user", "A refuge, then?")],
        ),
        preset("chatml"),
        lambda s: (len(s) + 3) // 4,
        4096,
        256,
    )
    inspector = PromptInspector(prompt, 4096)
    qtbot.addWidget(inspector)
    rows = inspector.lore_table.rows()
    assert [r[0] for r in rows] == ["glade", "power", "eldoria", "shadowfang"]
    assert rows[0] == (
        "glade",
        "yes",
        "before_char",
        rows[0][3],
        "key 'refuge' in message 1 from the end",
    )
    assert int(rows[0][3]) > 0
    assert rows[3][1:] == ("no", "before_char", "", "no key found in the last 2 messages")


def test_no_lore_table_without_a_lorebook(qtbot):
    prompt = build_prompt(
        PromptInput({"name": "X"}, "Ann", history=[Message("user", "hi")]),
        preset("chatml"),
        len,
        4096,
        256,
    )
    inspector = PromptInspector(prompt, 4096)
    qtbot.addWidget(inspector)
    assert inspector.lore_table is None
