"""Images as request values: every bad input is one clear InvalidRequestError, before any model loads."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gambarkan.errors import InvalidRequestError
from gambarkan.inputs import images as images_mod
from gambarkan.request import GenerationRequest


def png_bytes(image: Image.Image, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=save.pop("format", "PNG"), **save)
    return buffer.getvalue()


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    arr = (np.random.default_rng(0).random((32, 48, 3)) * 255).astype(np.uint8)
    path = tmp_path / "in.png"
    Image.fromarray(arr).save(path)
    return path


def request(**fields) -> GenerationRequest:
    return GenerationRequest(prompt="x", **fields)


def error_of(**fields) -> str:
    with pytest.raises(InvalidRequestError) as info:
        request(**fields)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_every_form_of_an_image_decodes_to_the_same_pixels(photo: Path):
    data = photo.read_bytes()
    forms = [str(photo), photo, data, base64.b64encode(data).decode(), "data:image/png;base64," + base64.b64encode(data).decode(), Image.open(photo)]
    decoded = [request(init_image=f).init_image for f in forms]
    for item in decoded:
        assert item.image.tobytes() == decoded[0].image.tobytes() and (item.width, item.height) == (48, 32)
    assert decoded[0].source == str(photo.resolve()) and decoded[2].source == "upload"


def test_history_records_where_the_image_came_from_not_the_pixels(photo: Path):
    req = request(init_image=str(photo), strength=0.4)
    dumped = req.model_dump()
    assert dumped["init_image"] == {"source": str(photo.resolve()), "sha256": req.init_image.sha256, "width": 48, "height": 32, "notes": ()}
    again = GenerationRequest(**json.loads(json.dumps(req.model_dump(mode="json"))))  # a history row, re-run
    assert again.init_image.image.tobytes() == req.init_image.image.tobytes()
    assert req.merged(seed=3).init_image is req.init_image  # merged keeps the decoded value
    # a stored upload carries its pixels only when asked (the server's job store)
    upload = request(init_image=photo.read_bytes())
    stored = upload.model_dump(mode="json", context={"pixels": True})
    assert GenerationRequest(**stored).init_image.sha256 == upload.init_image.sha256
    with pytest.raises(InvalidRequestError, match="uploaded, not a file"):
        GenerationRequest(**upload.model_dump(mode="json"))


def test_a_moved_or_changed_input_is_named_on_rerun(photo: Path):
    dumped = request(init_image=str(photo)).model_dump(mode="json")
    Image.new("RGB", (48, 32), "red").save(photo)
    with pytest.raises(InvalidRequestError, match="changed since that run"):
        GenerationRequest(**dumped)
    photo.unlink()
    with pytest.raises(InvalidRequestError, match="no longer there"):
        GenerationRequest(**dumped)


def test_exif_orientation_alpha_palette_cmyk_and_16_bit(tmp_path: Path):
    wide = Image.new("RGB", (40, 16), "blue")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    rotated = request(init_image=png_bytes(wide, format="JPEG", exif=exif)).init_image
    assert (rotated.width, rotated.height) == (16, 40)
    rgba = Image.new("RGBA", (16, 16), (255, 0, 0, 255))
    rgba.putpixel((0, 0), (0, 0, 0, 0))
    value = request(init_image=png_bytes(rgba)).init_image
    assert value.image.getpixel((0, 0)) == (255, 255, 255) and value.alpha.getpixel((0, 0)) == 0
    palette = Image.new("P", (8, 8), 3)
    assert request(init_image=png_bytes(palette)).init_image.image.mode == "RGB"
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))
    assert request(init_image=png_bytes(cmyk, format="JPEG")).init_image.image.getpixel((0, 0))[0] > 200
    deep = Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16))
    assert request(init_image=png_bytes(deep)).init_image.image.getpixel((0, 0)) == (255, 255, 255)


def test_animated_gif_uses_the_first_frame_and_says_so():
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "green")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    value = request(init_image=buffer.getvalue()).init_image
    assert value.notes == ("init_image is animated (2 frames): frame 1 is used",)
    assert value.image.getpixel((0, 0))[0] > 200


def test_mask_from_alpha_and_mask_checks(photo: Path):
    rgba = Image.new("RGBA", (16, 16), (0, 0, 255, 255))
    rgba.paste((0, 0, 0, 0), (4, 4, 8, 8))
    req = request(init_image=png_bytes(rgba), mask_from_alpha=True)
    assert req.task == "inpaint"
    mask = images_mod.effective_mask(req)
    assert mask.getpixel((5, 5)) == 255 and mask.getpixel((12, 12)) == 0
    assert "no transparent area" in error_of(init_image=str(photo), mask_from_alpha=True)
    assert "mask is 16x16 but the image is 48x32" in error_of(init_image=str(photo), mask=Image.new("L", (16, 16), 255))
    half = Image.new("L", (16, 16), 0)
    half.paste(255, (0, 0, 8, 16))
    resized = images_mod.effective_mask(request(init_image=str(photo), mask=half, mask_resize=True))
    assert resized.size == (48, 32) and resized.getpixel((2, 2)) == 255 and resized.getpixel((45, 2)) == 0
    assert "mask is empty" in error_of(init_image=str(photo), mask=Image.new("L", (48, 32), 0))
    assert "covers the whole image" in error_of(init_image=str(photo), mask=Image.new("L", (48, 32), 255))
    assert "mask is empty" in error_of(init_image=str(photo), mask=Image.new("L", (48, 32), 255), mask_invert=True)
    assert "needs an input image" in error_of(mask=Image.new("L", (48, 32), 255))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"init_image": "nope/missing.png"}, "init_image: file not found: nope/missing.png"),
        ({"init_image": "aGVsbG8gd29ybGQ="}, "init_image: not an image"),
        ({"init_image": "not base64 at all!"}, "not an image file and not valid base64"),
        ({"init_image": b"GIF89a" + b"\x00" * 5}, "init_image:"),
        ({"init_image": ""}, "the image is empty"),
        ({"strength": 0.5}, "strength needs an input image"),
        ({"hires": {"scale": 5}}, "hires.scale 5 is out of range (use a value from 1.0 to 4.0)"),
        ({"hires": {"upscaler": "lanczoz"}}, "unknown upscaler 'lanczoz' (did you mean 'Lanczos'? see: gambarkan upscale --list)"),
    ],
)
def test_bad_values_are_one_line(fields, expected):
    assert expected in error_of(**fields)


def test_bad_values_that_need_an_image(photo: Path):
    assert "strength 1.5 is out of range (use a value from 0.0 to 1.0)" in error_of(init_image=str(photo), strength=1.5)
    assert "not a multiple of 8 (add pixels so the canvas is a multiple of 8, e.g. 56x32)" in error_of(init_image=str(photo), outpaint="left=3")
    assert "unknown option 'outpaint.lft'" in error_of(init_image=str(photo), outpaint="lft=8")
    assert "the hires fix is for text-to-image" in error_of(init_image=str(photo), hires=2)


def test_truncated_file(photo: Path):
    data = photo.read_bytes()
    assert "damaged or truncated" in error_of(init_image=data[: len(data) // 2])


def test_decompression_bomb_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch):
    # PNGs whose pixels compress to almost nothing: only the header may be read.
    big, huge = png_bytes(Image.new("1", (5000, 5000))), png_bytes(Image.new("1", (20000, 20000)))
    assert len(huge) < 200_000
    calls = []
    monkeypatch.setattr(Image.Image, "load", lambda self, *a: calls.append(1) or None)
    assert "5000x5000 (25.0 MP), over the 16.8 MP limit (resize it to at most 4096x4096)" in error_of(init_image=big)
    assert "(decompression bomb); the limit is 16.8 MP" in error_of(init_image=huge)
    assert calls == []


def test_over_the_pixel_limit_names_the_size_to_resize_to(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(images_mod, "MAX_PIXELS", 64 * 64)
    text = error_of(init_image=png_bytes(Image.new("RGB", (128, 64))))
    assert "128x64" in text and "resize it to at most 90x45" in text


def test_not_a_regular_file(tmp_path: Path):
    assert "is not a regular file" in error_of(init_image=str(tmp_path))
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    assert "is not a regular file" in error_of(init_image=str(fifo))


def test_outpaint_and_choice_spellings(photo: Path):
    req = request(init_image=str(photo), outpaint="left=8,right=8", inpaint_area="Only masked", inpainting_fill="latent noise", resize_mode="crop-and-resize")
    assert req.outpaint.total == (16, 0) and req.inpaint_area == "only_masked" and req.inpainting_fill == "latent_noise"
    assert request(init_image=str(photo), outpaint=8).outpaint.total == (16, 16)
    assert request(hires=2).hires.scale == 2.0
    assert request(hires={"upscaler": "Latent (nearest-exact)"}).hires.upscaler == "latent-nearest-exact"
