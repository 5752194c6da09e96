"""The catalog data, the exact fit rule, run plans, and `parlor recommend`."""

from __future__ import annotations

import json

import pytest

from app.cli import main as cli
from app.core.appdata.machine import Gpu, Machine, machine_from_sizes
from app.core.hub import catalog as cat
from app.core.hub.catalog import GB, Entry


@pytest.fixture(scope="module")
def catalog():
    return cat.load_catalog()


def test_catalog_is_the_cards_table(catalog):
    assert catalog.repo_id == "Kquant03/MistralTrix-4x9B-ERP-GGUF"
    assert [e.quant for e in catalog.entries] == [
        "Q2_K",
        "Q3_K_M",
        "Q4_0",
        "Q4_K_M",
        "Q5_0",
        "Q5_K_M",
        "Q6_K",
        "Q8_0",
    ]
    for entry in catalog.entries:
        assert entry.file == f"ggml-model-{entry.quant.lower()}.gguf"
        assert entry.max_ram_bytes == entry.size_bytes + 2 * GB
    q4km = catalog.by_quant("q4_k_m")
    assert (q4km.size_bytes, q4km.max_ram_bytes, q4km.approximate) == (17 * GB, 19 * GB, True)
    assert catalog.by_file("ggml-model-q6_k.gguf").name == "Q6 XL"
    assert catalog.by_quant("Q9_X") is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("10 GB", (10 * GB, False)),
        ("~19 GB", (19 * GB, True)),
        ("15.1 GB", (15_100_000_000, False)),
        ("~ 22.7GB", (22_700_000_000, True)),
        (12, (12 * GB, False)),
        (0.5, (500_000_000, False)),
    ],
)
def test_parse_gb(text, expected):
    assert cat.parse_gb(text) == expected


@pytest.mark.parametrize("bad", ["", "GB", "12 GiB", "about 12 GB", "-3 GB"])
def test_parse_gb_rejects_what_it_cannot_read(bad):
    with pytest.raises(ValueError):
        cat.parse_gb(bad)


def test_recommended_means_recommended_not_not_recommended(catalog):
    says = {e.quant: e.card_recommends for e in catalog.entries}
    assert says == {
        "Q2_K": False,
        "Q3_K_M": False,
        "Q4_0": False,
        "Q4_K_M": True,
        "Q5_0": False,
        "Q5_K_M": True,
        "Q6_K": False,
        "Q8_0": False,
    }


@pytest.mark.parametrize(
    "ram, vram, expected",
    [
        (16, 0, "Q2_K"),  # from the issue
        (32, 0, "Q6_K"),
        (16, 8, "Q4_K_M"),
        (8, 0, None),
        (20, 0, "Q3_K_M"),  # 18 usable
        (24, 0, "Q4_K_M"),  # 21.6 usable: Q4_K_M over Q4_0 at equal size
        (26, 0, "Q5_K_M"),  # 23.4 usable: Q5_K_M over Q5_0
        (64, 0, "Q8_0"),  # the largest that fits, whatever its use case says
        (16, 5, "Q4_K_M"),  # exactly 19 usable: "<=" fits
        (16, 4.999, "Q3_K_M"),
        (12, 12, "Q4_K_M"),  # 10 + 12
        (14, 0, "Q2_K"),  # 14 - max(2, 1.4) = 12, exactly Q2_K's Max RAM
        (13.9, 0, None),
    ],
)
def test_the_rule(catalog, ram, vram, expected):
    rec = cat.recommend(catalog.entries, machine_from_sizes(ram, vram))
    assert (rec.entry.quant if rec.entry else None) == expected


def test_usable_memory():
    assert cat.usable_bytes(machine_from_sizes(16)) == 14 * GB
    assert cat.usable_bytes(machine_from_sizes(32)) == 28_800_000_000
    assert cat.usable_bytes(machine_from_sizes(16, 8)) == 22 * GB
    assert cat.usable_bytes(machine_from_sizes(16, 8), gpu_offload=False) == 14 * GB


def apple(ram_gb: float) -> Machine:
    gpu = Gpu("Apple M2", int(ram_gb * GB * 0.75), None, "apple", "apple", dedicated=False)
    return Machine(int(ram_gb * GB), None, (gpu,), unified_memory=True)


def test_apple_silicon_adds_no_vram(catalog):
    rec = cat.recommend(catalog.entries, apple(32))
    assert rec.usable_bytes == 28_800_000_000
    assert rec.entry.quant == "Q6_K"


def test_nothing_fits_names_the_smallest_and_what_is_missing(catalog):
    rec = cat.recommend(catalog.entries, machine_from_sizes(8))
    assert rec.entry is None
    assert rec.smallest.quant == "Q2_K"
    assert rec.missing_bytes == 6 * GB
    assert rec.message == (
        "Nothing fits this machine. The smallest, Q2_K "
        "(ggml-model-q2_k.gguf), needs 12 GB, this machine can give 6 GB: "
        "6 GB missing."
    )


def test_empty_catalog():
    rec = cat.recommend([], machine_from_sizes(8))
    assert rec.entry is None and rec.smallest is None
    assert "empty" in rec.message


def test_why(catalog):
    rec = cat.recommend(catalog.entries, machine_from_sizes(16, 8))
    assert rec.why == "needs 19 GB, this machine can give 22 GB"
    assert rec.message == (
        "Recommended: Q4_K_M (ggml-model-q4_k_m.gguf): needs 19 GB, this machine can give 22 GB."
    )
    close = cat.recommend(catalog.entries, Machine(25_270_000_000, None))
    assert close.why == "needs 22.7 GB, this machine can give 22.74 GB"


def make(quant, size, use_case=""):
    return Entry(quant, quant, None, size * GB, (size + 2) * GB, use_case, f"{quant}.gguf")


@pytest.mark.parametrize("order", [1, -1])
def test_ties_go_to_the_recommended_entry_in_any_order(order):
    entries = [
        make("A", 10, "fine - not recommended"),
        make("B", 10, "good - recommended"),
        make("C", 10, "plain"),
    ][::order]
    assert cat.recommend(entries, machine_from_sizes(64)).entry.quant == "B"


def test_run_plans_without_gpu(catalog):
    _, rows = cat.evaluate(catalog, machine_from_sizes(16))
    modes = {r.entry.quant: r.plan.mode for r in rows}
    assert modes["Q2_K"] == "cpu" and modes["Q3_K_M"] == "none"
    q2 = rows[0].plan
    assert (q2.gpu_layers, q2.n_gpu_layers, q2.n_layer, q2.layers_estimated) == (0, 0, 40, True)
    assert q2.describe() == "on the CPU only"
    assert rows[1].missing_bytes == 1_100_000_000


def test_run_plans_with_a_gpu(catalog):
    _, rows = cat.evaluate(catalog, machine_from_sizes(16, 8))
    plan = next(r.plan for r in rows if r.entry.quant == "Q4_K_M")
    # each of 40 blocks plus the output layer is 19/41 GB; 8 GB holds 17 of them
    assert (plan.mode, plan.gpu_layers, plan.n_gpu_layers) == ("partial", 17, 17)
    assert plan.describe() == "partly on the GPU (17 of ~40 layers)"
    _, big = cat.evaluate(catalog, machine_from_sizes(16, 48))
    full = next(r.plan for r in big if r.entry.quant == "Q8_0")
    assert (full.mode, full.n_gpu_layers) == ("gpu", -1)
    assert full.describe() == "fully on the GPU"


def test_run_plan_uses_a_known_layer_count(catalog):
    entry = catalog.by_quant("Q4_K_M")
    plan = cat.plan_run(entry, machine_from_sizes(16, 8), n_layer=32)
    assert (plan.n_layer, plan.layers_estimated, plan.gpu_layers) == (32, False, 13)
    assert plan.describe() == "partly on the GPU (13 of 32 layers)"
    _, rows = cat.evaluate(catalog, machine_from_sizes(16, 8), n_layer=48)
    assert {r.plan.n_layer for r in rows} == {48}
    unknown = cat.plan_run(entry, machine_from_sizes(16, 8))
    assert unknown.n_layer == cat.FALLBACK_N_LAYER and unknown.layers_estimated


def test_run_plan_on_a_tiny_gpu_is_cpu(catalog):
    plan = cat.plan_run(catalog.by_quant("Q4_K_M"), machine_from_sizes(24, 0.2))
    assert plan.mode == "cpu"


def test_run_plan_without_gpu_offload(catalog):
    plan = cat.plan_run(catalog.by_quant("Q2_K"), machine_from_sizes(16, 24), gpu_offload=False)
    assert plan.mode == "cpu"


def test_run_plan_on_apple_silicon(catalog):
    _, rows = cat.evaluate(catalog, apple(32))
    modes = {r.entry.quant: r.plan.mode for r in rows}
    assert modes["Q2_K"] == "gpu"  # 12 GB within the GPU's 24 GB share
    assert modes["Q6_K"] == "partial"  # 26.7 GB fits the machine, not the GPU's share
    assert modes["Q8_0"] == "none"


def test_fits_now_is_a_softer_warning(catalog):
    busy = Machine(32 * GB, 13 * GB, (Gpu("G", 8 * GB, 6 * GB, "nvidia", "nvml"),))
    _, rows = cat.evaluate(catalog, busy)
    now = {r.entry.quant: (r.fits, r.plan.fits_now) for r in rows}
    assert now["Q2_K"] == (True, True)  # 12 <= 13 + 6
    assert now["Q4_K_M"] == (True, True)  # 19 <= 19
    assert now["Q5_K_M"] == (True, False)  # fits the machine, not what is free now
    assert now["Q8_0"] == (True, False)  # 34 <= 28.8 + 8
    _, given = cat.evaluate(catalog, machine_from_sizes(32))
    assert {r.plan.fits_now for r in given} == {None}


def test_entries_for_any_gguf():
    entry = cat.entry_for_file("x/model.Q5_K_S.gguf", 5 * GB, "Q5_K_S")
    assert (entry.bits, entry.max_ram_bytes, entry.quant) == (5, 7 * GB, "Q5_K_S")
    assert cat.entry_for_file("m.gguf", GB, None, overhead_bytes=GB).max_ram_bytes == 2 * GB
    assert [cat.quant_bits(q) for q in ("IQ2_XS", "BF16", "MXFP4", None)] == [2, 16, 4, None]


def test_format_gb():
    assert [cat.format_gb(b) for b in (19 * GB, 22_430_000_000, 0)] == ["19", "22.4", "0"]


# -- parlor recommend ---------------------------------------------------------------------------


def run_json(capsys, *args):
    assert cli(["recommend", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    "ram, vram, expected",
    [("16", "0", "Q2_K"), ("32", "0", "Q6_K"), ("16", "8", "Q4_K_M"), ("8", "0", None)],
)
def test_recommend_json(capsys, ram, vram, expected):
    data = run_json(capsys, "--ram", ram, "--vram", vram)
    assert set(data) == {"ram_gb", "vram_gb", "usable_gb", "recommended", "entries"}
    assert data["recommended"] == expected
    assert (data["ram_gb"], data["vram_gb"]) == (float(ram), float(vram))
    assert len(data["entries"]) == 8
    assert sum(e["recommended"] for e in data["entries"]) == (expected is not None)


def test_recommend_json_entries(capsys):
    data = run_json(capsys, "--ram", "16", "--vram", "8")
    assert data["usable_gb"] == 22.0
    q4 = next(e for e in data["entries"] if e["quant"] == "Q4_K_M")
    assert q4 == {
        "name": "Q4_K_M",
        "quant": "Q4_K_M",
        "bits": 4,
        "file": "ggml-model-q4_k_m.gguf",
        "size_gb": 17.0,
        "max_ram_gb": 19.0,
        "use_case": "medium, balanced quality - recommended",
        "fits": True,
        "missing_gb": 0.0,
        "recommended": True,
        "run": "partial",
        "gpu_layers": 17,
        "n_layer": 40,
        "layers_estimated": True,
        "fits_now": None,
    }
    q8 = next(e for e in data["entries"] if e["quant"] == "Q8_0")
    assert (q8["fits"], q8["missing_gb"], q8["run"]) == (False, 12.0, "none")


def test_recommend_table(capsys):
    assert cli(["recommend", "--ram", "32", "--vram", "0"]) == 0
    out = capsys.readouterr().out
    assert "Usable for a model: 28.8 GB = 32 GB RAM - 3.2 GB kept for the system + 0 GB VRAM" in out
    assert (
        "Recommended: Q6_K (ggml-model-q6_k.gguf): needs 26.7 GB, this machine can give "
        "28.8 GB." in out
    )
    assert "no, 5.2 GB short" in out  # Q8_0
    q4 = next(line for line in out.splitlines() if "Q4_K_M" in line and "~17 GB" in line)
    assert "yes" in q4 and "on the CPU only" in q4


def test_recommend_nothing_fits(capsys):
    assert cli(["recommend", "--ram", "8", "--vram", "0"]) == 0
    assert "Nothing fits this machine" in capsys.readouterr().out


def test_recommend_probes_this_machine(capsys):
    data = run_json(capsys)
    assert data["ram_gb"] > 0 and len(data["entries"]) == 8


def test_recommend_overrides_one_probe(capsys, monkeypatch):
    probed = Machine(64 * GB, 60 * GB, (Gpu("G", 24 * GB, 20 * GB, "nvidia", "nvml"),))
    monkeypatch.setattr("app.commands.recommend.read_machine", lambda: probed)
    data = run_json(capsys, "--ram", "16")
    assert (data["ram_gb"], data["vram_gb"]) == (16.0, 24.0)


def test_recommend_rejects_negative_sizes(capsys):
    with pytest.raises(SystemExit):
        cli(["recommend", "--ram", "-4"])
