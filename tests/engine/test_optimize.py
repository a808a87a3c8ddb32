"""engine.optimize: each technique switches on and off, lossless ones match plain diffusers."""

from __future__ import annotations

import numpy as np
import pytest

from gambarkan.errors import InvalidRequestError

PROMPT = "a red cat on a sofa"


def plain(pipe, seed: int = 3, steps: int = 2, size: int = 64) -> np.ndarray:
    """The obvious diffusers call; float image in [0, 1]."""
    import torch

    out = pipe(PROMPT, num_inference_steps=steps, guidance_scale=7.0, width=size, height=size,
               generator=torch.Generator("cpu").manual_seed(seed), output_type="np")
    return out.images[0]


@pytest.fixture(scope="module")
def sd15():
    from gambarkan.testing import tiny_pipeline

    return tiny_pipeline("sd15")


@pytest.fixture(scope="module")
def sdxl():
    from gambarkan.testing import tiny_pipeline

    return tiny_pipeline("sdxl")


@pytest.fixture(scope="module")
def tiny_taesd():
    """A random AutoencoderTiny whose 2x scale matches the tiny VAE (32x32 latents -> 64x64)."""
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    return AutoencoderTiny(encoder_block_out_channels=(16, 16), decoder_block_out_channels=(16, 16),
                           num_encoder_blocks=(1, 1), num_decoder_blocks=(1, 1)).eval()


# --- spec parsing and resolution -----------------------------------------------------------


def test_spec_words_and_levels():
    from gambarkan.engine.optimize import parse_spec

    assert parse_spec("compile, -sdpa no-threads") == (None, {"compile": True, "sdpa": False, "threads": False})
    assert parse_spec("fast")[0] == "fast"
    assert parse_spec(None) == (None, {})


def test_unknown_technique_is_a_one_line_error_with_a_suggestion():
    from gambarkan.request import GenerationRequest

    with pytest.raises(InvalidRequestError) as info:
        GenerationRequest(prompt="x", optimize="chanels_last")
    assert "channels_last" in str(info.value) and "\n" not in str(info.value)


def test_defaults_are_lossless_and_unsupported_switches_are_forced_off(monkeypatch):
    from gambarkan.engine import optimize

    monkeypatch.delenv("GAMBARKAN_OPTIMIZE", raising=False)
    for device in ("cpu", "cuda", "mps"):
        assert optimize.resolve_options(None, device, "fp16" if device != "cpu" else "fp32").lossy == []
    on_cpu = optimize.resolve_options("compile,cuda_graphs,vae_fp32", "cpu")
    assert on_cpu.compile and not on_cpu.cuda_graphs and not on_cpu.vae_fp32
    on_gpu = optimize.resolve_options("compile,cuda_graphs,threads,bf16_autocast", "cuda", "fp16", arch="sdxl")
    assert on_gpu.cuda_graphs and on_gpu.vae_fp32 and not on_gpu.threads and not on_gpu.bf16_autocast
    assert not optimize.resolve_options(None, "cuda", "fp16", arch="sd15").vae_fp32  # SD 1.5's VAE is fine in fp16
    assert optimize.resolve_options("none", "cuda").enabled == []
    monkeypatch.setattr(optimize, "cpu_has_bf16", lambda: False)
    assert not optimize.resolve_options("fast", "cpu").bf16_autocast
    monkeypatch.setattr(optimize, "cpu_has_bf16", lambda: True)
    assert optimize.resolve_options(None, "cpu", fast=True).bf16_autocast
    assert not optimize.resolve_options("fast,-bf16_autocast", "cpu").bf16_autocast


def test_machine_defaults_come_from_the_environment(monkeypatch):
    from gambarkan.engine import optimize

    monkeypatch.setenv("GAMBARKAN_OPTIMIZE", "channels_last,-sdpa")
    opts = optimize.resolve_options(None, "cpu")
    assert opts.channels_last and not opts.sdpa
    assert optimize.resolve_options("sdpa", "cpu").sdpa  # the request wins


# --- lossless techniques ------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
@pytest.mark.parametrize("technique", ["channels_last", "fused_qkv"])
def test_lossless_technique_matches_plain_diffusers_and_switches_back(request, arch, technique):
    from gambarkan.engine import optimize

    pipe = request.getfixturevalue(arch)
    optimize.revert(pipe)
    reference = plain(pipe)
    applied = optimize.apply(pipe, optimize.Options(**{technique: True}))
    assert applied.options.enabled == [technique]
    np.testing.assert_allclose(plain(pipe), reference, atol=2e-3)
    optimize.revert(pipe)
    np.testing.assert_array_equal(plain(pipe), reference)


def test_switches_really_change_the_pipeline_and_back(sd15):
    import torch
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    from gambarkan.engine import optimize

    optimize.revert(sd15)
    assert optimize.sdpa_report(sd15)["other"] == 0  # diffusers already uses SDPA: the check says so
    for model in (sd15.unet, sd15.vae):
        model.set_attn_processor(AttnProcessor())  # as an old pipeline would come
    assert optimize.sdpa_report(sd15)["sdpa"] == 0
    applied = optimize.apply(sd15, optimize.Options(sdpa=True, fused_qkv=True, channels_last=True))
    assert any("classic attention to SDPA" in n for n in applied.notes)
    assert {type(p).__name__ for p in sd15.unet.attn_processors.values()} == {"FusedAttnProcessor2_0"}
    assert sd15.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    optimize.apply(sd15, optimize.Options(sdpa=True))
    assert optimize.sdpa_report(sd15)["other"] == 0
    assert not any(hasattr(m, "to_qkv") or hasattr(m, "to_kv") for m in sd15.unet.modules())
    assert sd15.unet.conv_in.weight.is_contiguous()
    optimize.revert(sd15)  # the classic processors come back: revert means "as loaded"
    assert optimize.sdpa_report(sd15)["sdpa"] == 0
    sd15.unet.set_attn_processor(AttnProcessor2_0())
    sd15.vae.set_attn_processor(AttnProcessor2_0())
    assert optimize.sdpa_report(sd15)["other"] == 0


def test_all_lossless_together_match_plain_diffusers(sd15):
    from gambarkan.engine import optimize

    optimize.revert(sd15)
    reference = plain(sd15)
    opts = optimize.resolve_options("all-lossless,-compile", "cpu")
    optimize.apply(sd15, opts)
    np.testing.assert_allclose(plain(sd15), reference, atol=2e-3)
    optimize.revert(sd15)


def test_compile_matches_and_is_reused_for_the_same_shape(sd15, monkeypatch, tmp_path):
    """The eager backend runs the same dynamo capture and guard cache as inductor, in seconds."""
    import os

    import torch

    from gambarkan.engine import optimize

    monkeypatch.setenv("GAMBARKAN_COMPILE_BACKEND", "eager")
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    optimize.revert(sd15)
    reference = plain(sd15)
    torch._dynamo.reset()
    first = optimize.apply(sd15, optimize.Options(compile=True), model_key="tiny", shape=(1, 64, 64), cache_dir=tmp_path)
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "torch-compile")
    assert first.compile_warm is False and type(sd15.unet).__name__ == "OptimizedModule"
    np.testing.assert_allclose(plain(sd15), reference, atol=2e-3)
    frames = torch._dynamo.utils.counters["frames"]["ok"]
    second = optimize.apply(sd15, optimize.Options(compile=True), model_key="tiny", shape=(1, 64, 64))
    assert second.compile_warm is True and second.notes == []
    np.testing.assert_allclose(plain(sd15), reference, atol=2e-3)
    assert torch._dynamo.utils.counters["frames"]["ok"] == frames  # nothing traced again
    optimize.revert(sd15)
    assert type(sd15.unet).__name__ == "UNet2DConditionModel"
    assert type(sd15.vae.decoder).__name__ == "Decoder"
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)


# --- lossy techniques and TAESD ------------------------------------------------------------


def test_taesd_preview_and_decode(sd15, tiny_taesd):
    from gambarkan.engine import optimize

    optimize.revert(sd15)
    reference = plain(sd15)
    optimize.set_taesd(sd15, tiny_taesd)
    try:
        import torch

        preview = optimize.preview_image(sd15, torch.randn(2, 4, 32, 32))
        assert preview.size == (64, 64)
        applied = optimize.apply(sd15, optimize.resolve_options("none,taesd_decode", "cpu"))
        assert applied.metadata == "taesd_decode"
        fast = plain(sd15)
        assert fast.shape == reference.shape and not np.allclose(fast, reference, atol=1e-2)
        optimize.revert(sd15)
        assert type(sd15.vae).__name__ == "AutoencoderKL"
        np.testing.assert_array_equal(plain(sd15), reference)
    finally:
        del sd15._gambarkan_taesd


def test_taesd_decode_is_dropped_with_a_note_when_no_taesd_is_found(sd15, monkeypatch):
    from gambarkan.engine import optimize

    monkeypatch.setenv("GAMBARKAN_TAESD", "/nonexistent")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    optimize.revert(sd15)
    applied = optimize.apply(sd15, optimize.Options(taesd_decode=True, taesd_preview=True))
    assert applied.options.enabled == ["taesd_preview"] and "taesd_decode off" in applied.notes[0]
    del sd15._gambarkan_taesd


def test_compile_and_taesd_switch_off_in_any_order(sd15, tiny_taesd, monkeypatch):
    from gambarkan.engine import optimize

    monkeypatch.setenv("GAMBARKAN_COMPILE_BACKEND", "eager")
    optimize.revert(sd15)
    kl_decoder = type(sd15.vae.decoder).__name__
    optimize.set_taesd(sd15, tiny_taesd)
    try:
        optimize.apply(sd15, optimize.Options(compile=True, taesd_decode=True))
        assert type(sd15.vae).__name__ == "AutoencoderTiny" and type(sd15.vae.decoder).__name__ == "OptimizedModule"
        optimize.apply(sd15, optimize.Options(compile=True))  # TAESD off, compile stays: KL decoder compiled
        assert type(sd15.vae).__name__ == "AutoencoderKL" and type(sd15.vae.decoder).__name__ == "OptimizedModule"
        assert type(tiny_taesd.decoder).__name__ == "DecoderTiny"
        optimize.apply(sd15, optimize.Options(compile=True, fused_qkv=True, channels_last=True))  # layout change: rewrap
        assert type(sd15.unet).__name__ == "OptimizedModule"
        optimize.revert(sd15)  # unfusing must see the plain modules' processor names
        assert type(sd15.vae.decoder).__name__ == kl_decoder and type(sd15.unet).__name__ == "UNet2DConditionModel"
        assert {type(p).__name__ for p in sd15.unet.attn_processors.values()} == {"AttnProcessor2_0"}
    finally:
        del sd15._gambarkan_taesd


def test_bf16_autocast_changes_little_and_is_reported(sd15):
    from gambarkan.engine import optimize

    optimize.revert(sd15)
    reference = plain(sd15)
    applied = optimize.apply(sd15, optimize.Options(bf16_autocast=True))
    with applied.context():
        out = plain(sd15)
    assert applied.metadata == "bf16_autocast"
    assert np.abs(out - reference).mean() < 0.05
    optimize.revert(sd15)


# --- through the engine --------------------------------------------------------------------


@pytest.fixture
def tiny_engine(sd15):
    from gambarkan.engine.generate import Engine
    from gambarkan.engine.optimize import revert

    revert(sd15)
    engine = Engine()
    engine.register("tiny", sd15)
    return engine


def engine_request(**extra):
    from gambarkan.request import GenerationRequest

    return GenerationRequest(prompt=PROMPT, model="tiny", steps=2, width=64, height=64, cfg=7.0, sampler="Euler",
                             seed=3, save=False, translate=False, device="cpu", dtype="fp32", **extra)


def test_engine_default_output_equals_plain_diffusers_and_reports(tiny_engine, sd15):
    import torch

    from gambarkan.engine.samplers import make_scheduler

    result = tiny_engine.generate(engine_request())
    sd15.scheduler = make_scheduler("Euler", dict(sd15.scheduler.config))
    expected = sd15(PROMPT, num_inference_steps=2, guidance_scale=7.0, width=64, height=64,
                    generator=torch.Generator("cpu").manual_seed(3)).images[0]
    assert np.abs(np.asarray(result.images[0].image, dtype=int) - np.asarray(expected, dtype=int)).max() <= 1
    assert "sdpa" in result.extra["optimizations"]
    assert "Optimizations" not in result.images[0].parameters  # lossless: nothing to declare
    for key in ("encode", "unet", "decode", "peak_ram_mb", "load", "sample"):
        assert key in result.timings
    assert result.timings["unet"] > 0 and result.timings["encode"] > 0 and result.timings["decode"] > 0
    assert result.timings["peak_ram_mb"] > 50


def test_engine_lossy_fast_is_written_into_the_png_and_switches_off_again(tiny_engine, sd15, tiny_taesd):
    from gambarkan.engine.optimize import set_taesd

    set_taesd(sd15, tiny_taesd)
    try:
        baseline = tiny_engine.generate(engine_request())
        fast = tiny_engine.generate(engine_request(fast=True))
        assert "taesd_decode" in fast.extra["optimizations"]
        assert "Optimizations: " in fast.images[0].parameters and "taesd_decode" in fast.images[0].parameters
        again = tiny_engine.generate(engine_request())
        assert "Optimizations" not in again.images[0].parameters
        assert np.array_equal(np.asarray(again.images[0].image), np.asarray(baseline.images[0].image))
    finally:
        del sd15._gambarkan_taesd


def test_engine_taesd_previews(tiny_engine, sd15, tiny_taesd):
    from gambarkan.engine.optimize import set_taesd

    set_taesd(sd15, tiny_taesd)
    previews = []
    try:
        tiny_engine.generate(engine_request(), on_progress=lambda p: previews.append(p.preview), preview_every=1)
    finally:
        del sd15._gambarkan_taesd
    assert len(previews) == 2 and all(p is not None and p.size == (64, 64) for p in previews)


def test_peak_memory_window_is_per_generation():
    from gambarkan.engine.optimize import peak_memory, reset_peaks

    if not reset_peaks("cpu"):
        pytest.skip("no /proc/self/clear_refs here")
    block = bytearray(300 * 2**20)
    block[:: 4096] = b"x" * len(block[:: 4096])
    high = peak_memory("cpu")["peak_ram_mb"]
    del block
    reset_peaks("cpu")
    assert peak_memory("cpu")["peak_ram_mb"] < high - 200


def test_vae_fp32_keeps_an_overflowing_fp16_vae_in_fp32_and_gives_it_back():
    """The GPU-only switch, exercised directly on a CPU copy of the tiny SDXL VAE."""
    import torch

    from gambarkan.engine import optimize
    from gambarkan.testing import tiny_pipeline

    pipe = tiny_pipeline("sdxl")
    pipe.vae.to(torch.float16)
    assert pipe.vae.config.force_upcast
    state, notes = optimize.State(), []
    optimize._vae_fp32(pipe, True, state, notes)
    assert pipe.vae.dtype == torch.float32 and notes
    latents = torch.randn(1, 4, 8, 8, dtype=torch.float16)  # what the fp16 U-Net hands over
    image = pipe.vae.decode(latents).sample
    assert image.dtype == torch.float32 and torch.isfinite(image).all()
    optimize._vae_fp32(pipe, False, state, notes)
    assert pipe.vae.dtype == torch.float16 and "vae_fp32_hook" not in state.originals


def test_openvino_unet_matches_and_reuses_its_conversion(tmp_path):
    pytest.importorskip("openvino")
    from gambarkan.engine import optimize
    from gambarkan.testing import tiny_pipeline

    pipe = tiny_pipeline("sd15")
    reference = plain(pipe)
    weights = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    opts = optimize.resolve_options("none,openvino", "cpu")
    assert opts.enabled == ["openvino"]
    optimize.apply(pipe, opts, model_key="tiny", shape=(1, 64, 64), cache_dir=tmp_path)
    assert type(pipe.unet).__name__ == "OpenVINOUNet"
    np.testing.assert_allclose(plain(pipe), reference, atol=2e-3)
    assert len(list((tmp_path / "openvino").glob("unet-*.xml"))) == 1  # saved: the next process skips conversion
    # No model folder behind this pipeline: its weights were saved once, then freed.
    assert pipe.unet.weights_dropped and len(list((tmp_path / "openvino").glob("unet-*-weights.safetensors"))) == 1
    optimize.revert(pipe)
    assert type(pipe.unet).__name__ == "UNet2DConditionModel"
    back = pipe.unet.state_dict()
    assert back.keys() == weights.keys() and all(np.array_equal(back[k].numpy(), weights[k].numpy()) for k in weights)
    np.testing.assert_array_equal(plain(pipe), reference)
    fast = optimize.apply(pipe, optimize.Options(openvino=True, bf16_autocast=True), model_key="tiny-bf16", shape=(1, 64, 64), cache_dir=tmp_path)
    with fast.context():  # converting inside bf16 autocast must still trace the fp32 graph
        assert np.abs(plain(pipe) - reference).mean() < 0.05
    optimize.revert(pipe)
    assert not optimize.resolve_options("openvino", "cuda").openvino
    assert not optimize.resolve_options("openvino", "cpu", arch="sdxl").openvino
