"""img2img, inpaint, outpaint and the hires fix through the one Engine, on tiny models from disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gambarkan.engine import pipelines
from gambarkan.outputs.png import parse_parameters, read_parameters
from gambarkan.request import GenerationRequest

SMALL = dict(steps=4, translate=False, save=False, seed=5, sampler="Euler a")


@pytest.fixture(scope="module")
def loads() -> list[str]:
    return []


@pytest.fixture(scope="module")
def task_engine(loads: list[str]):
    """One engine for the module whose loads are counted (switching tasks must not load again)."""
    from gambarkan.engine.generate import Engine

    real = pipelines.load_model
    mp = pytest.MonkeyPatch()
    mp.setattr(pipelines, "load_model", lambda model, *a, **k: loads.append(model) or real(model, *a, **k))
    yield Engine(history=False)
    mp.undo()


def noise(seed: int, size: tuple[int, int] = (64, 64)) -> Image.Image:
    arr = (np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype(np.uint8)
    return Image.fromarray(arr)


def px(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def square_mask(box=(16, 16, 40, 40), size=(64, 64)) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def run(engine, model: Path, **fields) -> list[Image.Image]:
    return [i.image for i in engine.generate(GenerationRequest(prompt="a cat", model=str(model), **{**SMALL, **fields})).images]


def test_low_strength_keeps_more_of_the_input_than_high(task_engine, tiny_sd15_dir: Path):
    # Random weights make any output far from the input, so measure how much the input matters:
    # two different inputs give very different images at a low strength, nearly the same at 1.0.
    a, b = noise(1), noise(2)
    def spread(strength: float) -> float:
        return float(np.abs(px(run(task_engine, tiny_sd15_dir, init_image=a, strength=strength)[0]) - px(run(task_engine, tiny_sd15_dir, init_image=b, strength=strength)[0])).mean())
    low, high = spread(0.25), spread(1.0)
    assert low > 2 * high, (low, high)


def test_same_seed_same_pixels_and_no_second_load_across_tasks(task_engine, tiny_sd15_dir: Path, loads: list[str]):
    before = len(loads)

    def shares_modules(kind: str) -> bool:  # from_pipe: the very same modules, no copy of the weights
        loaded = next(iter(task_engine.cache._items.values()))
        pipe = loaded.extras["task_pipes"][kind]
        return pipe.unet is loaded.pipe.unet and pipe.vae is loaded.pipe.vae and pipe.text_encoder is loaded.pipe.text_encoder

    first = run(task_engine, tiny_sd15_dir, init_image=noise(3), strength=0.5)[0]
    assert shares_modules("img2img")  # right after it was made, before any later re-sync
    assert run(task_engine, tiny_sd15_dir, init_image=noise(3), strength=0.5)[0].tobytes() == first.tobytes()
    mask = square_mask()
    inpainted = run(task_engine, tiny_sd15_dir, init_image=noise(3), mask=mask)[0]
    assert shares_modules("inpaint")
    assert run(task_engine, tiny_sd15_dir, init_image=noise(3), mask=mask)[0].tobytes() == inpainted.tobytes()
    txt = run(task_engine, tiny_sd15_dir, width=64, height=64)[0]
    assert txt.tobytes() != first.tobytes()
    assert len(loads) - before <= 1 and loads.count(str(tiny_sd15_dir)) == 1  # loaded once for every task
    assert set(next(iter(task_engine.cache._items.values())).extras["task_pipes"]) == {"img2img", "inpaint"}


def test_inpaint_overlay_keeps_pixels_outside_the_mask(task_engine, tiny_sd15_dir: Path, tmp_path: Path):
    source, mask = noise(4), square_mask()
    inside = np.asarray(mask) > 0
    sharp = px(run(task_engine, tiny_sd15_dir, init_image=source, mask=mask, mask_blur=0)[0])
    assert (sharp[~inside] == px(source)[~inside]).all()
    assert np.abs(sharp[inside] - px(source)[inside]).mean() > 20
    result = task_engine.generate(GenerationRequest(prompt="a cat", model=str(tiny_sd15_dir), init_image=source, mask=mask, mask_blur=4, out_dir=str(tmp_path), **{**SMALL, "save": True}))
    blurred = px(result.images[0].image)
    far = np.ones((64, 64), bool)
    far[16 - 16 : 40 + 16, 16 - 16 : 40 + 16] = False  # beyond the blur's reach
    assert (blurred[far] == px(source)[far]).all()
    assert not (blurred[~inside] == px(source)[~inside]).all()  # the blurred edge blends
    params = read_parameters(result.images[0].path)
    assert params["Mask blur"] == 4 and params["Masked content"] == "original" and params["Denoising strength"] == 0.75
    assert len(params["Init image hash"]) == 10 and "Init image" not in params  # an in-memory image has no path


def test_only_masked_works_on_a_crop_and_keeps_the_rest(task_engine, tiny_sd15_dir: Path):
    source = noise(5, (96, 64))
    mask = square_mask((60, 8, 76, 24), (96, 64))
    out = run(task_engine, tiny_sd15_dir, init_image=source, mask=mask, mask_blur=0, inpaint_area="only_masked", inpaint_padding=8, width=64, height=64)[0]
    assert out.size == (96, 64)
    inside = np.asarray(mask) > 0
    assert (px(out)[~inside] == px(source)[~inside]).all()
    assert np.abs(px(out)[inside] - px(source)[inside]).mean() > 20


def test_outpaint_grows_the_canvas_exactly_and_keeps_the_original(task_engine, tiny_sd15_dir: Path):
    source = noise(6)
    out = run(task_engine, tiny_sd15_dir, init_image=source, outpaint="left=16,top=8,bottom=8")[0]
    assert out.size == (64 + 16, 64 + 16)
    assert (px(out)[8:72, 16:80] == px(source)).all()
    assert np.abs(px(out)[:, :16].astype(float) - px(out)[8:72, 16:17].mean()).mean() > 0  # the new strip was painted


def test_hires_fix_is_scale_times_base_and_round_trips_the_a1111_fields(task_engine, tiny_sd15_dir: Path, tmp_path: Path):
    from gambarkan.outputs.reuse import fields_from_parameters

    request = GenerationRequest(prompt="a cat", model=str(tiny_sd15_dir), width=64, height=64, hires={"scale": 2, "steps": 2, "strength": 0.5}, out_dir=str(tmp_path), **{**SMALL, "save": True})
    result = task_engine.generate(request)
    assert result.images[0].image.size == (128, 128)
    params = read_parameters(result.images[0].path)
    assert params["Size"] == "64x64" and params["Hires upscale"] == 2 and params["Hires steps"] == 2
    assert params["Hires upscaler"] == "Latent" and params["Denoising strength"] == 0.5
    again = GenerationRequest(**fields_from_parameters(parse_parameters(result.images[0].parameters)))
    assert again.hires == request.hires and again.init_image is None
    lanczos = run(task_engine, tiny_sd15_dir, width=64, height=64, hires={"scale": 1.5, "upscaler": "Lanczos", "steps": 2})[0]
    assert lanczos.size == (96, 96)


def test_img2img_and_inpaint_on_sdxl(task_engine, tiny_sdxl_dir: Path):
    source, mask = noise(7), square_mask()
    image = run(task_engine, tiny_sdxl_dir, init_image=source, strength=0.5)[0]
    assert image.size == (64, 64)
    inside = np.asarray(mask) > 0
    out = px(run(task_engine, tiny_sdxl_dir, init_image=source, mask=mask, mask_blur=0)[0])
    assert (out[~inside] == px(source)[~inside]).all() and np.abs(out[inside] - px(source)[inside]).mean() > 20


def test_from_png_reruns_an_img2img_while_its_input_is_there(task_engine, tiny_sd15_dir: Path, tmp_path: Path):
    from gambarkan.errors import InvalidRequestError
    from gambarkan.outputs.reuse import fields_from_png

    source = tmp_path / "in.png"
    noise(8).save(source)
    made = task_engine.generate(GenerationRequest(prompt="a cat", model=str(tiny_sd15_dir), init_image=str(source), strength=0.5, out_dir=str(tmp_path / "out"), **{**SMALL, "save": True}))
    png = made.images[0].path
    fields = fields_from_png(png)
    assert fields["init_image"]["source"] == str(source.resolve()) and fields["strength"] == 0.5
    again = task_engine.generate(GenerationRequest(**{**fields, "model": str(tiny_sd15_dir), "save": False}))
    assert again.images[0].image.tobytes() == made.images[0].image.tobytes()
    source.unlink()
    with pytest.raises(InvalidRequestError, match=r"the input image .*in.png is no longer there \(pass the image again"):
        GenerationRequest(**fields_from_png(png))
