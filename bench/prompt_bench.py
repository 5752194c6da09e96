"""prompt_build_ms: building the prompt for the next reply in chats of 100, 10,000 and 100,000
messages, at an 8192-token context.

The counter stands in for the engine's tokenizer behind Parlor's per-text cache (a character
estimate, so the figure is the builder's own work, not llama.cpp's). "cold" is the first
build with an empty cache; "warm" is the median of the next turns, each adding a user message
and a reply, as in a chat that goes on: only the new pieces are counted. The target is a warm
figure that stays flat with the chat's length (the walk over the history stops once the
budget is full).
"""

from __future__ import annotations

import statistics
import time

CARD = {
    "name": "Comely",
    "description": "{{char}} keeps the inn by the river. " + "She knows every traveller. " * 60,
    "personality": "warm, quick-witted",
    "scenario": "{{user}} arrives at dusk.",
    "first_mes": "*She looks up.* Welcome, {{user}}!",
    "mes_example": "<START>\n{{user}}: Any rooms?\n{{char}}: One, by the fire. " * 8,
}
LINES = (
    '*She laughs and refills the mug.* "You should hear what the fisherman said."',
    "Go on, then. I have all night, and the storm isn't going anywhere.",
)


def _history(n: int):
    from app.core.prompt import Message

    return [
        Message("assistant" if i % 2 == 0 else "user", f"{LINES[i % 2]} ({i})") for i in range(n)
    ]


def _counter():
    from app.core.chat.job import TokenCounter

    def count_many(texts: list[str]) -> list[int]:
        return [len(t) // 4 + 1 for t in texts]

    return TokenCounter().bind(count_many)


def measure_one(n: int, turns: int = 7) -> dict:
    from app.core.prompt import Message, PromptInput, build_prompt, preset

    history, count, template = _history(n), _counter(), preset("chatml")
    runs = []
    for turn in range(turns + 1):
        history.append(Message("user", f"And then? ({turn})"))
        start = time.perf_counter()
        built = build_prompt(
            PromptInput(card=CARD, user_name="Ann", history=history), template, count, 8192, 400
        )
        runs.append((time.perf_counter() - start) * 1000)
        history.append(Message("assistant", f"{LINES[0]} (reply {turn})"))
    return {
        "messages": n,
        "cold_ms": round(runs[0], 2),
        "warm_ms": round(statistics.median(runs[1:]), 2),
        "slowest_warm_ms": round(max(runs[1:]), 2),
        "kept_messages": n + 2 * turns + 1 - built.dropped_messages,
    }


def run(quick: bool = False) -> dict:
    sizes = (100, 10_000) if quick else (100, 10_000, 100_000)
    rows = [measure_one(n, turns=3 if quick else 7) for n in sizes]
    return {"prompt_build": rows, "prompt_build_ms": max(r["warm_ms"] for r in rows)}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
