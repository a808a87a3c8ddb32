"""Other tools' images (tests/fixtures/foreign, see its README): ``info``, ``info --json`` and ``--from``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parents[1] / "fixtures" / "foreign"

# file -> what info --json must show (a subset), from the values written by make_fixtures.py
EXPECTED = {
    "fooocus-json.png": {"Tool": "Fooocus", "prompt": "a red fox in the snow", "Steps": 30, "Sampler": "DPM++ 2M SDE Karras",
                         "CFG scale": 4, "Seed": 4269513327, "width": 1152, "height": 896, "Model hash": "aeb7e9e689"},
    "fooocus-a1111.png": {"prompt": "a red fox in the snow", "Steps": 30, "Sampler": "DPM++ 2M SDE Karras", "Version": "Fooocus v2.3.1"},
    "comfyui-simple.png": {"Tool": "ComfyUI", "prompt": "beautiful scenery nature glass bottle landscape", "negative_prompt": "text, watermark",
                           "Steps": 20, "Sampler": "DPM++ 2M Karras", "CFG scale": 8, "Seed": 156680208700286, "width": 512, "height": 768},
    "comfyui-two-samplers.png": {"Tool": "ComfyUI", "negative_prompt": "lowres"},
    "invokeai-metadata.png": {"Tool": "InvokeAI", "prompt": "a lighthouse at dusk", "negative_prompt": "fog", "Steps": 25, "Sampler": "Euler a",
                              "CFG scale": 7.5, "Seed": 2718, "width": 512, "height": 640, "Model": "stable-diffusion-v1-5"},
    "invokeai-sd-metadata.png": {"Tool": "InvokeAI", "prompt": "a lighthouse at dusk", "negative_prompt": "fog", "Steps": 25, "Seed": 2718},
    "invokeai-dream.png": {"Tool": "InvokeAI", "prompt": "a lighthouse at dusk", "negative_prompt": "fog", "Steps": 25, "Sampler": "Euler a", "width": 512},
    "novelai.png": {"Tool": "NovelAI", "prompt": "1girl, cherry blossoms", "negative_prompt": "lowres, bad anatomy", "Steps": 28, "CFG scale": 5,
                    "Seed": 31337, "Sampler": "Euler a", "width": 1216, "height": 832},
    "a1111.jpg": {"prompt": "a blue bird", "Steps": 20, "Sampler": "Euler a", "Seed": 42, "Version": "v1.10.1"},
    "a1111.webp": {"prompt": "a blue bird", "Steps": 20, "Sampler": "Euler a", "Seed": 42},
    "a1111-stealth.png": {"prompt": "a green frog", "Steps": 12, "Sampler": "DPM++ 2M Karras", "Seed": 777, "Model": "frogmodel"},
}


def test_every_fixture_is_expected():
    assert {p.name for p in FIXTURES.iterdir() if p.suffix in (".png", ".jpg", ".webp")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_info_json_reads_other_tools(cli, name):
    run = cli("info", "--json", str(FIXTURES / name))
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    for key, value in EXPECTED[name].items():
        assert data.get(key) == value, (name, key, data)


def test_info_text_and_the_unreduced_graph_note(cli):
    run = cli("info", str(FIXTURES / "comfyui-two-samplers.png"))
    assert run.returncode == 0 and "made by ComfyUI" in run.stdout and "only its text is shown" in " ".join(run.stdout.split())
    run = cli("info", str(FIXTURES / "fooocus-json.png"))
    assert run.returncode == 0 and "Fooocus" in run.stdout and "junk" not in run.stdout
    assert "{" not in run.stdout.splitlines()[0]  # not the JSON read as A1111 text


@pytest.mark.parametrize("name", ["fooocus-json.png", "comfyui-simple.png", "novelai.png", "a1111-stealth.png"])
def test_from_reuses_other_tools_settings(cli, tiny_sd15_dir, tmp_path, name):
    from gambarkan.outputs.png import read_parameters

    run = cli("generate", "--from", str(FIXTURES / name), "-m", str(tiny_sd15_dir), "-W", "64", "-H", "64", "-s", "2", "-o", str(tmp_path), "--json")
    assert run.returncode == 0, run.stderr
    made = read_parameters(json.loads(run.stdout)["images"][0]["path"])
    expected = EXPECTED[name]
    assert made["prompt"] == expected["prompt"]
    assert made["Seed"] == expected["Seed"] % 2**32
    if "Sampler" in expected:
        assert made["Sampler"] == expected["Sampler"]
    if "Tool" in expected:
        assert f"settings read from a {expected['Tool']} image" in run.stderr
