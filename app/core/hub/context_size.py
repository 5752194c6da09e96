"""The context size a model is loaded with when the user has not chosen one.

The model says how long a context it was trained on (`context_length` in the GGUF header,
llama.cpp's n_ctx_train); more than that degrades replies. The machine says how much fits:
the memory the quant picker counts as usable (`usable_bytes`), less the weights, holds the
KV cache and the compute buffer. The default is the smaller of the two, in llama.cpp's
256-token steps. A model that does not say is given 8192 (where memory allows), the size
long roleplay chats need and most current models are trained on at least.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.appdata.machine import Machine
from app.core.gguf.header import GGUFHeader
from app.core.gguf.memory import CTX_PAD, estimate_memory
from app.core.hub.catalog import usable_bytes

AUTO = 0  # the setting's value for "from the model"
UNKNOWN_TRAINED = 8192  # for a model whose header does not say
SMALLEST = 512  # never suggested below this, even on a machine that cannot hold it
LARGEST = 1_048_576


@dataclass(frozen=True)
class ContextChoice:
    n_ctx: int
    trained: int  # the model's n_ctx_train; 0 when the header does not say
    memory_limit: int  # the largest context this machine holds next to the weights
    chosen_by: str  # "setting" or "model"

    @property
    def note(self) -> str:
        """For the settings and the status bar: where the number came from."""
        trained = (
            f"trained on {self.trained} tokens"
            if self.trained
            else "its training context is not in the file"
        )
        if self.chosen_by == "setting":
            return f"Context size {self.n_ctx} (your setting; the model was {trained})."
        limit = (
            ""
            if self.n_ctx != self.memory_limit or self.n_ctx == self.trained
            else ", as much as fits in memory"
        )
        return f"Context size {self.n_ctx} (from the model: {trained}{limit})."


def choose_context(
    setting: int,
    header: GGUFHeader,
    machine: Machine,
    *,
    n_gpu_layers: int = 0,
    kv_type: str = "f16",
    flash_attn: bool = True,
) -> ContextChoice:
    """The user's context size when set (`setting` > 0), else the model's default."""
    trained = header.context_length
    limit = largest_context(
        header,
        usable_bytes(machine, gpu_offload=n_gpu_layers != 0),
        n_gpu_layers=n_gpu_layers,
        kv_type=kv_type,
        flash_attn=flash_attn,
    )
    if setting > AUTO:
        return ContextChoice(setting, trained, limit, "setting")
    wanted = trained or UNKNOWN_TRAINED
    return ContextChoice(max(SMALLEST, min(wanted, limit)), trained, limit, "model")


def largest_context(
    header: GGUFHeader,
    usable: int,
    *,
    n_gpu_layers: int = 0,
    kv_type: str = "f16",
    flash_attn: bool = True,
) -> int:
    """The largest context (a multiple of 256) whose estimate fits in `usable` bytes; 0 when
    not even the smallest does. A binary search: the estimate grows with the context."""

    def fits(n_ctx: int) -> bool:
        need = estimate_memory(header, n_ctx, n_gpu_layers, kv_type=kv_type, flash_attn=flash_attn)
        return need.total_bytes <= usable

    low, high = 0, LARGEST // CTX_PAD  # in steps of CTX_PAD; `low` always fits (or is 0)
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid * CTX_PAD):
            low = mid
        else:
            high = mid - 1
    return low * CTX_PAD


def this_machine() -> Machine:
    """RAM and GPUs, without asking llama.cpp (a child process): quick enough for each load."""
    from app.core.appdata.machine import read_machine

    return read_machine(runtime=lambda: None, timeout=2.0)
