"""The model session: which engine the window uses, loading it, and its state.

It owns the conversation with the generation worker about models — load, cancel, the retry
on the CPU after a failed GPU load, and swapping engines (local file ↔ server) — and declares
the state the rest of the window reads (`loading`, `info`, `pending`). The engine itself is
only ever touched on the worker's thread: every request goes there as a queued signal
(C3), so a swap asked for during a load waits for the load to end.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.core.appdata.settings import Settings
from app.core.engine import Engine, LoadParams, ModelInfo
from app.core.gguf.header import GGUFError, GGUFHeader, estimate_memory, validate_gguf
from app.core.hub.context_size import UNKNOWN_TRAINED, ContextChoice, choose_context, this_machine
from app.gui.workers import WorkerThread


class ModelSession(QObject):
    loading_changed = Signal(bool)  # a load (or a server connection) started or ended
    status = Signal(str)  # the model label's text: "Loading x… 40%", "Connecting…"
    header_read = Signal(str)  # a summary of the file's header, before it loads
    loaded = Signal(object)  # ModelInfo, on the GUI thread
    failed = Signal(str)  # the load failed for good (after any CPU retry)
    warning = Signal(str)  # something the user should know; the load goes on
    rejected = Signal(str)  # the file is not a model that can be loaded; nothing ran

    _load = Signal(object)  # -> worker.load, queued
    _swap = Signal(object)  # -> worker.swap_engine, queued

    def __init__(
        self,
        worker: WorkerThread,
        settings: Settings,
        sessions_dir: Path,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._worker, self._settings, self._sessions_dir = worker.worker, settings, sessions_dir
        self.loading = False
        self.info: ModelInfo | None = None
        self.pending: LoadParams | None = None  # the load in flight; None for a server
        self.context: ContextChoice | None = None  # the context size of the file loading
        self._after_swap: Callable[[], None] | None = None
        self._load.connect(self._worker.load)
        self._swap.connect(self._worker.swap_engine)
        self._worker.loaded.connect(self._on_loaded)
        self._worker.load_failed.connect(self._on_load_failed)
        self._worker.load_progress.connect(self._on_progress)
        self._worker.engine_swapped.connect(self._on_swapped)

    # --- requests ------------------------------------------------------------------------
    def load_file(self, path: str, n_gpu_layers: int | None = None) -> bool:
        """Check the file, then load it on the worker thread. False if the file is bad."""
        try:
            header = validate_gguf(path)
        except (GGUFError, OSError) as exc:
            self.rejected.emit(self.tr("Cannot open the model:\n{0}").format(exc))
            return False
        s = self._settings
        self.context = choose_context(  # the setting, or 0: from the model and the memory
            s.n_ctx,
            header,
            this_machine(),
            kv_type=s.kv_type,
            flash_attn=s.flash_attn,
            n_gpu_layers=s.n_gpu_layers if n_gpu_layers is None else n_gpu_layers,
        )
        self.header_read.emit(
            f"{describe_header(header, self.context.n_ctx, s.kv_type)}. {self.context.note}"
        )
        self.pending = self._params(path, n_gpu_layers)
        self._start(self.tr("Loading {0}…").format(Path(path).name), self.pending)
        return True

    def connect_server(self) -> None:
        """Connect an engine that needs no file (a remote server): the server's model."""
        self.pending = None
        self._start(
            self.tr("Connecting…"),
            LoadParams(model_path="", n_ctx=self._settings.n_ctx or UNKNOWN_TRAINED),
        )

    def cancel(self) -> None:
        if self.loading:
            self.pending = None  # a cancelled load is not retried on the CPU
            self._worker.load_cancel.set()

    def swap_engine(
        self, make_engine: Callable[[], Engine], then: Callable[[], None] | None = None
    ) -> bool:
        """Replace the engine on the worker's thread; `then` runs here once it is in place.
        Refused (False) while a load runs: the caller says so or tries again later."""
        if self.loading:
            return False
        self.info = None
        self._after_swap = then
        self._swap.emit(make_engine)
        return True

    # --- answers from the worker ---------------------------------------------------------
    def _params(self, path: str, n_gpu_layers: int | None) -> LoadParams:
        s = self._settings
        return LoadParams(
            model_path=str(path),
            n_ctx=self.context.n_ctx if self.context else s.n_ctx,
            n_gpu_layers=s.n_gpu_layers if n_gpu_layers is None else n_gpu_layers,
            n_threads=s.n_threads or None,
            n_batch=s.n_batch,
            flash_attn=s.flash_attn,
            kv_type=s.kv_type,
            use_mmap=s.use_mmap,
            use_mlock=s.use_mlock,
            n_cpu_moe=s.n_cpu_moe,
            session_dir=str(self._sessions_dir) if s.session_cap_mb else "",
            session_cap_mb=s.session_cap_mb,
        )

    def _start(self, text: str, params: LoadParams) -> None:
        self.status.emit(text)
        self._set_loading(True)
        self._worker.load_cancel.clear()  # before the request: a Stop after it still counts
        self._load.emit(params)

    def _set_loading(self, loading: bool) -> None:
        self.loading = loading
        self.loading_changed.emit(loading)

    def _on_progress(self, fraction: float) -> None:
        if self.loading and self.pending is not None:
            self.status.emit(
                self.tr("Loading {0}… {1}%").format(
                    Path(self.pending.model_path).name, int(fraction * 100)
                )
            )

    def _on_loaded(self, info: ModelInfo) -> None:
        self.info = info
        self._set_loading(False)
        self.loaded.emit(info)

    def _on_load_failed(self, message: str, crashed: bool = False) -> None:
        params = self.pending
        if params is not None and params.n_gpu_layers != 0 and params.model_path:
            # A GPU build without its runtime (or a GPU too small) must not leave the user
            # with nothing: run on the CPU and say why. The reload starts no GPU driver.
            why = (
                self.tr(
                    "the model process stopped while llama.cpp started the GPU, which "
                    "usually means its driver failed; updating the GPU driver may help"
                )
                if crashed
                else message
            )
            self.warning.emit(
                self.tr(
                    "The GPU could not be used ({0}). Parlor is loading the "
                    "model on the CPU instead."
                ).format(why)
            )
            self.pending = self._params(params.model_path, 0)
            self._start(self.tr("Loading {0}…").format(Path(params.model_path).name), self.pending)
            return
        self.info = None
        self._set_loading(False)
        self.failed.emit(self.tr("The model could not be loaded:\n{0}").format(message))

    def _on_swapped(self) -> None:
        then, self._after_swap = self._after_swap, None
        if then is not None:
            then()


def describe_header(header: GGUFHeader, n_ctx: int, kv_type: str) -> str:
    """What "Open GGUF…" tells before loading: architecture, layers, experts, training
    context, quant type, and the memory a context of `n_ctx` would need."""
    experts = (
        f", {header.expert_used_count} of {header.expert_count} experts used"
        if header.expert_count
        else ""
    )
    try:
        need = estimate_memory(header, n_ctx, kv_type=kv_type).total_bytes / 1e9
        size = f"{need:.1f} GB" if need >= 1 else f"{need * 1000:.0f} MB"
        memory = f"; about {size} with a {n_ctx}-token context"
    except (GGUFError, KeyError, ValueError, ZeroDivisionError):
        memory = ""
    return (
        f"{header.architecture or 'unknown architecture'}, {header.n_layer} layers"
        f"{experts}, trained on {header.context_length} tokens, "
        f"{header.file_type or 'unknown'} quantization{memory}"
    )
