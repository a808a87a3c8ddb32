"""The sd-webui-controlnet API with the real ``webuiapi`` client against a live server."""

from __future__ import annotations

import base64
import io
import shutil

import httpx
import numpy as np
import pytest
from PIL import Image

API_KEY = "test-key-3f9a1c"  # the live_server fixture's key


def square() -> Image.Image:
    arr = np.zeros((64, 64, 3), np.uint8)
    arr[16:48, 16:48] = 255
    return Image.fromarray(arr)


def decode(b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


@pytest.fixture(scope="module")
def api(live_server, tiny_controlnet_dir):
    webuiapi = pytest.importorskip("webuiapi")
    # The server's owner adds ControlNets by putting them in GAMBARKAN_HOME/controlnet.
    shutil.copytree(tiny_controlnet_dir, live_server.settings.home / "controlnet" / "tiny-cn")
    client = webuiapi.WebUIApi(host="127.0.0.1", port=live_server.port, sampler="Euler", steps=2)
    client.session.headers["Authorization"] = f"Bearer {API_KEY}"
    return client


def test_lists_and_detect(api):
    assert "tiny-cn" in api.controlnet_model_list()
    assert "control_v11p_sd15_canny" in api.controlnet_model_list()
    modules = api.controlnet_module_list()
    assert {"none", "canny", "invert", "depth_midas"} <= set(modules)
    assert api.controlnet_version() >= 1
    found = api.controlnet_detect([square()], module="canny", processor_res=64, threshold_a=100, threshold_b=200)
    edges = np.asarray(found.image)[:, :, 0]  # webuiapi decodes the extension's {"images": [...]}
    assert edges.shape == (64, 64) and int((edges > 0).sum()) == 124


def test_txt2img_with_a_controlnet_unit(api):
    webuiapi = pytest.importorskip("webuiapi")
    common = dict(prompt="a cat", width=64, height=64, steps=2, seed=5, cfg_scale=7)
    plain = api.txt2img(**common)
    unit = webuiapi.ControlNetUnit(image=square(), module="canny", model="tiny-cn", weight=1.0, processor_res=64)
    controlled = api.txt2img(**common, controlnet_units=[unit])
    a, b = (np.asarray(r.image).astype(int) for r in (plain, controlled))
    assert a.shape == b.shape == (64, 64, 3) and np.abs(a - b).max() > 4
    assert 'ControlNet 0: "Module: canny, Model: tiny-cn, Weight: 1,' in controlled.info["infotexts"][0]
    off = webuiapi.ControlNetUnit(image=square(), module="canny", model="tiny-cn", enabled=False)
    again = api.txt2img(**common, controlnet_units=[off])
    assert np.array_equal(np.asarray(again.image), np.asarray(plain.image))  # a disabled unit changes nothing


def test_bad_units_are_422(live_server, api):
    client = httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120)
    image = base64.b64encode(_png(square())).decode()
    body = {"prompt": "a cat", "width": 64, "height": 64, "steps": 2}
    for unit, message in (
        ({"image": image, "module": "cany", "model": "tiny-cn"}, "unknown preprocessor"),
        ({"image": image, "module": "canny", "model": "/etc/passwd"}, "looks like a path"),
        ({"image": image, "module": "canny", "model": "tiny-cn", "weight": 3}, "out of range"),
        ({"image": "bm90IGFuIGltYWdl", "module": "canny", "model": "tiny-cn"}, "image"),
    ):
        response = client.post("/sdapi/v1/txt2img", json={**body, "alwayson_scripts": {"controlnet": {"args": [unit]}}})
        assert response.status_code == 422, response.text
        assert message in response.text
    response = client.post("/sdapi/v1/txt2img", json={**body, "alwayson_scripts": {"ADetailer": {"args": []}}})
    assert response.status_code == 422 and "ADetailer" in response.text
    response = client.post("/controlnet/detect", json={"controlnet_module": "canny", "controlnet_input_images": []})
    assert response.status_code == 422 and "No image selected" in response.text


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
