"""Upscaler names: the built-in ones (no weights), catalog packages and the user's own files.

Plain data and lookups (no torch): the request validates a name here, ``engine.upscale`` runs
it. A1111's display names (``Latent``, ``Lanczos``, ``R-ESRGAN 4x+``) are accepted as aliases,
so A1111 clients and PNG metadata round-trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gambarkan.errors import InvalidRequestError, close_names

# name -> A1111's display name. "latent*" upscale the latents (hires fix only).
BUILTIN: dict[str, str] = {
    "latent": "Latent",
    "latent-antialiased": "Latent (antialiased)",
    "latent-bicubic": "Latent (bicubic)",
    "latent-bicubic-antialiased": "Latent (bicubic antialiased)",
    "latent-nearest": "Latent (nearest)",
    "latent-nearest-exact": "Latent (nearest-exact)",
    "none": "None",
    "lanczos": "Lanczos",
    "nearest": "Nearest",
}
LATENT_MODES = {  # name -> (torch interpolate mode, antialias)
    "latent": ("bilinear", False),
    "latent-antialiased": ("bilinear", True),
    "latent-bicubic": ("bicubic", False),
    "latent-bicubic-antialiased": ("bicubic", True),
    "latent-nearest": ("nearest", False),
    "latent-nearest-exact": ("nearest-exact", False),
}
UPSCALER_SUFFIXES = (".safetensors", ".pth", ".pt")


@dataclass(frozen=True)
class UpscalerFile:
    """A model upscaler: its name, A1111 display name and the weights file once known."""

    name: str
    label: str
    path: Path | None = None


def upscaler_dirs(settings: object | None = None) -> list[Path]:
    """Folders searched for the user's own upscaler files (``GAMBARKAN_HOME/upscalers``)."""
    from gambarkan.config import Settings

    settings = settings if isinstance(settings, Settings) else Settings.from_env()
    return [settings.home / "upscalers"]


def local_upscalers(settings: object | None = None) -> dict[str, UpscalerFile]:
    """The user's upscaler files by lower-case stem (``4x-UltraSharp.safetensors`` -> ``4x-ultrasharp``)."""
    found: dict[str, UpscalerFile] = {}
    for folder in upscaler_dirs(settings):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in UPSCALER_SUFFIXES and path.is_file():
                found.setdefault(path.stem.lower(), UpscalerFile(path.stem.lower(), path.stem, path))
    return found


def all_names(settings: object | None = None) -> dict[str, str]:
    """Every upscaler name known here -> its A1111 display name."""
    names = dict(BUILTIN)
    names.update({name: item.label for name, item in local_upscalers(settings).items()})
    return names


def canonical_name(value: str, settings: object | None = None) -> str:
    """Our name for ``value`` (ours or A1111's, any case); unknown names get a did-you-mean."""
    text = (value or "").strip()
    names = all_names(settings)
    key = text.lower()
    if key in names:
        return key
    by_label = {label.lower(): name for name, label in names.items()}
    if key in by_label:
        return by_label[key]
    slug = key.replace(" ", "-").replace("(", "").replace(")", "").replace("_", "-")
    if slug in names:
        return slug
    raise InvalidRequestError(code="unknown_upscaler", params={"name": text, "close": close_names(text, list(names) + list(names.values()))})


def label(name: str, settings: object | None = None) -> str:
    """A1111's display name of an upscaler (what PNG metadata and /sdapi/v1/upscalers show)."""
    return all_names(settings).get(name, name)
