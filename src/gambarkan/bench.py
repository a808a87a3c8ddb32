"""Benchmark: the same generation through gambarkan's engine and through plain diffusers.

Both run in one process on one pipeline object, alternating, so the ratio compares the two
code paths and nothing else (weights, machine load and caches are shared).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

BENCH_PROMPT = "a photo of a cat sitting on a sofa, soft light, highly detailed"


@dataclass
class BenchResult:
    """Timings in seconds per generation (median of the rounds), their ratio and its spread.

    The wall-clock ratio is the headline; process CPU time is the second column (steadier on a
    shared machine, but not comparable where a library runs its own thread pool). Both sides
    ran with ``threads`` torch threads and made ``image_diff`` (max pixel difference, 0-255)
    apart images with the same ``settings``.
    """

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
    diffusers_cpu_s: float = 0.0  # process CPU seconds (steadier than wall time on a shared machine)
    gambarkan_cpu_s: float = 0.0
    cpu_ratio: float = 0.0
    peak_ram_mb: float = 0.0
    ratio_spread: tuple[float, float] = (0.0, 0.0)  # min-max of the per-round wall ratios
    cpu_ratio_spread: tuple[float, float] = (0.0, 0.0)
    threads: dict[str, int] = field(default_factory=dict)  # torch threads each side ran with
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # what each side ran
    image_diff: int = -1  # max abs pixel difference between the two sides' last images
    cpu: dict[str, Any] = field(default_factory=dict)  # gambarkan.cpufeatures of this machine

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


@contextlib.contextmanager
def same_threads(threads: int | None) -> Iterator[int]:
    """Both sides of a benchmark with one torch thread count (OpenVINO's pool takes the same).

    The engine's ``threads`` technique reads ``GAMBARKAN_THREADS``; plain diffusers runs with
    what ``torch.set_num_threads`` says, which the engine's revert restores to this value.
    """
    import torch

    from gambarkan.engine.optimize import physical_cores

    old_env, old_threads = os.environ.get("GAMBARKAN_THREADS"), torch.get_num_threads()
    threads = threads or physical_cores()
    os.environ["GAMBARKAN_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(old_threads)
        if old_env is None:
            os.environ.pop("GAMBARKAN_THREADS", None)
        else:
            os.environ["GAMBARKAN_THREADS"] = old_env


def image_diff(a: Any, b: Any) -> int:
    """Max abs difference of two PIL images in 0-255 steps (-1 when their sizes differ)."""
    import numpy as np

    x, y = np.asarray(a.convert("RGB"), dtype=int), np.asarray(b.convert("RGB"), dtype=int)
    return int(np.abs(x - y).max()) if x.shape == y.shape else -1


def cpu_info(threads: int | None = None) -> dict[str, Any]:
    """The CPU's features and the thread count, for every benchmark's output."""
    from gambarkan.cpufeatures import detect

    return detect().as_dict(threads)


def _settings_of(pipe: Any, image: Any, seed: int) -> dict[str, Any]:
    """What the last pipeline call really ran with, read back from the pipeline and its output."""
    scheduler = pipe.scheduler
    options = {k: scheduler.config.get(k) for k in ("use_karras_sigmas", "timestep_spacing", "prediction_type") if k in scheduler.config}
    return {"scheduler": type(scheduler).__name__, **options, "steps": len(scheduler.timesteps),
            "cfg": float(getattr(pipe, "_guidance_scale", -1.0)), "size": list(image.size), "seed": seed}


def run_bench(
    model: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    width: int | None = None,
    height: int | None = None,
    steps: int | None = None,
    rounds: int = 5,
    sampler: str = "Euler",
    progress: Any = None,
    threads: int | None = None,
) -> BenchResult:
    """Time ``rounds`` alternating runs of plain diffusers and gambarkan on one pipeline, same threads."""
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
    engine = Engine(history=False)
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
    plain_scheduler = make_scheduler(sampler, dict(pipe.scheduler.config))
    request = GenerationRequest(prompt=BENCH_PROMPT, model=name, steps=steps, width=width, height=height, cfg=7.0, sampler=sampler, seed=1, device=device,
                                dtype=dtype, save=False, translate=False, style=False)

    import torch

    cpu_times: dict[str, list[float]] = {"plain": [], "ours": []}
    seen_threads: dict[str, set[int]] = {"plain": set(), "ours": set()}
    last: dict[str, Any] = {}
    settings: dict[str, dict[str, Any]] = {}

    def time_plain() -> float:
        from gambarkan.engine.optimize import revert

        revert(pipe)  # plain diffusers gets the pipeline exactly as loaded (outside the clock)
        pipe.scheduler = plain_scheduler
        _sync(device)
        start, cpu = time.perf_counter(), time.process_time()
        last["plain"] = _plain_diffusers(pipe, 1, width, height, steps, 7.0)
        _sync(device)
        cpu_times["plain"].append(time.process_time() - cpu)
        wall = time.perf_counter() - start
        seen_threads["plain"].add(torch.get_num_threads())
        settings["plain"] = _settings_of(pipe, last["plain"], 1)
        return wall

    def time_ours() -> float:
        _sync(device)
        start, cpu = time.perf_counter(), time.process_time()
        result = engine.generate(request)
        _sync(device)
        cpu_times["ours"].append(time.process_time() - cpu)
        wall = time.perf_counter() - start
        seen_threads["ours"].add(torch.get_num_threads())  # the engine's threads technique stays set until revert
        last["ours"] = result.images[0].image
        settings["ours"] = _settings_of(pipe, last["ours"], result.seed)
        return wall

    with same_threads(threads) as n:
        time_plain()  # warm-up both paths (allocator, kernels, caches)
        time_ours()
        cpu_times = {"plain": [], "ours": []}
        plain: list[float] = []
        ours: list[float] = []
        for i in range(rounds):
            pair = (time_plain, time_ours) if i % 2 == 0 else (time_ours, time_plain)
            for fn in pair:
                (plain if fn is time_plain else ours).append(fn())
            if progress:
                progress(i + 1, rounds)
        from gambarkan.engine.optimize import revert

        revert(pipe)
    d, g = statistics.median(plain), statistics.median(ours)
    dc, gc = statistics.median(cpu_times["plain"]), statistics.median(cpu_times["ours"])
    ratios = [o / p for o, p in zip(ours, plain)]
    cpu_ratios = [o / p for o, p in zip(cpu_times["ours"], cpu_times["plain"]) if p]
    from gambarkan.engine.optimize import peak_memory

    peak = peak_memory(device)["peak_ram_mb"]
    used = {side: max(values) if len(values) == 1 else -1 for side, values in seen_threads.items()}  # -1: it changed between rounds
    return BenchResult(name, device, dtype, width, height, steps, rounds, d, g, g / d, plain, ours, load_s, dc, gc, gc / dc if dc else 0.0, peak,
                       (min(ratios), max(ratios)), (min(cpu_ratios), max(cpu_ratios)) if cpu_ratios else (0.0, 0.0), used, settings,
                       image_diff(last["plain"], last["ours"]), cpu_info(n))


def format_bench(result: BenchResult) -> str:
    """The plain-text report of ``run_bench`` (what ``gambarkan bench`` prints)."""
    cpu = result.cpu

    def spread(runs: list[float]) -> str:
        return f"{min(runs):.3f} / {statistics.median(runs):.3f} / {max(runs):.3f}"

    return (
        f"{result.model} on {result.device} ({result.dtype}), {result.width}x{result.height}, {result.steps} steps, {result.rounds} rounds\n"
        f"  CPU:             {cpu.get('name')}: {cpu.get('summary')}; {result.threads.get('ours')} torch threads on both sides\n"
        f"  s/image (min / median / max)\n"
        f"  plain diffusers: {spread(result.diffusers_runs)}\n"
        f"  gambarkan:       {spread(result.gambarkan_runs)}\n"
        f"  ratio (wall):    {result.ratio:.3f} (rounds {result.ratio_spread[0]:.3f}-{result.ratio_spread[1]:.3f}; target <= 1.02)\n"
        f"  CPU-time ratio:  {result.cpu_ratio:.3f} (rounds {result.cpu_ratio_spread[0]:.3f}-{result.cpu_ratio_spread[1]:.3f})\n"
        f"  same image:      max pixel difference {result.image_diff}/255, same settings: {result.settings.get('plain') == result.settings.get('ours')}\n"
        f"  peak RAM:        {result.peak_ram_mb:.0f} MB"
    )


# --- the suite: plain diffusers against each optimisation level ----------------------------

#: level name -> optimisation spec for the engine (None = the plain diffusers call).
SUITE_LEVELS: dict[str, str | None] = {
    "diffusers": None,
    "gambarkan": "default",
    "channels_last": "default,channels_last",
    "fused_qkv": "default,fused_qkv",
    "lossless": "all-lossless,-compile",
    "compile": "default,compile",
    "cuda_graphs": "default,compile,cuda_graphs",
    "fast": "default,fast",
    "openvino": "default,openvino",
    "fast_openvino": "default,fast,openvino",
}
#: Levels run when none are named: compile costs minutes per shape on a small CPU.
DEFAULT_LEVELS = {"cpu": ["diffusers", "gambarkan", "channels_last", "fused_qkv", "lossless", "fast"]}
GPU_LEVELS = ["diffusers", "gambarkan", "channels_last", "fused_qkv", "lossless", "compile", "cuda_graphs", "fast"]

#: Dense fp16/bf16 tensor-core peak FLOP/s by GPU name fragment (vendor data sheets).
PEAK_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L4": 121e12, "A10G": 125e12, "V100": 125e12, "T4": 65e12}

SDXL_FULL_UNET = dict(
    sample_size=128,
    in_channels=4,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    transformer_layers_per_block=(1, 2, 10),
    attention_head_dim=(5, 10, 20),
    use_linear_projection=True,
    cross_attention_dim=2048,
    addition_embed_type="text_time",
    addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
    norm_num_groups=32,
)
#: SD 2.x base / SD-Turbo (the ``cepat`` package) U-Net and OpenCLIP-H text encoder.
from gambarkan.testing import SD15_FULL_UNET  # noqa: E402 (pure data, no torch)

SD2_FULL_UNET = {
    **SD15_FULL_UNET,
    # what SD 2.x changes in the SD 1.5 U-Net: per-block heads, linear projections, OpenCLIP width
    "attention_head_dim": (5, 10, 20, 20),
    "use_linear_projection": True,
    "cross_attention_dim": 1024,
}
SD2_FULL_TEXT = dict(
    vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
    max_position_embeddings=77, hidden_act="gelu", projection_dim=512, bos_token_id=0, eos_token_id=2, pad_token_id=1,
)
SDXL_FULL_TEXT_2 = dict(
    vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
    max_position_embeddings=77, hidden_act="gelu", projection_dim=1280, bos_token_id=0, eos_token_id=2, pad_token_id=1,
)


def full_size_pipeline(arch: str = "sd15", seed: int = 0) -> Any:
    """SD 1.5 or SDXL at full size from their published configs, random weights (speed does not
    depend on the weights, so nothing is downloaded). ``tiny-sd15``/``tiny-sdxl``: the test models."""
    if arch.startswith("tiny-"):
        from gambarkan.testing import tiny_pipeline

        return tiny_pipeline(arch.removeprefix("tiny-"), seed)
    if arch == "sd15":
        from gambarkan.testing import full_size_sd15_pipeline

        return full_size_sd15_pipeline(seed)
    if arch == "sd2":
        return _full_size_sd2(seed)
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from gambarkan.testing import SCHEDULER, SD15_FULL_TEXT, SD15_FULL_VAE, tiny_clip_tokenizer

    torch.manual_seed(seed)
    with torch.no_grad():
        unet = UNet2DConditionModel(**SDXL_FULL_UNET)
        vae = AutoencoderKL(**{**SD15_FULL_VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True})
        text_encoder = CLIPTextModel(CLIPTextConfig(**SD15_FULL_TEXT))
        text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**SDXL_FULL_TEXT_2))
    scheduler = EulerDiscreteScheduler(**{k: v for k, v in SCHEDULER.items() if k not in ("clip_sample", "set_alpha_to_one")})
    pipe = StableDiffusionXLPipeline(
        unet=unet, vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
        tokenizer=tiny_clip_tokenizer(), tokenizer_2=tiny_clip_tokenizer(pad_token="!"), scheduler=scheduler,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _full_size_sd2(seed: int) -> Any:
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from gambarkan.testing import SCHEDULER, SD15_FULL_VAE, tiny_clip_tokenizer

    torch.manual_seed(seed)
    with torch.no_grad():
        unet = UNet2DConditionModel(**SD2_FULL_UNET)
        vae = AutoencoderKL(**SD15_FULL_VAE)
        text_encoder = CLIPTextModel(CLIPTextConfig(**SD2_FULL_TEXT))
    scheduler = EulerDiscreteScheduler(**{k: v for k, v in SCHEDULER.items() if k not in ("clip_sample", "set_alpha_to_one")})
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tiny_clip_tokenizer(), scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def random_taesd(arch: str = "sd15") -> Any:
    """TAESD's architecture (AutoencoderTiny defaults) with random weights, for timing --fast."""
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    if arch.startswith("tiny-"):  # the tiny VAE scales by 2, so one upsampling block
        return AutoencoderTiny(encoder_block_out_channels=(16, 16), decoder_block_out_channels=(16, 16),
                               num_encoder_blocks=(1, 1), num_decoder_blocks=(1, 1)).eval()
    return AutoencoderTiny().eval()


def unet_flops(unet: Any, batch: int, height: int, width: int, scale: int = 8) -> float:
    """FLOPs of one U-Net forward at this size, counted on the meta device (no compute)."""
    import torch
    from diffusers import UNet2DConditionModel
    from torch.utils.flop_counter import FlopCounterMode

    config = dict(unet.config)
    with torch.device("meta"):
        model = UNet2DConditionModel.from_config(config)
        sample = torch.randn(batch, config["in_channels"], height // scale, width // scale)
        context = torch.randn(batch, 77, config["cross_attention_dim"])
        extra = {}
        if config.get("addition_embed_type") == "text_time":
            pooled = config["projection_class_embeddings_input_dim"] - 6 * config["addition_time_embed_dim"]
            extra = {"added_cond_kwargs": {"text_embeds": torch.randn(batch, pooled), "time_ids": torch.randn(batch, 6)}}
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(sample, torch.tensor(500), encoder_hidden_states=context, **extra)
    return float(counter.get_total_flops())


@dataclass
class SuiteRow:
    """One optimisation level: medians over the rounds and the spread (min, max)."""

    level: str
    spec: str | None
    s_per_image: float
    spread: tuple[float, float]
    cpu_s_per_image: float
    steps_per_s: float
    ratio: float  # median over rounds of (this level / plain diffusers in the same round); < 1 is faster
    ratio_spread: tuple[float, float]
    speedup: float  # 1 / ratio
    cpu_ratio: float  # median process CPU seconds against plain diffusers' (steadier on a shared machine)
    peak_ram_mb: float
    peak_vram_mb: float | None = None
    unet_s_per_step: float | None = None
    utilisation: float | None = None  # U-Net FLOP/s over the card's dense fp16 peak
    techniques: list[str] = field(default_factory=list)
    runs: list[float] = field(default_factory=list)
    cpu_runs: list[float] = field(default_factory=list)
    image_diff: int = -1  # max abs pixel difference (0-255) to plain diffusers' image of the same round


@dataclass
class SuiteResult:
    arch: str
    device: str
    device_name: str
    dtype: str
    width: int
    height: int
    steps: int
    rounds: int
    unet_gflops_per_step: float
    rows: list[SuiteRow]
    build_s: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    threads: int = 0  # torch threads of every level, plain diffusers included (OpenVINO's pool too)
    cpu: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _device_name(device: str) -> str:
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name(0)
    import platform

    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() + f" ({__import__('os').cpu_count()} CPUs)"
    except OSError:
        pass
    return platform.processor() or device


def run_suite(
    arch: str = "sd15",
    device: str = "auto",
    dtype: str = "auto",
    width: int | None = None,
    height: int | None = None,
    steps: int | None = None,
    rounds: int = 5,
    levels: list[str] | None = None,
    sampler: str = "Euler",
    progress: Any = None,
    threads: int | None = None,
) -> SuiteResult:
    """Plain diffusers and each optimisation level on one full-size pipeline, alternating.

    Each round runs every level once in a rotated order; the ratio of a level is taken against
    the plain run of the same round, so slow drifts of a shared machine cancel out.
    """
    import diffusers
    import torch

    from gambarkan.engine.device import pick_device, pick_dtype, torch_dtype
    from gambarkan.engine.generate import Engine
    from gambarkan.engine.optimize import peak_memory, reset_peaks, revert, set_taesd
    from gambarkan.engine.samplers import make_scheduler
    from gambarkan.request import GenerationRequest

    device = pick_device(device)
    dtype = pick_dtype(device, dtype)
    native = {"sdxl": 1024, "sd15": 512, "sd2": 512}.get(arch, 64)
    width = width or (native if device != "cpu" else 256)
    height = height or (native if device != "cpu" else 256)
    steps = steps or (25 if device != "cpu" else 4)
    levels = levels or DEFAULT_LEVELS.get(device, GPU_LEVELS)
    unknown = [lv for lv in levels if lv not in SUITE_LEVELS]
    if unknown:
        from gambarkan.errors import InvalidRequestError

        raise InvalidRequestError(f"unknown bench level '{unknown[0]}'", f"use any of: {', '.join(SUITE_LEVELS)}")
    if "diffusers" not in levels:
        levels = ["diffusers", *levels]

    started = time.perf_counter()
    pipe = full_size_pipeline(arch)
    taesd = random_taesd(arch)
    if device != "cpu" or dtype != "fp32":
        pipe.to(device=device, dtype=torch_dtype(dtype))
        taesd.to(device=device, dtype=torch_dtype(dtype))
    pipe.scheduler = make_scheduler(sampler, dict(pipe.scheduler.config))
    set_taesd(pipe, taesd)
    engine = Engine(history=False)
    name = f"{arch}-random-weights"
    engine.register(name, pipe, arch.removeprefix("tiny-"), device, dtype)
    build_s = time.perf_counter() - started
    flops = unet_flops(pipe.unet, 2, height, width, getattr(pipe, "vae_scale_factor", 8))  # classifier-free guidance: batch of 2

    images: dict[str, Any] = {}

    def run(level: str) -> tuple[float, float, dict[str, float], list[str]]:
        spec = SUITE_LEVELS[level]
        if spec is None:
            revert(pipe)
            reset_peaks(device)
            _sync(device)
            t, cpu = time.perf_counter(), time.process_time()
            images[level] = _plain_diffusers(pipe, 1, width, height, steps, 7.0)
            _sync(device)
            wall, cpu = time.perf_counter() - t, time.process_time() - cpu
            return wall, cpu, peak_memory(device), []
        request = GenerationRequest(prompt=BENCH_PROMPT, model=name, steps=steps, width=width, height=height, cfg=7.0, sampler=sampler,
                                    seed=1, device=device, dtype=dtype, save=False, translate=False, optimize=spec)
        _sync(device)
        t, cpu = time.perf_counter(), time.process_time()
        result = engine.generate(request)
        _sync(device)
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        images[level] = result.images[0].image
        return wall, cpu, result.timings, list(result.extra.get("optimizations", []))

    walls: dict[str, list[float]] = {lv: [] for lv in levels}
    cpus: dict[str, list[float]] = {lv: [] for lv in levels}
    ratios: dict[str, list[float]] = {lv: [] for lv in levels}
    diffs: dict[str, int] = {}
    info: dict[str, tuple[dict[str, float], list[str]]] = {}
    with same_threads(threads) as n:
        for level in levels:  # warm-up: compile, OpenVINO conversion, allocator, oneDNN primitive caches
            run(level)
        for i in range(rounds):
            order = levels[i % len(levels):] + levels[: i % len(levels)]
            this_round: dict[str, float] = {}
            for level in order:
                wall, cpu, timings, techniques = run(level)
                walls[level].append(wall)
                cpus[level].append(cpu)
                this_round[level] = wall
                info[level] = (timings, techniques)
            for level in levels:
                ratios[level].append(this_round[level] / this_round["diffusers"])
                diffs[level] = max(diffs.get(level, 0), image_diff(images[level], images["diffusers"]))
            if progress:
                progress(i + 1, rounds)
        revert(pipe)
    peak = PEAK_FLOPS.get(next((k for k in PEAK_FLOPS if k in _device_name(device)), ""), None) if device == "cuda" and dtype != "fp32" else None
    rows = []
    for level in levels:
        timings, techniques = info[level]
        median = statistics.median(walls[level])
        ratio = statistics.median(ratios[level])
        unet_s = timings.get("unet")
        rows.append(SuiteRow(
            level=level, spec=SUITE_LEVELS[level], s_per_image=median, spread=(min(walls[level]), max(walls[level])),
            cpu_s_per_image=statistics.median(cpus[level]), steps_per_s=steps / median, ratio=ratio,
            ratio_spread=(min(ratios[level]), max(ratios[level])), speedup=1 / ratio if ratio else 0.0,
            cpu_ratio=statistics.median(cpus[level]) / max(1e-9, statistics.median(cpus["diffusers"])),
            peak_ram_mb=timings.get("peak_ram_mb", 0.0), peak_vram_mb=timings.get("peak_vram_mb"),
            unet_s_per_step=unet_s / steps if unet_s else None,
            utilisation=(flops * steps / unet_s / peak) if (unet_s and peak) else None,
            techniques=techniques, runs=walls[level], cpu_runs=cpus[level], image_diff=diffs.get(level, -1),
        ))
    versions = {"torch": torch.__version__, "diffusers": diffusers.__version__}
    return SuiteResult(arch, device, _device_name(device), dtype, width, height, steps, rounds, flops / 1e9, rows, build_s, versions, n, cpu_info(n))


def format_suite(result: SuiteResult) -> str:
    """The suite as a plain-text table (also pasted into benchmarks/RESULTS.md)."""
    head = (f"{result.arch} ({result.device_name}, {result.dtype}), {result.width}x{result.height}, {result.steps} steps, "
            f"{result.rounds} rounds, {result.threads} torch threads on every level; U-Net {result.unet_gflops_per_step:.0f} GFLOP per step (CFG batch 2)")
    if result.cpu:
        head += f"\nCPU: {result.cpu.get('name')}: {result.cpu.get('summary')}"
    lines = [head, "| level | s/image (min-max) | CPU s | steps/s | ratio to diffusers (min-max) | speed-up | CPU-time ratio | max px diff | peak RAM MB | peak VRAM MB | U-Net s/step | GPU util |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result.rows:
        vram = f"{r.peak_vram_mb:.0f}" if r.peak_vram_mb else "-"
        unet = f"{r.unet_s_per_step:.3f}" if r.unet_s_per_step else "-"
        util = f"{r.utilisation:.0%}" if r.utilisation else "-"
        lines.append(f"| {r.level} | {r.s_per_image:.2f} ({r.spread[0]:.2f}-{r.spread[1]:.2f}) | {r.cpu_s_per_image:.2f} | {r.steps_per_s:.2f} | "
                     f"{r.ratio:.3f} ({r.ratio_spread[0]:.3f}-{r.ratio_spread[1]:.3f}) | {r.speedup:.2f}x | {r.cpu_ratio:.3f} | {r.image_diff} | {r.peak_ram_mb:.0f} | {vram} | {unet} | {util} |")
    return "\n".join(lines)
