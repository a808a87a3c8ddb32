"""Peak RAM of the OpenVINO path: the ``cepat`` package (SD-Turbo layout, random weights) with --fast --optimize openvino.

Run 1 converts the U-Net at this size (announced, saved), run 2 reads nothing new; per run the
peak RSS of that generation (Linux VmHWM, reset per generation), the RSS after it, and whether
the PyTorch U-Net weights were freed. Byte counts, so a busy machine does not change them much.

    python benchmarks/openvino_memory.py --arch sd2 --size 512 [--home /tmp/ov-home]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="sd2")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--home", default=None, help="GAMBARKAN_HOME (holds the converted IR; default: a new temp folder)")
    args = parser.parse_args()
    os.environ["GAMBARKAN_HOME"] = args.home or tempfile.mkdtemp(prefix="gambarkan-ovmem-")

    import logging

    logging.basicConfig(format="%(message)s")
    from gambarkan.bench import cpu_info, full_size_pipeline, random_taesd
    from gambarkan.engine.generate import Engine
    from gambarkan.engine.optimize import set_taesd
    from gambarkan.request import GenerationRequest

    pipe = full_size_pipeline(args.arch)
    set_taesd(pipe, random_taesd(args.arch))
    params = {name: sum(p.numel() for p in getattr(pipe, name).parameters()) for name in ("unet", "text_encoder", "vae")}
    engine = Engine(history=False)
    engine.register("cepat-random", pipe, args.arch)
    report = {"arch": args.arch, "size": args.size, "cpu": cpu_info(), "params": params, "rss_after_build_mb": rss_mb(), "runs": []}
    for i in range(args.runs):
        request = GenerationRequest(prompt="a photo of a cat", model="cepat-random", steps=1, cfg=0.0, sampler="Euler a", width=args.size,
                                    height=args.size, seed=1, device="cpu", dtype="fp32", translate=False, save=False, fast=True, optimize="openvino")
        result = engine.generate(request)
        wrapper = pipe.unet
        report["runs"].append({
            "run": i + 1, "peak_ram_mb": result.timings.get("peak_ram_mb"), "rss_after_mb": rss_mb(), "total_s": result.timings.get("total"),
            "unet_s": result.timings.get("unet"), "optimizations": result.extra.get("optimizations"),
            "torch_unet_weights_freed": bool(getattr(wrapper, "weights_dropped", False)),
        })
        print(json.dumps(report["runs"][-1]), flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
