"""The process that owns llama.cpp. It is started by `LocalEngine` with the spawn method.

Everything llama.cpp does happens here, so an abort or an out-of-memory kill takes down
only this process; the window notices and stays up. The protocol is a duplex pipe of
tuples: ("load", params) → ("loaded", info); ("generate", prompt, sampling) → ("token",
text)* then ("done", stats); ("tokenize", texts) → ("counts", [n, …]); ("quit",).
Any failure answers ("error", message).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict

from app.core.engine.base import LoadParams, ModelInfo, SamplingParams, StreamStats

KV_TYPES = {"f16": 1, "q8_0": 8, "q4_0": 2}  # ggml_type values llama.cpp takes for the cache


def _load(params: LoadParams):
    import llama_cpp

    kv = KV_TYPES.get(params.kv_type, 1)
    llm = llama_cpp.Llama(
        model_path=params.model_path, n_ctx=params.n_ctx, n_gpu_layers=params.n_gpu_layers,
        n_threads=params.n_threads, n_batch=params.n_batch, flash_attn=params.flash_attn,
        type_k=kv, type_v=kv, use_mmap=params.use_mmap, use_mlock=params.use_mlock,
        verbose=False)
    return llm


def _info(llm, params: LoadParams) -> ModelInfo:
    meta = dict(llm.metadata)
    arch = meta.get("general.architecture", "")
    return ModelInfo(
        path=params.model_path,
        name=meta.get("general.name") or os.path.basename(params.model_path),
        n_ctx=llm.n_ctx(), n_ctx_train=llm._model.n_ctx_train(), n_gpu_layers=params.n_gpu_layers,
        n_layer=int(meta.get(f"{arch}.block_count", 0) or 0),
        chat_template=meta.get("tokenizer.chat_template"),
        bos=llm.detokenize([llm.token_bos()], special=True).decode("utf-8", "replace"),
        eos=llm.detokenize([llm.token_eos()], special=True).decode("utf-8", "replace"),
        metadata={k: v for k, v in meta.items() if len(str(v)) < 4096})


def _generate(llm, conn, cancel, prompt: str, sp: SamplingParams) -> StreamStats:
    import llama_cpp

    start = time.perf_counter()
    tokens = llm.tokenize(prompt.encode("utf-8"), special=True)
    if len(tokens) > 1 and tokens[0] == tokens[1] == llm.token_bos():
        tokens = tokens[1:]  # the template wrote its own BOS text; llama.cpp added one too
    cached = llm._input_ids[: llm.n_tokens].tolist()
    stats = StreamStats(prompt_tokens=len(tokens), seed=sp.seed,
                        reused_tokens=llama_cpp.Llama.longest_token_prefix(cached, tokens[:-1]))
    chunks = llm.create_completion(
        tokens, max_tokens=sp.max_tokens, temperature=sp.temperature, top_p=sp.top_p,
        top_k=sp.top_k, min_p=sp.min_p, typical_p=sp.typical_p,
        repeat_penalty=sp.repeat_penalty, presence_penalty=sp.presence_penalty,
        frequency_penalty=sp.frequency_penalty, mirostat_mode=sp.mirostat_mode,
        mirostat_tau=sp.mirostat_tau, mirostat_eta=sp.mirostat_eta,
        seed=None if sp.seed < 0 else sp.seed, stop=list(sp.stop) or None, stream=True)
    for chunk in chunks:
        choice = chunk["choices"][0]
        if choice["text"]:
            stats.tokens += 1
            if stats.tokens == 1:
                stats.ttft_s = time.perf_counter() - start
            conn.send(("token", choice["text"]))
        stats.finish_reason = choice.get("finish_reason") or stats.finish_reason
        if cancel.is_set():
            stats.stopped = True
            break
    stats.seconds = time.perf_counter() - start
    return stats


def _handle(llm, conn, cancel, message: tuple):
    kind = message[0]
    if kind == "load":
        params = LoadParams(**message[1])
        llm = _load(params)
        conn.send(("loaded", asdict(_info(llm, params))))
    elif kind == "generate":
        stats = _generate(llm, conn, cancel, message[1], SamplingParams(**message[2]))
        conn.send(("done", asdict(stats)))
    elif kind == "tokenize":
        conn.send(("counts", [len(llm.tokenize(t.encode("utf-8"), add_bos=False, special=True))
                              for t in message[1]]))
    return llm


def serve(conn, cancel) -> None:
    """Answer requests until told to quit or the parent goes away."""
    llm = None
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "quit":
            return
        try:
            llm = _handle(llm, conn, cancel, message)
        except Exception as exc:  # noqa: BLE001 - every failure must reach the parent as text
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
