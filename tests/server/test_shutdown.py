"""SIGTERM while a job runs: queued jobs are cancelled, the running one stops, history stays consistent."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.server.conftest import free_port


@pytest.mark.slow
def test_sigterm_during_a_job(tiny_sd15_dir, tmp_path):
    home = tmp_path / "home"
    port = free_port()
    env = {**os.environ, "GAMBARKAN_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "gambarkan",
        "serve",
        "--model",
        str(tiny_sd15_dir),
        "--port",
        str(port),
        "--shutdown-timeout",
        "0",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.3)
        common = {"width": 64, "height": 64, "translate": False}
        running = httpx.post(base + "/api/jobs", json={"prompt": "job running", "steps": 100, **common}).json()["id"]
        assert httpx.post(base + "/api/jobs", json={"prompt": "job queued", "steps": 2, **common}).status_code == 202

        started = threading.Event()

        def listen():
            try:
                with httpx.stream("GET", f"{base}/api/jobs/{running}/events", timeout=180) as response:
                    for line in response.iter_lines():
                        if line.startswith("event: progress"):
                            started.set()
            except httpx.HTTPError:
                pass
            started.set()

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert started.wait(180)
        status = httpx.get(f"{base}/api/jobs/{running}").json()
        assert status["status"] == "running", status
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode in (0, -signal.SIGTERM), err  # uvicorn re-raises the signal after a clean shutdown
    assert "Traceback" not in err, err
    assert not [p for p in home.rglob("*") if p.name.endswith(".tmp")], "half-written files left behind"
    database = home / "history.db"
    assert database.is_file(), "the server recorded no history (history.db is missing)"
    with sqlite3.connect(database) as conn:
        rows = dict(conn.execute("SELECT original_prompt, status FROM generations").fetchall())
    assert rows.get("job running") == "cancelled", rows
    assert rows.get("job queued") == "cancelled", rows
    assert "running" not in rows.values()
