"""Stable Diffusion XL (and its distilled SDXL-Lightning / DMD2 / Turbo fine-tunes): two CLIP encoders."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gambarkan.families.base import Family


def detect_folder(index: Mapping[str, Any], folder: Path) -> bool:
    return str(index.get("_class_name", "")).startswith("StableDiffusionXL")


def detect_file(keys: Iterable[str]) -> bool:
    return any(k.startswith("conditioner.embedders.1") for k in keys)


FAMILY = Family(
    name="sdxl",
    title="SDXL",
    pipelines={"txt2img": "StableDiffusionXLPipeline", "img2img": "StableDiffusionXLImg2ImgPipeline", "inpaint": "StableDiffusionXLInpaintPipeline"},
    prompt_encoding="clip",
    native_size=(1024, 1024),
    sizes={"portrait": (832, 1216), "square": (1024, 1024), "landscape": (1216, 832)},
    default_sampler="DPM++ 2M Karras",
    scheduler_kind="a1111",
    memory_mb={"high": 11000, "low": 6500},
    activation_mb=1800,
    latent_rgb=((0.3651, 0.4232, 0.4341), (-0.2533, -0.0042, 0.1068), (0.1076, 0.1111, -0.0362), (-0.3165, -0.2492, -0.2188)),
    latent_bias=(0.1084, -0.0175, -0.0011),
    taesd_repo="madebyollin/taesdxl",
    fp16_vae_overflows=True,
    optimizations_off=frozenset({"openvino"}),
    catalog_defaults={"width": 1024, "height": 1024, "min_vram_mb": 8192, "min_ram_mb": 16384, "download_mb": 6940},
    detect_folder=detect_folder,
    detect_file=detect_file,
)
