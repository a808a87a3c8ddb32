"""Which pipeline a request needs (txt2img / img2img / inpaint, plus the hires fix) and its call.

``prepare`` does the pixel work before any model is loaded (resize, masks, blur, the
only-masked crop, the outpaint canvas and fill) and checks what only the plan can tell
(steps × strength). ``pipeline_for`` derives the img2img/inpaint pipeline from the loaded one
with ``from_pipe`` (same modules, no reload, no extra weights), cached on the ``LoadedModel``.
``run`` makes the pipeline call(s) of one batch; the loop, callbacks, cancel, progress, OOM
retry, saving and history stay in ``engine.generate``. Inpainting follows A1111: the mask is
blurred, the masked content filled, and the result overlaid so pixels outside the (blurred)
mask are exactly the input's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gambarkan.errors import InvalidRequestError
from gambarkan.request import GenerationRequest

TASK_CLASSES = {"img2img": "AutoPipelineForImage2Image", "inpaint": "AutoPipelineForInpainting"}
DEFAULT_STRENGTH = 0.75  # A1111's default denoising strength
FILL_LABELS = {"fill": "fill", "original": "original", "latent_noise": "latent noise", "latent_nothing": "latent nothing"}
RESIZE_LABELS = {"just_resize": "Just resize", "crop_and_resize": "Crop and resize", "resize_and_fill": "Resize and fill"}


@dataclass
class HiresPass:
    """The hires fix's second pass: upscale the first pass, then img2img at ``strength``."""

    width: int
    height: int
    upscaler: str
    steps: int  # the second pass's schedule length; int(steps * strength) of them run
    strength: float


@dataclass
class Task:
    """What one request asks of the pipeline, decided before the model is loaded."""

    kind: str  # txt2img | img2img | inpaint
    width: int  # the size the pipeline works at
    height: int
    steps_total: int  # denoising steps that actually run per batch (progress bars)
    call: dict[str, Any] = field(default_factory=dict)  # image, mask_image, strength ...
    finish: Callable[[Any], Any] | None = None  # paste back / overlay after the call
    hires: HiresPass | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    control: Any = None  # engine.control.ControlPlan when the request has ControlNet units
    ip_adapter: Any = None  # engine.ip_adapter.IPAdapterPlan when the request has a reference image

    @property
    def memory_size(self) -> tuple[int, int]:
        """The largest size any pass works at (what the memory mode must fit)."""
        if self.hires is not None:
            return self.hires.width, self.hires.height
        return self.width, self.height


def _steps_run(steps: int, strength: float, what: str) -> int:
    run = min(int(steps * strength), steps)
    if run < 1:
        need = next((n for n in range(steps, 151) if int(n * strength) >= 1), 150)
        if strength <= 0:
            raise InvalidRequestError(f"{what} 0 would give back the input unchanged", "a strength above 0 is needed")
        raise InvalidRequestError(code="strength_runs_no_step", params={"field": what, "strength": f"{strength:g}", "steps": steps, "need": need})
    return run


def _snap(value: float) -> int:
    return max(64, min(2048, int(round(value / 8)) * 8))


def _target_size(request: GenerationRequest, image_w: int, image_h: int) -> tuple[int, int]:
    """The working size of an img2img/inpaint run: the request's, else the image's (to a multiple of 8)."""
    if request.width and request.height:
        return request.width, request.height
    if request.width:
        return request.width, _snap(request.width * image_h / image_w)
    if request.height:
        return _snap(request.height * image_w / image_h), request.height
    return _snap(image_w), _snap(image_h)


def resize_image(image: Any, width: int, height: int, mode: str) -> Any:
    """A1111's resize modes: stretch, crop to fill, or fit and fill the borders from the edges."""
    from PIL import Image, ImageFilter

    lanczos = Image.Resampling.LANCZOS
    if image.size == (width, height):
        return image.copy()
    if mode == "just_resize":
        return image.resize((width, height), lanczos)
    ratio, src_ratio = width / height, image.width / image.height
    if mode == "crop_and_resize":
        w, h = (width, round(width / src_ratio)) if ratio > src_ratio else (round(height * src_ratio), height)
        resized = image.resize((max(1, w), max(1, h)), lanczos)
        left, top = (resized.width - width) // 2, (resized.height - height) // 2
        return resized.crop((left, top, left + width, top + height))
    w, h = (round(height * src_ratio), height) if ratio > src_ratio else (width, round(width / src_ratio))
    fitted = image.resize((max(1, w), max(1, h)), lanczos)
    canvas = image.resize((width, height), lanczos).filter(ImageFilter.GaussianBlur(max(width, height) / 16))
    canvas.paste(fitted, ((width - fitted.width) // 2, (height - fitted.height) // 2))
    return canvas


def blur_mask(mask: Any, radius: int) -> Any:
    from PIL import ImageFilter

    return mask.filter(ImageFilter.GaussianBlur(radius)) if radius > 0 else mask.copy()


def fill_masked(image: Any, mask: Any, how: str, seed: int) -> Any:
    """A1111's "masked content" (done in pixel space): fill from the surroundings, keep the
    original, random noise, or flat grey (what an all-zero latent decodes to, roughly)."""
    import numpy as np
    from PIL import Image

    if how == "original":
        return image.copy()
    arr = np.asarray(image, dtype=np.float64)
    repaint = np.asarray(mask, dtype=np.float64)[..., None] / 255.0 > 0.5
    if how == "latent_noise":
        noise = np.random.default_rng(seed).integers(0, 256, arr.shape).astype(np.float64)
        out = np.where(repaint, noise, arr)
    elif how == "latent_nothing":
        out = np.where(repaint, 127.0, arr)
    else:
        out = _fill_from_surroundings(arr, ~repaint[..., 0])
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")


def _box(values: Any, radius: int) -> Any:
    """Box-filter sums over (2r+1)^2 windows with an integral image (no scipy needed)."""
    import numpy as np

    pad = np.pad(values, ((radius + 1, radius), (radius + 1, radius)) + ((0, 0),) * (values.ndim - 2), mode="constant")
    integral = pad.cumsum(0).cumsum(1)
    size = 2 * radius + 1
    return integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size] + integral[:-size, :-size]


def _fill_from_surroundings(arr: Any, known: Any) -> Any:
    """Masked pixels get the mean colour of known pixels nearby, coarse to fine (as A1111's fill)."""
    import numpy as np

    out = arr.copy()
    weight = known.astype(np.float64)
    filled = known.copy()
    height, width = known.shape
    for radius in (max(height, width), 64, 16, 4, 1):
        radius = max(1, min(radius, max(height, width)))
        sums = _box(arr * weight[..., None], radius)
        counts = _box(weight, radius)
        have = counts > 0
        colour = np.where(have[..., None], sums / np.maximum(counts, 1e-9)[..., None], 0)
        take = ~known & have
        out[take] = colour[take]
        filled |= have
    return np.where(known[..., None], arr, out)


def _crop_region(mask: Any, padding: int, width: int, height: int) -> tuple[int, int, int, int]:
    """A1111's only-masked crop: the mask's box plus padding, grown to the working aspect ratio."""
    box = mask.point(lambda v: 255 if v > 0 else 0).getbbox()
    assert box is not None  # an empty mask was refused at validation
    x1, y1, x2, y2 = box
    x1, y1 = max(0, x1 - padding), max(0, y1 - padding)
    x2, y2 = min(mask.width, x2 + padding), min(mask.height, y2 + padding)
    ratio = width / height
    w, h = x2 - x1, y2 - y1
    if w / h < ratio:  # grow the width
        grow = min(mask.width, round(h * ratio)) - w
        x1 = max(0, x1 - grow // 2)
        x2 = min(mask.width, x1 + w + grow)
        x1 = max(0, x2 - (w + grow))
    else:
        grow = min(mask.height, round(w / ratio)) - h
        y1 = max(0, y1 - grow // 2)
        y2 = min(mask.height, y1 + h + grow)
        y1 = max(0, y2 - (h + grow))
    return x1, y1, x2, y2


def _overlay(original: Any, mask: Any) -> Callable[[Any], Any]:
    """After the call: generated pixels where the (blurred) mask is white, the input elsewhere."""
    from PIL import Image

    def finish(image: Any) -> Any:
        if image.size != original.size:
            image = image.resize(original.size, Image.Resampling.LANCZOS)
        return Image.composite(image.convert("RGB"), original, mask)

    return finish


def _paste_back(original: Any, mask: Any, box: tuple[int, int, int, int]) -> Callable[[Any], Any]:
    """Only-masked: the processed crop goes back into the full image, then the overlay."""
    from PIL import Image

    overlay = _overlay(original, mask)

    def finish(image: Any) -> Any:
        full = original.copy()
        crop = image.convert("RGB").resize((box[2] - box[0], box[3] - box[1]), Image.Resampling.LANCZOS)
        full.paste(crop, box[:2])
        return overlay(full)

    return finish


def prepare(request: GenerationRequest, plan: Any) -> Task:
    """The task for ``request``; sets ``plan.width``/``plan.height`` to the working size.

    ControlNet maps are made here too, at the working size, before any model is loaded."""
    task = _prepare(request, plan)
    if request.controlnet:
        from gambarkan.engine import control

        task.control = control.prepare(request.controlnet, task.width, task.height)
        task.notes.extend(task.control.notes)
        if task.hires is not None:
            task.notes.append("the hires fix's second pass runs without ControlNet")
    return task


def _prepare(request: GenerationRequest, plan: Any) -> Task:
    from gambarkan.inputs.images import effective_mask

    if request.init_image is None:
        task = Task("txt2img", plan.width, plan.height, plan.steps)
        if request.hires is not None:
            task.hires = _hires(request, plan)
            task.steps_total += _steps_run(task.hires.steps, task.hires.strength, "hires strength")
            task.metadata.update(_hires_metadata(request, task.hires))
        return task

    init = request.init_image
    strength = DEFAULT_STRENGTH if request.strength is None else request.strength
    steps_run = _steps_run(plan.steps, strength, "strength")
    meta: dict[str, Any] = {"Denoising strength": f"{strength:g}", "Init image hash": init.short_hash()}
    if init.path is not None:
        meta["Init image"] = str(init.path)
    if request.resize_mode != "just_resize":
        meta["Resize mode"] = RESIZE_LABELS[request.resize_mode]
    notes = list(init.notes)
    original = init.image

    if request.task == "img2img":
        width, height = _target_size(request, init.width, init.height)
        plan.width, plan.height = width, height
        image = resize_image(original, width, height, request.resize_mode)
        return Task("img2img", width, height, steps_run, {"image": image, "strength": strength}, None, None, meta, notes)

    meta["Mask blur"] = request.mask_blur
    meta["Masked content"] = FILL_LABELS[request.inpainting_fill]
    if request.mask_invert:
        meta["Mask mode"] = "Inpaint not masked"
    if request.mask is not None:
        meta["Mask hash"] = request.mask.short_hash()
        if request.mask.path is not None:
            meta["Mask"] = str(request.mask.path)
    elif request.mask_from_alpha:
        meta["Mask"] = "alpha"

    if request.outpaint is not None:
        base_w, base_h = (request.width or init.width), (request.height or init.height)
        image = resize_image(original, base_w, base_h, request.resize_mode)
        pads = request.outpaint
        width, height = base_w + pads.left + pads.right, base_h + pads.top + pads.bottom
        canvas, mask, keep = _outpaint_canvas(image, pads, request.mask_blur)
        fill = "fill" if request.inpainting_fill == "original" else request.inpainting_fill  # nothing "original" there
        meta["Masked content"] = FILL_LABELS[fill]
        meta["Outpaint"] = ",".join(f"{side}={getattr(pads, side)}" for side in ("left", "right", "top", "bottom") if getattr(pads, side))
        plan.width, plan.height = width, height
        filled = fill_masked(canvas, keep, fill, max(request.seed, 0))
        call = {"image": filled, "mask_image": mask, "strength": strength, "width": width, "height": height}
        return Task("inpaint", width, height, steps_run, call, _overlay(canvas, mask), None, meta, notes)

    mask = effective_mask(request)
    if request.inpaint_area == "only_masked":
        meta["Inpaint area"] = "Only masked"
        meta["Masked area padding"] = request.inpaint_padding
        width, height = plan.width, plan.height
        blurred = blur_mask(mask, request.mask_blur)
        box = _crop_region(blurred, request.inpaint_padding, width, height)
        filled = fill_masked(original, mask, request.inpainting_fill, max(request.seed, 0))
        crop = filled.crop(box).resize((width, height), _lanczos())
        crop_mask = blurred.crop(box).resize((width, height), _lanczos())
        call = {"image": crop, "mask_image": crop_mask, "strength": strength, "width": width, "height": height}
        return Task("inpaint", width, height, steps_run, call, _paste_back(original, blurred, box), None, meta, notes)

    width, height = _target_size(request, init.width, init.height)
    plan.width, plan.height = width, height
    image = resize_image(original, width, height, request.resize_mode)
    mask = resize_image(mask, width, height, request.resize_mode) if mask.size != (width, height) else mask
    blurred = blur_mask(mask, request.mask_blur)
    filled = fill_masked(image, mask, request.inpainting_fill, max(request.seed, 0))
    call = {"image": filled, "mask_image": blurred, "strength": strength, "width": width, "height": height}
    return Task("inpaint", width, height, steps_run, call, _overlay(image, blurred), None, meta, notes)


def _lanczos() -> Any:
    from PIL import Image

    return Image.Resampling.LANCZOS


def _outpaint_canvas(image: Any, pads: Any, blur: int) -> tuple[Any, Any, Any]:
    """(canvas with the edges stretched into the new area, blurred mask, hard mask): the
    blurred mask is cut back to the new area so the original pixels stay exactly as they were."""
    import numpy as np
    from PIL import Image, ImageChops

    arr = np.asarray(image)
    stretched = np.pad(arr, ((pads.top, pads.bottom), (pads.left, pads.right), (0, 0)), mode="edge")
    canvas = Image.fromarray(stretched, "RGB")
    hard = Image.new("L", canvas.size, 255)
    hard.paste(0, (pads.left, pads.top, pads.left + image.width, pads.top + image.height))
    blurred = blur_mask(hard, blur)
    blurred = ImageChops.multiply(blurred, hard.point(lambda v: 255 if v else 0)) if blur else blurred
    return canvas, ImageChops.lighter(blurred, hard), hard


def _hires(request: GenerationRequest, plan: Any) -> HiresPass:
    hires = request.hires
    assert hires is not None
    if hires.width or hires.height:
        width = hires.width or round(plan.width * hires.height / plan.height)
        height = hires.height or round(plan.height * hires.width / plan.width)
    else:
        width, height = round(plan.width * hires.scale), round(plan.height * hires.scale)
    width, height = int(round(width / 8)) * 8, int(round(height / 8)) * 8
    if width > 2048 or height > 2048:
        raise InvalidRequestError(
            f"the hires fix would make {width}x{height}, over the 2048 limit",
            f"use a smaller scale (at most {min(2048 / plan.width, 2048 / plan.height):.2f} here) or a smaller base size",
        )
    if hires.upscaler == "none":
        raise InvalidRequestError("the hires fix needs an upscaler, not 'None'", "use latent, lanczos or an upscaler model")
    return HiresPass(width, height, hires.upscaler, hires.steps or plan.steps, hires.strength)


def _hires_metadata(request: GenerationRequest, hires: HiresPass) -> dict[str, Any]:
    from gambarkan.models.upscalers import label

    spec = request.hires
    assert spec is not None
    meta: dict[str, Any] = {"Denoising strength": f"{hires.strength:g}"}
    if spec.width or spec.height:
        meta["Hires resize"] = f"{hires.width}x{hires.height}"
    else:
        meta["Hires upscale"] = f"{spec.scale:g}"
    if spec.steps:
        meta["Hires steps"] = spec.steps
    meta["Hires upscaler"] = label(hires.upscaler)
    return meta


def pipeline_for(loaded: Any, kind: str, controlnet: Any = None) -> Any:
    """The pipeline for ``kind`` made from the loaded one's own modules (cached; no reload).

    The derived pipeline is brought up to the loaded one's current modules on every call,
    so a VAE or scheduler swapped on the base (speed techniques, LoRAs) is used by both.
    With a ``controlnet`` the ControlNet variant is derived the same way, fresh for the
    request (the base pipeline and the cached task pipelines never hold a ControlNet).
    """
    if controlnet is not None:
        import diffusers

        auto = getattr(diffusers, {"txt2img": "AutoPipelineForText2Image", **TASK_CLASSES}[kind])
        pipe = auto.from_pipe(loaded.pipe, controlnet=controlnet)
        pipe.set_progress_bar_config(disable=True)
        return pipe
    if kind == "txt2img":
        return loaded.pipe
    cache: dict[str, Any] = loaded.extras.setdefault("task_pipes", {})
    pipe = cache.get(kind)
    if pipe is None:
        import diffusers

        family = getattr(loaded, "family", None)  # the family names its own img2img/inpaint classes (FLUX too)
        cls = getattr(diffusers, family.pipeline_class(kind) if family is not None else TASK_CLASSES[kind])
        pipe = cls.from_pipe(loaded.pipe)
        pipe.set_progress_bar_config(disable=True)
        cache[kind] = pipe
    else:
        current = {k: v for k, v in loaded.pipe.components.items() if k in pipe.components}
        if any(pipe.components[k] is not v for k, v in current.items()):
            pipe.register_modules(**current)
    return pipe


def run(task: Task, loaded: Any, pipe: Any, kwargs: dict[str, Any], on_step_end: Callable[..., dict[str, Any]], new_scheduler: Callable[[], Any]) -> list[Any]:
    """The pipeline call(s) of one batch: ``kwargs`` hold conditioning, generators, counts."""
    call = dict(kwargs)
    if task.kind == "txt2img":
        call.update(width=task.width, height=task.height)
    else:
        call.update(task.call)
        if getattr(getattr(loaded, "family", None), "sized_tasks", False):
            call.update(width=task.width, height=task.height)
    if task.control is not None:
        from gambarkan.engine.control import call_kwargs

        call.update(call_kwargs(task.control, task.kind))
    from gambarkan.engine.ip_adapter import attached

    if task.hires is None:
        with attached(task.ip_adapter, loaded, pipe) as extra:  # unloaded again right after the call
            images = pipe(**call, **extra, callback_on_step_end=on_step_end, callback_on_step_end_tensor_inputs=["latents"]).images
        return [task.finish(image) for image in images] if task.finish else list(images)

    hires = task.hires
    latent = hires.upscaler.startswith("latent")
    with attached(task.ip_adapter, loaded, pipe) as extra:
        first = pipe(**call, **extra, output_type="latent" if latent else "pil", callback_on_step_end=on_step_end,
                     callback_on_step_end_tensor_inputs=["latents"]).images
    if getattr(pipe, "_interrupt", False):
        return []
    if latent:
        from gambarkan.engine.upscale import upscale_latents

        upscaled: Any = upscale_latents(first, hires.width, hires.height, hires.upscaler, getattr(pipe, "vae_scale_factor", 8))
    else:
        from gambarkan.engine.upscale import upscale_to

        upscaled = [upscale_to(image, hires.width, hires.height, hires.upscaler, loaded) for image in first]
    img2img = pipeline_for(loaded, "img2img")
    img2img.scheduler = new_scheduler()
    offset = task.steps_total - _steps_run(hires.steps, hires.strength, "hires strength")

    def second_step(p: Any, step: int, timestep: Any, kw: dict[str, Any]) -> dict[str, Any]:
        return on_step_end(p, step + offset, timestep, kw)

    second = {k: v for k, v in kwargs.items() if k not in ("width", "height", "num_inference_steps")}
    result = img2img(**second, image=upscaled, strength=hires.strength, num_inference_steps=hires.steps,
                     callback_on_step_end=second_step, callback_on_step_end_tensor_inputs=["latents"])
    if getattr(img2img, "_interrupt", False):
        pipe._interrupt = True
    img2img._interrupt = False
    return list(result.images)
