"""PNG metadata (A1111 format) and atomic, never-overwriting saves."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from gambarkan.errors import DiskFullError
from gambarkan.outputs.png import format_parameters, parse_parameters, read_parameters, save_png

A1111_TEXT = (
    "masterpiece, (best quality:1.2), 1girl, <lora:detail:0.6>\n"
    "Negative prompt: lowres, bad anatomy\n"
    'Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3362818458, Size: 512x768, '
    'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Clip skip: 2, '
    'Lora hashes: "detail: 1b3a7c0e0b4c", Version: v1.9.4'
)


def _image(seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))


def test_format_and_parse_round_trip():
    fields = {"Steps": 20, "Sampler": "Euler a", "CFG scale": 7, "Seed": 1, "Size": "512x512", "Model hash": "abc123def0", "Model": "m", "Original prompt": "kucing, lucu: sekali"}
    text = format_parameters("a cat, cute", "blurry", fields)
    assert text.splitlines()[0] == "a cat, cute"
    assert text.splitlines()[1] == "Negative prompt: blurry"
    assert text.splitlines()[2].startswith("Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512")
    parsed = parse_parameters(text)
    assert parsed["prompt"] == "a cat, cute"
    assert parsed["negative_prompt"] == "blurry"
    assert parsed["Steps"] == 20 and parsed["Seed"] == 1
    assert parsed["width"] == 512 and parsed["height"] == 512
    assert parsed["Original prompt"] == "kucing, lucu: sekali"  # quoted because of , and :


def test_reads_png_written_the_way_a1111_writes_it(tmp_path: Path):
    info = PngInfo()
    info.add_text("parameters", A1111_TEXT)
    path = tmp_path / "a1111.png"
    _image().save(path, pnginfo=info)
    params = read_parameters(path)
    assert params["prompt"] == "masterpiece, (best quality:1.2), 1girl, <lora:detail:0.6>"
    assert params["negative_prompt"] == "lowres, bad anatomy"
    assert params["Sampler"] == "DPM++ 2M Karras"  # Schedule type folded back
    assert params["CFG scale"] == 6.5 and params["Seed"] == 3362818458
    assert (params["width"], params["height"]) == (512, 768)
    assert params["Lora hashes"] == "detail: 1b3a7c0e0b4c"
    assert params["Clip skip"] == 2


def test_multiline_prompt_without_negative():
    parsed = parse_parameters("line one\nline two\nSteps: 5, Sampler: Euler, CFG scale: 7, Seed: 9, Size: 64x64")
    assert parsed["prompt"] == "line one\nline two"
    assert parsed["negative_prompt"] == ""
    assert parsed["Seed"] == 9


def test_save_png_numbers_and_never_overwrites(tmp_path: Path):
    first = save_png(_image(1), tmp_path, 42, "p1")
    second = save_png(_image(2), tmp_path, 42, "p2")
    assert first.name == "00001-42.png" and second.name == "00002-42.png"
    assert read_parameters(first)["raw"] == "p1"
    assert not list(tmp_path.glob("*.tmp"))
    (tmp_path / "00007-1.png").write_bytes(b"x")
    assert save_png(_image(3), tmp_path, 5, "p").name == "00008-5.png"
    assert (tmp_path / "00007-1.png").read_bytes() == b"x"


def test_disk_full_leaves_earlier_files_and_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    earlier = save_png(_image(1), tmp_path, 1, "keep me")
    before = earlier.read_bytes()

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(DiskFullError, match="no space left"):
        save_png(_image(2), tmp_path, 2, "new")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [earlier.name]
    assert earlier.read_bytes() == before


def test_unwritable_output_folder_is_a_clear_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DiskFullError, match="cannot write"):
        save_png(_image(), blocker / "out", 1, "p")
