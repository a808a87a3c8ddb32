"""Memory modes from (fake) free-memory figures, their effect on a real tiny pipeline, OOM retry."""

from __future__ import annotations

import pytest

from gambarkan.engine import device
from gambarkan.errors import OutOfMemoryError


@pytest.mark.parametrize(
    ("kind", "free_mb", "size", "expected"),
    [
        ("sdxl", 15_000, 1024, "high"),  # a 16 GB T4: SDXL all on the GPU
        ("sdxl", 7_500, 1024, "low"),  # 8 GB card: model offload
        ("sdxl", 3_500, 1024, "minimal"),  # too small even for offload: sequential
        ("sd15", 3_600, 512, "low"),  # a 4 GB card (~3.6 GB free) runs SD 1.5 with offload
        ("sd15", 7_800, 512, "high"),
        ("sd15", 1_500, 512, "minimal"),
        ("sd15", 3_900, 1024, "low"),  # 4x the pixels needs more than "high" allows
    ],
)
def test_auto_mode_from_free_memory(kind: str, free_mb: int, size: int, expected: str) -> None:
    plan = device.choose_memory_mode("auto", "cuda", kind, size, size, free_vram_mb=free_mb, free_ram_mb=32_000)
    assert plan.mode == expected
    assert f"{free_mb} MB" in plan.reason
    if expected != "high":
        assert plan.vae_slicing and plan.vae_tiling


def test_override_wins_and_large_images_tile() -> None:
    plan = device.choose_memory_mode("minimal", "cuda", "sd15", 512, 512, free_vram_mb=80_000)
    assert plan.mode == "minimal" and "--memory minimal" in plan.reason
    big = device.choose_memory_mode("auto", "cuda", "sd15", 1536, 1536, free_vram_mb=80_000)
    assert big.mode == "high" and big.vae_tiling
    small = device.choose_memory_mode("auto", "cuda", "sd15", 512, 512, free_vram_mb=80_000)
    assert not small.vae_tiling and not small.vae_slicing


def test_cpu_keeps_everything_in_ram() -> None:
    plan = device.choose_memory_mode("auto", "cpu", "sdxl", 1024, 1024, free_ram_mb=16_000)
    assert plan.mode == "high" and not plan.vae_tiling
    assert device.choose_memory_mode("auto", "cpu", "sd15", 2048, 2048).vae_tiling
    assert "memory mode high on cpu" in plan.describe()


def test_next_lower_mode() -> None:
    assert [device.next_lower_mode(m) for m in device.MEMORY_MODES] == ["low", "minimal", None]


def test_apply_plan_sets_vae_tiling_on_a_real_pipeline() -> None:
    from gambarkan.testing import tiny_pipeline

    pipe = tiny_pipeline()
    plan = device.MemoryPlan("high", "cpu", vae_slicing=True, vae_tiling=True, reason="test")
    device.apply_memory_plan(pipe, plan)
    assert pipe.vae.use_tiling and pipe.vae.use_slicing
    device.apply_memory_plan(pipe, device.MemoryPlan("high", "cpu", False, False, "test"))
    assert not pipe.vae.use_tiling and not pipe.vae.use_slicing


class FakeOOM(RuntimeError):
    pass


def _oom() -> FakeOOM:
    return FakeOOM("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_oom_retries_once_in_the_next_lower_mode() -> None:
    placed: list[str] = []
    notes: list[str] = []
    runs: list[str] = []

    def run(plan: device.MemoryPlan) -> str:
        runs.append(plan.mode)
        if plan.mode == "high":
            raise _oom()
        return "image"

    plan = device.MemoryPlan("high", "cuda", False, False, "test")
    result = device.run_with_oom_retry(run, plan, lambda p: placed.append(p.mode), notes.append)
    assert result == "image" and runs == ["high", "low"] and placed == ["low"]
    assert notes and "retrying once in 'low' mode" in notes[0]


def test_oom_twice_is_a_clear_error() -> None:
    def run(plan: device.MemoryPlan) -> str:
        raise _oom()

    with pytest.raises(OutOfMemoryError, match="even in memory mode low"):
        device.run_with_oom_retry(run, device.MemoryPlan("high", "cuda", False, False, "t"), lambda p: None)
    with pytest.raises(OutOfMemoryError, match="minimal"):
        device.run_with_oom_retry(run, device.MemoryPlan("minimal", "cuda", True, True, "t"), lambda p: None)


def test_other_errors_are_not_swallowed() -> None:
    def run(plan: device.MemoryPlan) -> str:
        raise ValueError("bad shape")

    with pytest.raises(ValueError, match="bad shape"):
        device.run_with_oom_retry(run, device.MemoryPlan("high", "cuda", False, False, "t"), lambda p: None)
