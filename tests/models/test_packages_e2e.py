"""End to end: `models add` a tiny folder and a tiny single-file checkpoint, then generate with --preset;
a package that is not downloaded is pulled from a loopback fake Hub before generating."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gambarkan.cli import main
from gambarkan.outputs.png import read_parameters

SMALL = ["--steps", "2", "-W", "64", "-H", "64", "--no-translate", "--seed", "7", "--json"]


@pytest.fixture(scope="module")
def single_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny SD 1.x checkpoint in the original (LDM) layout, plus a folder with its configs."""
    from gambarkan.testing import save_tiny_single_file

    root = tmp_path_factory.mktemp("single")
    return save_tiny_single_file(root / "mini.safetensors", config_dir=root / "config"), root / "config"


@pytest.fixture(autouse=True)
def fresh_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI runs in-process here; its process-wide engine must see this test's settings."""
    from gambarkan.engine import generate

    monkeypatch.setattr(generate, "_default_engine", None)


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _json(result: Any) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_single_file_loads_offline_with_local_config(single_file: tuple[Path, Path]) -> None:
    import torch

    from gambarkan.engine.pipelines import load_model
    from gambarkan.testing import tiny_pipeline

    path, config = single_file
    loaded = load_model(str(path), "cpu", "fp32", offline=True, config=str(config))
    assert loaded.arch == "sd15"
    reference = tiny_pipeline("sd15", 0)
    for name in ("unet", "vae", "text_encoder"):
        ours, theirs = getattr(loaded.pipe, name).state_dict(), getattr(reference, name).state_dict()
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs), name


def test_add_folder_then_generate_with_preset(tiny_sd15_dir: Path, tmp_path: Path) -> None:
    added = _invoke("models", "add", "mini-folder", str(tiny_sd15_dir), "--sampler", "Euler a", "--steps", "3",
                    "--style", "watercolor", "--negative", "blurry")
    assert added.exit_code == 0, added.output
    listing = _invoke("models", "list", "--json")
    row = {r["name"]: r for r in _json(listing)["packages"]}["mini-folder"]
    assert row["installed"] and not row["builtin"] and row["kind"] == "sd15"

    run = _invoke("generate", "a cat", "--preset", "mini-folder", "-o", str(tmp_path / "out"), *SMALL)
    assert run.exit_code == 0, run.output
    data = _json(run)
    assert data["preset"] == "mini-folder" and data["sampler"] == "Euler a" and data["steps"] == 2
    assert data["prompt"] == "a cat, watercolor" and data["negative_prompt"] == "blurry"
    params = read_parameters(data["images"][0]["path"])
    assert params["Preset"] == "mini-folder" and params["Sampler"] == "Euler a"


def test_add_single_file_then_generate_with_preset(single_file: tuple[Path, Path], tiny_sd15_dir: Path, tmp_path: Path) -> None:
    path, config = single_file
    added = _invoke("models", "add", "mini-file", str(path), "--config", str(config), "--steps", "2")
    assert added.exit_code == 0, added.output
    info = _json(_invoke("models", "info", "mini-file", "--json"))
    assert info["source_type"] == "file" and info["kind"] == "sd15" and info["config"] == str(config)

    run = _invoke("generate", "a dog", "--preset", "mini-file", "--offline", "-o", str(tmp_path / "file"), *SMALL)
    assert run.exit_code == 0, run.output
    data = _json(run)
    assert data["preset"] == "mini-file"
    # The same weights as a diffusers folder give the same pixels: the checkpoint was read correctly.
    ref = _invoke("generate", "a dog", "--model", str(tiny_sd15_dir), "-o", str(tmp_path / "ref"), *SMALL)
    ref_data = _json(ref)
    from PIL import Image

    assert Image.open(data["images"][0]["path"]).tobytes() == Image.open(ref_data["images"][0]["path"]).tobytes()


def test_models_rm_of_a_user_package_keeps_the_users_files(tiny_sd15_dir: Path) -> None:
    assert _invoke("models", "add", "sementara", str(tiny_sd15_dir)).exit_code == 0
    removed = _invoke("models", "rm", "sementara", "--yes")
    assert removed.exit_code == 0, removed.output
    assert "sementara" not in _json(_invoke("models", "list", "--json"))["packages"]
    assert (tiny_sd15_dir / "model_index.json").is_file()
