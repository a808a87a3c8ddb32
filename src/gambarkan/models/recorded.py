"""Find on this computer the model, VAE and LoRAs a stored image names (``generate --from``).

A model is looked for as a package name, the name a package is recorded under (its Hub id
or folder name), a Hub id, an existing path, and by its "Model hash" among the files this
computer has hashed before; when nothing matches, the user is told how to pass ``-m``.
"""

from __future__ import annotations

import json
from pathlib import Path

from gambarkan.config import Settings
from gambarkan.errors import GambarkanError, UnknownModelError
from gambarkan.models.catalog import HUB_ID_RE, ModelSpec, load_catalog
from gambarkan.outputs.reuse import RecordedModel


def _recorded_name(spec: ModelSpec) -> str:
    """What the engine writes as ``Model`` for a package (see models.resolve_request)."""
    return spec.source if spec.source_type == "hub" else Path(spec.source).expanduser().stem


def model_by_hash(model_hash: str, settings: Settings) -> Path | None:
    """A file or diffusers folder whose weights hash to ``model_hash`` (from the hash cache), if still there."""
    cache_file = Path(settings.cache_dir) / "hashes.json"
    try:
        cache = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(cache, dict):
        return None
    for key, value in cache.items():
        if not isinstance(key, str) or value != model_hash:
            continue
        weights = Path(key.rsplit("|", 2)[0])
        if not weights.is_file():
            continue
        folder = weights.parent.parent
        if weights.parent.name == "unet" and (folder / "model_index.json").is_file():
            return folder
        return weights
    return None


def find_model(recorded: RecordedModel, settings: Settings, image: str | Path) -> dict[str, str]:
    """Request fields (``model`` or nothing) that load the model ``recorded`` names here.

    Returns ``{}`` when the image's package (``Preset``) already gives that model. Raises
    UnknownModelError naming the model and how to pass ``-m`` when it is nowhere to be found.
    """
    packages = load_catalog(settings)
    preset = packages.get((recorded.preset or "").lower())
    if preset is not None and _recorded_name(preset) == recorded.name:
        return {}
    if recorded.name.lower() in packages:
        return {"model": recorded.name.lower()}
    for name, spec in packages.items():
        if _recorded_name(spec) == recorded.name:
            return {"model": name}
    if HUB_ID_RE.match(recorded.name):
        return {"model": recorded.name}
    path = Path(recorded.name).expanduser()
    if path.is_absolute() and path.exists():
        return {"model": str(path)}
    found = model_by_hash(recorded.hash, settings) if recorded.hash else None
    if found is not None:
        return {"model": str(found)}
    shown = f"'{recorded.name}'" + (f" (hash {recorded.hash})" if recorded.hash else "")
    raise UnknownModelError(
        f"{image} was made with model {shown}, which is not on this computer",
        "pass it with -m: a package name, Hub id, diffusers folder or .safetensors file, e.g. --from IMAGE -m ./my-model",
    )


def reuse_notes(recorded: RecordedModel | None, networks: dict[str, dict[str, str]], settings: Settings) -> list[str]:
    """What of the image's VAE and LoRAs cannot be made the same here, one note each."""
    from gambarkan.models import loras

    notes: list[str] = []
    if recorded is not None and recorded.vae:
        notes.append(f"the image used VAE '{recorded.vae}'; gambarkan uses the model's own VAE (or its package's), so colours may differ")
    for kind, named in networks.items():
        label = "LoRA" if kind == "lora" else "embedding"
        dirs = loras.search_dirs(settings, kind)
        for name, wanted in named.items():
            try:
                file = loras.find(name, dirs, kind)
            except GambarkanError:  # a missing or unsafe one is reported by generate itself, in one line
                continue
            if not file.short_hash.startswith(wanted[:10]) and not wanted.startswith(file.short_hash[:10]):
                notes.append(f"{label} '{name}' here is not the file the image used (hash {file.short_hash}, the image says {wanted}); the result will differ")
    return notes
