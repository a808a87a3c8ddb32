"""The sd-webui-controlnet extension's API: ``/controlnet/*`` routes and ``alwayson_scripts`` units.

Same paths, field names and shapes as the extension (``scripts/api.py``), so
``webuiapi.ControlNetUnit`` and clients written for A1111 with ControlNet work unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Body, Request

from gambarkan.errors import InvalidRequestError

router = APIRouter(tags=["controlnet"])
API_VERSION = 2  # what the extension's /controlnet/version said when its API took this shape


def _unit_image(value: Any) -> Any:
    """A unit's image: base64 text, or the older ``{"image": ..., "mask": ...}`` shape."""
    if isinstance(value, dict):
        value = value.get("image")
    return value


def unit_fields(unit: dict[str, Any]) -> dict[str, Any] | None:
    """One extension unit -> our ControlUnit fields (None for a disabled or empty unit)."""
    if not isinstance(unit, dict):
        raise InvalidRequestError("a ControlNet unit must be a JSON object", "see webuiapi.ControlNetUnit.to_dict()")
    image = _unit_image(unit.get("image") or unit.get("input_image"))
    if unit.get("enabled", True) is False or not image:
        return None
    model = None if str(unit.get("model") or "none").lower() == "none" else str(unit["model"])
    if model is not None and (any(c in model for c in "/\\") or model.startswith((".", "~"))):
        raise InvalidRequestError(
            f"ControlNet model '{model}' looks like a path; over the API models are chosen by name",
            "see /controlnet/model_list (the server's owner adds files to GAMBARKAN_HOME/controlnet)",
        )
    fields: dict[str, Any] = {"image": image, "preprocessor": unit.get("module") or "none", "model": model}
    for ours, theirs in (("weight", "weight"), ("guidance_start", "guidance_start"), ("guidance_end", "guidance_end"),
                         ("control_mode", "control_mode"), ("resize_mode", "resize_mode"), ("pixel_perfect", "pixel_perfect")):
        if unit.get(theirs) is not None:
            fields[ours] = unit[theirs]
    if unit.get("processor_res") not in (None, -1):
        fields["processor_res"] = unit["processor_res"]
    for key in ("threshold_a", "threshold_b"):
        if unit.get(key) not in (None, -1):
            fields[key] = unit[key]
    return _fit_sliders(fields)


def _fit_sliders(fields: dict[str, Any]) -> dict[str, Any]:
    """Clients send ``threshold_a/b`` for every unit (webuiapi: 64, 64) even where the
    preprocessor has no such slider; the extension ignores those, and so do we."""
    from gambarkan.inputs.preprocessors import get_preprocessor

    try:
        pre = get_preprocessor(fields["preprocessor"])
    except InvalidRequestError:
        return fields  # the request's validation names the unknown preprocessor
    for key, slider in (("threshold_a", pre.slider_a), ("threshold_b", pre.slider_b)):
        if slider is None:
            fields.pop(key, None)
    return fields


def controlnet_fields(alwayson_scripts: dict[str, Any]) -> dict[str, Any]:
    """The ``controlnet`` request field from A1111's ``alwayson_scripts`` (other scripts refused)."""
    units: list[dict[str, Any]] = []
    for name, script in alwayson_scripts.items():
        if name.strip().lower() != "controlnet":
            raise InvalidRequestError(
                f"always on script {name} not found", "gambarkan knows only the ControlNet script; leave the others out"
            )
        args = script.get("args", []) if isinstance(script, dict) else script
        if not isinstance(args, list):
            raise InvalidRequestError("alwayson_scripts.controlnet.args must be a list of units")
        units.extend(f for f in (unit_fields(u) for u in args) if f is not None)
    return {"controlnet": units} if units else {}


@router.get("/controlnet/version", summary="ControlNet API version")
async def version() -> dict[str, Any]:
    return {"version": API_VERSION}


@router.get("/controlnet/model_list", summary="ControlNet models")
async def model_list(request: Request, update: bool = True) -> dict[str, Any]:
    from gambarkan.models.controlnets import model_titles

    return {"model_list": model_titles(request.app.state.gambarkan.settings)}


@router.get("/controlnet/module_list", summary="ControlNet preprocessors")
async def module_list(alias_names: bool = False) -> dict[str, Any]:
    from gambarkan.inputs.preprocessors import PREPROCESSORS

    def name(p: Any) -> str:
        return p.label if alias_names else p.name

    detail = {}
    for p in PREPROCESSORS.values():
        sliders: list[dict[str, Any]] = [{"name": "Preprocessor Resolution", "value": 512, "min": 64, "max": 2048}]
        sliders += [{"name": s.label, "value": s.default, "min": s.low, "max": s.high} for s in (p.slider_a, p.slider_b) if s]
        detail[name(p)] = {"model_free": p.needs_weights is None, "sliders": sliders}
    return {"module_list": [name(p) for p in PREPROCESSORS.values()], "module_detail": detail}


@router.get("/controlnet/settings", summary="ControlNet settings")
async def settings() -> dict[str, Any]:
    return {"control_net_unit_count": 3}


@router.post("/controlnet/detect", summary="Run a preprocessor on images")
async def detect(body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008 - FastAPI idiom
    """The preprocessor's maps of the given images (base64 PNG), as the extension returns them."""
    from gambarkan.inputs.images import load_image
    from gambarkan.inputs.preprocessors import make_control_map
    from gambarkan.server.jobs import png_base64

    module = body.get("controlnet_module", "none")
    images = body.get("controlnet_input_images") or body.get("controlnet_images") or []
    if not isinstance(images, list) or not images:
        raise InvalidRequestError("No image selected", "send controlnet_input_images: a list of base64 images")
    res = body.get("controlnet_processor_res", -1)
    a, b = body.get("controlnet_threshold_a", -1), body.get("controlnet_threshold_b", -1)
    fitted = _fit_sliders({"preprocessor": module, "threshold_a": a, "threshold_b": b})

    def run() -> list[str]:
        out = []
        for i, value in enumerate(images):
            picture = load_image(value, f"controlnet_input_images[{i}]")
            made = make_control_map(module, picture.image, 512 if res in (None, -1) else int(res),
                                    fitted.get("threshold_a"), fitted.get("threshold_b"))
            out.append(png_base64(made, ""))
        return out

    return {"images": await asyncio.to_thread(run), "info": "Success"}
