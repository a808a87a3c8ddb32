"""Pick the device and dtype a generation runs on.

``auto`` means: CUDA if present, else Apple MPS, else CPU; fp16 on GPUs, fp32 on CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from gambarkan.errors import InvalidRequestError
from gambarkan.families import get_family

T = TypeVar("T")

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def pick_device(requested: str = "auto") -> str:
    """Resolve ``auto|cpu|cuda|mps`` to a device that exists here, or explain why not."""
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise InvalidRequestError("--device cuda was asked for but no CUDA GPU is available", "use --device auto or cpu")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InvalidRequestError("--device mps was asked for but Apple MPS is not available", "use --device auto or cpu")
    return requested


#: bf16 needs Ampere (compute capability 8.0) or newer: a T4 (7.5) has no bf16 hardware, although
#: ``torch.cuda.is_bf16_supported()`` can say True there (it emulates), so the capability decides.
BF16_CAPABILITY = (8, 0)


def cuda_capability() -> tuple[int, int]:
    """(major, minor) compute capability of the current CUDA device."""
    import torch

    major, minor = torch.cuda.get_device_capability()
    return int(major), int(minor)


def pick_dtype(device: str, requested: str = "auto", capability: tuple[int, int] | None = None) -> str:
    """Resolve ``auto|fp32|fp16|bf16`` for ``device``; fp16 on CPU is refused (too slow/unsupported).

    On CUDA the compute capability decides (``capability`` overrides it in tests): ``auto`` is
    fp16, and bf16 is refused below 8.0 (T4, V100) with the fix named.
    """
    if requested == "auto":
        return "fp16" if device in ("cuda", "mps") else "fp32"
    if requested == "fp16" and device == "cpu":
        raise InvalidRequestError("fp16 is not supported on the CPU", "use --dtype fp32 or bf16 on the CPU")
    if requested == "bf16" and device == "cuda":
        major, minor = capability or cuda_capability()
        if (major, minor) < BF16_CAPABILITY:
            raise InvalidRequestError(code="bf16_unsupported", params={"major": major, "minor": minor})
    return requested


# --- precision safety ----------------------------------------------------------------------
# fp16 overflows in some layers give NaN latents or an all-black decode (the stock SDXL VAE is
# the best known case). The engine checks every finished batch, retries once with the VAE in
# fp32, and never saves a black image as a success.


def is_black(image: Any) -> bool:
    """True for an image whose pixels are all zero (how a NaN decode comes out of diffusers)."""
    import numpy as np

    return int(np.asarray(image).max()) == 0


def latents_finite(latents: Any) -> bool:
    """False when a latent tensor holds NaN or inf."""
    import torch

    return bool(torch.isfinite(latents).all())


def upcast_vae(pipe: Any) -> str:
    """Keep the VAE in fp32 from now on (inputs cast on the way in); returns the PNG metadata value.

    The cached pipeline keeps the fix, so the next run does not overflow first.
    """
    import torch

    vae = pipe.vae
    if getattr(vae, "_gambarkan_fp32", False):
        return "fp32 VAE"
    vae.to(torch.float32)
    decode = vae.decode

    def decode_fp32(z: Any, *args: Any, **kwargs: Any) -> Any:
        return decode(z.to(torch.float32), *args, **kwargs)

    vae.decode = decode_fp32
    vae._gambarkan_fp32 = True
    return "fp32 VAE"


def torch_dtype(name: str):  # -> torch.dtype
    """The torch dtype for ``fp32|fp16|bf16``."""
    import torch

    return getattr(torch, DTYPES[name])


# --- memory modes ------------------------------------------------------------------------
# high:    everything on the GPU (fastest).
# low:     model CPU offload (one sub-model on the GPU at a time) + VAE slicing and tiling.
# minimal: sequential CPU offload (layer by layer; slowest, needs ~1 GB) + VAE tiling.

MEMORY_MODES = ("high", "low", "minimal")

# What each family needs per mode (GPU MB at its native size, extra MB per extra image) is
# the family's data: ``gambarkan.families.<name>.FAMILY.memory_mb`` / ``activation_mb``.


@dataclass(frozen=True)
class MemoryPlan:
    """How to place a pipeline: the mode, VAE options and a one-line reason for --verbose/doctor."""

    mode: str
    device: str
    vae_slicing: bool
    vae_tiling: bool
    reason: str

    def describe(self) -> str:
        extras = [n for n, on in (("VAE slicing", self.vae_slicing), ("VAE tiling", self.vae_tiling)) if on]
        return f"memory mode {self.mode} on {self.device}" + (f" + {', '.join(extras)}" if extras else "") + f": {self.reason}"


def free_memory_mb(device: str) -> tuple[int | None, int]:
    """(free GPU memory MB or None, available system RAM MB) right now."""
    import psutil

    ram = int(psutil.virtual_memory().available // 2**20)
    if device == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info()
        return int(free // 2**20), ram
    return None, ram


def needed_mb(kind: str, mode: str, width: int, height: int, batch: int = 1) -> int:
    """GPU MB ``kind`` needs in ``mode`` for ``batch`` images of width x height (an estimate)."""
    family = get_family(kind)
    scale = max(1.0, (width * height) / family.native_pixels) * max(1, batch)
    extra = int(family.activation_mb * (scale - 1))
    if mode == "minimal":
        return 1024 + extra // 2
    return family.memory_mb[mode] + extra


def choose_memory_mode(
    requested: str,
    device: str,
    kind: str,
    width: int,
    height: int,
    *,
    batch: int = 1,
    free_vram_mb: int | None = None,
    free_ram_mb: int | None = None,
) -> MemoryPlan:
    """Pick ``high|low|minimal`` from free memory and the model (``requested`` != auto wins).

    The free figures are measured when not given, so tests pass fake ones.
    """
    native = get_family(kind).native_pixels
    big_image = width * height > native * 1.5 or width * height * batch > 4 * native
    if device != "cuda":
        # Offload needs a CUDA device; on CPU/MPS the weights stay where they are.
        mode = "high" if requested == "auto" else requested
        tiling = big_image or mode != "high"
        why = f"{device} has no offload; everything stays in {'RAM' if device == 'cpu' else 'unified memory'}"
        if requested != "auto":
            why = f"asked for with --memory {requested} ({device}: VAE tiling only)"
        return MemoryPlan(mode, device, vae_slicing=batch > 1 or mode != "high", vae_tiling=tiling, reason=why)
    if free_vram_mb is None:
        free_vram_mb, measured_ram = free_memory_mb(device)
        free_ram_mb = measured_ram if free_ram_mb is None else free_ram_mb
    if requested != "auto":
        if requested not in MEMORY_MODES:
            raise InvalidRequestError(f"unknown memory mode '{requested}'", "use auto, high, low or minimal")
        mode, why = requested, f"asked for with --memory {requested}"
    else:
        mode = "minimal"
        for candidate in ("high", "low"):
            if free_vram_mb >= needed_mb(kind, candidate, width, height, batch):
                mode = candidate
                break
        need = needed_mb(kind, "high" if mode == "high" else "low", width, height, batch)
        why = f"{free_vram_mb} MB GPU memory free, {kind} at {width}x{height} needs about {need} MB"
        if mode == "low":
            why += f" with model CPU offload (all on the GPU would need about {needed_mb(kind, 'high', width, height, batch)} MB)"
        if mode == "minimal":
            why += " even with offload, so layers are streamed one by one (slow)"
    return MemoryPlan(
        mode,
        device,
        vae_slicing=mode != "high" or batch > 1,
        vae_tiling=mode != "high" or big_image,
        reason=why,
    )


def apply_memory_plan(pipe: Any, plan: MemoryPlan) -> Any:
    """Place ``pipe`` as ``plan`` says (to the device, or with offload) and set the VAE options."""
    if plan.device == "cuda" and plan.mode == "low":
        pipe.enable_model_cpu_offload()
    elif plan.device == "cuda" and plan.mode == "minimal":
        pipe.enable_sequential_cpu_offload()
    else:
        pipe.to(plan.device)
    vae = getattr(pipe, "vae", None)
    if vae is not None:
        # The pipeline-level helpers are deprecated in recent diffusers; the VAE's own are stable.
        (vae.enable_slicing if plan.vae_slicing else vae.disable_slicing)()
        (vae.enable_tiling if plan.vae_tiling else vae.disable_tiling)()
    return pipe


def next_lower_mode(mode: str) -> str | None:
    """The mode to retry in after running out of memory: high -> low -> minimal -> None."""
    index = MEMORY_MODES.index(mode) if mode in MEMORY_MODES else len(MEMORY_MODES) - 1
    return MEMORY_MODES[index + 1] if index + 1 < len(MEMORY_MODES) else None


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA (and MPS) out-of-memory errors, whatever class torch raised them with."""
    name = type(exc).__name__
    text = str(exc).lower()
    return name == "OutOfMemoryError" or "out of memory" in text or "mps backend out of memory" in text


def release_memory() -> None:
    """Give cached GPU memory back after an out-of-memory error."""
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            torch.cuda.ipc_collect()
    except Exception:  # noqa: BLE001 - best effort, never hide the real error
        pass


def run_with_oom_retry(
    run: Callable[[MemoryPlan], T],
    plan: MemoryPlan,
    place: Callable[[MemoryPlan], Any],
    notify: Callable[[str], None] | None = None,
) -> T:
    """Run ``run(plan)``; on out-of-memory free memory, ``place`` the pipeline in the next lower
    mode, say so through ``notify`` and retry once. Still out of memory -> OutOfMemoryError.
    """
    from gambarkan.errors import OutOfMemoryError

    try:
        return run(plan)
    except Exception as exc:  # noqa: BLE001 - only OOM is handled, the rest re-raised
        if not is_out_of_memory(exc):
            raise
        lower = next_lower_mode(plan.mode)
        release_memory()
        if lower is None or plan.device != "cuda":
            raise OutOfMemoryError(code="device_out_of_memory", params={"device": plan.device, "mode": plan.mode}) from None
    retry_plan = replace(plan, mode=lower, vae_slicing=True, vae_tiling=True, reason=f"retry after running out of memory in {plan.mode} mode")
    if notify:
        notify(f"out of GPU memory in '{plan.mode}' mode; freed memory and retrying once in '{lower}' mode")
    place(retry_plan)
    try:
        return run(retry_plan)
    except Exception as exc:  # noqa: BLE001
        if not is_out_of_memory(exc):
            raise
        release_memory()
        raise OutOfMemoryError(code="gpu_out_of_memory", params={"mode": lower}) from None
