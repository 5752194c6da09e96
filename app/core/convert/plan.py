"""Plan the conversion of a legacy split-expert GGUF to the merged layout, from its header.

Legacy (pre-April 2024) files store `blk.N.ffn_{gate,up,down}.E.weight` per expert E; current
llama.cpp wants `blk.N.ffn_{gate,up,down}_exps.weight`, one tensor with the experts stacked
along ggml's last (slowest) dimension. Stacking along the slowest dimension means the merged
tensor's bytes are the experts' bytes concatenated in expert order, so quantized blocks are
copied unchanged. A group whose experts differ in type must become one type: the best type
present (fewest bits lost), or the nearest better type that can be written here.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from app.core.gguf.ggml_types import GGML_TYPE_IDS, bits_per_weight, known_block, type_name
from app.core.gguf.header import LEGACY_EXPERT, GGUFError, GGUFHeader, TensorInfo
from app.core.gguf.writer import OutTensor, align, encode_header

# When the best type of a mixed group cannot be written here (no k-quant but Q6_K has a
# quantizer), the first of these with at least as many bits per weight is used instead.
UPGRADES = ("Q6_K", "Q8_0", "F16", "F32")


@dataclass
class ExpertGroup:
    layer: int
    kind: str  # gate, up or down
    experts: list[TensorInfo]
    target_type: int

    @property
    def name(self) -> str:
        return f"blk.{self.layer}.ffn_{self.kind}_exps.weight"

    @property
    def mixed(self) -> bool:
        return any(e.ggml_type != self.target_type for e in self.experts)

    @property
    def types(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = defaultdict(list)
        for i, e in enumerate(self.experts):
            out[e.type_name].append(i)
        return dict(out)

    def out_tensor(self) -> OutTensor:
        shape = (*self.experts[0].shape, len(self.experts))
        n = 1
        for d in shape:
            n *= d
        block, size = known_block(self.target_type)
        return OutTensor(self.name, shape, self.target_type, n // block * size)


@dataclass
class Plan:
    header: GGUFHeader
    out: list[OutTensor]
    sources: list[TensorInfo | ExpertGroup]  # parallel to `out`
    groups: list[ExpertGroup] = field(default_factory=list)

    @property
    def mixed_groups(self) -> list[ExpertGroup]:
        return [g for g in self.groups if g.mixed]

    def header_size(self) -> int:
        # only the length matters here; the metadata bytes are a stand-in of the right size
        kv = bytes(self.header.kv_span[1] - self.header.kv_span[0])
        return len(encode_header(self.header, kv, self.out))

    def output_size(self) -> int:
        size = 0
        for t in self.out:
            size = align(size, self.header.alignment) + t.nbytes
        return self.header_size() + size


def choose_target(types: Counter[int], row_len: int, can_write: Callable[[int], bool]) -> int:
    """The type a group of experts with these types becomes: least loss, never below the best."""
    if len(types) == 1:
        return next(iter(types))
    f16, bf16 = GGML_TYPE_IDS["F16"], GGML_TYPE_IDS["BF16"]
    best = max(types, key=lambda t: (bits_per_weight(t), types[t]))
    if best in (f16, bf16) and f16 in types and bf16 in types:
        best = GGML_TYPE_IDS["F32"]  # neither 16-bit type holds the other exactly
    if can_write(best):
        return best
    for name in UPGRADES:
        t = GGML_TYPE_IDS[name]
        if (
            bits_per_weight(t) >= bits_per_weight(best)
            and row_len % known_block(t)[0] == 0
            and can_write(t)
        ):
            return t
    return GGML_TYPE_IDS["F32"]


def _collect(header: GGUFHeader) -> dict[tuple[int, str], dict[int, TensorInfo]]:
    found: dict[tuple[int, str], dict[int, TensorInfo]] = defaultdict(dict)
    for t in header.tensors:
        m = LEGACY_EXPERT.match(t.name)
        if m:
            found[(int(m.group(1)), m.group(2))][int(m.group(3))] = t
    return found


def _check_group(
    header: GGUFHeader, key: tuple[int, str], experts: dict[int, TensorInfo], n_expert: int
) -> list[TensorInfo]:
    layer, kind = key
    where = f"{header.name}: layer {layer} ffn_{kind}"
    if sorted(experts) != list(range(n_expert)):
        raise GGUFError(f"{where} has experts {sorted(experts)}; expected 0..{n_expert - 1}")
    ordered = [experts[i] for i in range(n_expert)]
    shapes = {e.shape for e in ordered}
    if len(shapes) != 1 or len(ordered[0].shape) != 2:
        raise GGUFError(f"{where}: the experts' shapes differ or are not 2-D: {sorted(shapes)}")
    return ordered


def plan_conversion(header: GGUFHeader, can_write: Callable[[int], bool] | None = None) -> Plan:
    """What the merged file holds, tensor by tensor, in the source's order."""
    if can_write is None:
        from app.core.convert.kquants import can_quantize

        can_write = can_quantize
    found = _collect(header)
    if not found:
        raise GGUFError(f"{header.name} has no split expert tensors to merge")
    n_expert = header.expert_count or 1 + max(max(g) for g in found.values())
    names = {t.name for t in header.tensors}
    groups: dict[tuple[int, str], ExpertGroup] = {}
    for key, experts in sorted(found.items()):
        ordered = _check_group(header, key, experts, n_expert)
        target = choose_target(
            Counter(e.ggml_type for e in ordered), ordered[0].shape[0], can_write
        )
        groups[key] = ExpertGroup(key[0], key[1], ordered, target)
        if groups[key].name in names:
            raise GGUFError(
                f"{header.name} has both split and merged experts for {groups[key].name}"
            )
    plan = Plan(header, [], [], list(groups.values()))
    for t in header.tensors:
        m = LEGACY_EXPERT.match(t.name)
        if not m:
            plan.out.append(OutTensor(t.name, t.shape, t.ggml_type, t.nbytes))
            plan.sources.append(t)
        elif int(m.group(3)) == 0:
            group = groups[(int(m.group(1)), m.group(2))]
            plan.out.append(group.out_tensor())
            plan.sources.append(group)
    return plan


def describe_group(group: ExpertGroup) -> str:
    kinds = ", ".join(
        f"{name} (experts {', '.join(map(str, idx))})" for name, idx in group.types.items()
    )
    return f"{group.name}: {kinds} -> {type_name(group.target_type)}"
