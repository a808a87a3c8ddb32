"""FLUX.1 through the one engine path: tiny random components loaded from disk like a user's folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gambarkan.request import GenerationRequest

SMALL = {"steps": 2, "width": 64, "height": 64, "translate": False}


def _pixels(result) -> np.ndarray:
    return np.asarray(result.images[0].image)


def test_tiny_flux_folder_is_a_flux_pipeline(tiny_flux_dir: Path) -> None:
    from gambarkan.families import detect_folder

    index = json.loads((tiny_flux_dir / "model_index.json").read_text())
    assert index["_class_name"] == "FluxPipeline" and index["text_encoder_2"] == ["transformers", "T5EncoderModel"]
    assert json.loads((tiny_flux_dir / "vae" / "config.json").read_text())["latent_channels"] == 16
    assert detect_folder(tiny_flux_dir).name == "flux"


def test_flux_generates_same_seed_same_pixels_with_family_metadata(engine, tiny_flux_dir: Path, tmp_path: Path) -> None:
    from gambarkan.outputs.png import read_parameters

    request = GenerationRequest(prompt="a (red:1.4) cat BREAK on a table", model=str(tiny_flux_dir), seed=7, out_dir=str(tmp_path), **SMALL)
    first = engine.generate(request)
    again = engine.generate(request.merged(save=False))
    other = engine.generate(request.merged(seed=8, save=False))
    assert first.images[0].image.size == (64, 64) and _pixels(first).std() > 0
    assert np.array_equal(_pixels(first), _pixels(again))
    assert not np.array_equal(_pixels(first), _pixels(other))
    assert first.sampler == "Euler"  # the flow-matching scheduler, not the SD default
    assert any("plain text" in n for n in first.extra["notes"])  # weights stripped, said once
    params = read_parameters(first.images[0].path)
    assert params["Model family"] == "flux" and params["Prompt weights"] == "ignored" and params["Sampler"] == "Euler"
    assert params["Seed"] == 7 and params["Size"] == "64x64"
    assert engine.cache._items and next(iter(engine.cache._items.values())).pipe.scheduler.__class__.__name__ == "FlowMatchEulerDiscreteScheduler"


def test_flux_says_what_does_not_apply(engine, tiny_flux_dir: Path) -> None:
    result = engine.generate(GenerationRequest(prompt="a cat", negative_prompt="blurry", sampler="DPM++ 2M Karras", clip_skip=2,
                                               model=str(tiny_flux_dir), seed=1, save=False, **SMALL))
    notes = " | ".join(result.extra["notes"])
    assert "no negative prompt" in notes and "no clip skip" in notes and "'DPM++ 2M Karras' does not apply" in notes
    assert result.sampler == "Euler"


def test_flux_preview_uses_the_16_channel_latent_approximation(engine, tiny_flux_dir: Path) -> None:
    previews = []
    engine.generate(GenerationRequest(prompt="a cat", model=str(tiny_flux_dir), seed=1, save=False, **SMALL),
                    on_progress=lambda p: previews.append(p.preview), preview_every=1)
    assert len(previews) == 2 and all(p is not None for p in previews)
    assert previews[-1].size == (64, 64) and np.asarray(previews[-1]).std() > 0


def test_flux_from_png_rerun_gives_the_same_pixels(engine, tiny_flux_dir: Path, tmp_path: Path) -> None:
    from gambarkan.outputs.reuse import fields_from_png

    first = engine.generate(GenerationRequest(prompt="a cat on a boat", model=str(tiny_flux_dir), seed=11, out_dir=str(tmp_path), **SMALL))
    fields = fields_from_png(first.images[0].path)
    again = engine.generate(GenerationRequest(**fields, model=str(tiny_flux_dir), save=False))
    assert again.seed == 11 and again.steps == 2 and again.sampler == "Euler"
    assert np.array_equal(_pixels(first), _pixels(again))


def test_gguf_transformer_loads_through_diffusers_gguf_path(tiny_flux_dir: Path, tmp_path: Path) -> None:
    """A user package pointing at a GGUF file with the tiny FLUX folder as its base (like flux-schnell)."""
    from gambarkan.config import Settings
    from gambarkan.engine.generate import Engine
    from gambarkan.models.catalog import add_user_package
    from gambarkan.testing import save_tiny_gguf

    gguf_file = save_tiny_gguf(tmp_path / "tiny-flux-Q8_0.gguf", tiny_flux_dir)
    assert gguf_file.read_bytes()[:4] == b"GGUF"
    settings = Settings.from_env()
    spec = add_user_package(settings, "tiny-gguf", str(gguf_file), config=str(tiny_flux_dir), sampler="Euler", steps=2, cfg=1.0, width=64, height=64)
    assert spec.kind == "flux" and spec.source_type == "file"
    engine = Engine(settings)
    result = engine.generate(GenerationRequest(prompt="a cat", preset="tiny-gguf", seed=3, save=False, translate=False))
    pipe = next(iter(engine.cache._items.values())).pipe
    weight = pipe.transformer.transformer_blocks[0].attn.to_q.weight
    assert type(weight).__name__ == "GGUFParameter" and weight.quant_type.name == "Q8_0"  # stays quantized in memory
    assert _pixels(result).shape == (64, 64, 3) and _pixels(result).std() > 0
    plain = Engine(settings).generate(GenerationRequest(prompt="a cat", model=str(tiny_flux_dir), seed=3, steps=2, cfg=1.0, width=64, height=64, save=False, translate=False))
    diff = np.abs(_pixels(result).astype(int) - _pixels(plain).astype(int))
    assert diff.mean() < 3  # Q8_0 weights: the same picture within rounding


def test_gguf_without_a_base_model_is_one_clear_error(engine, tiny_flux_dir: Path, tmp_path: Path) -> None:
    from gambarkan.errors import ModelLoadError
    from gambarkan.testing import save_tiny_gguf

    gguf_file = save_tiny_gguf(tmp_path / "alone.gguf", tiny_flux_dir)
    with pytest.raises(ModelLoadError, match="text encoders and VAE come from a base model"):
        engine.generate(GenerationRequest(prompt="a cat", model=str(gguf_file), save=False, **SMALL))


@pytest.mark.slow
def test_cli_generates_with_the_tiny_flux_folder_and_reruns_from_the_png(cli, tiny_flux_dir: Path, tmp_path: Path) -> None:
    """What a user types: `gambarkan generate -m DIR`, then `--from` the PNG it wrote."""
    out = tmp_path / "out"
    first = cli("generate", "a (red:1.3) cat", "-m", str(tiny_flux_dir), "--steps", "2", "--width", "64", "--height", "64",
                "--seed", "9", "--no-translate", "--out", str(out), "--json")
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    png = Path(data["images"][0]["path"])
    assert data["sampler"] == "Euler" and "plain text" in " ".join(data["extra"]["notes"])
    again = cli("generate", "--from", str(png), "-m", str(tiny_flux_dir), "--out", str(tmp_path / "again"), "--json")
    assert again.returncode == 0, again.stderr
    second = Path(json.loads(again.stdout)["images"][0]["path"])
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(png)), np.asarray(Image.open(second)))


def test_flux_img2img_uses_the_familys_pipeline_through_from_pipe(engine, tiny_flux_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    source = tmp_path / "in.png"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(source)
    result = engine.generate(GenerationRequest(prompt="a cat", model=str(tiny_flux_dir), init_image=str(source), strength=0.5, seed=1, save=False, **SMALL))
    loaded = next(iter(engine.cache._items.values()))
    assert type(loaded.extras["task_pipes"]["img2img"]).__name__ == "FluxImg2ImgPipeline"
    assert loaded.extras["task_pipes"]["img2img"].transformer is loaded.pipe.transformer  # shared, not reloaded
    assert result.images[0].image.size == (64, 64) and np.asarray(result.images[0].image).std() > 0
