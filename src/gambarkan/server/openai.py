"""OpenAI-compatible images API: ``POST /v1/images/generations`` and ``GET /v1/models``.

Works with the official client: ``OpenAI(base_url=".../v1", api_key=KEY).images.generate(...)``.
``model`` is a package name or the server's model name; OpenAI's own names (``dall-e-3``,
``gpt-image-1``) mean the server's default so existing apps work unchanged.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from gambarkan.errors import InvalidRequestError
from gambarkan.request import MAX_SEED
from gambarkan.server.jobs import Job, png_base64
from gambarkan.server.state import OPENAI_MODEL_ALIASES

router = APIRouter(tags=["openai"])

_SIZE = re.compile(r"^\s*(\d{2,5})\s*[xX×]\s*(\d{2,5})\s*$")


class ImageGenerationBody(BaseModel):
    """OpenAI's image generation request, plus a few gambarkan extras (``extra_body``)."""

    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(max_length=32_000)
    model: str | None = Field(None, max_length=200)
    n: int = Field(1, ge=1, le=16)
    size: str | None = Field(None, max_length=20, description="WIDTHxHEIGHT, e.g. 512x512, or auto")
    response_format: Literal["url", "b64_json"] | None = None
    quality: Literal["low", "medium", "high", "auto", "standard", "hd"] | None = Field(
        None, description="steps preset: low = 12, high/hd = 40, auto/medium/standard = the package's own"
    )
    style: str | None = Field(None, max_length=20, description="accepted for compatibility")
    user: str | None = Field(None, max_length=256)
    output_format: Literal["png", "jpeg", "webp"] | None = None
    output_compression: int | None = Field(None, ge=0, le=100, description="JPEG/WebP quality, 0-100 (100 = best)")
    background: Literal["transparent", "opaque", "auto"] | None = None
    moderation: str | None = Field(None, max_length=20)
    stream: bool | None = None
    partial_images: int | None = Field(None, ge=0, le=3)
    # gambarkan extras
    negative_prompt: str | None = Field(None, max_length=20_000)
    seed: int | None = Field(None, ge=-1, le=MAX_SEED)
    steps: int | None = Field(None, ge=1, le=150)
    cfg: float | None = Field(None, ge=0, le=30)
    sampler: str | None = Field(None, max_length=64)
    scheduler: str | None = Field(None, max_length=64, description="A1111 schedule type, e.g. Karras")
    preset: str | None = Field(None, max_length=64)


def parse_size(size: str | None) -> tuple[int | None, int | None]:
    """``"512x512"`` -> (512, 512); None/``auto`` -> the preset's size."""
    if size is None or size.strip().lower() == "auto":
        return None, None
    match = _SIZE.match(size)
    if not match:
        raise InvalidRequestError(f"invalid size '{size}'", "use WIDTHxHEIGHT, e.g. 512x512")
    return int(match.group(1)), int(match.group(2))


# OpenAI ``quality`` -> denoising steps; None keeps the package's own (tuned) step count.
QUALITY_STEPS: dict[str, int | None] = {"low": 12, "medium": None, "standard": None, "auto": None, "high": 40, "hd": 40}


class BackgroundError(InvalidRequestError):
    http_status = 400


def _usage(prompt: str, images: int) -> dict[str, Any]:
    """OpenAI's ``usage`` block; tokens are the prompt's words (diffusion models bill no tokens)."""
    words = len(re.findall(r"\w+", prompt))
    return {"input_tokens": words, "input_tokens_details": {"text_tokens": words, "image_tokens": 0},
            "output_tokens": 0, "total_tokens": words, "output_tokens_details": {"text_tokens": 0, "image_tokens": 0}}


@router.post("/v1/images/generations", summary="OpenAI-compatible image generation", response_model=None)
async def images_generations(request: Request, body: ImageGenerationBody) -> Any:
    state = request.app.state.gambarkan
    if body.background == "transparent":
        raise BackgroundError(code="background_not_supported")
    width, height = parse_size(body.size)
    model = body.model
    if model and OPENAI_MODEL_ALIASES.match(model):
        model = None
    response_format = body.response_format or "url"
    fields: dict[str, Any] = {
        "prompt": body.prompt,
        "model": model,
        "width": width,
        "height": height,
        "batch_size": body.n,
        "save": state.config.save_outputs or response_format == "url",
    }
    extras = {
        "negative_prompt": body.negative_prompt,
        "seed": body.seed,
        "steps": body.steps,
        "cfg": body.cfg,
        "sampler": body.sampler,
        "scheduler": body.scheduler,
        "preset": body.preset,
    }
    if body.quality and body.steps is None and QUALITY_STEPS[body.quality] is not None:
        extras["steps"] = QUALITY_STEPS[body.quality]
    fields.update({k: v for k, v in extras.items() if v is not None})
    output_format = body.output_format or "png"
    compression = 100 if body.output_compression is None else body.output_compression
    if body.stream:
        return _stream(state, fields, body, output_format, compression)
    job = Job(state.build_request(fields), source="openai")
    state.queue.submit(job)
    try:
        result = await asyncio.wrap_future(job.future)
    finally:
        job.release()
    revised = result.prompt if result.prompt != result.original_prompt else None
    data = []
    for image in result.images:
        item: dict[str, Any] = {"revised_prompt": revised}
        if response_format == "b64_json":
            item["b64_json"] = _b64(image.image, image.parameters, output_format, compression)
        else:
            url = state.image_url(image.path)
            item["url"] = str(request.base_url).rstrip("/") + url if url else None
        data.append(item)
    return {
        "created": int(time.time()),
        "data": data,
        "background": "opaque",
        "output_format": output_format if response_format == "b64_json" else "png",  # saved files are PNG
        "quality": body.quality if body.quality in ("low", "medium", "high") else None,
        "size": f"{result.width}x{result.height}",
        "usage": _usage(body.prompt, len(result.images)),
    }


def _b64(image: Any, parameters: str | None, output_format: str, compression: int) -> str:
    import base64

    from gambarkan.outputs.png import encode_image

    if output_format == "png":
        return png_base64(image, parameters)
    return base64.b64encode(encode_image(image, parameters, output_format, compression)).decode("ascii")


def _stream(state: Any, fields: dict[str, Any], body: ImageGenerationBody, output_format: str, compression: int) -> Any:
    """OpenAI's streaming shape: ``image_generation.partial_image`` events from the live preview,
    then one ``image_generation.completed`` per image (server-sent events)."""
    import base64
    import io
    import json

    from fastapi.responses import StreamingResponse
    from PIL import Image

    wanted = body.partial_images or 0
    job = Job(state.build_request(fields), source="openai", preview_every=1 if wanted else 0, keep_previews=bool(wanted))
    state.queue.submit(job)
    quality = body.quality if body.quality in ("low", "medium", "high") else "auto"

    def frame(kind: str, data: dict[str, Any]) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

    async def events() -> Any:
        sent = 0
        try:
            async for event in job.stream():
                data = event["data"]
                if event["event"] == "progress" and data.get("preview") and sent < wanted and data.get("steps"):
                    # Evenly spread over the run: partial k at step ceil(steps * (k + 1) / (wanted + 1)).
                    if data["step"] * (wanted + 1) >= data["steps"] * (sent + 1) and data["step"] < data["steps"]:
                        preview = Image.open(io.BytesIO(base64.b64decode(data["preview"])))
                        yield frame("image_generation.partial_image", {
                            "b64_json": _b64(preview, None, output_format, compression), "partial_image_index": sent,
                            "background": "opaque", "created_at": int(time.time()), "output_format": output_format,
                            "quality": quality, "size": f"{preview.width}x{preview.height}"})
                        sent += 1
                elif event["event"] == "error":
                    yield frame("error", {"error": data["error"]})
                    return
            result = await asyncio.wrap_future(job.future)
            for image in result.images:
                yield frame("image_generation.completed", {
                    "b64_json": _b64(image.image, image.parameters, output_format, compression), "background": "opaque",
                    "created_at": int(time.time()), "output_format": output_format, "quality": quality,
                    "size": f"{result.width}x{result.height}", "usage": _usage(body.prompt, len(result.images))})
        finally:
            if not job.future.done():
                job.cancel.set()  # the client went away: stop the job
            job.keep_previews = False
            job._compact(force=True)
            job.release()

    return StreamingResponse(events(), media_type="text/event-stream")


@router.get("/v1/models", summary="OpenAI-compatible model list")
async def list_models(request: Request) -> dict[str, Any]:
    state = request.app.state.gambarkan
    return {
        "object": "list",
        "data": [{"id": name, "object": "model", "created": 0, "owned_by": "gambarkan"} for name in state.models()],
    }
