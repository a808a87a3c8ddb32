"""OpenAI image parameters through the real ``openai`` client (issue 19): output_format and
output_compression, quality -> steps, background, stream/partial_images, usage."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

openai = pytest.importorskip("openai")


@pytest.fixture(scope="module")
def client(live_server):
    return openai.OpenAI(base_url=live_server.url + "/v1", api_key=live_server.key, max_retries=0)


def _decode(b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


def test_output_format_and_compression(client, tmp_path):
    from gambarkan.outputs.png import read_parameters

    sizes = {}
    for fmt, compression in (("jpeg", 95), ("jpeg", 5), ("webp", 80), ("png", None)):
        extra = {} if compression is None else {"output_compression": compression}
        response = client.images.generate(prompt="a red house", size="64x64", response_format="b64_json", output_format=fmt,
                                          extra_body={"steps": 2, "seed": 3}, **extra)
        assert response.output_format == fmt
        raw = base64.b64decode(response.data[0].b64_json)
        image = _decode(response.data[0].b64_json)
        assert image.format == {"jpeg": "JPEG", "webp": "WEBP", "png": "PNG"}[fmt] and image.size == (64, 64)
        path = tmp_path / f"out-{fmt}-{compression}.{fmt}"
        path.write_bytes(raw)
        assert read_parameters(path)["Seed"] == 3  # A1111-style EXIF UserComment for JPEG/WebP
        sizes[(fmt, compression)] = len(raw)
    assert sizes[("jpeg", 5)] < sizes[("jpeg", 95)]
    assert response.usage is not None and response.usage.input_tokens == 3 and response.usage.total_tokens == 3


def test_quality_maps_to_steps(tmp_path):
    from fastapi.testclient import TestClient

    from gambarkan.server.app import create_app
    from gambarkan.server.state import ServerConfig
    from tests.server.conftest import InstantEngine, server_settings

    settings = server_settings(tmp_path / "home")
    engine = InstantEngine(settings)
    app = create_app(settings, engine, config=ServerConfig(model="instant-model"))
    with TestClient(app, base_url="http://127.0.0.1") as http:  # the real openai client over the in-process app (no 40-step runs)
        client = openai.OpenAI(base_url="http://127.0.0.1/v1", api_key="x", http_client=http, max_retries=0)
        for quality, steps in (("low", 12), ("medium", None), ("standard", None), ("auto", None), ("high", 40), ("hd", 40)):
            client.images.generate(prompt="a cat", size="64x64", response_format="b64_json", quality=quality)
            assert engine.calls[-1].steps == steps, quality
        client.images.generate(prompt="a cat", size="64x64", response_format="b64_json", quality="high", extra_body={"steps": 2})
        assert engine.calls[-1].steps == 2  # an explicit step count wins over the quality preset
        client.images.generate(prompt="a cat", size="64x64", response_format="b64_json", extra_body={"sampler": "Euler a", "scheduler": "beta"})
        assert engine.calls[-1].sampler == "Euler a Beta"


def test_transparent_background_is_refused_in_one_line(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.images.generate(prompt="a cat", size="64x64", background="transparent")
    assert "background 'transparent' is not supported" in str(info.value)
    ok = client.images.generate(prompt="a cat", size="64x64", response_format="b64_json", background="opaque", extra_body={"steps": 1})
    assert ok.background == "opaque"


def test_stream_sends_partial_images_then_the_final_one(client):
    stream = client.images.generate(prompt="a cat", size="64x64", stream=True, partial_images=2, output_format="png",
                                    extra_body={"steps": 6, "seed": 4})
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds == ["image_generation.partial_image", "image_generation.partial_image", "image_generation.completed"]
    assert [e.partial_image_index for e in events[:2]] == [0, 1]
    final = _decode(events[-1].b64_json)
    assert final.size == (64, 64) and "Seed: 4" in final.info["parameters"] and events[-1].usage.input_tokens == 2
    partial = _decode(events[0].b64_json)
    assert partial.size == (64, 64) and partial.tobytes() != final.tobytes()
