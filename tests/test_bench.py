"""``gambarkan bench --suite``, FLOP counting, and the generate CLI's speed options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gambarkan.errors import InvalidRequestError


@pytest.fixture(scope="module")
def tiny_suite():
    from gambarkan.bench import run_suite

    return run_suite("tiny-sd15", width=64, height=64, steps=2, rounds=2, levels=["gambarkan", "fused_qkv", "fast"])


def test_suite_times_plain_diffusers_and_each_level(tiny_suite):
    from gambarkan.bench import format_suite

    rows = {r.level: r for r in tiny_suite.rows}
    assert list(rows) == ["diffusers", "gambarkan", "fused_qkv", "fast"]
    assert rows["diffusers"].ratio == 1.0 and rows["diffusers"].techniques == []
    assert "fused_qkv" in rows["fused_qkv"].techniques and "taesd_decode" in rows["fast"].techniques
    for row in rows.values():
        assert len(row.runs) == 2 and row.peak_ram_mb > 0 and row.steps_per_s > 0
        assert row.spread[0] <= row.s_per_image <= row.spread[1]
    # Same image as plain diffusers where the level is lossless; the lossy level differs.
    assert rows["diffusers"].image_diff == 0 and rows["gambarkan"].image_diff <= 2 and rows["fused_qkv"].image_diff <= 2
    assert tiny_suite.threads >= 1 and tiny_suite.cpu["threads"] == tiny_suite.threads
    assert rows["gambarkan"].unet_s_per_step > 0
    assert tiny_suite.unet_gflops_per_step > 0
    table = format_suite(tiny_suite)
    assert table.count("\n| ") == 5 and "ratio to diffusers" in table and "max px diff" in table  # header + 4 levels
    assert "torch threads on every level" in table and "CPU: " in table
    json.dumps(tiny_suite.to_dict())


def test_suite_refuses_unknown_levels():
    from gambarkan.bench import run_suite

    with pytest.raises(InvalidRequestError, match="unknown bench level 'fastest'"):
        run_suite("tiny-sd15", levels=["fastest"])


def test_unet_flops_counts_without_computing_and_grow_with_the_image():
    from gambarkan.bench import unet_flops
    from gambarkan.testing import tiny_pipeline

    unet = tiny_pipeline("sd15").unet
    small, big = unet_flops(unet, 2, 64, 64, scale=2), unet_flops(unet, 2, 128, 128, scale=2)
    assert small > 0 and big >= 4 * small


def test_bench_cli_suite_json(cli):
    run = cli("bench", "--suite", "--arch", "tiny-sd15", "-W", "64", "-H", "64", "-s", "2", "-r", "1", "--levels", "gambarkan", "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert [r["level"] for r in data["rows"]] == ["diffusers", "gambarkan"]
    assert data["device"] == "cpu" and data["steps"] == 2


def test_generate_cli_speed_options_and_timings(cli, tiny_sd15_dir: Path, tmp_path: Path):
    from gambarkan.engine.optimize import cpu_has_bf16
    from gambarkan.outputs.png import read_parameters

    run = cli("generate", "a red cat", "--model", str(tiny_sd15_dir), "-s", "2", "-W", "64", "-H", "64", "--seed", "1",
              "--no-translate", "--fast", "--verbose", "--json", "-o", str(tmp_path))
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    for key in ("load", "encode", "unet", "decode", "peak_ram_mb", "cold_start", "total"):
        assert key in data["timings"], key
    assert "optimisations:" in run.stderr and "timings:" in run.stderr
    assert "memory mode high on cpu" in run.stderr  # --verbose explains the memory mode it chose
    assert "taesd_decode off" in run.stderr  # no TAESD is downloaded here: said, not failed
    parameters = read_parameters(Path(data["images"][0]["path"]))
    written = str(parameters)
    assert ("bf16_autocast" in written) == cpu_has_bf16()


def test_generate_cli_rejects_unknown_optimisation(cli, tiny_sd15_dir: Path):
    run = cli("generate", "x", "--model", str(tiny_sd15_dir), "--optimize", "chanels_last")
    assert run.returncode == 2
    assert "unknown optimisation 'chanels_last'" in run.stderr and "Traceback" not in run.stderr
