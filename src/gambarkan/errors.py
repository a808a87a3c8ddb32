"""The GambarkanError tree: every failure a user can fix, with one exit code and one HTTP status.

Messages are one line: what went wrong, then (in the hint) how to fix it. Each error carries a
stable ``code`` and its ``params``, so every surface can say it in its user's language:
``raise InvalidRequestError(code="size_not_multiple_of_8", params={...})`` takes its English text
from ``MESSAGES`` below and its Indonesian text from ``gambarkan.i18n``; ``gambarkan.i18n.render``
picks one. ``GambarkanError(message, hint)`` without a code still works (class code, English only).
"""

from __future__ import annotations

import difflib
import string
from collections.abc import Iterable, Mapping

#: Param values: plain JSON scalars, so an error survives the job database and the HTTP body.
Param = str | int | float | bool | None

#: English (message, hint) per code, filled from ``params``. The Indonesian texts are in ``gambarkan.i18n.ID``.
#: ``{did_you_mean}`` is made from the ``close`` param ("'anime', 'anim'" or ""), in each language.
MESSAGES: dict[str, tuple[str, str | None]] = {
    # request validation (request.py)
    "size_out_of_range": ("{field} {value} is out of range ({lo}-{hi})", None),
    "size_not_multiple_of_8": ("{field} {value} is not a multiple of 8", "try {suggestion}"),
    "value_out_of_range": ("{field} {value} is out of range", "use a value from {lo} to {hi}"),
    "unknown_option": ("unknown option '{field}'", "see: gambarkan generate --help"),
    "openvino_unavailable": ("OpenVINO cannot run {model} here", "it needs `pip install openvino` and an SD 1.x/2.x model in fp32 on the CPU"),
    "invalid_value": ("invalid {field}: {detail}", None),
    "prompt_has_nul": ("prompt contains a NUL character", None),
    "prompt_too_long": ("prompt is longer than {limit} characters", None),
    "unknown_sampler": ("unknown sampler '{name}'", "{did_you_mean}see: gambarkan samplers"),
    "unknown_schedule_type": ("unknown schedule type '{name}'", "{did_you_mean}see: gambarkan samplers"),
    # A1111 / OpenAI compatibility (server)
    "background_not_supported": (
        "background 'transparent' is not supported: gambarkan makes opaque images", "leave background unset or use 'opaque'",
    ),
    "interrogate_unavailable": (
        "interrogate (image captioning) is not available in gambarkan yet",
        "write the prompt yourself, or use /sdapi/v1/png-info for a PNG's own prompt",
    ),
    "unknown_vae": ("unknown VAE '{name}': this server has no separate VAEs", 'use "Automatic" (see /sdapi/v1/sd-vae)'),
    "style_not_found": (
        "style '{name}' not found: this server has no saved A1111 styles", "leave styles empty (see /sdapi/v1/prompt-styles)",
    ),
    # models
    "unknown_package": ("unknown preset '{name}'", "{did_you_mean}see: gambarkan models list"),
    "model_not_found": (
        "model file or folder not found: {path}",
        "check the path, or give a Hugging Face repo id like stable-diffusion-v1-5/stable-diffusion-v1-5",
    ),
    "package_not_downloaded": (
        "package '{name}' is not downloaded and offline mode is on",
        "run `gambarkan models pull {name}` with a connection (check it with `gambarkan doctor`), or use --model PATH",
    ),
    # IP-Adapter (engine/ip_adapter.py)
    "ip_adapter_missing": ("IP-Adapter '{name}' does not exist", "check the path"),
    "ip_adapter_unknown": ("unknown IP-Adapter '{name}'", "{did_you_mean}put an IP-Adapter folder in {folder} or give its path"),
    "ip_adapter_none": ("no IP-Adapter model is installed", "put an IP-Adapter folder in {folder} or give --ip-adapter-model PATH"),
    "ip_adapter_unnamed": ("no IP-Adapter model was named", "name one with --ip-adapter-model NAME|PATH ({names})"),
    # image inputs (inputs/images.py, engine/tasks.py, models/upscalers.py)
    "image_not_found": ("{what}: file not found: {path}", "check the path"),
    "image_not_regular_file": ("{what}: {path} is not a regular file", "give an image file (PNG, JPEG, WebP)"),
    "image_too_large_bytes": ("{what}: the image is {size_mb} MiB, over the {limit_mb} MiB limit", "save it smaller (JPEG or WebP)"),
    "image_not_base64": ("{what}: not an image file and not valid base64", "give a path, a data URL or base64 of a PNG/JPEG/WebP"),
    "image_empty": ("{what}: the image is empty", "give a path, a data URL or base64 of an image"),
    "image_unreadable": ("{what}: not an image (or a format gambarkan does not read)", "give a PNG, JPEG, WebP, GIF, BMP or TIFF file"),
    "image_decompression_bomb": ("{what}: the image claims a size far over the pixel limit (decompression bomb); the limit is {limit_mp} MP", "give a smaller image"),
    "image_too_many_pixels": ("{what}: the image is {width}x{height} ({mp} MP), over the {limit_mp} MP limit", "resize it to at most {fit_width}x{fit_height}"),
    "image_damaged": ("{what}: the image is damaged or truncated ({reason})", "save or download it again"),
    "input_image_gone": ("{what}: the input image {path} is no longer there", "pass the image again (--image PATH)"),
    "input_image_changed": ("{what}: the input image {path} changed since that run (hash {old}, now {new})", "pass --image to use it as it is now"),
    "input_image_not_kept": ("{what}: this run's input image was uploaded, not a file, so it was not kept", "pass the image again (--image PATH)"),
    "needs_init_image": ("{field} needs an input image", "give the image to work on (--image PATH)"),
    "mask_size_mismatch": ("the mask is {mask_width}x{mask_height} but the image is {width}x{height}", "give a mask of the same size, or let gambarkan resize it (--mask-resize / mask_resize=true)"),
    "mask_empty": ("the mask is empty: nothing would be repainted", "white = repaint; if yours is the other way round, use --mask-invert"),
    "mask_full": ("the mask covers the whole image, which is img2img", "leave the mask out, or paint only the part to change"),
    "mask_no_alpha": ("the input image has no transparent area to use as the mask", "give a PNG with transparency, or a mask (--mask PATH)"),
    "outpaint_not_multiple_of_8": ("the outpainted canvas would be {width}x{height}, not a multiple of 8", "add pixels so the canvas is a multiple of 8, e.g. {suggestion}"),
    "unknown_upscaler": ("unknown upscaler '{name}'", "{did_you_mean}see: gambarkan upscale --list"),
    "strength_runs_no_step": ("{field} {strength} with {steps} steps runs no denoising step", "raise the steps to {need} or the strength"),
    # storage and memory
    "disk_full_download": (
        "not enough free disk for '{name}': it needs {needed_mb} MB, {free_mb} MB are free in {path}",
        "free some space, or point HF_HUB_CACHE at a bigger disk",
    ),
    "disk_full": ("no space left on the disk holding {path}", "free some space or choose another --out folder"),
    # translation
    "translator_download_failed": (
        "cannot download the marian translator ({model}): {detail}",
        "check the connection, or use --translator glossary",
    ),
    "folder_not_writable": ("cannot write to {path} (permission denied)", "choose a folder you can write to with --out"),
    "folder_read_only": ("cannot write to {path} (read-only file system)", "choose a folder you can write to with --out"),
    "device_out_of_memory": ("the {device} ran out of memory in memory mode {mode}", "try a smaller size, a smaller batch, or the 'cepat' or 'umum' package"),
    "gpu_out_of_memory": (
        "the GPU ran out of memory even in memory mode {mode}",
        "try a smaller size or batch, --memory minimal, or a lighter package like 'umum'",
    ),
    # devices and model families
    "bf16_unsupported": (
        "this GPU (compute capability {major}.{minor}) has no bf16 hardware",
        "use --dtype fp16 or auto (bf16 needs 8.0 or newer, e.g. an A100 or L4)",
    ),
    "gguf_needs_base": (
        "{file} holds only the {family} transformer; the text encoders and VAE come from a base model",
        "install a {family} package first (e.g. gambarkan models pull flux-schnell), or use that package",
    ),
    # batch, variations, Ray (inputs/batch.py, prompt/variations.py, scale/ray.py)
    "batch_file_not_found": ("file not found: {path}", "check the path of the prompt file"),
    "batch_input_empty": ("{name} is empty", "write one prompt per line, or JSONL/CSV rows with a prompt field"),
    "batch_unknown_field": ("{where}: unknown field '{name}'", "{did_you_mean}fields: {fields}, ..."),
    "wildcard_missing": (
        "wildcard __{name}__ has no file {name}.txt in {where}",
        "create {name}.txt there with one choice per line, or set GAMBARKAN_WILDCARDS to your wildcard folder",
    ),
    "ray_not_installed": ("--ray needs Ray, which is not installed", "{install}"),
    "ray_unreachable": (
        "cannot reach the Ray cluster at {address}: {reason}",
        "start it with `ray start --head`, or check the address and the firewall",
    ),
}

#: Codes whose English text is written at the raise site (too varied for one template); Indonesian in i18n.
EXPLICIT_CODES = frozenset({"hub_unreachable", "pickle_refused"})


class _Keep(dict[str, object]):
    """``format_map`` helper: a placeholder without a value stays as ``{name}``, never a KeyError."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(template: str, params: Mapping[str, object], did_you_mean: str = "did you mean {close}? ") -> str:
    """``template`` with ``{placeholders}`` from ``params``; missing ones are left as written."""
    values = _Keep(params)
    close = params.get("close")
    values["did_you_mean"] = did_you_mean.format(close=close) if close else ""
    return string.Formatter().vformat(template, (), values)


def close_names(name: str, choices: Iterable[str], n: int = 3) -> str:
    """The names closest to ``name`` as "'a', 'b'" (the ``close`` param), or "" when nothing is close."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return ", ".join(f"'{lowered[c]}'" for c in close)


class GambarkanError(Exception):
    """Base class: a problem the user can fix; never shown with a traceback."""

    exit_code: int = 2
    http_status: int = 400
    code: str = "invalid_request"

    def __init__(
        self,
        message: str | None = None,
        hint: str | None = None,
        *,
        code: str | None = None,
        params: Mapping[str, Param] | None = None,
    ) -> None:
        if code is not None:
            self.code = code  # the specific code; the class keeps its own as ``kind``
        self.params: dict[str, Param] = dict(params or {})
        if message is None:
            template, hint_template = MESSAGES.get(self.code, (self.code.replace("_", " "), None))
            message = fill(template, self.params)
            if hint is None and hint_template:
                hint = fill(hint_template, self.params) or None
        super().__init__(message)
        self.message = message
        self.hint = hint

    @property
    def kind(self) -> str:
        """The class's code (``invalid_request``, ``out_of_memory`` ...): the family of ``code``."""
        return type(self).code

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, object]:
        """JSON body used by the server: ``{"error": err.to_dict()}`` (English ``message``, plus the code)."""
        data: dict[str, object] = {"code": self.code, "message": str(self), "hint": self.hint, "status": self.http_status}
        if self.code != self.kind:
            data["kind"] = self.kind
        if self.params:
            data["params"] = dict(self.params)
        return data


class InvalidRequestError(GambarkanError):
    """A request value is out of range or malformed (size, steps, cfg, sampler ...)."""

    http_status = 422
    code = "invalid_request"


class UnknownModelError(GambarkanError):
    """The model, preset, LoRA or embedding name matches nothing we can find."""

    http_status = 404
    code = "unknown_model"


class ModelLoadError(GambarkanError):
    """A model exists but cannot be loaded: corrupt, truncated, wrong type, unsafe."""

    http_status = 422
    code = "model_load_failed"


class UnsafeFileError(ModelLoadError):
    """A file would need pickle (code execution) to load and the user did not allow it."""

    code = "unsafe_file"


class NetworkError(GambarkanError):
    """A download or online backend could not be reached."""

    http_status = 424
    code = "network_unavailable"


class OutOfMemoryError(GambarkanError):
    """The device ran out of memory even after falling back to a lower memory mode."""

    http_status = 422
    code = "out_of_memory"


class DiskFullError(GambarkanError):
    """No space (or no permission) to write outputs; earlier files are untouched."""

    http_status = 409
    code = "storage_unavailable"


class DependencyMissingError(GambarkanError):
    """An optional extra is not installed (server, ui, nllb ...)."""

    http_status = 424
    code = "dependency_missing"


class CancelledError(GambarkanError):
    """The generation was cancelled by the user."""

    http_status = 409
    code = "cancelled"


class NumericalError(GambarkanError):
    """The model produced NaN/black images even after the precision fix; nothing was saved."""

    http_status = 422
    code = "non_finite_output"


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str | None:
    """Return "did you mean 'a', 'b'?" for the closest names, or None when nothing is close."""
    close = close_names(name, choices, n)
    return f"did you mean {close}?" if close else None
