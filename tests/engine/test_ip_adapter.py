"""IP-Adapter through the one engine, with a tiny random IP-Adapter and image encoder on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gambarkan.errors import InvalidRequestError, ModelLoadError, UnknownModelError
from gambarkan.request import GenerationRequest

BASE = dict(prompt="a cat", steps=2, width=64, height=64, seed=3, save=False, translate=False, style=False)


def noise(seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8))


def pixels(result) -> np.ndarray:
    return np.asarray(result.images[0].image).astype(int)


@pytest.fixture(scope="module")
def ip_engine():
    from gambarkan.engine.generate import Engine

    return Engine(history=False)


def reference(model: Path, image: Image.Image | None = None, **fields) -> dict:
    return {"image": image if image is not None else noise(), "model": str(model), **fields}


def test_scale_zero_equals_no_adapter_and_the_image_matters(ip_engine, tiny_sd15_dir, tiny_ip_adapter_dir):
    base = dict(BASE, model=str(tiny_sd15_dir))
    plain = pixels(ip_engine.generate(GenerationRequest(**base)))
    zero = pixels(ip_engine.generate(GenerationRequest(**base, ip_adapter=reference(tiny_ip_adapter_dir, scale=0.0))))
    full = ip_engine.generate(GenerationRequest(**base, ip_adapter=reference(tiny_ip_adapter_dir, scale=1.0)))
    other = pixels(ip_engine.generate(GenerationRequest(**base, ip_adapter=reference(tiny_ip_adapter_dir, Image.new("RGB", (64, 64), "red"), scale=1.0))))
    assert np.array_equal(zero, plain)
    assert np.abs(pixels(full) - plain).mean() > 2  # the reference image steers the result
    assert np.abs(pixels(full) - other).mean() > 2  # and another one steers it elsewhere
    fields = full.images[0].parameters
    assert "IP-Adapter: tiny-ip-adapter" in fields and "IP-Adapter scale: 1," in fields
    assert "IP-Adapter image hash: " in fields


def test_the_next_plain_request_is_as_from_a_fresh_engine(ip_engine, tiny_sd15_dir, tiny_ip_adapter_dir):
    from gambarkan.engine.generate import Engine

    base = dict(BASE, model=str(tiny_sd15_dir), seed=11)
    ip_engine.generate(GenerationRequest(**base, ip_adapter=reference(tiny_ip_adapter_dir, scale=1.5)))
    after = pixels(ip_engine.generate(GenerationRequest(**base)))
    fresh = pixels(Engine(history=False).generate(GenerationRequest(**base)))
    assert np.array_equal(after, fresh)
    pipe = next(iter(ip_engine.cache._items.values())).pipe
    assert pipe.image_encoder is None and pipe.feature_extractor is None and pipe.unet.encoder_hid_proj is None


def test_img2img_with_a_reference_image(ip_engine, tiny_sd15_dir, tiny_ip_adapter_dir):
    base = dict(BASE, model=str(tiny_sd15_dir), init_image=noise(5), strength=1.0)
    plain = pixels(ip_engine.generate(GenerationRequest(**base)))
    steered = pixels(ip_engine.generate(GenerationRequest(**base, ip_adapter=reference(tiny_ip_adapter_dir, scale=1.0))))
    assert np.abs(steered - plain).mean() > 2


def test_ip_adapter_requests_are_never_batched(tiny_ip_adapter_dir):
    from gambarkan.engine.batch import batch_key

    assert batch_key(GenerationRequest(**BASE)) is not None
    assert batch_key(GenerationRequest(**BASE, ip_adapter=reference(tiny_ip_adapter_dir))) is None


# --- bad input: one clear line -------------------------------------------------------------


@pytest.mark.parametrize("scale", [-0.1, 2.5])
def test_scale_out_of_range(scale, tiny_ip_adapter_dir):
    with pytest.raises(InvalidRequestError, match="scale"):
        GenerationRequest(**BASE, ip_adapter=reference(tiny_ip_adapter_dir, scale=scale))


def test_not_an_image(tmp_path, tiny_ip_adapter_dir):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    with pytest.raises(InvalidRequestError, match="IP-Adapter image"):
        GenerationRequest(**BASE, ip_adapter={"image": str(bad), "model": str(tiny_ip_adapter_dir)})


def test_missing_model_folder_fails_before_loading(ip_engine, tiny_sd15_dir, tmp_path):
    request = GenerationRequest(**BASE, model=str(tiny_sd15_dir), ip_adapter=reference(tmp_path / "nowhere"))
    with pytest.raises(UnknownModelError, match="does not exist") as caught:
        ip_engine.generate(request)
    assert "\n" not in str(caught.value)


def test_no_model_named_and_none_installed(ip_engine, tiny_sd15_dir):
    request = GenerationRequest(**BASE, model=str(tiny_sd15_dir), ip_adapter={"image": noise()})
    with pytest.raises(UnknownModelError, match="no IP-Adapter model is installed"):
        ip_engine.generate(request)


def test_a_folder_without_image_encoder(ip_engine, tiny_sd15_dir, tmp_path):
    folder = tmp_path / "half"
    folder.mkdir()
    (folder / "ip-adapter.safetensors").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="image_encoder"):
        ip_engine.generate(GenerationRequest(**BASE, model=str(tiny_sd15_dir), ip_adapter=reference(folder)))


def test_a_model_by_name_from_the_home_folder(ip_engine, tiny_sd15_dir, tiny_ip_adapter_dir, isolated_home):
    import shutil

    from gambarkan.config import Settings
    from gambarkan.engine.ip_adapter import ip_adapter_dir, resolve
    from gambarkan.inputs.ip_adapter import IPAdapterUnit

    home = ip_adapter_dir(Settings.from_env())
    shutil.copytree(tiny_ip_adapter_dir, home / "mine")
    plan = resolve(IPAdapterUnit(image=noise()), Settings.from_env())  # the only one: the default
    assert plan.name == "mine" and plan.weights.name == "ip-adapter.safetensors"
    with pytest.raises(UnknownModelError, match="did you mean 'mine'"):
        resolve(IPAdapterUnit(image=noise(), model="mien"), Settings.from_env())


def test_cli_option_parsing():
    from gambarkan.inputs.ip_adapter import parse_ip_adapter_option

    assert parse_ip_adapter_option("foto.png") == {"image": "foto.png"}
    assert parse_ip_adapter_option("foto.png:0.8") == {"image": "foto.png", "scale": 0.8}
    assert parse_ip_adapter_option("C:\\foto.png") == {"image": "C:\\foto.png"}
    assert parse_ip_adapter_option("C:\\foto.png:1.2") == {"image": "C:\\foto.png", "scale": 1.2}


def test_cli_ip_adapter(cli, tmp_path, tiny_sd15_dir, tiny_ip_adapter_dir):
    picture = tmp_path / "ref.png"
    noise().save(picture)
    run = cli("generate", "a cat", "-m", str(tiny_sd15_dir), "-s", "2", "-W", "64", "-H", "64", "--no-translate", "-o", str(tmp_path / "out"),
              "--ip-adapter", f"{picture}:0.8", "--ip-adapter-model", str(tiny_ip_adapter_dir))
    assert run.returncode == 0, run.stderr
    saved = next((tmp_path / "out").glob("*.png"))
    parameters = Image.open(saved).info["parameters"]
    assert "IP-Adapter: tiny-ip-adapter" in parameters and "IP-Adapter scale: 0.8" in parameters
    bad = cli("generate", "a cat", "-m", str(tiny_sd15_dir), "--ip-adapter", f"{picture}:3", "--ip-adapter-model", str(tiny_ip_adapter_dir), "-o", str(tmp_path / "bad"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "scale" in bad.stderr, bad.stderr
    assert not (tmp_path / "bad").exists()
    bad = cli("generate", "a cat", "-m", str(tiny_sd15_dir), "--ip-adapter-model", str(tiny_ip_adapter_dir))
    assert bad.returncode == 2 and "--ip-adapter-model needs a --ip-adapter" in bad.stderr
