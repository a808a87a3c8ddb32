"""Engine overhead: gambarkan's generate() against the plain diffusers call on the tiny model,
alternating, then a cProfile of the engine path (fixed costs show up large on a tiny model).

    python benchmarks/overhead.py 20      # rounds
"""

from __future__ import annotations

import cProfile
import os
import pstats
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    from gambarkan.bench import BENCH_PROMPT, _plain_diffusers
    from gambarkan.engine.generate import Engine
    from gambarkan.engine.samplers import make_scheduler
    from gambarkan.request import GenerationRequest
    from gambarkan.testing import tiny_pipeline

    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    pipe = tiny_pipeline("sd15")
    engine = Engine(history=False)
    engine.register("tiny", pipe)
    pipe.scheduler = make_scheduler("Euler", dict(pipe.scheduler.config))
    request = GenerationRequest(prompt=BENCH_PROMPT, model="tiny", steps=4, width=64, height=64, cfg=7.0, sampler="Euler",
                                seed=1, device="cpu", dtype="fp32", save=False, translate=False)

    def ours() -> None:
        engine.generate(request)

    def plain() -> None:
        _plain_diffusers(pipe, 1, 64, 64, 4, 7.0)

    ours()
    plain()
    times: dict[str, list[float]] = {"plain": [], "ours": []}
    cpu: dict[str, list[float]] = {"plain": [], "ours": []}
    for i in range(rounds):
        pair = [("plain", plain), ("ours", ours)]
        for name, fn in pair if i % 2 == 0 else reversed(pair):
            t, c = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    for kind, data in (("wall", times), ("cpu", cpu)):
        p, o = statistics.median(data["plain"]), statistics.median(data["ours"])
        print(f"{kind}: plain {p:.4f}s  gambarkan {o:.4f}s  ratio {o / p:.3f}  difference {o - p:+.4f}s")
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(5):
        ours()
    profile.disable()
    pstats.Stats(profile).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
