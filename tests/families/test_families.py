"""The family seam: detection from disk, per-family data, and the engine asking it (not `arch ==`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gambarkan.errors import ModelLoadError
from gambarkan.families import FAMILIES, FEATURES, TASKS, detect_file, detect_folder, family_of_pipeline, get_family, names


def test_every_family_answers_every_question() -> None:
    import diffusers

    assert set(names()) == set(FAMILIES) == {"sd15", "sd2", "sdxl", "flux"}
    for family in FAMILIES.values():
        assert set(family.pipelines) == set(TASKS)
        for task in TASKS:
            assert hasattr(diffusers, family.pipeline_class(task)), (family.name, task)
        assert family.unsupported <= set(FEATURES)
        assert len(family.latent_rgb) == family.latent_channels and all(len(row) == 3 for row in family.latent_rgb)
        assert family.memory_mb["high"] > family.memory_mb["low"] > 0
        assert family.native_size[0] % 8 == 0 and family.size("portrait")[1] > family.size("portrait")[0]
    assert get_family("flux").prompt_encoding == "t5" and get_family("flux").scheduler_kind == "flow"
    assert get_family("sdxl").prompt_encoding == "clip" and get_family("sdxl").fp16_vae_overflows
    assert not get_family("flux").supports("negative_prompt") and get_family("flux").supports("lora")
    assert get_family(None).name == "sd15"


def test_folder_detection_reads_model_index_and_unet_config(tiny_sd15_dir: Path, tiny_sdxl_dir: Path, tmp_path: Path) -> None:
    sd2 = tmp_path / "sd2"
    (sd2 / "unet").mkdir(parents=True)
    shutil.copy(tiny_sd15_dir / "model_index.json", sd2 / "model_index.json")
    config = json.loads((tiny_sd15_dir / "unet" / "config.json").read_text())
    (sd2 / "unet" / "config.json").write_text(json.dumps({**config, "cross_attention_dim": 1024}))
    flux = tmp_path / "flux"
    flux.mkdir()
    (flux / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    assert [detect_folder(p).name for p in (tiny_sd15_dir, sd2, tiny_sdxl_dir, flux)] == ["sd15", "sd2", "sdxl", "flux"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline"}))
    with pytest.raises(ModelLoadError, match="WanPipeline"):
        detect_folder(other)
    with pytest.raises(ModelLoadError, match="no model_index.json"):
        detect_folder(tmp_path)


def test_file_detection_from_tensor_names() -> None:
    assert detect_file(["double_blocks.0.img_attn.qkv.weight", "img_in.weight"]).name == "flux"
    assert detect_file(["model.diffusion_model.double_blocks.0.img_mod.lin.weight"]).name == "flux"
    assert detect_file(["conditioner.embedders.1.model.ln_final.weight", "model.diffusion_model.input_blocks.0.0.weight"]).name == "sdxl"
    assert detect_file(["cond_stage_model.model.ln_final.weight", "model.diffusion_model.input_blocks.0.0.weight"]).name == "sd2"
    assert detect_file(["model.diffusion_model.input_blocks.0.0.weight"]).name == "sd15"
    with pytest.raises(ModelLoadError, match="LoRA"):
        detect_file(["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"])


def test_family_of_a_built_pipeline() -> None:
    from gambarkan.testing import tiny_pipeline

    assert family_of_pipeline(tiny_pipeline("sd15")).name == "sd15"
    assert family_of_pipeline(tiny_pipeline("sdxl")).name == "sdxl"


def test_memory_and_catalog_defaults_come_from_the_family() -> None:
    from gambarkan.engine.device import choose_memory_mode, needed_mb
    from gambarkan.models.catalog import KIND_DEFAULTS, KINDS

    assert needed_mb("sdxl", "high", 1024, 1024) == get_family("sdxl").memory_mb["high"]
    assert needed_mb("flux", "low", 1024, 1024) == get_family("flux").memory_mb["low"]
    assert "flux" in KINDS and KIND_DEFAULTS["flux"]["width"] == 1024
    t4 = choose_memory_mode("auto", "cuda", "flux", 1024, 1024, free_vram_mb=15_000, free_ram_mb=12_700)
    assert t4.mode == "low" and "flux at 1024x1024" in t4.reason
    big = choose_memory_mode("auto", "cuda", "flux", 1024, 1024, free_vram_mb=40_000, free_ram_mb=64_000)
    assert big.mode == "high"


def test_optimizations_that_do_not_apply_are_off_per_family() -> None:
    from gambarkan.engine.optimize import resolve_options

    assert resolve_options("all-lossless", "cuda", "fp16", arch="sdxl").vae_fp32
    assert not resolve_options("all-lossless", "cuda", "fp16", arch="sd15").vae_fp32
    flux = resolve_options("all-lossless", "cuda", "fp16", arch="flux")
    assert flux.sdpa and not (flux.channels_last or flux.fused_qkv or flux.compile or flux.taesd_preview)


def test_plain_prompt_strips_a1111_syntax() -> None:
    from gambarkan.engine.generate import _family_notes, plain_prompt

    assert plain_prompt("a (red:1.3) cat BREAK [on a table] <lora:foo:0.5>") == ("a red cat on a table", True)
    assert plain_prompt("a red cat") == ("a red cat", False)
    notes = _family_notes(get_family("flux"), "a (cat:1.2)", "blurry", 2)
    assert len(notes) == 3 and "plain text" in notes[0] and "negative prompt" in notes[1]
    assert _family_notes(get_family("sdxl"), "a (cat:1.2)", "blurry", 2) == []
