"""The distilled packages: cepat-xl (SDXL-Lightning) and flux-schnell (GGUF FLUX), and a tiny Lightning-style run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gambarkan.request import GenerationRequest


def test_cepat_xl_uses_the_authors_settings() -> None:
    from gambarkan.models.catalog import get_package

    spec = get_package("cepat-xl")
    assert spec.kind == "sdxl" and spec.source == "ByteDance/SDXL-Lightning" and spec.files == ("sdxl_lightning_4step.safetensors",)
    assert spec.steps == 4 and spec.cfg <= 1 and spec.sampler == "Euler"
    assert spec.scheduler_settings() == {"timestep_spacing": "trailing"}
    assert "RAIL++" in spec.license and spec.vae_source == "madebyollin/sdxl-vae-fp16-fix"


def test_flux_schnell_is_a_quantized_package_that_names_its_files() -> None:
    from gambarkan.models import store
    from gambarkan.models.catalog import get_package

    spec = get_package("flux-schnell")
    assert spec.kind == "flux" and spec.license == "Apache-2.0" and spec.steps == 4
    assert not any(f.startswith("transformer/") and f.endswith(".safetensors") for f in spec.files)  # no 23.8 GB bf16 transformer
    parts = store._repo_parts(spec)
    assert parts[-1] == ("city96/FLUX.1-schnell-gguf", "main", ("flux1-schnell-Q4_K_S.gguf",))
    assert spec.download_mb > 15000 and spec.min_ram_mb <= 12700  # fits a free Colab's RAM


def test_flux_schnell_memory_mode_on_a_t4_is_offload_and_says_why() -> None:
    from gambarkan.engine.device import choose_memory_mode

    plan = choose_memory_mode("auto", "cuda", "flux", 1024, 1024, free_vram_mb=14_700, free_ram_mb=12_700)
    assert plan.mode == "low" and "flux at 1024x1024 needs about 8600 MB with model CPU offload (all on the GPU would need about 16000 MB)" in plan.describe()


def test_tiny_lightning_style_sdxl_runs_trailing_4_steps_without_cfg(engine, tiny_sdxl_dir: Path, tmp_path: Path) -> None:
    """A user package like cepat-xl over the tiny SDXL folder: the package's trailing timesteps win."""
    from gambarkan.config import Settings
    from gambarkan.engine.generate import Engine
    from gambarkan.models.catalog import add_user_package
    from gambarkan.outputs.png import read_parameters

    settings = Settings.from_env()
    add_user_package(settings, "tiny-lightning", str(tiny_sdxl_dir), sampler="Euler", steps=4, cfg=0.0, width=64, height=64,
                     scheduler_options="timestep_spacing=trailing")
    engine = Engine(settings)
    first = engine.generate(GenerationRequest(prompt="a cat", preset="tiny-lightning", seed=2, out_dir=str(tmp_path), translate=False))
    scheduler = next(iter(engine.cache._items.values())).pipe.scheduler
    assert scheduler.config.timestep_spacing == "trailing" and int(scheduler.timesteps[0]) == 999  # leading would start at 751
    other_negative = engine.generate(GenerationRequest(prompt="a cat", negative_prompt="dog", preset="tiny-lightning", seed=2, save=False, translate=False))
    assert np.array_equal(np.asarray(first.images[0].image), np.asarray(other_negative.images[0].image))  # CFG 0: no negative pass
    assert np.isfinite(np.asarray(first.images[0].image, dtype=float)).all() and np.asarray(first.images[0].image).std() > 0
    params = read_parameters(first.images[0].path)
    assert params["Steps"] == 4 and params["CFG scale"] == 0 and params["Preset"] == "tiny-lightning"


def test_testing_lightning_build_keeps_trailing_timesteps(engine, tiny_lightning_dir: Path) -> None:
    result = engine.generate(GenerationRequest(prompt="a cat", model=str(tiny_lightning_dir), sampler="Euler", steps=4, cfg=0.0,
                                               width=64, height=64, seed=1, save=False, translate=False))
    assert next(iter(engine.cache._items.values())).pipe.scheduler.config.timestep_spacing == "trailing"
    assert result.steps == 4 and np.asarray(result.images[0].image).std() > 0
