"""Rows per minute: ``gambarkan batch FILE`` (one process, model loaded once) against the same rows
as one ``gambarkan generate`` call each (a process start and a model load per row).

Real CLI processes with a tiny random-weight SD 1.5 model (64x64, 2 steps by default), so the
figure is mostly what a row costs beyond the denoising itself; with a real model the gap is
the model load per call. Optional ``--ray``: the batch again through ``--ray`` (local Ray),
for Ray's overhead per row. Figures need a quiet machine.

    python benchmarks/batch_rows.py [--rows 6] [--steps 2] [--size 64] [--ray]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gambarkan", *args], env=env, check=False, capture_output=True, text=True)
    return time.perf_counter() - started


def main() -> None:
    from gambarkan.testing import save_tiny_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--ray", action="store_true", help="also time gambarkan batch --ray (needs gambarkan[ray])")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = save_tiny_model(root / "tiny", "sd15")
        env = {**os.environ, "GAMBARKAN_HOME": str(root / "home"), "HF_HUB_OFFLINE": "1"}
        prompts = [f"kucing nomor {i}" for i in range(args.rows)]
        (root / "rows.txt").write_text("\n".join(prompts) + "\n", encoding="utf-8")
        common = ["-m", str(model), "--steps", str(args.steps), "-W", str(args.size), "-H", str(args.size), "--no-translate", "--seed", "1", "-q"]
        one_by_one = sum(_run(["generate", p, *common, "-o", str(root / "single")], env) for p in prompts)
        batch = _run(["batch", str(root / "rows.txt"), *common, "-o", str(root / "batch")], env)
        made = len(list((root / "batch").glob("*.png"))), len(list((root / "single").glob("*.png")))
        print(f"{args.rows} rows, {args.size}x{args.size}, {args.steps} steps (images: batch {made[0]}, one by one {made[1]})")
        print(f"one by one : {one_by_one:7.1f} s  {args.rows / one_by_one * 60:7.1f} rows/min")
        print(f"batch      : {batch:7.1f} s  {args.rows / batch * 60:7.1f} rows/min  ({one_by_one / batch:.1f}x)")
        if args.ray:
            ray_batch = _run(["batch", str(root / "rows.txt"), "--ray", *common, "-o", str(root / "ray")], env)
            print(f"batch --ray: {ray_batch:7.1f} s  {args.rows / ray_batch * 60:7.1f} rows/min  "
                  f"(Ray start + actors included; {(ray_batch - batch) / args.rows:+.1f} s/row vs batch)")  # fmt: skip


if __name__ == "__main__":
    main()
