"""``Plan``: a request with every value decided, beside the request types it comes from.

``models.resolve_request`` builds it and the engine runs it; it lives here (not in the
engine) so that ``models`` never imports ``engine``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Plan:
    """A request with every value decided: what will actually run."""

    model: str
    sampler: str
    steps: int
    cfg: float
    width: int
    height: int
    clip_skip: int
    negative_prompt: str
    preset: str | None = None
    style: str = ""
    config: str | None = None  # local config folder for single-file checkpoints
    vae: str | None = None  # replacement VAE folder (e.g. SDXL fp16-fix)
    name: str | None = None  # what PNG metadata calls the model (package source), else derived
    transformer: str | None = None  # a GGUF-quantized transformer file replacing the folder's (FLUX)
    scheduler_options: dict[str, Any] = field(default_factory=dict)  # e.g. trailing timesteps (SDXL-Lightning)
    extra: dict[str, Any] = field(default_factory=dict)
