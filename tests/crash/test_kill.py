"""Kill Parlor for real (SIGKILL) at random moments and count what was lost: expected 0.

The bulk runs the fast driver (tests/crash/driver.py: the real AppContext and Store, no
llama.cpp) through 200 kill-and-restart cycles: streaming a reply, importing cards, deleting
a chat tree, saving settings. A few more cycles kill the real app (`--smoke-test`) while
llama.cpp streams a reply from the tiny model. After every kill the test restarts the way the
app does (AppContext.create, which recovers interrupted replies) and checks the data.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from app.core.appdata.settings import Settings
from app.core.chat.context import AppContext
from tests.crash.driver import home_paths

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork and SIGKILL are POSIX")

ROOT = Path(__file__).resolve().parents[2]
CYCLES = 200
BUDGET_S = 45.0
MODES = ("chat", "card", "delete", "settings")


class Driver:
    """The forking workload server; each `kill_one` is one worker started and SIGKILLed."""

    def __init__(self, home: Path):
        self.home = home
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.crash.driver", str(home)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _ask(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().split()[1]

    def kill_one(self, mode: str, cycle: int, delay_s: float) -> int:
        """Run a worker for `delay_s`, SIGKILL it; returns its wait status."""
        pid = int(self._ask(f"run {mode} {cycle}"))
        self._wait_for_work(cycle)
        time.sleep(delay_s)
        os.kill(pid, signal.SIGKILL)
        return int(self._ask(f"wait {pid}"))

    def _wait_for_work(self, cycle: int) -> None:
        """Count the delay from the first acknowledged step, not from the fork: on a loaded
        machine opening the database alone can take longer than the longest delay."""
        acks = self.home / f"acks-{cycle}.jsonl"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (acks.exists() and acks.stat().st_size):
            time.sleep(0.001)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def read_acks(home: Path, cycle: int) -> list[dict]:
    path = home / f"acks-{cycle}.jsonl"
    if not path.exists():
        return []
    # The last line may be torn by the kill: it was never acknowledged.
    lines = path.read_text().splitlines()
    acks = []
    for line in lines:
        try:
            acks.append(json.loads(line))
        except ValueError:
            assert line is lines[-1], f"a torn ack line that is not the last: {line!r}"
    return acks


class Checker:
    """Checks acknowledged work against the database after a restart; counts losses."""

    def __init__(self, home: Path):
        self.home = home
        self.lost: list[str] = []
        self.stats: Counter = Counter()
        self.settings_ok: set[tuple[int, int]] = {(-1, 0)}  # defaults: nothing saved yet

    def restart(self) -> AppContext:
        """What the app does at start; recovery marks replies that were streaming."""
        return AppContext.create(home_paths(self.home))

    def check_cycle(self, mode: str, acks: list[dict], cycle: int) -> None:
        ctx = self.restart()
        try:
            rows = {r["id"]: r for r in ctx.store._query("SELECT * FROM messages")}
            self._check_messages(acks, rows)
            self._check_cards(acks, ctx)
            self._check_trees(acks, rows)
            self._check_database(ctx)
            if mode == "settings":
                self._check_settings(acks, ctx, cycle)
        finally:
            ctx.close()

    def _lose(self, what: str) -> None:
        self.lost.append(what)

    def _check_messages(self, acks: list[dict], rows: dict) -> None:
        last_text: dict[int, tuple[str, str]] = {}
        for ack in acks:
            if ack["kind"] == "message":
                row = rows.get(ack["id"])
                if row is None or row["text"] != ack["text"] or row["status"] != "complete":
                    self._lose(f"user message {ack['id']}")
            elif ack["kind"] == "reply":
                last_text.setdefault(ack["id"], ("reply", ""))
            elif ack["kind"] in ("partial", "complete"):
                last_text[ack["id"]] = (ack["kind"], ack["text"])
        for rid, (kind, text) in last_text.items():
            row = rows.get(rid)
            if row is None or not row["text"].startswith(text):
                self._lose(f"reply {rid} (saved text {text!r})")
            elif kind == "complete" and (row["status"], row["text"]) != ("complete", text):
                self._lose(f"completed reply {rid}")
            elif row["status"] not in ("complete", "interrupted"):
                self._lose(f"reply {rid} left as {row['status']!r}")
            else:
                self.stats[f"reply {row['status']}"] += 1

    def _check_cards(self, acks: list[dict], ctx: AppContext) -> None:
        for ack in (a for a in acks if a["kind"] == "card"):
            try:
                if ctx.store.characters.card(ack["id"])["name"] != ack["name"]:
                    self._lose(f"card {ack['id']} changed")
            except Exception as exc:  # noqa: BLE001 - any failure to read it back is a loss
                self._lose(f"card {ack['id']}: {exc}")
            self.stats["cards"] += 1

    def _check_trees(self, acks: list[dict], rows: dict) -> None:
        deleted = {a["chat"] for a in acks if a["kind"] == "deleted"}
        for ack in (a for a in acks if a["kind"] == "tree"):
            # Match on the chat too: SQLite reuses the ids of deleted rows.
            present = sum(i in rows and rows[i]["chat_id"] == ack["chat"] for i in ack["ids"])
            if ack["chat"] in deleted and present:
                self._lose(f"deleted tree of chat {ack['chat']} came back ({present} rows)")
            elif present not in (0, len(ack["ids"])):
                self._lose(f"tree of chat {ack['chat']} torn: {present}/{len(ack['ids'])}")
            else:
                self.stats["trees deleted" if present == 0 else "trees kept"] += 1

    def _check_database(self, ctx: AppContext) -> None:
        q = ctx.store._query
        assert q("PRAGMA integrity_check")[0][0] == "ok"
        assert q("PRAGMA foreign_key_check") == []
        q("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")
        assert q("SELECT count(*) FROM messages WHERE status = 'streaming'")[0][0] == 0
        dangling = q(
            "SELECT count(*) FROM chats c WHERE active_leaf_id IS NOT NULL AND NOT"
            " EXISTS (SELECT 1 FROM messages m WHERE m.id = c.active_leaf_id)"
        )[0][0]
        key = "chats pointing at a deleted leaf (max)"
        self.stats[key] = max(self.stats[key], dangling)

    def _check_settings(self, acks: list[dict], ctx: AppContext, cycle: int) -> None:
        saved = [a["counter"] for a in acks if a["kind"] == "settings"]
        allowed = (
            {(cycle, saved[-1]), (cycle, saved[-1] + 1)}
            if saved
            else self.settings_ok | {(cycle, 1)}
        )
        got = (ctx.settings.extra.get("cycle", -1), ctx.settings.extra.get("counter", 0))
        broken = ctx.paths.settings_file.with_name("settings.json.bad")
        if got not in allowed or broken.exists():
            self._lose(f"settings {got}, expected one of {sorted(allowed)}")
        self.settings_ok = {got}
        self.stats["settings checks"] += 1


def test_200_kill_and_restart_cycles_lose_nothing(tmp_path):
    rng = random.Random(20240917)
    home = tmp_path / "home"
    AppContext.create(home_paths(home)).close()  # the first start, before any kill
    driver, checker = Driver(home), Checker(home)
    started, cycles = time.monotonic(), 0
    try:
        while cycles < CYCLES and time.monotonic() - started < BUDGET_S:
            mode = MODES[cycles % len(MODES)]
            status = driver.kill_one(mode, cycles, rng.uniform(0.0, 0.06))
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
                f"cycle {cycles} ({mode}): the worker ended by itself (status {status})"
            )
            checker.check_cycle(mode, read_acks(home, cycles), cycles)
            cycles += 1
    finally:
        driver.close()
    # Everything acknowledged in any cycle is still there after all later kills.
    everything = [a for c in range(cycles) for a in read_acks(home, c)]
    checker.check_cycle("all", everything, cycles)
    print(f"\n{cycles} cycles in {time.monotonic() - started:.1f} s; {dict(checker.stats)}")
    assert checker.lost == [], f"lost after {cycles} kills: {checker.lost[:10]}"
    assert cycles >= 50, "too few cycles ran in the time budget to mean anything"
    assert checker.stats["reply interrupted"] > 0  # kills did land mid-stream
    assert checker.stats["cards"] > 0 and checker.stats["trees deleted"] > 0


# --- the real app, streaming from the real llama.cpp ---------------------------------------


def _streaming_row(db: Path) -> bool:
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=0.2)
        try:
            return bool(
                conn.execute(
                    "SELECT 1 FROM messages WHERE status = 'streaming' AND text != ''"
                ).fetchall()
            )
        finally:
            conn.close()
    except sqlite3.Error:
        return False  # not created yet, or busy: look again


def _kill_app_while_streaming(home: Path, model: Path, extra_s: float) -> bool:
    env = dict(os.environ, PARLOR_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "--smoke-test",
            "--model",
            str(model),
            "--max-tokens",
            "3000",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # its engine child dies with it
    deadline, seen = time.monotonic() + 120, False
    while proc.poll() is None and time.monotonic() < deadline and not seen:
        seen = _streaming_row(home_paths(home).database)
        time.sleep(0.05)
    time.sleep(extra_s)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return seen


@pytest.mark.slow
def test_killing_the_real_app_mid_reply_keeps_the_message_and_marks_the_reply(
    tmp_path, tiny_llama_path
):
    home = tmp_path / "home"
    interrupted = 0
    for cycle, extra in enumerate((0.0, 0.3)):
        seen = _kill_app_while_streaming(home, tiny_llama_path, extra)
        ctx = AppContext.create(home_paths(home))
        try:
            rows = ctx.store._query(
                "SELECT role, text, status FROM messages WHERE role != "
                "'assistant' OR parent_id IS NOT NULL ORDER BY id"
            )
            assert ctx.store._query("PRAGMA integrity_check")[0][0] == "ok"
        finally:
            ctx.close()
        users = [r for r in rows if r["role"] == "user"]
        replies = [r for r in rows if r["role"] == "assistant"]
        assert [u["text"] for u in users] == ["Hello! Who are you?"] * (cycle + 1)
        assert all(u["status"] == "complete" for u in users)
        assert len(replies) == cycle + 1 and replies[-1]["text"], "the partial reply was lost"
        assert all(r["status"] in ("interrupted", "complete") for r in replies)
        interrupted += seen and replies[-1]["status"] == "interrupted"
    assert interrupted >= 1, "no kill landed while the reply streamed"
    assert Settings.load(home_paths(home).settings_file) is not None
