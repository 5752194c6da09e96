"""build.py's llama.cpp runtimes: the portability check, and the build commands per runtime.

The check runs for real on the llama.cpp installed here (compiled with GGML_NATIVE=ON, so it
must be refused) and on build folders laid out like a portable one. The runtime builds are
only planned, never run: compiling llama.cpp takes minutes to hours on 2 cores.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.packaging.built_runtimes import load_build_module

ROOT = Path(__file__).resolve().parents[2]


build = load_build_module()
check, runtimes = build.llama_check, build.llama_runtimes

PORTABLE_CONFIG = """
set(GGML_BACKEND_DL "ON")
set(GGML_CPU_ALL_VARIANTS "ON")
set(GGML_NATIVE "OFF")
set(GGML_VULKAN "ON")
"""
X86_VARIANTS = ["x64", "sse42", "sandybridge", "haswell", "skylakex", "icelake", "alderlake"]


def fake_site(tmp_path: Path, config: str | None, libs: list[str]) -> tuple[Path, Path]:
    site = tmp_path / "site-packages"
    lib = site / "llama_cpp" / "lib"
    lib.mkdir(parents=True)
    for name in libs:
        (lib / name).write_bytes(b"\x7fELF")
    if config is not None:
        cmake = site / "lib" / "cmake" / "ggml"
        cmake.mkdir(parents=True)
        (cmake / "ggml-config.cmake").write_text(config)
    return site, lib


def portable_libs(*extra: str) -> list[str]:
    return [
        "libggml.so",
        "libggml-base.so",
        "libllama.so",
        *[f"libggml-cpu-{v}.so" for v in X86_VARIANTS],
        *extra,
    ]


# --- the check --------------------------------------------------------------------------------


def test_the_llama_cpp_installed_here_is_read_and_refused_with_how_to_build_one():
    """pip's own build of llama-cpp-python (GGML_NATIVE=ON here, OFF on CI) never has the
    CPU variants: the check must read its real ggml-config.cmake and refuse it."""
    places = build._llama_places(sys.executable)
    built = check.read_build(places["site_packages"], places["lib"])
    assert "GGML_NATIVE" in built.config and built.libraries  # both witnesses were read
    found = check.problems(built, "cpu", "x86_64")
    native = built.config["GGML_NATIVE"].upper() == "ON"
    assert any("GGML_NATIVE=ON" in p for p in found) == native
    if built.config.get("GGML_BACKEND_DL", "OFF").upper() != "ON":
        assert any("GGML_BACKEND_DL=ON" in p for p in found)
    if not built.cpu_variants:
        assert any("no ggml-cpu-<variant>" in p for p in found)
    if not found:
        pytest.skip("this Python's llama.cpp is a portable build")
    with pytest.raises(build.BuildError) as refused:
        build.check_llama(sys.executable, "cpu", allow_unportable=False)
    message = str(refused.value)
    assert "refusing to package" in message
    assert "python packaging/build.py --runtime cpu" in message
    assert "-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON" in message


def test_allow_unportable_warns_instead(capsys):
    build.check_llama(sys.executable, "cpu", allow_unportable=True)
    assert "WARNING (--allow-unportable)" in capsys.readouterr().err


def test_a_portable_vulkan_build_passes(tmp_path):
    site, lib = fake_site(tmp_path, PORTABLE_CONFIG, portable_libs("libggml-vulkan.so"))
    built = check.read_build(site, lib)
    assert "haswell" in built.cpu_variants and "ggml-vulkan" in built.modules
    assert check.problems(built, "vulkan", "x86_64") == []
    assert check.problems(built, "cpu", "x86_64") == []


@pytest.mark.parametrize(
    "config, libs, runtime, expected",
    [
        (
            PORTABLE_CONFIG.replace('NATIVE "OFF"', 'NATIVE "ON"'),
            portable_libs(),
            "cpu",
            "GGML_NATIVE=ON",
        ),
        (
            PORTABLE_CONFIG.replace('ALL_VARIANTS "ON"', 'ALL_VARIANTS "OFF"'),
            portable_libs(),
            "cpu",
            "without GGML_CPU_ALL_VARIANTS=ON",
        ),
        (PORTABLE_CONFIG, ["libggml.so", "libggml-cpu.so"], "cpu", "no ggml-cpu-<variant>"),
        (
            PORTABLE_CONFIG,
            ["libggml-cpu-haswell.so", "libggml-cpu-skylakex.so"],
            "cpu",
            "none that runs on every x86-64 CPU",
        ),
        (PORTABLE_CONFIG, portable_libs(), "vulkan", "no ggml-vulkan library"),
        (
            PORTABLE_CONFIG.replace('VULKAN "ON"', 'VULKAN "OFF"'),
            portable_libs(),
            "vulkan",
            "without GGML_VULKAN=ON",
        ),
        (None, portable_libs(), "cpu", "ggml-config.cmake is missing"),
    ],
)
def test_each_unportable_build_is_named(tmp_path, config, libs, runtime, expected):
    site, lib = fake_site(tmp_path, config, libs)
    found = check.problems(check.read_build(site, lib), runtime, "x86_64")
    assert any(expected in p for p in found), found


@pytest.mark.parametrize(
    ("machine", "variants", "refused"),
    [
        ("arm64", ("apple_m1", "apple_m2_m3", "apple_m4"), False),
        ("arm64", ("apple_m2_m3", "apple_m4"), True),  # an M1 could run none of them
        ("aarch64", ("armv8.0_1", "armv8.2_1", "armv9.2_2"), False),
        ("aarch64", ("armv8.2_1", "armv8.6_1"), True),  # a Cortex-A53 (no dotprod): none
    ],
)
def test_an_arm_build_must_carry_the_variant_every_arm_cpu_runs(machine, variants, refused):
    built = check.LlamaBuild({}, tuple(f"libggml-cpu-{v}.so" for v in variants))
    found = check._library_problems(built, "cpu", machine)
    assert bool(found) is refused, found
    if refused:
        assert "the one that runs on every" in found[0]


def test_windows_and_versioned_library_names_are_recognised():
    built = check.LlamaBuild(
        {}, ("ggml-cpu-haswell.dll", "libggml-cpu-x64.so.0.25.3", "ggml-vulkan.dll", "llama.dll")
    )
    assert built.cpu_variants == {"haswell", "x64"}
    assert "ggml-vulkan" in built.modules


def test_the_frozen_bundle_is_checked_too(tmp_path):
    bundle = tmp_path / "parlor"
    lib = bundle / "_internal" / "llama_cpp" / "lib"
    lib.mkdir(parents=True)
    (lib / "libggml-cpu.so").write_bytes(b"")
    with pytest.raises(build.BuildError, match="lost llama.cpp libraries"):
        build.check_bundle_libraries(bundle, "cpu", allow_unportable=False)
    for name in portable_libs():
        (lib / name).write_bytes(b"")
    build.check_bundle_libraries(bundle, "cpu", allow_unportable=False)


# --- the runtimes' build commands ---------------------------------------------------------------


def test_vulkan_build_commands(tmp_path):
    env = runtimes.build_env(tmp_path, "vulkan", platform="linux", python_tag="py311")
    steps = runtimes.steps(
        env, runtimes.RECIPES["vulkan"], "0.3.36", ROOT, "/usr/bin/python3", cached=False
    )
    py, root = str(env.python), env.root
    assert root == tmp_path / "runtimes" / "vulkan-linux-py311"
    assert [s.argv for s in steps] == [
        ("/usr/bin/python3", "-m", "venv", "--clear", str(env.venv)),
        (
            *(py, "-m", "pip", "download", "--no-deps", "--no-binary", "llama-cpp-python"),
            *("--dest", str(root / "sdist"), "llama-cpp-python==0.3.36"),
        ),
        (
            *("/usr/bin/python3", "-m", "tarfile", "-e"),
            *(str(root / "sdist/llama_cpp_python-0.3.36.tar.gz"), str(root / "src")),
        ),
        (
            *(py, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir"),
            *("--wheel-dir", str(env.wheels), str(root / "src/llama_cpp_python-0.3.36")),
        ),
        (
            py,
            "-m",
            "pip",
            "install",
            "--force-reinstall",
            "--no-deps",
            "--no-index",
            "--find-links",
            str(env.wheels),
            "llama-cpp-python==0.3.36",
        ),
        (py, "-m", "pip", "install", "-e", str(ROOT), "pyinstaller>=6.10"),
    ]
    # the same source and build folders every time, so ccache finds its earlier results
    assert steps[3].env == {
        "CMAKE_ARGS": "-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON "
        "-DGGML_VULKAN=ON",
        "FORCE_CMAKE": "1",
        "SKBUILD_BUILD_DIR": str(root / "cmake-build"),
        "CCACHE_BASEDIR": str(root),
    }
    assert env.site_packages == env.venv / "lib/python3.11/site-packages"
    assert set(env.scratch) >= {root / "cmake-build", root / "src"}  # cleared before a build


def test_a_cached_runtime_only_refreshes_the_app(tmp_path):
    env = runtimes.build_env(tmp_path, "cpu", platform="linux")
    steps = runtimes.steps(env, runtimes.RECIPES["cpu"], "0.3.36", ROOT, "python3", cached=True)
    assert [s.argv[3:] for s in steps] == [("install", "-e", str(ROOT), "pyinstaller>=6.10")]


CUDA_WHEELS = [
    "nvidia-cuda-nvcc~=13.0.0",
    "nvidia-cuda-crt~=13.0.0",
    "nvidia-nvvm~=13.0.0",
    "nvidia-cuda-cccl~=13.0.0",
    "nvidia-cuda-runtime~=13.0.0",
    "nvidia-cublas~=13.0.0",
]


def test_cuda_gets_its_toolkit_from_pypi_and_assembles_it_on_linux(tmp_path):
    env = runtimes.build_env(tmp_path, "cuda", platform="linux", python_tag="py312")
    steps = runtimes.steps(env, runtimes.RECIPES["cuda"], "0.3.36", ROOT, "py3", cached=False)
    assert list(steps[1].argv[3:]) == ["install", *CUDA_WHEELS]  # one CUDA minor for all
    site = env.venv / "lib/python3.12/site-packages"
    toolkit = env.root / "cuda-toolkit"
    assert steps[2].argv == (
        "py3",
        str(ROOT / "packaging/cuda_toolkit.py"),
        str(site),
        str(toolkit),
    )
    compile_step = next(s for s in steps if "wheel" in s.argv)
    assert "-DGGML_CUDA=ON" in compile_step.env["CMAKE_ARGS"]
    assert "CMAKE_CUDA_ARCHITECTURES" not in compile_step.env["CMAKE_ARGS"]  # llama.cpp's list
    assert compile_step.env["CUDACXX"] == str(toolkit / "bin/nvcc")
    assert compile_step.env["CUDAToolkit_ROOT"] == str(toolkit)


def test_cuda_on_windows_uses_the_wheels_tree_as_the_toolkit(tmp_path):
    env = runtimes.build_env(tmp_path, "cuda", platform="win32", python_tag="py311")
    steps = runtimes.steps(env, runtimes.RECIPES["cuda"], "0.3.36", ROOT, "py", cached=False)
    assert env.python == env.venv / "Scripts/python.exe"
    assert not any("cuda_toolkit.py" in arg for s in steps for arg in s.argv)
    compile_step = next(s for s in steps if "wheel" in s.argv)
    tree = env.venv / "Lib/site-packages/nvidia/cu13"
    assert compile_step.env["CUDACXX"] == str(tree / "bin/nvcc.exe")


def test_cuda_architectures_are_passed_to_cmake_and_kept_in_the_stamp():
    recipe = runtimes.RECIPES["cuda"]
    one = runtimes.with_cuda_architectures(recipe, "89-real")
    two = runtimes.with_cuda_architectures(recipe, "86-real,89-real")
    assert one.cmake_args[-1] == "-DCMAKE_CUDA_ARCHITECTURES=89-real"
    assert two.cmake_args[-1] == "-DCMAKE_CUDA_ARCHITECTURES=86-real;89-real"  # a CMake list
    assert runtimes.with_cuda_architectures(recipe, None) == recipe
    stamps = [runtimes.stamp_for(r, "0.3.36", "3.11.2") for r in (recipe, one, two)]
    assert len({json.dumps(s) for s in stamps}) == 3  # each is a build of its own
    assert stamps[0]["extra_wheels"] == CUDA_WHEELS
    assert "extra_wheels" not in runtimes.stamp_for(runtimes.RECIPES["cpu"], "0.3.36", "3.11.2")
    parsed = build.parse_args(["--runtime", "cuda", "--cuda-arch", "89-real"])
    assert parsed.cuda_arch == "89-real"


def test_metal_on_macos_and_vulkan_elsewhere():
    assert runtimes.default_runtime("darwin") == "metal"
    assert runtimes.default_runtime("linux") == runtimes.default_runtime("win32") == "vulkan"
    assert "-DGGML_METAL=ON" in runtimes.RECIPES["metal"].cmake_args
    assert all("-DGGML_NATIVE=OFF" in r.cmake_args for r in runtimes.RECIPES.values())


def test_the_cache_is_used_only_for_the_same_stamp(tmp_path):
    env = runtimes.build_env(tmp_path, "cpu")
    stamp = runtimes.stamp_for(runtimes.RECIPES["cpu"], "0.3.36", "3.11.2")
    assert not runtimes.is_cached(env, stamp)
    env.python.parent.mkdir(parents=True)
    env.python.write_text("")
    env.wheels.mkdir()
    (env.wheels / "llama_cpp_python-0.3.36-cp311-cp311-linux_x86_64.whl").write_text("")
    env.stamp.write_text(json.dumps(stamp))
    assert runtimes.is_cached(env, stamp)
    other = runtimes.stamp_for(runtimes.RECIPES["vulkan"], "0.3.36", "3.11.2")
    assert not runtimes.is_cached(env, other)
    assert not runtimes.is_cached(
        env, runtimes.stamp_for(runtimes.RECIPES["cpu"], "0.3.37", "3.11.2")
    )


def test_backend_modules_are_gathered_into_llama_cpp_lib(tmp_path):
    site = tmp_path / "site-packages"
    (site / "bin").mkdir(parents=True)
    (site / "llama_cpp" / "lib").mkdir(parents=True)
    for name in ("libggml-cpu-haswell.so", "libggml-vulkan.so", "unrelated.so"):
        (site / "bin" / name).write_bytes(name.encode())
    copied = runtimes.gather_backend_modules(site)
    assert sorted(p.name for p in copied) == ["libggml-cpu-haswell.so", "libggml-vulkan.so"]
    assert (site / "llama_cpp" / "lib" / "libggml-vulkan.so").read_bytes() == b"libggml-vulkan.so"


def test_gpu_is_an_alias_of_runtime_and_dry_run_prints_the_plan(tmp_path, capsys):
    assert build.parse_args(["--gpu", "cuda"]).runtime == "cuda"
    assert (
        build.main(
            [
                "--runtime",
                "cpu",
                "--dry-run",
                "--work",
                str(tmp_path / "w"),
                "--dist",
                str(tmp_path / "d"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "CMAKE_ARGS='-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON'" in out
    assert "pip wheel --no-deps --no-cache-dir" in out
    assert not (tmp_path / "w" / "runtimes" / "cpu").exists()


def test_the_macos_minimum_is_one_every_bundled_wheel_exists_for():
    """PySide6-Essentials 6.11's wheels are tagged macOS 13.0 (6.9.3 is the newest for 12), and
    numpy's arm64 wheels for Apple's BLAS 14.0; Info.plist says the same (test_macho.py)."""
    assert build.macho.parse_version(runtimes.MACOS_MINIMUM) >= (14, 0)


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        (
            {
                "lib": [
                    "libcudart.so.13",
                    "libcudart_static.a",
                    "libcublas.so.13",
                    "libcublasLt.so.13",
                    "libnvblas.so.13",
                    "libnvvm.so.4",
                ],
            },
            ["libcublas.so.13", "libcublasLt.so.13", "libcudart.so.13"],
        ),
        (
            {
                "bin/x86_64": ["cudart64_13.dll", "cublas64_13.dll", "cublasLt64_13.dll"],
                "bin": ["nvcc.exe"],
                "lib/x64": ["cudart.lib", "cuda.lib"],
            },
            ["cublas64_13.dll", "cublasLt64_13.dll", "cudart64_13.dll"],
        ),
    ],
)
def test_cuda_runtime_and_cublas_go_beside_ggml_cuda(tmp_path, layout, expected):
    """The CUDA 13 wheels' layouts (site-packages/nvidia/cu13) on Linux and on Windows."""
    site = tmp_path / "site-packages"
    for folder, names in layout.items():
        (site / "nvidia/cu13" / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            (site / "nvidia/cu13" / folder / name).write_bytes(name.encode())
    copied = runtimes.gather_cuda_libraries(site)
    assert sorted(p.name for p in copied) == sorted(expected)
    assert all(p.parent == site / "llama_cpp" / "lib" for p in copied)
    assert all(p.read_bytes() == p.name.encode() for p in copied)
