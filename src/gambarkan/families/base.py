"""The ``Family`` record: what one model family is and can do, as plain data.

Nothing here imports torch or diffusers, so ``request``, ``models``, ``outputs`` and
``engine`` can all ask a family questions instead of testing ``arch == "sdxl"`` themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

TASKS = ("txt2img", "img2img", "inpaint")
#: Features a family may lack; the engine says so in one note (or one error) instead of failing deep down.
FEATURES = ("lora", "embeddings", "clip_skip", "prompt_weights", "negative_prompt", "taesd", "batching")


@dataclass(frozen=True)
class Family:
    """One model family (SD 1.x, SD 2.x, SDXL, FLUX ...): detection, pipelines, prompts, memory."""

    name: str
    title: str
    pipelines: Mapping[str, str]  # task -> diffusers pipeline class name
    prompt_encoding: Literal["clip", "t5"]  # clip: A1111 weighting + long prompts; t5: plain text, weights stripped
    native_size: tuple[int, int]
    sizes: Mapping[str, tuple[int, int]]  # portrait / square / landscape at the native pixel count
    default_sampler: str
    scheduler_kind: Literal["a1111", "flow"]  # which sampler names apply (flow: flow-matching schedulers only)
    memory_mb: Mapping[str, int]  # GPU MB at the native size in mode high / low (fp16 or the package's quantization)
    activation_mb: int  # extra MB per native-size image beyond the first
    latent_channels: int = 4
    latent_rgb: tuple[tuple[float, ...], ...] = ()  # latent channel -> RGB factors for the cheap preview
    latent_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)
    taesd_repo: str | None = None
    safety_checker: bool = False  # the pipeline class takes safety_checker / requires_safety_checker
    fp16_vae_overflows: bool = False  # the stock VAE gives NaN/black images in fp16
    unsupported: frozenset[str] = frozenset()  # FEATURES this family lacks
    optimizations_off: frozenset[str] = frozenset()  # engine.optimize techniques that do not apply (U-Net only ones)
    catalog_defaults: Mapping[str, int] = field(default_factory=dict)  # download_mb, min_vram_mb, min_ram_mb
    metadata: Mapping[str, str] = field(default_factory=dict)  # extra A1111-style PNG fields for this family
    sized_tasks: bool = False  # img2img/inpaint pipelines need width/height (FLUX's default to 1024, not the image)
    detect_folder: Callable[[Mapping[str, Any], Path], bool] | None = None
    detect_file: Callable[[Iterable[str]], bool] | None = None

    def supports(self, feature: str) -> bool:
        """True when ``feature`` (one of FEATURES) works with this family."""
        return feature not in self.unsupported

    def pipeline_class(self, task: str = "txt2img") -> str:
        """The diffusers class name serving ``task``; ValueError for a task the family lacks."""
        if task not in self.pipelines:
            raise ValueError(f"{self.title} has no {task} pipeline")
        return self.pipelines[task]

    @property
    def native_pixels(self) -> int:
        return self.native_size[0] * self.native_size[1]

    def size(self, shape: str = "square") -> tuple[int, int]:
        """Width, height for ``portrait|square|landscape`` at this family's native pixel count."""
        return self.sizes.get(shape, self.native_size)
