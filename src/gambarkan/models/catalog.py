"""Model packages (presets): what to download, under which licence, with which best settings.

Built-in packages live in ``catalog.toml`` beside this file; the user's own packages (written by
``gambarkan models add``) live in ``<config_dir>/models.toml`` with the same fields and overlay
the built-ins by name. Nothing here imports torch or touches the network.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from gambarkan.errors import InvalidRequestError, UnknownModelError, UnsafeFileError, close_names, did_you_mean
from gambarkan.families import get_family
from gambarkan.families import names as family_names

CATALOG_FILE = Path(__file__).with_name("catalog.toml")
USER_FILE_NAME = "models.toml"
DEFAULT_PRESET = "umum"
KINDS = family_names()
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")

#: Typical sizes per family, used for user packages that do not say (the family's own data).
KIND_DEFAULTS: dict[str, dict[str, Any]] = {name: dict(get_family(name).catalog_defaults) for name in KINDS}


@dataclass(frozen=True)
class ModelSpec:
    """One package: where its weights come from, its licence, needs and best settings."""

    name: str
    title_id: str
    title_en: str
    description_id: str
    description_en: str
    kind: str
    source: str
    revision: str
    variant: str
    files: tuple[str, ...]
    vae_source: str
    vae_revision: str
    vae_files: tuple[str, ...]
    config: str
    license: str
    license_url: str
    download_mb: int
    min_vram_mb: int
    min_ram_mb: int
    sampler: str
    steps: int
    cfg: float
    width: int
    height: int
    clip_skip: int
    negative_prompt: str
    style: tuple[str, ...] = ()
    scheduler_options: str = ""  # e.g. "timestep_spacing=trailing" (SDXL-Lightning); optional
    transformer_gguf: str = ""  # "owner/repo@commit:file.gguf" or a local .gguf: a quantized transformer; optional
    builtin: bool = field(default=True, compare=False)

    def scheduler_settings(self) -> dict[str, str | bool | int | float]:
        """``scheduler_options`` as scheduler config overrides ({"timestep_spacing": "trailing"})."""
        return parse_scheduler_options(self.scheduler_options)

    @property
    def source_type(self) -> str:
        """``hub`` (download into the HF cache), ``folder`` (local diffusers folder) or ``file``."""
        if self.source.startswith(("/", "~", ".")) or os.sep in self.source.replace("/", "", 1):
            return "file" if self.source.lower().endswith((".safetensors", ".gguf")) else "folder"
        path = Path(self.source).expanduser()
        if path.is_file():
            return "file"
        if path.is_dir():
            return "folder"
        return "hub"

    def title(self, lang: str = "id") -> str:
        return self.title_en if lang == "en" else self.title_id

    def description(self, lang: str = "id") -> str:
        return self.description_en if lang == "en" else self.description_id

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = list(self.files)
        data["vae_files"] = list(self.vae_files)
        data["style"] = list(self.style)
        data["source_type"] = self.source_type
        return data


#: Fields a package may leave out (most packages need neither).
OPTIONAL_FIELDS: tuple[str, ...] = ("scheduler_options", "transformer_gguf")
#: Fields every built-in package must set (the schema test checks this list).
REQUIRED_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ModelSpec) if f.name not in ("name", "builtin", *OPTIONAL_FIELDS))
_SCHEDULER_KEYS = {"timestep_spacing", "prediction_type", "rescale_betas_zero_snr", "steps_offset"}


def parse_scheduler_options(text: str) -> dict[str, str | bool | int | float]:
    """``"timestep_spacing=trailing, steps_offset=1"`` -> config overrides; unknown keys are refused."""
    options: dict[str, str | bool | int | float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, raw = (x.strip() for x in part.partition("="))
        if not sep or key not in _SCHEDULER_KEYS:
            raise InvalidRequestError(f"invalid scheduler option '{part[:60]}'", f"use key=value with a key from: {', '.join(sorted(_SCHEDULER_KEYS))}")
        value: str | bool | int | float = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        elif raw.lstrip("-").isdigit():
            value = int(raw)
        options[key] = value
    return options
_TUPLE_FIELDS = {"files", "vae_files", "style"}
_INT_FIELDS = {"download_mb", "min_vram_mb", "min_ram_mb", "steps", "width", "height", "clip_skip"}


_TOML_CACHE: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}


def _read_toml(path: Path) -> dict[str, Any]:
    """The parsed file, re-read only when its size or mtime changed (every generate resolves a package)."""
    import copy

    try:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = _TOML_CACHE.get(path)
        if cached is not None and cached[0] == stamp:
            return copy.deepcopy(cached[1])
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
        _TOML_CACHE[path] = (stamp, data)
        return copy.deepcopy(data)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as exc:  # TOMLDecodeError and bad UTF-8 are ValueErrors
        raise InvalidRequestError(f"cannot read model catalog {path}: {str(exc)[:200]}", "fix or delete that file") from None


def _package_tables(path: Path) -> dict[str, Any]:
    """The ``[packages.*]`` tables of a catalog file; a clear error when the file's shape is wrong."""
    tables = _read_toml(path).get("packages", {})
    if not isinstance(tables, dict):
        raise InvalidRequestError(f"cannot read model catalog {path}: 'packages' is not a table", "fix or delete that file")
    return tables


def _spec_from_table(name: str, table: dict[str, Any], *, builtin: bool) -> ModelSpec:
    """Build a ModelSpec from one ``[packages.NAME]`` table; user tables may leave fields out."""
    if not isinstance(table, dict):
        raise InvalidRequestError(f"model package '{name}' is not a table", "write it as [packages.NAME] with its fields below")
    if not builtin and not NAME_RE.match(name):
        raise InvalidRequestError(f"invalid package name '{name[:60]}' in your model catalog", "use lowercase letters, digits, '-' or '_' (max 40)")
    data = dict(table)
    if not builtin:
        data = _fill_user_defaults(name, data)
    missing = [f for f in REQUIRED_FIELDS if f not in data]
    if missing:
        raise InvalidRequestError(f"model package '{name}' is missing {', '.join(missing)}", "add those fields to the catalog")
    unknown = sorted(set(data) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise InvalidRequestError(f"model package '{name}' has unknown field(s) {', '.join(unknown)}", "remove them from the catalog")
    values: dict[str, Any] = {}
    for key in REQUIRED_FIELDS:
        value = data[key]
        try:
            if key in _TUPLE_FIELDS:
                value = tuple(str(v) for v in ([value] if isinstance(value, str) else value))
            elif key in _INT_FIELDS:
                value = int(value)
            elif key == "cfg":
                value = float(value)
                if value != value or value in (float("inf"), float("-inf")):
                    raise ValueError(value)
            else:
                value = str(value)
        except (TypeError, ValueError, OverflowError):
            raise InvalidRequestError(f"model package '{name}' has an invalid {key}: {str(data[key])[:60]!r}", "fix that field in the catalog") from None
        values[key] = value
    if values["kind"] not in KINDS:
        raise InvalidRequestError(f"model package '{name}' has kind '{values['kind']}'", f"use one of: {', '.join(KINDS)}")
    for key in OPTIONAL_FIELDS:
        values[key] = str(data.get(key, ""))
    parse_scheduler_options(values["scheduler_options"])  # a bad option fails when the catalog is read
    return ModelSpec(name=name, builtin=builtin, **values)


def _fill_user_defaults(name: str, data: dict[str, Any]) -> dict[str, Any]:
    from gambarkan.request import DEFAULTS

    kind = str(data.get("kind") or "sd15")
    base: dict[str, Any] = {
        "title_id": name,
        "title_en": name,
        "description_id": "Paket buatan pengguna.",
        "description_en": "A package added by the user.",
        "kind": kind,
        "revision": "",
        "variant": "",
        "files": [],
        "vae_source": "",
        "vae_revision": "",
        "vae_files": [],
        "config": "",
        "license": "unknown (check the model's own page)",
        "license_url": "",
        "sampler": DEFAULTS["sampler"],
        "steps": DEFAULTS["steps"],
        "cfg": DEFAULTS["cfg"],
        "clip_skip": DEFAULTS["clip_skip"],
        "negative_prompt": "",
        "style": [],
        **KIND_DEFAULTS.get(kind, KIND_DEFAULTS["sd15"]),
    }
    base.update(data)
    return base


def builtin_packages() -> dict[str, ModelSpec]:
    """The packages shipped in catalog.toml, in file order."""
    tables = _package_tables(CATALOG_FILE)
    return {name: _spec_from_table(name, table, builtin=True) for name, table in tables.items()}


def user_catalog_path(settings: Any) -> Path:
    """Where ``gambarkan models add`` writes: ``<config_dir>/models.toml``."""
    return Path(settings.config_dir) / USER_FILE_NAME


def user_packages(settings: Any) -> dict[str, ModelSpec]:
    """The user's own packages (empty when the file does not exist)."""
    if settings is None:
        return {}
    tables = _package_tables(user_catalog_path(settings))
    return {name: _spec_from_table(name, table, builtin=False) for name, table in tables.items()}


def load_catalog(settings: Any = None) -> dict[str, ModelSpec]:
    """All packages by name: built-ins overlaid by the user's (same name -> user wins)."""
    packages = builtin_packages()
    packages.update(user_packages(settings))
    return packages


def get_package(name: str, settings: Any = None) -> ModelSpec:
    """Look a package up by name (case-insensitive); UnknownModelError with suggestions."""
    packages = load_catalog(settings)
    key = name.strip().lower()
    if key in packages:
        return packages[key]
    raise UnknownModelError(code="unknown_package", params={"name": name, "close": close_names(name, packages)})


# --- user packages -----------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped)
    return f'"{escaped}"'


def dump_packages(tables: dict[str, dict[str, Any]]) -> str:
    """Write ``{name: {field: value}}`` as TOML ``[packages.name]`` tables (strings, numbers, lists)."""
    lines = ["# gambarkan user model packages (written by `gambarkan models add`).", ""]
    for name, table in tables.items():
        lines.append(f"[packages.{name}]")
        for key, value in table.items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _write_atomic(path: Path, text: str) -> None:
    """Save the user catalog atomically; on failure the earlier file stays as it was."""
    from gambarkan.errors import DiskFullError
    from gambarkan.outputs.png import write_atomic

    try:
        write_atomic(path, text.encode("utf-8"))
    except DiskFullError as exc:
        raise DiskFullError(f"could not save {path}: {exc.message}", "free some disk space; your packages are unchanged") from None


def detect_kind(source: str) -> str:
    """Family of a local folder or .safetensors file (reads configs / tensor names only)."""
    from gambarkan.families import detect_file, detect_folder
    from gambarkan.models.safety import check_file

    from gambarkan.families import gguf_tensor_names, is_gguf

    path = Path(source).expanduser()
    if path.is_dir():
        return detect_folder(path).name
    if is_gguf(path):
        return detect_file(gguf_tensor_names(path)).name
    return detect_file(check_file(path).keys()).name


def add_user_package(settings: Any, name: str, source: str, *, allow_pickle: bool = False, **overrides: Any) -> ModelSpec:
    """Validate ``source`` (Hub id, folder, .safetensors file) and save package ``name``.

    ``overrides`` may set any catalog field (sampler, steps, cfg, width, height, clip_skip,
    negative_prompt, style, kind, revision, license ...). A local source is checked now
    (format by bytes, SD family detected) so a bad package fails here and not at generate time.
    """
    from gambarkan.models.safety import PICKLE_HINT, check_folder

    name = name.strip().lower()
    if not NAME_RE.match(name):
        raise InvalidRequestError(f"invalid package name '{name}'", "use lowercase letters, digits, '-' or '_' (max 40)")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(overrides) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise InvalidRequestError(f"unknown package field(s) {', '.join(unknown)}", "see: gambarkan models add --help")
    if "sampler" in overrides:
        from gambarkan.sampler_names import canonical_sampler

        overrides["sampler"] = canonical_sampler(str(overrides["sampler"]))
    path = Path(source).expanduser()
    if path.exists():
        try:
            if path.is_dir():
                check_folder(path, allow_pickle=allow_pickle)
            elif path.suffix.lower() not in (".safetensors", ".gguf"):
                from gambarkan.models.safety import check_file

                check_file(path, allow_pickle=allow_pickle)  # refuses pickles with a clear message
                raise InvalidRequestError(f"{path.name} is not a .safetensors file", "give a .safetensors file or a diffusers folder")
            overrides.setdefault("kind", detect_kind(str(path)))
        except UnsafeFileError as exc:
            if allow_pickle or exc.hint != PICKLE_HINT:
                raise
            raise UnsafeFileError(exc.message, f"{exc.hint}, or pass --allow-pickle to scan it and keep it if it is clean") from None
        source = str(path.resolve())
    elif not HUB_ID_RE.match(source):
        raise UnknownModelError(
            f"model source not found: {source}", "give an existing folder, a .safetensors file or a Hub id like owner/name"
        )
    else:
        overrides.setdefault("files", ["*.json", "*.txt", "**/*.json", "**/*.txt", "**/*.safetensors"])
    table = {"source": source, **overrides}
    for key in ("files", "vae_files", "style"):
        if key in table:
            table[key] = list(table[key])
    spec = _spec_from_table(name, table, builtin=False)  # validates before anything is written
    path_file = user_catalog_path(settings)
    tables = _package_tables(path_file)
    tables[name] = table
    _write_atomic(path_file, dump_packages(tables))
    return spec


def remove_user_package(settings: Any, name: str) -> bool:
    """Drop ``name`` from the user catalog; False when it was not a user package."""
    path_file = user_catalog_path(settings)
    tables = _package_tables(path_file)
    if name not in tables:
        return False
    del tables[name]
    _write_atomic(path_file, dump_packages(tables))
    return True
