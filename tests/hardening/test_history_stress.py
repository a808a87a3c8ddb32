"""Point 9: the history under stress. A hypothesis state machine starts writer and reader
processes on one history.db, SIGKILLs random ones at random moments, and after every step
checks: no process ever saw "database is locked", ``PRAGMA integrity_check`` is ok, every
row has a known status, finished rows name exactly their images, and rows of killed writers
end up ``interrupted`` rather than ``running``.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from gambarkan.outputs.history import STATUSES, History

pytestmark = [pytest.mark.skipif(sys.platform != "linux", reason="fork and SIGKILL"), pytest.mark.timeout(300)]

LOCKED_EXIT = 3
OTHER_EXIT = 4


def _writer(path: str, runs: int, images: int, seed: int) -> None:
    """Add ``runs`` generations the way the engine does: start, one row update per image, finish."""
    from gambarkan.request import GenerationRequest

    try:
        for run in range(runs):
            request = GenerationRequest(prompt=f"kucing {seed}-{run}", seed=seed + run, steps=2, width=64, height=64)
            with History(path) as history:
                row = history.start(request, surface="stress")
            paths = []
            for i in range(images):
                paths.append(f"/tmp/stress/{seed}-{run}-{i}.png")
                with History(path) as history:
                    history.add_image(row, paths[-1], seed + run + i)
            result = SimpleNamespace(
                original_prompt=request.prompt, prompt=request.prompt, original_negative_prompt="", negative_prompt="",
                translator=None, model="tiny", model_hash=None, preset=None, sampler="Euler", steps=2, cfg=7.0,
                width=64, height=64, clip_skip=1, seed=seed + run, seeds=[seed + run + i for i in range(images)],
                paths=paths, timings={"total": 0.1},
            )  # fmt: skip
            with History(path) as history:
                history.finish(row, result)
    except sqlite3.OperationalError as exc:
        os._exit(LOCKED_EXIT if "locked" in str(exc) or "busy" in str(exc) else OTHER_EXIT)
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        os._exit(OTHER_EXIT)
    os._exit(0)


def _reader(path: str, rounds: int) -> None:
    """Search, get and export while others write (reads also mark dead runs interrupted)."""
    try:
        for _ in range(rounds):
            with History(path) as history:
                rows = history.search(limit=None)
                for row in rows[:5]:
                    history.get(row["id"])
                history.export("jsonl")
                history.export("csv")
    except sqlite3.OperationalError as exc:
        os._exit(LOCKED_EXIT if "locked" in str(exc) or "busy" in str(exc) else OTHER_EXIT)
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        os._exit(OTHER_EXIT)
    os._exit(0)


CTX = multiprocessing.get_context("fork")
STATS = {"machines": 0, "processes": 0, "kills": 0, "rows": 0}


class HistoryStress(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.dir = Path(tempfile.mkdtemp(prefix="gambarkan-stress-"))
        self.path = str(self.dir / "history.db")
        History(self.path).close()  # create the schema once, as the first run would
        self.procs: list[multiprocessing.Process] = []
        self.killed: set[int] = set()
        STATS["machines"] += 1

    def _spawn(self, target, *args) -> None:  # noqa: ANN001
        proc = CTX.Process(target=target, args=(self.path, *args), daemon=True)
        proc.start()
        self.procs.append(proc)
        STATS["processes"] += 1

    @rule(runs=st.integers(1, 4), images=st.integers(0, 3), seed=st.integers(0, 10_000))
    def writer(self, runs: int, images: int, seed: int) -> None:
        self._spawn(_writer, runs, images, seed)

    @rule(rounds=st.integers(1, 4))
    def reader(self, rounds: int) -> None:
        self._spawn(_reader, rounds)

    @rule(pick=st.integers(0, 1000), delay=st.sampled_from([0.0, 0.005, 0.02, 0.05]))
    def kill(self, pick: int, delay: float) -> None:
        time.sleep(delay)
        alive = [p for p in self.procs if p.is_alive()]
        if alive:
            victim = alive[pick % len(alive)]
            os.kill(victim.pid, signal.SIGKILL)
            self.killed.add(victim.pid)
            STATS["kills"] += 1

    @rule()
    def wait_some(self) -> None:
        for proc in self.procs:
            proc.join(0.05)

    @invariant()
    def nobody_saw_locked(self) -> None:
        for proc in self.procs:
            if proc.exitcode is not None and proc.pid not in self.killed:
                assert proc.exitcode == 0, f"process {proc.pid} exited {proc.exitcode} ({'database is locked' if proc.exitcode == LOCKED_EXIT else 'error'})"

    @invariant()
    def database_is_consistent(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            for status, paths, seeds in conn.execute("SELECT status, paths, seeds FROM generations"):
                assert status in STATUSES
                assert paths.count(".png") == seeds.count(",") + (seeds != "[]"), (paths, seeds)
        finally:
            conn.close()

    def teardown(self) -> None:
        for proc in self.procs:
            proc.join(60)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self.nobody_saw_locked()
        self.database_is_consistent()
        with History(self.path) as history:
            rows = history.search(limit=None)  # reaps rows of dead writers
            STATS["rows"] += len(rows)
            for row in rows:
                assert row["status"] in ("done", "interrupted"), row
                if row["status"] == "done":
                    assert len(row["paths"]) == len(row["seeds"])
                else:
                    assert row["pid"] in self.killed
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)


HistoryStress.TestCase.settings = settings(
    max_examples=12, stateful_step_count=12, deadline=None, suppress_health_check=list(HealthCheck), database=None
)
test_history_stress = HistoryStress.TestCase


def test_stress_really_ran() -> None:
    """Runs after the machine (same module, file order): it started, killed and checked something."""
    if STATS["machines"] == 0:
        pytest.skip("run together with test_history_stress")
    assert STATS["processes"] > 0 and STATS["rows"] > 0, STATS
    print(f"history stress: {STATS}")
