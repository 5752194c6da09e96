"""DRY and XTC in the engine child: llama-cpp-python's sampler chain with the two added.

llama-cpp-python 0.3.36's `create_completion` has no DRY or XTC argument, but its `generate`
builds the chain through `Llama._init_sampler`, and llama.cpp has both samplers
(`llama_sampler_init_dry`, `llama_sampler_init_xtc`). When either is on, that method is
replaced on the instance by `chain` below: the same samplers in the same order, with DRY
right after the repetition penalties and XTC after min-p, just before the temperature, where
llama.cpp's own common sampler puts them (penalties, DRY, top-k, typical, top-p, min-p, XTC,
temperature). When both are off the instance keeps llama-cpp-python's own method, so
nothing else changes.

At temperature 0 llama-cpp-python samples greedily without the truncation samplers; XTC then
runs after them and before the greedy pick, as llama.cpp's chain does with a temperature of
0 (which keeps only the likeliest token). Mirostat replaces the truncation samplers, XTC
with them (llama.cpp ignores XTC under Mirostat too); DRY stays, as a penalty.
"""

from __future__ import annotations

from typing import Any

from app.core.engine.base import SamplingParams


def install(llm: Any, sp: SamplingParams) -> None:
    """Make `llm`'s next `generate` build its chain for `sp`."""
    if sp.dry_on or sp.xtc_on:
        llm._init_sampler = lambda **kw: chain(llm, sp, **kw)
    else:
        llm.__dict__.pop("_init_sampler", None)  # back to llama-cpp-python's own


def chain(
    llm: Any,
    sp: SamplingParams,
    *,
    top_k: int,
    top_p: float,
    min_p: float,
    typical_p: float,
    temp: float,
    repeat_penalty: float,
    frequency_penalty: float,
    presence_penalty: float,
    mirostat_mode: int,
    mirostat_eta: float,
    mirostat_tau: float,
    grammar: Any = None,
    **_unused: Any,  # tfs_z, penalize_nl, logits_processor: not used by Parlor's requests
) -> Any:
    from llama_cpp import _internals

    internals: Any = _internals  # llama-cpp-python's wrappers are not annotated
    s = internals.LlamaSampler()
    s.add_penalties(
        n_vocab=llm._n_vocab,
        penalty_last_n=llm.last_n_tokens_size,
        penalty_repeat=repeat_penalty,
        penalty_freq=frequency_penalty,
        penalty_present=presence_penalty,
    )
    if sp.dry_on:
        _add_dry(s, llm, sp)
    if grammar is not None:
        s.add_grammar(llm._model, grammar)
    if temp < 0.0:
        s.add_dist(llm._seed)
    elif temp == 0.0:
        if sp.xtc_on:
            _add_truncation(s, llm, sp, top_k, typical_p, top_p, min_p)
        s.add_greedy()
    elif mirostat_mode:
        _add_mirostat(s, llm, mirostat_mode, mirostat_tau, mirostat_eta)
    else:
        _add_truncation(s, llm, sp, top_k, typical_p, top_p, min_p)
        s.add_temp(temp)
        s.add_dist(llm._seed)
    return s


def _add_truncation(
    s: Any, llm: Any, sp: SamplingParams, top_k: int, typical_p: float, top_p: float, min_p: float
) -> None:
    s.add_top_k(top_k)
    s.add_typical(typical_p, 1)
    s.add_top_p(top_p, 1)
    s.add_min_p(min_p, 1)
    if sp.xtc_on:
        s.add_xtc(sp.xtc_probability, sp.xtc_threshold, 1, llm._seed)


def _add_dry(s: Any, llm: Any, sp: SamplingParams) -> None:
    last_n = sp.dry_penalty_last_n if sp.dry_penalty_last_n > 0 else llm.n_ctx()
    s.add_dry(
        llm._model,
        sp.dry_multiplier,
        sp.dry_base,
        sp.dry_allowed_length,
        last_n,
        list(sp.dry_sequence_breakers),
    )


def _add_mirostat(s: Any, llm: Any, mode: int, tau: float, eta: float) -> None:
    if mode == 1:
        s.add_mirostat(llm._n_vocab, llm._seed, tau, eta, 100)
    else:
        s.add_mirostat_v2(llm._seed, tau, eta)
