"""Point 2: a malicious pickle is refused by every load path, whatever its extension; the
format is decided by the bytes; broken safetensors headers fail cleanly.

Each case would fail if a loader unpickled the file (the ``marker`` fixture asserts the
payload never ran) or answered with anything but a one-line GambarkanError.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from gambarkan.errors import GambarkanError, ModelLoadError, UnsafeFileError

CASES = ["raw.ckpt", "zip.ckpt", "raw.bin", "zip.bin", "raw.safetensors", "zip.safetensors", "raw.SAFETENSORS", "zip.SAFETENSORS"]


def _cli(*args: str):
    from gambarkan.cli import main

    return CliRunner().invoke(main, list(args), catch_exceptions=True)


def _assert_clean_refusal(result, marker: Path) -> None:
    """Exit 2, one ``gambarkan: error:`` line, no traceback, payload never ran."""
    assert result.exit_code == 2, result.output
    assert "gambarkan: error:" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not marker.exists()


@pytest.mark.parametrize("case", CASES)
def test_cli_model_refuses_pickles(case: str, evil_files: dict[str, Path], marker: Path) -> None:
    result = _cli("generate", "kucing", "--model", str(evil_files[case]), "--no-translate", "--offline", "--steps", "2", "-W", "64", "-H", "64")
    _assert_clean_refusal(result, marker)
    assert "pickle" in result.output or "not a valid .safetensors" in result.output


@pytest.mark.parametrize("allow", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_models_add_refuses_pickles(case: str, allow: bool, evil_files: dict[str, Path], marker: Path) -> None:
    args = ["models", "add", "jahat", str(evil_files[case])] + (["--allow-pickle"] if allow else [])
    result = _cli(*args)
    _assert_clean_refusal(result, marker)
    from gambarkan.config import Settings
    from gambarkan.models.catalog import user_catalog_path

    assert not user_catalog_path(Settings.from_env()).exists()  # nothing was registered


@pytest.mark.parametrize("case", ["raw.safetensors", "zip.ckpt", "raw.SAFETENSORS"])
def test_preset_source_refuses_pickles(case: str, evil_files: dict[str, Path], marker: Path) -> None:
    """A hand-edited user catalog pointing a preset at a pickle is refused when the preset is used."""
    from gambarkan.config import Settings
    from gambarkan.models.catalog import user_catalog_path

    settings = Settings.from_env()
    catalog = user_catalog_path(settings)
    catalog.parent.mkdir(parents=True, exist_ok=True)
    catalog.write_text(f'[packages.jahat]\nsource = "{evil_files[case]}"\nkind = "sd15"\n', encoding="utf-8")
    result = _cli("generate", "kucing", "--preset", "jahat", "--no-translate", "--offline", "--steps", "2", "-W", "64", "-H", "64")
    _assert_clean_refusal(result, marker)


def test_folder_with_pickle_weights_is_refused(tiny_sd15_dir: Path, tmp_path: Path, marker: Path, evil) -> None:
    """A diffusers folder whose U-Net is a pickle (.bin only, or a pickle named .safetensors)."""
    from gambarkan.engine.pipelines import load_model

    only_bin = shutil.copytree(tiny_sd15_dir, tmp_path / "only-bin")
    for weight in (only_bin / "unet").glob("*.safetensors"):
        weight.unlink()
    evil.torch_zip(only_bin / "unet" / "diffusion_pytorch_model.bin", marker)
    disguised = shutil.copytree(tiny_sd15_dir, tmp_path / "disguised")
    (disguised / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(evil.raw_pickle(marker))
    for folder in (only_bin, disguised):
        with pytest.raises(UnsafeFileError):
            load_model(str(folder), "cpu", "fp32", offline=True)
    assert not marker.exists()


@pytest.fixture(scope="module")
def pipe():
    from gambarkan.testing import tiny_pipeline

    return tiny_pipeline("sd15")


@pytest.mark.parametrize("case", CASES)
def test_lora_refuses_pickles(case: str, evil_files: dict[str, Path], marker: Path, tmp_path: Path, pipe) -> None:
    from gambarkan.config import Settings
    from gambarkan.models.loras import apply_networks

    lora_dir = tmp_path / "loras"
    lora_dir.mkdir()
    shutil.copy(evil_files[case], lora_dir / case)
    settings = Settings.from_env()
    stem = case.split(".")[0]
    for tag in (f"<lora:{stem}:1>", f"<lora:{case}:1>"):
        with pytest.raises(GambarkanError) as info:
            apply_networks(pipe, f"kucing {tag}", "", settings, lora_dirs=[lora_dir])
        # a pickle is named as such; a name that only a pickle has is never loaded
        assert isinstance(info.value, UnsafeFileError) or "unknown LoRA" in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("case", ["raw.safetensors", "zip.safetensors", "raw.SAFETENSORS", "zip.SAFETENSORS"])
def test_embedding_refuses_pickles(case: str, evil_files: dict[str, Path], marker: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipe) -> None:
    from gambarkan.config import Settings
    from gambarkan.models.loras import apply_networks

    emb_dir = tmp_path / "emb"
    emb_dir.mkdir()
    shutil.copy(evil_files[case], emb_dir / f"jahat{Path(case).suffix}")
    monkeypatch.setenv("GAMBARKAN_EMBEDDING_DIRS", str(emb_dir))
    with pytest.raises(UnsafeFileError):
        apply_networks(pipe, "kucing jahat", "", Settings.from_env())
    assert not marker.exists()


def test_safetensors_bytes_under_another_name_never_reach_torch_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Format by bytes: a real safetensors checkpoint named .ckpt loads with the safetensors reader.

    diffusers picks ``torch.load`` for any name not ending in ``.safetensors``; we must not.
    """
    import torch

    from gambarkan.engine.pipelines import load_model
    from gambarkan.testing import save_tiny_single_file

    real = save_tiny_single_file(tmp_path / "tiny.safetensors", config_dir=tmp_path / "config")
    renamed = real.rename(tmp_path / "tiny.ckpt")

    def no_torch_load(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("torch.load was called on a weight file")

    monkeypatch.setattr(torch, "load", no_torch_load)
    loaded = load_model(str(renamed), "cpu", "fp32", offline=True, config=str(tmp_path / "config"))
    assert loaded.arch == "sd15" and loaded.name == "tiny"
    assert not list(tmp_path.glob("gambarkan-load-*"))


# --- broken headers ------------------------------------------------------------------------


def _st(header: dict, data: bytes, length: int | None = None) -> bytes:
    blob = json.dumps(header).encode()
    return struct.pack("<Q", len(blob) if length is None else length) + blob + data


BROKEN = {
    "empty": b"",
    "short": b"\x10\x00\x00",
    "absurd-length": struct.pack("<Q", 2**63) + b"{}",
    "length-past-end": struct.pack("<Q", 4096) + b'{"a": 1}',
    "not-json": struct.pack("<Q", 6) + b"{abcde",
    "not-utf8": struct.pack("<Q", 4) + b"{\xff\xfe}",
    "list-header": _st([], b""),  # type: ignore[arg-type]
    "offsets-past-end": _st({"w": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}}, b"1234"),
    "negative-offset": _st({"w": {"dtype": "U8", "shape": [4], "data_offsets": [-4, 0]}}, b"1234"),
    "reversed-offsets": _st({"w": {"dtype": "U8", "shape": [0], "data_offsets": [4, 0]}}, b"1234"),
    "overlapping": _st({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}, "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}}, b"123456"),
    "hole": _st({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}, "b": {"dtype": "U8", "shape": [2], "data_offsets": [4, 6]}}, b"123456"),
    "shape-mismatch": _st({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 4]}}, b"1234"),
    "float-offsets": _st({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0.0, 4.0]}}, b"1234"),
    "bad-shape": _st({"a": {"dtype": "U8", "shape": "4", "data_offsets": [0, 4]}}, b"1234"),
    "trailing-bytes": _st({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}, b"1234extra"),
    "no-offsets": _st({"a": {"dtype": "U8", "shape": [4]}}, b"1234"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_headers_fail_cleanly(name: str, tmp_path: Path) -> None:
    from gambarkan.engine.pipelines import read_safetensors_header
    from gambarkan.models import safety

    path = tmp_path / "broken.safetensors"
    path.write_bytes(BROKEN[name])
    for reader in (safety.check_file, read_safetensors_header):
        with pytest.raises(ModelLoadError):
            reader(path)
    result = _cli("generate", "kucing", "--model", str(path), "--no-translate", "--offline")
    assert result.exit_code == 2 and "gambarkan: error:" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_whatever_we_refuse_safetensors_refuses_too(name: str, tmp_path: Path) -> None:
    """Differential check: the safetensors library refuses each broken file, and so does gambarkan, first.

    Our validator must never be looser than the library (a file the library would reject must
    not get past ``check_file`` to a loader), and it refuses with its own one-line error.
    """
    from safetensors import SafetensorError, safe_open

    from gambarkan.models import safety

    path = tmp_path / "broken.safetensors"
    path.write_bytes(BROKEN[name])
    with pytest.raises(SafetensorError, match="Error while deserializing header"):
        with safe_open(str(path), "pt") as handle:
            for key in handle.keys():  # noqa: SIM118
                handle.get_tensor(key)
    with pytest.raises(ModelLoadError) as refusal:
        safety.check_file(path)
    assert type(refusal.value) is ModelLoadError and "broken.safetensors" in str(refusal.value)
