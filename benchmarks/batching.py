"""Does batching queued jobs pay? N jobs run one by one against the same N in one shared call.

Full-size architecture with random weights (speed does not depend on the weights), the same
Engine and pipeline for both ways, alternating every round. ``gambarkan serve --batch auto``
batches only on CUDA; this script is how that choice is checked on a machine.

    python benchmarks/batching.py [--arch sd15|sdxl] [--jobs 4] [--size 256] [--steps 4] [--rounds 2] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    import torch

    from gambarkan.bench import full_size_pipeline
    from gambarkan.engine.batch import generate_batch
    from gambarkan.engine.generate import Engine
    from gambarkan.request import GenerationRequest

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="sd15", choices=["sd15", "sd2", "sdxl"])
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    dtype = "fp16" if args.device == "cuda" else "fp32"
    pipe = full_size_pipeline(args.arch)
    if args.device == "cuda":
        pipe.to("cuda", torch.float16)
    engine = Engine(history=False)
    engine.register("random-full-size", pipe, args.arch, device=args.device, dtype=dtype)
    requests = [
        GenerationRequest(prompt=f"a photo of a cat, variant {i}", model="random-full-size", steps=args.steps, seed=i,
                          width=args.size, height=args.size, device=args.device, dtype=dtype, translate=False, save=False)
        for i in range(args.jobs)
    ]  # fmt: skip

    def alone() -> float:
        start = time.perf_counter()
        for request in requests:
            engine.generate(request)
        return time.perf_counter() - start

    def together() -> float:
        start = time.perf_counter()
        outcomes = generate_batch(engine, requests)
        assert all(o.extra.get("batched_with") == len(requests) - 1 for o in outcomes), outcomes
        return time.perf_counter() - start

    alone(), together()  # warm-up (allocator, kernels)
    times: dict[str, list[float]] = {"alone": [], "together": []}
    for i in range(args.rounds):
        for name in (("alone", "together") if i % 2 == 0 else ("together", "alone")):
            times[name].append(alone() if name == "alone" else together())
    a, t = statistics.median(times["alone"]), statistics.median(times["together"])
    print(f"{args.arch} {args.size}x{args.size}, {args.steps} steps, {args.jobs} jobs on {args.device} ({torch.get_num_threads()} threads)")
    print(f"one by one: {a:.2f}s  one batch: {t:.2f}s  speed-up {a / t:.2f}x  (rounds: {times})")


if __name__ == "__main__":
    main()
