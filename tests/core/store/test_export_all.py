""" "Export everything" and its import into an empty data folder on "another machine"."""

from __future__ import annotations

import json
import sqlite3
import zipfile

import pytest

from app.core.appdata.paths import default_paths
from app.core.appdata.secrets import SecretStore
from app.core.cards import card_from_bytes
from app.core.chat.context import AppContext
from app.core.chat.default_character import ensure_default_character
from app.core.store.export_all import ExportError, export_everything, import_everything

TOKEN = "hf_" + "Qq1Ww2Ee3Rr4Tt5Yy6Uu7Ii8Oo9Pp0Aa"


def _fill(ctx: AppContext) -> dict:
    """A library with a tree: swipes, a branch, a draft, a persona, a stopped reply."""
    store = ctx.store
    ensure_default_character(store)
    ada = store.characters.add(
        {
            "name": "Ada/..\\Lovelace",
            "description": "<b>math</b>",
            "first_mes": "Hello",
            "tags": ["x"],
        }
    )
    chat = store.chats.new(ada, ["Hello", "Hi there"])
    root = store.messages.active_leaf(chat)
    u1 = store.messages.append(chat, root, "user", "Tell me about engines")
    store.messages.append(chat, u1, "assistant", "First swipe")
    r2 = store.messages.append(
        chat, u1, "assistant", "Second swipe", status="stopped", gen_info={"seed": 7}
    )
    store.chats.set_draft(chat, "half-written")
    with store._tx() as c:
        c.execute("INSERT INTO personas (name, description, is_default) VALUES ('Sam', 'me', 1)")
    ctx.settings.user_name = "Sam"
    ctx.settings.extra = {"hub_token": TOKEN, "note": f"pasted {TOKEN} here", "future": 3}
    ctx.save_settings()
    return {"ada": ada, "chat": chat, "leaf": r2}


def _dump(db_path) -> dict:
    conn = sqlite3.connect(db_path)
    try:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall()
            for t in ("characters", "personas", "chats", "messages")
        }
    finally:
        conn.close()


def test_export_then_import_on_another_machine_is_lossless(tmp_path, monkeypatch):
    ctx = AppContext.create()
    ids = _fill(ctx)
    secrets = SecretStore(ctx.paths.config, use_keyring=False)
    secrets.set("hub_token", TOKEN)
    target = export_everything(ctx.paths, tmp_path / "parlor-export.zip", secrets.known_values())
    before = _dump(ctx.paths.database)
    ctx.close()

    monkeypatch.setenv("PARLOR_HOME", str(tmp_path / "other-machine"))
    counts = import_everything(target, default_paths())
    assert counts == {
        "characters": 2,
        "personas": 1,
        "groups": 0,
        "group_members": 0,
        "chats": 1,
        "messages": 5,
    }
    assert _dump(default_paths().database) == before
    other = AppContext.create()
    texts = [m.text for m in other.store.messages.active_path(ids["chat"])]
    assert texts == ["Hello", "Tell me about engines", "Second swipe"]
    assert other.store.chats.draft(ids["chat"]) == "half-written"
    assert other.settings.user_name == "Sam" and other.settings.extra["future"] == 3
    assert "hub_token" not in other.settings.extra
    assert other.store.messages.search("engines")[0].text == "Tell me about engines"  # FTS rebuilt
    other.close()


def test_the_zip_holds_cards_st_chats_personas_and_no_secrets(tmp_path):
    ctx = AppContext.create()
    _fill(ctx)
    target = export_everything(ctx.paths, tmp_path / "e.zip", [TOKEN])
    ctx.close()
    with zipfile.ZipFile(target) as zf:
        names = zf.namelist()
        blob = b"".join(zf.read(n) for n in names)
        cards = [n for n in names if n.startswith("cards/")]
        chats = [n for n in names if n.startswith("chats/")]
        assert len(cards) == 2 and all(n.endswith(".png") for n in cards)
        ada = next(n for n in cards if "Ada" in n)
        assert ".." not in ada and "\\" not in ada
        assert card_from_bytes(zf.read(ada), ada).description == "<b>math</b>"
        lines = [json.loads(x) for x in zf.read(chats[0]).decode().splitlines()]
        personas = json.loads(zf.read("personas.json"))
        settings = json.loads(zf.read("settings.json"))
    assert TOKEN.encode() not in blob
    assert lines[0]["user_name"] == "Sam" and lines[0]["character_name"] == "Ada/..\\Lovelace"
    assert [m["mes"] for m in lines[1:]] == ["Hello", "Tell me about engines", "Second swipe"]
    assert lines[1]["swipes"] == ["Hello", "Hi there"] and lines[1]["swipe_id"] == 0
    assert lines[3]["swipes"] == ["First swipe", "Second swipe"] and lines[3]["swipe_id"] == 1
    assert lines[2]["is_user"] and not lines[3]["is_user"]
    assert personas["personas"][0]["name"] == "Sam"
    assert "hub_token" not in settings and settings["note"] == "pasted [REDACTED] here"


def test_import_refuses_a_folder_that_already_has_chats(tmp_path):
    ctx = AppContext.create()
    _fill(ctx)
    target = export_everything(ctx.paths, tmp_path / "e.zip")
    before = _dump(ctx.paths.database)
    ctx.close()
    with pytest.raises(ExportError, match="empty data folder"):
        import_everything(target, default_paths())
    assert _dump(default_paths().database) == before


def test_import_refuses_paths_that_leave_the_folder_and_junk(tmp_path, monkeypatch):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("parlor/library.json", json.dumps({"schema_version": 1, "tables": {}}))
        zf.writestr("../../outside.txt", "x")
    with pytest.raises(ExportError, match="leave its folder"):
        import_everything(evil, default_paths())
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK not really")
    with pytest.raises(ExportError, match="not a Parlor export"):
        import_everything(junk, default_paths())
    newer = tmp_path / "newer.zip"
    with zipfile.ZipFile(newer, "w") as zf:
        zf.writestr("parlor/library.json", json.dumps({"schema_version": 999, "tables": {}}))
    with pytest.raises(ExportError, match="newer Parlor"):
        import_everything(newer, default_paths())
    assert not (tmp_path / "outside.txt").exists()


def test_a_broken_library_imports_nothing(tmp_path):
    ctx = AppContext.create()
    _fill(ctx)
    target = export_everything(ctx.paths, tmp_path / "e.zip")
    ctx.close()
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(target) as src, zipfile.ZipFile(broken, "w") as dst:
        library = json.loads(src.read("parlor/library.json"))
        library["tables"]["messages"][-1]["chat_id"] = 424242  # no such chat: FK fails
        for name in src.namelist():
            data = json.dumps(library) if name == "parlor/library.json" else src.read(name)
            dst.writestr(name, data)
    home = tmp_path / "fresh"
    from app.core.appdata.paths import Paths

    paths = Paths(home / "data", home / "config", home / "cache", home / "logs")
    with pytest.raises(ExportError, match="could not be imported"):
        import_everything(broken, paths)
    # Refused while checking the rows, before the data folder was even touched.
    assert not paths.database.exists()
