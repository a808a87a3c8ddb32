"""One U-Net step (batch 2 = CFG) of full-size SD 1.5: PyTorch fp32 / bf16 autocast vs OpenVINO
(f32 and bf16 precision hints, static shapes), alternating in one process.

    pip install openvino
    python benchmarks/openvino_unet.py 256 5 [threads]     # resolution, rounds, CPU threads (default: torch's)
"""
import datetime
import statistics
import sys
import time

import numpy as np
import openvino as ov
import torch

from gambarkan.testing import full_size_sd15_pipeline

res = int(sys.argv[1]); rounds = int(sys.argv[2])
threads = int(sys.argv[3]) if len(sys.argv) > 3 else torch.get_num_threads()
torch.set_num_threads(threads)
pipe = full_size_sd15_pipeline(); unet = pipe.unet.eval()
x = torch.randn(2, 4, res // 8, res // 8); e = torch.randn(2, 77, 768); ts = torch.tensor([500.0, 500.0])
class Wrap(torch.nn.Module):
    def __init__(s, u): super().__init__(); s.u = u
    def forward(s, x, t, e): return s.u(x, t, encoder_hidden_states=e, return_dict=False)[0]
t0 = time.perf_counter()
with torch.no_grad():
    model = ov.convert_model(Wrap(unet), example_input=(x, ts, e))
print("convert", time.perf_counter() - t0, flush=True)
core = ov.Core()
compiled = {}
for prec in ("f32", "bf16"):
    t0 = time.perf_counter()
    compiled[prec] = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": prec, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads})
    print("compile", prec, time.perf_counter() - t0, flush=True)
inputs = [x.numpy(), ts.numpy(), e.numpy()]
with torch.no_grad():
    ref = Wrap(unet)(x, ts, e).numpy()
def torch_run():
    with torch.no_grad(): Wrap(unet)(x, ts, e)
def torch_bf16():
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16): Wrap(unet)(x, ts, e)
def ov_run(prec):
    req = compiled[prec].create_infer_request()
    return lambda: req.infer(inputs)
for prec in compiled:
    out = list(compiled[prec].create_infer_request().infer(inputs).values())[0]
    print(prec, "max abs diff vs torch", float(np.abs(out - ref).max()), "ref scale", float(np.abs(ref).max()), flush=True)
fns = {"torch_fp32": torch_run, "torch_bf16_autocast": torch_bf16, "ov_f32": ov_run("f32"), "ov_bf16": ov_run("bf16")}
for f in fns.values(): f()
times = {k: [] for k in fns}; cpu = {k: [] for k in fns}
for i in range(rounds):
    names = list(fns); names = names[i % 4:] + names[:i % 4]
    for k in names:
        t, c = time.perf_counter(), time.process_time(); fns[k](); times[k].append(time.perf_counter() - t); cpu[k].append(time.process_time() - c)
print(datetime.datetime.now().isoformat(), f"res {res} batch 2, rounds {rounds}, threads {threads}, openvino {ov.__version__}, torch {torch.__version__}")
base = statistics.median(times["torch_fp32"])
for k in fns:
    m = statistics.median(times[k])
    print(f"{k}: median {m:.3f}s (min {min(times[k]):.3f} max {max(times[k]):.3f}) cpu {statistics.median(cpu[k]):.3f}s  vs torch fp32 {base/m:.2f}x", flush=True)
