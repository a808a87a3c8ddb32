"""The guides (docs/panduan.md, docs/guide.md) stay true: their runnable examples run, their links
resolve, and the options they mention exist.

Fenced blocks whose info string says ``runnable`` (```` ```bash runnable ````) are executed in
order in one scratch folder (command lines through the real click commands in-process), with the built-in packages overlaid by user packages that point
at a tiny random-weight model (64x64, 2 steps), so the commands are the real ones a reader
types. Identical blocks in the two guides run once.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDES = [ROOT / "docs" / "panduan.md", ROOT / "docs" / "guide.md"]
FENCE = re.compile(r"^```([\w-]*)([^\n]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^(#{1,6}) (.+?)\s*$", re.MULTILINE)
LINK = re.compile(r"\]\(([^)\s]+)\)")
TINY_PACKAGES = ("umum", "anime", "realistis", "cepat")


def blocks(path: Path) -> list[tuple[str, bool, str]]:
    """(language, runnable, code) of every fenced block, in order."""
    return [(m.group(1), "runnable" in m.group(2).split(), m.group(3)) for m in FENCE.finditer(path.read_text(encoding="utf-8"))]


def prose(path: Path) -> str:
    """The guide without its code blocks (headings inside code are not headings)."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    text = "".join(c for c in text if c in " -" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


@pytest.fixture
def docs_env(tiny_sd15_dir: Path, isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch working folder and environment where the guides' packages are the tiny model."""
    from gambarkan.config import Settings
    from gambarkan.models.catalog import add_user_package

    settings = Settings.from_env()
    for name in TINY_PACKAGES:
        add_user_package(settings, name, str(tiny_sd15_dir), width=64, height=64, steps=2)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("GAMBARKAN_TRANSLATOR", "glossary")
    monkeypatch.setenv("GAMBARKAN_OFFLINE", "1")
    import gambarkan.engine.generate as engine_module

    monkeypatch.setattr(engine_module, "_default_engine", None)  # a fresh engine reads this env
    return work


DOC_SERVER = "127.0.0.1:7860"


@contextlib.contextmanager
def api_server():
    """The real HTTP app (OpenAI/A1111 APIs over the engine) on a free local port, in a thread."""
    import socket
    import threading
    import time

    import uvicorn

    from gambarkan.server.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the API server did not start"
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)


def run_block(lang: str, code: str, where: str) -> str:
    """Run one block and return what it printed.

    Bash blocks hold plain ``gambarkan ...`` command lines; each goes through the real click
    command in this process (same parsing, same engine), which keeps the loaded tiny model
    between commands instead of paying a new Python start-up for each line.
    """
    if lang == "bash":
        from click.testing import CliRunner

        from gambarkan.cli import main

        printed = []
        for line in code.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            args = shlex.split(line, comments=True)
            assert args[0] == "gambarkan", f"{where}: runnable bash lines must be gambarkan commands: {line}"
            result = CliRunner().invoke(main, args[1:], catch_exceptions=False)
            assert result.exit_code == 0, f"{where}: `{line}` exited {result.exit_code}:\n{result.output}"
            printed.append(result.output)
        return "\n".join(printed)
    if lang == "python":
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, where, "exec"), {"__name__": "__main__"})  # noqa: S102 - the guide's own example
        return out.getvalue()
    raise AssertionError(f"{where}: runnable block in unsupported language {lang!r}")


def test_runnable_examples_run_and_make_what_they_say(docs_env: Path) -> None:
    from PIL import Image

    from gambarkan.outputs.png import read_parameters

    done: set[str] = set()
    outputs: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        address = None
        for guide in GUIDES:
            for i, (lang, runnable, code) in enumerate(blocks(guide)):
                if not runnable or code in done:
                    continue
                done.add(code)
                if DOC_SERVER in code:  # API examples talk to `gambarkan serve`: start the real app
                    address = address or stack.enter_context(api_server())
                    code = code.replace(DOC_SERVER, address)
                outputs[f"{guide.name}#{i}"] = run_block(lang, code, f"{guide.name} block {i}")
    assert len(done) >= 6, "the guides lost their runnable examples"

    made = {p.name: read_parameters(p) for p in Path("hasil").glob("*.png")}
    # "--seed 42 --out hasil" -> hasil/00001-42.png, as both guides promise
    assert made["00001-42.png"]["Seed"] == 42
    assert made["00001-42.png"]["prompt"].startswith(("kucing oranye", "orange cat"))
    # "-b 2 --seed 7" makes seeds 7 and 8; the preset is recorded
    assert {made["00002-7.png"]["Seed"], made["00003-8.png"]["Seed"]} == {7, 8}
    assert made["00002-7.png"]["Preset"] == "cepat"
    # explicit --steps/--cfg win over the package's values
    assert made["00004-3.png"]["Steps"] == 20 and float(made["00004-3.png"]["CFG scale"]) == 5.0
    # --from re-uses every setting but the seed
    again, first = made["00005-43.png"], made["00001-42.png"]
    assert again["Seed"] == 43
    assert {k: again[k] for k in ("prompt", "Steps", "Sampler", "Size")} == {k: first[k] for k in ("prompt", "Steps", "Sampler", "Size")}

    # "gambarkan again 1" makes history run 1 (the first image) again: same seed, same pixels
    assert made["00006-42.png"]["Seed"] == 42 and made["00006-42.png"]["prompt"] == first["prompt"]
    with Image.open("hasil/00001-42.png") as one, Image.open("hasil/00006-42.png") as two:
        assert list(one.convert("RGB").getdata()) == list(two.convert("RGB").getdata())

    # the OpenAI client example: a PNG at the package's size, with the translation it used
    for name in ("kucing.png", "cat.png"):
        with Image.open(name) as picture:
            assert picture.size == (64, 64) and "Preset: umum" in picture.info["parameters"]
    printed = "\n".join(outputs.values())
    assert "64x64 orange cat sleeping on a sofa" in printed
    assert re.search(r"Seed\s+42\b", printed)  # gambarkan info
    assert "umum" in printed  # gambarkan models list
    assert "42 2 " in printed  # read_parameters example: Seed, Steps, Sampler


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.name)
def test_links_and_anchors_resolve(guide: Path) -> None:
    text = prose(guide)
    anchors = {slug(h) for _, h in HEADING.findall(text)}
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        if path:
            assert (guide.parent / path).exists(), f"{guide.name}: broken link {target}"
        if anchor and not path:
            assert anchor in anchors, f"{guide.name}: no heading for #{anchor}"


def test_both_languages_cover_the_same_ground() -> None:
    id_text, en_text = (p.read_text(encoding="utf-8") for p in GUIDES)
    assert len(HEADING.findall(prose(GUIDES[0]))) == len(HEADING.findall(prose(GUIDES[1])))
    id_cmds = [c for lang, r, c in blocks(GUIDES[0]) if r and lang == "bash"]
    en_cmds = [c for lang, r, c in blocks(GUIDES[1]) if r and lang == "bash"]
    assert id_cmds == en_cmds
    for text in (id_text, en_text):
        for term in ("GAN", "U-Net", "VAE", "CLIP", "classifier-free guidance", "scheduler", "BREAK", "<lora:", "clip skip", "gambarkan doctor", "--offline", "seed + *i*"):
            assert term.lower() in text.lower(), term
    assert "bukan GAN" in id_text and "not a GAN" in en_text


def _generate_options() -> set[str]:
    from gambarkan.cli.generate import generate

    return {"--help", "-h"} | {opt for param in generate.params for opt in getattr(param, "opts", []) + getattr(param, "secondary_opts", [])}


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.name)
def test_generate_options_in_the_guide_exist(guide: Path) -> None:
    known = _generate_options()
    text = guide.read_text(encoding="utf-8")
    used = set()
    for line in text.splitlines():
        if "gambarkan generate" in line:
            used |= set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", line.split("gambarkan generate", 1)[1]))
    assert used, "no gambarkan generate examples found"
    assert used <= known, f"{guide.name} mentions options that do not exist: {sorted(used - known)}"


def test_api_examples_match_the_server(isolated_home) -> None:
    """curl and webuiapi examples (not run: they ask for 512x512) use real routes, fields and methods."""
    import inspect
    import json

    webuiapi = pytest.importorskip("webuiapi")
    from gambarkan.server.a1111 import Txt2ImgBody
    from gambarkan.server.app import create_app

    routes = set(create_app(start_workers=False).openapi()["paths"])
    for guide in GUIDES:
        for _lang, _, code in blocks(guide):
            for path in re.findall(r"http://127\.0\.0\.1:7860(/[\w/]+)", code):
                assert path in routes or path.rstrip("/") + "/images/generations" in routes, f"{guide.name}: no route {path}"
            body = re.search(r"-d '(\{.*?\})'", code, re.DOTALL)
            if body:
                fields = json.loads(body.group(1))
                assert set(fields) <= set(Txt2ImgBody.model_fields), f"{guide.name}: unknown A1111 fields"
                Txt2ImgBody(**fields)
            call = re.search(r"api\.txt2img\((.*?)\)\n", code, re.DOTALL)
            if call:
                names = set(re.findall(r"(\w+)=", call.group(1)))
                assert names <= set(inspect.signature(webuiapi.WebUIApi.txt2img).parameters), f"{guide.name}: {names}"
            if "WebUIApi(" in code:
                assert {"host", "port"} <= set(inspect.signature(webuiapi.WebUIApi.__init__).parameters)
