"""Images over HTTP: A1111 img2img/extras/png-info/upscalers and OpenAI edits/variations, with the real clients."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
from PIL import Image

API_KEY = "test-key-3f9a1c"  # the live_server fixture's key
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def noise(seed: int, size=(64, 64)) -> Image.Image:
    return Image.fromarray((np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype(np.uint8))


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def webui(live_server):
    webuiapi = pytest.importorskip("webuiapi")
    return webuiapi.WebUIApi(host="127.0.0.1", port=live_server.port, sampler="Euler a", steps=4, username="me", password=API_KEY)


def test_webuiapi_img2img_inpaints_only_the_mask(webui):
    source = noise(1)
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (8, 8, 40, 40))
    result = webui.img2img(images=[source], mask_image=mask, mask_blur=0, inpaint_full_res=False, prompt="a cat", seed=3, width=64, height=64)
    out = np.asarray(result.image.convert("RGB"))
    keep = np.asarray(mask) == 0
    assert result.image.size == (64, 64)
    assert (out[keep] == np.asarray(source)[keep]).all() and not (out[~keep] == np.asarray(source)[~keep]).all()
    assert result.info["denoising_strength"] == 0.75 and result.info["all_seeds"] == [3]
    assert "Denoising strength: 0.75" in result.image.info["parameters"] and "Mask blur: 0" in result.image.info["parameters"]
    assert result.parameters["init_images"] is None  # A1111 leaves the inputs out unless include_init_images
    plain = webui.img2img(images=[source], prompt="a cat", seed=3, width=64, height=64, denoising_strength=0.5)
    assert plain.image.size == (64, 64) and "Denoising strength: 0.5" in plain.image.info["parameters"]


def test_webuiapi_txt2img_hires_extras_and_png_info(webui):
    result = webui.txt2img(prompt="a red house", seed=5, width=64, height=64, enable_hr=True, hr_scale=2, hr_upscaler="Latent", hr_second_pass_steps=2, denoising_strength=0.5)
    assert result.image.size == (128, 128)
    parameters = result.image.info["parameters"]
    assert "Hires upscale: 2" in parameters and "Hires upscaler: Latent" in parameters and "Denoising strength: 0.5" in parameters
    info = webui.png_info(result.image)
    assert info.info.startswith("a red house") and info.parameters["Hires steps"] == 2 and info.parameters["Size-1"] == 64
    extra = webui.extra_single_image(image=result.image, upscaler_1="Lanczos", upscaling_resize=2)
    assert extra.image.size == (256, 256) and "Postprocess upscale by: 2" in extra.info
    batch = webui.extra_batch_images(images=[noise(2, (20, 10)), noise(3, (8, 8))], upscaler_1="Nearest", upscaling_resize=3)
    assert [i.size for i in batch.images] == [(60, 30), (24, 24)]
    empty = webui.png_info(noise(4))
    assert empty.info == ""


def test_upscaler_listings(live_server):
    with httpx.Client(base_url=live_server.url, headers=AUTH) as client:
        names = [u["name"] for u in client.get("/sdapi/v1/upscalers").json()]
        modes = [m["name"] for m in client.get("/sdapi/v1/latent-upscale-modes").json()]
    assert {"None", "Lanczos", "Nearest"} <= set(names) and "Latent" not in names
    assert modes[0] == "Latent" and "Latent (nearest-exact)" in modes


def test_openai_edit_repaints_the_transparent_area_and_variation(live_server):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=live_server.url + "/v1", api_key=API_KEY, max_retries=0)
    source = noise(5)
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (32, 0, 64, 64))  # the right half is transparent: repaint it
    edited = client.images.edit(image=("in.png", png(source), "image/png"), mask=("mask.png", png(mask), "image/png"), prompt="a cat",
                                response_format="b64_json", extra_body={"seed": 4, "steps": 4})
    out = np.asarray(Image.open(io.BytesIO(base64.b64decode(edited.data[0].b64_json))).convert("RGB"))
    assert out.shape == (64, 64, 3)
    assert (out[:, :16] == np.asarray(source)[:, :16]).all()  # beyond the mask blur, the left half is the input
    assert not (out[:, 36:] == np.asarray(source)[:, 36:]).all()
    variation = client.images.create_variation(image=("in.png", png(source), "image/png"), n=2, response_format="b64_json", extra_body={"steps": 4, "seed": 1})
    assert len(variation.data) == 2
    assert Image.open(io.BytesIO(base64.b64decode(variation.data[0].b64_json))).size == (64, 64)


def test_bad_image_requests_are_one_line(live_server):
    with httpx.Client(base_url=live_server.url, headers=AUTH) as client:
        no_image = client.post("/v1/images/edits", files={"prompt": (None, "a cat")})
        assert no_image.status_code == 422 and "no image part" in no_image.json()["error"]["message"]
        opaque = client.post("/v1/images/edits", files={"image": ("a.png", png(noise(1)), "image/png"), "mask": ("m.png", png(noise(2)), "image/png"), "prompt": (None, "x")})
        assert opaque.status_code == 422 and "mask has no transparent area" in opaque.json()["error"]["message"]
        json_body = client.post("/v1/images/edits", json={"prompt": "x"})
        assert json_body.status_code == 422 and "multipart/form-data" in json_body.json()["error"]["message"]
        path = client.post("/sdapi/v1/img2img", json={"prompt": "x", "init_images": ["/etc/hostname"]})
        assert path.status_code == 422 and "not valid base64" in path.json()["error"]["message"]
        big = client.post("/sdapi/v1/png-info", json={"image": base64.b64encode(png(Image.new("1", (5000, 5000)))).decode()})
        assert big.status_code == 422 and "over the 16.8 MP limit" in big.json()["error"]["message"]


def test_native_jobs_take_images_as_base64_never_as_server_paths(live_server, tmp_path):
    secret = tmp_path / "secret.png"
    noise(9).save(secret)
    with httpx.Client(base_url=live_server.url, headers=AUTH, timeout=120) as client:
        refused = client.post("/api/jobs", json={"prompt": "x", "init_image": str(secret)})
        assert refused.status_code == 422 and "not valid base64" in refused.json()["error"]["message"]
        refused = client.post("/api/jobs", json={"prompt": "x", "init_image": {"source": str(secret), "sha256": "0"}})
        assert refused.status_code == 422 and "must be image data over HTTP" in refused.json()["error"]["message"]
        made = client.post("/api/jobs", json={"prompt": "x", "init_image": base64.b64encode(png(noise(9))).decode(), "strength": 0.5, "steps": 4})
        assert made.status_code in (200, 201, 202), made.text
