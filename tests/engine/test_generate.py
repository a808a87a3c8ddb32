"""The engine end to end with tiny models loaded from disk through the user's code path."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from gambarkan.errors import CancelledError, ModelLoadError, OutOfMemoryError, UnknownModelError, UnsafeFileError
from gambarkan.outputs.png import read_parameters
from gambarkan.request import GenerationRequest

SMALL = dict(steps=2, width=64, height=64, translate=False)


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_generate_writes_png_with_a1111_metadata(engine, tiny_sd15_dir: Path, tmp_path: Path):
    request = GenerationRequest(prompt="a red cat", negative_prompt="blurry", model=str(tiny_sd15_dir), seed=7, sampler="Euler a", out_dir=str(tmp_path), **SMALL)
    result = engine.generate(request)
    assert len(result.images) == 1
    image = result.images[0]
    assert image.path == tmp_path / "00001-7.png" and image.path.is_file()
    assert image.image.size == (64, 64) and pixels(image.image).std() > 0
    params = read_parameters(image.path)
    assert params["prompt"] == "a red cat" and params["negative_prompt"] == "blurry"
    assert params["Steps"] == 2 and params["Sampler"] == "Euler a" and params["Seed"] == 7
    assert params["Size"] == "64x64" and params["Model"] == "tiny-sd15"
    assert len(params["Model hash"]) == 10
    assert params["Version"].startswith("gambarkan ")
    assert set(result.timings) >= {"load", "sample", "save", "total", "peak_ram_mb"}


def test_same_seed_gives_identical_pixels(engine, tiny_sd15_dir: Path):
    request = GenerationRequest(prompt="a house", model=str(tiny_sd15_dir), seed=123, save=False, **SMALL)
    a = engine.generate(request).images[0].image
    b = engine.generate(request).images[0].image
    assert a.tobytes() == b.tobytes()
    c = engine.generate(request.merged(seed=124)).images[0].image
    assert a.tobytes() != c.tobytes()


def test_batch_image_i_uses_seed_plus_i_and_can_be_remade_alone(engine, tiny_sd15_dir: Path):
    base = GenerationRequest(prompt="a boat", model=str(tiny_sd15_dir), seed=10, save=False, sampler="Euler a", **SMALL)
    batch = engine.generate(base.merged(batch_size=3, count=2))
    assert batch.seeds == [10, 11, 12, 13, 14, 15]
    alone = engine.generate(base.merged(seed=12)).images[0].image
    # Batched matmuls may round differently in the last bit; the pixels agree within 2/255.
    assert np.abs(pixels(alone) - pixels(batch.images[2].image)).max() <= 2
    assert np.abs(pixels(alone) - pixels(batch.images[3].image)).max() > 10


def test_random_seed_is_recorded(engine, tiny_sd15_dir: Path):
    result = engine.generate(GenerationRequest(prompt="x", model=str(tiny_sd15_dir), seed=-1, save=False, **SMALL))
    assert 0 <= result.seed < 2**32
    assert result.images[0].seed == result.seed
    assert f"Seed: {result.seed}," in result.images[0].parameters


def test_sdxl_folder_gets_the_xl_pipeline(engine, tiny_sdxl_dir: Path):
    result = engine.generate(GenerationRequest(prompt="a castle", model=str(tiny_sdxl_dir), seed=3, save=False, **SMALL))
    loaded, _ = engine.cache.get((str(tiny_sdxl_dir), "cpu", "fp32", None), lambda: None)
    assert type(loaded.pipe).__name__ == "StableDiffusionXLPipeline"
    assert pixels(result.images[0].image).std() > 0


def test_progress_reports_every_step_and_cancel_stops(engine, tiny_sd15_dir: Path, tmp_path: Path):
    events = []
    request = GenerationRequest(prompt="x", model=str(tiny_sd15_dir), seed=1, count=2, out_dir=str(tmp_path), **{**SMALL, "steps": 3})
    engine.generate(request, on_progress=events.append, preview_every=1)
    assert [(e.batch_index, e.step) for e in events] == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]
    assert events[0].preview.size == (64, 64)

    cancel = threading.Event()

    def stop_after_first_step(event) -> None:
        cancel.set()

    with pytest.raises(CancelledError):
        engine.generate(request.merged(out_dir=str(tmp_path / "cancelled")), on_progress=stop_after_first_step, cancel=cancel)
    assert not (tmp_path / "cancelled").exists() or not list((tmp_path / "cancelled").iterdir())


def test_clip_skip_changes_the_image(engine, tiny_sd15_dir: Path):
    request = GenerationRequest(prompt="a cat", model=str(tiny_sd15_dir), seed=5, save=False, **SMALL)
    one = engine.generate(request).images[0].image
    two = engine.generate(request.merged(clip_skip=2))
    assert one.tobytes() != two.images[0].image.tobytes()
    assert "Clip skip: 2" in two.images[0].parameters


def test_out_of_memory_is_a_clear_error(engine, tiny_sd15_dir: Path):
    import torch

    request = GenerationRequest(prompt="x", model=str(tiny_sd15_dir), seed=1, save=False, **SMALL)
    engine.generate(request)  # load
    loaded = next(iter(engine.cache._items.values()))

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    handle = loaded.pipe.unet.register_forward_pre_hook(oom)
    try:
        with pytest.raises(OutOfMemoryError, match="ran out of memory"):
            engine.generate(request)
    finally:
        handle.remove()


@pytest.mark.parametrize(
    "content, error",
    [
        (b"\x80\x04\x95" + b"\x00" * 64, UnsafeFileError),  # a pickle, whatever its name says
        (b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":", ModelLoadError),  # truncated header
        (b"\xff" * 8 + b"{}", ModelLoadError),  # absurd header length
        (b"", ModelLoadError),
    ],
)
def test_broken_or_unsafe_checkpoint_files_fail_cleanly(engine, tmp_path: Path, content: bytes, error):
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(error):
        engine.generate(GenerationRequest(prompt="x", model=str(path), save=False, **SMALL))


def test_overlapping_offsets_are_detected(engine, tmp_path: Path):
    import json
    import struct

    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 64]}}).encode()
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 16)
    with pytest.raises(ModelLoadError, match="truncated or corrupt"):
        engine.generate(GenerationRequest(prompt="x", model=str(path), save=False, **SMALL))


def test_missing_paths_and_bad_names_are_unknown_models(engine):
    with pytest.raises(UnknownModelError, match="not found"):
        engine.generate(GenerationRequest(prompt="x", model="./nope/model.safetensors", save=False, **SMALL))
    with pytest.raises(UnknownModelError, match="unknown model"):
        engine.generate(GenerationRequest(prompt="x", model="not a model id", save=False, **SMALL))


def test_hub_model_without_network_says_so(engine, monkeypatch: pytest.MonkeyPatch):
    from gambarkan.errors import NetworkError

    with pytest.raises(NetworkError, match="--model PATH"):
        engine.generate(GenerationRequest(prompt="x", model="someone/not-downloaded", save=False, offline=True, **SMALL))


def test_folder_with_only_fp16_variant_files_loads(engine, tmp_path: Path):
    from gambarkan.testing import tiny_pipeline

    folder = tmp_path / "fp16-only"
    tiny_pipeline().save_pretrained(folder, safe_serialization=True, variant="fp16")
    assert list((folder / "unet").glob("*.fp16.safetensors"))
    result = engine.generate(GenerationRequest(prompt="a cat", model=str(folder), seed=1, save=False, **SMALL))
    assert pixels(result.images[0].image).std() > 0


def test_memory_plan_is_reported(engine, tiny_sd15_dir: Path):
    result = engine.generate(GenerationRequest(prompt="a cat", model=str(tiny_sd15_dir), seed=1, save=False, **SMALL))
    assert result.extra["memory"].startswith("memory mode high on cpu")


def test_sd2_is_detected_from_folder_configs_and_checkpoint_keys(tiny_sd15_dir: Path, tiny_sdxl_dir: Path, tmp_path: Path):
    import json
    import shutil

    from gambarkan.engine.pipelines import detect_file_arch, detect_folder_arch
    from gambarkan.families import get_family

    sd2 = tmp_path / "sd2"
    (sd2 / "unet").mkdir(parents=True)
    shutil.copy(tiny_sd15_dir / "model_index.json", sd2 / "model_index.json")
    config = json.loads((tiny_sd15_dir / "unet" / "config.json").read_text())
    (sd2 / "unet" / "config.json").write_text(json.dumps({**config, "cross_attention_dim": 1024}))
    assert [detect_folder_arch(p) for p in (tiny_sd15_dir, sd2, tiny_sdxl_dir)] == ["sd15", "sd2", "sdxl"]
    unet_key = {"model.diffusion_model.input_blocks.0.0.weight": {}}
    assert detect_file_arch({**unet_key, "cond_stage_model.transformer.text_model.embeddings.position_ids": {}}) == "sd15"
    assert detect_file_arch({**unet_key, "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight": {}}) == "sd2"
    assert detect_file_arch({**unet_key, "conditioner.embedders.1.model.ln_final.weight": {}}) == "sdxl"
    assert get_family("sd2").pipeline_class() == "StableDiffusionPipeline" and get_family("sdxl").pipeline_class() == "StableDiffusionXLPipeline"
    with pytest.raises(ModelLoadError, match="LoRA"):
        detect_file_arch({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": {}})
