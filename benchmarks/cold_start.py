"""Cold start: seconds from the command to the first PNG, gambarkan CLI vs a plain diffusers script.

Each trial is a fresh process (imports, loading the weights, one generation, PNG written), the
two commands alternate, and the median and spread are printed with gambarkan's own --json
``load`` and ``cold_start`` timings. Without --model a full-size SD 1.5 with random weights is
saved once to --dir (speed does not depend on the weights).

Both sides run the same sampler, steps, CFG, size, seed and torch thread count (plain diffusers
gets the scheduler class and options gambarkan builds for --sampler), and the two PNGs are compared.

    python benchmarks/cold_start.py --dir /tmp/sd15-random --rounds 5 --size 256 --steps 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAIN = """
import json, sys, torch
import diffusers
from diffusers import StableDiffusionPipeline
model, size, steps, cfg, out, scheduler, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], json.loads(sys.argv[6]), int(sys.argv[7])
torch.set_num_threads(threads)
pipe = StableDiffusionPipeline.from_pretrained(model, safety_checker=None, requires_safety_checker=False)
pipe.scheduler = getattr(diffusers, scheduler["class"]).from_config(pipe.scheduler.config, **scheduler["options"])
image = pipe("a photo of a cat", num_inference_steps=steps, guidance_scale=cfg, width=size, height=size,
             generator=torch.Generator("cpu").manual_seed(1)).images[0]
image.save(out)
"""


def scheduler_for(model: Path, sampler: str) -> dict[str, object]:
    """The scheduler class and options gambarkan builds for ``sampler``, so plain diffusers runs the same one."""
    from gambarkan.engine.samplers import make_scheduler

    config = json.loads((model / "scheduler" / "scheduler_config.json").read_text())
    built = make_scheduler(sampler, config)
    options = {k: v for k, v in dict(built.config).items() if not k.startswith("_") and config.get(k) != v}
    return {"class": type(built).__name__, "options": options}


def ensure_model(directory: Path) -> Path:
    if (directory / "model_index.json").is_file():
        return directory
    from gambarkan.testing import full_size_sd15_pipeline

    full_size_sd15_pipeline().save_pretrained(directory, safe_serialization=True)
    return directory


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600, check=False)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{run.stderr[-2000:]}")
    return wall, run.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="diffusers folder to load (default: random full-size SD 1.5 in --dir)")
    parser.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "gambarkan-bench-sd15-random"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--cfg", type=float, default=7.0)
    parser.add_argument("--sampler", default="Euler")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for both (default: one per physical core)")
    args = parser.parse_args()
    from gambarkan.cpufeatures import detect

    cpu = detect()
    threads = args.threads or cpu.physical_cores
    model = Path(args.model) if args.model else ensure_model(Path(args.dir))
    scheduler = scheduler_for(model, args.sampler)
    out = Path(tempfile.mkdtemp(prefix="gambarkan-cold-"))
    env = {**os.environ, "GAMBARKAN_HOME": str(out / "home"), "HF_HUB_OFFLINE": "1", "GAMBARKAN_THREADS": str(threads)}
    # The same sampler, steps, CFG, size, seed, prompt (no style words, no translation) and threads on both sides.
    ours_cmd = [sys.executable, "-m", "gambarkan", "generate", "a photo of a cat", "--model", str(model), "-s", str(args.steps),
                "-W", str(args.size), "-H", str(args.size), "--cfg", str(args.cfg), "--sampler", args.sampler, "--seed", "1",
                "--no-translate", "--no-style", "--json", "-o", str(out / "ours"), "--offline"]
    plain_cmd = [sys.executable, "-c", PLAIN, str(model), str(args.size), str(args.steps), str(args.cfg), str(out / "plain.png"),
                 json.dumps(scheduler), str(threads)]
    first_hash, _ = timed(ours_cmd, env)  # first run also hashes the weights once (cached after)
    walls: dict[str, list[float]] = {"diffusers": [], "gambarkan": []}
    loads: list[float] = []
    colds: list[float] = []
    last_ours = ""
    for i in range(args.rounds):
        order = [("diffusers", plain_cmd), ("gambarkan", ours_cmd)]
        for name, cmd in order if i % 2 == 0 else reversed(order):
            wall, stdout = timed(cmd, env)
            walls[name].append(wall)
            if name == "gambarkan":
                data = json.loads(stdout)
                timings = data["timings"]
                loads.append(timings.get("load", 0.0))
                colds.append(timings.get("cold_start", 0.0))
                last_ours = data["images"][0]["path"]
    from PIL import Image

    from gambarkan.bench import image_diff

    diff = image_diff(Image.open(out / "plain.png"), Image.open(last_ours))
    print(f"CPU {cpu.describe(threads)}")
    print(f"sampler {args.sampler} ({scheduler['class']}), cfg {args.cfg}, same on both sides; max pixel difference of the two PNGs {diff}/255")
    print(f"model {model}, {args.size}x{args.size}, {args.steps} step(s), {args.rounds} rounds; first gambarkan run incl. weight hashing {first_hash:.1f}s")
    for name, values in walls.items():
        print(f"{name}: command to PNG median {statistics.median(values):.2f}s (min {min(values):.2f}, max {max(values):.2f})")
    print(f"gambarkan --json: load median {statistics.median(loads):.2f}s, cold_start (process start to image) median {statistics.median(colds):.2f}s")
    ratios = [g / d for g, d in zip(walls["gambarkan"], walls["diffusers"])]
    print(f"ratio gambarkan/diffusers (wall, per round): median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
