"""The ``cepat`` package path on CPU: SD-Turbo architecture (SD 2.x base, random weights), 512x512,
1 step, no classifier-free guidance (cfg 0), per stage (text encoder, U-Net, decoder, PNG),
default (lossless) against --fast (TAESD decode + bf16 autocast where the CPU has bf16).

    python benchmarks/cepat_cpu.py 3 512 [--openvino]    # rounds, size; --openvino adds fast + OpenVINO bf16
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time


def main() -> None:
    import torch

    from gambarkan.bench import full_size_pipeline, random_taesd
    from gambarkan.engine.generate import Engine
    from gambarkan.engine.optimize import cpu_has_bf16, set_taesd
    from gambarkan.request import GenerationRequest

    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    size = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 512
    t = time.perf_counter()
    pipe = full_size_pipeline("sd2")
    set_taesd(pipe, random_taesd("sd2"))
    from gambarkan.cpufeatures import detect

    print(f"built in {time.perf_counter() - t:.1f}s; CPU {detect().describe(torch.get_num_threads())}; bf16 used by --fast: {cpu_has_bf16()}", flush=True)
    engine = Engine(history=False)
    engine.register("sd-turbo-random", pipe, "sd2")
    out = tempfile.mkdtemp(prefix="gambarkan-cepat-")
    levels = {"default": {}, "fast": {"fast": True}, "fast-taesd-only": {"fast": True, "optimize": "-bf16_autocast"}}
    if "--openvino" in sys.argv:
        levels["fast-openvino"] = {"fast": True, "optimize": "openvino"}
    results: dict[str, list[dict[str, float]]] = {k: [] for k in levels}

    def run(extra: dict) -> dict[str, float]:
        request = GenerationRequest(prompt="a photo of a cat", model="sd-turbo-random", steps=1, cfg=0.0, sampler="Euler a",
                                    width=size, height=size, seed=1, device="cpu", dtype="fp32", translate=False, out_dir=out, **extra)
        start = time.perf_counter()
        result = engine.generate(request)
        timings = dict(result.timings)
        timings["wall"] = time.perf_counter() - start
        return timings

    for extra in levels.values():
        run(extra)  # warm-up
    for i in range(rounds):
        names = list(levels)
        names = names[i % len(names):] + names[: i % len(names)]
        for name in names:
            results[name].append(run(levels[name]))
        print(f"round {i + 1}/{rounds}", flush=True)
    for name, runs in results.items():
        keys = ("wall", "encode", "unet", "decode", "save", "peak_ram_mb")
        parts = []
        for k in keys:
            values = [r.get(k, 0.0) for r in runs]
            parts.append(f"{k} {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})")
        print(f"{name}: " + ", ".join(parts))


if __name__ == "__main__":
    main()
