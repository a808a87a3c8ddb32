"""The GambarkanError tree: every failure a user can fix, with one exit code and one HTTP status.

Messages are one line: what went wrong, then (in the hint) how to fix it. Surfaces print
``gambarkan: error: <message> (<hint>)`` on the CLI and ``{"error": {...}}`` on the server.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GambarkanError(Exception):
    """Base class: a problem the user can fix; never shown with a traceback."""

    exit_code: int = 2
    http_status: int = 400
    code: str = "invalid_request"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, str | int | None]:
        """JSON body used by the server: ``{"error": err.to_dict()}``."""
        return {"code": self.code, "message": str(self), "hint": self.hint, "status": self.http_status}


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
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    if not close:
        return None
    return "did you mean " + ", ".join(f"'{lowered[c]}'" for c in close) + "?"
