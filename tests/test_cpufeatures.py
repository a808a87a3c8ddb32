"""gambarkan.cpufeatures: one detector of AVX2 / AVX-512 / AVX512-BF16 / AMX, and what --fast does with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gambarkan import cpufeatures


@pytest.fixture
def avx2_only(monkeypatch):
    """A simulated AVX2-only CPU (like the laptop of issue 23): /proc/cpuinfo without AVX-512 or bf16."""
    monkeypatch.setattr(cpufeatures, "_linux_flags", lambda: {"sse4_2", "avx", "avx2", "fma"})
    monkeypatch.delenv(cpufeatures.ENV, raising=False)
    cpufeatures._detect.cache_clear()
    yield
    cpufeatures._detect.cache_clear()


def test_an_avx2_cpu_has_no_bf16_and_says_so(avx2_only):
    cpu = cpufeatures.detect()
    assert (cpu.avx2, cpu.avx512, cpu.avx512_bf16, cpu.amx, cpu.bf16) == (True, False, False, False, False)
    assert cpu.summary() == "AVX2; no AVX-512, AVX512-BF16, AMX"
    assert cpu.describe(2).endswith(", 2 torch threads") and cpu.as_dict(2)["threads"] == 2
    from gambarkan.engine import optimize

    assert not optimize.cpu_has_bf16()
    assert not optimize.resolve_options(None, "cpu", fast=True).bf16_autocast


def test_the_environment_can_only_take_features_away(monkeypatch):
    monkeypatch.setattr(cpufeatures, "_linux_flags", lambda: {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})
    cpufeatures._detect.cache_clear()
    try:
        assert cpufeatures.detect().bf16 and cpufeatures.detect().amx
        monkeypatch.setenv(cpufeatures.ENV, "avx2, AVX-512")
        cpu = cpufeatures.detect()
        assert cpu.avx512 and not cpu.bf16 and cpu.simulated and "limited by GAMBARKAN_CPU_FEATURES" in cpu.summary()
        monkeypatch.setattr(cpufeatures, "_linux_flags", lambda: {"avx2"})
        cpufeatures._detect.cache_clear()
        monkeypatch.setenv(cpufeatures.ENV, "avx2,avx512_bf16,amx")
        assert not cpufeatures.detect().bf16  # a limit never adds what the CPU lacks
    finally:
        cpufeatures._detect.cache_clear()


def test_fast_on_a_cpu_without_bf16_says_in_one_line_what_applies(avx2_only, tmp_path):
    from gambarkan.engine import optimize
    from gambarkan.testing import tiny_pipeline

    pipe = tiny_pipeline("sd15")
    applied = optimize.for_request(pipe, None, fast=True, device="cpu", dtype="fp32", arch="sd15", model_key="tiny|cpu|fp32",
                                   batch=1, width=64, height=64, cfg=7.0, cache_dir=tmp_path, model_name="tiny")
    assert not applied.options.bf16_autocast and applied.metadata != "bf16_autocast"
    [note] = applied.announce
    assert note.startswith("fast on this CPU (AVX2; no AVX-512, AVX512-BF16, AMX): ")
    assert "bf16 off: this CPU has no AVX512-BF16 or AMX, and emulated bf16 is slower than fp32" in note
    if optimize._openvino_available():
        assert "OpenVINO off: not prepared for 64x64 (once, minutes: gambarkan models prepare tiny --size 64x64 --optimize openvino)" in note
    assert "\n" not in note
    optimize.revert(pipe)


def test_generate_fast_and_doctor_name_a_simulated_cpu_without_bf16(cli, tiny_sd15_dir: Path, tmp_path: Path):
    from gambarkan.outputs.png import read_parameters

    env = {cpufeatures.ENV: "avx2"}
    run = cli("generate", "a red cat", "--model", str(tiny_sd15_dir), "-s", "2", "-W", "64", "-H", "64", "--seed", "1",
              "--no-translate", "--fast", "--verbose", "--json", "-o", str(tmp_path), env=env)
    assert run.returncode == 0, run.stderr
    note = [line for line in run.stderr.splitlines() if "fast on this CPU" in line]
    assert len(note) == 1 and "bf16 off: this CPU has no AVX512-BF16 or AMX" in note[0], run.stderr
    assert "cpu: " in run.stderr and "torch thread" in run.stderr  # --verbose names the CPU and threads
    path = Path(json.loads(run.stdout)["images"][0]["path"])
    assert "bf16_autocast" not in str(read_parameters(path))
    doctor = cli("doctor", "--json", "--no-network", env=env)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert "no AVX-512, AVX512-BF16, AMX (limited by GAMBARKAN_CPU_FEATURES)" in checks["CPU"]["detail"]
    assert "--fast uses no bf16 here" in checks["CPU"]["detail"] and "torch thread" in checks["CPU"]["detail"]
