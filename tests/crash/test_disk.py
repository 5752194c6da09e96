"""A full disk and read-only folders: writes fail with a clear message, nothing saved is hurt.

Read-only: the folders really are read-only for the process (when the tests run as root,
which ignores permissions, the check runs in a child without root's capabilities).
Full disk: SQLite's `max_page_count` for the database; RLIMIT_FSIZE (what the kernel
enforces as "file too large") for the settings file.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.core.appdata.logs import write_error_message
from app.core.appdata.paths import Paths
from app.core.appdata.settings import Settings
from app.core.chat.context import AppContext
from app.core.store import Store, StoreError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions and limits")
ROOT = Path(__file__).resolve().parents[2]


def _paths(home: Path) -> Paths:
    return Paths(home / "data", home / "config", home / "cache", home / "logs")


def _saved_home(home: Path) -> tuple[int, list[str]]:
    """A data folder with a chat and settings, closed cleanly as the app leaves it."""
    ctx = AppContext.create(_paths(home))
    cid = ctx.store.characters.add({"name": "Ada"})
    chat = ctx.store.chats.new(cid, ["Hi!"])
    ctx.store.messages.append(chat, ctx.store.messages.active_leaf(chat), "user", "keep me")
    ctx.settings.user_name = "Before"
    ctx.save_settings()
    texts = [m.text for m in ctx.store.messages.active_path(chat)]
    ctx.close()
    return chat, texts


def _check_intact(home: Path, chat: int, texts: list[str]) -> None:
    conn = sqlite3.connect(f"{_paths(home).database.as_uri()}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT text FROM messages WHERE chat_id = ? ORDER BY id", (chat,))
        assert [r[0] for r in rows] == texts
    finally:
        conn.close()
    assert Settings.load(_paths(home).settings_file).user_name == "Before"


def _without_root_powers() -> list[str]:
    """A command prefix under which permissions apply: root ignores them unless its
    capabilities are dropped (setpriv, from util-linux)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: read-only folders cannot be enforced")
    return [setpriv, "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all"]


def _run_child(code: str, home: Path, prefix: list[str] = ()) -> dict:
    proc = subprocess.run(
        [*prefix, sys.executable, "-c", textwrap.dedent(code), str(home)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


READ_ONLY_CHILD = """
    import json, sys
    from pathlib import Path
    from app.core.chat.context import AppContext
    from app.core.appdata.logs import write_error_message
    from app.core.appdata.paths import Paths
    from app.core.appdata.settings import Settings
    from app.core.store import StoreError
    home = Path(sys.argv[1])
    paths = Paths(home / "data", home / "config", home / "cache", home / "logs")
    out = {}
    try:
        AppContext.create(paths)
    except (StoreError, OSError) as exc:
        out["open"] = str(exc)
    try:
        Settings(user_name="After").save(paths.settings_file)
    except OSError as exc:
        out["settings"] = write_error_message(exc, "the settings")
    print(json.dumps(out))
"""


def test_read_only_folders_refuse_with_a_message_and_keep_the_data(tmp_path):
    chat, texts = _saved_home(tmp_path)
    prefix = _without_root_powers()
    for folder, _dirs, files in os.walk(tmp_path, topdown=False):
        for name in files:
            os.chmod(os.path.join(folder, name), 0o444)
        os.chmod(folder, 0o555)
    try:
        out = _run_child(READ_ONLY_CHILD, tmp_path, prefix)
    finally:
        for folder, _dirs, _files in os.walk(tmp_path):
            os.chmod(folder, 0o755)
    assert "Cannot open the chat database" in out["open"] and "parlor.sqlite3" in out["open"]
    assert "may not write there" in out["settings"] and "unchanged" in out["settings"]
    _check_intact(tmp_path, chat, texts)


def test_a_read_only_database_file_fails_each_write_clearly(tmp_path):
    chat, texts = _saved_home(tmp_path)
    store = Store(_paths(tmp_path).database)
    try:
        # query_only: SQLite refuses writes as for a read-only file (the folder test is above).
        store._conn.execute("PRAGMA query_only = ON")
        with pytest.raises(StoreError, match=r"Could not save to .*parlor\.sqlite3.*readonly"):
            store.messages.append(chat, store.messages.active_leaf(chat), "user", "lost?")
        assert [m.text for m in store.messages.active_path(chat)] == texts  # reads still work
    finally:
        store.close()
    _check_intact(tmp_path, chat, texts)


def test_a_full_database_fails_with_a_clear_message_and_recovers(tmp_path):
    chat, texts = _saved_home(tmp_path)
    store = Store(_paths(tmp_path).database)
    try:
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is now full
        with pytest.raises(StoreError, match=r"parlor\.sqlite3.*(full|disk)"):
            store.messages.append(chat, store.messages.active_leaf(chat), "user", "x" * 200_000)
        assert [m.text for m in store.messages.active_path(chat)] == texts
        store._conn.execute(f"PRAGMA max_page_count = {pages * 100}")  # space freed
        store.messages.append(chat, store.messages.active_leaf(chat), "user", "after")
        texts = [m.text for m in store.messages.active_path(chat)]
    finally:
        store.close()
    assert texts[-1] == "after"
    _check_intact(tmp_path, chat, texts)


FULL_DISK_CHILD = """
    import json, resource, signal, sys
    from pathlib import Path
    from app.core.appdata.logs import write_error_message
    from app.core.appdata.settings import Settings
    path = Path(sys.argv[1]) / "config" / "settings.json"
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    settings = Settings.load(path)
    settings.user_name = "After"
    settings.extra = {"big": "x" * 100_000}
    try:
        settings.save(path)
        print(json.dumps({"saved": True}))
    except OSError as exc:
        print(json.dumps({"error": write_error_message(exc, "the settings")}))
"""


def test_settings_on_a_full_disk_keep_the_old_file(tmp_path):
    chat, texts = _saved_home(tmp_path)
    out = _run_child(FULL_DISK_CHILD, tmp_path)
    assert "disk is full" in out["error"], out
    assert [p.name for p in (tmp_path / "config").iterdir()] == ["settings.json"]  # no temp
    _check_intact(tmp_path, chat, texts)


def test_write_error_message_for_a_real_permission_error(tmp_path):
    target = tmp_path / "a-file" / "settings.json"
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(OSError) as info:
        Settings().save(target)
    assert "Could not save the settings" in write_error_message(info.value, "the settings")
