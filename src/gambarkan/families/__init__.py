"""Model families: one module each (sd15, sd2, sdxl, flux), plain data plus detection.

Code asks the family (``get_family(name).supports("lora")``, ``.pipeline_class("img2img")``,
``.prompt_encoding``) instead of testing ``arch == "sdxl"``. Nothing here imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gambarkan.errors import ModelLoadError
from gambarkan.families import flux, sd2, sd15, sdxl
from gambarkan.families.base import FEATURES, TASKS, Family

__all__ = ["FAMILIES", "FEATURES", "TASKS", "Family", "detect_file", "detect_folder", "family_of_pipeline", "get_family", "gguf_tensor_names", "is_gguf", "names"]

#: Every family by name, in detection order (the most specific first: sd2 before sd15).
FAMILIES: dict[str, Family] = {f.name: f for f in (flux.FAMILY, sdxl.FAMILY, sd2.FAMILY, sd15.FAMILY)}
DEFAULT = "sd15"


def names() -> tuple[str, ...]:
    """Family names in a stable, readable order (sd15, sd2, sdxl, flux)."""
    return ("sd15", "sd2", "sdxl", "flux")


def get_family(name: str | None) -> Family:
    """The family called ``name`` (None or an unknown name -> SD 1.5, the old default)."""
    return FAMILIES.get(name or DEFAULT, FAMILIES[DEFAULT])


def detect_folder(folder: Path) -> Family:
    """The family of a diffusers folder, from its model_index.json (and U-Net config for SD 2.x)."""
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise ModelLoadError(f"{folder} is not a diffusers model folder (no model_index.json)", "point --model at the folder that holds model_index.json, or at a .safetensors file")
    fix = "point --model at a diffusers model folder (its model_index.json names the pipeline), or download the model again"
    try:
        index: dict[str, Any] = json.loads(index_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"not a diffusers model folder: {index_file} is unreadable ({exc})", fix) from None
    if not isinstance(index, dict):
        raise ModelLoadError(f"not a diffusers model folder: {index_file} is a JSON {type(index).__name__}, not an object", fix)
    cls = index.get("_class_name", "")
    if not isinstance(cls, str):
        raise ModelLoadError(f"not a diffusers model folder: _class_name in {index_file} is not a text", fix)
    for family in FAMILIES.values():
        if family.detect_folder is not None and family.detect_folder(index, folder):
            return family
    shown = cls if cls.isidentifier() and len(cls) <= 80 else repr(cls[:80])
    raise ModelLoadError(f"{folder.name} holds a {shown}, which gambarkan cannot run yet", "use an SD 1.x, SD 2.x, SDXL or FLUX.1 text-to-image model")


def detect_file(keys: Iterable[str]) -> Family:
    """The family of a single checkpoint file from its tensor names (safetensors header or GGUF)."""
    keys = list(keys)
    for family in FAMILIES.values():
        if family.detect_file is not None and family.detect_file(keys):
            return family
    raise ModelLoadError("the file is not a Stable Diffusion or FLUX checkpoint (no U-Net or transformer weights found)", "is it a LoRA or embedding? put those in the loras/embeddings folder")


GGUF_MAGIC = b"GGUF"


def is_gguf(path: Path) -> bool:
    """True when ``path`` is a GGUF file (by its first bytes, not its name)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == GGUF_MAGIC
    except OSError:
        return False


def gguf_tensor_names(path: Path) -> list[str]:
    """The tensor names of a GGUF file (needs the ``gguf`` package: ``pip install gambarkan[gguf]``)."""
    try:
        from gguf import GGUFReader
    except ImportError:
        raise ModelLoadError(f"{path.name} is a GGUF file, which needs the gguf package", "pip install 'gambarkan[gguf]'") from None
    try:
        return [tensor.name for tensor in GGUFReader(str(path)).tensors]
    except Exception as exc:  # noqa: BLE001 - gguf raises plain ValueError/IndexError on damaged files
        raise ModelLoadError(f"{path.name} is not a readable GGUF file ({str(exc)[:120]})", "download the file again") from None


def family_of_pipeline(pipe: Any) -> Family:
    """The family of an already built pipeline, by its class name (bench, doctor, registered pipes)."""
    cls = type(pipe).__name__
    if cls.startswith("Flux"):
        return FAMILIES["flux"]
    if hasattr(pipe, "text_encoder_2"):
        return FAMILIES["sdxl"]
    unet = getattr(pipe, "unet", None)
    wide = getattr(getattr(unet, "config", None), "cross_attention_dim", None) == 1024
    return FAMILIES["sd2"] if wide else FAMILIES[DEFAULT]
