"""Context shift: a chat past the context limit reuses its KV cache instead of re-reading it.

The matching rules are checked on plain token lists; the shift itself on real llama.cpp
with a tiny model, against a full re-read of the same prompt in a second context.
"""

from __future__ import annotations

import ctypes
import logging
import threading

import numpy as np
import pytest

from app.core.engine import LoadParams, PromptLayout
from app.core.engine.child import Child
from app.core.engine.kv_shift import MIN_CHUNK, PERMANENT_CHANGED, plan_reuse
from app.core.engine.local import LocalEngine
from tests.engine.shift_drive import (
    CARD,
    N_CTX,
    PROBE,
    REPLY_TOKENS,
    TIE,
    TOLERANCE,
    USER,
    DrivenChat,
    NullPipe,
    drive_turn,
    last_logits,
    model_info,
    parting_gap,
    run_reply,
    shift_child,
)

# --- planning on token lists ----------------------------------------------------------------
P = list(range(1000, 1010))  # the permanent part
A, B, C, D, E = (list(range(k * 100, k * 100 + MIN_CHUNK + 4)) for k in range(1, 6))


def test_messages_dropped_after_the_prefix_are_skipped_and_the_rest_moved():
    """llama.cpp server's cache reuse (`--cache-reuse`): the cache [P A B C] and the prompt
    [P B C E]: A is removed, B and C move down by len(A), only E is new."""
    plan = plan_reuse(P + A + B + C, P + B + C + E, keep=len(P))
    assert plan.prefix == len(P)
    assert [(c.src, c.dst, c.length) for c in plan.chunks] == [(len(P + A), len(P), len(B + C))]
    assert plan.reused == len(P + B + C) and plan.removed(len(P + A + B + C)) == len(A)
    assert not plan.full_read_reason


def test_each_run_that_is_still_in_the_prompt_is_reused():
    """Runs after a second gap (the moving tail of the last prompt) are found as well."""
    plan = plan_reuse(P + A + B + C + D, P + B + D + E, keep=len(P))
    assert [(c.src, c.length) for c in plan.chunks] == [
        (len(P + A), len(B)),
        (len(P + A + B + C), len(D)),
    ]
    assert plan.reused == len(P + B + D)


def test_a_change_in_the_permanent_part_means_a_full_read_and_says_so():
    edited = P[:5] + [7] + P[6:]
    plan = plan_reuse(P + A + B, edited + B + C, keep=len(P))
    assert plan.chunks == [] and plan.reused == 5
    assert plan.full_read_reason == PERMANENT_CHANGED


def test_where_llama_cpp_cannot_shift_only_the_prefix_is_reused_with_the_reason():
    plan = plan_reuse(P + A + B, P + B + C, keep=len(P), shift_off="recurrent")
    assert plan.chunks == [] and plan.reused == len(P)
    assert plan.full_read_reason == "recurrent"
    # an ordinary turn, where a shift would not have helped, reports nothing
    assert plan_reuse(P + A, P + A + B, shift_off="recurrent").full_read_reason == ""


def test_short_runs_are_not_moved_and_the_last_token_is_always_evaluated():
    short = A[: MIN_CHUNK - 1]
    assert plan_reuse(P + [1, 2] + short, P + short + E).chunks == []
    # even a prompt wholly in the cache leaves its last token to decode (fresh logits)
    assert plan_reuse(P + A, P + A).reused == len(P + A) - 1
    plan = plan_reuse(P + C + A, P + A)
    assert plan.reused == len(P + A) - 1


@pytest.mark.parametrize("flash_attn", [True, False])
def test_a_chat_past_the_limit_gives_the_reply_of_a_full_read_evaluating_only_what_is_new(
    tiny_llama_path, flash_attn
):
    """Past the limit the builder drops the oldest messages every turn; the shifted cache
    must answer as a full re-read does: the same top token, logits within TOLERANCE, the same
    greedy reply (or a parting at a float-noise tie), and only the new part evaluated."""
    shifting, fresh = (
        shift_child(tiny_llama_path, flash_attn),
        shift_child(tiny_llama_path, flash_attn),
    )
    chat = DrivenChat(shifting, CARD)
    shifted_turns, worst, partings = 0, 0.0, 0
    for i in range(40):
        prompt, stats, a, b, got, want = drive_turn(shifting, fresh, chat, f"({i}) {USER}")
        assert int(a.argmax()) == int(b.argmax()), f"turn {i}"
        worst = max(worst, float(np.abs(a - b).max()))
        assert len(got) == len(want) == REPLY_TOKENS
        if got != want:
            partings += 1
            assert parting_gap(fresh, prompt, got, want) < TIE, f"turn {i}"
        if prompt.dropped_messages and stats.shifted_tokens:
            shifted_turns += 1
            # what llama.cpp decoded: the new user line, the last reply, the markup around
            # them; never the history it already held
            assert stats.evaluated_tokens < 0.3 * stats.prompt_tokens, f"turn {i}"
            assert stats.removed_tokens > 0 and not stats.full_read_reason
    assert shifted_turns >= 30 and partings <= 3
    assert worst <= TOLERANCE


@pytest.fixture(scope="module")
def bench_model(tmp_path_factory):
    """The benchmarks' model: its heads (32 wide) take a quantized cache, the test model's
    (16) do not, and it attends to more of the context."""
    from bench.bench_model import QUICK, write_bench_model

    return write_bench_model(tmp_path_factory.mktemp("bench") / "quick.gguf", QUICK)


def test_the_shift_holds_on_a_model_that_attends_more(bench_model):
    """Measured on this model: logits within 2.1e-2 of a full read over 19 shifted turns
    (the bound here is 5e-2: it attends more than the test model, less than a real one)."""
    shifting, fresh = (
        shift_child(bench_model, True, n_ctx=512),
        shift_child(bench_model, True, n_ctx=512),
    )
    chat = DrivenChat(shifting, CARD)
    shifted_turns = 0
    for i in range(16):
        prompt, stats, a, b, got, want = drive_turn(shifting, fresh, chat, f"({i}) {USER}")
        assert int(a.argmax()) == int(b.argmax()), f"turn {i}"
        assert float(np.abs(a - b).max()) <= TOLERANCE * 5, f"turn {i}"
        if got != want:
            assert parting_gap(fresh, prompt, got, want) < TIE, f"turn {i}"
        shifted_turns += bool(stats.shifted_tokens)
    assert shifted_turns >= 10


def test_a_quantized_cache_of_narrow_heads_does_not_shift_and_says_why(bench_model):
    """With 32-wide heads llama.cpp keeps no rotation for quantized keys and its shift graph
    dereferences the missing one (kv_shift.rotates_quantized_keys), so a q8_0 cache reads
    past the limit in full, correctly, and the reply says why."""
    shifting = shift_child(bench_model, True, "q8_0", n_ctx=512)
    fresh = shift_child(bench_model, True, "q8_0", n_ctx=512)
    assert "q8_0" in shifting.shift_off and "64" in shifting.shift_off
    assert model_info(shifting).effective["context_shift"] == shifting.shift_off
    chat = DrivenChat(shifting, CARD)
    reasons = []
    for i in range(8):
        prompt, stats, a, b, got, want = drive_turn(shifting, fresh, chat, f"({i}) {USER}")
        assert stats.shifted_tokens == 0
        assert int(a.argmax()) == int(b.argmax()) and float(np.abs(a - b).max()) < 1e-3
        reasons.append(stats.full_read_reason)
    assert reasons[0] == "" and shifting.shift_off in reasons  # said once a shift would help


@pytest.fixture(scope="module")
def wide_heads_model(tmp_path_factory):
    """The benchmarks' small model with 64-wide heads, as most real models have (64-256)."""
    from dataclasses import replace

    from bench.bench_model import QUICK, write_bench_model

    shape = replace(QUICK, n_head=2, n_head_kv=1)
    return write_bench_model(tmp_path_factory.mktemp("wide") / "wide.gguf", shape)


@pytest.mark.parametrize("kv_type", ["q8_0", "q4_0"])
def test_a_quantized_cache_of_wide_heads_shifts_like_an_f16_one(wide_heads_model, kv_type):
    """With heads a multiple of 64 wide llama.cpp rotates quantized keys and can move them:
    measured on this model over 12 shifts, the logits after a shift differ from a full read
    of the same quantized cache by at most 1.7e-2 for q8_0 and q4_0 alike, as for f16 (the
    moved keys are dequantized, re-rotated and quantized again once per shift)."""
    shifting = shift_child(wide_heads_model, True, kv_type, n_ctx=512)
    fresh = shift_child(wide_heads_model, True, kv_type, n_ctx=512)
    assert shifting.shift_off == "" and model_info(shifting).effective["context_shift"] == "on"
    chat = DrivenChat(shifting, CARD)
    shifted_turns = 0
    for i in range(12):
        prompt, stats, a, b, got, want = drive_turn(shifting, fresh, chat, f"({i}) {USER}")
        assert int(a.argmax()) == int(b.argmax()), f"turn {i}"
        assert float(np.abs(a - b).max()) <= TOLERANCE * 5, f"turn {i}"
        shifted_turns += bool(stats.shifted_tokens)
    assert shifted_turns >= 6


def test_after_a_card_edit_the_whole_prompt_is_read_again_and_the_reply_says_why(tiny_llama_path):
    """A shift is only for history: keys computed after the old card text are not kept."""
    shifting, fresh = shift_child(tiny_llama_path, True), shift_child(tiny_llama_path, True)
    chat = DrivenChat(shifting, CARD)
    for i in range(8):  # past the limit, so the next turn would shift
        prompt, stats, *_ = drive_turn(shifting, fresh, chat, f"({i}) {USER}")
    assert stats.shifted_tokens > 0
    chat.card = CARD | {"description": CARD["description"].replace("river", "harbour")}
    prompt, stats, a, b, got, want = drive_turn(shifting, fresh, chat, f"(8) {USER}")
    assert stats.full_read_reason == PERMANENT_CHANGED
    assert stats.shifted_tokens == 0
    permanent = len(shifting._tokenize(prompt.text[: prompt.permanent_chars]))
    assert stats.reused_tokens < permanent
    assert stats.evaluated_tokens == stats.prompt_tokens - stats.reused_tokens
    assert int(a.argmax()) == int(b.argmax()) and float(np.abs(a - b).max()) <= TOLERANCE
    assert got == want


def test_the_log_has_llama_cpps_report_for_each_reply_matching_the_stats(tiny_llama_path, caplog):
    """The figures come from llama.cpp's counters and its own report says the same."""
    eng = LocalEngine()
    eng.load(LoadParams(model_path=str(tiny_llama_path), n_ctx=N_CTX))
    assert eng.info.effective["context_shift"] == "on"
    story = "the stranger and the traveler in the tavern with ale and bread " * 6
    lines = [f" ({i}) hello friend the storm is over the river road again" for i in range(30)]
    seen = []
    try:
        with caplog.at_level(logging.INFO, logger="app.core.engine.local"):
            for drop in (0, 4, 8):
                prompt = story + "".join(lines[drop : drop + 8])
                list(eng.stream(prompt, PROBE, threading.Event(), PromptLayout(len(story))))
                seen.append(eng.last_stats)
    finally:
        eng.unload()
    first, *shifted = seen
    assert first.evaluated_tokens == first.prompt_tokens and first.shifted_tokens == 0
    for stats in shifted:
        assert stats.shifted_tokens > 0 and stats.removed_tokens > 0
        assert stats.evaluated_tokens == stats.prompt_tokens - stats.reused_tokens
        assert stats.evaluated_tokens < 0.5 * stats.prompt_tokens
    records = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reply:")]
    assert len(records) == 3
    for stats, line in zip(seen, records, strict=True):
        assert f"prompt eval time = {stats.llama_prompt_eval_ms:.2f} ms" in line
        assert f"/ {stats.evaluated_tokens} tokens" in line


# --- saved sessions and the shift -------------------------------------------------------------
def _session_child(model, folder) -> Child:
    child = Child(NullPipe(), (ctypes.c_byte * 2)())
    child.load(LoadParams(model_path=str(model), n_ctx=N_CTX, session_dir=str(folder)))
    return child


def test_a_session_saved_before_old_messages_left_is_restored_and_shifted(
    tiny_llama_path, tmp_path
):
    """After a restart the file is some turns old: restored, then shifted like a live cache,
    it answers as a full read does, and only what came after it is evaluated."""
    folder = tmp_path / "sessions"
    live, fresh = _session_child(tiny_llama_path, folder), shift_child(tiny_llama_path, True)
    chat = DrivenChat(live, CARD)
    for i in range(6):
        drive_turn(live, fresh, chat, f"({i}) {USER}")
    assert live.save_session(final=True)
    live.sessions.wait()
    for i in range(6, 7):  # another turn: older messages dropped again
        drive_turn(live, fresh, chat, f"({i}) {USER}")
    prompt = chat.prompt(f"(7) {USER}")
    restarted = _session_child(tiny_llama_path, folder)
    stats = run_reply(restarted, prompt, PROBE, [])
    a = last_logits(restarted)
    fresh.llm.reset()  # a full read of the ids the restarted process evaluated
    fresh.llm.eval(restarted.llm.input_ids[: restarted.llm.n_tokens].tolist())
    b = last_logits(fresh)
    assert stats.restored_tokens > 0.5 * stats.prompt_tokens and stats.shifted_tokens > 0
    assert stats.evaluated_tokens == stats.prompt_tokens - stats.restored_tokens
    assert int(a.argmax()) == int(b.argmax()) and float(np.abs(a - b).max()) <= TOLERANCE
