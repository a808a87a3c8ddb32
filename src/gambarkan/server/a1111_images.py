"""A1111's image routes: img2img, extras (upscale), png-info, upscalers, latent upscale modes.

Same paths, field names and shapes as AUTOMATIC1111 v1.10 (``modules/api/models.py``), so the
``webuiapi`` client's ``img2img``/``extra_single_image``/``extra_batch_images``/``png_info``
work. Included by ``server.a1111``'s router. Images arrive as base64 (or data URLs) and are
decoded once by ``inputs.images`` with its limits; a path is never read over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from gambarkan.errors import InvalidRequestError
from gambarkan.server.jobs import Job, png_base64

router = APIRouter(tags=["automatic1111"])

A1111_FILLS = ("fill", "original", "latent_noise", "latent_nothing")  # inpainting_fill 0..3
A1111_RESIZE = {0: "just_resize", 1: "crop_and_resize", 2: "resize_and_fill", 3: "just_resize"}


def image_bytes(value: Any, field: str) -> bytes:
    """The bytes of a base64 / data-URL image sent by a client (never a server path)."""
    from gambarkan.inputs.images import MAX_BYTES, _DATA_URL

    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"{field}: expected a base64 image", "send the PNG/JPEG bytes as base64 or a data URL")
    body = _DATA_URL.sub("", value.strip(), count=1)
    if len(body) > MAX_BYTES * 4 // 3 + 4:
        raise InvalidRequestError(f"{field}: the image is over the {MAX_BYTES // 2**20} MiB limit")
    try:
        data = base64.b64decode("".join(body.split()), validate=True)
    except ValueError:
        raise InvalidRequestError(f"{field}: not valid base64", "send the image file's bytes base64-encoded") from None
    if not data:
        raise InvalidRequestError(f"{field}: the image is empty")
    return data


def binary_mask(data: bytes, field: str = "mask") -> Any:
    """A1111's ``create_binary_mask``: opaque (alpha) or white (luminance) = repaint, rounded at 128."""
    from gambarkan.inputs.images import load_image

    decoded = load_image(data, field)
    channel = decoded.alpha if decoded.alpha is not None else decoded.image.convert("L")
    return channel.point(lambda v: 255 if v > 128 else 0)


def hires_fields(body: Any) -> dict[str, Any]:
    """txt2img's ``enable_hr`` fields -> the request's ``hires`` block."""
    for name in ("hr_checkpoint_name", "hr_sampler_name", "hr_prompt", "hr_negative_prompt"):
        value = getattr(body, name, None)
        if value and not (name == "hr_prompt" and value == body.prompt) and not (name == "hr_negative_prompt" and value == body.negative_prompt):
            raise InvalidRequestError(f"{name}: a different second-pass model, sampler or prompt is not supported by gambarkan", f"leave {name} unset")
    hires: dict[str, Any] = {"scale": body.hr_scale, "strength": 0.7 if body.denoising_strength is None else body.denoising_strength}
    if body.hr_upscaler:
        hires["upscaler"] = body.hr_upscaler
    if body.hr_second_pass_steps:
        hires["steps"] = body.hr_second_pass_steps
    if body.hr_resize_x or body.hr_resize_y:
        hires["width"], hires["height"] = body.hr_resize_x or None, body.hr_resize_y or None
    return hires


def _img2img_body() -> type[BaseModel]:
    from gambarkan.server.a1111 import Txt2ImgBody

    class Img2ImgBody(Txt2ImgBody):
        """A1111's ``StableDiffusionProcessingImg2Img`` request (the fields gambarkan uses)."""

        init_images: list[str] = Field(default_factory=list, max_length=16)
        resize_mode: int = Field(0, ge=0, le=3)
        denoising_strength: float | None = Field(0.75, ge=0, le=1)
        image_cfg_scale: float | None = None
        mask: str | None = None
        mask_blur: int | None = Field(None, ge=0, le=64)
        mask_blur_x: int = Field(4, ge=0, le=64)
        mask_blur_y: int = Field(4, ge=0, le=64)
        inpainting_fill: int = Field(0, ge=0, le=3)
        inpaint_full_res: bool = True
        inpaint_full_res_padding: int = Field(0, ge=0, le=256)
        inpainting_mask_invert: int = Field(0, ge=0, le=1)
        initial_noise_multiplier: float | None = None
        include_init_images: bool = False

    return Img2ImgBody


Img2ImgBody = _img2img_body()


def img2img_fields(body: Any, state: Any) -> dict[str, Any]:
    """A1111 img2img request -> GenerationRequest fields."""
    from gambarkan.server.a1111 import to_fields

    if not body.init_images:
        raise InvalidRequestError("init_images: give one image", "send the image base64-encoded in init_images")
    if len(body.init_images) > 1:
        raise InvalidRequestError("init_images: gambarkan takes one image per request", "send one image; use batch_size for more results")
    if body.enable_hr:
        raise InvalidRequestError("enable_hr: the hires fix is for txt2img", "leave enable_hr unset for img2img")
    fields = to_fields(body, state)
    fields["init_image"] = image_bytes(body.init_images[0], "init_images[0]")
    fields["strength"] = 0.75 if body.denoising_strength is None else body.denoising_strength
    fields["resize_mode"] = A1111_RESIZE[body.resize_mode]
    if body.mask:
        fields["mask"] = binary_mask(image_bytes(body.mask, "mask"))
        fields["mask_resize"] = True  # A1111 resizes the mask to the image
        fields["mask_blur"] = body.mask_blur if body.mask_blur is not None else max(body.mask_blur_x, body.mask_blur_y)
        fields["inpainting_fill"] = A1111_FILLS[body.inpainting_fill]
        fields["mask_invert"] = bool(body.inpainting_mask_invert)
        fields["inpaint_area"] = "only_masked" if body.inpaint_full_res else "whole"
        fields["inpaint_padding"] = body.inpaint_full_res_padding
    return fields


def _info(result: Any, body: Any, strength: float | None) -> str:
    from gambarkan.server.a1111 import info_json

    info = json.loads(info_json(result, body))
    info["denoising_strength"] = strength
    if result.images:
        info["width"], info["height"] = result.images[0].image.size
    return json.dumps(info, ensure_ascii=False)


@router.post("/sdapi/v1/img2img", summary="A1111-compatible image to image and inpainting")
async def img2img(request: Request, body: Img2ImgBody) -> dict[str, Any]:  # type: ignore[valid-type]
    state = request.app.state.gambarkan
    job = Job(state.build_request(img2img_fields(body, state)), source="a1111")
    state.queue.submit(job)
    try:
        result = await asyncio.wrap_future(job.future)
    finally:
        job.release()
    images = [png_base64(image.image, image.parameters) for image in result.images] if body.send_images else []
    parameters = body.model_dump()
    if not body.include_init_images:
        parameters["init_images"], parameters["mask"] = None, None
    return {"images": images, "parameters": parameters, "info": _info(result, body, job.request.strength)}


class ExtrasBase(BaseModel):
    """A1111's ``ExtrasBaseRequest``: resize by a factor or to a size, one or two upscalers."""

    model_config = ConfigDict(extra="ignore")

    resize_mode: int = Field(0, ge=0, le=1)
    show_extras_results: bool = True
    gfpgan_visibility: float = Field(0, ge=0, le=1)
    codeformer_visibility: float = Field(0, ge=0, le=1)
    codeformer_weight: float = Field(0, ge=0, le=1)
    upscaling_resize: float = Field(2, ge=1, le=8)
    upscaling_resize_w: int = Field(512, ge=1, le=8192)
    upscaling_resize_h: int = Field(512, ge=1, le=8192)
    upscaling_crop: bool = True
    upscaler_1: str | None = Field("None", max_length=200)
    upscaler_2: str | None = Field("None", max_length=200)
    extras_upscaler_2_visibility: float = Field(0, ge=0, le=1)
    upscale_first: bool = False


class ExtrasSingleImageBody(ExtrasBase):
    image: str = Field("", description="base64 image")


class ImageItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: str
    name: str = ""


class ExtrasBatchImagesBody(ExtrasBase):
    imageList: list[ImageItem] = Field(default_factory=list, max_length=64)  # noqa: N815 - A1111's name


def _extras(body: ExtrasBase, data: bytes, field: str, settings: Any = None) -> tuple[Any, str]:
    """One image through A1111's upscale step; returns (image, the postprocessing infotext)."""
    from PIL import Image

    from gambarkan.engine.upscale import upscale_to
    from gambarkan.inputs.images import load_image
    from gambarkan.models.upscalers import canonical_name, label

    if body.gfpgan_visibility or body.codeformer_visibility:
        raise InvalidRequestError("gfpgan_visibility/codeformer_visibility: face restoration is not supported by gambarkan", "leave them 0")
    source = load_image(data, field)
    first = canonical_name(body.upscaler_1 or "None", settings)
    if body.resize_mode == 1:
        width, height = body.upscaling_resize_w, body.upscaling_resize_h
        ratio = max(width / source.width, height / source.height) if body.upscaling_crop else min(width / source.width, height / source.height)
        scale = ratio
    else:
        scale = body.upscaling_resize
    target_w, target_h = round(source.width * scale), round(source.height * scale)
    from gambarkan.inputs.images import MAX_PIXELS

    if target_w * target_h > MAX_PIXELS * 4:
        raise InvalidRequestError(f"the upscaled image would be {target_w}x{target_h}, over {MAX_PIXELS * 4 / 1e6:.0f} MP", "use a smaller upscaling_resize")
    image = upscale_to(source.image, target_w, target_h, first, settings=settings)
    second = canonical_name(body.upscaler_2 or "None", settings)
    if second != "none" and body.extras_upscaler_2_visibility > 0:
        other = upscale_to(source.image, target_w, target_h, second, settings=settings)
        image = Image.blend(image, other, body.extras_upscaler_2_visibility)
    if body.resize_mode == 1 and body.upscaling_crop and image.size != (body.upscaling_resize_w, body.upscaling_resize_h):
        left, top = (image.width - body.upscaling_resize_w) // 2, (image.height - body.upscaling_resize_h) // 2
        image = image.crop((left, top, left + body.upscaling_resize_w, top + body.upscaling_resize_h))
    info = f"Postprocess upscale by: {scale:g}, Postprocess upscaler: {label(first, settings)}"
    if second != "none" and body.extras_upscaler_2_visibility > 0:
        info += f", Postprocess upscaler 2: {label(second, settings)}"
    return image, info


async def _in_thread(func: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, func, *args)


@router.post("/sdapi/v1/extra-single-image", summary="A1111 extras: upscale one image")
async def extra_single_image(request: Request, body: ExtrasSingleImageBody) -> dict[str, Any]:
    settings = request.app.state.gambarkan.settings
    image, info = await _in_thread(_extras, body, image_bytes(body.image, "image"), "image", settings)
    return {"html_info": info, "image": png_base64(image)}


@router.post("/sdapi/v1/extra-batch-images", summary="A1111 extras: upscale several images")
async def extra_batch_images(request: Request, body: ExtrasBatchImagesBody) -> dict[str, Any]:
    settings = request.app.state.gambarkan.settings
    if not body.imageList:
        raise InvalidRequestError("imageList: give at least one image", "send [{\"data\": base64, \"name\": ...}]")
    images, info = [], ""
    for index, item in enumerate(body.imageList):
        image, info = await _in_thread(_extras, body, image_bytes(item.data, f"imageList[{index}].data"), f"imageList[{index}]", settings)
        images.append(png_base64(image))
    return {"html_info": info, "images": images}


class PNGInfoBody(BaseModel):
    image: str


def png_info_of(data: bytes) -> dict[str, Any]:
    """A1111's ``/png-info`` answer: the raw infotext, other text chunks, and the parsed fields."""
    from PIL import Image

    from gambarkan.inputs.images import load_image
    from gambarkan.outputs.png import PARAMETERS_KEY, parse_parameters, read_parameters_text

    load_image(data, "image")  # limits and decoding checked before the text is read
    text = read_parameters_text(io.BytesIO(data)) or ""
    with Image.open(io.BytesIO(data)) as img:
        items = {k: v for k, v in img.info.items() if isinstance(k, str) and isinstance(v, str) and k != PARAMETERS_KEY}
    if not text:
        return {"info": "", "items": items, "parameters": {}}
    parsed = parse_parameters(text)
    parameters: dict[str, Any] = {"Prompt": parsed.pop("prompt"), "Negative prompt": parsed.pop("negative_prompt")}
    width, height = parsed.pop("width", None), parsed.pop("height", None)
    parameters.update(parsed)
    if width is not None:
        parameters["Size-1"], parameters["Size-2"] = width, height
    return {"info": text, "items": items, "parameters": parameters}


@router.post("/sdapi/v1/png-info", summary="Read the generation parameters stored in an image")
async def png_info(body: PNGInfoBody) -> dict[str, Any]:
    return png_info_of(image_bytes(body.image, "image"))


@router.get("/sdapi/v1/upscalers", summary="Upscalers (A1111 shape)")
async def upscalers(request: Request) -> list[dict[str, Any]]:
    from gambarkan.models.upscalers import BUILTIN, local_upscalers

    settings = request.app.state.gambarkan.settings
    items = [{"name": label, "model_name": None, "model_path": None, "model_url": None, "scale": 4.0}
             for name, label in BUILTIN.items() if not name.startswith("latent")]
    for item in local_upscalers(settings).values():
        items.append({"name": item.label, "model_name": item.label, "model_path": str(item.path), "model_url": None, "scale": 4.0})
    return items


@router.get("/sdapi/v1/latent-upscale-modes", summary="Latent upscale modes for the hires fix")
async def latent_upscale_modes() -> list[dict[str, Any]]:
    from gambarkan.models.upscalers import BUILTIN

    return [{"name": label} for name, label in BUILTIN.items() if name.startswith("latent")]
