"""Stable Diffusion 2.x (and SD-Turbo): OpenCLIP ViT-H text encoder (1024-wide cross attention)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from gambarkan.families import sd15


def detect_folder(index: Mapping[str, Any], folder: Path) -> bool:
    if not sd15.detect_folder(index, folder):
        return False
    try:
        unet = json.loads((folder / "unet" / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return unet.get("cross_attention_dim") == 1024


def detect_file(keys: Iterable[str]) -> bool:
    return any(k.startswith("cond_stage_model.model.") for k in keys)


FAMILY = replace(
    sd15.FAMILY,
    name="sd2",
    title="SD 2.x",
    native_size=(768, 768),
    sizes={"portrait": (640, 960), "square": (768, 768), "landscape": (960, 640)},
    memory_mb={"high": 4200, "low": 2300},
    activation_mb=900,
    catalog_defaults={"width": 768, "height": 768, "min_vram_mb": 3072, "min_ram_mb": 8192, "download_mb": 2600},
    detect_folder=detect_folder,
    detect_file=detect_file,
)
