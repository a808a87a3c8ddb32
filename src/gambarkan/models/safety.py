"""Decide whether a weight file is safe to load, by its bytes and never by unpickling it.

Safetensors files are plain tensors plus a JSON header: we validate the header. Pickle-based
files (``.ckpt``, ``.bin``, ``.pt``: torch zip archives or raw pickles) can run arbitrary code
when loaded, so they are refused unless the user passes ``--allow-pickle``; even then they are
scanned with ``picklescan`` (which reads pickle opcodes without executing them) and refused when
they import anything outside a small allow-list of tensor-rebuilding globals.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from gambarkan.errors import DependencyMissingError, ModelLoadError, UnsafeFileError

MAX_HEADER_BYTES = 100 * 1024 * 1024
PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth", ".pkl", ".pickle")
WEIGHT_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES)
_PICKLE_PROTOCOL_MARKS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def sniff_format(path: Path) -> str:
    """``safetensors``, ``torch-zip``, ``pickle`` or ``unknown``, from the first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head[:4] == b"PK\x03\x04":
        return "torch-zip"
    if head[:2] in _PICKLE_PROTOCOL_MARKS:
        return "pickle"
    if len(head) >= 9:
        (length,) = struct.unpack("<Q", head[:8])
        if 2 <= length <= MAX_HEADER_BYTES and head[8:9] == b"{":
            return "safetensors"
    return "unknown"


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """Parse a safetensors header and check every tensor lies inside the file."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise ModelLoadError(f"{path.name} is truncated ({size} bytes)", "download the file again")
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER_BYTES or length + 8 > size:
            raise ModelLoadError(f"{path.name} is not a valid .safetensors file (bad header length)", "download the file again")
        raw = handle.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelLoadError(f"{path.name} is not a valid .safetensors file (unreadable header)", "download the file again") from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{path.name} is not a valid .safetensors file (header is not a table)", "download the file again")
    data_size = size - 8 - length
    end = 0
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets) and 0 <= offsets[0] <= offsets[1] <= data_size):
            raise ModelLoadError(f"{path.name} is truncated or corrupt (tensor {name} lies outside the file)", "download the file again")
        _check_tensor_size(path, name, info, offsets[1] - offsets[0])
        spans.append((offsets[0], offsets[1], name))
        end = max(end, offsets[1])
    # Like the safetensors library: tensors tile the data exactly, no overlaps and no holes.
    position = 0
    for start, stop, name in sorted(spans):
        if start != position:
            raise ModelLoadError(f"{path.name} is corrupt (tensor {name} overlaps another or leaves a hole)", "download the file again")
        position = stop
    if end != data_size:
        raise ModelLoadError(f"{path.name} is corrupt ({data_size - end} unexpected bytes after the tensors)", "download the file again")
    return header


# The dtypes of the safetensors format (0.6+) and their sizes in bits.
_DTYPE_BITS = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
               "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32,
               "F32": 32, "C64": 64, "I64": 64, "U64": 64, "F64": 64}  # fmt: skip


def _check_tensor_size(path: Path, name: str, info: dict[str, Any], nbytes: int) -> None:
    """A known dtype, a valid shape, and dtype x shape equal to the tensor's byte range."""
    shape = info.get("shape")
    if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
        raise ModelLoadError(f"{path.name} is corrupt (tensor {name} has an invalid shape)", "download the file again")
    bits = _DTYPE_BITS.get(str(info.get("dtype")))
    if bits is None:
        raise ModelLoadError(f"{path.name} has tensor {name} of unknown type {str(info.get('dtype'))[:20]!r}", "is it a safetensors file for Stable Diffusion?")
    count = 1
    for dim in shape:
        count *= dim
    if count * bits % 8 or count * bits // 8 != nbytes:
        raise ModelLoadError(f"{path.name} is corrupt (tensor {name}: its shape needs {count * bits // 8} bytes, it has {nbytes})", "download the file again")


def _pickle_refusal(path: Path, fmt: str) -> UnsafeFileError:
    kind = "a pickle" if fmt == "pickle" else "a PyTorch pickle archive"
    return UnsafeFileError(
        f"{path.name} is {kind}, which can run code when loaded; refusing to load it",
        PICKLE_HINT,
        code="pickle_refused", params={"file": path.name, "format": fmt},
    )


#: True wherever a pickle is refused: ``generate``, LoRAs and embeddings have no way to load one.
#: Only ``gambarkan models add --allow-pickle`` can (it scans the file); that command adds it to this hint.
PICKLE_HINT = "use a .safetensors version of the file (most models and LoRAs are published as one)"


def scan_pickle(path: Path) -> None:
    """Scan a pickle-based file with picklescan; UnsafeFileError if it imports anything unsafe."""
    try:
        from picklescan.scanner import scan_file_path
    except ImportError:
        raise DependencyMissingError(
            "--allow-pickle needs the picklescan scanner", "install it: pip install 'gambarkan[scan]'"
        ) from None
    result = scan_file_path(str(path))
    bad = sorted({f"{g.module}.{g.name}" for g in result.globals if str(g.safety.value) != "innocuous"})
    if result.scan_err:
        raise UnsafeFileError(f"{path.name} could not be scanned for unsafe code", "use a .safetensors version of the model")
    if result.issues_count or any(str(g.safety.value) == "dangerous" for g in result.globals):
        shown = ", ".join(bad[:4]) or "unknown"
        raise UnsafeFileError(f"{path.name} contains unsafe code ({shown}); refusing to load it", "do not use this file")
    if bad:  # "suspicious": not known to be dangerous, but not plain tensor data either
        raise UnsafeFileError(f"{path.name} imports {', '.join(bad[:4])}, which a weight file should not need", "use a .safetensors version of the model")


def check_file(path: Path | str, *, allow_pickle: bool = False) -> dict[str, Any]:
    """Raise unless ``path`` is safe to load; returns the safetensors header (``{}`` for a scanned pickle).

    The format is decided by the bytes, so a pickle renamed to ``.safetensors`` is still refused.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        if not path.exists():
            raise ModelLoadError(f"model file not found: {path}", "check the path")
        from gambarkan.paths import require_regular_file

        require_regular_file(path, "model file")  # a FIFO or device: say what it is, never open it
    fmt = sniff_format(path)
    if fmt == "safetensors":
        return read_safetensors_header(path)
    if fmt in ("pickle", "torch-zip") or path.suffix.lower() in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise _pickle_refusal(path, fmt if fmt != "unknown" else "pickle")
        scan_pickle(path)
        return {}
    raise ModelLoadError(f"{path.name} is not a valid .safetensors file (unknown format or corrupt)", "download the file again")


def check_folder(folder: Path | str, *, allow_pickle: bool = False) -> list[Path]:
    """Check every weight file of a diffusers folder; returns the files that would be loaded.

    A pickle weight that sits beside a safetensors one is ignored (diffusers loads the
    safetensors file); a component whose only weights are pickles is refused or scanned.
    """
    folder = Path(folder).expanduser()
    checked: list[Path] = []
    for directory in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]:
        files = sorted(p for p in directory.iterdir() if p.is_file() and p.name.lower().endswith(WEIGHT_SUFFIXES))
        safes = [p for p in files if p.suffix.lower() == ".safetensors"]
        for path in safes:
            check_file(path, allow_pickle=allow_pickle)
            checked.append(path)
        if not safes:
            for path in files:
                check_file(path, allow_pickle=allow_pickle)
                checked.append(path)
    return checked
