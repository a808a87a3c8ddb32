"""GenerationRequest and GenerationResult: the one request/response pair every surface uses.

A request is a value validated once at construction; everything downstream trusts it.
Fields left as ``None`` are filled from the chosen preset, then from ``DEFAULTS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from gambarkan.errors import InvalidRequestError
from gambarkan.inputs.control import ControlUnit
from gambarkan.inputs.ip_adapter import IPAdapterUnit
from gambarkan.inputs.images import ImageInput

DEFAULTS: dict[str, Any] = {
    "sampler": "DPM++ 2M Karras",
    "steps": 25,
    "cfg": 7.0,
    "width": 512,
    "height": 512,
    "clip_skip": 1,
}

MAX_SEED = 2**32 - 1
LIMITS: dict[str, tuple[int, int]] = {"steps": (1, 150), "cfg": (0, 30), "size": (64, 2048), "batch_size": (1, 16), "count": (1, 100)}


def invalid_text(value: str) -> str | None:
    """Why ``value`` is not valid Unicode text (a lone surrogate), or None when it is."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"is not valid text: character {exc.start + 1} is a lone surrogate {value[exc.start]!r} "
            "(invalid UTF-8 input; retype it or save the text as UTF-8)"
        )
    return None


def _nearest_multiple_of_8(value: int) -> int:
    return max(64, int(round(value / 8)) * 8)


INPAINT_AREAS = ("whole", "only_masked")
INPAINTING_FILLS = ("fill", "original", "latent_noise", "latent_nothing")  # A1111's "Masked content", in its order
RESIZE_MODES = ("just_resize", "crop_and_resize", "resize_and_fill")  # A1111's resize modes 0, 1, 2


def _word(value: Any) -> Any:
    """``only-masked`` / ``Only masked`` / ``only_masked`` are the same choice."""
    return value.strip().lower().replace("-", "_").replace(" ", "_") if isinstance(value, str) else value


class Outpaint(BaseModel):
    """Pixels to add on each side of the input image (outpainting)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    left: int = Field(0, ge=0, le=2048)
    right: int = Field(0, ge=0, le=2048)
    top: int = Field(0, ge=0, le=2048)
    bottom: int = Field(0, ge=0, le=2048)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        """Also ``"left=256,right=256"``, ``"all=64"`` or one int for every side."""
        if isinstance(value, int) and not isinstance(value, bool):
            return {"left": value, "right": value, "top": value, "bottom": value}
        if isinstance(value, str):
            sides: dict[str, Any] = {}
            for part in filter(None, (p.strip() for p in value.split(","))):
                key, sep, number = part.partition("=")
                key = key.strip().lower()
                if not sep or not number.strip().lstrip("-").isdigit():
                    raise ValueError(f"outpaint '{part}' is not side=pixels (e.g. left=256,right=256)")
                names = ("left", "right", "top", "bottom") if key == "all" else (key,)
                for name in names:
                    sides[name] = int(number)
            return sides
        return value

    @property
    def total(self) -> tuple[int, int]:
        """(pixels added in width, pixels added in height)."""
        return self.left + self.right, self.top + self.bottom


class Hires(BaseModel):
    """A1111's hires fix: a first pass at the base size, upscale, a second img2img pass."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scale: float = Field(2.0, ge=1.0, le=4.0)
    upscaler: str = "latent"
    steps: int | None = Field(None, ge=1, le=150)  # None: as many as the first pass
    strength: float = Field(0.5, ge=0.0, le=1.0)
    width: int | None = Field(None, ge=64, le=4096)  # A1111's hr_resize_x/y: the exact second-pass size
    height: int | None = Field(None, ge=64, le=4096)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return {"scale": value}
        if value is True:
            return {}
        return value

    @field_validator("upscaler")
    @classmethod
    def _check_upscaler(cls, value: str) -> str:
        from gambarkan.models.upscalers import canonical_name

        return canonical_name(value)  # raises InvalidRequestError with "did you mean"


class GenerationRequest(BaseModel):
    """Everything needed to make images; invalid values raise InvalidRequestError at once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str
    negative_prompt: str = ""
    model: str | None = None
    preset: str | None = None
    sampler: str | None = None
    scheduler: str | None = None  # A1111 >= 1.9 schedule type ("Karras", "beta", ...); see sampler_names
    steps: int | None = Field(None, ge=LIMITS["steps"][0], le=LIMITS["steps"][1])
    cfg: float | None = Field(None, ge=LIMITS["cfg"][0], le=LIMITS["cfg"][1])
    width: int | None = None
    height: int | None = None
    seed: int = Field(-1, ge=-1, le=MAX_SEED)
    batch_size: int = Field(1, ge=LIMITS["batch_size"][0], le=LIMITS["batch_size"][1])
    count: int = Field(1, ge=LIMITS["count"][0], le=LIMITS["count"][1])
    clip_skip: int | None = Field(None, ge=1, le=12)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    memory: Literal["auto", "high", "low", "minimal"] = "auto"
    translator: str | None = None
    translate: bool = True
    style: bool = True  # add the package's style words to the prompt
    out_dir: str | None = None
    save: bool = True
    offline: bool = False
    optimize: str | None = None  # speed techniques, e.g. "compile,-channels_last" (engine.optimize)
    fast: bool = False  # lossy speed-ups (TAESD decode, bf16 on CPU, DeepCache); marked in the PNG
    # Bring an image: img2img / inpaint / outpaint (A1111 semantics), and the hires fix.
    init_image: ImageInput | None = None
    strength: float | None = Field(None, ge=0.0, le=1.0)  # A1111 "denoising strength"; default 0.75
    mask: ImageInput | None = None  # white = repaint
    mask_from_alpha: bool = False  # the init image's transparent area is the mask
    mask_blur: int = Field(4, ge=0, le=64)
    mask_invert: bool = False
    mask_resize: bool = False  # a mask of another size is resized to the image's only when asked
    inpaint_area: Literal["whole", "only_masked"] = "whole"
    inpaint_padding: int = Field(32, ge=0, le=256)
    inpainting_fill: Literal["fill", "original", "latent_noise", "latent_nothing"] = "original"
    resize_mode: Literal["just_resize", "crop_and_resize", "resize_and_fill"] = "just_resize"
    outpaint: Outpaint | None = None
    hires: Hires | None = None
    controlnet: list[ControlUnit] = Field(default_factory=list)  # ControlNet units (sd-webui-controlnet's fields)
    ip_adapter: IPAdapterUnit | None = None  # a reference image (inputs.ip_adapter)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _explain(exc) from None

    @field_validator("width", "height")
    @classmethod
    def _check_size(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is None:
            return value
        lo, hi = LIMITS["size"]
        if not lo <= value <= hi:
            raise InvalidRequestError(code="size_out_of_range", params={"field": info.field_name, "value": value, "lo": lo, "hi": hi})
        if value % 8:
            suggestion = _nearest_multiple_of_8(value)
            raise InvalidRequestError(
                code="size_not_multiple_of_8", params={"field": info.field_name, "value": value, "suggestion": suggestion}
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _check_sampler(cls, data: Any) -> Any:
        """One spelling for sampler + schedule type (A1111's rule: a schedule in the name wins)."""
        if not isinstance(data, dict) or (data.get("sampler") is None and data.get("scheduler") is None):
            return data
        from gambarkan.sampler_names import find_schedule, join_sampler, split_sampler

        sampler, scheduler = data.get("sampler"), data.get("scheduler")
        for name, value in (("sampler", sampler), ("scheduler", scheduler)):
            if value is not None and not isinstance(value, str):
                raise InvalidRequestError(f"{name} must be a text such as 'Euler a' or 'Karras'")
        schedule = find_schedule(scheduler) if scheduler else None  # raises with suggestions
        data = dict(data)
        if sampler is not None:
            base, carried = split_sampler(sampler)  # raises InvalidRequestError with suggestions
            schedule = carried or schedule
            data["sampler"] = join_sampler(base, schedule)
        if scheduler:
            data["scheduler"] = find_schedule(scheduler).label
        return data

    @field_validator("optimize")
    @classmethod
    def _check_optimize(cls, value: str | None) -> str | None:
        if value is not None:
            from gambarkan.optimize_names import parse_spec

            parse_spec(value)  # raises InvalidRequestError naming the unknown technique
        return value

    @field_validator("init_image", "mask", mode="before")
    @classmethod
    def _load_image(cls, value: Any, info: Any) -> Any:
        if value is None or isinstance(value, ImageInput):
            return value
        from gambarkan.inputs.images import load_image

        return load_image(value, info.field_name)  # decoded once, limits checked first

    @field_validator("inpaint_area", "inpainting_fill", "resize_mode", mode="before")
    @classmethod
    def _choice(cls, value: Any) -> Any:
        value = _word(value)
        return {"only_masked_area": "only_masked", "whole_picture": "whole", "latent": "latent_noise"}.get(value, value)

    @model_validator(mode="after")
    def _check_images(self) -> GenerationRequest:
        from gambarkan.inputs.images import check_image_request

        check_image_request(self)
        return self

    @property
    def task(self) -> str:
        """``txt2img``, ``img2img`` or ``inpaint`` (outpainting is inpainting on a bigger canvas)."""
        if self.init_image is None:
            return "txt2img"
        if self.mask is not None or self.mask_from_alpha or self.outpaint is not None:
            return "inpaint"
        return "img2img"

    @field_validator("*", mode="before")
    @classmethod
    def _check_unicode(cls, value: object, info: ValidationInfo) -> object:
        """Every text must be real Unicode: a lone surrogate (JSON ``"\\ud800"``, or invalid UTF-8
        bytes on the command line) cannot be encoded, so history, job store and PNG writes would fail later."""
        if isinstance(value, str):
            text_error = invalid_text(value)
            if text_error:
                raise ValueError(f"{info.field_name} {text_error}")
        return value

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _check_text(cls, value: str) -> str:
        if "\x00" in value:
            raise InvalidRequestError(code="prompt_has_nul")
        if len(value) > 20_000:
            raise InvalidRequestError(code="prompt_too_long", params={"limit": 20_000})
        return value

    def merged(self, **changes: Any) -> GenerationRequest:
        """Return a copy with ``changes`` applied and validated again."""
        data = {name: getattr(self, name) for name in type(self).model_fields}  # decoded images stay decoded
        data.update(changes)
        return GenerationRequest(**data)


def _bounds(field_name: str) -> tuple[Any, Any]:
    """The (lowest, highest) allowed value of a numeric request field, from its Field(ge, le)."""
    model: Any = GenerationRequest
    *parents, name = field_name.split(".")
    for parent in parents:  # hires.scale, outpaint.left
        parent_info = model.model_fields.get(parent)
        args = getattr(parent_info.annotation, "__args__", ()) if parent_info else ()
        model = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None) or BaseModel
    info = model.model_fields.get(name)
    lo = next((m.ge for m in info.metadata if hasattr(m, "ge")), None) if info else None
    hi = next((m.le for m in info.metadata if hasattr(m, "le")), None) if info else None
    return lo, hi


def _explain(exc: ValidationError) -> InvalidRequestError:
    """Turn pydantic's multi-line report into our one-line error with its code and params."""
    err = exc.errors()[0]
    field_name = ".".join(str(p) for p in err.get("loc", ())) or "request"
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        return InvalidRequestError(code="unknown_option", params={"field": field_name})
    ctx = err.get("ctx") or {}
    if "ge" in ctx or "le" in ctx:
        lo, hi = _bounds(field_name)
        value = err.get("input")
        shown = value if isinstance(value, int | float) and not isinstance(value, bool) else repr(value)
        return InvalidRequestError(code="value_out_of_range", params={"field": field_name, "value": shown, "lo": lo, "hi": hi})
    if field_name in msg:
        return InvalidRequestError(msg)
    return InvalidRequestError(code="invalid_value", params={"field": field_name, "detail": msg})


@dataclass
class GeneratedImage:
    """One image of a result, with what is needed to make it again alone."""

    image: Any  # PIL.Image.Image
    seed: int
    index: int
    path: Path | None = None
    parameters: str = ""


@dataclass
class GenerationResult:
    """What generate() returns: images plus the final settings actually used."""

    images: list[GeneratedImage]
    prompt: str
    negative_prompt: str
    original_prompt: str
    original_negative_prompt: str
    model: str
    model_hash: str | None
    sampler: str
    steps: int
    cfg: float
    width: int
    height: int
    clip_skip: int
    seed: int
    preset: str | None = None
    translator: str | None = None
    device: str = "cpu"
    dtype: str = "fp32"
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        return [img.seed for img in self.images]

    @property
    def paths(self) -> list[Path | None]:
        return [img.path for img in self.images]

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` shape: plain JSON types only."""
        return {
            "images": [{"path": str(i.path) if i.path else None, "seed": i.seed} for i in self.images],
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "original_prompt": self.original_prompt,
            "original_negative_prompt": self.original_negative_prompt,
            "model": self.model,
            "model_hash": self.model_hash,
            "preset": self.preset,
            "translator": self.translator,
            "sampler": self.sampler,
            "steps": self.steps,
            "cfg": self.cfg,
            "width": self.width,
            "height": self.height,
            "clip_skip": self.clip_skip,
            "seed": self.seed,
            "device": self.device,
            "dtype": self.dtype,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            **({"extra": self.extra} if self.extra else {}),
        }
