"""Converting legacy split-expert GGUFs to the merged layout llama.cpp loads."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from app.cli import main as cli_main
from app.core.convert import moe as mc
from app.core.convert.kquants import dequantize, quantize_q6_k
from app.core.convert.plan import choose_target, plan_conversion
from app.core.gguf import header as gm
from app.core.gguf.ggml_types import GGML_TYPE_IDS as ID
from tests.legacy_models import write_moe, write_pair

llama_cpp = pytest.importorskip("llama_cpp")
from app.core.engine.load_check import LoadCheckError, load_and_generate  # noqa: E402


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tensor_bytes(path: Path) -> dict[str, tuple]:
    h = gm.read_header(path)
    with open(path, "rb") as f:
        out = {}
        for t in h.tensors:
            f.seek(h.data_offset + t.offset)
            out[t.name] = (t.shape, t.ggml_type, f.read(t.nbytes))
    return out


def _logits(path: Path) -> np.ndarray:
    llm = llama_cpp.Llama(str(path), n_ctx=64, logits_all=True, verbose=False, seed=7, n_threads=2)
    tokens = llm.tokenize(b"Hello traveler, the tavern is quiet tonight")
    llm.eval(tokens)
    scores = np.array(llm.scores[: len(tokens)])
    llm.close()
    return scores


def _mixed_type(layer: int, kind: str, expert: int) -> str:
    """Like an old Q4_K_M quantizer: some ffn_down experts got more bits than others."""
    return "Q6_K" if kind == "down" and expert % 2 else "Q4_0"


@pytest.fixture(scope="module")
def mixed_path(tmp_path_factory) -> Path:
    return write_moe(
        tmp_path_factory.mktemp("mixed") / "mixed.gguf",
        legacy=True,
        expert_type=_mixed_type,
        other_type="Q8_0",
    )


def _no_debris(folder: Path, *keep: Path) -> None:
    assert sorted(folder.iterdir()) == sorted(keep)


# --- the layout as it is and as converted ---------------------------------------------------


def test_legacy_file_fails_to_load_as_is(tmp_path):
    """Current llama.cpp looks for the merged tensors and stops at the first one missing:
    "check_tensor_dims: tensor 'blk.0.ffn_down_exps.weight' not found" (llama-cpp-python then
    raises "Failed to load model from file")."""
    legacy = write_moe(tmp_path / "legacy.gguf", legacy=True, expert_type="Q8_0")
    with pytest.raises(LoadCheckError, match=r"blk\.0\.ffn_\w+_exps\.weight' not found"):
        load_and_generate(legacy)


@pytest.mark.parametrize("qtype", ["F16", "Q8_0", "Q6_K", "Q4_0"])
def test_converted_equals_merged_written_directly(tmp_path, qtype):
    legacy, merged = write_pair(tmp_path, qtype, other_type="Q8_0" if qtype != "F16" else "F16")
    out = tmp_path / "converted.gguf"
    result = mc.convert_legacy_moe(legacy, out)
    assert result.converted and result.groups == 6 and result.copied_groups == 6
    assert not result.mixed and result.original == legacy
    assert _tensor_bytes(out) == _tensor_bytes(merged)
    assert gm.read_header(out).metadata == gm.read_header(merged).metadata
    assert gm.moe_layout(gm.read_header(out)) == "merged"
    assert np.array_equal(_logits(out), _logits(merged))


def test_converted_file_loads_and_generates(tmp_path):
    legacy = write_moe(tmp_path / "legacy.gguf", legacy=True, expert_type="Q6_K")
    checked = []

    def verify(path: Path) -> bool:
        checked.append(load_and_generate(path, n_tokens=6))
        return True

    result = mc.convert_legacy_moe(legacy, verify=verify)
    assert checked and checked[0].strip()
    assert result.dst == legacy and result.original == legacy.with_name("legacy.legacy.gguf")
    assert gm.moe_layout(gm.read_header(legacy)) == "merged"
    assert load_and_generate(legacy).strip()


# --- mixed types ------------------------------------------------------------------------------


def test_choose_target():
    def can(t):
        return t in {ID[n] for n in ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q5_0", "Q6_K")}

    assert choose_target(Counter({ID["Q4_K"]: 4}), 256, can) == ID["Q4_K"]  # one type: kept
    assert choose_target(Counter({ID["Q4_K"]: 3, ID["Q6_K"]: 1}), 256, can) == ID["Q6_K"]
    assert choose_target(Counter({ID["Q4_0"]: 3, ID["Q8_0"]: 1}), 256, can) == ID["Q8_0"]
    # Q5_K cannot be written here: the next better type that can is Q6_K
    assert choose_target(Counter({ID["Q4_K"]: 3, ID["Q5_K"]: 1}), 256, can) == ID["Q6_K"]
    # ...unless rows are not whole k-quant blocks
    assert choose_target(Counter({ID["Q4_0"]: 3, ID["Q5_1"]: 1}), 96, can) == ID["Q8_0"]
    assert choose_target(Counter({ID["F16"]: 1, ID["BF16"]: 1}), 64, can) == ID["F32"]


def test_mixed_group_is_converted_to_the_best_type_and_reported(tmp_path, mixed_path):
    plan = plan_conversion(gm.read_header(mixed_path))
    assert [g.name for g in plan.mixed_groups] == [
        "blk.0.ffn_down_exps.weight",
        "blk.1.ffn_down_exps.weight",
    ]
    out = tmp_path / "converted.gguf"
    result = mc.convert_legacy_moe(mixed_path, out)
    assert result.copied_groups == 4 and len(result.mixed) == 2
    report = result.mixed[0]
    assert report.types == {"Q4_0": [0, 2], "Q6_K": [1, 3]} and report.target == "Q6_K"
    assert set(report.rel_rmse) == {0, 2}  # only the experts that changed type
    # requantizing Q4_0 values into Q6_K costs about 1 %: far below Q4_0's own error (~9 %)
    assert 1e-3 < report.max_rel_rmse < 0.03
    assert "converted to Q6_K" in result.summary()
    src, dst = _tensor_bytes(mixed_path), _tensor_bytes(out)
    merged = dst["blk.0.ffn_down_exps.weight"]
    assert merged[1] == ID["Q6_K"] and merged[0] == (256, 256, 4)
    per_expert = len(merged[2]) // 4
    # the Q6_K experts are copied byte for byte; the Q4_0 ones are near their old values
    assert merged[2][per_expert : 2 * per_expert] == src["blk.0.ffn_down.1.weight"][2]
    old = dequantize(src["blk.0.ffn_down.0.weight"][2], ID["Q4_0"], 256)
    new = dequantize(merged[2][:per_expert], ID["Q6_K"], 256)
    assert np.sqrt(np.mean((new - old) ** 2) / np.mean(old**2)) == pytest.approx(
        report.rel_rmse[0], rel=1e-3
    )
    assert load_and_generate(out).strip()


def test_q6_k_matches_ggml_reference():
    lib = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))
    ref = lib.quantize_row_q6_K_ref
    ref.argtypes, ref.restype = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64], None
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((64, 512)) * rng.uniform(1e-4, 10, (64, 1))).astype(np.float32)
    x[0], x[1, :300], x[2, ::7] = 0, x[1, :300] * 1e-3, 0
    want = np.zeros(x.size // 256 * 210, dtype=np.uint8)
    ref(x.ctypes.data, want.ctypes.data, x.size)
    assert np.array_equal(quantize_q6_k(x).reshape(-1), want)


# --- failures leave the original untouched and no debris ---------------------------------------


def test_truncated_input(tmp_path, mixed_path):
    src = tmp_path / "cut.gguf"
    src.write_bytes(mixed_path.read_bytes()[:-5000])
    with pytest.raises(gm.GGUFError, match="truncated"):
        mc.convert_legacy_moe(src, tmp_path / "out.gguf")
    _no_debris(tmp_path, src)


def test_disk_full_mid_way(tmp_path, mixed_path, monkeypatch):
    src = tmp_path / "model.gguf"
    src.write_bytes(mixed_path.read_bytes())
    before = _digest(src)
    write = mc._Sink.write

    def full_after_a_megabyte(self, data):
        if self.written > 1 << 20:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(self, data)

    monkeypatch.setattr(mc._Sink, "write", full_after_a_megabyte)
    with pytest.raises(mc.ConvertError, match="disk ran full"):
        mc.convert_legacy_moe(src)
    _no_debris(tmp_path, src)
    assert _digest(src) == before


def test_not_enough_free_disk(tmp_path, mixed_path, monkeypatch):
    import shutil

    src = tmp_path / "model.gguf"
    src.write_bytes(mixed_path.read_bytes())
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(mc.shutil, "disk_usage", lambda _: usage._replace(free=1 << 20))
    with pytest.raises(mc.NotEnoughDisk, match="needs .* GB free") as info:
        mc.convert_legacy_moe(src)
    assert info.value.needed > src.stat().st_size
    _no_debris(tmp_path, src)


def test_cancel_mid_way(tmp_path, mixed_path, monkeypatch):
    monkeypatch.setattr(mc, "CHUNK", 64 << 10)
    src = tmp_path / "model.gguf"
    src.write_bytes(mixed_path.read_bytes())
    before = _digest(src)
    cancel = threading.Event()
    seen = []

    def progress(stage, done, total):
        seen.append(done)
        if done > total // 2:
            cancel.set()

    with pytest.raises(mc.ConvertCancelled):
        mc.convert_legacy_moe(src, progress=progress, cancel=cancel)
    assert len(seen) > 3
    _no_debris(tmp_path, src)
    assert _digest(src) == before


def test_small_chunks_give_the_same_file(tmp_path, mixed_path, monkeypatch):
    """Memory stays bounded because nothing larger than CHUNK is ever read at once."""
    reads = []
    read_exact = mc._Job.read_exact

    def recording(self, pos, n):
        reads.append(n)
        return read_exact(self, pos, n)

    normal = tmp_path / "normal.gguf"
    mc.convert_legacy_moe(mixed_path, normal)
    monkeypatch.setattr(mc, "CHUNK", 4000)  # not a multiple of any block size
    monkeypatch.setattr(mc._Job, "read_exact", recording)
    small = tmp_path / "small.gguf"
    mc.convert_legacy_moe(mixed_path, small)
    assert small.read_bytes() == normal.read_bytes()
    assert max(reads) <= 4000 and len(reads) > 100


def test_a_wrong_write_is_caught_before_the_rename(tmp_path, mixed_path, monkeypatch):
    src = tmp_path / "model.gguf"
    src.write_bytes(mixed_path.read_bytes())
    copy = mc._Job.copy

    def corrupt_output(self, t):
        if t.name != "output.weight":
            return copy(self, t)
        self.sink.write(bytes(t.nbytes))
        self.advance(t.nbytes)

    monkeypatch.setattr(mc._Job, "copy", corrupt_output)
    with pytest.raises(mc.ConvertError, match="tensor data differs"):
        mc.convert_legacy_moe(src)
    _no_debris(tmp_path, src)


@pytest.mark.parametrize("outcome", [False, RuntimeError("boom")])
def test_failed_load_check_keeps_the_original(tmp_path, mixed_path, outcome):
    src = tmp_path / "model.gguf"
    src.write_bytes(mixed_path.read_bytes())

    def verify(path):
        assert path.exists() and path.name.endswith(mc.TMP_SUFFIX)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with pytest.raises(mc.ConvertError, match="load"):
        mc.convert_legacy_moe(src, verify=verify)
    _no_debris(tmp_path, src)


def test_stale_temporary_files_are_removed(tmp_path, mixed_path):
    src = tmp_path / "model.gguf"
    src.write_bytes(mixed_path.read_bytes())
    stale = tmp_path / f".model.gguf.999999999{mc.TMP_SUFFIX}"
    stale.write_bytes(b"left by a crash")
    mc.convert_legacy_moe(src, keep_original=False)
    _no_debris(tmp_path, src)


# --- where the result and the original go -----------------------------------------------------


def test_in_place_without_keeping_the_original(tmp_path, mixed_path):
    src = tmp_path / "model.gguf"
    src.write_bytes(mixed_path.read_bytes())
    result = mc.convert_legacy_moe(src, keep_original=False)
    assert result.original is None and gm.moe_layout(gm.read_header(src)) == "merged"
    _no_debris(tmp_path, src)


def test_in_place_keeps_the_original_even_without_hard_links(tmp_path, mixed_path, monkeypatch):
    src = tmp_path / "model.gguf"
    src.write_bytes(mixed_path.read_bytes())
    before = _digest(src)

    def no_links(*_):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(mc.os, "link", no_links)
    result = mc.convert_legacy_moe(src)
    backup = tmp_path / "model.legacy.gguf"
    assert result.original == backup and _digest(backup) == before
    assert gm.moe_layout(gm.read_header(src)) == "merged"
    _no_debris(tmp_path, src, backup)


def test_new_destination_and_overwrite(tmp_path, mixed_path):
    src = tmp_path / "model.gguf"
    src.write_bytes(mixed_path.read_bytes())
    out = tmp_path / "out.gguf"
    out.write_bytes(b"old")
    with pytest.raises(mc.ConvertError, match="already exists"):
        mc.convert_legacy_moe(src, out)
    result = mc.convert_legacy_moe(src, out, overwrite=True, keep_original=False)
    assert result.original is None and not src.exists()
    assert gm.moe_layout(gm.validate_gguf(out)) == "merged"


def test_nothing_to_convert(tiny_llama_path, tiny_moe_path):
    for path, layout in ((tiny_llama_path, "dense"), (tiny_moe_path, "merged")):
        result = mc.convert_legacy_moe(path)
        assert not result.converted and result.layout == layout
        assert "nothing to convert" in result.summary()


def test_extra_disk_is_known_before_download(mixed_path):
    header = gm.read_header(mixed_path.read_bytes()[:200_000])
    assert mc.needs_conversion(header)
    assert mc.extra_disk_bytes(header) > mixed_path.stat().st_size


# --- the command line -------------------------------------------------------------------------


def test_cli_converts_with_a_progress_bar(tmp_path, mixed_path, capsys):
    src = tmp_path / "model.gguf"
    src.write_bytes(mixed_path.read_bytes())
    assert cli_main(["convert", str(src), str(tmp_path / "out.gguf")]) == 0
    out, err = capsys.readouterr()
    assert "split experts (old layout" in out and "Mixed types:" in out
    assert "Load check: llama.cpp loaded" in out and "Original kept" in out
    assert "100%" in err


def test_cli_reports_what_it_found_when_nothing_needs_converting(tiny_moe_path, capsys):
    assert cli_main(["convert", str(tiny_moe_path)]) == 0
    out = capsys.readouterr().out
    assert "4 experts (2 used per token)" in out and "merged experts" in out
    assert "Nothing to convert." in out


def test_cli_error(tmp_path, capsys):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"nope")
    assert cli_main(["convert", str(bad)]) == 1
    assert "not a GGUF file" in capsys.readouterr().err
