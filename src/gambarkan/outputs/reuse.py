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
from gambarkan.sampler_names import sampler_or_none

MAX_SEED = 2**32 - 1  # gambarkan.request.MAX_SEED (outputs sit below request)


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
    if isinstance(fields.get("seed"), int) and not 0 <= fields["seed"] <= MAX_SEED:
        fields["seed"] = fields["seed"] % (MAX_SEED + 1)  # ComfyUI seeds are 64-bit; ours 32-bit
    if "width" in params:
        fields["width"], fields["height"] = params["width"], params["height"]
    sampler = sampler_or_none(params.get("Sampler"), params.get("Schedule type"))
    if sampler:
        fields["sampler"] = sampler
    fields.update(image_fields(params))
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


def _image_record(params: dict[str, Any], path_key: str, hash_key: str) -> dict[str, Any] | None:
    """A stored image (path + hash) as a request value; the request re-reads and checks it."""
    path, digest = params.get(path_key), params.get(hash_key)
    if path not in (None, "", "alpha"):
        return {"source": str(path), "sha256": str(digest) if digest else None}
    if digest:
        return {"source": "upload", "sha256": str(digest)}  # says clearly it was not kept
    return None


def image_fields(params: dict[str, Any]) -> dict[str, Any]:
    """img2img / inpaint / hires fields from A1111 parameters (``Denoising strength``, ``Hires ...``)."""
    fields: dict[str, Any] = {}
    init = _image_record(params, "Init image", "Init image hash")
    strength = params.get("Denoising strength")
    if init is not None:
        fields["init_image"] = init
        if strength not in (None, ""):
            fields["strength"] = float(strength)
        mask = _image_record(params, "Mask", "Mask hash")
        if mask is not None:
            fields["mask"] = mask
        if params.get("Mask") == "alpha":
            fields["mask_from_alpha"] = True
        labels = {"Masked content": "inpainting_fill", "Resize mode": "resize_mode", "Outpaint": "outpaint"}
        for key, name in labels.items():
            if params.get(key) not in (None, ""):
                fields[name] = str(params[key])
        if params.get("Mask blur") not in (None, "") and (mask is not None or "Outpaint" in params or "mask_from_alpha" in fields):
            fields["mask_blur"] = int(params["Mask blur"])
        if str(params.get("Inpaint area", "")).lower() == "only masked":
            fields["inpaint_area"] = "only_masked"
            if params.get("Masked area padding") not in (None, ""):
                fields["inpaint_padding"] = int(params["Masked area padding"])
        if str(params.get("Mask mode", "")).lower() == "inpaint not masked":
            fields["mask_invert"] = True
        return fields
    if any(key in params for key in ("Hires upscale", "Hires resize", "Hires upscaler")):
        hires: dict[str, Any] = {}
        if params.get("Hires upscale") not in (None, ""):
            hires["scale"] = float(params["Hires upscale"])
        resize = str(params.get("Hires resize", ""))
        if "x" in resize:
            width, _, height = resize.partition("x")
            if width.isdigit() and height.isdigit():
                hires["width"], hires["height"] = int(width), int(height)
        if params.get("Hires steps") not in (None, ""):
            hires["steps"] = int(params["Hires steps"])
        if params.get("Hires upscaler"):
            hires["upscaler"] = str(params["Hires upscaler"])
        if strength not in (None, ""):
            hires["strength"] = float(strength)
        fields["hires"] = hires
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
