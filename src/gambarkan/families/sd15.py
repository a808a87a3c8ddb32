"""Stable Diffusion 1.x: CLIP ViT-L text encoder, 512x512, 4 latent channels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gambarkan.families.base import Family

SD_CLASSES = ("StableDiffusionPipeline", "")  # img2img/inpaint come from the txt2img one (from_pipe)


def detect_folder(index: Mapping[str, Any], folder: Path) -> bool:
    return str(index.get("_class_name", "")) in SD_CLASSES


def detect_file(keys: Iterable[str]) -> bool:
    return any(k.startswith(("cond_stage_model.transformer", "model.diffusion_model.")) for k in keys)


FAMILY = Family(
    name="sd15",
    title="SD 1.5",
    pipelines={"txt2img": "StableDiffusionPipeline", "img2img": "StableDiffusionImg2ImgPipeline", "inpaint": "StableDiffusionInpaintPipeline"},
    prompt_encoding="clip",
    native_size=(512, 512),
    sizes={"portrait": (512, 768), "square": (512, 512), "landscape": (768, 512)},
    default_sampler="DPM++ 2M Karras",
    scheduler_kind="a1111",
    memory_mb={"high": 3800, "low": 2000},
    activation_mb=600,
    latent_rgb=((0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350), (-0.2829, 0.1762, 0.2721), (-0.2120, -0.2616, -0.7177)),
    taesd_repo="madebyollin/taesd",
    safety_checker=True,
    catalog_defaults={"width": 512, "height": 512, "min_vram_mb": 2048, "min_ram_mb": 8192, "download_mb": 2140},
    detect_folder=detect_folder,
    detect_file=detect_file,
)
