"""OpenAI-compatible ``POST /v1/images/edits`` and ``/v1/images/variations`` (multipart).

As OpenAI defines them: an edit repaints the *transparent* area of ``mask`` (or of the image
itself when no mask is sent); without any transparency the whole image is re-imagined
(img2img). A variation is an img2img of the image with the prompt stored in it (a neutral quality
prompt when it has none).
Works with ``OpenAI(...).images.edit(...)`` and ``images.create_variation(...)``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request

from gambarkan.errors import InvalidRequestError
from gambarkan.server.jobs import Job, png_base64
from gambarkan.server.state import OPENAI_MODEL_ALIASES

router = APIRouter(tags=["openai"])
VARIATION_STRENGTH = 0.6
VARIATION_PROMPT = "high quality, detailed"  # when the image carries no prompt of its own
MAX_FORM_FILES = 4


async def _form(request: Request) -> Any:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidRequestError("send the image as multipart/form-data", "the OpenAI client does this: client.images.edit(image=open('in.png', 'rb'), prompt=...)")
    try:
        return await request.form(max_files=MAX_FORM_FILES, max_fields=50)
    except Exception as exc:  # noqa: BLE001 - starlette raises its own parse errors
        raise InvalidRequestError(f"unreadable multipart body: {str(exc)[:200]}") from None


async def _file(form: Any, *names: str) -> bytes | None:
    for name in names:
        value = form.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            raise InvalidRequestError(f"{name} must be a file part, not text", "send the image as a file in the multipart body")
        return await value.read()
    return None


def _text(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None or not isinstance(value, str):
        return None
    return value


def _number(form: Any, name: str, kind: type, lo: float, hi: float) -> Any:
    raw = _text(form, name)
    if raw in (None, ""):
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise InvalidRequestError(f"{name} must be a number, got {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise InvalidRequestError(f"{name} {value} is out of range", f"use a value from {lo:g} to {hi:g}")
    return value


def _common(form: Any) -> dict[str, Any]:
    from gambarkan.server.openai import parse_size

    fields: dict[str, Any] = {}
    model = _text(form, "model")
    if model and not OPENAI_MODEL_ALIASES.match(model):
        fields["model"] = model
    width, height = parse_size(_text(form, "size"))
    if width:
        fields["width"], fields["height"] = width, height
    n = _number(form, "n", int, 1, 16)
    if n:
        fields["batch_size"] = n
    for name, kind, lo, hi in (("seed", int, -1, 2**32 - 1), ("steps", int, 1, 150), ("strength", float, 0.0, 1.0), ("cfg", float, 0.0, 30.0)):
        value = _number(form, name, kind, lo, hi)
        if value is not None:
            fields[name] = value
    negative = _text(form, "negative_prompt")
    if negative:
        fields["negative_prompt"] = negative
    return fields


def _response_format(form: Any) -> str:
    value = _text(form, "response_format") or "url"
    if value not in ("url", "b64_json"):
        raise InvalidRequestError(f"response_format '{value}' is not supported", "use url or b64_json")
    return value


async def _run(request: Request, fields: dict[str, Any], response_format: str) -> dict[str, Any]:
    state = request.app.state.gambarkan
    fields["save"] = state.config.save_outputs or response_format == "url"
    job = Job(state.build_request(fields), source="openai")
    state.queue.submit(job)
    try:
        result = await asyncio.wrap_future(job.future)
    finally:
        job.release()
    data = []
    for image in result.images:
        item: dict[str, Any] = {"revised_prompt": result.prompt if result.prompt != result.original_prompt else None}
        if response_format == "b64_json":
            item["b64_json"] = png_base64(image.image, image.parameters)
        else:
            url = state.image_url(image.path)
            item["url"] = str(request.base_url).rstrip("/") + url if url else None
        data.append(item)
    size = result.images[0].image.size if result.images else (result.width, result.height)
    return {"created": int(time.time()), "data": data, "output_format": "png", "size": f"{size[0]}x{size[1]}"}


def openai_mask(data: bytes) -> Any:
    """OpenAI's mask: its fully transparent pixels are what gets repainted (white in ours)."""
    from gambarkan.inputs.images import load_image

    mask = load_image(data, "mask")
    if mask.alpha is None:
        raise InvalidRequestError("the mask has no transparent area", "the mask's transparent pixels mark what to repaint (a PNG with alpha)")
    return mask.alpha.point(lambda v: 255 if v < 128 else 0)


@router.post("/v1/images/edits", summary="OpenAI-compatible image edit (inpainting)")
async def images_edits(request: Request) -> dict[str, Any]:
    from gambarkan.inputs.images import load_image

    form = await _form(request)
    image = await _file(form, "image", "image[]")
    if image is None:
        raise InvalidRequestError("the multipart body has no image part", "send the image file as the 'image' field")
    prompt = _text(form, "prompt")
    if not prompt or not prompt.strip():
        raise InvalidRequestError("prompt is required", "say what the edited image should show")
    fields = {"prompt": prompt, "init_image": image, **_common(form)}
    mask = await _file(form, "mask")
    if mask is not None:
        fields["mask"] = openai_mask(mask)
    elif load_image(image, "image").alpha is not None:
        fields["mask_from_alpha"] = True
    return await _run(request, fields, _response_format(form))


@router.post("/v1/images/variations", summary="OpenAI-compatible image variation")
async def images_variations(request: Request) -> dict[str, Any]:
    import io

    from gambarkan.outputs.png import parse_parameters, read_parameters_text

    form = await _form(request)
    image = await _file(form, "image")
    if image is None:
        raise InvalidRequestError("the multipart body has no image part", "send the image file as the 'image' field")
    fields = {"init_image": image, "strength": VARIATION_STRENGTH, **_common(form)}
    prompt = _text(form, "prompt")
    if not prompt:
        from gambarkan.inputs.images import load_image

        load_image(image, "image")  # limits first, then the stored text
        stored = read_parameters_text(io.BytesIO(image))
        prompt = parse_parameters(stored)["prompt"] if stored else ""
    fields["prompt"] = prompt or VARIATION_PROMPT
    return await _run(request, fields, _response_format(form))
