"""Marian backend: Helsinki-NLP/opus-mt-id-en through transformers' MarianMTModel.

Weights download on first use like any Hugging Face model (about 300 MB) and are loaded
once per process, lazily; ``weights_available()`` tells ``auto`` whether they are local.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from gambarkan.errors import DependencyMissingError, ModelLoadError, NetworkError

MODEL_ID = "Helsinki-NLP/opus-mt-id-en"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def weights_available(model_id: str = MODEL_ID) -> bool:
    """True when the model is a local folder or its weights are already in the HF cache."""
    path = Path(model_id).expanduser()
    if path.is_dir():
        return (path / "config.json").exists()
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    if not isinstance(try_to_load_from_cache(model_id, "config.json"), str):
        return False
    return any(isinstance(try_to_load_from_cache(model_id, f), str) for f in WEIGHT_FILES)


def _clean(text: str) -> str:
    """Marian writes sentences; prompts want phrases: drop the final full stop."""
    text = text.strip()
    return re.sub(r"(?<![.\d])\.$", "", text).strip()


class Seq2SeqBackend:
    """A Hugging Face translation model loaded once, lazily, with one clear error when it can't be."""

    name = "seq2seq"
    default_model = MODEL_ID
    download_size = "~300 MB"
    install_hint = "pip install transformers sentencepiece"

    def __init__(self, model_id: str | None = None, offline: bool = False, device: str = "cpu") -> None:
        self.model_id = model_id or self.default_model
        self.offline = offline
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _classes(self) -> tuple[Any, Any]:
        """(tokenizer class, model class) from transformers."""
        raise NotImplementedError

    def load(self) -> None:
        """Load tokenizer and model once; raise one clear GambarkanError when that fails."""
        with self._lock:
            if self._model is not None:
                return
            try:
                import sentencepiece  # noqa: F401

                tokenizer_cls, model_cls = self._classes()
            except ImportError as exc:
                raise DependencyMissingError(
                    f"the {self.name} translator needs transformers and sentencepiece ({exc.name} is missing)",
                    f"{self.install_hint}, or use --translator glossary",
                ) from None
            not_here = f"the {self.name} translator's weights ({self.model_id}) are not downloaded"
            fix = f"connect once without --offline to download them ({self.download_size}), or use --translator glossary"
            local_only = self.offline and not Path(self.model_id).is_dir()
            if local_only and not weights_available(self.model_id):
                raise NetworkError(f"{not_here} and offline mode is on", fix)
            if not local_only and not weights_available(self.model_id):
                require_hub(self.model_id, self.name, self.download_size)
            try:
                tokenizer = tokenizer_cls.from_pretrained(self.model_id, local_files_only=local_only)
                model = model_cls.from_pretrained(self.model_id, local_files_only=local_only)
            except Exception as exc:  # transformers and safetensors raise many kinds for missing or bad files
                if not weights_available(self.model_id) and _is_network_error(exc):
                    raise NetworkError(f"{not_here} and cannot be fetched now", fix) from None
                raise ModelLoadError(
                    f"cannot load the {self.name} translator {self.model_id}: {str(exc).splitlines()[0]}",
                    "use --translator glossary",
                ) from None
            model.eval()
            self._tokenizer, self._model = tokenizer, model.to(self.device)


class MarianBackend(Seq2SeqBackend):
    """Indonesian -> English with a MarianMT model (CPU is fast enough: tens of ms a phrase)."""

    name = "marian"

    def _classes(self) -> tuple[Any, Any]:
        from transformers import MarianMTModel, MarianTokenizer

        return MarianTokenizer, MarianMTModel

    def translate(self, texts: list[str], langs: list[str] | None = None) -> list[str]:
        if not texts:
            return []
        self.load()
        import torch

        batch = self._tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=256)
        batch = {k: v.to(self.device) for k, v in batch.items()}
        max_new = int(batch["input_ids"].shape[1] * 2 + 8)
        with torch.inference_mode():
            out = self._model.generate(**batch, num_beams=4, max_new_tokens=max_new)
        return [_clean(t) for t in self._tokenizer.batch_decode(out, skip_special_tokens=True)]


def _hub_address() -> tuple[str, int]:
    from urllib.parse import urlparse

    from gambarkan.models.urlpolicy import configured_endpoint

    url = urlparse(configured_endpoint())
    return url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub (``HF_ENDPOINT``) accepts a connection; False when HF_HUB_OFFLINE is set."""
    import socket

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    try:
        socket.create_connection(_hub_address(), timeout=timeout).close()
    except OSError:
        return False
    return True


def download(model_id: str = MODEL_ID, progress: bool = True) -> Path:
    """Fetch the Marian tokenizer and weights once into the HF cache (safetensors when the repo has them).

    Used by ``auto`` when the Hub can be reached; a progress bar shows on stderr unless disabled.
    """
    try:
        from huggingface_hub import HfApi, snapshot_download
        from huggingface_hub.utils import disable_progress_bars, enable_progress_bars
    except ImportError:
        raise DependencyMissingError("downloading marian needs huggingface_hub", "pip install huggingface_hub") from None
    from gambarkan.models import urlpolicy

    urlpolicy.install()
    endpoint = urlpolicy.configured_endpoint()
    if progress:
        import sys

        print(f"gambarkan: downloading the marian translator ({model_id}, ~300 MB) once", file=sys.stderr, flush=True)
    try:
        tree = HfApi(endpoint=endpoint).list_repo_tree(model_id)
        sizes = {f.path: int(getattr(f, "size", 0) or 0) for f in tree if hasattr(f, "size")}
        weights = next((f for f in WEIGHT_FILES if f in sizes), None)
        if weights is None:
            raise ModelLoadError(f"{model_id} has no weights file ({' or '.join(WEIGHT_FILES)})", "use --translator glossary")
        wanted = [f for f in sizes if f.endswith((".json", ".spm", ".txt", ".model"))] + [weights]
        (enable_progress_bars if progress else disable_progress_bars)()
        with urlpolicy.size_cap(max(sizes[f] for f in wanted)):
            return Path(snapshot_download(model_id, allow_patterns=wanted, endpoint=endpoint))
    except ModelLoadError:
        raise
    except Exception as exc:  # huggingface_hub raises many kinds for network and HTTP failures
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NetworkError(code="translator_download_failed", params={"model": model_id, "detail": detail}) from None


def require_hub(model_id: str, backend: str, size: str, timeout: float = 3.0) -> None:
    """Fail in seconds, not minutes of retries, when weights must be downloaded but the Hub is unreachable."""
    import socket

    from gambarkan.models import urlpolicy

    urlpolicy.install()  # the download that follows obeys the same URL policy as model pulls

    host = _hub_address()[0]
    try:
        socket.create_connection(_hub_address(), timeout=timeout).close()
    except OSError:
        raise NetworkError(
            f"the {backend} translator's weights ({model_id}) are not downloaded and {host} cannot be reached",
            f"connect to the internet once to download them ({size}), or use --translator glossary",
        ) from None


def _is_network_error(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(w in text for w in ("connect", "offline", "resolve", "network", "cannot find the requested files", "couldn't", "timed out"))
