"""World info's character filter in a group chat: SillyTavern's group loop makes each speaking
member the current character (`generateGroupWrapper` calls `setCharacterId` per member), so
`checkWorldInfo` filters entries by the member who speaks."""

from __future__ import annotations

from app.core.appdata.settings import Settings
from app.core.chat.groups.prompt import group_job, group_prompt_input
from app.core.chat.job import TokenCounter
from app.core.store.world_state import WorldInfoStore
from tests.prompt_models import model_info

INFO = model_info()


FILTERS = {
    "Ann": {"isExclude": False, "names": ["Ann"], "tags": []},
    "cats": {"isExclude": False, "names": [], "tags": ["cat"]},
}


def _lore(who):
    return {
        "keys": ["dragon"],
        "enabled": True,
        "content": f"Only {who} hear the dragon.",
        "extensions": {"parlor_world_info": {"characterFilter": FILTERS[who]}},
    }


def test_the_speaking_member_decides_which_filtered_entries_fire(store):
    ann = store.characters.add({"name": "Ann", "description": "A smith.", "tags": ["human"]})
    cid = store.characters.add({"name": "Cid", "description": "A cat.", "tags": ["Cat"]})
    wi = WorldInfoStore(store)
    wi.save_book("Inn lore", {"entries": [_lore("Ann"), _lore("cats")]})
    wi.set_global("Inn lore", True)
    gid = store.groups.create("Inn", [ann, cid], None)
    chat = store.groups.new_chat(gid, [(ann, "Hi."), (cid, "Mrr.")])
    store.messages.append(chat, store.messages.active_leaf(chat), "user", "The dragon?")
    settings = Settings()
    settings.template, settings.user_name = "chatml", "Uma"

    def built(speaker):
        prompt = group_prompt_input(
            store, settings, chat, speaker, store.messages.active_path(chat)
        )
        return group_job(prompt, INFO, settings, TokenCounter())(
            lambda texts: [len(t) // 4 + 1 for t in texts]
        )

    ann_turn, cid_turn = built(ann), built(cid)
    assert "Only Ann hear the dragon." in ann_turn.text
    assert "Only cats hear the dragon." not in ann_turn.text
    assert "Only cats hear the dragon." in cid_turn.text
    assert "Only Ann hear the dragon." not in cid_turn.text
    reasons = {t.entry: t.reason for t in ann_turn.lore_trace}
    assert any(r.startswith("filtered out for this character (Ann)") for r in reasons.values())
