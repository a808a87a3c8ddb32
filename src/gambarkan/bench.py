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
    diffusers_cpu_s: float = 0.0  # process CPU seconds (steadier than wall time on a shared machine)
    gambarkan_cpu_s: float = 0.0
    cpu_ratio: float = 0.0
    peak_ram_mb: float = 0.0

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
    pipe.scheduler = make_scheduler(sampler, dict(pipe.scheduler.config))
    request = GenerationRequest(prompt=BENCH_PROMPT, model=name, steps=steps, width=width, height=height, cfg=7.0, sampler=sampler, seed=1, device=device, dtype=dtype, save=False, translate=False)

    cpu_times: dict[str, list[float]] = {"plain": [], "ours": []}

    def time_plain() -> float:
        from gambarkan.engine.optimize import revert

        revert(pipe)  # plain diffusers gets the pipeline exactly as loaded (outside the clock)
        _sync(device)
        start, cpu = time.perf_counter(), time.process_time()
        _plain_diffusers(pipe, 1, width, height, steps, 7.0)
        _sync(device)
        cpu_times["plain"].append(time.process_time() - cpu)
        return time.perf_counter() - start

    def time_ours() -> float:
        _sync(device)
        start, cpu = time.perf_counter(), time.process_time()
        engine.generate(request)
        _sync(device)
        cpu_times["ours"].append(time.process_time() - cpu)
        return time.perf_counter() - start

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
    d, g = statistics.median(plain), statistics.median(ours)
    dc, gc = statistics.median(cpu_times["plain"]), statistics.median(cpu_times["ours"])
    from gambarkan.engine.optimize import peak_memory

    peak = peak_memory(device)["peak_ram_mb"]
    return BenchResult(name, device, dtype, width, height, steps, rounds, d, g, g / d, plain, ours, load_s, dc, gc, gc / dc if dc else 0.0, peak)


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
    rounds: int = 3,
    levels: list[str] | None = None,
    sampler: str = "Euler",
    progress: Any = None,
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

    def run(level: str) -> tuple[float, float, dict[str, float], list[str]]:
        spec = SUITE_LEVELS[level]
        if spec is None:
            revert(pipe)
            reset_peaks(device)
            _sync(device)
            t, cpu = time.perf_counter(), time.process_time()
            _plain_diffusers(pipe, 1, width, height, steps, 7.0)
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
        return wall, cpu, result.timings, list(result.extra.get("optimizations", []))

    for level in levels:  # warm-up: compile, allocator, oneDNN primitive caches
        run(level)
    walls: dict[str, list[float]] = {lv: [] for lv in levels}
    cpus: dict[str, list[float]] = {lv: [] for lv in levels}
    ratios: dict[str, list[float]] = {lv: [] for lv in levels}
    info: dict[str, tuple[dict[str, float], list[str]]] = {}
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
        if progress:
            progress(i + 1, rounds)
    revert(pipe)
    peak = PEAK_FLOPS.get(next((k for k in PEAK_FLOPS if k in _device_name(device)), "")) if device == "cuda" and dtype != "fp32" else None
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
            techniques=techniques, runs=walls[level],
        ))
    versions = {"torch": torch.__version__, "diffusers": diffusers.__version__}
    return SuiteResult(arch, device, _device_name(device), dtype, width, height, steps, rounds, flops / 1e9, rows, build_s, versions)


def format_suite(result: SuiteResult) -> str:
    """The suite as a plain-text table (also pasted into benchmarks/RESULTS.md)."""
    head = (f"{result.arch} ({result.device_name}, {result.dtype}), {result.width}x{result.height}, {result.steps} steps, "
            f"{result.rounds} rounds; U-Net {result.unet_gflops_per_step:.0f} GFLOP per step (CFG batch 2)")
    lines = [head, "| level | s/image (min-max) | CPU s | steps/s | ratio to diffusers (min-max) | speed-up | CPU-time ratio | peak RAM MB | peak VRAM MB | U-Net s/step | GPU util |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result.rows:
        vram = f"{r.peak_vram_mb:.0f}" if r.peak_vram_mb else "-"
        unet = f"{r.unet_s_per_step:.3f}" if r.unet_s_per_step else "-"
        util = f"{r.utilisation:.0%}" if r.utilisation else "-"
        lines.append(f"| {r.level} | {r.s_per_image:.2f} ({r.spread[0]:.2f}-{r.spread[1]:.2f}) | {r.cpu_s_per_image:.2f} | {r.steps_per_s:.2f} | "
                     f"{r.ratio:.3f} ({r.ratio_spread[0]:.3f}-{r.ratio_spread[1]:.3f}) | {r.speedup:.2f}x | {r.cpu_ratio:.3f} | {r.peak_ram_mb:.0f} | {vram} | {unet} | {util} |")
    return "\n".join(lines)
