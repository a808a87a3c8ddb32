"""Find, load and unload LoRAs (and, via models.embeddings, textual inversions) by name.

``<lora:NAME:WEIGHT>`` names a ``NAME.safetensors`` file in the LoRA folders
(``--lora-dir``, ``GAMBARKAN_LORA_DIRS``, then ``<home>/loras``; subfolders included).
LoRAs load as peft adapters through diffusers (kohya and diffusers formats); adapters not
named by the next request are removed, so its images equal those of a fresh pipeline.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gambarkan.errors import ModelLoadError, UnknownModelError, UnsafeFileError, did_you_mean

SAFE_SUFFIX = ".safetensors"
UNSAFE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl")
_STATE = "_gambarkan_loras"  # pipe attribute: adapter name -> file signature


@dataclass(frozen=True)
class NetworkFile:
    """A LoRA or embedding file found on disk; ``name`` is the file name without suffix."""

    name: str
    path: Path
    kind: str = "lora"

    @property
    def signature(self) -> tuple[str, int, int]:
        st = self.path.stat()
        return (str(self.path), st.st_mtime_ns, st.st_size)

    @property
    def short_hash(self) -> str:
        """A1111's short hash: 12 hex digits (LoRA: kohya "addnet" hash; embedding: sha256)."""
        return file_hash(self.path, addnet=self.kind == "lora")[:12]


# --- finding files -----------------------------------------------------------------------


def search_dirs(settings: Any, kind: str = "lora", extra: Iterable[Path | str] = ()) -> list[Path]:
    """Folders searched for ``kind`` ("lora" or "embedding"), extra (``--lora-dir``) first."""
    configured = settings.lora_dirs if kind == "lora" else settings.embedding_dirs
    seen, out = set(), []
    for d in [*map(Path, extra), *configured]:
        d = d.expanduser()
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def _walk(dirs: Iterable[Path]) -> Iterator[Path]:
    for d in dirs:
        if d.is_dir():
            yield from sorted(p for p in d.rglob("*") if p.is_file())


def list_files(dirs: Iterable[Path], kind: str = "lora") -> list[NetworkFile]:
    """Every ``.safetensors`` file in ``dirs`` (first folder wins on equal names), by name."""
    found: dict[str, NetworkFile] = {}
    for path in _walk(dirs):
        if path.suffix.lower() == SAFE_SUFFIX and path.stem not in found:
            found[path.stem] = NetworkFile(path.stem, path, kind)
    return sorted(found.values(), key=lambda f: f.name.lower())


def find(name: str, dirs: Iterable[Path], kind: str = "lora") -> NetworkFile:
    """The file for ``name``: exact name, then case-insensitive; a file name with its suffix
    (``sub/name.safetensors``) inside one of ``dirs`` also works, a path outside them never does.

    Raises UnsafeFileError when only a pickle file (.pt/.ckpt/.bin) has that name and
    UnknownModelError (with the closest names) when nothing does.
    """
    from gambarkan.paths import safe_join

    dirs = list(dirs)
    label = "LoRA" if kind == "lora" else "embedding"
    if Path(name).suffix.lower() in (SAFE_SUFFIX, *UNSAFE_SUFFIXES):
        # A file name (or sub/path) inside a LoRA folder; names never reach outside them.
        for d in dirs:
            direct = safe_join(d, name, f"{label} name")
            if direct.is_file():
                _refuse_unsafe(direct, label)
                return NetworkFile(direct.stem, direct, kind)
    files = list_files(dirs, kind)
    for match in (lambda f: f.name == name, lambda f: f.name.lower() == name.lower()):
        hits = [f for f in files if match(f)]
        if hits:
            return hits[0]
    for path in _walk(dirs):
        if path.stem.lower() == name.lower() and path.suffix.lower() in UNSAFE_SUFFIXES:
            _refuse_unsafe(path, label)
    where = ", ".join(str(d) for d in dirs) or "no folders configured"
    hint = did_you_mean(name, [f.name for f in files])
    command = "gambarkan loras" if kind == "lora" else "gambarkan loras --embeddings"
    raise UnknownModelError(
        f"unknown {label} '{name}' (looked in {where})",
        f"{hint + ' ' if hint else ''}see: {command}",
    )


def _refuse_unsafe(path: Path, label: str) -> None:
    if path.suffix.lower() != SAFE_SUFFIX:
        raise UnsafeFileError(
            f"{label} file {path.name} is a pickle file ({path.suffix}), which can run code when loaded",
            "use the .safetensors version of it",
        )


# --- hashes (A1111 metadata) -----------------------------------------------------------------

_HASHES: dict[tuple[str, int, int, bool], str] = {}


def file_hash(path: Path, addnet: bool = False) -> str:
    """sha256 of a file; ``addnet`` hashes only the tensor data after the safetensors header
    (kohya's hash, which A1111 records for LoRAs). Cached per path, mtime and size."""
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size, addnet)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            if addnet:
                header = int.from_bytes(fh.read(8), "little")
                fh.seek(8 + header)
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def _metadata_name(name: str) -> str:
    return name.replace(":", "").replace(",", "")


# --- loading into a pipeline -----------------------------------------------------------------


def adapter_name(file: NetworkFile) -> str:
    """A peft-safe adapter name for a file (no dots), unique per path."""
    safe = re.sub(r"\W", "_", file.name)
    return f"{safe}_{hashlib.sha1(str(file.path).encode()).hexdigest()[:8]}"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence transformers/diffusers load reports and progress bars while loading."""
    try:
        from diffusers.utils import logging as dlog
        from transformers.utils import logging as tlog
    except ImportError:  # pragma: no cover
        yield
        return
    import warnings

    levels = (dlog.get_verbosity(), tlog.get_verbosity())
    dlog.set_verbosity_error()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*peft_config.*")
            yield
    finally:
        dlog.set_verbosity(levels[0])
        tlog.set_verbosity(levels[1])
        tlog.enable_progress_bar()


def loaded_loras(pipe: Any) -> dict[str, tuple[str, int, int]]:
    """Adapters this module loaded into ``pipe``: adapter name -> file signature."""
    return pipe.__dict__.setdefault(_STATE, {})


def _present_adapters(pipe: Any) -> set[str]:
    try:
        return {a for names in pipe.get_list_adapters().values() for a in names}
    except Exception:  # no peft layers at all
        return set()


def sync_loras(pipe: Any, wanted: list[tuple[NetworkFile, float]]) -> None:
    """Make exactly ``wanted`` active on ``pipe`` with their weights.

    Adapters not wanted (or whose file changed) are removed; with none left the LoRA layers
    are unloaded entirely, which restores the pipeline bit for bit.
    """
    state = loaded_loras(pipe)
    weights: dict[str, float] = {}
    files: dict[str, NetworkFile] = {}
    for file, weight in wanted:  # the same LoRA twice adds up, like A1111
        name = adapter_name(file)
        weights[name] = weights.get(name, 0.0) + weight
        files[name] = file
    stale = [a for a, sig in state.items() if a not in files or sig != files[a].signature]
    if stale:
        with _quiet():
            if len(stale) == len(state):
                pipe.unload_lora_weights()
                state.clear()
            else:
                pipe.delete_adapters(stale)
                for a in stale:
                    del state[a]
    for name, file in files.items():
        if name not in state:
            try:
                _load(pipe, name, file)
            except ModelLoadError:
                if not state:  # nothing else of ours loaded: remove every trace of peft layers
                    with contextlib.suppress(Exception), _quiet():
                        pipe.unload_lora_weights()
                raise
            state[name] = file.signature
    if files:
        pipe.set_adapters(list(weights), adapter_weights=list(weights.values()))


def _load(pipe: Any, name: str, file: NetworkFile) -> None:
    from gambarkan.models.safety import check_file

    hint = "is it made for this model's architecture (SD 1.x / SDXL)?"
    check_file(file.path)  # format by bytes: a pickle named .safetensors is refused here
    try:
        with _quiet():
            # use_safetensors=True: diffusers would otherwise fall back to torch.load on failure
            pipe.load_lora_weights(str(file.path), adapter_name=name, use_safetensors=True)
    except Exception as exc:
        _forget(pipe, name)
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ModelLoadError(f"LoRA '{file.name}' could not be loaded: {reason}", hint) from None
    if name not in _present_adapters(pipe):
        raise ModelLoadError(f"LoRA '{file.name}' matches no layer of this model", hint)


def _forget(pipe: Any, name: str) -> None:
    if name in _present_adapters(pipe):
        with contextlib.suppress(Exception), _quiet():
            pipe.delete_adapters([name])


# --- one call for the engine -------------------------------------------------------------


@dataclass
class Networks:
    """LoRAs and embeddings active for one generation."""

    loras: list[tuple[NetworkFile, float]] = field(default_factory=list)
    embeddings: list[NetworkFile] = field(default_factory=list)

    def metadata(self) -> dict[str, str]:
        """A1111's ``Lora hashes`` / ``TI hashes`` PNG fields (only those that apply)."""
        out: dict[str, str] = {}
        if self.loras:
            names = dict.fromkeys((f.name, f.short_hash) for f, _ in self.loras)
            out["Lora hashes"] = ", ".join(f"{_metadata_name(n)}: {h}" for n, h in names)
        if self.embeddings:
            out["TI hashes"] = ", ".join(f"{_metadata_name(f.name)}: {f.short_hash}" for f in self.embeddings)
        return out


def resolve_loras(prompt: str, dirs: Iterable[Path]) -> list[tuple[NetworkFile, float]]:
    """The LoRA files named by ``<lora:...>`` tags in ``prompt`` (raises on unknown names)."""
    from gambarkan.prompt.syntax import extract_tags

    dirs = list(dirs)  # problems with tags are warned about once, by prompt.encode
    return [(find(name, dirs, "lora"), weight) for name, weight in extract_tags(prompt, warn=False)[1]]


def without_missing_loras(prompt: str, dirs: Iterable[Path]) -> tuple[str, list[str]]:
    """``prompt`` without the ``<lora:...>`` tags whose file is not installed, and one note per tag.

    For re-running another machine's image (``--from``), as A1111 does: generate without it, say so.
    """
    import re

    dirs = list(dirs)
    where = ", ".join(str(d) for d in dirs) or "no folders configured"
    notes: list[str] = []

    def drop(match: re.Match[str]) -> str:
        kind, name = match.group(1).lower(), match.group(2).split(":")[0].strip()
        if kind not in ("lora", "lyco"):
            return match.group(0)
        try:
            find(name, dirs, "lora")
        except UnknownModelError:
            notes.append(f"LoRA '{name}' is not installed (looked in {where}); generating without it")
            return ""
        return match.group(0)

    return re.sub(r"<(\w+):([^>]+)>", drop, prompt), notes


def apply_networks(
    pipe: Any,
    prompt: str,
    negative: str,
    settings: Any,
    lora_dirs: Iterable[Path | str] = (),
) -> Networks:
    """Load the LoRAs tagged in ``prompt`` and the embeddings named in either prompt.

    Call before encoding the prompts; every name is checked before the pipeline is touched.
    Like A1111, ``<lora:...>`` tags count only in the positive prompt.
    """
    from gambarkan.models import embeddings

    loras = resolve_loras(prompt, search_dirs(settings, "lora", lora_dirs))
    emb_dirs = search_dirs(settings, "embedding")
    used = embeddings.named_in(f"{prompt}\n{negative}", emb_dirs)
    sync_loras(pipe, loras)
    embeddings.load(pipe, used)
    return Networks(loras, used)
