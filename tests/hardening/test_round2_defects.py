"""Round 2 of outside testing (issue 17): each defect it found, through the surface that showed it.

``generate --from`` re-uses the model; text that is no valid Unicode is refused once, in the
request; a broken model_index.json, a FIFO, an unusable ``--out`` and a read-only history each
get one line with the true reason, before any work.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from gambarkan.cli import main
from gambarkan.outputs.png import read_parameters

SMALL = ["--steps", "2", "-W", "64", "-H", "64", "--no-translate", "--offline"]


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def one_error_line(result, *needles: str) -> str:
    """Exit 2, no exception escaped, one ``gambarkan: error:`` line holding every needle."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("gambarkan: note:")]
    assert len(lines) == 1 and lines[0].startswith("gambarkan: error: "), lines
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def fresh_default_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI uses the process-wide engine; give it this test's GAMBARKAN_HOME."""
    from gambarkan.engine import generate as gen

    monkeypatch.setattr(gen, "_default_engine", None)


def _png(tmp_path: Path, parameters: str, name: str = "x.png") -> Path:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", parameters)
    path = tmp_path / name
    Image.new("RGB", (64, 64)).save(path, pnginfo=info)
    return path


# --- 1. generate --from re-uses the model ------------------------------------------------------


def test_from_png_reuses_a_local_model_found_by_its_hash(tiny_sd15_dir: Path, tmp_path: Path, fresh_default_engine):
    """Made with -m FOLDER; --from without -m finds the folder again (PNG: folder name + hash)."""
    first = invoke("generate", "a red house", "-m", str(tiny_sd15_dir), "--seed", "5", "-o", str(tmp_path / "a"), "--json", *SMALL)
    assert first.exit_code == 0, first.output
    made = json.loads(first.stdout)
    params = read_parameters(made["images"][0]["path"])
    assert params["Model"] == tiny_sd15_dir.name and params["Model hash"]
    again = invoke("generate", "--from", made["images"][0]["path"], "-o", str(tmp_path / "b"), "--json", "--offline")
    assert again.exit_code == 0, again.output  # today: "'stable-diffusion-v1-5/...' is not downloaded" (package umum)
    remade = json.loads(again.stdout)
    assert remade["model"] == tiny_sd15_dir.name and remade["model_hash"] == made["model_hash"]
    from PIL import Image

    with Image.open(made["images"][0]["path"]) as a, Image.open(remade["images"][0]["path"]) as b:
        assert a.tobytes() == b.tobytes()


def test_from_png_with_an_unknown_model_says_so_and_how_to_pass_m(tmp_path: Path):
    png = _png(tmp_path, "a cat\nSteps: 2, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64, Model hash: 0123456789, Model: nowhere-v3")
    line = one_error_line(invoke("generate", "--from", str(png), "--offline"), "'nowhere-v3'", "0123456789", "not on this computer", "-m")
    assert str(png) in line


@pytest.mark.parametrize(
    "model, preset, expected",
    [
        ("stabilityai/sd-turbo", "", {"model": "cepat"}),  # a package's recorded name (its Hub id) -> the package
        ("anime", "", {"model": "anime"}),  # a package name
        ("someone/their-model", "", {"model": "someone/their-model"}),  # any other Hub id
        ("stable-diffusion-v1-5/stable-diffusion-v1-5", "umum", {}),  # the Preset already gives it
        ("someone/their-model", "umum", {"model": "someone/their-model"}),  # -m HUB -p umum: the model wins
    ],
)
def test_recorded_model_by_package_and_hub_id(model: str, preset: str, expected: dict[str, str], tmp_path: Path):
    from gambarkan.config import Settings
    from gambarkan.models.recorded import find_model
    from gambarkan.outputs.reuse import recorded_model

    recorded = recorded_model({"Model": model, "Preset": preset})
    assert recorded is not None
    assert find_model(recorded, Settings.from_env(), "x.png") == expected


def test_recorded_model_by_absolute_path(tiny_sd15_dir: Path):
    from gambarkan.config import Settings
    from gambarkan.models.recorded import find_model
    from gambarkan.outputs.reuse import recorded_model

    recorded = recorded_model({"Model": str(tiny_sd15_dir)})
    assert recorded is not None and find_model(recorded, Settings.from_env(), "x.png") == {"model": str(tiny_sd15_dir)}


def test_from_png_notes_what_it_cannot_remake(tmp_path: Path, isolated_home: Path):
    """A1111's VAE and a LoRA whose file here has another hash: said, not silently ignored."""
    from gambarkan.config import Settings
    from gambarkan.models.recorded import reuse_notes
    from gambarkan.outputs.reuse import recorded_model, recorded_networks
    import torch
    from safetensors.torch import save_file

    lora_dir = isolated_home / "loras"
    lora_dir.mkdir(parents=True)
    save_file({"lora_unet_x.lora_down.weight": torch.zeros(2, 2)}, str(lora_dir / "gaya.safetensors"))
    params = {"Model": "x/y", "VAE": "vae-ft-mse-840000", "Lora hashes": "gaya: 0123456789ab, lain: abcdefabcdef"}
    notes = reuse_notes(recorded_model(params), recorded_networks(params), Settings.from_env())
    assert any("VAE 'vae-ft-mse-840000'" in n for n in notes)
    assert any("LoRA 'gaya'" in n and "0123456789ab" in n for n in notes)
    assert not any("lain" in n for n in notes)  # a missing LoRA is generate's own clear error


def test_clip_skip_is_read_back():
    from gambarkan.outputs.png import parse_parameters
    from gambarkan.outputs.reuse import fields_from_parameters

    params = parse_parameters("a cat\nSteps: 2, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x96, Clip skip: 2")
    fields = fields_from_parameters(params)
    assert (fields["clip_skip"], fields["width"], fields["height"]) == (2, 64, 96)


# --- 3. lone surrogates / invalid UTF-8: refused once, in the request ----------------------------


@pytest.mark.parametrize("field", ["prompt", "negative_prompt", "model", "preset", "sampler", "translator", "out_dir"])
def test_request_refuses_lone_surrogates_in_every_text(field: str):
    from gambarkan.errors import InvalidRequestError
    from gambarkan.request import GenerationRequest

    values = {"prompt": "kucing", field: "\ud800kucing"}
    with pytest.raises(InvalidRequestError, match=f"{field} is not valid text"):
        GenerationRequest(**values)


def test_cli_refuses_an_invalid_utf8_prompt_before_loading_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import gambarkan.engine.pipelines as pipelines

    monkeypatch.setattr(pipelines, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    prompt = b"kucing \xff lucu".decode("utf-8", "surrogateescape")  # what Python makes of such argv bytes
    one_error_line(invoke("generate", prompt, "-o", str(tmp_path), *SMALL), "prompt is not valid text")


def test_job_api_refuses_a_lone_surrogate_with_422(tmp_path: Path):
    """POST /api/jobs used to answer 500: the job store's SQLite write raised UnicodeEncodeError."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from gambarkan.config import Settings
    from gambarkan.server.app import create_app
    from gambarkan.server.state import ServerConfig

    settings = Settings.from_env()
    app = create_app(settings, engine=object(), config=ServerConfig(model="tiny"), start_workers=False)
    client = TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)
    for path, body in (
        ("/api/jobs", '{"prompt": "\\ud800kucing"}'),
        ("/sdapi/v1/txt2img", '{"prompt": "\\ud800kucing"}'),
        ("/v1/images/generations", '{"prompt": "\\ud800kucing"}'),
        ("/api/jobs", '{"prompt": "kucing", "negative_prompt": "\\udfff"}'),
    ):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, (path, response.status_code, response.text)
        assert "not valid text" in response.text or "unicode" in response.text, (path, response.text)
    assert client.get("/api/jobs").json()["jobs"] == []


# --- 4. malformed model_index.json ----------------------------------------------------------------


@pytest.mark.parametrize(
    "index, needle",
    [("[1, 2]", "JSON list"), ('{"_class_name": ["StableDiffusionPipeline"]}', "_class_name"), ('{"_class_name": 7}', "_class_name"), ("{", "unreadable"), ("\"text\"", "JSON str")],
)
def test_malformed_model_index_is_not_a_diffusers_folder(index: str, needle: str, tmp_path: Path):
    folder = tmp_path / "broken-model"
    folder.mkdir()
    (folder / "model_index.json").write_text(index, encoding="utf-8")
    line = one_error_line(invoke("generate", "kucing", "-m", str(folder), "-o", str(tmp_path / "out"), *SMALL), "not a diffusers model folder", needle)
    assert "['" not in line  # a list class name is never printed raw


# --- 5. input files must be regular files -----------------------------------------------------------


def _fifo(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


def _within(seconds: float, func, fifo: Path):
    """Run ``func`` in a thread; fail (instead of hanging the suite) if it does not return in time."""
    box: dict[str, object] = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", func()), daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # the stuck reader gets end of file
        thread.join(5)
        pytest.fail(f"hung reading the FIFO {fifo}")
    return box["result"]


@pytest.mark.parametrize("command", ["info", "from", "model"])
def test_a_fifo_is_refused_not_read(command: str, tmp_path: Path):
    fifo = _fifo(tmp_path, "x.png" if command != "model" else "model.safetensors")
    args = {
        "info": ["info", str(fifo)],
        "from": ["generate", "--from", str(fifo), "--offline"],
        "model": ["generate", "kucing", "-m", str(fifo), "-o", str(tmp_path / "out"), *SMALL],
    }[command]
    one_error_line(_within(20, lambda: invoke(*args), fifo), "FIFO", "not a regular file")


def test_require_regular_file_names_what_it_is(tmp_path: Path):
    from gambarkan.errors import InvalidRequestError
    from gambarkan.paths import require_regular_file

    real = tmp_path / "a.png"
    real.write_bytes(b"x")
    assert require_regular_file(real) == real
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for path, needle in ((tmp_path, "is a folder"), (Path("/dev/null"), "is a device"), (loop, "symbolic link loop"), (tmp_path / "no", "not found")):
        with pytest.raises(InvalidRequestError, match=needle):
            require_regular_file(path, "image file")


# --- 6. --out is checked before any work, with the real reason ---------------------------------------


def _out_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    return {
        "device": (Path("/dev/full"), "is a device, not a folder"),
        "fifo": (_fifo(tmp_path, "pipe"), "is a FIFO (named pipe), not a folder"),
        "loop": (loop, "symbolic link loop"),
        "file": (a_file, "is a file, not a folder"),
        "under a file": (a_file / "sub", "not a folder"),
    }


@pytest.mark.parametrize("case", ["device", "fifo", "loop", "file", "under a file"])
def test_out_is_checked_before_the_model_loads(case: str, tiny_sd15_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_default_engine):
    import gambarkan.engine.pipelines as pipelines

    out, needle = _out_cases(tmp_path)[case]
    monkeypatch.setattr(pipelines, "load_model", lambda *a, **k: pytest.fail("the model was loaded before --out was checked"))
    line = one_error_line(invoke("generate", "kucing", "-m", str(tiny_sd15_dir), "-o", str(out), *SMALL), needle)
    assert "File exists" not in line


def test_read_only_out_says_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A read-only disk (EROFS) is named as such; simulated, since root may write anywhere."""
    import errno
    import tempfile

    from gambarkan.errors import DiskFullError
    from gambarkan.outputs.png import check_output_dir

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(DiskFullError, match="read-only file system"):
        check_output_dir(tmp_path)
    monkeypatch.undo()
    assert check_output_dir(tmp_path / "new" / "dir").is_dir()  # created, and nothing left in it
    assert list((tmp_path / "new" / "dir").iterdir()) == []


# --- 7. messages that say what is true ------------------------------------------------------------------


def test_pickle_lora_hint_does_not_offer_a_flag_generate_lacks(evil_files, tiny_sd15_dir: Path, tmp_path: Path, isolated_home: Path, fresh_default_engine):
    lora_dir = isolated_home / "loras"
    lora_dir.mkdir(parents=True)
    (lora_dir / "jahat.safetensors").write_bytes(evil_files["raw.safetensors"].read_bytes())
    line = one_error_line(invoke("generate", "kucing <lora:jahat:1>", "-m", str(tiny_sd15_dir), "-o", str(tmp_path / "o"), *SMALL), "pickle")
    assert "--allow-pickle" not in line and ".safetensors" in line


def test_models_add_still_offers_allow_pickle(evil_files):
    one_error_line(invoke("models", "add", "jahat", str(evil_files["raw.ckpt"])), "pickle", "--allow-pickle")


def test_read_only_history_is_called_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_home: Path):
    """SQLite opening history.db read-only (a read-only file or mount) must not read as "damaged"."""
    from gambarkan.outputs.history import History, HistoryError

    with History.open():
        pass
    real_connect = sqlite3.connect

    def read_only_connect(path, *args, **kwargs):
        kwargs.pop("uri", None)
        return real_connect(f"file:{path}?mode=ro", *args, uri=True, **kwargs)

    db = isolated_home / "history.db"
    with sqlite3.connect(db) as conn:  # a database in rollback mode, as one copied from elsewhere
        conn.execute("PRAGMA journal_mode = DELETE")
    monkeypatch.setattr(sqlite3, "connect", read_only_connect)
    with pytest.raises(HistoryError) as info:
        History.open()
    assert "read-only" in str(info.value) and "damaged" not in str(info.value)
    result = invoke("history")
    one_error_line(result, "read-only")
