"""gambarkan: turn an Indonesian (or English, or mixed) prompt into images with Stable Diffusion.

Public API: ``generate``, ``generate_many``, ``upscale``, ``GenerationRequest``, ``GenerationResult``, ``__version__``.
Importing this package is cheap; torch and diffusers load on the first generation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["generate", "generate_many", "upscale", "GenerationRequest", "GenerationResult", "GambarkanError", "__version__"]

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

    from gambarkan.scale.runner import RowResult
    from gambarkan.errors import GambarkanError
    from gambarkan.request import GenerationRequest, GenerationResult


def generate(request: GenerationRequest | None = None, /, **fields: Any) -> GenerationResult:
    """Make images for ``request`` (or for a request built from ``fields``) with the default engine."""
    from gambarkan.engine.generate import default_engine
    from gambarkan.request import GenerationRequest

    if request is None:
        request = GenerationRequest(**fields)
    elif fields:
        request = request.merged(**fields)
    return default_engine().generate(request)


def upscale(image: Any, scale: float = 4.0, upscaler: str = "lanczos", **options: Any) -> Any:
    """``image`` (path, PIL image, bytes, base64) ``scale`` times bigger; returns a PIL image.

    ``upscaler`` is ``lanczos``, ``nearest`` or an upscaler model's name (its ``.safetensors``
    in ``GAMBARKAN_HOME/upscalers``); options: ``device``, ``offline``, ``allow_pickle``.
    """
    from gambarkan.engine.upscale import upscale as run_upscale

    return run_upscale(image, scale, upscaler, **options)


def generate_many(requests: Iterable[GenerationRequest | dict[str, Any]], *, manifest: str | Path | None = None, **kwargs: Any) -> Iterator[RowResult]:
    """Make many requests with the default engine, yielding each row's result as it finishes.

    With ``manifest`` (a JSONL path) a second call skips the rows the first one finished.
    See ``gambarkan.scale.runner.generate_many``.
    """
    from gambarkan.scale.runner import generate_many as run

    return run(requests, manifest=manifest, **kwargs)


def __getattr__(name: str) -> Any:
    if name in ("GenerationRequest", "GenerationResult"):
        from gambarkan import request

        return getattr(request, name)
    if name == "GambarkanError":
        from gambarkan.errors import GambarkanError

        return GambarkanError
    raise AttributeError(name)
