"""AUTOMATIC1111-compatible API (``/sdapi/v1/*``): same paths, field names and shapes as A1111.

Enough for the ``webuiapi`` client and scripts written against A1111: txt2img, models, samplers,
options (switching ``sd_model_checkpoint``), progress and interrupt; the image routes (img2img,
extras, png-info, upscalers, the hires fix) are in ``a1111_images``. Features gambarkan does not
have (face restore, scripts) are refused with a 422 naming the field instead of being
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
from gambarkan.errors import GambarkanError, InvalidRequestError
from gambarkan.request import MAX_SEED
from gambarkan.sampler_names import infotext_fields
from gambarkan.server.controlnet import controlnet_fields
from gambarkan.server.jobs import RUNNING, Job, png_base64

router = APIRouter(tags=["automatic1111"])


class Txt2ImgBody(BaseModel):
    """A1111's ``StableDiffusionProcessingTxt2Img`` request (fields we use; others are kept and echoed)."""

    model_config = ConfigDict(extra="allow")

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
    # the hires fix (server.a1111_images.hires_fields)
    hr_scale: float = Field(2.0, ge=1, le=4)
    hr_upscaler: str | None = Field(None, max_length=200)
    hr_second_pass_steps: int = Field(0, ge=0, le=150)
    hr_resize_x: int = Field(0, ge=0, le=4096)
    hr_resize_y: int = Field(0, ge=0, le=4096)
    denoising_strength: float | None = Field(None, ge=0, le=1)
    hr_checkpoint_name: str | None = Field(None, max_length=200)
    hr_sampler_name: str | None = Field(None, max_length=64)
    hr_prompt: str | None = Field(None, max_length=20_000)
    hr_negative_prompt: str | None = Field(None, max_length=20_000)
    restore_faces: bool | None = None
    tiling: bool | None = None
    subseed: int = -1
    subseed_strength: float = 0.0
    seed_resize_from_w: int = -1
    seed_resize_from_h: int = -1
    clip_skip: int | None = Field(None, ge=1, le=12)
    infotext: str | None = Field(None, max_length=40_000)
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




# Request field -> A1111 infotext key, for filling a request from ``infotext`` (A1111's apply_infotext).
_INFOTEXT_FIELDS = {
    "prompt": "prompt", "negative_prompt": "negative_prompt", "steps": "Steps", "cfg_scale": "CFG scale",
    "seed": "Seed", "width": "width", "height": "height", "sampler_name": "Sampler", "scheduler": "Schedule type",
    "clip_skip": "Clip skip",
}


def apply_infotext(body: Txt2ImgBody) -> Txt2ImgBody:
    """Fill the fields the client did not set from ``body.infotext``, as A1111 >= 1.9 does."""
    if not body.infotext:
        return body
    from gambarkan.outputs.png import parse_parameters
    from gambarkan.sampler_names import split_sampler

    params = parse_parameters(body.infotext)
    if params.get("Sampler"):  # parse_parameters folds the schedule into the sampler name
        try:
            sampler, schedule = split_sampler(str(params["Sampler"]))
            params["Sampler"], params["Schedule type"] = sampler.name, schedule.label if schedule else None
        except InvalidRequestError:
            pass  # an unknown sampler is reported by the request validation
    given = body.model_fields_set
    changes = {name: params[key] for name, key in _INFOTEXT_FIELDS.items() if name not in given and params.get(key) not in (None, "")}
    return body.model_copy(update=changes)


def to_fields(body: Txt2ImgBody, state: Any) -> dict[str, Any]:
    """A1111 request -> GenerationRequest fields (plus the model name to use)."""
    body = apply_infotext(body)
    if body.restore_faces:
        raise _unsupported("restore_faces", "face restoration")
    if body.tiling:
        raise _unsupported("tiling", "tiling")
    if body.subseed_strength:
        raise _unsupported("subseed_strength", "variation seeds (subseed)")
    if body.seed_resize_from_w > 0 or body.seed_resize_from_h > 0:
        raise _unsupported("seed_resize_from_w/h", "resizing seeds from another size")
    if body.script_name:
        raise InvalidRequestError(
            f"Script '{body.script_name}' not found", "gambarkan has no A1111 scripts; leave script_name unset"
        )
    control = controlnet_fields(body.alwayson_scripts) if body.alwayson_scripts else {}
    if body.styles:
        raise InvalidRequestError(code="style_not_found", params={"name": str(body.styles[0])})
    overrides = body.override_settings or {}
    vae = overrides.get("sd_vae")
    if vae not in ("Automatic", "None", "", None):  # SillyTavern sends "" when no VAE is picked
        raise InvalidRequestError(code="unknown_vae", params={"name": str(vae)})
    clip_skip = overrides.get("CLIP_stop_at_last_layers", body.clip_skip or state.a1111_options.get("CLIP_stop_at_last_layers", 1))
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
    # A1111 >= 1.9 sends sampler_name="Euler a", scheduler="Karras"; the request folds them (any pair).
    sampler = body.sampler_name or body.sampler_index
    if sampler:
        fields["sampler"] = sampler
    if body.scheduler:
        fields["scheduler"] = body.scheduler
    if body.enable_hr:
        from gambarkan.server.a1111_images import hires_fields

        fields["hires"] = hires_fields(body)
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
            "sampler_name": infotext_fields(result.sampler)[0],
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
            "denoising_strength": body.denoising_strength if body.enable_hr else None,
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
    fields = to_fields(body, state)
    job = Job(state.build_request(fields), source="a1111", preview_every=max(preview_every, 0))
    state.queue.submit(job)
    try:
        result = await asyncio.wrap_future(job.future)
    finally:
        job.release()
    if result.model_hash:
        state.model_hashes[state.find_model(fields["model"]).name] = result.model_hash
    images = [png_base64(image.image, image.parameters) for image in result.images] if body.send_images else []
    return {"images": images, "parameters": body.model_dump(), "info": info_json(result, body)}


@router.get("/sdapi/v1/sd-models", summary="Models (A1111 checkpoints)")
async def sd_models(request: Request) -> list[dict[str, Any]]:
    state = request.app.state.gambarkan
    out = []
    for e in state.models().values():
        short = state.model_hashes.get(e.name)  # learnt when the model ran (A1111 also hashes lazily)
        out.append({"title": f"{e.name} [{short}]" if short else e.name, "model_name": e.name, "hash": short,
                    "sha256": None, "filename": e.name, "config": None})
    return out


@router.get("/sdapi/v1/samplers", summary="Sampler names")
async def samplers() -> list[dict[str, Any]]:
    from gambarkan.sampler_names import SAMPLER_NAMES

    return [{"name": s.name, "aliases": list(s.aliases), "options": dict(s.options)} for s in SAMPLER_NAMES]


@router.get("/sdapi/v1/schedulers", summary="Schedule types (A1111 >= 1.9)")
async def schedulers() -> list[dict[str, Any]]:
    from gambarkan.sampler_names import SCHEDULE_TYPES

    return [
        {"name": t.name, "label": t.label, "aliases": list(t.aliases) or None, "default_rho": t.default_rho,
         "need_inner_model": t.need_inner_model}
        for t in SCHEDULE_TYPES
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


# -- the routes A1111 clients call on connect (SillyTavern, Open WebUI, webuiapi) --------------
# Real content where gambarkan has it (LoRAs, embeddings, memory), A1111's empty shapes otherwise.


class NotImplementedYet(GambarkanError):
    """An A1111 route gambarkan cannot answer yet (501, not a silent empty answer)."""

    http_status = 501
    code = "not_implemented"


def _safetensors_header(path: Any) -> dict[str, Any]:
    """The JSON header of a .safetensors file (tensor shapes, ``__metadata__``), without torch."""
    try:
        with open(path, "rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if not 0 < size <= 16 * 1024 * 1024:
                return {}
            header = json.loads(handle.read(size))
    except (OSError, ValueError):
        return {}
    return header if isinstance(header, dict) else {}


def _network_files(request: Request, kind: str) -> list[Any]:
    from gambarkan.models.loras import list_files, search_dirs

    return list_files(search_dirs(request.app.state.gambarkan.settings, kind), kind)


@router.get("/sdapi/v1/loras", summary="LoRAs in the server's LoRA folders (A1111 Lora extension shape)")
async def loras(request: Request) -> list[dict[str, Any]]:
    out = []
    for file in _network_files(request, "lora"):
        metadata = _safetensors_header(file.path).get("__metadata__")
        out.append({"name": file.name, "alias": file.name, "path": file.name + ".safetensors",
                    "metadata": metadata if isinstance(metadata, dict) else {}})
    return out


@router.get("/sdapi/v1/embeddings", summary="Textual-inversion embeddings in the server's folders")
async def embeddings(request: Request) -> dict[str, Any]:
    loaded: dict[str, Any] = {}
    for file in _network_files(request, "embedding"):
        shapes = [v.get("shape") for k, v in _safetensors_header(file.path).items() if k != "__metadata__" and isinstance(v, dict)]
        shape = next((s for s in shapes if isinstance(s, list) and len(s) == 2), None)
        loaded[file.name] = {"step": None, "sd_checkpoint": None, "sd_checkpoint_name": None,
                             "shape": shape[1] if shape else None, "vectors": shape[0] if shape else None}
    return {"loaded": loaded, "skipped": {}}


@router.get("/sdapi/v1/sd-vae", summary="Separate VAEs (none: each model brings its own)")
async def sd_vae() -> list[dict[str, Any]]:
    return []


@router.get("/sdapi/v1/sd-modules", summary="Forge's extra modules (none)")
async def sd_modules() -> list[dict[str, Any]]:
    return []


@router.get("/sdapi/v1/hypernetworks", summary="Hypernetworks (none: gambarkan does not run them)")
async def hypernetworks() -> list[dict[str, Any]]:
    return []


@router.get("/sdapi/v1/face-restorers", summary="Face restorers (none)")
async def face_restorers() -> list[dict[str, Any]]:
    return []


@router.get("/sdapi/v1/realesrgan-models", summary="Real-ESRGAN models among the upscalers")
async def realesrgan_models(request: Request) -> list[dict[str, Any]]:
    from gambarkan.models.upscalers import local_upscalers

    files = local_upscalers(request.app.state.gambarkan.settings).values()
    return [{"name": f.label, "path": f.path.name if f.path else None, "scale": 2 if f.label.lower().startswith("2x") else 4}
            for f in files if "esrgan" in f.label.lower()]


@router.get("/sdapi/v1/prompt-styles", summary="Saved A1111 prompt styles (none)")
async def prompt_styles() -> list[dict[str, Any]]:
    return []


@router.get("/sdapi/v1/script-info", summary="Scripts with their arguments (none)")
async def script_info() -> list[dict[str, Any]]:
    return []


@router.get("/sdapi/v1/extensions", summary="A1111 extensions (none)")
async def extensions() -> list[dict[str, Any]]:
    return []


@router.get("/sdapi/v1/cmd-flags", summary="Start-up flags as A1111 names them (nothing secret)")
async def cmd_flags(request: Request) -> dict[str, Any]:
    state = request.app.state.gambarkan
    return {
        "api": True,
        "nowebui": False,
        "api_auth": None,  # never the keys themselves
        "api_keys_required": bool(state.config.api_keys),
        "lowvram": False,
        "medvram": False,
        "no_half": False,
        "xformers": False,
        "queue_size": state.config.queue_size,
        "gambarkan_version": __version__,
    }


@router.get("/sdapi/v1/memory", summary="RAM (and CUDA) memory, A1111 shape")
async def memory() -> dict[str, Any]:
    import sys

    import psutil

    vm = psutil.virtual_memory()
    process = psutil.Process()
    ram = {"free": vm.available, "used": process.memory_info().rss, "total": vm.total}
    torch = sys.modules.get("torch")  # only when the engine already imported it: a route never loads torch
    cuda: dict[str, Any] = {"error": "unavailable"}
    if torch is not None and torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        stats = torch.cuda.memory_stats()
        cuda = {
            "system": {"free": free, "used": total - free, "total": total},
            "active": {"current": stats.get("active_bytes.all.current", 0), "peak": stats.get("active_bytes.all.peak", 0)},
            "allocated": {"current": stats.get("allocated_bytes.all.current", 0), "peak": stats.get("allocated_bytes.all.peak", 0)},
            "reserved": {"current": stats.get("reserved_bytes.all.current", 0), "peak": stats.get("reserved_bytes.all.peak", 0)},
            "inactive": {"current": stats.get("inactive_split_bytes.all.current", 0), "peak": stats.get("inactive_split_bytes.all.peak", 0)},
            "events": {"retries": stats.get("num_alloc_retries", 0), "oom": stats.get("num_ooms", 0)},
        }
    return {"ram": ram, "cuda": cuda}


@router.post("/sdapi/v1/refresh-checkpoints", summary="Re-read the installed models (always current)")
async def refresh_checkpoints() -> None:
    return None


@router.post("/sdapi/v1/refresh-vae", summary="Re-read the VAEs (none)")
async def refresh_vae() -> None:
    return None


@router.post("/sdapi/v1/refresh-loras", summary="Re-read the LoRA folders (read on every request)")
async def refresh_loras() -> None:
    return None


@router.post("/sdapi/v1/refresh-embeddings", summary="Re-read the embedding folders (read on every request)")
async def refresh_embeddings() -> None:
    return None


@router.post("/sdapi/v1/unload-checkpoint", summary="Free the loaded model's memory (it reloads on the next job)")
async def unload_checkpoint(request: Request) -> dict[str, Any]:
    for engine in request.app.state.gambarkan.engines:
        cache = getattr(engine, "cache", None)
        if cache is not None:
            await asyncio.to_thread(cache.clear)  # a running job keeps its own reference and finishes
    return {}


@router.post("/sdapi/v1/reload-checkpoint", summary="Load the model again (it loads on the next job)")
async def reload_checkpoint() -> dict[str, Any]:
    return {}


@router.post("/sdapi/v1/skip", summary="Skip the running image (stops the running job)")
async def skip(request: Request) -> dict[str, Any]:
    request.app.state.gambarkan.queue.interrupt()
    return {}


@router.post("/sdapi/v1/interrogate", summary="Image captioning (not available: 501)")
async def interrogate() -> None:
    raise NotImplementedYet(code="interrogate_unavailable")
from gambarkan.server import a1111_images  # noqa: E402 - its bodies extend Txt2ImgBody above

router.include_router(a1111_images.router)
