"""GenerationRequest and GenerationResult: the one request/response pair every surface uses.

A request is a value validated once at construction; everything downstream trusts it.
Fields left as ``None`` are filled from the chosen preset, then from ``DEFAULTS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gambarkan.errors import InvalidRequestError

DEFAULTS: dict[str, Any] = {
    "sampler": "DPM++ 2M Karras",
    "steps": 25,
    "cfg": 7.0,
    "width": 512,
    "height": 512,
    "clip_skip": 1,
}

MAX_SEED = 2**32 - 1
LIMITS = {"steps": (1, 150), "cfg": (0.0, 30.0), "size": (64, 2048), "batch_size": (1, 16), "count": (1, 100)}


def _nearest_multiple_of_8(value: int) -> int:
    return max(64, int(round(value / 8)) * 8)


class GenerationRequest(BaseModel):
    """Everything needed to make images; invalid values raise InvalidRequestError at once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str
    negative_prompt: str = ""
    model: str | None = None
    preset: str | None = None
    sampler: str | None = None
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

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _explain(exc) from None

    @field_validator("width", "height")
    @classmethod
    def _check_size(cls, value: int | None, info: Any) -> int | None:
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

    @field_validator("sampler")
    @classmethod
    def _check_sampler(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from gambarkan.engine.samplers import get_sampler

        return get_sampler(value).name  # raises InvalidRequestError with suggestions

    @field_validator("optimize")
    @classmethod
    def _check_optimize(cls, value: str | None) -> str | None:
        if value is not None:
            from gambarkan.engine.optimize import parse_spec

            parse_spec(value)  # raises InvalidRequestError naming the unknown technique
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
        data = self.model_dump()
        data.update(changes)
        return GenerationRequest(**data)


def _bounds(field_name: str) -> tuple[Any, Any]:
    """The (lowest, highest) allowed value of a numeric request field, from its Field(ge, le)."""
    info = GenerationRequest.model_fields.get(field_name)
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
