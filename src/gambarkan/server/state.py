"""Server configuration, the models a client may name, limits, and request building.

Clients never send paths: a model is named by a package (preset) name or by the name the
server gave its default model, and ``out_dir`` cannot be set over HTTP. Everything else goes
through ``GenerationRequest`` validation plus the server's own (configurable) limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from gambarkan.errors import GambarkanError, InvalidRequestError, UnknownModelError, did_you_mean
from gambarkan.request import LIMITS, GenerationRequest

# Fields a client may never set: they name server files or folders.
FORBIDDEN_FIELDS = {"out_dir": "the server always saves into its own output folder"}
# OpenAI model names that apps hard-code; they mean "the server's default model".
OPENAI_MODEL_ALIASES = re.compile(r"^(dall-e|gpt-image|chatgpt-image)", re.IGNORECASE)


@dataclass
class ServerConfig:
    """What ``gambarkan serve`` was started with; all limits are per request."""

    model: str | None = None
    preset: str | None = None
    api_keys: list[str] = field(default_factory=list)
    allowed_hosts: list[str] = field(default_factory=list)  # Host names answered without a key, beside loopback
    queue_size: int = 32
    max_width: int = LIMITS["size"][1]
    max_height: int = LIMITS["size"][1]
    max_steps: int = LIMITS["steps"][1]
    max_images: int = 16
    max_prompt_chars: int = 8000
    max_body_bytes: int = 1024 * 1024
    max_image_body_bytes: int = 96 * 1024 * 1024  # routes that take images (img2img, extras, edits)
    shutdown_timeout: float = 30.0
    save_outputs: bool = True
    max_attempts: int = 3  # runs of a job that keeps killing the server before it ends failed
    persist_jobs: bool = True  # keep the queue in home/jobs.db so a restarted server finishes it
    batching: str = "auto"  # share one pipeline call between compatible jobs: auto (GPU only) | on | off


@dataclass
class ModelEntry:
    """A model a client may ask for by ``name``; ``fields`` go into the GenerationRequest."""

    name: str
    fields: dict[str, Any]
    kind: str = "sd15"
    default: bool = False
    description: str = ""


class ImageNameError(GambarkanError):
    http_status = 400
    code = "invalid_image_name"


def _display_name(model: str) -> str:
    path = Path(model).expanduser()
    if path.exists():
        return path.stem if path.is_file() else path.name
    return model


def _strip_title(name: str) -> str:
    """A1111 titles look like ``name.safetensors [abcd1234]``; keep ``name``."""
    name = re.sub(r"\s*\[[0-9a-fA-F]+\]\s*$", "", name.strip())
    for suffix in (".safetensors", ".ckpt"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


class ServerState:
    """Settings, engine(s), job queue and the model registry shared by all routes."""

    def __init__(self, settings: Any, engines: list[Any], config: ServerConfig) -> None:
        from gambarkan.server.jobs import JobQueue

        self.settings = settings
        self.engines = engines
        self.config = config
        store = None
        if config.persist_jobs:
            from gambarkan.server.store import DB_NAME, JobStore

            store = JobStore(Path(settings.home) / DB_NAME)
        self.queue = JobQueue(
            engines, size=config.queue_size, image_url=self.image_url, store=store, max_attempts=config.max_attempts,
            batching=config.batching,
        )  # fmt: skip
        self.default_entry = self._default_entry()
        self.current_model = self.default_entry.name  # A1111's sd_model_checkpoint
        self.a1111_options: dict[str, Any] = {"CLIP_stop_at_last_layers": 1, "show_progress_every_n_steps": 0}
        self.model_hashes: dict[str, str] = {}  # model name -> A1111 short hash, once it has run

    # -- models -----------------------------------------------------------------------------
    def _default_entry(self) -> ModelEntry:
        if self.config.model:
            return ModelEntry(_display_name(self.config.model), {"model": self.config.model}, default=True)
        if self.config.preset:
            return ModelEntry(self.config.preset.strip().lower(), {"preset": self.config.preset}, default=True)
        from gambarkan.config import DEFAULT_MODEL
        from gambarkan.models.catalog import DEFAULT_PRESET

        if self.settings.default_model != DEFAULT_MODEL:
            return ModelEntry(_display_name(self.settings.default_model), {}, default=True)
        return ModelEntry(DEFAULT_PRESET, {}, default=True)

    def models(self) -> dict[str, ModelEntry]:
        """Default model first, then installed packages (by name)."""
        from gambarkan.models import store
        from gambarkan.models.catalog import load_catalog

        entries = {self.default_entry.name: self.default_entry}
        try:
            catalog = load_catalog(self.settings)
        except GambarkanError:
            catalog = {}
        for name, spec in catalog.items():
            if name in entries:
                entries[name].kind = spec.kind
                entries[name].description = spec.description_en
                continue
            try:
                installed = store.is_installed(spec, self.settings)
            except Exception:  # noqa: BLE001 - a broken record just hides the package
                installed = False
            if installed:
                entries[name] = ModelEntry(name, {"model": name}, kind=spec.kind, description=spec.description_en)
        return entries

    def find_model(self, name: str | None, field_name: str = "model") -> ModelEntry:
        """The entry for a client-supplied model name; UnknownModelError (404) otherwise."""
        if name is None or not str(name).strip():
            return self.default_entry
        models = self.models()
        wanted = _strip_title(str(name))
        for candidate in (wanted, wanted.lower()):
            if candidate in models:
                return models[candidate]
        lowered = {k.lower(): v for k, v in models.items()}
        if wanted.lower() in lowered:
            return lowered[wanted.lower()]
        hint = did_you_mean(wanted, models) or f"known models: {', '.join(models)}"
        raise UnknownModelError(f"unknown {field_name} '{name}'", f"{hint} (see GET /v1/models)")

    # -- requests ---------------------------------------------------------------------------
    def build_request(self, fields: dict[str, Any]) -> GenerationRequest:
        """A validated GenerationRequest from client fields; ``model`` is a name from ``models()``."""
        fields = dict(fields)
        model = fields.pop("model", None)
        if model is not None and not isinstance(model, str):
            raise InvalidRequestError("invalid model: must be a model name (see GET /v1/models)")
        for name in ("init_image", "mask"):  # images over HTTP are data; a server path is never read
            value = fields.get(name)
            if isinstance(value, str):
                from gambarkan.server.a1111_images import image_bytes

                fields[name] = image_bytes(value, name)
            elif value is not None and not isinstance(value, (bytes, bytearray)) and type(value).__module__.split(".")[0] != "PIL":
                raise InvalidRequestError(f"{name} must be image data over HTTP", "send the image base64-encoded")
        for name, why in FORBIDDEN_FIELDS.items():
            if fields.get(name) is not None:
                raise InvalidRequestError(f"{name} cannot be set over HTTP", why)
        preset = fields.get("preset")
        if preset is not None:
            from gambarkan.models.catalog import get_package

            if not isinstance(preset, str):
                raise InvalidRequestError("invalid preset: must be a string")
            fields["preset"] = get_package(preset, self.settings).name  # UnknownModelError with suggestions
        if model is not None or preset is None:
            entry = self.find_model(model)
            for key, value in entry.fields.items():
                fields.setdefault(key, value)
        else:
            self._require_installed(fields["preset"])
        request = GenerationRequest(**fields)
        self.check_limits(request)
        return request

    def _require_installed(self, preset: str) -> None:
        if preset == self.default_entry.name:
            return
        if preset not in self.models():
            raise UnknownModelError(
                f"package '{preset}' is not installed on this server",
                f"ask the operator to run: gambarkan models pull {preset}",
            )

    def check_limits(self, request: GenerationRequest) -> None:
        """The server's limits, stricter than GenerationRequest's own, naming the field."""
        cfg = self.config
        checks = [
            ("width", request.width, cfg.max_width),
            ("height", request.height, cfg.max_height),
            ("steps", request.steps, cfg.max_steps),
        ]
        for name, value, limit in checks:
            if value is not None and value > limit:
                raise InvalidRequestError(
                    f"{name} {value} is above this server's limit of {limit}", f"use at most {limit}"
                )
        images = request.batch_size * request.count
        if images > cfg.max_images:
            raise InvalidRequestError(
                f"batch_size x count = {images} images is above this server's limit of {cfg.max_images}",
                "ask for fewer images per request",
            )
        chars = len(request.prompt) + len(request.negative_prompt)
        if chars > cfg.max_prompt_chars:
            raise InvalidRequestError(
                f"prompt is {chars} characters, above this server's limit of {cfg.max_prompt_chars}",
                "shorten the prompt",
            )
        if not request.prompt.strip():
            raise InvalidRequestError("prompt is empty", "write what to draw, e.g. 'kucing lucu di taman'")

    # -- files ------------------------------------------------------------------------------
    def image_url(self, path: Path | str | None) -> str | None:
        """``/api/images/<relative path>`` for a file inside the output folder, else None."""
        if path is None:
            return None
        try:
            relative = Path(path).resolve().relative_to(Path(self.settings.output_dir).resolve())
        except ValueError:
            return None
        return "/api/images/" + quote(relative.as_posix())

    def image_path(self, name: str) -> Path:
        """The PNG file ``name`` inside the output folder; refuses anything that would leave it.

        ``safe_join`` (the one guard for user-given names) decides; hidden files and anything
        that is not a PNG are never served either.
        """
        from gambarkan.paths import UnsafePathError, safe_join
        from gambarkan.server.errors import NotFoundError

        try:
            path = safe_join(self.settings.output_dir, name, "image name")
        except UnsafePathError:
            raise ImageNameError(
                "image names cannot leave the output folder", "use the url given in the job result"
            ) from None
        if any(part.startswith(".") for part in PurePosixPath(name).parts):
            raise ImageNameError("image names cannot leave the output folder", "use the url given in the job result")
        if not name.lower().endswith(".png") or not path.is_file():
            raise NotFoundError(f"no image named '{name}'", "use the url given in the job result")
        return path
