"""Pickle refusal and safetensors validation, decided by bytes; nothing is ever unpickled."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import pytest

from gambarkan.errors import ModelLoadError, UnsafeFileError
from gambarkan.models import safety


class Evil:
    """Unpickling this runs code that writes a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def _safetensors_bytes(tensors: dict[str, bytes]) -> bytes:
    header, offset, data = {}, 0, b""
    for name, raw in tensors.items():
        header[name] = {"dtype": "U8", "shape": [len(raw)], "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    blob = json.dumps(header).encode()
    return struct.pack("<Q", len(blob)) + blob + data


@pytest.fixture()
def marker(tmp_path: Path) -> Path:
    return tmp_path / "PWNED"


@pytest.fixture()
def evil_files(tmp_path: Path, marker: Path) -> list[Path]:
    import torch

    raw = pickle.dumps(Evil(marker), protocol=2)
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(raw)
    disguised = tmp_path / "model.safetensors"  # a pickle wearing the safe extension
    disguised.write_bytes(raw)
    archive = tmp_path / "pytorch_model.bin"  # torch's zip format, the usual .bin/.ckpt today
    torch.save({"state_dict": {"w": torch.zeros(2)}, "payload": Evil(marker)}, archive)
    return [ckpt, disguised, archive]


def test_pickles_are_refused_by_default(evil_files: list[Path], marker: Path) -> None:
    for path in evil_files:
        with pytest.raises(UnsafeFileError) as info:
            safety.check_file(path)
        assert path.name in str(info.value) and ".safetensors version" in str(info.value)
        assert "--allow-pickle" not in str(info.value)  # only `models add` has it; it adds the flag itself
    assert not marker.exists()


def test_allow_pickle_scans_and_still_refuses_code(evil_files: list[Path], marker: Path) -> None:
    pytest.importorskip("picklescan")
    for path in evil_files:
        with pytest.raises(UnsafeFileError, match="unsafe code"):
            safety.check_file(path, allow_pickle=True)
    assert not marker.exists()


def test_allow_pickle_accepts_a_clean_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("picklescan")
    import torch

    path = tmp_path / "clean.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(UnsafeFileError):
        safety.check_file(path)
    assert safety.check_file(path, allow_pickle=True) == {}


def test_valid_safetensors_passes_and_damage_is_caught(tmp_path: Path) -> None:
    good = tmp_path / "good.safetensors"
    good.write_bytes(_safetensors_bytes({"a": b"\x01\x02\x03", "b": b"\x04"}))
    assert set(safety.check_file(good)) == {"a", "b"}
    assert safety.sniff_format(good) == "safetensors"

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-2])
    with pytest.raises(ModelLoadError, match="truncated or corrupt"):
        safety.check_file(truncated)

    padded = tmp_path / "padded.safetensors"
    padded.write_bytes(good.read_bytes() + b"junk")
    with pytest.raises(ModelLoadError, match="unexpected bytes"):
        safety.check_file(padded)

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"hello world, not a model")
    with pytest.raises(ModelLoadError, match="not a valid"):
        safety.check_file(garbage)


def test_real_safetensors_from_the_library(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({"x": torch.ones(3, 4), "y": torch.zeros(2, dtype=torch.float16)}, str(path))
    header = safety.check_file(path)
    assert header["x"]["shape"] == [3, 4]


def test_folder_with_only_pickled_weights_is_refused(tmp_path: Path, marker: Path) -> None:
    folder = tmp_path / "model"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "diffusion_pytorch_model.bin").write_bytes(pickle.dumps(Evil(marker)))
    with pytest.raises(UnsafeFileError, match="diffusion_pytorch_model.bin"):
        safety.check_folder(folder)
    # A safetensors file beside it is what diffusers loads, so the pickle is then ignored.
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(_safetensors_bytes({"w": b"\x00"}))
    assert [p.name for p in safety.check_folder(folder)] == ["diffusion_pytorch_model.safetensors"]
    assert not marker.exists()


def test_models_add_refuses_a_pickle(evil_files: list[Path], marker: Path, tmp_path: Path) -> None:
    from gambarkan.config import Settings
    from gambarkan.models.catalog import add_user_package, user_catalog_path

    settings = Settings.from_env({"GAMBARKAN_HOME": str(tmp_path / "home")})
    for path in evil_files:
        with pytest.raises(UnsafeFileError):
            add_user_package(settings, "jahat", str(path))
    assert not user_catalog_path(settings).exists()
    assert not marker.exists()
