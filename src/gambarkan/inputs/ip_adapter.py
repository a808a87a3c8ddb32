"""The IP-Adapter reference image as a request value: a picture whose look steers the result.

Validated once with the request; the image is decoded by ``inputs.images.load_image`` like
any other image input. ``model`` is a name in ``GAMBARKAN_HOME/ip_adapter`` or a path to an
IP-Adapter folder (weights ``*.safetensors`` + ``image_encoder/``) or its weights file.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gambarkan.inputs.images import ImageInput

DEFAULT_SCALE = 0.6


class IPAdapterUnit(BaseModel):
    """A reference image, how strongly it steers (0-2) and which IP-Adapter reads it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: ImageInput
    scale: float = Field(DEFAULT_SCALE, ge=0.0, le=2.0)
    model: str | None = None  # None: the only IP-Adapter in GAMBARKAN_HOME/ip_adapter

    @field_validator("image", mode="before")
    @classmethod
    def _load(cls, value: Any) -> Any:
        from gambarkan.inputs.images import load_image

        return load_image(value, "IP-Adapter image")


def parse_ip_adapter_option(text: str) -> dict[str, Any]:
    """The CLI's ``--ip-adapter IMAGE[:SCALE]`` as IPAdapterUnit fields (a path with ':' stays whole)."""
    if not text:
        raise ValueError("--ip-adapter needs IMAGE[:SCALE], e.g. foto.png:0.6")
    head, sep, tail = text.rpartition(":")
    if sep and head:
        try:
            return {"image": head, "scale": float(tail)}
        except ValueError:
            pass
    return {"image": text}
