"""Point 7: the job queue survives a crash.

A real ``gambarkan serve`` (tiny model, its own GAMBARKAN_HOME) takes a running job and a full
queue, and is SIGKILLed. Restarted servers run every job to the end, with images on disk. A
poison job (``GAMBARKAN_TEST_CRASH_ON_PROMPT`` makes the process ``os._exit`` when it starts)
kills the server on each run and ends ``failed`` after ``--max-attempts`` runs instead of
looping. Unknown job ids stay 404.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from tests.server.conftest import free_port

pytestmark = [pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL is POSIX"), pytest.mark.timeout(420)]

QUEUE = 4
ATTEMPTS = 2
POISON = "racun: job ini mematikan server"
COMMON = {"width": 64, "height": 64, "steps": 2, "translate": False}


class Server:
    """One ``gambarkan serve`` process on a fresh loopback port; stderr goes to a file."""

    def __init__(self, model: Path, home: Path, log: Path, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = [sys.executable, "-m", "gambarkan", "serve", "--model", str(model), "--port", str(self.port),
               "--queue-size", str(QUEUE), "--max-attempts", str(ATTEMPTS), "--log-level", "warning"]  # fmt: skip
        full_env = {**os.environ, "GAMBARKAN_HOME": str(home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **env}
        with log.open("w") as err:
            self.proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.DEVNULL, stderr=err)
        self.wait_up()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_up(self) -> None:
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                return  # died while starting (a poison job can run at once): callers check
            try:
                if httpx.get(self.base + "/api/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start: " + self.text()[-2000:]
            time.sleep(0.2)

    def wait_for(self, marker: str) -> None:
        deadline = time.monotonic() + 120
        while marker not in self.text():
            assert self.proc.poll() is None, self.text()[-2000:]
            assert time.monotonic() < deadline, f"never saw {marker!r}: " + self.text()[-2000:]
            time.sleep(0.1)

    def exit_code(self, timeout: float = 180) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def post(self, prompt: str) -> httpx.Response:
        return httpx.post(self.base + "/api/jobs", json={"prompt": prompt, "seed": 7, **COMMON}, timeout=30)

    def job(self, job_id: str) -> dict:
        response = httpx.get(f"{self.base}/api/jobs/{job_id}", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def crashed(tiny_sd15_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Fill a server's queue, SIGKILL it mid-job, then restart until the poison job is given up."""
    root = tmp_path_factory.mktemp("persist")
    home = root / "home"
    servers: list[Server] = []
    try:
        # 1. A server that stops in the first denoising step of its first job (pause point).
        first = Server(tiny_sd15_dir, home, root / "server-0.log", GAMBARKAN_TEST_PAUSE_AT="sample")
        servers.append(first)
        ids = {"running": first.post("job satu").json()["id"]}
        first.wait_for("gambarkan-test-paused-at sample")
        for name in ("job dua", "job tiga", "job empat"):
            response = first.post(name)
            assert response.status_code == 202, response.text
            ids[name] = response.json()["id"]
        response = first.post(POISON)
        assert response.status_code == 202, response.text
        ids["poison"] = response.json()["id"]
        full = first.post("one too many")
        assert full.status_code == 429, full.text  # the queue really is full
        assert first.job(ids["running"])["status"] == "running"
        first.kill()

        # 2. Restarts: each runs what is left and dies on the poison job, until it is given up.
        codes = []
        for run in range(1, ATTEMPTS + 2):
            server = Server(tiny_sd15_dir, home, root / f"server-{run}.log", GAMBARKAN_TEST_CRASH_ON_PROMPT=POISON)
            servers.append(server)
            if run <= ATTEMPTS:
                codes.append(server.exit_code())
        last = servers[-1]
        assert last.proc.poll() is None, last.text()[-2000:]
        yield {"home": home, "ids": ids, "codes": codes, "server": last, "servers": servers}
    finally:
        for server in servers:
            server.kill()


def test_every_queued_job_completes_after_sigkill(crashed: dict) -> None:
    from PIL import Image

    from gambarkan.outputs.png import read_parameters

    server, home = crashed["server"], crashed["home"]
    for name in ("running", "job dua", "job tiga", "job empat"):
        job = server.job(crashed["ids"][name])
        assert job["status"] == "done", job
        (image,) = job["result"]["images"]
        response = httpx.get(server.base + image["url"], timeout=10)
        assert response.status_code == 200 and response.content.startswith(b"\x89PNG")
        path = home / "outputs" / unquote(image["url"].removeprefix("/api/images/"))
        with Image.open(path) as png:
            assert png.size == (64, 64)
        params = read_parameters(path)
        assert params["Seed"] == 7 and params["Steps"] == 2
        assert params["prompt"] == ("job satu" if name == "running" else name)


def test_poison_job_fails_after_max_attempts(crashed: dict) -> None:
    assert crashed["codes"] == [70] * ATTEMPTS  # each restart ran it once and died
    job = crashed["server"].job(crashed["ids"]["poison"])
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "job_crashed"
    assert f"{ATTEMPTS} times" in job["error"]["message"]
    assert "result" not in job


def test_jobs_db_records_attempts(crashed: dict) -> None:
    import sqlite3

    with sqlite3.connect(crashed["home"] / "jobs.db") as conn:
        rows = dict(conn.execute("SELECT id, attempts FROM jobs").fetchall())
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ids = crashed["ids"]
    assert rows[ids["poison"]] == ATTEMPTS
    assert rows[ids["running"]] == 2  # killed once while running, then finished
    assert [rows[ids[n]] for n in ("job dua", "job tiga", "job empat")] == [1, 1, 1]
    assert len(rows) == 5  # the refused (429) request was never recorded


def test_finished_jobs_answer_events_and_unknown_ids_are_404(crashed: dict) -> None:
    server = crashed["server"]
    with httpx.stream("GET", f"{server.base}/api/jobs/{crashed['ids']['job dua']}/events", timeout=30) as response:
        lines = [line for line in response.iter_lines() if line.startswith("event:")]
    assert lines == ["event: done"]
    for unknown in ("0" * 32, "nope", crashed["ids"]["poison"][:-1] + "x"):
        response = httpx.get(f"{server.base}/api/jobs/{unknown}", timeout=10)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
    assert httpx.delete(f"{server.base}/api/jobs/{crashed['ids']['job dua']}", timeout=10).status_code == 409


# --- in-process: which jobs run again, and whose --------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_waiting_surfaces_are_recorded_and_not_rerun(tmp_path: Path) -> None:
    """OpenAI/A1111 jobs are written before the answer; after a crash nobody waits for them,
    so they end failed (the client retries), while native jobs run again. Rows of a live
    server sharing the home are left alone."""
    import sqlite3

    from fastapi.testclient import TestClient

    from gambarkan.config import Settings
    from gambarkan.server.app import create_app
    from gambarkan.server.state import ServerConfig
    from tests.server.conftest import InstantEngine

    settings = Settings.from_env({"GAMBARKAN_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"})
    engine = InstantEngine(settings)
    app = create_app(settings, engine, config=ServerConfig(model="instant"))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.post("/v1/images/generations", json={"prompt": "openai", "size": "64x64"}).status_code == 200
        assert client.post("/sdapi/v1/txt2img", json={"prompt": "a1111", "width": 64, "height": 64}).status_code == 200
        assert client.post("/api/jobs", json={"prompt": "native", **COMMON}).status_code == 202
    database = tmp_path / "home" / "jobs.db"
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT source, status, attempts FROM jobs ORDER BY seq").fetchall()
        assert rows == [("openai", "done", 1), ("a1111", "done", 1), ("api", "done", 1)]
        # Pretend a server died with these running, and another (this process's parent) is alive.
        dead, alive = _dead_pid(), os.getppid()
        conn.execute("UPDATE jobs SET status = 'running', pid = ?, pid_started = NULL, summary = NULL", (dead,))
        conn.execute(
            "INSERT INTO jobs (id, source, request, status, attempts, created, pid) SELECT 'other', source, request,"
            " 'queued', 0, created, ? FROM jobs WHERE source = 'api'",
            (alive,),
        )
    engine.calls.clear()
    app = create_app(settings, engine, config=ServerConfig(model="instant"))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        jobs = {job["source"]: job for job in client.get("/api/jobs").json()["jobs"]}
        for _ in range(200):
            if client.get(f"/api/jobs/{jobs['api']['id']}").json()["status"] == "done":
                break
            time.sleep(0.05)
        assert client.get(f"/api/jobs/{jobs['api']['id']}").json()["status"] == "done"
        for source in ("openai", "a1111"):
            job = client.get(f"/api/jobs/{jobs[source]['id']}").json()
            assert job["status"] == "failed" and job["error"]["code"] == "server_restarted", job
        assert client.get("/api/jobs/other").json()["status"] == "queued"  # not ours to take
    assert [r.prompt for r in engine.calls] == ["native"]
