"""Crash safety of outputs and history, with real processes killed by SIGKILL at chosen points.

Children run the real CLI on a tiny model and stop at a point named by the test-only
``GAMBARKAN_TEST_PAUSE_AT`` hook (see ``gambarkan.outputs.history.pause_point``); the test
kills them there. One more child stops inside ``os.fsync`` of the PNG's temporary file (in
the middle of the PNG write), and two children generate normally at the same time. All of
them share one GAMBARKAN_HOME; afterwards the database, the files and the rows are checked.
"""

from __future__ import annotations

import errno
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gambarkan.errors import DiskFullError, InvalidRequestError
from gambarkan.outputs.history import History
from gambarkan.outputs.png import read_parameters
from gambarkan.request import GenerationRequest

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL and /proc are Linux"),
    pytest.mark.timeout(600),
]

MARKER = "gambarkan-test-paused-at"
ARGS = ["--steps", "3", "-W", "64", "-H", "64", "--no-translate", "--seed", "11", "-q"]
# Stops in os.fsync of the PNG's temporary file: its bytes are written, the final name is not made yet.
PAUSE_IN_PNG_FSYNC = """
import os, sys, time
real_fsync = os.fsync
def fsync(fd):
    if os.readlink(f"/proc/self/fd/{fd}").endswith(".png.tmp"):
        sys.stderr.write("gambarkan-test-paused-at png-fsync\\n"); sys.stderr.flush(); time.sleep(120)
    return real_fsync(fd)
os.fsync = fsync
from gambarkan.cli import main
main(sys.argv[1:], prog_name="gambarkan")
"""
KILLED = ("sample", "write", "history", "png-fsync")


class Child:
    """One child process; a thread reads its stderr and SIGKILLs it at the pause marker."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], kill: bool) -> None:
        self.name, self.kill, self.paused, self.stderr = name, kill, False, []
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)
            if self.kill and line.startswith(MARKER):
                self.paused = True
                os.kill(self.proc.pid, signal.SIGKILL)

    def wait(self, deadline: float) -> int:
        try:
            return self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@pytest.fixture(scope="module")
def crashed(tiny_sd15_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("crash")
    home, out = root / "home", root / "out"
    base_env = {**os.environ, "GAMBARKAN_HOME": str(home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    base_env.pop("GAMBARKAN_TEST_PAUSE_AT", None)
    cli = [sys.executable, "-m", "gambarkan", "generate"]
    model = ["-m", str(tiny_sd15_dir)]
    children = [
        Child(
            "sample",
            cli + ["killed while sampling", *model, *ARGS, "-o", str(out / "sample")],
            {**base_env, "GAMBARKAN_TEST_PAUSE_AT": "sample"},
            True,
        ),
        Child(
            "write",
            cli + ["killed between two images", *model, *ARGS, "-b", "2", "-o", str(out / "write")],
            {**base_env, "GAMBARKAN_TEST_PAUSE_AT": "write"},
            True,
        ),
        Child(
            "history",
            cli + ["killed while recording", *model, *ARGS, "-o", str(out / "history")],
            {**base_env, "GAMBARKAN_TEST_PAUSE_AT": "history"},
            True,
        ),
        Child(
            "png-fsync",
            [
                sys.executable,
                "-c",
                PAUSE_IN_PNG_FSYNC,
                "generate",
                "killed while writing the png",
                *model,
                *ARGS,
                "-o",
                str(out / "png-fsync"),
            ],
            base_env,
            True,
        ),
        Child("ok-a", cli + ["first of two at once", *model, *ARGS, "-o", str(out / "shared")], base_env, False),
        Child("ok-b", cli + ["second of two at once", *model, *ARGS, "-o", str(out / "shared")], base_env, False),
    ]
    deadline = time.monotonic() + 400
    codes = {c.name: c.wait(deadline) for c in children}
    for c in children:
        c.reader.join(timeout=10)
    conn = sqlite3.connect(home / "history.db")  # raw look, before History marks anything interrupted
    raw = {pid: status for pid, status in conn.execute("SELECT pid, status FROM generations")}
    conn.close()
    return {
        "home": home,
        "out": out,
        "codes": codes,
        "children": {c.name: c for c in children},
        "pids": {c.name: c.proc.pid for c in children},
        "raw_status": raw,
        "tmp_before": sorted(p.name for p in out.rglob("*.tmp")),
    }


def rows_by_pid(crashed: dict) -> dict[int, dict]:
    with History(crashed["home"] / "history.db") as store:
        return {r["pid"]: r for r in store.search(limit=None)}


def test_each_child_died_at_its_point_and_the_others_finished(crashed: dict):
    children = crashed["children"]
    for name in KILLED:
        assert children[name].paused, (name, "".join(children[name].stderr)[-2000:])
        assert crashed["codes"][name] == -signal.SIGKILL
    assert crashed["codes"]["ok-a"] == crashed["codes"]["ok-b"] == 0, "".join(
        children["ok-a"].stderr + children["ok-b"].stderr
    )[-2000:]


def test_database_opens_cleanly(crashed: dict):
    conn = sqlite3.connect(crashed["home"] / "history.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert len(rows_by_pid(crashed)) == 6


def test_killed_runs_show_as_interrupted(crashed: dict):
    rows = rows_by_pid(crashed)
    for name in KILLED:
        pid = crashed["pids"][name]
        assert crashed["raw_status"][pid] == "running"  # as the dead process left it
        assert rows[pid]["status"] == "interrupted", name
        assert f"pid {pid}" in rows[pid]["error"]


def test_no_partial_png_and_no_row_points_at_a_missing_file(crashed: dict):
    from PIL import Image

    pngs = sorted(crashed["out"].rglob("*.png"))
    assert pngs
    for path in pngs:
        with Image.open(path) as img:
            img.load()  # a truncated file raises here
            assert img.size == (64, 64)
        assert read_parameters(path)["Seed"] in (11, 12)
    for row in rows_by_pid(crashed).values():
        for name in row["paths"]:
            assert Path(name).is_file(), (row["original_prompt"], name)
    assert not list(crashed["out"].rglob("*.tmp"))  # temporary files of dead runs are swept


def test_what_each_kill_point_leaves_behind(crashed: dict):
    out, rows, pids = crashed["out"], rows_by_pid(crashed), crashed["pids"]
    assert not list((out / "sample").glob("*.png"))
    # Killed between the two images of a batch: the first is complete, the second never started.
    assert [p.name for p in (out / "write").glob("*.png")] == ["00001-11.png"]
    assert [Path(p).name for p in rows[pids["write"]]["paths"]] == ["00001-11.png"]  # named the moment it was saved
    # Killed inside the transaction completing the row: it rolls back, the finished PNG stays.
    assert [p.name for p in (out / "history").glob("*.png")] == ["00001-11.png"]
    assert [Path(p).name for p in rows[pids["history"]]["paths"]] == ["00001-11.png"]  # named when saved
    assert rows[pids["history"]]["finished_at"] is None
    # Killed in the middle of the PNG write: only the hidden temporary file existed.
    assert not list((out / "png-fsync").glob("*.png"))
    assert crashed["tmp_before"] == [f".gambarkan-{pids['png-fsync']}-11.png.tmp"]


def test_two_cli_runs_at_once_both_get_their_rows(crashed: dict):
    rows = rows_by_pid(crashed)
    a, b = rows[crashed["pids"]["ok-a"]], rows[crashed["pids"]["ok-b"]]
    assert a["status"] == b["status"] == "done"
    assert a["original_prompt"] == "first of two at once" and b["original_prompt"] == "second of two at once"
    assert len(a["paths"]) == len(b["paths"]) == 1 and a["paths"] != b["paths"]
    assert sorted(p.name for p in (crashed["out"] / "shared").glob("*.png")) == ["00001-11.png", "00002-11.png"]


# -- full disk and unwritable folders, in process ----------------------------------------------

SMALL = {"steps": 2, "width": 64, "height": 64, "translate": False}


def test_disk_full_keeps_earlier_images_and_rows(
    engine, tiny_sd15_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    request = GenerationRequest(
        prompt="a boat", model=str(tiny_sd15_dir), seed=1, out_dir=str(tmp_path / "out"), **SMALL
    )
    earlier = engine.generate(request).paths[0]
    earlier_bytes = earlier.read_bytes()
    with History.open() as store:
        (earlier_row,) = store.search()

    real_fsync = os.fsync

    def full_disk(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".png.tmp"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(DiskFullError, match="no space left on the disk holding"):
        engine.generate(request.merged(seed=2))
    monkeypatch.setattr(os, "fsync", real_fsync)

    assert sorted(p.name for p in earlier.parent.iterdir()) == [earlier.name]  # nothing partial, no temp file
    assert earlier.read_bytes() == earlier_bytes
    with History.open() as store:
        failed, again = store.search()
        assert again == earlier_row
        assert failed["status"] == "failed" and "no space left" in failed["error"] and failed["paths"] == []
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert engine.generate(request.merged(seed=3)).paths[0].name == "00002-3.png"  # recovers once space is back


def test_unwritable_output_folder_is_a_clear_error(engine, tiny_sd15_dir: Path, tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(InvalidRequestError, match="a part of the path is not a folder"):  # before any work
        engine.generate(
            GenerationRequest(prompt="x", model=str(tiny_sd15_dir), seed=1, out_dir=str(blocker / "sub"), **SMALL)
        )
    with History.open() as store:
        (row,) = store.search()
    assert row["status"] == "failed" and "not a folder" in row["error"] and row["paths"] == []
    assert blocker.read_text() == "not a folder"
