"""Cold start: seconds from the command to the first PNG, gambarkan CLI vs a plain diffusers script.

Each trial is a fresh process (imports, loading the weights, one generation, PNG written), the
two commands alternate, and the median and spread are printed with gambarkan's own --json
``load`` and ``cold_start`` timings. Without --model a full-size SD 1.5 with random weights is
saved once to --dir (speed does not depend on the weights).

    python benchmarks/cold_start.py --dir /tmp/sd15-random --rounds 3 --size 256 --steps 1
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
import sys, torch
from diffusers import StableDiffusionPipeline
pipe = StableDiffusionPipeline.from_pretrained(sys.argv[1], safety_checker=None, requires_safety_checker=False)
size, steps = int(sys.argv[2]), int(sys.argv[3])
image = pipe("a photo of a cat", num_inference_steps=steps, width=size, height=size,
             generator=torch.Generator("cpu").manual_seed(1)).images[0]
image.save(sys.argv[4])
"""


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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=1)
    args = parser.parse_args()
    model = Path(args.model) if args.model else ensure_model(Path(args.dir))
    out = Path(tempfile.mkdtemp(prefix="gambarkan-cold-"))
    env = {**os.environ, "GAMBARKAN_HOME": str(out / "home"), "HF_HUB_OFFLINE": "1"}
    ours_cmd = [sys.executable, "-m", "gambarkan", "generate", "a photo of a cat", "--model", str(model), "-s", str(args.steps),
                "-W", str(args.size), "-H", str(args.size), "--seed", "1", "--no-translate", "--json", "-o", str(out / "ours"), "--offline"]
    plain_cmd = [sys.executable, "-c", PLAIN, str(model), str(args.size), str(args.steps), str(out / "plain.png")]
    first_hash, _ = timed(ours_cmd, env)  # first run also hashes the weights once (cached after)
    walls: dict[str, list[float]] = {"diffusers": [], "gambarkan": []}
    loads: list[float] = []
    colds: list[float] = []
    for i in range(args.rounds):
        order = [("diffusers", plain_cmd), ("gambarkan", ours_cmd)]
        for name, cmd in order if i % 2 == 0 else reversed(order):
            wall, stdout = timed(cmd, env)
            walls[name].append(wall)
            if name == "gambarkan":
                timings = json.loads(stdout)["timings"]
                loads.append(timings.get("load", 0.0))
                colds.append(timings.get("cold_start", 0.0))
    print(f"model {model}, {args.size}x{args.size}, {args.steps} step(s), {args.rounds} rounds; first gambarkan run incl. weight hashing {first_hash:.1f}s")
    for name, values in walls.items():
        print(f"{name}: command to PNG median {statistics.median(values):.2f}s (min {min(values):.2f}, max {max(values):.2f})")
    print(f"gambarkan --json: load median {statistics.median(loads):.2f}s, cold_start (process start to image) median {statistics.median(colds):.2f}s")
    print(f"ratio gambarkan/diffusers: {statistics.median(walls['gambarkan']) / statistics.median(walls['diffusers']):.3f}")


if __name__ == "__main__":
    main()
