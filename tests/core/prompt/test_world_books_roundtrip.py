"""SillyTavern world-info files go into Parlor's book library and come back out unchanged,
for every field SillyTavern's entry editor writes (`newWorldInfoEntryTemplate` and the fields
`getWorldEntry` edits in public/scripts/world-info.js), unknown fields included.

SillyTavern writes every field of its entry template; a file that lacks some gets
SillyTavern's own defaults for them on export (`WI_DEFAULTS` in app/core/cards/lorebook.py),
which SillyTavern reads the same way."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.cards import lorebook_to_world_info
from app.core.store import Store
from app.core.store.world_state import WorldInfoStore

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
optional_int = st.none() | st.integers(0, 50)
optional_bool = st.none() | st.booleans()

ENTRY = st.fixed_dictionaries(
    {
        "key": st.lists(text.filter(str.strip), max_size=3),
        "keysecondary": st.lists(text.filter(str.strip), max_size=2),
        "comment": text,
        "content": text,
        "constant": st.booleans(),
        "vectorized": st.booleans(),
        "selective": st.booleans(),
        "selectiveLogic": st.integers(0, 3),
        "addMemo": st.booleans(),
        "order": st.integers(-5, 1000),
        "position": st.integers(0, 6),
        "disable": st.booleans(),
        "ignoreBudget": st.booleans(),
        "excludeRecursion": st.booleans(),
        "preventRecursion": st.booleans(),
        "delayUntilRecursion": st.booleans() | st.integers(1, 5),
        "probability": st.integers(0, 100),
        "useProbability": st.booleans(),
        "depth": st.integers(0, 999),
        "group": text,
        "groupOverride": st.booleans(),
        "groupWeight": st.integers(0, 1000),
        "scanDepth": optional_int,
        "caseSensitive": optional_bool,
        "matchWholeWords": optional_bool,
        "useGroupScoring": optional_bool,
        "automationId": text,
        "role": st.none() | st.integers(0, 2),
        "sticky": optional_int,
        "cooldown": optional_int,
        "delay": optional_int,
        "displayIndex": st.integers(0, 100),
        "matchPersonaDescription": st.booleans(),
        "matchScenario": st.booleans(),
        "matchCharacterDescription": st.booleans(),
        "matchCharacterPersonality": st.booleans(),
        "matchCharacterDepthPrompt": st.booleans(),
        "matchCreatorNotes": st.booleans(),
        "outletName": text,
        "characterFilter": st.fixed_dictionaries(
            {
                "isExclude": st.booleans(),
                "names": st.lists(text, max_size=2),
                "tags": st.lists(text, max_size=2),
            }
        ),
        "triggers": st.lists(st.sampled_from(["normal", "continue", "swipe"]), max_size=2),
    },
    optional={
        "someFutureField": st.integers() | text,
        "extensions": st.fixed_dictionaries({"custom": st.integers()}),
    },
)


@st.composite
def world_files(draw):
    entries = draw(st.lists(ENTRY, max_size=4))
    uids = draw(
        st.lists(st.integers(0, 10_000), min_size=len(entries), max_size=len(entries), unique=True)
    )
    return {
        "entries": {
            str(uid): {"uid": uid, **entry} for uid, entry in zip(uids, entries, strict=True)
        }
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=world_files())
def test_world_info_store_export_is_lossless(world):
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "parlor.db")
        try:
            WorldInfoStore(store).save_book("Book", json.loads(json.dumps(world)))
        finally:
            store.close()
        reopened = Store(Path(folder) / "parlor.db")
        try:
            stored = WorldInfoStore(reopened).book("Book")
        finally:
            reopened.close()
    assert lorebook_to_world_info(stored.book) == world
