"""The process that owns llama.cpp. It is started by `LocalEngine` with the spawn method.

Everything llama.cpp does happens here, so an abort or an out-of-memory kill takes down
only this process; the window notices and stays up. The protocol is a duplex pipe of
tuples: ("load", params) → ("progress", fraction)* then ("loaded", info); ("generate",
prompt, sampling, layout or None) → ("token", text)* then ("done", stats); ("tokenize",
texts) → ("counts", [n, …]); ("quit",). Any failure answers ("error", message).

Stop is one shared byte (`abort`), not a pipe message: the parent sets it and llama.cpp
sees it between tokens and, through its abort callback, inside a long prompt evaluation.

Each reply reuses what it can of the KV cache: the common prefix, and after a drop of old
messages the history moved down in a context shift (kv_shift.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from multiprocessing.connection import Connection
from typing import Any

from app.core.appdata.llama_runtime import GpuProblem
from app.core.engine import kv_shift, kv_state, perf, sampler_chain, session_io
from app.core.engine.base import (
    LoadParams,
    ModelInfo,
    PromptLayout,
    SamplingParams,
    StreamStats,
)
from app.core.engine.devices import load_backends
from app.core.engine.expert_offload import expert_patterns, tensors_in_ram
from app.core.engine.reply_ids import (
    Pieces,
    Placed,
    ReplyIds,
    Sampled,
    Spliced,
    with_reply_ids,
    with_saved_ids,
)
from app.core.engine.session_file import SessionError
from app.core.engine.sessions import MIN_GAIN_TOKENS, SessionStore, model_identity
from app.core.engine.template_guard import disable_gguf_template_compilation

KV_TYPES = {"f16": 1, "q8_0": 8, "q4_0": 2}  # = llama_cpp.GGML_TYPE_F16, _Q8_0, _Q4_0
LOAD_MODES = {0: "none", 1: "mmap", 2: "mlock", 3: "mmap+mlock"}
IDLE_SAVE_S = 2.0  # this long without a request and the session is saved


class Child:
    """The state of the serving process: the model, the stop byte, the session folder."""

    def __init__(self, conn: Connection, abort: Any) -> None:
        self.conn, self.abort = conn, abort
        # llama_cpp.Llama once loaded; typed Any because llama-cpp-python's own annotations
        # are partial (its ctypes handles and numpy arrays)
        self.llm: Any = None
        self.params: LoadParams | None = None
        self.sessions: SessionStore | None = None
        self._abort_cb: Any = None
        self.shift_off = ""  # why llama.cpp cannot shift this model's cache ("" if it can)
        self._replies = self._checked = 0  # replies made; at the last look for a save
        self.copy_ms = 0.0  # longest state copy for a save since the last reply
        self.keep = 0  # the last prompt's permanent part, in tokens (for saved sessions)
        self.replies = ReplyIds(0)  # the ids of the replies made (reply_ids.py)
        self.pieces, self.sampled = Pieces(None), Sampled(None)
        self.placed: list[Placed] = []  # where the cache holds replies (for saved sessions)
        self.text = ("", 0)  # the prompt being answered, and its permanent part's length

    # --- loading -------------------------------------------------------------------------
    def load(self, params: LoadParams) -> ModelInfo:
        import llama_cpp

        if params.kv_type not in KV_TYPES:
            raise ValueError(
                f"Unknown KV cache type {params.kv_type!r}; use " + ", ".join(KV_TYPES)
            )
        self.llm = self.params = self.sessions = None
        # A GGML_BACKEND_DL build registers no backend until asked; with no GPU layers wanted
        # no GPU driver is woken (the GUI's fallback after a failed GPU load relies on it).
        gpu_problems = load_backends(cpu_only=params.n_gpu_layers == 0)
        disable_gguf_template_compilation()  # the file's templates: Parlor's sandbox only
        with (
            _progress_reporting(self.conn),
            tensors_in_ram(expert_patterns(params.n_cpu_moe)),
            kv_state.two_sequences(),  # a scratch sequence: saved sessions copy ranges
        ):
            try:
                self.llm = llama_cpp.Llama(**llama_kwargs(params))
            except ValueError as exc:
                raise ValueError(_explain_load_failure(str(exc), params)) from exc
        self.params = params
        self._abort_cb = _install_abort(self.llm, self.abort)
        self.shift_off = kv_shift.shift_unavailable(self.llm, params.kv_type)
        self.replies, self.pieces = ReplyIds(self.llm.n_ctx()), Pieces(self.llm)
        self.sampled, self.placed = Sampled(self.llm), []
        if params.session_dir:
            identity = model_identity(
                params.model_path,
                self.llm.n_ctx(),
                params.kv_type,
                params.flash_attn,
                llama_cpp.__version__,
            )
            self.sessions = SessionStore(
                params.session_dir, identity, params.session_cap_mb * 1024 * 1024
            )
        return _info(self.llm, params, self.shift_off, gpu_problems)

    # --- generating ----------------------------------------------------------------------
    def generate(
        self, prompt: str, sp: SamplingParams, layout: PromptLayout | None = None
    ) -> StreamStats:
        start = time.perf_counter()
        spliced = self._prompt_ids(prompt, layout)
        tokens = spliced.tokens
        if len(tokens) > self.llm.n_ctx():
            raise ValueError(
                f"The prompt has {len(tokens)} tokens, more than the context "
                f"size of {self.llm.n_ctx()}."
            )
        stats = StreamStats(prompt_tokens=len(tokens), seed=sp.seed)
        keep = self.keep = self._keep(prompt, tokens, layout)
        plan = kv_shift.plan_reuse(
            self.llm.input_ids[: self.llm.n_tokens].tolist(), tokens, keep, self.shift_off
        )
        stats.reused_tokens, stats.full_read_reason = plan.reused, plan.full_read_reason
        self.placed = list(spliced.placed)
        if not self._maybe_restore(tokens, keep, stats):
            self._shift(plan, stats)
        perf.reset(self.llm)
        probe = perf.FirstSample(self.llm)
        try:
            self._stream(tokens, sp, stats, start, probe)
        except RuntimeError:
            if not self.abort[0]:
                raise
            stats.stopped = True  # llama_decode returned 2: aborted; finished batches stay
        finally:
            reply = self.sampled.remember(self.replies, self.pieces)
            if reply:  # generated right after the prompt
                self.placed.append(Placed(len(tokens), 0, reply))
        stats.seconds = time.perf_counter() - start
        self._read_perf(stats, probe)
        return stats

    def prompt_tokens(self, prompt: str, layout: PromptLayout | None = None) -> list[int]:
        """The ids `generate` evaluates for `prompt`: the tokenizer's, with the ids the model
        generated where the prompt holds its earlier replies (reply_ids.py)."""
        return self._prompt_ids(prompt, layout).tokens

    def _prompt_ids(self, prompt: str, layout: PromptLayout | None) -> Spliced:
        self.text = (prompt, layout.permanent_chars if layout else 0)  # for a restore
        tokens = self._tokenize(prompt)
        return with_reply_ids(self.llm, self.replies, self.pieces, *self.text, tokens)

    def _tokenize(self, text: str) -> list[int]:
        tokens: list[int] = self.llm.tokenize(text.encode("utf-8"), special=True)
        if len(tokens) > 1 and tokens[0] == tokens[1] == self.llm.token_bos():
            tokens = tokens[1:]  # the template wrote its own BOS text; llama.cpp added one too
        return tokens

    def _keep(self, prompt: str, tokens: list[int], layout: PromptLayout | None) -> int:
        """The permanent part's length in tokens, as far as the whole prompt has them too
        (its last token may merge with what follows)."""
        if layout is None or layout.permanent_chars <= 0:
            return 0
        own = self._tokenize(prompt[: layout.permanent_chars])
        return kv_shift.common_prefix(own, tokens)

    def _shift(self, plan: kv_shift.ReusePlan, stats: StreamStats) -> None:
        n_cached = self.llm.n_tokens
        if plan.chunks:
            stats.reused_tokens = kv_shift.apply_plan(self.llm, plan)
            stats.shifted_tokens = stats.reused_tokens - plan.prefix  # all, unless refused
            stats.removed_tokens = plan.removed(n_cached)

    def _read_perf(self, stats: StreamStats, probe: perf.FirstSample) -> None:
        if probe.result is not None:
            stats.llama_prompt_eval = probe.result.tokens
            stats.llama_prompt_eval_ms = probe.result.ms
        stats.llama_perf = perf.report(self.llm)

    def _stream(
        self,
        tokens: list[int],
        sp: SamplingParams,
        stats: StreamStats,
        start: float,
        probe: perf.FirstSample,
    ) -> None:
        # the penalty range is read from the Llama object when each request builds its sampler
        self.llm.last_n_tokens_size = (
            sp.repeat_last_n if sp.repeat_last_n >= 0 else self.llm.n_ctx()
        )
        sampler_chain.install(self.llm, sp)  # DRY and XTC, when on
        chunks = self.llm.create_completion(
            tokens, **completion_kwargs(sp), stopping_criteria=_criteria(probe)
        )
        if self.abort[0]:
            stats.stopped = True
            return
        for chunk in chunks:
            choice = chunk["choices"][0]
            if choice["text"]:
                stats.tokens += 1
                if stats.tokens == 1:
                    stats.ttft_s = time.perf_counter() - start
                self.conn.send(("token", choice["text"]))
            stats.finish_reason = choice.get("finish_reason") or stats.finish_reason
            if self.abort[0]:
                stats.stopped = True
                break

    # --- saved sessions ------------------------------------------------------------------
    def _maybe_restore(self, tokens: list[int], keep: int, stats: StreamStats) -> bool:
        """Load a saved state when it covers clearly more of the prompt than memory does,
        then shift it like a live cache (the file may be from before old messages left).

        True when the cache was replaced (or emptied by a file that failed half-way), so
        a plan made from the old cache must not be applied."""
        missing = len(tokens) - stats.reused_tokens
        # an ordinary turn (the live cache holds all but the new part) does not look at the
        # folder: a file would rarely hold more, and reading the headers costs the request
        if self.sessions is None or missing < max(MIN_GAIN_TOKENS, len(tokens) // 4):
            return False
        t0 = time.perf_counter()
        match = self.sessions.best_match(
            tokens[:-1], stats.reused_tokens + MIN_GAIN_TOKENS, shift=not self.shift_off
        )
        if match is None:
            return False
        try:
            saved, replies = session_io.restore(self.llm, self.sessions, match[0])
        except (SessionError, RuntimeError) as exc:
            self.sessions.note(f"Ignored a saved session: {exc}")
            self.llm.reset()  # a half-applied state must not be trusted either
            stats.reused_tokens = 0
            return True
        self.replies.adopt([ids for _, ids in replies], self.pieces)
        tokens[:], plan = self._ids_for(saved, tokens, keep)
        stats.prompt_tokens = len(tokens)
        stats.full_read_reason = ""
        self._shift(plan, stats)  # without runs to move, generate keeps just the prefix
        stats.reused_tokens = stats.restored_tokens = (
            self.llm.n_tokens if plan.chunks else plan.prefix
        )
        stats.restore_s = time.perf_counter() - t0
        return True

    def _ids_for(
        self, saved: list[int], tokens: list[int], keep: int
    ) -> tuple[list[int], kv_shift.ReusePlan]:
        """The prompt's ids that reuse most of a restored cache `saved`, and the plan.

        First choice: the ids with the replies the file lists (adopted by now), which are
        what the prompt would have had in a process that never stopped. A file written
        before files listed them has its lines stand in (`with_saved_ids`); the ids made
        before the restore stay where neither matches more."""
        prompt, start = self.text
        own = with_reply_ids(
            self.llm, self.replies, self.pieces, *self.text, self._tokenize(prompt)
        )
        best = own, kv_shift.plan_reuse(saved, own.tokens, keep, self.shift_off)
        lines = with_saved_ids(self.pieces, prompt, start, tokens, saved, self.llm.n_ctx())
        for other in (Spliced(tokens, tuple(self.placed)), Spliced(lines, ())):
            plan = kv_shift.plan_reuse(saved, other.tokens, keep, self.shift_off)
            if plan.reused > best[1].reused:
                best = other, plan
        self.placed = list(best[0].placed)
        return best[0].tokens, best[1]

    def save_session(
        self, final: bool = False, waiting: Callable[[float], bool] = lambda _timeout: False
    ) -> bool:
        """Append what the session file lacks of the cache (session_io.py); called when
        idle and at exit, never right after a reply. True when nothing is left to save.

        `waiting(timeout)` says whether a request has come in: the save stops there, so
        the request waits for one range's copy at most, and goes on at the next idle."""
        if self.sessions is None or self.llm is None:
            return True
        if not final and self._checked == self._replies:
            return True  # nothing new since the last look: no need to read the folder
        complete, copy_ms = session_io.save(
            self.llm,
            self.sessions,
            self.keep,
            final=final,
            shift=not self.shift_off,
            waiting=waiting,
            replies=self.placed,
        )
        self.copy_ms = max(self.copy_ms, copy_ms)
        self._checked = self._replies if complete else self._checked
        return complete

    def report_saves(self, stats: StreamStats) -> None:
        """What the saves since the last reply did, for the log and the benchmarks."""
        if self.sessions is None:
            return
        stats.notes = self.sessions.take_notes()
        stats.saved_bytes, stats.save_s = self.sessions.take_writes()
        stats.save_copy_ms, self.copy_ms = self.copy_ms, 0.0

    def close(self) -> None:
        if self.sessions is not None:
            self.save_session(final=True)
            self.sessions.wait()  # the last state must reach the disk before the exit


def completion_kwargs(sp: SamplingParams) -> dict[str, Any]:
    """`create_completion` arguments for `sp` (the benchmarks call llama.cpp with the same)."""
    return dict(
        max_tokens=sp.max_tokens,
        temperature=sp.temperature,
        top_p=sp.top_p,
        top_k=sp.top_k,
        min_p=sp.min_p,
        typical_p=sp.typical_p,
        repeat_penalty=sp.repeat_penalty,
        presence_penalty=sp.presence_penalty,
        frequency_penalty=sp.frequency_penalty,
        mirostat_mode=sp.mirostat_mode,
        mirostat_tau=sp.mirostat_tau,
        mirostat_eta=sp.mirostat_eta,
        seed=None if sp.seed < 0 else sp.seed,
        stop=list(sp.stop) or None,
        stream=True,
    )


def _criteria(probe: perf.FirstSample) -> Any:
    from llama_cpp import StoppingCriteriaList

    return StoppingCriteriaList([probe])


def llama_kwargs(params: LoadParams) -> dict[str, Any]:
    """`Llama` arguments for `params` (the benchmarks load llama.cpp with the same)."""
    kv = KV_TYPES[params.kv_type]
    return dict(
        model_path=params.model_path,
        n_ctx=params.n_ctx,
        n_gpu_layers=params.n_gpu_layers,
        n_threads=params.n_threads,
        n_threads_batch=params.n_threads,
        n_batch=params.n_batch,
        n_ubatch=min(params.n_batch, 512),
        flash_attn=params.flash_attn,
        type_k=kv,
        type_v=kv,
        use_mmap=params.use_mmap,
        use_mlock=params.use_mlock,
        verbose=False,
    )


def _install_abort(llm: Any, abort: Any) -> Any:
    """Point llama.cpp's abort callback at the shared stop byte.

    llama.cpp calls it for every graph node, so a Python callback (a GIL round trip each
    time) would slow every token. C's strlen on the two-byte buffer [flag, 0] is 1 when the
    flag is set and 0 otherwise: the check stays in C and costs nanoseconds.
    """
    import llama_cpp

    addr = ctypes.addressof(abort)
    try:
        libc = ctypes.cdll.msvcrt if sys.platform == "win32" else ctypes.CDLL(None)
        address = ctypes.cast(libc.strlen, ctypes.c_void_p).value
        if address is None:
            raise OSError("C's strlen has no address")
        fn = llama_cpp.ggml_abort_callback(address)
    except (OSError, AttributeError):
        fn = llama_cpp.ggml_abort_callback(lambda _data: bool(abort[0]))
    llama_cpp.llama_set_abort_callback(llm._ctx.ctx, fn, ctypes.c_void_p(addr))
    return fn  # keep a reference: llama.cpp holds only the raw pointer


@contextlib.contextmanager
def _progress_reporting(conn: Connection) -> Iterator[None]:
    """Send ("progress", fraction) while llama.cpp reads the model.

    `Llama` builds its model parameters inside `__init__`, so the callback is set by a
    subclass of llama-cpp-python's LlamaModel wrapper swapped in for this one load.
    """
    from llama_cpp import _internals, llama_progress_callback

    original: Any = _internals.LlamaModel  # patched for this one load
    last = [-1.0]

    def report(fraction: float, _data: Any) -> bool:
        if fraction >= 1.0 or fraction - last[0] >= 0.01:
            last[0] = fraction
            conn.send(("progress", float(fraction)))
        return True

    class ReportingModel(original):  # type: ignore[misc]  # a class known only at run time
        def __init__(self, *, path_model: str, params: Any, verbose: bool = True) -> None:
            self._progress = llama_progress_callback(report)
            params.progress_callback = self._progress
            super().__init__(path_model=path_model, params=params, verbose=verbose)

    setattr(_internals, "LlamaModel", ReportingModel)  # noqa: B010 - a patch for one load
    try:
        yield
    finally:
        setattr(_internals, "LlamaModel", original)  # noqa: B010


def _explain_load_failure(message: str, params: LoadParams) -> str:
    if "context" in message and params.kv_type != "f16":
        return (
            f"{message}: a {params.kv_type} KV cache needs flash attention and a model "
            "whose head size is a multiple of 32; try the f16 KV cache."
        )
    return message


def _info(
    llm: Any, params: LoadParams, shift_off: str, gpu_problems: tuple[GpuProblem, ...] = ()
) -> ModelInfo:
    import llama_cpp

    meta = dict(llm.metadata)
    arch = meta.get("general.architecture", "")
    ctx = llm._ctx.ctx
    n_ctx, n_ctx_train = llm.n_ctx(), llm._model.n_ctx_train()
    warnings = []
    if n_ctx > n_ctx_train > 0:
        warnings.append(
            f"The context size {n_ctx} is larger than the {n_ctx_train} tokens "
            "the model was trained on; replies may degrade past that point."
        )
    offload = bool(llama_cpp.llama_supports_gpu_offload())
    if params.n_gpu_layers != 0 and not offload and gpu_problems:
        why = "; ".join(p.reason for p in gpu_problems)
        warnings.append(f"Every layer runs on the CPU: {why}.")
    return ModelInfo(
        path=params.model_path,
        name=meta.get("general.name") or os.path.basename(params.model_path),
        n_ctx=n_ctx,
        n_ctx_train=n_ctx_train,
        n_gpu_layers=params.n_gpu_layers,
        n_layer=int(meta.get(f"{arch}.block_count", 0) or 0),
        chat_template=meta.get("tokenizer.chat_template"),
        bos=llm.detokenize([llm.token_bos()], special=True).decode("utf-8", "replace"),
        eos=llm.detokenize([llm.token_eos()], special=True).decode("utf-8", "replace"),
        metadata={k: v for k, v in meta.items() if len(str(v)) < 4096},
        effective={
            "n_ctx": llama_cpp.llama_n_ctx(ctx),
            "n_batch": llama_cpp.llama_n_batch(ctx),
            "n_ubatch": llama_cpp.llama_n_ubatch(ctx),
            "n_threads": llama_cpp.llama_n_threads(ctx),
            "n_threads_batch": llama_cpp.llama_n_threads_batch(ctx),
            "kv_type": params.kv_type,
            "flash_attn": params.flash_attn,
            "n_gpu_layers": llm.model_params.n_gpu_layers,
            "gpu_offload": offload,
            "gpu_problems": [p.backend for p in gpu_problems],
            "n_cpu_moe": params.n_cpu_moe,
            "load_mode": LOAD_MODES.get(llm.model_params.load_mode, "?"),
            "context_shift": shift_off or "on",
        },
        warnings=warnings + ([shift_off] if shift_off else []),
    )


def _handle(child: Child, message: tuple[Any, ...]) -> None:
    kind = message[0]
    if kind == "load":
        info = child.load(LoadParams(**message[1]))
        child.conn.send(("loaded", asdict(info)))
    elif kind == "generate":
        layout = PromptLayout(**message[3]) if len(message) > 3 and message[3] else None
        stats = child.generate(message[1], SamplingParams(**message[2]), layout)
        child._replies += 1
        child.report_saves(stats)
        child.conn.send(("done", asdict(stats)))
    elif kind == "tokenize":
        child.conn.send(
            (
                "counts",
                [
                    len(child.llm.tokenize(t.encode("utf-8"), add_bos=False, special=True))
                    for t in message[1]
                ],
            )
        )


def serve(conn: Connection, abort: Any) -> None:
    """Answer requests until told to quit or the parent goes away."""
    child = Child(conn, abort)
    try:
        while True:
            try:
                if not conn.poll(IDLE_SAVE_S):
                    child.save_session(waiting=conn.poll)  # idle; a request stops it
                    continue
                message = conn.recv()
            except (EOFError, OSError):
                return
            if message[0] == "quit":
                return
            try:
                _handle(child, message)
            except Exception as exc:  # noqa: BLE001 - every failure must reach the parent
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        child.close()
