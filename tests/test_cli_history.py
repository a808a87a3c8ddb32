"""``gambarkan history`` / ``history show|export|rm`` / ``again`` and ``generate --from`` an A1111 PNG."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gambarkan.cli import main
from gambarkan.outputs.history import History
from gambarkan.request import GeneratedImage, GenerationRequest, GenerationResult

SMALL = ["--steps", "2", "-W", "64", "-H", "64", "--no-translate"]


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def add(prompt: str, english: str | None = None, paths: list[Path] = (), error: BaseException | None = None) -> int:
    request = GenerationRequest(prompt=prompt, seed=5, steps=2, width=64, height=64)
    result = GenerationResult(
        images=[GeneratedImage(None, 5 + i, i, p) for i, p in enumerate(paths)], prompt=english or prompt, negative_prompt="",
        original_prompt=prompt, original_negative_prompt="", model="tiny", model_hash="abcdef0123", sampler="Euler a",
        steps=2, cfg=7.0, width=64, height=64, clip_skip=1, seed=5, translator="glossary" if english else None, timings={"total": 2.0},
    )  # fmt: skip
    with History.open() as store:
        row_id = store.start(request, surface="test")
        store.finish(row_id, None if error else result, error)
    return row_id


@pytest.fixture
def fresh_default_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """``again`` uses the process-wide engine; give it this test's GAMBARKAN_HOME."""
    from gambarkan.engine import generate as gen

    monkeypatch.setattr(gen, "_default_engine", None)


def test_commands_are_light_to_load():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from gambarkan.cli import main\n"
        "for args in (['history', '--help'], ['history', 'show', '--help'], ['again', '--help']):\n"
        "    r = CliRunner().invoke(main, args)\n"
        "    assert r.exit_code == 0, r.output\n"
        "print(','.join(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))\n"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == ""


def test_history_lists_newest_first_and_searches_both_prompts():
    empty = invoke("history")
    assert empty.exit_code == 0 and "no generations yet" in empty.stdout
    add("kucing oranye tidur", "orange cat sleeping")
    add("anjing di pantai", "dog on the beach")
    add("gagal", error=RuntimeError("boom"))

    table = invoke("history")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    order = [next(i for i, line in enumerate(lines) if word in line) for word in ("gagal", "anjing", "kucing")]
    assert order == sorted(order)
    assert "→ orange cat sleeping" in table.stdout and "failed" in table.stdout and "64x64" in table.stdout

    found = json.loads(invoke("history", "--search", "beach", "--json").stdout)
    assert [r["original_prompt"] for r in found] == ["anjing di pantai"]
    assert [r["original_prompt"] for r in json.loads(invoke("history", "-s", "kucing", "--json").stdout)] == [
        "kucing oranye tidur"
    ]
    assert len(json.loads(invoke("history", "--limit", "2", "--json").stdout)) == 2
    assert [r["status"] for r in json.loads(invoke("history", "--status", "failed", "--json").stdout)] == ["failed"]
    none = invoke("history", "--search", "zebra")
    assert none.exit_code == 0 and "no generations match 'zebra'" in none.stdout


def test_show_prints_everything_and_marks_missing_files(tmp_path: Path):
    present, gone = tmp_path / "00001-5.png", tmp_path / "00002-6.png"
    present.write_bytes(b"png")
    row_id = add("kucing [lucu]", "cute cat", paths=[present, gone])
    run = invoke("history", "show", str(row_id))
    assert run.exit_code == 0, run.output
    out = " ".join(run.stdout.split())
    for text in (
        "kucing [lucu]",
        "English prompt cute cat",
        "glossary",
        "tiny [abcdef0123]",
        "Euler a, 2 steps, CFG 7, 64x64",
        "5, 6",
        f"gambarkan again {row_id}",
    ):
        assert text in out, text
    assert f"\n  {present}\n" in run.stdout and f"\n  {gone} (missing)\n" in run.stdout
    data = json.loads(invoke("history", "show", str(row_id), "--json").stdout)
    assert data["id"] == row_id and data["seeds"] == [5, 6] and data["request"]["prompt"] == "kucing [lucu]"


def test_unknown_id_is_one_line_and_exit_2():
    for args in (["history", "show", "42"], ["history", "rm", "42"], ["again", "42"]):
        run = invoke(*args)
        assert run.exit_code == 2, args
        assert (
            run.stderr.strip() == "gambarkan: error: no history entry with id 42 (see the ids with: gambarkan history)"
        )


def test_export_to_stdout_and_atomically_to_a_file(tmp_path: Path):
    a = add("satu", "one")
    b = add('dua, "tiga"')
    jsonl = invoke("history", "export")
    assert jsonl.exit_code == 0
    assert [json.loads(line)["id"] for line in jsonl.stdout.splitlines()] == [b, a]

    exports = tmp_path / "exports"
    exports.mkdir()
    out = exports / "riwayat.csv"
    run = invoke("history", "export", "--format", "csv", "--out", str(out))
    assert run.exit_code == 0, run.output
    assert "2 run(s) written to" in run.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["original_prompt"] for r in rows] == ['dua, "tiga"', "satu"] and rows[1]["prompt"] == "one"
    assert sorted(p.name for p in exports.iterdir()) == ["riwayat.csv"]  # no temporary file left

    run = invoke("history", "export", "--search", "satu", "--out", str(tmp_path / "one.jsonl"))
    assert [json.loads(line)["id"] for line in (tmp_path / "one.jsonl").read_text().splitlines()] == [a]

    bad = invoke("history", "export", "--out", str(tmp_path / "no-such-dir" / "x.jsonl"))
    assert bad.exit_code == 2 and "does not exist" in bad.stderr
    assert invoke("history", "export", "--format", "xml").exit_code == 2


def test_rm_deletes_rows_and_with_files_their_images(tmp_path: Path):
    kept_file, deleted_file = tmp_path / "00001-5.png", tmp_path / "00002-5.png"
    kept_file.write_bytes(b"a")
    deleted_file.write_bytes(b"b")
    a = add("a", paths=[kept_file])
    b = add("b", paths=[deleted_file])
    c = add("c")
    run = invoke("history", "rm", str(a))
    assert run.exit_code == 0 and run.stdout.strip() == "deleted 1 run"
    assert kept_file.exists()
    run = invoke("history", "rm", str(b), str(c), "--files")
    assert run.exit_code == 0 and run.stdout.strip() == "deleted 2 runs and 1 image file(s)"
    assert not deleted_file.exists() and kept_file.exists()
    assert json.loads(invoke("history", "--json").stdout) == []


def test_again_remakes_the_same_pixels_and_takes_changes(
    engine, tiny_sd15_dir: Path, tmp_path: Path, fresh_default_engine
):
    from PIL import Image

    first = engine.generate(
        GenerationRequest(
            prompt="a lighthouse",
            model=str(tiny_sd15_dir),
            seed=-1,
            out_dir=str(tmp_path / "a"),
            steps=2,
            width=64,
            height=64,
            translate=False,
        )
    )
    with History.open() as store:
        (row,) = store.search()

    run = invoke("again", str(row["id"]), "-o", str(tmp_path / "b"), "--json")
    assert run.exit_code == 0, run.output
    same = json.loads(run.stdout)
    assert same["seed"] == first.seed and same["steps"] == 2
    original = np.asarray(Image.open(first.paths[0]))
    assert np.array_equal(np.asarray(Image.open(same["images"][0]["path"])), original)

    run = invoke("again", str(row["id"]), "--seed", str(first.seed + 1), "--no-save", "--json")
    assert run.exit_code == 0, run.output
    changed = json.loads(run.stdout)
    assert changed["seed"] == first.seed + 1 and changed["images"][0]["path"] is None

    with History.open() as store:
        newest, middle, oldest = store.search()
    assert oldest["surface"] == "api" and middle["surface"] == newest["surface"] == "cli"
    assert middle["seed"] == first.seed and newest["seed"] == first.seed + 1


def test_again_rejects_bad_changes_in_one_line():
    row_id = add("x")
    run = invoke("again", str(row_id), "--steps", "0")
    assert run.exit_code == 2 and run.stderr.startswith("gambarkan: error: steps") and "Traceback" not in run.output


A1111_PARAMETERS = (
    "a lighthouse on a cliff, (sunset:1.2)\n"
    "Negative prompt: blurry\n"
    "Steps: 2, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 77, Size: 64x64, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1"
)


def test_generate_from_a_png_written_the_way_a1111_writes_it(tiny_sd15_dir: Path, tmp_path: Path, fresh_default_engine):
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", A1111_PARAMETERS)
    source = tmp_path / "a1111.png"
    Image.new("RGB", (64, 64)).save(source, pnginfo=info)
    run = invoke("generate", "--from", str(source), "-m", str(tiny_sd15_dir), "-o", str(tmp_path / "out"), "--json")
    assert run.exit_code == 0, run.output
    data = json.loads(run.stdout)
    assert data["prompt"] == "a lighthouse on a cliff, (sunset:1.2)" and data["negative_prompt"] == "blurry"
    assert (data["seed"], data["steps"], data["cfg"], data["sampler"], data["width"]) == (
        77,
        2,
        6.5,
        "DPM++ 2M Karras",
        64,
    )
    assert data["translator"] is None
    with History.open() as store:
        (row,) = store.search()
    assert row["seed"] == 77 and row["paths"] == [data["images"][0]["path"]]


def test_damaged_database_is_one_line_and_exit_2(isolated_home: Path):
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "history.db").write_bytes(b"not sqlite at all" * 64)
    run = invoke("history")
    assert run.exit_code == 2 and "Traceback" not in run.output
    assert run.stderr.startswith("gambarkan: error: the history database") and "move it away" in run.stderr
