"""What this CPU can do for diffusion: its vector features (AVX2, AVX-512, AVX512-BF16, AMX) and cores.

One detector for ``gambarkan doctor``, ``--verbose``, ``gambarkan bench`` and the benchmark
scripts, so every figure names the features it needed. bf16 maths pays only with AVX512-BF16 or
AMX; elsewhere PyTorch emulates it and it is slower than fp32.

``GAMBARKAN_CPU_FEATURES`` (e.g. ``avx2`` or ``none``) makes gambarkan act as if the CPU had only
those features: for tests, and to keep bf16 off on a CPU whose bf16 is slow. It can only take
features away from what the machine reports, never add any.
No torch import at module level (``gambarkan --help`` stays instant).
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import asdict, dataclass

#: feature -> (label, the /proc/cpuinfo flags that mean it)
FEATURES: dict[str, tuple[str, tuple[str, ...]]] = {
    "avx2": ("AVX2", ("avx2",)),
    "avx512": ("AVX-512", ("avx512f",)),
    "avx512_bf16": ("AVX512-BF16", ("avx512_bf16",)),
    "amx": ("AMX", ("amx_bf16", "amx_tile")),
}
ENV = "GAMBARKAN_CPU_FEATURES"


@dataclass(frozen=True)
class CpuFeatures:
    """The CPU's name, its vector features, and how many cores this process may use."""

    name: str
    avx2: bool
    avx512: bool
    avx512_bf16: bool
    amx: bool
    physical_cores: int
    logical_cpus: int
    simulated: bool = False  # narrowed by GAMBARKAN_CPU_FEATURES

    @property
    def bf16(self) -> bool:
        """Native bf16 maths (AVX512-BF16 or AMX): the only CPUs where bf16 autocast is faster."""
        return self.avx512_bf16 or self.amx

    @property
    def present(self) -> list[str]:
        return [label for key, (label, _) in FEATURES.items() if getattr(self, key)]

    @property
    def missing(self) -> list[str]:
        return [label for key, (label, _) in FEATURES.items() if not getattr(self, key)]

    def summary(self) -> str:
        """``AVX2, AVX-512, AVX512-BF16; no AMX`` (what a table cell or a note says)."""
        have = ", ".join(self.present) or "no AVX2"
        lacking = [m for m in self.missing if self.present or m != "AVX2"]
        text = have + (f"; no {', '.join(lacking)}" if lacking else "")
        return text + (f" (limited by {ENV})" if self.simulated else "")

    def describe(self, threads: int | None = None) -> str:
        """One line: name, features, cores and (when given) the torch thread count."""
        cores = f"{self.physical_cores} cores / {self.logical_cpus} CPUs"
        run = f", {threads} torch thread{'s' if threads != 1 else ''}" if threads is not None else ""
        return f"{self.name}: {self.summary()}; {cores}{run}"

    def as_dict(self, threads: int | None = None) -> dict[str, object]:
        data: dict[str, object] = {**asdict(self), "bf16": self.bf16, "summary": self.summary()}
        if threads is not None:
            data["threads"] = threads
        return data


def detect() -> CpuFeatures:
    """This machine's CPU features (cached per value of ``GAMBARKAN_CPU_FEATURES``)."""
    return _detect(os.environ.get(ENV))


def torch_threads() -> int:
    """The intra-op thread count PyTorch uses now (imports torch)."""
    import torch

    return torch.get_num_threads()


@functools.lru_cache(maxsize=8)
def _detect(limit: str | None) -> CpuFeatures:
    flags = _linux_flags()
    found = {key: any(f in flags for f in names) for key, (_, names) in FEATURES.items()} if flags is not None else _torch_probes()
    simulated = False
    if limit is not None:
        allowed = _parse_limit(limit)
        narrowed = {key: have and key in allowed for key, have in found.items()}
        simulated = narrowed != found
        found = narrowed
    physical, logical = _cores()
    return CpuFeatures(_cpu_name(), found["avx2"], found["avx512"], found["avx512_bf16"], found["amx"], physical, logical, simulated)


def _parse_limit(text: str) -> set[str]:
    """``"avx2, avx512"`` / ``"none"`` -> feature keys (labels like ``AVX-512`` accepted too)."""
    words = {w.strip().lower().replace("-", "").replace("_", "") for w in text.replace(" ", ",").split(",") if w.strip()}
    names = {"avx2": "avx2", "avx512": "avx512", "avx512f": "avx512", "avx512bf16": "avx512_bf16", "bf16": "avx512_bf16",
             "amx": "amx", "amxbf16": "amx", "amxtile": "amx"}
    return {names[w] for w in words if w in names}


def _linux_flags() -> set[str] | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def _torch_probes() -> dict[str, bool]:
    """Where /proc/cpuinfo is missing (macOS, Windows): ask PyTorch's own CPU probes."""
    try:
        import torch

        cpu = torch.cpu
    except ImportError:  # pragma: no cover - torch is a dependency
        return dict.fromkeys(FEATURES, False)

    def probe(name: str) -> bool:
        check = getattr(cpu, name, None)
        return bool(check()) if check is not None else False

    return {"avx2": probe("_is_avx2_supported"), "avx512": probe("_is_avx512_supported"),
            "avx512_bf16": probe("_is_avx512_bf16_supported"), "amx": probe("_is_amx_tile_supported")}


def _cores() -> tuple[int, int]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or usable
    except ImportError:  # pragma: no cover - psutil is a dependency
        physical = usable
    return max(1, min(physical, usable)), max(1, usable)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"
