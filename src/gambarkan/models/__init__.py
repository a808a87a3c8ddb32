"""Model packages: the catalog of presets, downloads into the HF cache, file safety checks.

``resolve_request`` is what the engine calls: it turns a request into the values that will
actually run (model path, sampler, steps, ...), explicit request values first, then the
package's, then ``request.DEFAULTS``; it downloads a package that is not there yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gambarkan.models.catalog import DEFAULT_PRESET, ModelSpec, get_package, load_catalog
from gambarkan.sampler_names import canonical_sampler

if TYPE_CHECKING:  # types only: models never imports the engine at run time
    from gambarkan.config import Settings
    from gambarkan.plan import Plan
    from gambarkan.request import GenerationRequest

__all__ = ["DEFAULT_PRESET", "ModelSpec", "get_package", "load_catalog", "resolve_request", "config_folder_for"]


def config_folder_for(spec: ModelSpec | None, kind: str | None, settings: Any) -> str | None:
    """Configs for a single-file checkpoint, so from_single_file needs no network.

    The package's own ``config`` when set; otherwise the folder of an installed built-in
    package of the same family (e.g. ``umum`` for an SD 1.5 file); otherwise None.
    """
    from gambarkan.models import store

    if spec is not None and spec.config:
        return spec.config
    if kind is None:
        return None
    for candidate in load_catalog(None).values():
        if candidate.kind == kind and candidate.source_type == "hub":
            found = store.local_paths(candidate, settings)
            if found is not None and (candidate.config or (found[0] / "model_index.json").is_file()):
                return candidate.config or str(found[0])  # a single-file package's own config names its base
    return None


def _file_kind(path: Path) -> str | None:
    try:
        from gambarkan.models.catalog import detect_kind

        return detect_kind(str(path))
    except Exception:  # noqa: BLE001 - the loader reports a bad file properly
        return None


def _single_weight_file(path: Path) -> Path:
    """A package snapshot that is one checkpoint (no model_index.json: SDXL-Lightning's single
    .safetensors, a GGUF) is that file; else ``path``."""
    if path.is_dir() and not (path / "model_index.json").exists():
        found = sorted([*path.glob("*.safetensors"), *path.glob("*.gguf")])
        if len(found) == 1:
            return found[0]
    return path


def _package_for_model(model: str, settings: Any) -> ModelSpec | None:
    """``--model anime`` means the package when ``anime`` is no file, folder or Hub id."""
    if "/" in model or "\\" in model or Path(model).expanduser().exists():
        return None
    packages = load_catalog(settings)
    return packages.get(model.strip().lower())


def resolve_request(request: GenerationRequest, settings: Settings, *, show_progress: bool = True) -> Plan:
    """Decide every value of ``request``: explicit values > preset values > DEFAULTS.

    With no ``--model`` and no ``--preset`` the default package ``umum`` is used (unless
    GAMBARKAN_MODEL points somewhere else). A Hub package that is not downloaded yet is pulled
    first, unless the request or the settings say offline. Returns the ``Plan`` (gambarkan.plan).
    """
    from gambarkan.config import DEFAULT_MODEL
    from gambarkan.plan import Plan
    from gambarkan.models import store
    from gambarkan.request import DEFAULTS

    spec: ModelSpec | None = None
    model_spec: ModelSpec | None = None
    if request.preset:
        spec = get_package(request.preset, settings)
    if request.model:
        model_spec = _package_for_model(request.model, settings)
        if spec is None:
            spec = model_spec
    elif spec is None and settings.default_model == DEFAULT_MODEL:
        spec = get_package(DEFAULT_PRESET, settings)

    offline = bool(request.offline or settings.offline)
    config: str | None = None
    vae: str | None = None
    name: str | None = None
    transformer: str | None = None
    source_spec = model_spec if request.model else spec
    if request.model and model_spec is None:
        model = request.model
        path = Path(model).expanduser()
        if path.is_file() and path.suffix.lower() in (".safetensors", ".gguf"):
            config = config_folder_for(None, _file_kind(path), settings)
    elif source_spec is not None:
        path, vae_path = store.ensure_local(source_spec, settings, offline=offline, show_progress=show_progress)
        path = _single_weight_file(path)
        model = str(path)
        gguf = store.transformer_file(source_spec, settings)
        transformer = str(gguf) if gguf else None
        vae = str(vae_path) if vae_path else None
        name = source_spec.source if source_spec.source_type == "hub" else Path(source_spec.source).expanduser().stem
        if path.is_file():
            config = config_folder_for(source_spec, source_spec.kind, settings)
    else:
        model = settings.default_model

    def pick(name: str) -> Any:
        value = getattr(request, name)
        if value is not None:
            return value
        return getattr(spec, name) if spec is not None else DEFAULTS[name]

    use_style = request.style
    return Plan(
        model=model,
        # A schedule type asked alone applies to the package's sampler ("DPM++ 2M Karras" + beta).
        sampler=pick("sampler") if request.sampler is not None else canonical_sampler(pick("sampler"), request.scheduler),
        steps=pick("steps"),
        cfg=pick("cfg"),
        width=pick("width"),
        height=pick("height"),
        clip_skip=pick("clip_skip"),
        negative_prompt=request.negative_prompt or (spec.negative_prompt if spec is not None else ""),
        preset=spec.name if spec is not None else None,
        style=", ".join(spec.style) if spec is not None and use_style else "",
        config=config,
        vae=vae,
        name=name,
        transformer=transformer,
        scheduler_options=source_spec.scheduler_settings() if source_spec is not None else {},  # they belong to the weights
    )
