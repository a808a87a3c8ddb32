"""Turn stored generation parameters (PNG metadata) back into request fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gambarkan.outputs.png import read_parameters
from gambarkan.sampler_names import sampler_or_none

MAX_SEED = 2**32 - 1  # gambarkan.request.MAX_SEED (outputs sit below request)


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
    if isinstance(fields.get("seed"), int) and not 0 <= fields["seed"] <= MAX_SEED:
        fields["seed"] = fields["seed"] % (MAX_SEED + 1)  # ComfyUI seeds are 64-bit; ours 32-bit
    if "width" in params:
        fields["width"], fields["height"] = params["width"], params["height"]
    sampler = sampler_or_none(params.get("Sampler"), params.get("Schedule type"))
    if sampler:
        fields["sampler"] = sampler
    if not params.get("Translator"):
        fields["translate"] = False  # A1111 prompts are already what the encoder saw
    return fields


def reuse_notes(params: dict[str, Any], fields: dict[str, Any]) -> list[str]:
    """What ``--from`` could not take over, one line each (nothing is dropped silently)."""
    notes = [str(params["Note"])] if params.get("Note") else []
    if params.get("Tool") and not params.get("Note"):
        notes.append(f"settings read from a {params['Tool']} image; the same settings in gambarkan give a similar, not the same, image")
    seed = params.get("Seed")
    if isinstance(seed, int) and not 0 <= seed <= MAX_SEED:
        notes.append(f"seed {seed} is larger than gambarkan's 32-bit seeds; using {fields.get('seed')}")
    sampler = params.get("Sampler")
    if sampler and "sampler" not in fields:
        notes.append(f"sampler '{sampler}' is not one gambarkan has; the package's sampler is used")
    return notes


def fields_from_png(path: str | Path) -> dict[str, Any]:
    """Request fields to re-make the image at ``path``."""
    return fields_from_parameters(read_parameters(path))
