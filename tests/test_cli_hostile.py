"""Hostile input on the command line: each mistake is one ``gambarkan: error:`` line, exit 2, no traceback.

Found by a sweep of every command with bad values, empty strings, huge numbers, NULs,
folders for files and busy ports; each case here failed before its fix.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from gambarkan.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def assert_one_line_error(result, *needles: str) -> str:
    """Exit 2, no exception escaped, exactly one ``gambarkan: error:`` line on stderr; returns it."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gambarkan: error: "), lines
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["generate", "x", "--steps", "abc"], "'abc' is not a valid integer (see: gambarkan generate --help)"),
        (["generate", "x", "--device", "tpu"], "'tpu' is not one of"),
        (["--bogus"], "No such option '--bogus' (see: gambarkan --help)"),
        (["nosuchcommand"], "No such command 'nosuchcommand'"),
        (["info"], "Missing argument 'IMAGE'"),
        (["samplers", "extra"], "unexpected extra argument"),
        (["history", "--status", "bogus"], "'bogus' is not one of"),
        (["history", "export", "--format", "xml"], "'xml' is not one of"),
        (["bench", "--arch", "bogus", "--suite"], "'bogus' is not one of"),
    ],
)
def test_usage_mistakes_are_one_line(args: list[str], needle: str):
    assert_one_line_error(invoke(*args), needle)


def test_a_group_alone_still_shows_its_help():
    result = invoke("models")
    assert result.exit_code == 2 and "gambarkan models list" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["generate", "x", "--model", ""],
        ["generate", "x", "--preset", ""],
        ["generate", "x", "--translator", ""],
        ["generate", "x", "--out", ""],
        ["generate", "x", "--optimize", " "],
        ["generate", "--from", ""],
        ["generate", "x", "--lora-dir", ""],
        ["again", "1", "--model", ""],
        ["info", ""],
        ["translate", ""],
        ["translate", "kucing", "--translator", ""],
        ["loras", "--lora-dir", ""],
        ["models", "add", "mine", ""],
        ["models", "add", "mine", "owner/repo", "--revision", ""],
        ["history", "export", "--out", ""],
    ],
)
def test_empty_strings_are_refused_not_read_as_the_default(args: list[str], isolated_home: Path):
    assert_one_line_error(invoke(*args), "must not be empty")
    assert not (isolated_home / "outputs").exists()


@pytest.mark.parametrize(
    "args", [["history", "show", "99999999999999999999999"], ["history", "rm", "0"], ["again", "abc"], ["history", "show", "1.5"]]
)
def test_bad_history_ids(args: list[str]):
    assert_one_line_error(invoke(*args), "is not a history id")


@pytest.mark.parametrize(
    "args", [["info", "a\x00b.png"], ["history", "export", "--out", "x\x00y.csv"], ["generate", "--from", "a\x00b.png"]]
)
def test_nul_in_a_path_is_one_line(args: list[str]):
    assert_one_line_error(invoke(*args), "NUL character")


def test_debug_still_shows_the_exception_of_a_path_with_nul():
    result = invoke("--debug", "info", "a\x00b.png")
    assert isinstance(result.exception, ValueError)


def test_a_newline_in_a_name_stays_on_one_line():
    line = assert_one_line_error(invoke("models", "add", 'x"]\n[evil', "owner/repo"), "invalid package name")
    assert "\\n[evil" in line


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """A check that lets a bad value through fails the test instead of starting a server."""
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    import gambarkan.cli.serve as serve_cli

    def refuse(*args, **kwargs):
        raise AssertionError("the server was started")

    monkeypatch.setattr(serve_cli, "run_server", refuse)
    try:
        import gambarkan.ui.app as ui_app

        monkeypatch.setattr(ui_app, "launch", refuse)
    except ImportError:
        pass


@pytest.mark.parametrize(
    "args, needle",
    [
        (["models", "add", "mine", "owner/repo", "--width", "13"], "13 must be a multiple of 8"),
        (["bench", "--rounds", "0"], "0 is not in the range x>=1"),
        (["bench", "--steps", "0"], "0 is not in the range 1<=x<=150"),
        (["serve", "--port", "70000"], "70000 is not in the range 1<=x<=65535"),
        (["serve", "--port", "-1"], "is not in the range"),
        (["serve", "--shutdown-timeout", "nan"], "nan is not a number of seconds"),
        (["serve", "--shutdown-timeout", "-5"], "is not in the range"),
        (["ui", "--port", "70000"], "70000 is not in the range 1<=x<=65535"),
    ],
)
def test_bad_option_values_exit_2_not_1(no_server, args: list[str], needle: str):
    assert_one_line_error(invoke(*args), needle)


def test_serve_on_a_busy_port_says_so_before_starting(no_server):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert_one_line_error(invoke("serve", "--port", str(port)), f"cannot listen on 127.0.0.1:{port}", "--port")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--preset", ""], "must not be empty"),
        (["--preset", "animee"], "unknown preset 'animee' (did you mean 'anime'?"),
        (["--model", "./missing/model.safetensors"], "model file or folder not found"),
        (["--model", "not a model"], "unknown model 'not a model'"),
        (["--host", "nosuchhost.invalid", "--insecure"], "cannot listen on 'nosuchhost.invalid'"),
    ],
)
def test_serve_rejects_a_bad_default_model_or_host_before_starting(no_server, args: list[str], needle: str):
    assert_one_line_error(invoke("serve", "--port", "1", *args), needle)


def _bad_png(tmp_path: Path) -> Path:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: xyz, Size: 64x64")
    path = tmp_path / "damaged.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


def test_from_a_png_with_damaged_parameters_names_the_png(tmp_path: Path):
    png = _bad_png(tmp_path)
    assert_one_line_error(invoke("generate", "--from", str(png)), f"{png}: invalid seed", "--seed 42")
    # A bad value the user typed is the user's, not the PNG's.
    line = assert_one_line_error(invoke("generate", "--from", str(png), "--steps", "0"), "steps 0 is out of range")
    assert str(png) not in line


def _history_with_one_run() -> None:
    from gambarkan.outputs.history import History
    from gambarkan.request import GenerationRequest

    with History.open() as store:
        store.start(GenerationRequest(prompt="kucing", seed=5, steps=2, width=64, height=64), surface="test")


def test_export_into_a_pipe_writes_to_it_and_leaves_it_a_pipe(tmp_path: Path):
    _history_with_one_run()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = invoke("history", "export", "--out", str(fifo))
    reader.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert fifo.is_fifo()  # replacing it (as os.replace would) turns /dev/null into a plain file for root
    assert received and b'"original_prompt": "kucing"' in received[0]


def test_export_through_a_symlink_keeps_the_link(tmp_path: Path):
    _history_with_one_run()
    target = tmp_path / "real.jsonl"
    target.write_text("old")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    result = invoke("history", "export", "--out", str(link))
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and '"kucing"' in target.read_text()


@pytest.mark.parametrize("variable", ["GAMBARKAN_HOME", "GAMBARKAN_OUTPUT_DIR"])
def test_a_home_or_output_dir_that_is_a_file(variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    blocker = tmp_path / "afile"
    blocker.write_text("keep")
    monkeypatch.setenv(variable, str(blocker))
    assert_one_line_error(invoke("history"), f"{variable} points at a file, not a folder")
    assert blocker.read_text() == "keep"


def test_models_rm_without_an_answer_removes_nothing():
    result = CliRunner().invoke(main, ["models", "rm", "anime"], input="")
    assert result.exit_code == 2 and "pass --yes" in result.stderr
    assert "Aborted" not in result.output
