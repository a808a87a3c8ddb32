"""What pixels and batch cost: s/image and peak RAM of the ``cepat`` path at several sizes and batch sizes.

SD-Turbo architecture (SD 2.x base, random weights), 1 step, cfg 0, Euler a, through the engine,
one process, every (size, batch) cell run ``--rounds`` times in a rotated order after a warm-up.
Prints the CPU's features, the thread count, and min / median / max per cell.

    python benchmarks/scaling.py --sizes 256,512,768 --batches 1,2,4 --rounds 5 [--fast] [--openvino] [--json]
    python benchmarks/scaling.py --arch tiny-sd15 --sizes 64,128 --batches 1,2 --rounds 2    # seconds, to try it
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="sd2", help="sd2 (SD-Turbo layout), sd15, tiny-sd15")
    parser.add_argument("--sizes", default="256,512,768")
    parser.add_argument("--batches", default="1,2,4")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--fast", action="store_true", help="--fast (TAESD decode, bf16 where the CPU has it)")
    parser.add_argument("--openvino", action="store_true", help="--optimize openvino (converts once per cell in the warm-up)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from gambarkan.bench import cpu_info, full_size_pipeline, random_taesd, same_threads
    from gambarkan.engine.generate import Engine
    from gambarkan.engine.optimize import set_taesd
    from gambarkan.request import GenerationRequest

    sizes = [int(s) for s in args.sizes.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    pipe = full_size_pipeline(args.arch)
    set_taesd(pipe, random_taesd(args.arch))
    engine = Engine(history=False)
    engine.register("scaling-model", pipe, args.arch.removeprefix("tiny-"))
    out = tempfile.mkdtemp(prefix="gambarkan-scaling-")
    cells = [(s, b) for s in sizes for b in batches]
    walls: dict[tuple[int, int], list[float]] = {c: [] for c in cells}
    peaks: dict[tuple[int, int], list[float]] = {c: [] for c in cells}

    def run(size: int, batch: int) -> tuple[float, float]:
        request = GenerationRequest(prompt="a photo of a cat", model="scaling-model", steps=1, cfg=0.0, sampler="Euler a", width=size, height=size,
                                    batch_size=batch, seed=1, device="cpu", dtype="fp32", translate=False, out_dir=out, fast=args.fast,
                                    optimize="openvino" if args.openvino else None)
        start = time.perf_counter()
        result = engine.generate(request)
        return (time.perf_counter() - start) / batch, result.timings.get("peak_ram_mb", 0.0)

    with same_threads(args.threads) as threads:
        for cell in cells:
            run(*cell)  # warm-up (and the OpenVINO conversion of this shape)
        for i in range(args.rounds):
            for cell in cells[i % len(cells):] + cells[: i % len(cells)]:
                wall, peak = run(*cell)
                walls[cell].append(wall)
                peaks[cell].append(peak)
    cpu = cpu_info(threads)
    rows = [{"size": s, "batch": b, "s_per_image": statistics.median(walls[(s, b)]), "min": min(walls[(s, b)]), "max": max(walls[(s, b)]),
             "peak_ram_mb": max(peaks[(s, b)])} for s, b in cells]
    if args.json:
        print(json.dumps({"arch": args.arch, "fast": args.fast, "openvino": args.openvino, "rounds": args.rounds, "cpu": cpu, "rows": rows}))
        return
    print(f"{args.arch}, 1 step, cfg 0, Euler a{', --fast' if args.fast else ''}{', openvino' if args.openvino else ''}; {args.rounds} rounds; "
          f"CPU {cpu['name']}: {cpu['summary']}; {threads} torch threads")
    print("| size | batch | s/image median (min-max) | peak RAM MB |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']}x{r['size']} | {r['batch']} | {r['s_per_image']:.2f} ({r['min']:.2f}-{r['max']:.2f}) | {r['peak_ram_mb']:.0f} |")


if __name__ == "__main__":
    main()
