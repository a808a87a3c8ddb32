"""ControlNet models: the catalog's (per family and preprocessor) and the user's own.

Plain data and lookups (no torch). A unit names its model by catalog name, by A1111's
``name [hash]`` title, by the name of a file or folder in ``GAMBARKAN_HOME/controlnet``, or by
a path; with no name, the catalog's model for the unit's preprocessor and the loaded family
is used. Catalog models download through ``models.store`` like any package (safetensors
only, verified, resumable).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from gambarkan.config import Settings
from gambarkan.errors import InvalidRequestError, UnknownModelError, did_you_mean
from gambarkan.models.catalog import ModelSpec, _read_toml

CATALOG_FILE = Path(__file__).with_name("controlnets.toml")
_TITLE_HASH = re.compile(r"\s*\[[0-9a-fA-F]{6,64}\]\s*$")


@dataclass(frozen=True)
class ControlNetEntry:
    """A ControlNet the catalog knows: the family it steers and where its weights are."""

    name: str
    family: str
    preprocessors: tuple[str, ...]
    source: str
    revision: str
    files: tuple[str, ...]
    variant: str
    license: str
    license_url: str
    download_mb: int

    def spec(self) -> ModelSpec:
        """The entry as a ModelSpec, so ``models.store`` pulls, verifies and records it."""
        return ModelSpec(
            name=f"controlnet/{self.name}", title_id=self.name, title_en=self.name, description_id="", description_en="",
            kind=self.family, source=self.source, revision=self.revision, variant=self.variant, files=self.files,
            vae_source="", vae_revision="", vae_files=(), config="", license=self.license, license_url=self.license_url,
            download_mb=self.download_mb, min_vram_mb=0, min_ram_mb=0, sampler="", steps=0, cfg=0.0, width=0, height=0,
            clip_skip=1, negative_prompt="",
        )


def catalog() -> dict[str, ControlNetEntry]:
    """The built-in ControlNets by name."""
    tables = _read_toml(CATALOG_FILE).get("controlnets", {})
    return {
        name: ControlNetEntry(
            name=name,
            family=t["family"],
            preprocessors=tuple(t["preprocessors"]),
            source=t["source"],
            revision=t["revision"],
            files=tuple(t["files"]),
            variant=t.get("variant", ""),
            license=t["license"],
            license_url=t["license_url"],
            download_mb=int(t["download_mb"]),
        )
        for name, t in tables.items()
    }


def controlnet_dir(settings: Settings) -> Path:
    """Where the user's own ControlNet files and folders go (A1111's models/ControlNet)."""
    return settings.home / "controlnet"


def local_controlnets(settings: Settings) -> dict[str, Path]:
    """The user's ControlNets by name: ``*.safetensors`` files and diffusers folders (config.json)."""
    folder = controlnet_dir(settings)
    found: dict[str, Path] = {}
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix.lower() == ".safetensors":
                found.setdefault(path.stem, path)
            elif path.is_dir() and (path / "config.json").is_file():
                found.setdefault(path.name, path)
    return found


@dataclass(frozen=True)
class ControlNetChoice:
    """What a unit will load: a local path, or a catalog entry still to download."""

    name: str
    path: Path | None = None
    entry: ControlNetEntry | None = None


def choose(model: str | None, preprocessor: str, family: str, settings: Settings) -> ControlNetChoice:
    """The ControlNet for one unit; unknown names and other families' models are clear errors."""
    known = catalog()
    if model is None or model.strip().lower() in ("", "none", "auto"):
        for entry in known.values():
            if entry.family == family and preprocessor in entry.preprocessors:
                return ControlNetChoice(entry.name, entry=entry)
        if preprocessor == "none":
            raise InvalidRequestError(
                "a control unit with preprocessor 'none' needs a ControlNet model",
                "name one with --control-model (see: gambarkan models list)",
            )
        raise InvalidRequestError(
            f"no built-in ControlNet for preprocessor '{preprocessor}' on {family} models",
            "name one with --control-model NAME or PATH",
        )
    text = _TITLE_HASH.sub("", model.strip())
    path = Path(text).expanduser()
    if text.startswith(("/", "~", ".")) or path.exists():
        if not path.exists():
            raise UnknownModelError(f"ControlNet '{model}' does not exist", "check the path")
        if path.is_dir() and not (path / "config.json").is_file():
            raise InvalidRequestError(f"not a diffusers ControlNet folder: {path} (no config.json)", "point to the folder that holds config.json")
        return ControlNetChoice(path.name, path=path)
    local = local_controlnets(settings)
    if text in local:
        return ControlNetChoice(text, path=local[text])
    if text in known:
        entry = known[text]
        if entry.family != family:
            raise InvalidRequestError(
                f"ControlNet '{text}' is for {entry.family} models, but the model loaded is {family}",
                f"use a {family} ControlNet: " + ", ".join(n for n, e in known.items() if e.family == family),
            )
        return ControlNetChoice(text, entry=entry)
    hint = did_you_mean(text, [*known, *local]) or f"see the list with `gambarkan models list` or put it in {controlnet_dir(settings)}"
    raise UnknownModelError(f"unknown ControlNet '{model}'", hint)


def model_titles(settings: Settings) -> list[str]:
    """Every ControlNet name a client may pick (A1111's /controlnet/model_list)."""
    return [*catalog(), *local_controlnets(settings)]
