"""``gambarkan batch`` end to end with the tiny model: outputs, manifest and history agree;
a malformed row is named and the rest run; a SIGKILL mid-run and a re-run finish the rest
with no finished row lost or made twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gambarkan.outputs.history import History
from gambarkan.outputs.png import read_parameters

COMMON = ["--steps", "2", "-W", "64", "-H", "64", "--no-translate", "--seed", "3", "-q"]
ROWS = [
    "kucing oranye",
    '--prompt "anjing di taman" --negative_prompt buram --seed 7',
    "burung hantu",
    "--prompt rumah --steps 999",  # malformed: out of range, named by its line number
    "--prompt kapal --cfg_scale 5",
    "gunung",
    "--prompt pantai --n_iter 2",
    "kucing oranye",  # the same row twice is made twice
    '--prompt "unclosed',  # malformed: bad quoting
    "{pagi|malam} hari",
]


def _manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "batch-manifest.jsonl").read_text().splitlines() if line.strip()]


def _pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png"))


def test_ten_rows_outputs_manifest_and_history_agree(cli, tiny_sd15_dir: Path, tmp_path: Path, isolated_home: Path) -> None:
    source = tmp_path / "prompts.txt"
    source.write_text("\n".join(ROWS) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = cli("batch", str(source), "-m", str(tiny_sd15_dir), *COMMON, "-o", str(out))
    assert proc.returncode == 2, proc.stderr
    assert "line 4: steps '999' is out of range" in proc.stderr and "line 9: cannot read the options" in proc.stderr
    assert "2 of 10 rows failed" in proc.stderr
    entries = _manifest(out)
    assert [e["line"] for e in entries] == [1, 2, 3, 5, 6, 7, 8, 10] and {e["status"] for e in entries} == {"done"}
    listed = [p for e in entries for p in e["images"]]
    assert sorted(map(Path, listed)) == _pngs(out) and len(listed) == 9  # row 7 makes two
    assert proc.stdout.split() == listed  # each row's images printed as it finished
    by_line = {e["line"]: e for e in entries}
    assert by_line[2]["seeds"] == [7] and by_line[7]["seeds"] == [3, 4]
    assert read_parameters(by_line[5]["images"][0])["CFG scale"] == 5
    assert by_line[1]["key"] != by_line[8]["key"] and by_line[1]["hash"] == by_line[8]["hash"]
    with History.open() as history:
        runs = history.search(limit=50)
    assert len(runs) == 8 and {r["status"] for r in runs} == {"done"}
    assert sorted(p for r in runs for p in r["paths"]) == sorted(listed)

    again = cli("batch", str(source), "-m", str(tiny_sd15_dir), *COMMON, "-o", str(out))
    assert again.returncode == 2 and "0 done, 8 already done, 2 failed" in again.stderr
    assert len(_manifest(out)) == 8 and len(_pngs(out)) == 9  # nothing made twice


def _run_and_kill(cmd: list[str], env: dict[str, str]) -> tuple[int, str]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("gambarkan-test-paused-at"):
                os.kill(proc.pid, signal.SIGKILL)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    reader.join(10)
    return code, "".join(lines)


@pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL is POSIX")
@pytest.mark.parametrize(("point", "kept", "adopted"), [pytest.param("sample:7", 3, 0, marks=pytest.mark.slow), ("write:3", 2, 1)],
                         ids=["inside-row-4", "after-png-3"])
def test_sigkill_then_rerun_finishes_the_rest_without_duplicates(cli, tiny_sd15_dir: Path, tmp_path: Path, isolated_home: Path,
                                                                 point: str, kept: int, adopted: int) -> None:  # fmt: skip
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps({"prompt": f"baris {i}", "seed": 100 + i}) + "\n" for i in range(5)), encoding="utf-8")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "gambarkan", "batch", str(source), "-m", str(tiny_sd15_dir), *COMMON, "-o", str(out)]
    code, stderr = _run_and_kill(cmd, {**os.environ, "GAMBARKAN_TEST_PAUSE_AT": point})
    assert code == -signal.SIGKILL, stderr[-2000:]
    before = _manifest(out)
    assert len(before) == kept and all(Path(p).is_file() for e in before for p in e["images"])
    cut = _pngs(out)
    assert len(cut) == kept + adopted  # after-png-3: row 3's PNG is whole, its manifest line not yet written

    proc = cli("batch", str(source), "-m", str(tiny_sd15_dir), *COMMON, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"{5 - kept - adopted} done, {kept + adopted} already done, 0 failed" in proc.stderr
    after = _manifest(out)
    assert after[:kept] == before  # finished rows untouched (append-only)
    assert sorted(e["key"] for e in after) == sorted({e["key"] for e in after}) and len(after) == 5
    assert sorted(e["seeds"][0] for e in after) == [100, 101, 102, 103, 104]
    pngs = _pngs(out)
    assert len(pngs) == 5 and set(cut) <= set(pngs)  # the cut row's PNG was adopted, not made again
    assert sorted(Path(p) for e in after for p in e["images"]) == pngs
    with History.open() as history:
        runs = history.search(limit=50)
    assert sum(r["status"] == "done" for r in runs) == 5 and sum(r["status"] == "interrupted" for r in runs) == 1 - adopted


def test_bad_inputs_are_one_line_exit_2(cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    unknown = tmp_path / "u.jsonl"
    unknown.write_text('{"prompt": "a", "colour": "red"}\n')
    for args, needle in [(["nope.txt"], "file not found: nope.txt"), ([str(empty)], "is empty"), ([str(unknown)], "unknown field 'colour'")]:
        proc = cli("batch", *args)
        assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_stdin_and_dry_run_load_no_model(cli, tmp_path: Path) -> None:
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "gambarkan", "batch", "-", "--dry-run", "--steps", "3", "-o", str(tmp_path / "o")],
                          input="kucing\n--prompt anjing --steps 0\n", capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 2
    assert "line 2: steps '0' is out of range" in proc.stderr and "2 rows: 0 already done, 1 to run (1 images), 1 invalid" in proc.stderr
    assert not (tmp_path / "o").exists()
