"""ControlNet units as request values, with sd-webui-controlnet's fields and meanings.

A unit is one picture that steers the structure of the result: the picture, how to turn it
into a map (the preprocessor), which ControlNet reads the map, how strongly and during which
part of the steps. Validated once with the request; the image is decoded by
``inputs.images.load_image`` like any other image input.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gambarkan.inputs.images import ImageInput

CONTROL_MODES = ("balanced", "prompt", "controlnet")
# A1111's labels (and the extension's API integers 0, 1, 2) -> ours.
_MODE_WORDS = {
    "0": "balanced",
    "balanced": "balanced",
    "1": "prompt",
    "my prompt is more important": "prompt",
    "prompt": "prompt",
    "2": "controlnet",
    "controlnet is more important": "controlnet",
    "controlnet": "controlnet",
}
MODE_LABELS = {"balanced": "Balanced", "prompt": "My prompt is more important", "controlnet": "ControlNet is more important"}
_RESIZE_WORDS = {
    "0": "just_resize",
    "just resize": "just_resize",
    "just_resize": "just_resize",
    "1": "crop_and_resize",
    "crop and resize": "crop_and_resize",
    "inner fit (scale to fit)": "crop_and_resize",
    "crop_and_resize": "crop_and_resize",
    "2": "resize_and_fill",
    "resize and fill": "resize_and_fill",
    "outer fit (shrink to fit)": "resize_and_fill",
    "resize_and_fill": "resize_and_fill",
}
RESIZE_LABELS = {"just_resize": "Just Resize", "crop_and_resize": "Crop and Resize", "resize_and_fill": "Resize and Fill"}


class ControlUnit(BaseModel):
    """One ControlNet unit: image, preprocessor, model, weight and when in the steps it acts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: ImageInput
    preprocessor: str = "none"
    model: str | None = None  # None: the catalog's ControlNet for this preprocessor and family
    weight: float = Field(1.0, ge=0.0, le=2.0)
    guidance_start: float = Field(0.0, ge=0.0, le=1.0)
    guidance_end: float = Field(1.0, ge=0.0, le=1.0)
    control_mode: Literal["balanced", "prompt", "controlnet"] = "balanced"
    resize_mode: Literal["just_resize", "crop_and_resize", "resize_and_fill"] = "crop_and_resize"
    processor_res: int = Field(512, ge=64, le=2048)
    pixel_perfect: bool = False
    threshold_a: float | None = None
    threshold_b: float | None = None

    @field_validator("image", mode="before")
    @classmethod
    def _load(cls, value: Any) -> Any:
        from gambarkan.inputs.images import load_image

        return load_image(value, "control image")

    @field_validator("preprocessor")
    @classmethod
    def _known(cls, value: str) -> str:
        from gambarkan.inputs.preprocessors import get_preprocessor

        return get_preprocessor(value).name  # did-you-mean for an unknown name

    @field_validator("control_mode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> Any:
        return _MODE_WORDS.get(str(value).strip().lower(), value)

    @field_validator("resize_mode", mode="before")
    @classmethod
    def _resize(cls, value: Any) -> Any:
        return _RESIZE_WORDS.get(str(value).strip().lower(), value)

    @model_validator(mode="after")
    def _window(self) -> ControlUnit:
        if self.guidance_start >= self.guidance_end:
            raise ValueError(
                f"control guidance start {self.guidance_start:g} must be before its end {self.guidance_end:g}"
            )
        return self


def parse_control_option(text: str) -> dict[str, Any]:
    """The CLI's ``--control PRE:IMAGE[:WEIGHT[:START:END]]`` as ControlUnit fields."""
    parts = text.split(":")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError(f"--control '{text}' is not PREPROCESSOR:IMAGE[:WEIGHT[:START:END]] (e.g. canny:photo.png:0.8)")
    # A Windows drive letter or a path with ':' stays whole: numbers are only taken from the end.
    numbers: list[float] = []
    while len(parts) > 2 and len(numbers) < 3:
        try:
            numbers.insert(0, float(parts[-1]))
        except ValueError:
            break
        parts.pop()
    fields: dict[str, Any] = {"preprocessor": parts[0], "image": ":".join(parts[1:])}
    if len(numbers) == 2:
        raise ValueError(f"--control '{text}': give the weight alone, or weight, start and end")
    if numbers:
        fields["weight"] = numbers[0]
    if len(numbers) == 3:
        fields["guidance_start"], fields["guidance_end"] = numbers[1], numbers[2]
    return fields
