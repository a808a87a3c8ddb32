"""Download, verify, find and remove package weights in the shared Hugging Face cache.

Files go into the normal Hugging Face cache (``HF_HUB_CACHE``), so other tools share them.
``huggingface_hub`` downloads each file to a temporary name and renames it when complete;
on top of that we check free disk first, verify every file against the Hub's listing (size,
then sha256 for LFS files or the git blob id for small files), and only then write a small
"installed" record under ``<cache_dir>/models``. A package counts as installed only when that
record exists and its files are still there, so an interrupted or corrupt download never looks
complete. A second pull finds the record and does nothing. ``HF_ENDPOINT`` is honoured, which
is how the tests serve a tiny model from a local server.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gambarkan.errors import DiskFullError, GambarkanError, ModelLoadError, NetworkError, UnknownModelError
from gambarkan.models.catalog import ModelSpec
from gambarkan.models.safety import PICKLE_SUFFIXES, check_file

IGNORE_PICKLES = [f"*{s}" for s in PICKLE_SUFFIXES] + [f"**/*{s}" for s in PICKLE_SUFFIXES]
DISK_MARGIN_BYTES = 256 * 2**20
_NETWORK_HINT = "check the connection with `gambarkan doctor`, or use a local model with --model PATH"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a pinned repo snapshot as the Hub lists it."""

    path: str
    size: int
    blob_id: str
    sha256: str | None  # set for LFS files


@dataclass(frozen=True)
class RepoPlan:
    """What a pull of one repo will fetch."""

    repo: str
    revision: str
    commit: str
    patterns: tuple[str, ...]
    files: tuple[RemoteFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at call time."""
    env = os.environ
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hub_endpoint() -> str | None:
    """``HF_ENDPOINT`` at call time (None = huggingface_hub's default)."""
    return os.environ.get("HF_ENDPOINT") or None


def probe_endpoint(endpoint: str | None, name: str = "", timeout: float = 5.0) -> None:
    """Fail fast with NetworkError when the Hub's host cannot be reached at all.

    huggingface_hub retries a refused connection for ~20 s; one TCP connect tells sooner.
    Skipped behind a proxy, where a direct connection says nothing.
    """
    import socket
    from urllib.parse import urlsplit

    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")):
        return
    from huggingface_hub import constants

    parts = urlsplit(endpoint or constants.ENDPOINT)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "", port), timeout=timeout).close()
    except OSError:
        what = f" to download '{name}'" if name else ""
        raise NetworkError(
            f"cannot reach the Hugging Face Hub ({parts.hostname}){what}", _NETWORK_HINT,
            code="hub_unreachable", params={"host": parts.hostname, "name": name},
        ) from None


def _record_path(spec: ModelSpec, settings: Any) -> Path:
    return Path(settings.cache_dir) / "models" / f"{spec.name}.json"


def _gguf_part(spec: ModelSpec) -> tuple[str, str, str] | None:
    """(repo, revision, file) of a package's Hub GGUF transformer ("owner/repo@commit:file.gguf")."""
    text = spec.transformer_gguf
    if not text or Path(text).expanduser().is_absolute() or text.startswith((".", "~")):
        return None
    repo_rev, _, file = text.partition(":")
    repo, _, revision = repo_rev.partition("@")
    return repo, revision or "main", file


def _repo_parts(spec: ModelSpec) -> list[tuple[str, str, tuple[str, ...]]]:
    parts = [(spec.source, spec.revision or "main", spec.files or ("*",))]
    if spec.vae_source:
        parts.append((spec.vae_source, spec.vae_revision or "main", spec.vae_files or ("*",)))
    gguf = _gguf_part(spec)
    if gguf:
        parts.append((gguf[0], gguf[1], (gguf[2],)))
    return parts


def transformer_file(spec: ModelSpec, settings: Any) -> Path | None:
    """The package's GGUF transformer on disk (local path, or the installed Hub file), else None."""
    if not spec.transformer_gguf:
        return None
    gguf = _gguf_part(spec)
    if gguf is None:
        return Path(spec.transformer_gguf).expanduser()
    record = installed_record(spec, settings)
    return Path(record["folders"][-1]) / gguf[2] if record else None


def _record_matches(record: dict[str, Any], spec: ModelSpec) -> bool:
    wanted = [[repo, rev, list(patterns)] for repo, rev, patterns in _repo_parts(spec)]
    return record.get("parts") == wanted


def installed_record(spec: ModelSpec, settings: Any) -> dict[str, Any] | None:
    """The installed record of a Hub package when it is complete on disk, else None."""
    if spec.source_type != "hub":
        return None
    path = _record_path(spec, settings)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not _record_matches(record, spec):
        return None
    for folder in record.get("folders", []):
        for rel, size in record.get("files", {}).get(folder, {}).items():
            try:
                if (Path(folder) / rel).stat().st_size != size:
                    return None
            except OSError:
                return None
    return record


def is_installed(spec: ModelSpec, settings: Any) -> bool:
    """Whether ``spec`` can be used without downloading (local sources always can)."""
    if spec.source_type != "hub":
        return Path(spec.source).expanduser().exists()
    return installed_record(spec, settings) is not None


def local_paths(spec: ModelSpec, settings: Any) -> tuple[Path, Path | None] | None:
    """(model folder or file, replacement VAE folder or None) when usable offline, else None."""
    if spec.source_type != "hub":
        path = Path(spec.source).expanduser()
        return (path, None) if path.exists() else None
    record = installed_record(spec, settings)
    if record is None:
        return None
    folders = [Path(f) for f in record["folders"]]
    return folders[0], (folders[1] if spec.vae_source and len(folders) > 1 else None)


def disk_usage_bytes(spec: ModelSpec, settings: Any) -> int:
    """Bytes the installed files of ``spec`` take (0 when not installed)."""
    record = installed_record(spec, settings)
    if record is None:
        return 0
    return sum(sum(files.values()) for files in record.get("files", {}).values())


def folder_variant(folder: Path | str) -> str | None:
    """``"fp16"`` when a diffusers folder holds only fp16-variant weights (pass it as
    ``from_pretrained(..., variant=...)``, which otherwise looks for the plain file names)."""
    folder = Path(folder)
    for sub in ("unet", "transformer"):
        weights = list((folder / sub).glob("diffusion_pytorch_model*.safetensors"))
        if weights:
            plain = any(p.name == "diffusion_pytorch_model.safetensors" for p in weights)
            return "fp16" if not plain and any(".fp16." in p.name for p in weights) else None
    return None


# --- planning ----------------------------------------------------------------------------


def _hub_errors() -> dict[str, type[BaseException]]:
    from huggingface_hub import errors

    return {
        "gated": errors.GatedRepoError,
        "repo": errors.RepositoryNotFoundError,
        "revision": errors.RevisionNotFoundError,
        "entry": errors.EntryNotFoundError,
        "local": errors.LocalEntryNotFoundError,
        "http": errors.HfHubHTTPError,
        "offline": errors.OfflineModeIsEnabled,
    }


def _translate_error(exc: BaseException, what: str, name: str) -> GambarkanError:
    """Map huggingface_hub / httpx / OS errors to one-line GambarkanErrors."""
    errs = _hub_errors()
    if isinstance(exc, errs["offline"]):
        return NetworkError(f"'{name}' is not downloaded and Hugging Face offline mode is on (HF_HUB_OFFLINE)", _NETWORK_HINT)
    if isinstance(exc, errs["gated"]):
        return UnknownModelError(f"'{what}' is gated on the Hugging Face Hub", "accept its licence on the Hub, then run `hf auth login`")
    if isinstance(exc, errs["revision"]):
        return UnknownModelError(f"the pinned revision of '{what}' no longer exists on the Hub", "update the package's revision")
    if isinstance(exc, errs["repo"]):
        return UnknownModelError(f"'{what}' was not found on the Hugging Face Hub", "check the repo id, or see: gambarkan models list")
    if isinstance(exc, OSError) and getattr(exc, "errno", None) == 28:
        return DiskFullError(f"the disk filled up while downloading '{name}'", "free some space and run the pull again")
    if isinstance(exc, OSError) and "consistency check failed" in str(exc).lower():
        return ModelLoadError(f"a file of '{name}' arrived with the wrong size", f"run `gambarkan models pull {name}` again")
    if isinstance(exc, errs["http"]) and getattr(getattr(exc, "response", None), "status_code", 500) < 500:
        return NetworkError(f"the Hugging Face Hub refused the download of '{what}' ({exc.response.status_code})", _NETWORK_HINT)
    return NetworkError(f"cannot reach the Hugging Face Hub to download '{name}'", _NETWORK_HINT)


def plan_repo(repo: str, revision: str, patterns: tuple[str, ...], *, endpoint: str | None = None) -> RepoPlan:
    """List the files of ``repo`` at ``revision`` that ``patterns`` select (pickles never)."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile
    from huggingface_hub.utils import filter_repo_objects

    api = HfApi(endpoint=endpoint)
    commit = revision
    if not (len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)):
        commit = api.repo_info(repo, revision=revision).sha
    entries = [e for e in api.list_repo_tree(repo, revision=commit, recursive=True) if isinstance(e, RepoFile)]
    chosen = filter_repo_objects(entries, allow_patterns=list(patterns), ignore_patterns=IGNORE_PICKLES, key=lambda e: e.path)
    files = tuple(
        RemoteFile(e.path, int(e.size), e.blob_id, e.lfs.sha256 if e.lfs is not None else None)
        for e in sorted(chosen, key=lambda e: e.path)
    )
    if not any(f.path.endswith(".safetensors") for f in files):
        raise UnknownModelError(f"'{repo}' has no .safetensors weights matching the package's files", "only safetensors models can be pulled")
    return RepoPlan(repo, revision, commit, tuple(patterns), files)


def _missing_bytes(plan: RepoPlan, cache_dir: Path) -> int:
    """Bytes still to download (files already in the cache's blob store are skipped)."""
    from huggingface_hub.file_download import repo_folder_name

    blobs = cache_dir / repo_folder_name(repo_id=plan.repo, repo_type="model") / "blobs"
    return sum(f.size for f in plan.files if not (blobs / (f.sha256 or f.blob_id)).exists())


def check_free_disk(needed: int, directory: Path, name: str) -> None:
    """DiskFullError when ``directory``'s disk has less than ``needed`` bytes (+ margin) free."""
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed and free < needed + DISK_MARGIN_BYTES:
        raise DiskFullError(
            code="disk_full_download",
            params={"name": name, "needed_mb": round(needed / 2**20), "free_mb": round(free / 2**20), "path": str(probe)},
        )


# --- verification ------------------------------------------------------------------------


def _git_blob_sha1(path: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _discard(pointer: Path) -> None:
    """Delete a bad file: its snapshot link and the blob it points to."""
    target = pointer.resolve()
    for path in {pointer, target}:
        try:
            path.unlink()
        except OSError:
            pass


def verify_snapshot(plan: RepoPlan, folder: Path, name: str) -> dict[str, int]:
    """Check every planned file in ``folder`` against the Hub's size and hash; delete bad ones.

    Returns ``{relative path: size}``. A mismatch raises ModelLoadError after removing the file,
    so the next pull downloads it again.
    """
    sizes: dict[str, int] = {}
    for remote in plan.files:
        path = folder / remote.path
        if not path.is_file():
            raise ModelLoadError(f"{remote.path} of '{name}' is missing after the download", f"run `gambarkan models pull {name}` again")
        size = path.stat().st_size
        if size != remote.size:
            _discard(path)
            raise ModelLoadError(
                f"{remote.path} of '{name}' has {size} bytes, the Hub lists {remote.size}; it was deleted",
                f"run `gambarkan models pull {name}` again",
            )
        ok = _sha256(path) == remote.sha256 if remote.sha256 else _git_blob_sha1(path) == remote.blob_id
        if not ok:
            _discard(path)
            raise ModelLoadError(
                f"{remote.path} of '{name}' is corrupt (its hash does not match the Hub's); it was deleted",
                f"run `gambarkan models pull {name}` again",
            )
        if remote.path.endswith(".safetensors"):
            check_file(path)
        sizes[remote.path] = size
    return sizes


def discard_unverified(plan: RepoPlan, cache_dir: Path) -> list[Path]:
    """After a refused or failed download: delete partial blobs and any planned file that does
    not match the Hub's size and hash. Returns what was deleted."""
    from huggingface_hub.file_download import repo_folder_name

    repo_dir = cache_dir / repo_folder_name(repo_id=plan.repo, repo_type="model")
    removed = [p for p in (repo_dir / "blobs").glob("*.incomplete") if p.is_file()]
    for path in removed:
        path.unlink(missing_ok=True)
    snapshot = repo_dir / "snapshots" / plan.commit
    for remote in plan.files:
        path = snapshot / remote.path
        if not path.exists() and not path.is_symlink():
            continue
        good = path.is_file() and path.stat().st_size == remote.size and (
            _sha256(path) == remote.sha256 if remote.sha256 else _git_blob_sha1(path) == remote.blob_id
        )
        if not good:
            _discard(path)
            removed.append(path)
    return removed


# --- pull / ensure / remove --------------------------------------------------------------


def _tqdm_class(show_progress: bool) -> Any:
    from huggingface_hub.utils import tqdm as hf_tqdm

    if show_progress:
        return hf_tqdm

    class _Silent(hf_tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return _Silent


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def pull(spec: ModelSpec, settings: Any, *, show_progress: bool = True, offline: bool | None = None) -> Path:
    """Make ``spec`` available locally and return its model folder (a no-op when installed).

    Order: offline check -> list files -> free-disk check -> download (resumable) ->
    verify sizes and hashes -> write the installed record.
    """
    if spec.source_type != "hub":
        path = Path(spec.source).expanduser()
        if not path.exists():
            raise UnknownModelError(f"the source of package '{spec.name}' is gone: {spec.source}", f"re-add it with `gambarkan models add {spec.name} SOURCE`")
        return path
    done = local_paths(spec, settings)
    if done is not None:
        return done[0]
    offline = settings.offline if offline is None else offline
    if offline:
        raise NetworkError(code="package_not_downloaded", params={"name": spec.name})
    from huggingface_hub import snapshot_download

    from gambarkan.models import urlpolicy

    urlpolicy.install()  # https / public hosts only, also through redirects; size capped (SSRF, disk filling)
    endpoint = hub_endpoint()
    cache_dir = hub_cache_dir()
    probe_endpoint(endpoint, spec.name)
    plans: list[RepoPlan] = []
    for repo, revision, patterns in _repo_parts(spec):
        try:
            plans.append(plan_repo(repo, revision, patterns, endpoint=endpoint))
        except GambarkanError:
            raise
        except Exception as exc:  # noqa: BLE001 - huggingface_hub and httpx raise many types
            raise _translate_error(exc, repo, spec.name) from None
    check_free_disk(sum(_missing_bytes(p, cache_dir) for p in plans), cache_dir, spec.name)

    folders: list[str] = []
    files: dict[str, dict[str, int]] = {}
    largest = max((f.size for p in plans for f in p.files), default=0)
    for plan in plans:
        try:
            with urlpolicy.size_cap(largest):
                folder = Path(
                    snapshot_download(
                        plan.repo,
                        revision=plan.commit,
                        allow_patterns=list(plan.patterns),
                        ignore_patterns=IGNORE_PICKLES,
                        cache_dir=str(cache_dir),
                        endpoint=endpoint,
                        tqdm_class=_tqdm_class(show_progress),
                        max_workers=4,
                    )
                )
        except urlpolicy.DownloadRefusedError:
            discard_unverified(plan, cache_dir)  # a refused download leaves no file behind
            raise
        except GambarkanError:
            raise
        except Exception as exc:  # noqa: BLE001
            error = _translate_error(exc, plan.repo, spec.name)
            if isinstance(error, ModelLoadError):  # wrong size: not resumable, remove it
                discard_unverified(plan, cache_dir)
            raise error from None
        files[str(folder)] = verify_snapshot(plan, folder, spec.name)
        folders.append(str(folder))

    record = {
        "name": spec.name,
        "parts": [[repo, rev, list(patterns)] for repo, rev, patterns in _repo_parts(spec)],
        "commits": [p.commit for p in plans],
        "repos": [p.repo for p in plans],
        "folders": folders,
        "files": files,
    }
    _write_json_atomic(_record_path(spec, settings), record)
    return Path(folders[0])


def ensure_local(spec: ModelSpec, settings: Any, *, offline: bool = False, show_progress: bool = True) -> tuple[Path, Path | None]:
    """(model path, VAE folder or None) for generation, pulling first unless offline."""
    found = local_paths(spec, settings)
    if found is not None:
        return found
    pull(spec, settings, show_progress=show_progress, offline=offline or settings.offline)
    found = local_paths(spec, settings)
    assert found is not None
    return found


def remove(spec: ModelSpec, settings: Any, *, keep_repos: set[str] | None = None) -> int:
    """Delete the cached snapshots of ``spec`` from the HF cache; returns bytes freed.

    Repos listed in ``keep_repos`` (used by other installed packages) are left alone.
    """
    record_path = _record_path(spec, settings)
    record: dict[str, Any] = {}
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        pass
    freed = 0
    if spec.source_type == "hub":
        from huggingface_hub import scan_cache_dir

        cache_dir = hub_cache_dir()
        commits = set(record.get("commits", []))
        repos = {repo for repo, _rev, _pat in _repo_parts(spec)} - (keep_repos or set())
        if cache_dir.exists():
            info = scan_cache_dir(cache_dir)
            hashes = [
                rev.commit_hash
                for repo in info.repos
                if repo.repo_id in repos and repo.repo_type == "model"
                for rev in repo.revisions
                if not commits or rev.commit_hash in commits
            ]
            if hashes:
                strategy = info.delete_revisions(*hashes)
                freed = strategy.expected_freed_size
                strategy.execute()
    try:
        record_path.unlink()
    except FileNotFoundError:
        pass
    return freed
