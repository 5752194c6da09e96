"""worldinfo_ms: world-info activation for one turn with a 2,000-entry book over a 60-message
scan window (SillyTavern users report stalls of many seconds with books this size).

The book and chat are generated from a fixed seed: plain keys (some of several words), 5%
`/regex/` keys, secondary keys, constants, inclusion groups, entries whose text names other
entries' keys (so recursion has work to do), and a chat in which about one message in three
names a key. Each turn adds a message and runs the whole activation (entries read from the
book, sorted, scanned with recursion, groups, budget, placed, explained); the figure is the
median over the turns, with the slowest turn beside it, and the CPU time of the median turn
(on a shared machine the wall time also counts the time other processes hold the cores).
The first turn also reads the book and compiles its keys (`worldinfo/plan.py`; cached after
that); the reason for every entry is made only when asked (the inspector, `parlor prompt
--json`) and is measured apart, as trace_median_ms.
"""

from __future__ import annotations

import random
import statistics
import time

SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ra",
    "ve",
    "dor",
    "an",
    "th",
    "el",
    "is",
    "ur",
    "qu",
    "yn",
    "bar",
    "sel",
    "mor",
    "tia",
    "gon",
    "wen",
    "fa",
)
# Everyday words: each holds p, z, x or j, which no key syllable has, so they never collide
# with a key and only the mentions decide what fires.
FILLER = ("pa", "zo", "xi", "ju", "pe", "zy", "op", "az")


def _word(rng: random.Random, syllables=SYLLABLES) -> str:
    return "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))


def _filler(rng: random.Random, n: int) -> str:
    return " ".join(_word(rng, FILLER) + rng.choice(FILLER) for _ in range(n))


def make_book(n_entries: int = 2000, seed: int = 7) -> tuple[dict, list[str]]:
    rng = random.Random(seed)
    vocabulary = sorted({_word(rng) for _ in range(n_entries * 3)})
    entries = []
    for i in range(n_entries):
        keys = rng.sample(vocabulary, 3)
        if i % 20 == 0:
            keys[0] = rf"/\b{keys[0]}(s|es)?\b/i"
        elif i % 10 == 0:
            keys[0] = f"{keys[0]} {keys[1]}"
        mentions = " ".join(rng.sample(vocabulary, 2))
        entry = {
            "id": i,
            "keys": keys,
            "name": f"entry {i}",
            "enabled": True,
            "insertion_order": rng.randint(1, 200),
            "use_regex": True,
            "content": f"Lore {i}: {_filler(rng, 30)} {mentions}.",
            "extensions": {"position": rng.choice((0, 1, 4)), "depth": 4},
        }
        if i % 17 == 0:
            entry["selective"] = True
            entry["secondary_keys"] = rng.sample(vocabulary, 2)
        if i % 50 == 0:
            entry["constant"] = True
        if i % 25 == 0:
            entry["extensions"]["group"] = f"group {i % 4}"
        entries.append(entry)
    return {"name": "Big book", "entries": entries}, vocabulary


def make_chat(vocabulary: list[str], n: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        words = _filler(rng, 40).split()
        if i % 3 == 0:
            words[rng.randrange(40)] = rng.choice(vocabulary)
        lines.append(f"{'Ann' if i % 2 else 'Mira'}: {' '.join(words)}")
    return lines


def measure(n_entries: int = 2000, window: int = 60, turns: int = 30) -> dict:
    from app.core.prompt import estimate_tokens
    from app.core.prompt.worldinfo import Book, WorldInfoSettings, run_world_info

    book, vocabulary = make_book(n_entries)
    chat = make_chat(vocabulary, window + turns)
    settings = WorldInfoSettings(depth=window)
    times, cpu, fired, explain = [], [], [], []
    for turn in range(turns):
        lines = list(reversed(chat[: window + turn]))
        start, start_cpu = time.perf_counter(), time.process_time()
        result = run_world_info(
            [Book("Big book", book)],
            lines,
            max_context=32_768,
            count_tokens=estimate_tokens,
            settings=settings,
            seed="bench",
            chat_length=len(lines),
        )
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        fired.append(len(result.fired))
        start = time.perf_counter()
        assert len(result.trace) == n_entries  # what the inspector shows, made on demand
        explain.append((time.perf_counter() - start) * 1000)
    return {
        "worldinfo_ms": statistics.median(times),
        "worldinfo": {
            "entries": n_entries,
            "scan_window": window,
            "turns": turns,
            "median_ms": statistics.median(times),
            "max_ms": max(times),
            "cpu_median_ms": statistics.median(cpu),
            "first_turn_ms": times[0],
            "trace_median_ms": statistics.median(explain),
            "fired_median": statistics.median(fired),
        },
    }


if __name__ == "__main__":
    import json

    print(json.dumps(measure()))
