"""Turn stored generation parameters (PNG metadata) back into request fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gambarkan.outputs.png import read_parameters
from gambarkan.sampler_names import sampler_or_none


def fields_from_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """GenerationRequest fields from parsed A1111 parameters (ours or A1111's)."""
    fields: dict[str, Any] = {
        "prompt": params.get("Original prompt") or params.get("prompt", ""),
        "negative_prompt": params.get("Original negative prompt") or params.get("negative_prompt", ""),
    }
    mapping = {"Steps": "steps", "CFG scale": "cfg", "Seed": "seed", "Clip skip": "clip_skip", "Preset": "preset", "Translator": "translator"}
    for key, field_name in mapping.items():
        if params.get(key) not in (None, ""):
            fields[field_name] = params[key]
    if "width" in params:
        fields["width"], fields["height"] = params["width"], params["height"]
    sampler = sampler_or_none(params.get("Sampler"), params.get("Schedule type"))
    if sampler:
        fields["sampler"] = sampler
    if not params.get("Translator"):
        fields["translate"] = False  # A1111 prompts are already what the encoder saw
    return fields


def fields_from_png(path: str | Path) -> dict[str, Any]:
    """Request fields to re-make the image at ``path``."""
    return fields_from_parameters(read_parameters(path))
