"""The real ``gambarkan`` command in a subprocess: output, JSON, exit codes, messages."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from gambarkan.outputs.png import read_parameters

SMALL = ["--steps", "2", "-W", "64", "-H", "64", "--no-translate"]


def test_help_is_light_and_imports_no_torch():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from gambarkan.cli import main\n"
        "r = CliRunner().invoke(main, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "r = CliRunner().invoke(main, ['generate', '--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'gradio') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_generate_json_then_info(cli, tiny_sd15_dir: Path, tmp_path: Path):
    out_dir = tmp_path / "out"
    run = cli("generate", "a cat on a sofa", "-m", str(tiny_sd15_dir), "--seed", "42", "-b", "2", "-o", str(out_dir), "--json", *SMALL)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert [i["seed"] for i in data["images"]] == [42, 43]
    assert [Path(i["path"]).name for i in data["images"]] == ["00001-42.png", "00002-43.png"]
    for key in ("prompt", "negative_prompt", "model", "sampler", "steps", "cfg", "width", "height", "timings"):
        assert key in data
    assert data["steps"] == 2 and data["width"] == 64
    params = read_parameters(data["images"][1]["path"])
    assert params["Seed"] == 43 and params["prompt"] == "a cat on a sofa"

    info = cli("info", data["images"][0]["path"], "--json")
    assert info.returncode == 0
    assert json.loads(info.stdout)["Seed"] == 42


def test_generate_from_png_remakes_the_same_pixels(cli, tiny_sd15_dir: Path, tmp_path: Path):
    first = json.loads(cli("generate", "a house", "-m", str(tiny_sd15_dir), "--seed", "9", "-o", str(tmp_path / "a"), "--json", *SMALL).stdout)
    again = cli("generate", "--from", first["images"][0]["path"], "-m", str(tiny_sd15_dir), "-o", str(tmp_path / "b"), "--json")
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    from PIL import Image

    a = Image.open(first["images"][0]["path"]).tobytes()
    b = Image.open(second["images"][0]["path"]).tobytes()
    assert a == b and second["seed"] == 9


def _bad_file(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize(
    "args, message",
    [
        (["-W", "500"], "width 500 is not a multiple of 8 (try 496)"),
        (["--steps", "0"], "steps"),
        (["--steps", "500"], "steps 500 is out of range (use a value from 1 to 150)"),
        (["-W", "4096"], "width 4096 is out of range"),
        (["--cfg", "99"], "cfg"),
        (["--sampler", "Eulr a"], "unknown sampler 'Eulr a' (did you mean"),
        (["-m", "./missing/model.safetensors"], "model file or folder not found"),
        (["-m", "someone/not-downloaded", "--offline"], "not downloaded"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli, tmp_path: Path, args: list[str], message: str):
    run = cli("generate", "kucing", "-o", str(tmp_path), *args)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gambarkan: error: ")
    assert message in lines[0]
    assert not list(tmp_path.glob("*.png"))


def test_broken_and_unsafe_files_exit_2(cli, tmp_path: Path):
    pickle_file = _bad_file(tmp_path, "evil.ckpt", b"\x80\x04\x95\x00\x00\x00\x00\x00")
    truncated = _bad_file(tmp_path, "half.safetensors", struct.pack("<Q", 400) + b'{"a": {"dtype"')
    text_file = _bad_file(tmp_path, "notes.safetensors", b"just some text, not a model")
    for path, message in ((pickle_file, "pickle"), (truncated, "not a valid .safetensors"), (text_file, "not a valid .safetensors")):
        run = cli("generate", "x", "-m", path, *SMALL)
        assert run.returncode == 2, run.stderr
        assert message in run.stderr and "Traceback" not in run.stderr


def test_unsupported_file_and_unreachable_hub_for_a_single_file_exit_2(cli, tmp_path: Path):
    from gambarkan.testing import save_tiny_single_file

    image = _bad_file(tmp_path, "photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    run = cli("generate", "x", "-m", image, *SMALL)
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert "photo.png is not a model file gambarkan can load (unsupported file type '.png')" in run.stderr
    pickle_file = _bad_file(tmp_path, "old.ckpt", b"\x80\x04\x95" + b"\x00" * 16)
    run = cli("generate", "x", "-m", pickle_file, *SMALL)
    assert run.returncode == 2 and "pickle" in run.stderr and "--allow-pickle" not in run.stderr  # generate has no such flag
    # A single checkpoint file without a config needs the Hub once; that is not a corrupt file.
    single = save_tiny_single_file(tmp_path / "single.safetensors")
    run = cli("generate", "x", "-m", str(single), *SMALL, env={"HF_HUB_OFFLINE": "1"})
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "needs its model configs from the Hugging Face Hub, which cannot be reached" in run.stderr
    assert "gambarkan doctor" in run.stderr and "corrupt" not in run.stderr


def test_disk_full_exits_2_and_keeps_earlier_images(tiny_sd15_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import errno
    import os

    from click.testing import CliRunner

    from gambarkan.cli import main

    out = tmp_path / "out"
    args = ["generate", "a cat", "-m", str(tiny_sd15_dir), "-o", str(out), "--seed", "3", "-q", *SMALL]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    earlier = sorted(out.iterdir())
    before = [p.read_bytes() for p in earlier]

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    full = CliRunner().invoke(main, [*args, "-b", "2"])
    monkeypatch.undo()
    assert full.exit_code == 2
    lines = [line for line in full.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gambarkan: error: no space left")
    assert sorted(out.iterdir()) == earlier  # no partial or temporary file left
    assert [p.read_bytes() for p in earlier] == before


def test_info_reads_a_png_written_by_a1111(cli, tmp_path: Path):
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    text = (
        "a castle on a hill, (sunset:1.2)\nNegative prompt: blurry\n"
        "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5.5, Seed: 123456, Size: 512x768, "
        "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1"
    )
    info = PngInfo()
    info.add_text("parameters", text)
    path = tmp_path / "a1111.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    run = cli("info", str(path), "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["prompt"] == "a castle on a hill, (sunset:1.2)" and data["negative_prompt"] == "blurry"
    assert (data["Seed"], data["Steps"], data["CFG scale"], data["Sampler"]) == (123456, 30, 5.5, "DPM++ 2M Karras")
    assert (data["width"], data["height"]) == (512, 768)
    table = cli("info", str(path))
    assert table.returncode == 0 and "a castle on a hill" in table.stdout and "6ce0161689" in table.stdout


def test_unwritable_output_folder_exits_2(cli, tiny_sd15_dir: Path, tmp_path: Path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("keep")
    run = cli("generate", "x", "-m", str(tiny_sd15_dir), "-o", str(blocker / "sub"), *SMALL)
    assert run.returncode == 2 and "a part of the path is not a folder" in run.stderr  # said before any work
    assert blocker.read_text() == "keep"


def test_debug_shows_the_traceback(cli):
    run = cli("--debug", "generate", "x", "-W", "500")
    assert run.returncode != 0 and "Traceback" in run.stderr


def test_samplers_lists_a1111_names(cli):
    run = cli("samplers", "--json")
    entries = {s["name"]: s for s in json.loads(run.stdout)}
    for name in ("Euler", "Euler a", "DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE", "DDIM", "UniPC", "LMS", "Heun", "DPM2", "LCM"):
        assert name in entries
    assert entries["DPM++ 2M"]["default_schedule"] == "karras"  # A1111 >= 1.9: Automatic = Karras here
    table = cli("samplers").stdout
    for label in ("Karras", "Exponential", "SGM Uniform", "Align Your Steps", "Beta"):
        assert label in table


def test_info_on_a_png_without_parameters(cli, tmp_path: Path):
    from PIL import Image

    path = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    run = cli("info", str(path))
    assert run.returncode == 2 and "has no generation parameters" in run.stderr


def test_malformed_prompt_warns_once_and_still_generates(cli, tiny_sd15_dir: Path, tmp_path: Path):
    run = cli("generate", "(a cat:abc), [unclosed", "-m", str(tiny_sd15_dir), "-o", str(tmp_path), *SMALL)
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if line.startswith("gambarkan: warning:")]
    assert len(warnings) == 1
    assert len(list(tmp_path.glob("*.png"))) == 1
