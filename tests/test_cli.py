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
        (["--steps", "500"], "out of range"),
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


def test_unwritable_output_folder_exits_2(cli, tiny_sd15_dir: Path, tmp_path: Path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("keep")
    run = cli("generate", "x", "-m", str(tiny_sd15_dir), "-o", str(blocker / "sub"), *SMALL)
    assert run.returncode == 2 and "cannot write" in run.stderr
    assert blocker.read_text() == "keep"


def test_debug_shows_the_traceback(cli):
    run = cli("--debug", "generate", "x", "-W", "500")
    assert run.returncode != 0 and "Traceback" in run.stderr


def test_samplers_lists_a1111_names(cli):
    run = cli("samplers", "--json")
    names = [s["name"] for s in json.loads(run.stdout)]
    for name in ("Euler", "Euler a", "DPM++ 2M", "DPM++ 2M Karras", "DPM++ SDE Karras", "DDIM", "UniPC", "LMS", "Heun", "DPM2", "LCM"):
        assert name in names


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
