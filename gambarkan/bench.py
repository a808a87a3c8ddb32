"""Benchmark: the same generation through gambarkan's engine and through plain diffusers.

Both run in one process on one pipeline object, alternating, so the ratio compares the two
code paths and nothing else (weights, machine load and caches are shared).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

BENCH_PROMPT = "a photo of a cat sitting on a sofa, soft light, highly detailed"


@dataclass
class BenchResult:
    """Timings in seconds per generation (median of the rounds) and their ratio."""

    model: str
    device: str
    dtype: str
    width: int
    height: int
    steps: int
    rounds: int
    diffusers_s: float
    gambarkan_s: float
    ratio: float
    diffusers_runs: list[float] = field(default_factory=list)
    gambarkan_runs: list[float] = field(default_factory=list)
    load_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _plain_diffusers(pipe: Any, seed: int, width: int, height: int, steps: int, cfg: float) -> Any:
    """A StableDiffusionPipeline call written the obvious way."""
    import torch

    generator = torch.Generator(pipe.device.type if pipe.device.type != "mps" else "cpu").manual_seed(seed)
    return pipe(BENCH_PROMPT, num_inference_steps=steps, guidance_scale=cfg, width=width, height=height, generator=generator).images[0]


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def run_bench(
    model: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    width: int | None = None,
    height: int | None = None,
    steps: int | None = None,
    rounds: int = 3,
    sampler: str = "Euler",
    progress: Any = None,
) -> BenchResult:
    """Time ``rounds`` alternating runs of plain diffusers and gambarkan on one pipeline."""
    from gambarkan.engine.device import pick_device, pick_dtype, torch_dtype
    from gambarkan.engine.generate import Engine
    from gambarkan.engine.samplers import make_scheduler
    from gambarkan.request import GenerationRequest

    device = pick_device(device)
    dtype = pick_dtype(device, dtype)
    on_gpu = device != "cpu"
    width = width or (512 if on_gpu else 256)
    height = height or (512 if on_gpu else 256)
    steps = steps or (25 if on_gpu else 4)
    engine = Engine()
    name = model or "sd15-random-weights"
    t = time.perf_counter()
    if model is None:
        from gambarkan.testing import full_size_sd15_pipeline

        pipe = full_size_sd15_pipeline().to(device=device, dtype=torch_dtype(dtype))
        engine.register(name, pipe, "sd15", device, dtype)
    else:
        from gambarkan.engine.generate import Plan

        loaded, _ = engine.load(Plan(model, sampler, steps, 7.0, width, height, 1, ""), device, dtype, offline=False)
        pipe = loaded.pipe
    load_s = time.perf_counter() - t
    # Same sampler on both sides: the engine sets a fresh one per run, plain diffusers keeps this.
    pipe.scheduler = make_scheduler(sampler, dict(pipe.scheduler.config))
    request = GenerationRequest(prompt=BENCH_PROMPT, model=name, steps=steps, width=width, height=height, cfg=7.0, sampler=sampler, seed=1, device=device, dtype=dtype, save=False, translate=False)

    def time_plain() -> float:
        _sync(device)
        start = time.perf_counter()
        _plain_diffusers(pipe, 1, width, height, steps, 7.0)
        _sync(device)
        return time.perf_counter() - start

    def time_ours() -> float:
        _sync(device)
        start = time.perf_counter()
        engine.generate(request)
        _sync(device)
        return time.perf_counter() - start

    time_plain()  # warm-up both paths (allocator, kernels, caches)
    time_ours()
    plain: list[float] = []
    ours: list[float] = []
    for i in range(rounds):
        pair = (time_plain, time_ours) if i % 2 == 0 else (time_ours, time_plain)
        for fn in pair:
            (plain if fn is time_plain else ours).append(fn())
        if progress:
            progress(i + 1, rounds)
    d, g = statistics.median(plain), statistics.median(ours)
    return BenchResult(name, device, dtype, width, height, steps, rounds, d, g, g / d, plain, ours, load_s)
