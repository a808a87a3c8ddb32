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
    quality: str | None = Field(
        None, max_length=20, description="accepted for compatibility; steps come from the preset"
    )
    style: str | None = Field(None, max_length=20, description="accepted for compatibility")
    user: str | None = Field(None, max_length=256)
    output_format: Literal["png"] | None = None
    stream: Literal[False] | None = None
    # gambarkan extras
    negative_prompt: str | None = Field(None, max_length=20_000)
    seed: int | None = Field(None, ge=-1, le=MAX_SEED)
    steps: int | None = Field(None, ge=1, le=150)
    cfg: float | None = Field(None, ge=0, le=30)
    sampler: str | None = Field(None, max_length=64)
    preset: str | None = Field(None, max_length=64)


def parse_size(size: str | None) -> tuple[int | None, int | None]:
    """``"512x512"`` -> (512, 512); None/``auto`` -> the preset's size."""
    if size is None or size.strip().lower() == "auto":
        return None, None
    match = _SIZE.match(size)
    if not match:
        raise InvalidRequestError(f"invalid size '{size}'", "use WIDTHxHEIGHT, e.g. 512x512")
    return int(match.group(1)), int(match.group(2))


@router.post("/v1/images/generations", summary="OpenAI-compatible image generation")
async def images_generations(request: Request, body: ImageGenerationBody) -> dict[str, Any]:
    state = request.app.state.gambarkan
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
        "preset": body.preset,
    }
    fields.update({k: v for k, v in extras.items() if v is not None})
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
            item["b64_json"] = png_base64(image.image, image.parameters)
        else:
            url = state.image_url(image.path)
            item["url"] = str(request.base_url).rstrip("/") + url if url else None
        data.append(item)
    return {
        "created": int(time.time()),
        "data": data,
        "output_format": "png",
        "size": f"{result.width}x{result.height}",
    }


@router.get("/v1/models", summary="OpenAI-compatible model list")
async def list_models(request: Request) -> dict[str, Any]:
    state = request.app.state.gambarkan
    return {
        "object": "list",
        "data": [{"id": name, "object": "model", "created": 0, "owned_by": "gambarkan"} for name in state.models()],
    }
