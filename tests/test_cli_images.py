"""The real CLI with images: generate --image/--mask, gambarkan upscale, and bad input (exit 2, one line)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SMALL = ["--steps", "4", "--no-translate", "--seed", "3"]


def one_line_error(run, *needles: str) -> None:
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gambarkan: error:"), run.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "foto.png"
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(path)
    return path


def test_generate_inpaint_from_the_cli_keeps_the_rest(cli, tiny_sd15_dir: Path, photo: Path, tmp_path: Path):
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (8, 8, 32, 32))
    mask.save(tmp_path / "mask.png")
    run = cli("generate", "a cat", "-m", str(tiny_sd15_dir), "--image", str(photo), "--mask", str(tmp_path / "mask.png"), "--mask-blur", "0", "--strength", "0.5", "-o", str(tmp_path / "out"), "--json", *SMALL)
    assert run.returncode == 0, run.stderr
    path = Path(json.loads(run.stdout)["images"][0]["path"])
    out, source = np.asarray(Image.open(path).convert("RGB")), np.asarray(Image.open(photo))
    keep = np.asarray(mask) == 0
    assert (out[keep] == source[keep]).all() and not (out[~keep] == source[~keep]).all()
    from gambarkan.outputs.png import read_parameters

    params = read_parameters(path)
    assert params["Denoising strength"] == 0.5 and params["Init image"] == str(photo.resolve()) and params["Mask"] == str((tmp_path / "mask.png").resolve())


def test_upscale_command_gives_4x_and_keeps_the_parameters(cli, tmp_path: Path, isolated_home: Path):
    from gambarkan.outputs.png import encode_png, read_parameters_text
    from gambarkan.testing import save_tiny_upscaler

    save_tiny_upscaler(isolated_home / "upscalers" / "tiny-esrgan.safetensors")
    source = tmp_path / "small.png"
    source.write_bytes(encode_png(Image.new("RGB", (20, 12), "green"), "a cat\nSteps: 2, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 20x12"))
    listed = cli("upscale", "--list")
    assert "tiny-esrgan\ttiny-esrgan" in listed.stdout and "lanczos\tLanczos" in listed.stdout
    run = cli("upscale", str(source), "--upscaler", "tiny-esrgan", "-o", str(tmp_path / "big"))
    assert run.returncode == 0, run.stderr
    out = Path(run.stdout.strip())
    assert out.name == "small-x4.png" and Image.open(out).size == (80, 48)
    assert read_parameters_text(out).startswith("a cat\nSteps: 2")
    assert Image.open(out).info["postprocessing"] == "Postprocess upscale by: 4, Postprocess upscaler: tiny-esrgan"
    again = cli("upscale", str(source), "--scale", "2", "-o", str(tmp_path / "big"))
    assert Path(again.stdout.strip()).name == "small-x2.png" and Image.open(again.stdout.strip()).size == (40, 24)
    third = cli("upscale", str(source), "--scale", "2", "-o", str(tmp_path / "big"))
    assert Path(third.stdout.strip()).name == "small-x2-2.png"  # nothing is overwritten


def test_bad_image_input_is_one_line(cli, tmp_path: Path, photo: Path, isolated_home: Path):
    one_line_error(cli("generate", "x", "--image", str(tmp_path / "missing.png")), "init_image: file not found")
    (tmp_path / "not.png").write_text("hello")
    one_line_error(cli("generate", "x", "--image", str(tmp_path / "not.png")), "init_image: not an image")
    one_line_error(cli("generate", "x", "--hires-steps", "5"), "--hires-steps needs --hires SCALE")
    one_line_error(cli("generate", "x", "--image", str(photo), "--strength", "2"), "strength 2.0 is out of range")
    one_line_error(cli("generate", "x", "--hires", "2", "--upscaler", "ultrasharpp"), "unknown upscaler 'ultrasharpp'")
    one_line_error(cli("upscale", str(photo), "--upscaler", "nope"), "unknown upscaler 'nope'")
    folder = isolated_home / "upscalers"
    folder.mkdir(parents=True)
    (folder / "evil.pth").write_bytes(pickle.dumps({"x": 1}))
    one_line_error(cli("upscale", str(photo), "--upscaler", "evil"), "evil.pth is a pickle", "refusing to load it")
