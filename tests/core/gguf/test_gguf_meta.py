"""The GGUF header reader, validation, layout detection, memory estimate and remote header."""

from __future__ import annotations

import http.server
import struct
import threading
import time
from pathlib import Path

import gguf
import numpy as np
import pytest

from app.core.gguf import header as gm
from app.core.gguf.ggml_types import FILE_TYPES, GGML_TYPES
from tests.legacy_models import write_moe


@pytest.fixture(scope="module")
def legacy_path(tmp_path_factory) -> Path:
    return write_moe(tmp_path_factory.mktemp("m") / "legacy.gguf", legacy=True, expert_type="Q8_0")


@pytest.fixture(scope="module")
def merged_path(tmp_path_factory) -> Path:
    return write_moe(tmp_path_factory.mktemp("m") / "merged.gguf", legacy=False, expert_type="Q8_0")


def _write_vocab_model(path: Path, n_vocab: int, endian=gguf.GGUFEndian.LITTLE) -> Path:
    w = gguf.GGUFWriter(str(path), "llama", endianess=endian)
    w.add_block_count(1)
    w.add_context_length(8192)
    w.add_token_list([f"tok{i}" for i in range(n_vocab)])
    w.add_token_scores([float(i) for i in range(n_vocab)])
    w.add_token_types([1] * n_vocab)
    w.add_array("test.nested", [[1, 2], [3]])
    w.add_tensor("output.weight", np.ones((4, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_type_tables_match_gguf():
    for qtype, (block, size) in gguf.constants.GGML_QUANT_SIZES.items():
        if qtype.name == "Q8_1":  # gguf-py still lists the old float-scale Q8_1 (never in files)
            continue
        assert GGML_TYPES[int(qtype)] == (qtype.name, block, size)
    for ft in gguf.LlamaFileType:
        if ft.name != "GUESSED":
            assert FILE_TYPES[int(ft)] == ft.name.removeprefix("MOSTLY_").removeprefix("ALL_")


@pytest.mark.parametrize("fixture", ["legacy_path", "merged_path", "tiny_llama_path"])
def test_header_matches_gguf_reader(fixture, request):
    path = request.getfixturevalue(fixture)
    header = gm.read_header(path)
    reader = gguf.GGUFReader(path)
    assert header.data_offset == reader.data_offset
    assert header.alignment == reader.alignment
    assert [
        (t.name, t.shape, t.ggml_type, t.nbytes, header.data_offset + t.offset)
        for t in header.tensors
    ] == [
        (
            t.name,
            tuple(int(d) for d in t.shape),
            int(t.tensor_type),
            int(t.n_bytes),
            int(t.data_offset),
        )
        for t in reader.tensors
    ]
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        value = field.contents()
        assert (
            header.metadata[key] == pytest.approx(value)
            if isinstance(value, float)
            else header.metadata[key] == value
        ), key


def test_properties(legacy_path, tiny_llama_path):
    h = gm.read_header(legacy_path)
    assert (h.version, h.architecture, h.n_layer, h.context_length) == (3, "llama", 2, 2048)
    assert (h.expert_count, h.expert_used_count, h.file_type) == (4, 2, "Q8_0")
    assert "messages" in h.chat_template
    assert h.vocab_size == len(h.metadata["tokenizer.ggml.tokens"])
    assert h.tensor("blk.0.ffn_gate.3.weight").type_name == "Q8_0"
    dense = gm.read_header(tiny_llama_path)
    assert dense.expert_count == 0 and dense.chat_template is None


def test_layouts(legacy_path, merged_path, tiny_llama_path):
    assert gm.moe_layout(gm.read_header(legacy_path)) == "legacy"
    assert gm.moe_layout(gm.read_header(merged_path)) == "merged"
    assert gm.moe_layout(gm.read_header(tiny_llama_path)) == "dense"


def test_big_vocab_parses_fast(tmp_path):
    path = _write_vocab_model(tmp_path / "vocab.gguf", 32000)
    start = time.perf_counter()
    header = gm.read_header(path)
    elapsed = time.perf_counter() - start
    assert header.vocab_size == 32000 and header.metadata["tokenizer.ggml.tokens"][-1] == "tok31999"
    assert header.metadata["test.nested"] == [[1, 2], [3]]
    assert elapsed < 0.5


def test_big_endian_file(tmp_path):
    path = _write_vocab_model(tmp_path / "be.gguf", 10, endian=gguf.GGUFEndian.BIG)
    header = gm.validate_gguf(path)
    assert header.byteorder == ">" and header.n_layer == 1
    assert header.metadata["tokenizer.ggml.scores"][3] == 3.0
    assert header.tensors[0].shape == (32, 4)


def test_prefix_reports_how_much_more_it_needs(legacy_path):
    data = legacy_path.read_bytes()
    full = gm.read_header(legacy_path)
    header_end = full.data_offset
    for cut in (0, 3, 8, 30, 200, header_end // 2, header_end - 40):
        with pytest.raises(gm.HeaderIncomplete) as info:
            gm.read_header(data[:cut], name="legacy.gguf")
        assert info.value.needed_bytes > cut and "legacy.gguf" in str(info.value)
    # a caller that fetches what it is told reaches the full header
    have = 16
    while True:
        try:
            header = gm.read_header(data[:have])
            break
        except gm.HeaderIncomplete as e:
            have = max(e.needed_bytes, 2 * have)
    assert header.tensors == full.tensors and header.metadata == full.metadata


def test_validate_catches_truncation_and_damage(legacy_path, tmp_path):
    data = legacy_path.read_bytes()
    header = gm.validate_gguf(legacy_path)
    cases = {
        "truncated-data": (data[:-100], "truncated: tensor 'output.weight'"),
        "truncated-header": (data[: header.data_offset // 2], "truncated: it ends inside"),
        "not-gguf": (b"PK\x03\x04" + data[4:], "is not a GGUF file"),
        "version1": (data[:4] + struct.pack("<I", 1) + data[8:], "version 1"),
        "version9": (data[:4] + struct.pack("<I", 9) + data[8:], "version 9"),
        "huge-count": (data[:8] + struct.pack("<Q", 1 << 40) + data[16:], "implausible"),
        "empty": (b"", "truncated"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / f"{name}.gguf"
        path.write_bytes(content)
        with pytest.raises(gm.GGUFError, match=message) as info:
            gm.validate_gguf(path)
        assert path.name in str(info.value)
    with pytest.raises(gm.GGUFError, match="cannot read"):
        gm.validate_gguf(tmp_path / "missing.gguf")


def test_damaged_string_length_fails_fast(legacy_path, tmp_path):
    data = bytearray(legacy_path.read_bytes())
    # the first metadata key's length field sits right after the 24-byte preamble
    data[24:32] = struct.pack("<Q", 1 << 50)
    path = tmp_path / "damaged.gguf"
    path.write_bytes(bytes(data))
    with pytest.raises(gm.GGUFError, match="implausible length"):
        gm.validate_gguf(path)


def test_estimate_memory(tiny_llama_path):
    h = gm.read_header(tiny_llama_path)  # 2 layers, 64 wide, 4 heads, 2 KV heads
    est = gm.estimate_memory(h, 1000)
    assert est.n_ctx == 1024
    assert est.kv_bytes == 2 * 1024 * 2 * (16 + 16) * 2
    assert est.weights_cpu_bytes == h.tensor_bytes and est.weights_gpu_bytes == 0
    q8 = gm.estimate_memory(h, 1024, kv_type="q8_0")
    assert q8.kv_bytes == est.kv_bytes * 34 // 64
    one = gm.estimate_memory(h, 1024, n_gpu_layers=1)
    blk1 = sum(t.nbytes for t in h.tensors if t.name.startswith("blk.1."))
    assert one.weights_gpu_bytes == blk1 and one.kv_gpu_bytes == est.kv_bytes // 2
    every = gm.estimate_memory(h, 1024, n_gpu_layers=-1)
    outputs = sum(t.nbytes for t in h.tensors if t.name.startswith("output"))
    embd = h.tensor("token_embd.weight").nbytes
    assert every.weights_gpu_bytes == h.tensor_bytes - embd
    two = gm.estimate_memory(h, 1024, n_gpu_layers=2)
    assert every.weights_gpu_bytes - two.weights_gpu_bytes == outputs
    no_fa = gm.estimate_memory(h, 1024, flash_attn=False)
    assert no_fa.compute_bytes - est.compute_bytes == 4 * 512 * 1024 * 4
    assert est.total_bytes == est.cpu_bytes + est.gpu_bytes


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    data = b""
    honour_range = True
    requests: list = []

    def do_GET(self):  # noqa: N802 - http.server's name
        self.requests.append(self.headers.get("Range"))
        if not self.path.endswith("/model.gguf"):
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        if rng and self.honour_range:
            start, end = (int(x) for x in rng.removeprefix("bytes=").split("-"))
            end = min(end, len(self.data) - 1)
            body = self.data[start : end + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(self.data)}")
        else:
            body = self.data
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(legacy_path):
    handler = type("H", (_RangeHandler,), {"data": legacy_path.read_bytes(), "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, handler
    httpd.shutdown()
    httpd.server_close()


def _hub(httpd):
    from app.core.hub.remote import Hub

    return Hub(endpoint=f"http://127.0.0.1:{httpd.server_address[1]}", token=False)


def test_remote_header_grows_its_range(server, legacy_path):
    from app.core.hub.remote_header import read_hub_header

    httpd, handler = server
    header = read_hub_header(_hub(httpd), "org/model", "model.gguf", first=512)
    assert header.tensors == gm.read_header(legacy_path).tensors
    assert header.file_size == legacy_path.stat().st_size
    assert len(handler.requests) > 1 and handler.requests[0] == "bytes=0-511"
    assert gm.moe_layout(header) == "legacy"


def test_remote_header_when_range_is_ignored(server, legacy_path):
    from app.core.hub.remote_header import read_hub_header

    httpd, handler = server
    handler.honour_range = False
    header = read_hub_header(_hub(httpd), "org/model", "model.gguf", first=512)
    assert header.tensors == gm.read_header(legacy_path).tensors


def test_remote_errors(server):
    from app.core.hub.remote_header import read_hub_header

    httpd, _ = server
    with pytest.raises(gm.GGUFError, match="404"):
        read_hub_header(_hub(httpd), "org/model", "other.gguf")
