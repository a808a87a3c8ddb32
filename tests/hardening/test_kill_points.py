"""Point 8: every finished image is on disk, with its metadata and its history row, the moment
it is finished. Real CLI processes are SIGKILLed after image k of n (the Colab-disconnect
case) and in the middle of image k+1; images 1..k must all be there, whole, and named by the
run's history row. A cancelled image is never saved, and the row says where it stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gambarkan.outputs.history import History
from gambarkan.outputs.png import read_parameters

pytestmark = [pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL is POSIX"), pytest.mark.timeout(400)]

N = 4
SEED = 5
STEPS = 2
# name -> (pause point, images that must survive)
# (The suite runs two; `GAMBARKAN_HARDENING_ALL_KILLS=1` runs write:1..3 as well.)
KILLS = {"after-2": ("write:2", 2), "inside-3": (f"sample:{2 * STEPS + 1}", 2)}
if os.environ.get("GAMBARKAN_HARDENING_ALL_KILLS"):
    KILLS.update({"after-1": ("write:1", 1), "after-3": ("write:3", 3), "inside-1": ("sample:1", 0)})


def _run_and_kill(cmd: list[str], env: dict[str, str]) -> tuple[int, int, str]:
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
    return proc.pid, code, "".join(lines)


@pytest.fixture(scope="module")
def killed(tiny_sd15_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("kills")
    home = root / "home"
    env = {**os.environ, "GAMBARKAN_HOME": str(home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    results: dict[str, tuple[int, int, str]] = {}
    threads = []
    for name, (point, _keep) in KILLS.items():
        cmd = [sys.executable, "-m", "gambarkan", "generate", f"run {name}", "-m", str(tiny_sd15_dir), "--steps", str(STEPS),
               "-W", "64", "-H", "64", "--no-translate", "--seed", str(SEED), "-N", str(N), "-q", "-o", str(root / name)]  # fmt: skip
        thread = threading.Thread(target=lambda n=name, c=cmd, p=point: results.__setitem__(n, _run_and_kill(c, {**env, "GAMBARKAN_TEST_PAUSE_AT": p})))
        thread.start()
        threads.append(thread)
    started = time.monotonic()
    for thread in threads:
        thread.join(max(1.0, 350 - (time.monotonic() - started)))
    return {"root": root, "home": home, "results": results}


@pytest.mark.parametrize("name", sorted(KILLS))
def test_images_before_the_kill_are_whole_and_in_the_history(killed: dict, name: str) -> None:
    from PIL import Image

    pid, code, stderr = killed["results"][name]
    assert code == -signal.SIGKILL, stderr[-2000:]  # it really died at the chosen point
    keep = KILLS[name][1]
    pngs = sorted((killed["root"] / name).glob("*.png"))
    assert [p.name for p in pngs] == [f"{i + 1:05d}-{SEED + i}.png" for i in range(keep)]
    for i, path in enumerate(pngs):
        with Image.open(path) as image:
            image.load()  # a truncated file raises here
            assert image.size == (64, 64)
        params = read_parameters(path)
        assert params["Seed"] == SEED + i and params["Steps"] == STEPS and params["prompt"] == f"run {name}"
    with History(killed["home"] / "history.db") as history:
        (row,) = [r for r in history.search(limit=None) if r["pid"] == pid]
        assert row["status"] == "interrupted"
        assert [Path(p).name for p in row["paths"]] == [p.name for p in pngs]  # 1..k, nothing lost
        assert row["seeds"] == [SEED + i for i in range(keep)]
        assert history.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert not list((killed["root"] / name).glob("*.tmp"))


def test_cancel_mid_image_saves_only_finished_images_and_names_the_step(engine, tiny_sd15_dir: Path, tmp_path: Path) -> None:
    import threading as th

    from gambarkan.errors import CancelledError
    from gambarkan.request import GenerationRequest

    cancel = th.Event()

    def stop_in_image_two(progress) -> None:  # noqa: ANN001
        if progress.batch_index == 1 and progress.step == 1:
            cancel.set()

    request = GenerationRequest(prompt="kapal", model=str(tiny_sd15_dir), seed=SEED, steps=3, width=64, height=64, count=3, translate=False, out_dir=str(tmp_path / "out"))
    # cancel is seen at the next step's end: image 2 stops after its 2nd of 3 steps
    with pytest.raises(CancelledError, match="after step 2 of 3 of image 2"):
        engine.generate(request, on_progress=stop_in_image_two, cancel=cancel)
    assert [p.name for p in (tmp_path / "out").iterdir()] == [f"00001-{SEED}.png"]  # no partial image
    with History.open() as history:
        (row,) = history.search()
    assert row["status"] == "cancelled" and "after step 2 of 3 of image 2" in row["error"]
    assert [Path(p).name for p in row["paths"]] == [f"00001-{SEED}.png"]
