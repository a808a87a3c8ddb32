"""Precision safety: dtype from the compute capability; NaN/black output retried once, never saved as a success."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gambarkan.errors import InvalidRequestError, NumericalError
from gambarkan.request import GenerationRequest


def test_dtype_follows_the_compute_capability() -> None:
    from gambarkan.engine.device import pick_dtype

    assert pick_dtype("cuda", "auto", capability=(7, 5)) == "fp16"  # T4: never bf16
    with pytest.raises(InvalidRequestError, match=r"compute capability 7\.5\) has no bf16"):
        pick_dtype("cuda", "bf16", capability=(7, 5))
    assert pick_dtype("cuda", "bf16", capability=(8, 0)) == "bf16"  # A100 / L4
    assert pick_dtype("cpu", "auto") == "fp32"


def _half_precision_overflow(module, inputs, output):
    """Like the stock SDXL VAE in fp16: the decoder overflows to NaN unless it runs in fp32."""
    import torch

    return output if output.dtype == torch.float32 else output * float("nan")


def _tiny_bf16(engine, name: str, hook) -> None:
    import torch

    from gambarkan.testing import tiny_pipeline

    pipe = tiny_pipeline("sd15").to(torch.bfloat16)
    pipe.vae.decoder.register_forward_hook(hook)
    engine.register(name, pipe, device="cpu", dtype="bf16")


def test_black_decode_is_retried_once_with_an_fp32_vae(engine, tmp_path: Path) -> None:
    from gambarkan.outputs.png import read_parameters

    _tiny_bf16(engine, "tiny-overflow", _half_precision_overflow)
    request = GenerationRequest(prompt="a cat", model="tiny-overflow", device="cpu", dtype="bf16", steps=2, width=64, height=64,
                                seed=4, out_dir=str(tmp_path), translate=False)
    result = engine.generate(request)
    pixels = np.asarray(result.images[0].image)
    assert pixels.max() > 0 and pixels.std() > 0  # a real picture, not the black one
    assert sum("retried once with the fp32 VAE" in n for n in result.extra["notes"]) == 1
    assert read_parameters(result.images[0].path)["Precision fix"] == "fp32 VAE"
    again = engine.generate(request.merged(save=False))  # the cached pipeline keeps the fix: no second retry
    assert "notes" not in again.extra or not any("retried" in n for n in again.extra["notes"])
    assert np.array_equal(pixels, np.asarray(again.images[0].image))


def test_output_that_stays_nan_is_an_error_and_nothing_is_saved(engine, tmp_path: Path) -> None:
    _tiny_bf16(engine, "tiny-broken", lambda module, inputs, output: output * float("nan"))
    with pytest.raises(NumericalError, match="still gave an all-black image") as info:
        engine.generate(GenerationRequest(prompt="a cat", model="tiny-broken", device="cpu", dtype="bf16", steps=2, width=64, height=64,
                                          seed=4, out_dir=str(tmp_path), translate=False))
    assert "--dtype fp32" in info.value.hint
    assert list(tmp_path.glob("*.png")) == []
