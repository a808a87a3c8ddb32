"""The Python API: ``from gambarkan import generate, GenerationRequest``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def test_public_api_generates_images(tiny_sd15_dir: Path, tmp_path: Path):
    from gambarkan import GenerationRequest, GenerationResult, generate

    result = generate(GenerationRequest(prompt="a small boat", model=str(tiny_sd15_dir), seed=1, steps=2, width=64, height=64, out_dir=str(tmp_path), translate=False))
    assert isinstance(result, GenerationResult)
    assert result.seeds == [1] and result.paths == [tmp_path / "00001-1.png"]
    assert np.asarray(result.images[0].image).shape == (64, 64, 3)
    again = generate(prompt="a small boat", model=str(tiny_sd15_dir), seed=1, steps=2, width=64, height=64, save=False, translate=False)
    assert again.images[0].image.tobytes() == result.images[0].image.tobytes()
    assert again.paths == [None]


def test_invalid_request_raises_one_clear_error():
    from gambarkan import GambarkanError, GenerationRequest

    with pytest.raises(GambarkanError, match="height 100 is not a multiple of 8 \\(try 96\\)"):
        GenerationRequest(prompt="x", height=100)
    with pytest.raises(GambarkanError, match="unknown option 'stepz'"):
        GenerationRequest(prompt="x", stepz=3)


def test_requests_are_frozen_values():
    from gambarkan import GenerationRequest

    request = GenerationRequest(prompt="x", seed=3)
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="frozen"):
        request.seed = 4  # type: ignore[misc]
    assert request.merged(seed=4).seed == 4 and request.seed == 3


def test_tiny_model_command(tmp_path: Path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "gambarkan.testing", "tiny-model", str(tmp_path / "m"), "--arch", "sdxl"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "m" / "model_index.json").is_file()
    assert "StableDiffusionXLPipeline" in (tmp_path / "m" / "model_index.json").read_text()
    assert list((tmp_path / "m" / "unet").glob("*.safetensors"))
