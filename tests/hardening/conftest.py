"""Hostile fixtures shared by the hardening suite: pickles whose unpickling writes a marker file."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

#: Every extension a weight file can wear; the format must be decided by the bytes.
EXTENSIONS = (".ckpt", ".bin", ".safetensors", ".SAFETENSORS")


class Evil:
    """Unpickling this runs code: it writes ``marker``. Loading it must never happen."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def evil_raw_pickle(marker: Path) -> bytes:
    """A plain pickle (protocol 2) of ``Evil``."""
    return pickle.dumps(Evil(marker), protocol=2)


def evil_torch_zip(path: Path, marker: Path) -> Path:
    """A ``torch.save`` zip archive (today's .ckpt/.bin) that carries ``Evil`` beside real tensors."""
    import torch

    torch.save({"state_dict": {"w": torch.zeros(2)}, "payload": Evil(marker)}, path)
    return path


@pytest.fixture()
def marker(tmp_path: Path) -> Path:
    """Where the evil payload would write; tests assert it never appears."""
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a malicious pickle was executed"


@pytest.fixture()
def evil_files(tmp_path: Path, marker: Path) -> dict[str, Path]:
    """``{"raw.ckpt": path, "zip.SAFETENSORS": path, ...}``: both pickle formats under every extension."""
    folder = tmp_path / "evil"
    folder.mkdir()
    files: dict[str, Path] = {}
    raw = evil_raw_pickle(marker)
    zipped = evil_torch_zip(tmp_path / "evil.zip", marker).read_bytes()
    for ext in EXTENSIONS:
        for kind, data in (("raw", raw), ("zip", zipped)):
            path = folder / f"{kind}{ext}"
            path.write_bytes(data)
            files[f"{kind}{ext}"] = path
    return files


class _Makers:
    raw_pickle = staticmethod(evil_raw_pickle)
    torch_zip = staticmethod(evil_torch_zip)


@pytest.fixture()
def evil() -> type[_Makers]:
    """The evil file makers (``evil.raw_pickle(marker)``, ``evil.torch_zip(path, marker)``)."""
    return _Makers
