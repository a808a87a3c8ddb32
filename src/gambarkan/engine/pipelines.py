"""Build and load diffusers pipelines from a Hub id, a local diffusers folder or one .safetensors file.

The family (SD 1.x, SD 2.x, SDXL, FLUX) is detected from the folder's configs or the file's
tensor names (``gambarkan.families``), so each gets the right pipeline class. Loaded pipelines are kept in a
``PipelineCache`` owned by the engine.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gambarkan.errors import (
    GambarkanError,
    ModelLoadError,
    NetworkError,
    UnknownModelError,
    UnsafeFileError,
)
from gambarkan.families import Family, detect_file, detect_folder, get_family, gguf_tensor_names, is_gguf

PICKLE_SUFFIXES = {".ckpt", ".bin", ".pt", ".pth", ".pkl"}
#: What a GGUF transformer needs from its base repo: everything but the full-size transformer weights.
GGUF_BASE_FILES = ("model_index.json", "scheduler/*", "tokenizer/*", "tokenizer_2/*", "text_encoder/*", "text_encoder_2/*", "vae/*", "transformer/config.json")
MAX_HEADER_BYTES = 100 * 1024 * 1024


@dataclass
class LoadedModel:
    """A ready pipeline plus what metadata needs to name it."""

    pipe: Any
    arch: str
    name: str
    source: str
    hash: str | None
    load_seconds: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)
    scheduler_config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Samplers are rebuilt per run from the model's own config, never from the last run's.
        if not self.scheduler_config:
            self.scheduler_config = dict(self.pipe.scheduler.config)

    @property
    def family(self) -> Family:
        """What this model's family supports (pipelines per task, prompt encoding, memory)."""
        return get_family(self.arch)


def classify_source(model: str) -> str:
    """``file`` for a checkpoint file, ``folder`` for a local diffusers folder, ``hub`` for a repo id."""
    path = Path(model).expanduser()
    if path.exists() and not path.is_dir():
        from gambarkan.paths import require_regular_file

        require_regular_file(path, "model file")  # a FIFO or device is named as such, never opened
    if path.is_file():
        return "file"
    if path.is_dir():
        return "folder"
    looks_like_path = model.startswith((".", "/", "~")) or os.sep in model.strip("/").replace("/", "", 1) or model.count("/") > 1
    if looks_like_path or model.lower().endswith((".safetensors", ".ckpt", ".bin", ".pt")):
        raise UnknownModelError(code="model_not_found", params={"path": model})
    if model.count("/") != 1 or not all(model.split("/")):
        raise UnknownModelError(
            f"unknown model '{model}'", "give a package name (see: gambarkan models list), a Hub id like owner/name, a folder or a .safetensors file"
        )
    return "hub"


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """Parse and sanity-check a safetensors header; decide the format by bytes, not extension.

    One validator for every load path (models.safety): pickles are refused whatever their name.
    """
    from gambarkan.models.safety import check_file

    return check_file(path)


def detect_file_arch(header: dict[str, Any]) -> str:
    """The family name of an original-layout checkpoint from its tensor names."""
    return detect_file(header.keys()).name


def detect_folder_arch(folder: Path) -> str:
    """The family name of a diffusers folder from its model_index.json (and U-Net config)."""
    return detect_folder(folder).name


def _sha256_prefix(path: Path, cache_dir: Path | None) -> str:
    """A1111's "Model hash" (AutoV2): first 10 hex of the file's sha256, cached by size+mtime."""
    resolved = path.resolve()
    if resolved.parent.name == "blobs" and len(resolved.name) == 64:
        return resolved.name[:10]  # Hub cache blobs are named by their sha256.
    stat = resolved.stat()
    key = f"{resolved}|{stat.st_size}|{int(stat.st_mtime)}"
    cache_file = cache_dir / "hashes.json" if cache_dir else None
    cache: dict[str, str] = {}
    if cache_file and cache_file.is_file():
        try:
            cache = json.loads(cache_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            cache = {}
    if key in cache:
        return cache[key]
    digest = hashlib.sha256()
    with open(resolved, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    value = digest.hexdigest()[:10]
    if cache_file:
        try:
            from gambarkan.outputs.png import write_atomic

            cache_file.parent.mkdir(parents=True, exist_ok=True)
            cache[key] = value
            write_atomic(cache_file, json.dumps(cache).encode())
        except GambarkanError:
            pass
    return value


def _folder_weights(folder: Path, transformer: str | None = None) -> Path | None:
    """The denoiser's weights (U-Net, or the transformer of FLUX-like models): what "Model hash" names."""
    if transformer:
        return Path(transformer)
    for sub in ("unet", "transformer"):
        for name in sorted((folder / sub).glob("diffusion_pytorch_model*.safetensors")):
            return name
    return None


def _check_folder_safe(folder: Path) -> None:
    """Refuse folders whose weights exist only as pickles (.bin/.ckpt)."""
    for sub in folder.iterdir():
        if not sub.is_dir():
            continue
        files = [p for p in sub.iterdir() if p.is_file()]
        has_safe = any(p.suffix == ".safetensors" for p in files)
        pickles = [p for p in files if p.suffix.lower() in PICKLE_SUFFIXES]
        if pickles and not has_safe:
            raise UnsafeFileError(
                f"{sub.name}/{pickles[0].name} is a pickle-based weight file, which can run code when loaded",
                "convert the model to safetensors or use a safetensors release",
            )
        for weight in (p for p in files if p.suffix == ".safetensors"):
            read_safetensors_header(weight)


def _check_file_type(path: Path) -> None:
    """Refuse a file that is no model format at all (an image, a text) by name and type (GGUF goes to _load_gguf)."""
    from gambarkan.models.safety import PICKLE_SUFFIXES as PICKLE_NAMES
    from gambarkan.models.safety import sniff_format

    suffix = path.suffix.lower()
    if suffix == ".safetensors" or suffix in PICKLE_NAMES or sniff_format(path) != "unknown":
        return  # a real or damaged checkpoint: the safetensors checks say which
    raise ModelLoadError(
        f"{path.name} is not a model file gambarkan can load (unsupported file type '{suffix or 'none'}')",
        "give a .safetensors checkpoint, a diffusers model folder or a Hugging Face repo id",
    )


def _pipeline_class(arch: str, task: str = "txt2img") -> Any:
    import diffusers

    return getattr(diffusers, get_family(arch).pipeline_class(task))


def _common_kwargs(arch: str, dtype: str) -> dict[str, Any]:
    from gambarkan.engine.device import torch_dtype

    kwargs: dict[str, Any] = {"dtype": torch_dtype(dtype)}
    if get_family(arch).safety_checker:
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    return kwargs


def _load_gguf(path: Path, dtype: str, offline: bool, config: str | None) -> tuple[Any, str]:
    """A GGUF-quantized denoiser (e.g. city96's FLUX.1-schnell Q4_K_S) plus the rest of the pipeline.

    diffusers' own GGUF path: the weights stay quantized in memory and are dequantized layer by
    layer at compute time (``GGUFQuantizationConfig``); ``config`` is the diffusers folder (or
    Hub id) that holds the text encoders, VAE, scheduler and the transformer's config.json.
    """
    import diffusers

    family = detect_file(gguf_tensor_names(path))
    if not config:
        raise ModelLoadError(code="gguf_needs_base", params={"file": path.name, "family": family.title})
    base = Path(config).expanduser()
    repo, _, revision = config.partition("@")  # a package pins its base as "owner/name@commit"
    folder = base if base.is_dir() else download_snapshot(repo, offline, revision or None, list(GGUF_BASE_FILES))
    cls = getattr(diffusers, family.pipeline_class("txt2img"))
    try:
        kwargs = _common_kwargs(family.name, dtype)
        pipe = cls.from_pretrained(str(folder), transformer=_gguf_transformer(path, folder, dtype), use_safetensors=True, local_files_only=True, **kwargs)
    except GambarkanError:
        raise
    except Exception as exc:  # diffusers raises many types here
        raise _load_error(exc, path.name) from None
    return pipe, family.name


def _t5_8bit(folder: Path, arch: str, dtype: str) -> Any:
    """FLUX's T5-XXL in 8-bit (bitsandbytes, CUDA only): 4.9 GB instead of 9.5 GB, quantized while
    its shards load, so a 12.7 GB-RAM Colab never holds it in fp16. None where that does not apply
    (CPU, fp32, bitsandbytes missing): then T5 loads as usual and offload keeps it off the GPU."""
    if get_family(arch).prompt_encoding != "t5" or dtype != "fp16" or not (folder / "text_encoder_2").is_dir():
        return None
    try:
        import bitsandbytes  # noqa: F401 - only its presence is checked
        import torch

        if not torch.cuda.is_available():
            return None
        from transformers import BitsAndBytesConfig, T5EncoderModel
    except ImportError:
        return None
    return T5EncoderModel.from_pretrained(
        str(folder), subfolder="text_encoder_2", quantization_config=BitsAndBytesConfig(load_in_8bit=True), dtype=torch.float16, local_files_only=True
    )


def _gguf_transformer(path: Path, folder: Path, dtype: str) -> Any:
    """The FLUX transformer from a GGUF file, kept quantized (dequantized layer by layer at compute time)."""
    import diffusers

    from gambarkan.engine.device import torch_dtype

    if detect_file(gguf_tensor_names(path)).name != "flux":
        raise ModelLoadError(f"{path.name} is not a FLUX transformer", "use a FLUX.1 GGUF file, e.g. city96/FLUX.1-schnell-gguf")
    try:
        return diffusers.FluxTransformer2DModel.from_single_file(
            str(path),
            quantization_config=diffusers.GGUFQuantizationConfig(compute_dtype=torch_dtype(dtype)),
            config=str(folder),
            subfolder="transformer",
            torch_dtype=torch_dtype(dtype),
            local_files_only=True,
        )
    except Exception as exc:  # noqa: BLE001 - diffusers raises many types here
        raise _load_error(exc, path.name) from None


def _load_file(path: Path, dtype: str, offline: bool, config: str | None) -> tuple[Any, str]:
    if is_gguf(path):
        return _load_gguf(path, dtype, offline, config)
    # The format is decided by the bytes: a pickle named .safetensors is refused here too.
    _check_file_type(path)
    try:
        header = read_safetensors_header(path)
    except UnsafeFileError as exc:
        # `generate` has no --allow-pickle; a converted .safetensors file is the way.
        raise UnsafeFileError(exc.message, "use a .safetensors version of the model; most checkpoints are published as one") from None
    arch = detect_file_arch(header)
    cls = _pipeline_class(arch)
    kwargs = _common_kwargs(arch, dtype)
    kwargs["torch_dtype"] = kwargs.pop("dtype")  # from_single_file has no `dtype` alias yet
    if config:
        kwargs["config"] = config
    link_dir = None
    load_path = str(path)
    if not path.name.endswith(".safetensors"):
        # diffusers picks its reader by the extension (anything else goes to torch.load); the
        # bytes said safetensors, so load it under a name that says so too.
        import shutil
        import tempfile

        link_dir = tempfile.mkdtemp(prefix="gambarkan-load-")
        load_path = os.path.join(link_dir, "model.safetensors")
        try:
            os.symlink(path.resolve(), load_path)
        except OSError:
            shutil.rmtree(link_dir, ignore_errors=True)
            raise ModelLoadError(f"{path.name} is a safetensors file with another extension", "rename it to end in .safetensors") from None
    try:
        pipe = cls.from_single_file(load_path, local_files_only=offline, **kwargs)
    except GambarkanError:
        raise
    except Exception as exc:  # diffusers raises many types here
        raise _load_error(exc, path.name) from None
    finally:
        if link_dir is not None:
            import shutil

            shutil.rmtree(link_dir, ignore_errors=True)
    return pipe, arch


def _load_vae(vae: str, dtype: str) -> Any:
    """A replacement VAE (e.g. SDXL's fp16-fix) from a local diffusers folder."""
    from diffusers import AutoencoderKL

    from gambarkan.engine.device import torch_dtype
    from gambarkan.models.store import folder_variant

    _check_folder_safe(Path(vae))
    try:
        return AutoencoderKL.from_pretrained(vae, use_safetensors=True, local_files_only=True, variant=folder_variant(vae), dtype=torch_dtype(dtype))
    except Exception as exc:
        raise _load_error(exc, Path(vae).name) from None


def _load_folder(folder: Path, dtype: str, vae: str | None = None, transformer: str | None = None) -> tuple[Any, str]:
    from gambarkan.models.store import folder_variant

    arch = detect_folder_arch(folder)
    _check_folder_safe(folder)
    cls = _pipeline_class(arch)
    kwargs = _common_kwargs(arch, dtype)
    if vae:
        kwargs["vae"] = _load_vae(vae, dtype)
    if transformer:  # a GGUF-quantized transformer instead of the folder's own (flux-schnell)
        kwargs["transformer"] = _gguf_transformer(Path(transformer), folder, dtype)
    t5 = _t5_8bit(folder, arch, dtype)
    if t5 is not None:
        kwargs["text_encoder_2"] = t5
    try:
        # Packages fetch only the fp16 files; diffusers must be told their names.
        pipe = cls.from_pretrained(str(folder), use_safetensors=True, local_files_only=True, variant=folder_variant(folder), **kwargs)
    except GambarkanError:
        raise
    except Exception as exc:
        raise _load_error(exc, folder.name) from None
    return pipe, arch


def download_snapshot(repo_id: str, offline: bool, revision: str | None = None, allow_patterns: list[str] | None = None) -> Path:
    """Local folder of a Hub model (downloaded into the shared Hugging Face cache when needed)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    from gambarkan.models import urlpolicy

    urlpolicy.install()  # https / public hosts only, also through redirects (SSRF)
    patterns = allow_patterns or ["*.json", "*.txt", "*.model", "**/*.safetensors", "*.safetensors"]
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns, local_files_only=offline))
    except GatedRepoError:
        raise UnknownModelError(f"'{repo_id}' is gated on the Hugging Face Hub", "accept its licence on the Hub and run `hf auth login`") from None
    except RepositoryNotFoundError:
        raise UnknownModelError(f"unknown model '{repo_id}' (not found on the Hugging Face Hub)", "check the repo id, or see: gambarkan models list") from None
    except RevisionNotFoundError:
        raise UnknownModelError(f"revision '{revision}' of '{repo_id}' does not exist", "check the revision") from None
    except LocalEntryNotFoundError:
        if offline:
            raise NetworkError(f"'{repo_id}' is not downloaded and offline mode is on", "run once with a network connection, or use --model PATH") from None
        raise NetworkError(
            f"cannot reach the Hugging Face Hub to download '{repo_id}'", "check the connection; see `gambarkan doctor`, or use --model PATH to a local model"
        ) from None
    except OSError as exc:
        raise NetworkError(f"downloading '{repo_id}' failed: {exc}", "check the connection and free disk; see `gambarkan doctor`") from None


NETWORK_ERROR_NAMES = {"LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectError", "ConnectTimeout", "ConnectionError", "Timeout", "ReadTimeout"}
NETWORK_ERROR_WORDS = ("connection", "resolve", "offline", "cannot reach", "couldn't connect", "max retries", "name or service not known", "temporary failure in name resolution")


def _is_network_error(exc: BaseException) -> bool:
    """True when ``exc`` or anything it was raised from is a failed or forbidden Hub request."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ in NETWORK_ERROR_NAMES or isinstance(current, (ConnectionError, TimeoutError)):
            return True
        text = str(current).splitlines()[0].lower() if str(current) else ""
        if any(word in text for word in NETWORK_ERROR_WORDS):
            return True
        current = current.__cause__ or current.__context__
    return False


def _load_error(exc: Exception, name: str) -> GambarkanError:
    """One clear error for a failed diffusers load: the Hub was needed, or the files are bad.

    A single checkpoint file needs its model configs from the Hub the first time (diffusers
    asks even with ``local_files_only``), so a network failure must not read as "corrupt".
    """
    if _is_network_error(exc):
        return NetworkError(
            f"loading {name} needs its model configs from the Hugging Face Hub, which cannot be reached",
            "connect once so they are cached, or use a diffusers model folder; see `gambarkan doctor`",
        )
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ModelLoadError(f"cannot load {name}: {text[:300]}", "the file may be corrupt or incomplete; download it again")


def load_model(
    model: str,
    device: str | None,
    dtype: str,
    *,
    offline: bool = False,
    cache_dir: Path | None = None,
    config: str | None = None,
    vae: str | None = None,
    name: str | None = None,
    transformer: str | None = None,
) -> LoadedModel:
    """Load ``model`` (Hub id, folder or .safetensors file) as a pipeline.

    With ``device=None`` it stays on the CPU for the caller to place (memory modes).
    """
    import time

    started = time.perf_counter()
    kind = classify_source(model)
    if kind == "file":
        path = Path(model).expanduser()
        pipe, arch = _load_file(path, dtype, offline, config)
        name, weights = name or path.stem, path
    else:
        folder = Path(model).expanduser() if kind == "folder" else download_snapshot(model, offline)
        pipe, arch = _load_folder(folder, dtype, vae, transformer)
        name = name or (folder.name if kind == "folder" else model)
        weights = _folder_weights(folder, transformer)
    if kind == "file" and vae:
        pipe.vae = _load_vae(vae, dtype)
    model_hash = _sha256_prefix(weights, cache_dir) if weights else None
    if device is not None:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return LoadedModel(pipe, arch, name or path.stem, model, model_hash, time.perf_counter() - started)


class PipelineCache:
    """Keeps up to ``max_models`` loaded pipelines, evicting the least recently used."""

    def __init__(self, max_models: int = 1) -> None:
        self.max_models = max(1, max_models)
        self._items: OrderedDict[tuple[Any, ...], LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], loader: Callable[[], LoadedModel]) -> tuple[LoadedModel, bool]:
        """Return (model, was_cached); loads with ``loader`` on a miss after evicting old ones."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key], True
            while len(self._items) >= self.max_models:
                self._evict_oldest()
            loaded = loader()
            self._items[key] = loaded
            return loaded, False

    def _evict_oldest(self) -> None:
        _, old = self._items.popitem(last=False)
        del old
        import gc

        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    def clear(self) -> None:
        with self._lock:
            while self._items:
                self._evict_oldest()

    def __len__(self) -> int:
        return len(self._items)
