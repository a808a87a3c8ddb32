"""Turn stored generation parameters (PNG metadata) back into request fields.

Plain data only: which model, VAE and LoRAs an image names is read here
(``recorded_model``, ``recorded_networks``); finding them on this computer is
``gambarkan.models.recorded``, one layer up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gambarkan.outputs.png import read_parameters


@dataclass(frozen=True)
class RecordedModel:
    """The model an image says it was made with: A1111's ``Model``, ``Model hash`` and ``Preset`` (ours)."""

    name: str
    hash: str | None = None
    preset: str | None = None
    vae: str | None = None  # A1111's ``VAE`` (a file name); gambarkan has no per-request VAE


def fields_from_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """GenerationRequest fields from parsed A1111 parameters (ours or A1111's); the model is ``recorded_model``."""
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
    sampler = params.get("Sampler")
    if sampler:
        from gambarkan.engine.samplers import SAMPLERS

        names = {s.name.lower(): s.name for s in SAMPLERS}
        if str(sampler).lower() in names:
            fields["sampler"] = names[str(sampler).lower()]
    if not params.get("Translator"):
        fields["translate"] = False  # A1111 prompts are already what the encoder saw
    return fields


def recorded_model(params: dict[str, Any]) -> RecordedModel | None:
    """The model fields of parsed parameters, or None when the image names no model."""
    name = str(params.get("Model") or "").strip()
    if not name:
        return None
    model_hash = str(params.get("Model hash") or "").strip().lower() or None
    preset = str(params.get("Preset") or "").strip() or None
    vae = str(params.get("VAE") or "").strip() or None
    return RecordedModel(name, model_hash, preset, vae)


def recorded_networks(params: dict[str, Any]) -> dict[str, dict[str, str]]:
    """``{"lora": {name: hash}, "embedding": {name: hash}}`` from A1111's ``Lora hashes`` / ``TI hashes``."""
    out: dict[str, dict[str, str]] = {}
    for key, kind in (("Lora hashes", "lora"), ("TI hashes", "embedding")):
        text = str(params.get(key) or "")
        for item in text.split(","):
            name, sep, value = item.strip().rpartition(":")
            if sep and name.strip() and value.strip():
                out.setdefault(kind, {})[name.strip()] = value.strip().lower()
    return out


def fields_from_png(path: str | Path) -> dict[str, Any]:
    """Request fields to re-make the image at ``path`` (the model not included: see ``recorded_model``)."""
    return fields_from_parameters(read_parameters(path))
