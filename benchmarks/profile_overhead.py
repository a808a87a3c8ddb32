"""Engine overhead, stage by stage: gambarkan's generate() against the plain diffusers call, one pipeline.

Both sides run alternately in one process with the same torch threads, sampler, steps, CFG,
size and seed. Per side and stage (text encoder, U-Net, VAE decoder, the rest of the pipeline
call, and the engine's own work outside the call) the min / median / max of wall and CPU
seconds, then a pyinstrument profile of one call of each side (``--profile DIR``).

    python benchmarks/profile_overhead.py --model tiny --rounds 20
    python benchmarks/profile_overhead.py --model small-sd2 --size 256 --steps 1 --cfg 0 --sampler "Euler a" --rounds 5 --profile /tmp/prof

``small-sd2``: the SD 2.x / SD-Turbo layout (linear projections, per-block heads, 1024-wide
text) at a quarter of the channels, random weights, so a run takes seconds, not a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
PROMPT = "a photo of a cat sitting on a sofa, soft light, highly detailed"


def small_sd2() -> Any:
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from gambarkan.bench import SD2_FULL_TEXT, SD2_FULL_UNET
    from gambarkan.testing import SCHEDULER, SD15_FULL_VAE, tiny_clip_tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**{**SD2_FULL_UNET, "block_out_channels": (96, 192, 320, 320), "attention_head_dim": (2, 4, 4, 4)})
    vae = AutoencoderKL(**{**SD15_FULL_VAE, "block_out_channels": (32, 64, 128, 128)})
    text = CLIPTextModel(CLIPTextConfig(**{**SD2_FULL_TEXT, "num_hidden_layers": 6}))
    scheduler = EulerDiscreteScheduler(**{k: v for k, v in SCHEDULER.items() if k not in ("clip_sample", "set_alpha_to_one")})
    pipe = StableDiffusionPipeline(unet=unet.eval(), vae=vae.eval(), text_encoder=text.eval(), tokenizer=tiny_clip_tokenizer(), scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build(name: str) -> tuple[Any, str]:
    if name == "tiny":
        from gambarkan.testing import tiny_pipeline

        return tiny_pipeline("sd15"), "sd15"
    if name == "small-sd2":
        return small_sd2(), "sd2"
    from gambarkan.bench import full_size_pipeline

    return full_size_pipeline(name), name


class CallClock:
    """Seconds spent inside the pipeline's ``__call__`` (the rest of the engine's time is its own)."""

    def __init__(self, pipe: Any) -> None:
        self.wall = self.cpu = 0.0
        original = type(pipe).__call__
        clock = self

        def timed(this: Any, *args: Any, **kwargs: Any) -> Any:
            t, c = time.perf_counter(), time.process_time()
            try:
                return original(this, *args, **kwargs)
            finally:
                clock.wall += time.perf_counter() - t
                clock.cpu += time.process_time() - c

        pipe.__class__ = type(type(pipe).__name__, (type(pipe),), {"__call__": timed})


def stats(values: list[float]) -> str:
    return f"{min(values):.4f} / {statistics.median(values):.4f} / {max(values):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny, small-sd2, sd15, sd2 (random weights)")
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--cfg", type=float, default=7.0)
    parser.add_argument("--sampler", default="Euler")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--profile", default=None, help="folder for pyinstrument text profiles of one call of each side")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    from gambarkan.bench import cpu_info, image_diff, same_threads
    from gambarkan.engine.generate import Engine
    from gambarkan.engine.optimize import StageTimer, revert
    from gambarkan.engine.samplers import make_scheduler
    from gambarkan.request import GenerationRequest

    pipe, arch = build(args.model)
    size = args.size or (64 if args.model == "tiny" else 256)
    engine = Engine(history=False)
    engine.register("bench-model", pipe, arch)
    plain_scheduler = make_scheduler(args.sampler, dict(pipe.scheduler.config))
    request = GenerationRequest(prompt=PROMPT, model="bench-model", steps=args.steps, width=size, height=size, cfg=args.cfg, sampler=args.sampler,
                                seed=1, device="cpu", dtype="fp32", save=False, translate=False, style=False)
    clock = CallClock(pipe)
    rows: dict[str, dict[str, list[float]]] = {"plain": {}, "ours": {}}
    images: dict[str, Any] = {}

    def record(side: str, key: str, value: float) -> None:
        rows[side].setdefault(key, []).append(value)

    def plain() -> None:
        revert(pipe)
        pipe.scheduler = plain_scheduler
        generator = torch.Generator("cpu").manual_seed(1)
        images["plain"] = pipe(PROMPT, num_inference_steps=args.steps, guidance_scale=args.cfg, width=size, height=size, generator=generator).images[0]

    def ours() -> None:
        images["ours"] = engine.generate(request).images[0].image

    def timed(side: str, fn: Any) -> None:
        clock.wall = clock.cpu = 0.0
        with StageTimer(pipe, "cpu") as stages:  # the same hooks on both sides
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall, cpu = time.perf_counter() - t, time.process_time() - c
        record(side, "total wall", wall)
        record(side, "total cpu", cpu)
        for stage, seconds in stages.seconds.items():
            record(side, stage, seconds)
        record(side, "other (scheduler, callbacks, image)", wall - sum(stages.seconds.values()))
        record(side, "outside the pipeline call", wall - clock.wall)  # the engine encodes the prompt there

    with same_threads(args.threads) as threads:
        plain()
        ours()
        for i in range(args.rounds):
            pair = [("plain", plain), ("ours", ours)]
            for side, fn in pair if i % 2 == 0 else reversed(pair):
                timed(side, fn)
        if args.profile:
            from pyinstrument import Profiler

            folder = Path(args.profile)
            folder.mkdir(parents=True, exist_ok=True)
            for side, fn in (("plain", plain), ("ours", ours)):
                profiler = Profiler(interval=0.0005)
                profiler.start()
                fn()
                profiler.stop()
                (folder / f"{args.model}-{side}.txt").write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    diff = image_diff(images["plain"], images["ours"])
    report = {"model": args.model, "size": size, "steps": args.steps, "cfg": args.cfg, "sampler": args.sampler, "rounds": args.rounds,
              "cpu": cpu_info(threads), "image_diff": diff, "rows": rows}
    if args.json:
        print(json.dumps(report))
        return
    print(f"{args.model} {size}x{size}, {args.steps} steps, cfg {args.cfg}, {args.sampler}, {args.rounds} rounds; "
          f"CPU {report['cpu']['name']}: {report['cpu']['summary']}; {threads} torch threads on both sides; max pixel difference {diff}/255")
    print(f"{'stage (seconds, min / median / max)':34} | {'plain diffusers':26} | {'gambarkan':26} | median difference")
    for key in rows["ours"]:
        p, o = rows["plain"].get(key, [0.0]), rows["ours"][key]
        print(f"{key:34} | {stats(p):26} | {stats(o):26} | {statistics.median(o) - statistics.median(p):+.4f}")
    ratio = [o / p for o, p in zip(rows["ours"]["total wall"], rows["plain"]["total wall"])]
    cpu_ratio = [o / p for o, p in zip(rows["ours"]["total cpu"], rows["plain"]["total cpu"])]
    print(f"ratio wall median {statistics.median(ratio):.3f} ({min(ratio):.3f}-{max(ratio):.3f}); CPU time {statistics.median(cpu_ratio):.3f} "
          f"({min(cpu_ratio):.3f}-{max(cpu_ratio):.3f})")
    if args.profile:
        print(f"pyinstrument profiles: {args.profile}/{args.model}-plain.txt, {args.model}-ours.txt", file=sys.stderr)


if __name__ == "__main__":
    main()
