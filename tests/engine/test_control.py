"""ControlNet through the one engine, with a tiny real ControlNet made from the tiny U-Net."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gambarkan.errors import DependencyMissingError, InvalidRequestError, UnknownModelError
from gambarkan.request import GenerationRequest

BASE = dict(prompt="a cat", steps=2, width=64, height=64, seed=3, save=False, translate=False, style=False)


def square(size: int = 64, invert: bool = False) -> Image.Image:
    """Black picture with a white square (rows/columns 16..47), or the opposite."""
    arr = np.zeros((size, size, 3), np.uint8)
    arr[16:48, 16:48] = 255
    return Image.fromarray(255 - arr if invert else arr)


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0].image).astype(int)


# --- preprocessors -------------------------------------------------------------------------


def test_canny_of_a_square_is_its_outline():
    from gambarkan.inputs.preprocessors import make_control_map

    edges = np.asarray(make_control_map("canny", square(), resolution=64))[:, :, 0]
    assert set(np.unique(edges)) == {0, 255}
    ys, xs = np.nonzero(edges)
    # A one-pixel outline along the square's border (cv2.Canny marks the dark side, 15 and 47).
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (15, 47, 15, 47)
    assert edges[32, 32] == 0 and edges[5, 5] == 0  # inside and outside stay black
    assert edges[15, 32] == 255 and edges[32, 15] == 255 and edges[47, 32] == 255
    assert int(edges.sum() // 255) == 124


@pytest.mark.parametrize("name", ["none", "invert", "threshold", "scribble", "lineart", "tile", "blur_gaussian"])
def test_each_weight_free_preprocessor_makes_an_rgb_map(name):
    from gambarkan.inputs.preprocessors import make_control_map

    made = make_control_map(name, square(), resolution=64)
    assert made.mode == "RGB" and made.size == (64, 64)


def test_invert_and_threshold_are_exact():
    from gambarkan.inputs.preprocessors import make_control_map

    src = np.asarray(square())
    assert np.array_equal(np.asarray(make_control_map("invert", square(), 64)), 255 - src)
    assert np.array_equal(np.asarray(make_control_map("threshold", square(), 64)), src)


def test_unknown_preprocessor_and_bad_settings_are_one_line():
    from gambarkan.inputs.preprocessors import make_control_map

    with pytest.raises(InvalidRequestError, match="did you mean 'canny'"):
        make_control_map("cany", square())
    with pytest.raises(InvalidRequestError, match="out of range"):
        make_control_map("canny", square(), 64, threshold_a=400)
    with pytest.raises(DependencyMissingError, match="depth model"):
        make_control_map("depth", square())


def test_pixel_perfect_resolution_matches_the_extension():
    from gambarkan.inputs.preprocessors import pixel_perfect_resolution

    assert pixel_perfect_resolution((1024, 768), (512, 512), "crop") == 512
    assert pixel_perfect_resolution((1024, 768), (512, 512), "fill") == 384


# --- request values ------------------------------------------------------------------------


def test_control_unit_validation(tmp_path: Path):
    path = tmp_path / "sq.png"
    square().save(path)
    unit = GenerationRequest(**BASE, controlnet=[{"image": str(path), "preprocessor": "Canny", "control_mode": 2}]).controlnet[0]
    assert unit.preprocessor == "canny" and unit.control_mode == "controlnet" and unit.image.width == 64
    for bad, message in (
        ({"weight": 2.5}, "out of range"),
        ({"guidance_start": 0.6, "guidance_end": 0.4}, "before its end"),
        ({"preprocessor": "kany"}, "unknown preprocessor"),
    ):
        with pytest.raises(InvalidRequestError, match=message):
            GenerationRequest(**BASE, controlnet=[{"image": str(path), **bad}])
    with pytest.raises(InvalidRequestError, match="not an image|cannot be read|not a picture|image"):
        GenerationRequest(**BASE, controlnet=[{"image": b"not an image at all"}])


def test_cli_control_option_parsing():
    from gambarkan.inputs.control import parse_control_option

    assert parse_control_option("canny:foto.png") == {"preprocessor": "canny", "image": "foto.png"}
    assert parse_control_option("canny:C:/x/foto.png:0.5") == {"preprocessor": "canny", "image": "C:/x/foto.png", "weight": 0.5}
    assert parse_control_option("tile:a.png:1.2:0:0.5") == {
        "preprocessor": "tile", "image": "a.png", "weight": 1.2, "guidance_start": 0.0, "guidance_end": 0.5,
    }
    with pytest.raises(ValueError, match="PREPROCESSOR:IMAGE"):
        parse_control_option("canny")


# --- through the engine --------------------------------------------------------------------


@pytest.fixture(scope="module")
def control_engine():
    from gambarkan.engine.generate import Engine

    return Engine(history=False)


def unit(controlnet: Path, image: Image.Image | None = None, **fields) -> dict:
    return {"image": image or square(), "preprocessor": "canny", "model": str(controlnet), **fields}


def test_weight_zero_equals_no_control_and_the_image_matters(control_engine, tiny_sd15_dir, tiny_controlnet_dir):
    base = dict(BASE, model=str(tiny_sd15_dir))
    plain = pixels(control_engine.generate(GenerationRequest(**base)))
    zero = pixels(control_engine.generate(GenerationRequest(**base, controlnet=[unit(tiny_controlnet_dir, weight=0.0)])))
    full = control_engine.generate(GenerationRequest(**base, controlnet=[unit(tiny_controlnet_dir)]))
    other = pixels(control_engine.generate(GenerationRequest(**base, controlnet=[unit(tiny_controlnet_dir, image=square(invert=True), preprocessor="invert")])))
    assert np.array_equal(plain, zero)
    assert np.abs(pixels(full) - plain).max() > 8
    assert np.abs(pixels(full) - other).max() > 4  # another map, another picture
    again = pixels(control_engine.generate(GenerationRequest(**base, controlnet=[unit(tiny_controlnet_dir)])))
    assert np.array_equal(pixels(full), again)  # same seed, same control: same pixels
    # A plain request after control is the one a fresh engine makes: nothing stays attached.
    from gambarkan.engine.generate import Engine

    assert np.array_equal(pixels(control_engine.generate(GenerationRequest(**base))), pixels(Engine(history=False).generate(GenerationRequest(**base))))
    assert not hasattr(control_engine.cache, "controlnet")
    fields = full.images[0].parameters
    assert 'ControlNet 0: "Module: canny, Model: tiny-controlnet, Weight: 1,' in fields
    assert "Guidance End: 1" in fields and "Control Mode: Balanced" in fields


def test_guidance_end_stops_control_at_its_step(control_engine, tiny_sd15_dir, tiny_controlnet_dir):
    """With 4 steps and guidance 0-0.5, the ControlNet's scale is 1 for steps 1-2 and 0 after."""
    from diffusers import ControlNetModel

    scales: list[float] = []
    original = ControlNetModel.forward

    def spy(self, *args, **kwargs):
        scales.append(float(kwargs.get("conditioning_scale", args[4] if len(args) > 4 else 1.0)))
        return original(self, *args, **kwargs)

    ControlNetModel.forward = spy
    try:
        control_engine.generate(GenerationRequest(**dict(BASE, steps=4, model=str(tiny_sd15_dir)), controlnet=[unit(tiny_controlnet_dir, guidance_end=0.5)]))
    finally:
        ControlNetModel.forward = original
    assert scales == [1.0, 1.0, 0.0, 0.0]


def test_two_units_compose(control_engine, tiny_sd15_dir, tiny_controlnet_dir):
    base = dict(BASE, model=str(tiny_sd15_dir))
    one = pixels(control_engine.generate(GenerationRequest(**base, controlnet=[unit(tiny_controlnet_dir)])))
    two = control_engine.generate(GenerationRequest(**base, controlnet=[unit(tiny_controlnet_dir), unit(tiny_controlnet_dir, image=square(invert=True), preprocessor="invert", weight=0.7)]))
    assert np.abs(pixels(two) - one).max() > 4
    assert "ControlNet 1:" in two.images[0].parameters and "Weight: 0.7" in two.images[0].parameters


def test_img2img_with_control(control_engine, tiny_sd15_dir, tiny_controlnet_dir):
    base = dict(BASE, model=str(tiny_sd15_dir), init_image=square(invert=True), strength=0.6, steps=4)
    plain = pixels(control_engine.generate(GenerationRequest(**base)))
    controlled = pixels(control_engine.generate(GenerationRequest(**base, controlnet=[unit(tiny_controlnet_dir)])))
    assert controlled.shape == plain.shape and np.abs(controlled - plain).max() > 4


def test_controlnet_of_another_family_is_refused(control_engine, tiny_sdxl_dir, tiny_controlnet_dir):
    with pytest.raises(InvalidRequestError, match="does not fit this model"):
        control_engine.generate(GenerationRequest(**dict(BASE, model=str(tiny_sdxl_dir)), controlnet=[unit(tiny_controlnet_dir)]))
    with pytest.raises(InvalidRequestError, match="is for sd15 models"):
        control_engine.generate(GenerationRequest(**dict(BASE, model=str(tiny_sdxl_dir)), controlnet=[unit(tiny_controlnet_dir, model="control_v11p_sd15_canny")]))


def test_unknown_controlnet_names_the_choices(control_engine, tiny_sd15_dir):
    with pytest.raises(UnknownModelError, match="did you mean 'control_v11p_sd15_canny'"):
        control_engine.generate(GenerationRequest(**dict(BASE, model=str(tiny_sd15_dir)), controlnet=[unit(Path("x"), model="control_v11p_sd15_cany")]))


def test_catalog_controlnet_offline_is_one_line(control_engine, tiny_sd15_dir):
    from gambarkan.errors import NetworkError

    with pytest.raises(NetworkError, match="not downloaded"):
        control_engine.generate(GenerationRequest(**dict(BASE, model=str(tiny_sd15_dir), offline=True), controlnet=[{"image": square(), "preprocessor": "canny"}]))


def test_cli_control_and_control_map(cli, tmp_path, tiny_sd15_dir, tiny_controlnet_dir):
    picture = tmp_path / "sq.png"
    square().save(picture)
    made = cli("control-map", "canny", str(picture), "-o", str(tmp_path / "map.png"), "-r", "64")
    assert made.returncode == 0, made.stderr
    assert int((np.asarray(Image.open(tmp_path / "map.png"))[:, :, 0] > 0).sum()) == 124
    run = cli("generate", "a cat", "-m", str(tiny_sd15_dir), "-s", "2", "-W", "64", "-H", "64", "--no-translate", "-o", str(tmp_path / "out"),
              "--control", f"canny:{picture}:0.9", "--control-model", str(tiny_controlnet_dir), "--save-control-map", str(tmp_path / "maps"))
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "maps" / "control-0-canny.png").is_file()
    saved = next((tmp_path / "out").glob("*.png"))
    assert "ControlNet 0:" in Image.open(saved).info["parameters"] and "Weight: 0.9" in Image.open(saved).info["parameters"]
    bad = cli("generate", "a cat", "-m", str(tiny_sd15_dir), "--control", f"canny:{picture}:1:0.8:0.2")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "before its end" in bad.stderr
    bad = cli("control-map", "kany", str(picture), "-o", str(tmp_path / "x.png"))
    assert bad.returncode == 2 and "did you mean 'canny'" in bad.stderr and not (tmp_path / "x.png").exists()
