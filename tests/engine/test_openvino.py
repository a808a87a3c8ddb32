"""The openvino technique: one U-Net in memory (PyTorch weights freed after compiling), prepared ahead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino")


def _request(model: str, **extra):
    from gambarkan.request import GenerationRequest

    return GenerationRequest(prompt="a red cat", model=model, steps=2, width=64, height=64, cfg=7.0, sampler="Euler",
                             seed=3, save=False, translate=False, device="cpu", dtype="fp32", **extra)


def _pixels(result) -> np.ndarray:
    return np.asarray(result.images[0].image, dtype=int)


def _cached_pipe(engine):
    """The one pipeline the engine's cache holds."""
    [loaded] = engine.cache._items.values()
    return loaded.pipe


def test_prepared_ir_is_reused_and_the_pytorch_unet_is_freed_after_compiling(tiny_sd15_dir: Path, caplog):
    from gambarkan.engine.generate import Engine
    from gambarkan.engine.openvino import prepare

    model = str(tiny_sd15_dir)
    with caplog.at_level("WARNING", logger="gambarkan.notice"):
        done = prepare(model, 64, 64)  # what `gambarkan models prepare MODEL --size 64x64` runs
    assert len(done["written"]) == 1 and Path(done["written"][0]).is_file() and not done["already_prepared"]
    converting = [r.getMessage() for r in caplog.records if "converting the U-Net for 64x64 (batch 2)" in r.getMessage()]
    assert converting and "later runs reuse it" in converting[0]  # announced before it starts, with an estimate
    caplog.clear()

    engine = Engine(history=False)  # a fresh engine loads the model again, like the next process
    plain = engine.generate(_request(model))
    first = engine.generate(_request(model, optimize="openvino"))
    wrapper = _cached_pipe(engine).unet
    assert type(wrapper).__name__ == "OpenVINOUNet" and wrapper.conversions == 0  # read from disk, not converted
    assert not [r for r in caplog.records if "converting" in r.getMessage()]
    weights = list(wrapper.torch_unet.parameters())
    assert weights and all(p.is_meta for p in weights) and wrapper.weights_dropped  # one U-Net in RAM, not two
    second = engine.generate(_request(model, optimize="openvino"))
    assert np.array_equal(_pixels(first), _pixels(second))
    assert np.abs(_pixels(first) - _pixels(plain)).max() <= 2  # lossless f32
    fast = engine.generate(_request(model, fast=True))
    assert "openvino" in fast.extra["optimizations"]  # --fast picks the prepared U-Net
    assert any("OpenVINO on (prepared for this size)" in n for n in fast.extra["notes"])
    back = engine.generate(_request(model))  # switched off: the weights come back from the model folder
    pipe = _cached_pipe(engine)
    assert type(pipe.unet).__name__ == "UNet2DConditionModel" and not any(p.is_meta for p in pipe.unet.parameters())
    assert np.array_equal(_pixels(back), _pixels(plain))
    assert prepare(model, 64, 64)["already_prepared"]


def test_models_prepare_refuses_a_bad_size_in_one_line(cli):
    run = cli("models", "prepare", "cepat", "--size", "512by512")
    assert run.returncode == 2 and "not WIDTHxHEIGHT" in run.stderr and "Traceback" not in run.stderr
