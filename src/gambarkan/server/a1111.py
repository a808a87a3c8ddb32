"""AUTOMATIC1111-compatible API (``/sdapi/v1/*``): same paths, field names and shapes as A1111.

Enough for the ``webuiapi`` client and scripts written against A1111: txt2img, models, samplers,
options (switching ``sd_model_checkpoint``), progress and interrupt. Features gambarkan does not
have (hires fix, face restore, scripts) are refused with a 422 naming the field instead of being
silently ignored.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import time
from typing import Any

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, ConfigDict, Field

from gambarkan import __version__
from gambarkan.errors import InvalidRequestError
from gambarkan.request import MAX_SEED
from gambarkan.server.controlnet import controlnet_fields
from gambarkan.server.jobs import RUNNING, Job, png_base64

router = APIRouter(tags=["automatic1111"])


class Txt2ImgBody(BaseModel):
    """A1111's ``StableDiffusionProcessingTxt2Img`` request (fields we use; others are ignored)."""

    model_config = ConfigDict(extra="ignore")

    prompt: str = Field("", max_length=20_000)
    negative_prompt: str = Field("", max_length=20_000)
    styles: list[str] | None = None
    seed: int = Field(-1, ge=-1, le=MAX_SEED)
    sampler_name: str | None = Field(None, max_length=64)
    sampler_index: str | None = Field(None, max_length=64)
    scheduler: str | None = Field(None, max_length=64)
    batch_size: int = Field(1, ge=1, le=16)
    n_iter: int = Field(1, ge=1, le=100)
    steps: int = Field(50, ge=1, le=150)
    cfg_scale: float = Field(7.0, ge=0, le=30)
    width: int = Field(512, ge=64, le=2048)
    height: int = Field(512, ge=64, le=2048)
    enable_hr: bool = False
    restore_faces: bool | None = None
    tiling: bool | None = None
    subseed_strength: float = 0.0
    override_settings: dict[str, Any] | None = None
    override_settings_restore_afterwards: bool = True
    script_name: str | None = None
    script_args: list[Any] | None = None
    alwayson_scripts: dict[str, Any] | None = None
    send_images: bool = True
    save_images: bool = False


class TextToImageResponse(BaseModel):
    images: list[str] | None = None
    parameters: dict[str, Any]
    info: str


def _unsupported(field: str, what: str) -> InvalidRequestError:
    return InvalidRequestError(f"{field}: {what} is not supported by gambarkan", f"leave {field} unset")


def _sampler(body: Txt2ImgBody) -> str | None:
    """A1111 >= 1.9 sends ``sampler_name="DPM++ 2M", scheduler="Karras"``; fold into one name."""
    name = body.sampler_name or body.sampler_index
    if not name:
        return None
    if (body.scheduler or "").strip().lower() == "karras" and "karras" not in name.lower():
        name = f"{name} Karras"
    return name


def to_fields(body: Txt2ImgBody, state: Any) -> dict[str, Any]:
    """A1111 request -> GenerationRequest fields (plus the model name to use)."""
    if body.enable_hr:
        raise _unsupported("enable_hr", "hires fix")
    if body.restore_faces:
        raise _unsupported("restore_faces", "face restoration")
    if body.tiling:
        raise _unsupported("tiling", "tiling")
    if body.subseed_strength:
        raise _unsupported("subseed_strength", "variation seeds")
    if body.script_name:
        raise InvalidRequestError(
            f"Script '{body.script_name}' not found", "gambarkan has no A1111 scripts; leave script_name unset"
        )
    control = controlnet_fields(body.alwayson_scripts) if body.alwayson_scripts else {}
    if body.styles:
        raise _unsupported("styles", "A1111 saved styles")
    overrides = body.override_settings or {}
    clip_skip = overrides.get("CLIP_stop_at_last_layers", state.a1111_options.get("CLIP_stop_at_last_layers", 1))
    if not isinstance(clip_skip, int) or isinstance(clip_skip, bool):
        raise InvalidRequestError("override_settings.CLIP_stop_at_last_layers must be an integer 1-12")
    model = overrides.get("sd_model_checkpoint") or state.current_model
    if not isinstance(model, str):
        raise InvalidRequestError(
            "override_settings.sd_model_checkpoint must be a model title (see /sdapi/v1/sd-models)"
        )
    fields: dict[str, Any] = {
        "prompt": body.prompt,
        "negative_prompt": body.negative_prompt,
        "model": model,
        "seed": body.seed,
        "steps": body.steps,
        "cfg": body.cfg_scale,
        "width": body.width,
        "height": body.height,
        "batch_size": body.batch_size,
        "count": body.n_iter,
        "clip_skip": clip_skip,
        "save": body.save_images,
    }
    sampler = _sampler(body)
    if sampler:
        fields["sampler"] = sampler
    fields.update(control)  # ControlNet units (the sd-webui-controlnet extension's args)
    return fields


def info_json(result: Any, body: Txt2ImgBody) -> str:
    """A1111's ``Processed.js()``: the ``info`` string webuiapi parses."""
    seeds = result.seeds
    return json.dumps(
        {
            "prompt": result.prompt,
            "all_prompts": [result.prompt] * len(seeds),
            "negative_prompt": result.negative_prompt,
            "all_negative_prompts": [result.negative_prompt] * len(seeds),
            "seed": result.seed,
            "all_seeds": seeds,
            "subseed": -1,
            "all_subseeds": [-1] * len(seeds),
            "subseed_strength": 0,
            "width": result.width,
            "height": result.height,
            "sampler_name": result.sampler,
            "cfg_scale": result.cfg,
            "steps": result.steps,
            "batch_size": body.batch_size,
            "restore_faces": False,
            "face_restoration_model": None,
            "sd_model_name": result.model,
            "sd_model_hash": result.model_hash,
            "sd_vae_name": None,
            "sd_vae_hash": None,
            "seed_resize_from_w": -1,
            "seed_resize_from_h": -1,
            "denoising_strength": None,
            "extra_generation_params": {"Original prompt": result.original_prompt} if result.translator else {},
            "index_of_first_image": 0,
            "infotexts": [image.parameters for image in result.images],
            "styles": [],
            "job_timestamp": _dt.datetime.now().strftime("%Y%m%d%H%M%S"),
            "clip_skip": result.clip_skip,
            "is_using_inpainting_conditioning": False,
            "version": f"gambarkan {__version__}",
        },
        ensure_ascii=False,
    )


@router.post("/sdapi/v1/txt2img", response_model=TextToImageResponse, summary="A1111-compatible text to image")
async def txt2img(request: Request, body: Txt2ImgBody) -> dict[str, Any]:
    state = request.app.state.gambarkan
    preview_every = int(state.a1111_options.get("show_progress_every_n_steps") or 0)
    job = Job(state.build_request(to_fields(body, state)), source="a1111", preview_every=max(preview_every, 0))
    state.queue.submit(job)
    try:
        result = await asyncio.wrap_future(job.future)
    finally:
        job.release()
    images = [png_base64(image.image, image.parameters) for image in result.images] if body.send_images else []
    return {"images": images, "parameters": body.model_dump(), "info": info_json(result, body)}


def _title(entry: Any) -> str:
    return entry.name


@router.get("/sdapi/v1/sd-models", summary="Models (A1111 checkpoints)")
async def sd_models(request: Request) -> list[dict[str, Any]]:
    state = request.app.state.gambarkan
    return [
        {"title": _title(e), "model_name": e.name, "hash": None, "sha256": None, "filename": e.name, "config": None}
        for e in state.models().values()
    ]


@router.get("/sdapi/v1/samplers", summary="Sampler names")
async def samplers() -> list[dict[str, Any]]:
    from gambarkan.engine.samplers import SAMPLERS

    return [
        {"name": s.name, "aliases": list(s.aliases), "options": {"scheduler": "karras"} if s.karras else {}}
        for s in SAMPLERS
    ]


@router.get("/sdapi/v1/schedulers", summary="Schedule types (A1111 >= 1.9)")
async def schedulers() -> list[dict[str, Any]]:
    return [
        {"name": "automatic", "label": "Automatic", "aliases": None, "default_rho": -1, "need_inner_model": False},
        {"name": "karras", "label": "Karras", "aliases": None, "default_rho": 7.0, "need_inner_model": False},
    ]


@router.get("/sdapi/v1/scripts", summary="Scripts (none)")
async def scripts() -> dict[str, Any]:
    return {"txt2img": [], "img2img": []}


@router.get("/sdapi/v1/options", summary="Settings: the current model and a few A1111 options")
async def get_options(request: Request) -> dict[str, Any]:
    state = request.app.state.gambarkan
    return {
        "sd_model_checkpoint": state.current_model,
        "sd_checkpoint_hash": None,
        "samples_format": "png",
        "sd_vae": "Automatic",
        **state.a1111_options,
    }


@router.post("/sdapi/v1/options", summary="Change settings; sd_model_checkpoint switches the model")
async def set_options(request: Request, body: dict[str, Any] = Body(...)) -> None:  # noqa: B008 - FastAPI idiom
    state = request.app.state.gambarkan
    checkpoint = body.get("sd_model_checkpoint")
    if checkpoint is not None:
        if not isinstance(checkpoint, str):
            raise InvalidRequestError("sd_model_checkpoint must be a model title (see /sdapi/v1/sd-models)")
        entry = state.find_model(checkpoint, "sd_model_checkpoint")
    for key, kind, lo, hi in (("CLIP_stop_at_last_layers", int, 1, 12), ("show_progress_every_n_steps", int, -1, 150)):
        if key in body:
            value = body[key]
            if not isinstance(value, kind) or isinstance(value, bool) or not lo <= value <= hi:
                raise InvalidRequestError(f"{key} must be an integer {lo}-{hi}")
            state.a1111_options[key] = value
    if checkpoint is not None:
        state.current_model = entry.name


@router.get("/sdapi/v1/progress", summary="Progress of the running job (A1111 shape)")
async def progress(request: Request, skip_current_image: bool = False) -> dict[str, Any]:
    state = request.app.state.gambarkan
    queue = state.queue
    running = queue.running()
    job_count = len(running) + queue.pending_count
    job = running[0] if running else None
    state_dict = {
        "skipped": False,
        "interrupted": bool(job and job.cancel.is_set()),
        "stopping_generation": False,
        "job": job.id if job else "",
        "job_count": job_count,
        "job_timestamp": _dt.datetime.fromtimestamp(job.started or job.created).strftime("%Y%m%d%H%M%S")
        if job
        else "0",
        "job_no": job.batch_index if job else 0,
        "sampling_step": job.step if job else 0,
        "sampling_steps": job.steps if job else 0,
    }
    if job is None or job.status != RUNNING:
        return {"progress": 0.0, "eta_relative": 0.0, "state": state_dict, "current_image": None, "textinfo": None}
    fraction = max(job.progress, 0.01)
    elapsed = time.time() - (job.started or time.time())
    eta = max(elapsed / fraction - elapsed, 0.0)
    image = None
    if job.preview is not None and not skip_current_image:
        image = png_base64(job.preview)
    return {
        "progress": round(fraction, 4),
        "eta_relative": round(eta, 3),
        "state": state_dict,
        "current_image": image,
        "textinfo": None,
    }


@router.post("/sdapi/v1/interrupt", summary="Stop the running job at its next step")
async def interrupt(request: Request) -> dict[str, Any]:
    request.app.state.gambarkan.queue.interrupt()
    return {}
