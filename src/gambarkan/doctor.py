"""``gambarkan doctor`` checks: versions, device, memory, disk, caches, network, and a tiny end-to-end run."""

from __future__ import annotations

import importlib.metadata
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gambarkan.config import Settings

HUB_URL = "https://huggingface.co/api/models?limit=1"


@dataclass
class Check:
    """One line of the report: ok, warn or fail, with a fix when not ok."""

    name: str
    status: str  # "ok" | "warn" | "fail"
    detail: str
    fix: str = ""


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_packages() -> list[Check]:
    checks = []
    for package in ("torch", "diffusers", "transformers", "accelerate", "safetensors", "huggingface_hub", "peft"):
        version = _version(package)
        if version:
            checks.append(Check(package, "ok", version))
        else:
            checks.append(Check(package, "fail", "not installed", f"pip install {package}"))
    return checks


def check_device() -> list[Check]:
    import torch

    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        name = torch.cuda.get_device_name(0)
        status = "ok" if total >= 3.5 * 2**30 else "warn"
        return [Check("device", status, f"CUDA: {name}, {free / 2**30:.1f} of {total / 2**30:.1f} GiB free", "" if status == "ok" else "use --memory minimal")]
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return [Check("device", "ok", "Apple MPS")]
    return [Check("device", "warn", f"CPU only ({torch.get_num_threads()} threads): a 512x512 image takes minutes", "use the 'cepat' package or a GPU (e.g. Colab T4)")]


def check_cpu() -> Check:
    """The CPU's vector features and thread count: what ``--fast`` and the benchmarks depend on."""
    from gambarkan.cpufeatures import detect, torch_threads

    cpu = detect()
    detail = cpu.describe(torch_threads())
    if not cpu.avx2:
        return Check("CPU", "warn", detail, "no AVX2: PyTorch runs its slowest kernels here; use a GPU or the 'cepat' package")
    if not cpu.bf16:
        return Check("CPU", "ok", detail + "; --fast uses no bf16 here (emulated bf16 is slower than fp32)")
    return Check("CPU", "ok", detail + "; --fast uses bf16")


def check_memory_and_disk(settings: Settings) -> list[Check]:
    import psutil

    checks = []
    ram = psutil.virtual_memory()
    status = "ok" if ram.available >= 6 * 2**30 else "warn"
    checks.append(Check("RAM", status, f"{ram.available / 2**30:.1f} of {ram.total / 2**30:.1f} GiB free", "" if status == "ok" else "close other programs; SD needs about 6 GiB"))
    for label, folder in (("outputs", settings.output_dir), ("model cache", _hf_cache())):
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        free = shutil.disk_usage(existing).free
        status = "ok" if free >= 10 * 2**30 else ("warn" if free >= 2**30 else "fail")
        checks.append(Check(f"disk ({label})", status, f"{folder}: {free / 2**30:.1f} GiB free", "" if status == "ok" else "free disk space; a model needs 2-7 GiB"))
    return checks


def _hf_cache() -> Path:
    from huggingface_hub.constants import HF_HUB_CACHE

    return Path(HF_HUB_CACHE)


def check_network(timeout: float = 3.0, url: str = HUB_URL) -> Check:
    """Can the Hub be reached? ``url`` is for tests (a local server that answers, or a closed port)."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed https URL)
            return Check("Hugging Face Hub", "ok", f"reachable (HTTP {response.status})")
    except Exception as exc:  # any network failure means the same to the user
        reason = getattr(exc, "reason", exc)
        return Check("Hugging Face Hub", "warn", f"not reachable ({reason})", "models must already be downloaded; use --model PATH or --offline")


def check_tiny_generation(settings: Settings) -> Check:
    """Save a tiny model to disk, load it through the engine, make an image, check its pixels."""
    import numpy as np

    from gambarkan.engine.generate import Engine
    from gambarkan.request import GenerationRequest
    from gambarkan.testing import save_tiny_model

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gambarkan-doctor-") as tmp:
        model_dir = save_tiny_model(Path(tmp) / "tiny")
        engine = Engine(Settings(**{**asdict(settings), "cache_dir": Path(tmp) / "cache"}), history=False)
        result = engine.generate(GenerationRequest(prompt="a cat", model=str(model_dir), steps=2, width=64, height=64, seed=1, out_dir=str(Path(tmp) / "out"), translate=False))
        pixels = np.asarray(result.images[0].image)
        saved = result.images[0].path is not None and result.images[0].path.is_file()
    if pixels.shape != (64, 64, 3) or pixels.std() == 0 or not saved:
        return Check("tiny generation", "fail", "the engine ran but produced no usable image", "reinstall torch and diffusers")
    return Check("tiny generation", "ok", f"offline end-to-end run in {time.perf_counter() - started:.1f}s (load, sample, PNG)")


def check_memory_modes(device: str | None = None, free_vram_mb: int | None = None, free_ram_mb: int | None = None) -> list[Check]:
    """The memory mode ``--memory auto`` would pick here for each family (SD 1.5 ... FLUX.1) at its native size."""
    from gambarkan.engine.device import choose_memory_mode, pick_device
    from gambarkan.families import get_family, names

    device = device or pick_device("auto")
    checks = []
    for kind in names():
        label, (side, _) = get_family(kind).title, get_family(kind).native_size
        plan = choose_memory_mode("auto", device, kind, side, side, free_vram_mb=free_vram_mb, free_ram_mb=free_ram_mb)
        status = "warn" if plan.mode == "minimal" else "ok"
        fix = "it will run, slowly: close other GPU programs or pick a smaller package" if status == "warn" else ""
        checks.append(Check(f"memory {label} {side}x{side}", status, plan.describe(), fix))
    return checks


def run_doctor(settings: Settings | None = None, network: bool = True) -> list[Check]:
    """All checks in order; each failure carries its fix."""
    settings = settings or Settings.from_env()
    checks = check_packages()
    if any(c.status == "fail" for c in checks):
        return checks
    checks += check_device()
    checks.append(check_cpu())
    checks += check_memory_and_disk(settings)
    checks += check_memory_modes()
    checks.append(Check("folders", "ok", f"home {settings.home}, outputs {settings.output_dir}, models {_hf_cache()}"))
    if network:
        checks.append(check_network())
    try:
        checks.append(check_tiny_generation(settings))
    except Exception as exc:  # report, don't crash: this is the diagnostic tool
        checks.append(Check("tiny generation", "fail", f"{type(exc).__name__}: {exc}", "reinstall gambarkan's dependencies; run with --debug"))
    return checks


def summary(checks: list[Check]) -> tuple[bool, str]:
    """(ready, one line) for the end of the report."""
    failed = [c for c in checks if c.status == "fail"]
    if failed:
        return False, "Not ready: " + "; ".join(f"{c.name}: {c.fix}" for c in failed)
    warned = [c for c in checks if c.status == "warn"]
    if warned:
        return True, "Ready, with notes: " + "; ".join(f"{c.name}: {c.fix}" for c in warned if c.fix)
    return True, "Ready: this machine can run gambarkan."


def checks_as_dicts(checks: list[Check]) -> list[dict[str, Any]]:
    return [asdict(c) for c in checks]
