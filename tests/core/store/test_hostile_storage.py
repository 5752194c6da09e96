"""Issue 21, points 8 and 9: no file and no crash may lock a user out of their data.

Each case ends by opening the data folder the way the app does at start."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.appdata.paths import Paths, default_paths
from app.core.chat.context import AppContext
from app.core.store import Store, StoreError
from app.core.store.export_all import ExportError, export_everything, import_everything


def _paths(root: Path) -> Paths:
    return Paths(root / "data", root / "config", root / "cache", root / "logs")


def _library_zip(tmp_path: Path) -> tuple[Path, dict]:
    ctx = AppContext.create()
    ada = ctx.store.characters.add({"name": "Ada", "first_mes": "Hello"})
    chat = ctx.store.chats.new(ada, ["Hello"])
    ctx.store.messages.append(chat, ctx.store.messages.active_leaf(chat), "user", "Hi")
    target = export_everything(ctx.paths, tmp_path / "export.zip")
    ctx.close()
    with zipfile.ZipFile(target) as zf:
        return target, json.loads(zf.read("parlor/library.json"))


def _rewrite(target: Path, out: Path, library_text: str) -> Path:
    with zipfile.ZipFile(target) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, library_text if name == "parlor/library.json" else src.read(name))
    return out


def _set(library: dict, table: str, column: str, value) -> dict:
    row = library["tables"][table][-1]
    row[column] = row["id"] if value == "self" else value
    return library


@pytest.mark.parametrize(
    "table, column, value, says",
    [
        ("characters", "card_json", "[1, 2]", "card_json must be a JSON object"),  # aborted starts
        ("characters", "card_json", '{"a": NaN}', "card_json must be a JSON object"),
        ("characters", "name", ["a list"], "name must be text"),
        ("characters", "created_at", 10**30, "created_at must be a date"),
        ("messages", "role", "root", "role must be user, assistant or system"),
        ("messages", "parent_id", 999, "parent_id 999 is not a message"),
        ("messages", "id", 2**70, "id must be a positive integer"),
        ("chats", "active_leaf_id", 12345, "its active message 12345"),
        ("messages", "parent_id", "self", "go round in a circle"),  # the last one's own id
        ("chats", "title", None, "title must be text"),
    ],
)
def test_a_malformed_export_is_refused_and_the_folder_still_opens(
    tmp_path, table, column, value, says
):
    target, library = _library_zip(tmp_path)
    bad = _rewrite(target, tmp_path / "bad.zip", json.dumps(_set(library, table, column, value)))
    paths = _paths(tmp_path / "fresh")
    with pytest.raises(ExportError, match="could not be imported") as caught:
        import_everything(bad, paths)
    assert says in str(caught.value)
    ctx = AppContext.create(paths)  # the next start works, on an empty library
    assert [r.name for r in ctx.store.characters.list()] == []
    ctx.close()


def test_two_messages_that_are_each_others_parent_are_refused(tmp_path):
    """A walk up from either would never reach a root (and the store's walks would hang)."""
    target, library = _library_zip(tmp_path)
    greeting, reply = library["tables"]["messages"][:2]
    greeting["parent_id"] = reply["id"]  # and the reply's parent is the greeting
    bad = _rewrite(target, tmp_path / "bad.zip", json.dumps(library))
    with pytest.raises(ExportError, match="go round in a circle"):
        import_everything(bad, _paths(tmp_path / "fresh"))


def test_an_older_export_that_remembers_a_deleted_child_imports(tmp_path):
    """Exports before `forget_stale_children` kept a parent's pointer to the child it last
    showed after that child was deleted; such a library imports, the pointer forgotten."""
    target, library = _library_zip(tmp_path)
    greeting = library["tables"]["messages"][0]
    greeting["active_child_id"] = 999  # deleted before the export: in no table of it
    old = _rewrite(target, tmp_path / "old.zip", json.dumps(library))
    paths = _paths(tmp_path / "fresh")
    assert import_everything(old, paths)["messages"] == 2
    ctx = AppContext.create(paths)
    try:
        chat = ctx.store.chats.of_character(ctx.store.characters.list()[0].id)[0].id
        assert [m.text for m in ctx.store.messages.active_path(chat)] == ["Hello", "Hi"]
    finally:
        ctx.close()


def test_infinity_written_as_1e999_is_refused(tmp_path):
    """json.loads reads 1e999 as infinity: Parlor's own export would then fail."""
    target, library = _library_zip(tmp_path)
    text = json.dumps(_set(library, "messages", "created_at", 1.5)).replace("1.5", "1e999")
    bad = _rewrite(target, tmp_path / "inf.zip", text)
    with pytest.raises(ExportError, match="created_at must be a date"):
        import_everything(bad, _paths(tmp_path / "fresh"))


def test_lone_surrogates_in_an_export_are_replaced(tmp_path, caplog):
    target, library = _library_zip(tmp_path)
    text = json.dumps(_set(library, "messages", "text", "A\ud800B"))
    odd = _rewrite(target, tmp_path / "odd.zip", text)
    paths = _paths(tmp_path / "fresh")
    counts = import_everything(odd, paths)
    assert counts["messages"] == 2 and "lone surrogates" in caplog.text
    ctx = AppContext.create(paths)
    chat = ctx.store.chats.of_character(ctx.store.characters.list()[0].id)[0].id
    assert ctx.store.messages.active_path(chat)[-1].text == "A\ufffdB"
    ctx.close()


def test_a_failed_write_never_leaves_the_connection_in_a_transaction(tmp_path):
    store = Store(tmp_path / "parlor.db")
    with pytest.raises(StoreError, match="lone surrogate"):
        store.characters.add({"name": "\ud800"})
    with pytest.raises(RuntimeError):
        with store._tx() as c:
            c.execute("INSERT INTO personas (name) VALUES ('half')")
            raise RuntimeError("a bug in the middle of a write")
    store.characters.add({"name": "Next"})  # failed before the fix: "within a transaction"
    assert [r.name for r in store.characters.list()] == ["Next"]
    assert store._query("SELECT count(*) FROM personas")[0][0] == 0
    store.close()


_KILLED_WRITER = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA cache_size = 1")  # spill changed pages into the file mid-transaction
conn.execute("BEGIN IMMEDIATE")
for i in range(400):
    conn.execute("INSERT INTO characters (name, card_json, created_at, updated_at)"
                 " VALUES (?, '{}', 0, 0)", ("x" * 4000,))
os._exit(9)  # killed, as by the OOM killer during a migration
"""


def test_a_hot_rollback_journal_is_rolled_back_at_start(tmp_path):
    """The first open was a read-only probe, which cannot roll a hot journal back: every
    start failed with "attempt to write a readonly database"."""
    db = tmp_path / "parlor.db"
    store = Store(db)
    store.characters.add({"name": "Keep"})
    store.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
    conn.close()
    killed = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(db)], timeout=60)
    assert killed.returncode == 9
    journal = Path(f"{db}-journal")
    assert journal.exists() and journal.stat().st_size > 0  # hot: the file is half-written
    store = Store(db)
    assert [r.name for r in store.characters.list()] == ["Keep"]
    store.characters.add({"name": "After"})
    store.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write a read-only folder")
def test_a_read_only_data_folder_is_a_clear_error(tmp_path):
    paths = default_paths()
    AppContext.create(paths).close()
    os.chmod(paths.data, 0o500)
    try:
        with pytest.raises((StoreError, OSError)) as caught:
            AppContext.create(paths).close()
        assert str(paths.data) in str(caught.value) or "readonly" in str(caught.value)
    finally:
        os.chmod(paths.data, 0o700)


def test_columns_of_later_schemas_survive_the_check(tmp_path):
    """A column the checker does not list is kept (the insert keeps what the table has),
    as long as SQLite can store it."""
    from app.core.store.import_rows import RowError, check_tables

    row = {"id": 1, "name": "P", "description": "", "is_default": 0, "future": 3}
    assert check_tables({"personas": [row]}).tables["personas"][0]["future"] == 3
    with pytest.raises(RowError, match="future must be a plain value"):
        check_tables({"personas": [{**row, "future": [1, 2]}]})


_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=2),
    st.just("[1]"),
    st.just("{}"),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_single_damaged_value_is_refused_or_imported_and_the_folder_opens(
    tmp_path_factory, fuzz_base, data
):
    """One column of one exported row set to a value of any type: the import is refused
    with a message or succeeds, and the folder opens and reads afterwards."""
    folder = tmp_path_factory.mktemp("fuzz")
    target, library = fuzz_base
    table = data.draw(st.sampled_from(["characters", "personas", "chats", "messages"]))
    rows = library["tables"][table]
    if not rows:
        return
    row = dict(data.draw(st.sampled_from(rows)))
    row[data.draw(st.sampled_from(sorted(row)))] = data.draw(_ANY)
    damaged = json.loads(json.dumps(library))
    damaged["tables"][table] = [row if r["id"] == row["id"] else r for r in rows]
    bad = _rewrite(target, folder / "bad.zip", json.dumps(damaged))
    paths = _paths(folder / "home")
    try:
        import_everything(bad, paths)
    except ExportError:
        pass
    ctx = AppContext.create(paths)  # whatever happened, the next start works
    for character in ctx.store.characters.list():
        assert isinstance(ctx.store.characters.card(character.id), dict)
        for chat in ctx.store.chats.of_character(character.id):
            ctx.store.messages.active_path(chat.id)
    ctx.close()


@pytest.fixture(scope="module")
def fuzz_base(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("fuzz-base")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PARLOR_HOME", str(root / "home"))
        return _library_zip(root)


@pytest.mark.parametrize(
    "settings_text", ["{not json", '{"temperature": NaN}', "[1, 2]", '{"temperature": 1e999}']
)
def test_unreadable_settings_in_an_export_leave_the_library_imported(tmp_path, settings_text):
    target, _ = _library_zip(tmp_path)
    out = tmp_path / "odd-settings.zip"
    with zipfile.ZipFile(target) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, settings_text if name == "settings.json" else src.read(name))
    paths = _paths(tmp_path / "fresh")
    assert import_everything(out, paths)["characters"] == 1
    ctx = AppContext.create(paths)
    temperature = ctx.settings.temperature
    assert temperature == temperature and temperature < 10  # a number, and not NaN
    ctx.close()


def test_a_corrupt_compressed_library_is_an_export_error(tmp_path):
    target, _ = _library_zip(tmp_path)
    raw = bytearray(target.read_bytes())
    with zipfile.ZipFile(target) as zf:
        info = zf.getinfo("parlor/library.json")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start + 5 : start + 40] = b"\xff" * 35  # inside the deflate stream
    bad = tmp_path / "corrupt.zip"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ExportError):
        import_everything(bad, _paths(tmp_path / "fresh"))
