"""Points 1, 5, 6 and 7 (part) against the real HTTP server.

1. Auth is app-wide: with a key, every route (API, /sdapi/v1/*, native, Gradio's own routes,
   websockets) answers 401 without it, except the health allow-list; no response carries a key;
   binding off loopback without a key refuses to start.
5. 16 parallel requests with different seeds, samplers, sizes and override_settings each give
   exactly the image the same request gives alone; none hangs; nothing leaks into the options
   or into the next request.
6. An out-of-memory error (fault injected into the U-Net) fails that job with a structured
   error; memory returns to its baseline, the next request succeeds, health stays ok.
7. Unknown job ids are 404, never "done".
"""

from __future__ import annotations

import base64
import importlib.util
import io
import re
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

_spec = importlib.util.spec_from_file_location("gambarkan_server_kit", Path(__file__).resolve().parents[1] / "server" / "conftest.py")
kit = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = kit  # dataclasses look their module up while the file runs
_spec.loader.exec_module(kit)  # type: ignore[union-attr]

KEY = "hardening-key-5b2e91d7"
WRONG = "wrong-key-0c77aa"


# --- 1. auth ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded_app(tmp_path_factory: pytest.TempPathFactory):
    """The full app (APIs + web UI when gradio is installed) with an API key."""
    from gambarkan.server.app import create_app
    from gambarkan.server.state import ServerConfig

    settings = kit.server_settings(tmp_path_factory.mktemp("auth-home"))
    mount = None
    try:
        from gambarkan.ui.app import mount  # noqa: F811
    except ImportError:
        pass
    app = create_app(settings, kit.InstantEngine(settings), config=ServerConfig(model="instant-model", api_keys=[KEY]), mount_ui=mount, start_workers=False)
    return app


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def _all_routes(app) -> list[tuple[str, str]]:  # noqa: ANN001
    """(method, path) of every route, descending into mounted apps (the Gradio UI)."""
    out: list[tuple[str, str]] = []

    def walk(routes, prefix: str) -> None:  # noqa: ANN001
        for route in routes:
            path = prefix + getattr(route, "path", "")
            sub = getattr(route, "routes", None)
            if sub is not None and not getattr(route, "methods", None):
                walk(sub, path.rstrip("/"))
                continue
            for method in sorted(getattr(route, "methods", None) or {"GET"}):
                if method != "HEAD":
                    out.append((method, _concrete(path) or "/"))

    walk(app.routes, "")
    return sorted(set(out))


GRADIO_INTERNALS = [
    "/", "/config", "/gradio_api/info", "/gradio_api/queue/join", "/gradio_api/queue/data", "/gradio_api/upload",
    "/gradio_api/file=/etc/passwd", "/gradio_api/file=history.db", "/file=/etc/passwd", "/theme.css", "/manifest.json",
    "/gradio_api/heartbeat/x", "/gradio_api/api/predict", "/run/predict", "/gradio_api/startup-events", "/assets/index.js",
    "/docs", "/redoc", "/openapi.json", "/favicon.ico", "/sdapi/v1/options", "/sdapi/v1/cmd-flags", "/internal/ping",
]  # fmt: skip
SNEAKY = ["/api/health/", "/api/health/../jobs", "//api/health", "/API/health", "/api/health%2f..%2fjobs", "/api/health;x"]  # httpx itself normalises "/./"
ALLOWED = {"/api/health"}


def test_every_route_needs_the_key(guarded_app) -> None:  # noqa: ANN001
    from fastapi.testclient import TestClient

    routes = _all_routes(guarded_app)
    assert len(routes) > 15
    paths = [(m, p) for m, p in routes] + [(m, p) for p in GRADIO_INTERNALS + SNEAKY for m in ("GET", "POST")]
    client = TestClient(guarded_app)
    tried = 0
    for headers in ({}, {"Authorization": f"Bearer {WRONG}"}, {"Authorization": "Basic " + base64.b64encode(f"user:{WRONG}".encode()).decode()}):
        for method, path in paths:
            if path in ALLOWED:
                continue
            response = client.request(method, path, headers=headers, json={"prompt": "x"} if method == "POST" else None)
            tried += 1
            assert response.status_code == 401, (method, path, response.status_code)
            assert WRONG not in response.text and KEY not in response.text
    assert client.get("/api/health").status_code == 200
    assert tried > 100
    print(f"auth: {tried} unauthenticated requests, all 401")


def test_websockets_need_the_key(guarded_app) -> None:  # noqa: ANN001
    from fastapi.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    client = TestClient(guarded_app)
    for path in ("/gradio_api/queue/join", "/queue/join", "/ws", "/api/jobs/x/events"):
        with pytest.raises(WebSocketDisconnect):
            with client.websocket_connect(path) as ws:
                ws.receive_text()


def test_no_response_contains_the_key(guarded_app) -> None:  # noqa: ANN001
    from fastapi.testclient import TestClient

    client = TestClient(guarded_app)
    auth = {"Authorization": f"Bearer {KEY}"}
    seen = 0
    for method, path in _all_routes(guarded_app):
        if method != "GET":
            continue
        response = client.get(path, headers=auth)
        seen += 1
        blob = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items())
        assert KEY not in blob, path
    options = client.get("/sdapi/v1/options", headers=auth).json()
    assert not any(re.search("key|token|secret|password|auth", k, re.I) for k in options), options
    assert seen > 10


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.com"])
def test_off_loopback_without_a_key_refuses_to_start(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from gambarkan.cli import main

    monkeypatch.delenv("GAMBARKAN_API_KEYS", raising=False)
    result = CliRunner().invoke(main, ["serve", "--host", host, "--port", "9"])
    assert result.exit_code == 2 and "refusing to listen" in result.output and "Traceback" not in result.output


# --- 5, 6, 7: a live server with the real tiny engine -------------------------------------------


@pytest.fixture(scope="module")
def live(tiny_sd15_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from gambarkan.server.app import create_app
    from gambarkan.server.state import ServerConfig

    settings = kit.server_settings(tmp_path_factory.mktemp("live-home"))
    app = create_app(settings, config=ServerConfig(model=str(tiny_sd15_dir), api_keys=[KEY], queue_size=64, max_steps=10))
    server, thread, port = kit.start_uvicorn(app)
    yield kit.LiveServer(f"http://127.0.0.1:{port}", port, app, settings, key=KEY)
    server.should_exit = True
    thread.join(30)


SAMPLERS = ["Euler", "Euler a", "DPM++ 2M", "DDIM", "LMS", "DPM++ 2M Karras", "UniPC", "Euler"]


def _payload(i: int) -> dict:
    return {
        "prompt": f"orange cat number {i}",
        "negative_prompt": "buram" if i % 2 else "",
        "seed": 1000 + i,
        "steps": 2,
        "cfg_scale": 5 + i % 4,
        "sampler_name": SAMPLERS[i % len(SAMPLERS)],
        "width": 64 if i % 3 else 72,
        "height": 64,
        "override_settings": {"CLIP_stop_at_last_layers": 1 + i % 2},
        "override_settings_restore_afterwards": True,
    }


def _pixels(answer: dict) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(answer["images"][0]))) as image:
        return image.convert("RGB").tobytes()


def test_parallel_requests_equal_serial_ones_and_leak_nothing(live) -> None:  # noqa: ANN001
    import httpx

    with httpx.Client(base_url=live.url, headers=live.auth, timeout=120) as client:
        options_before = client.get("/sdapi/v1/options").json()
        serial = {}
        for i in range(16):
            response = client.post("/sdapi/v1/txt2img", json=_payload(i))
            assert response.status_code == 200, response.text
            serial[i] = _pixels(response.json())
        assert len(set(serial.values())) == 16  # the settings really differ

    results: dict[int, bytes] = {}
    errors: list[str] = []

    def one(i: int) -> None:
        with httpx.Client(base_url=live.url, headers=live.auth, timeout=180) as client:
            response = client.post("/sdapi/v1/txt2img", json=_payload(i))
            if response.status_code != 200:
                errors.append(f"{i}: {response.status_code} {response.text[:200]}")
            else:
                results[i] = _pixels(response.json())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not any(t.is_alive() for t in threads), "a request hung"
    assert errors == []
    mismatched = [i for i in range(16) if results[i] != serial[i]]
    assert mismatched == [], f"parallel differs from serial for {mismatched}"

    with httpx.Client(base_url=live.url, headers=live.auth, timeout=120) as client:
        assert client.get("/sdapi/v1/options").json() == options_before  # override_settings did not stick
        again = client.post("/sdapi/v1/txt2img", json=_payload(0))
        assert _pixels(again.json()) == serial[0]  # nothing from request 15 leaked into the next one
    print("concurrency: 16 parallel requests equal their serial runs")


def test_out_of_memory_fails_one_job_cleanly_and_the_server_recovers(live) -> None:  # noqa: ANN001
    import gc

    import httpx
    import psutil
    import torch

    with httpx.Client(base_url=live.url, headers=live.auth, timeout=120) as client:
        first = client.post("/sdapi/v1/txt2img", json=_payload(3))
        assert first.status_code == 200
        gc.collect()
        baseline = psutil.Process().memory_info().rss
        engine = live.state.engines[0]
        (loaded,) = engine.cache._items.values()
        unet = loaded.pipe.unet
        calls = {"n": 0}

        def exploding_forward(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - the fault-injection hook
            calls["n"] += 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (injected)")

        unet.forward = exploding_forward
        try:
            failed = client.post("/sdapi/v1/txt2img", json=_payload(3))
        finally:
            del unet.forward  # back to the class's forward
        assert calls["n"] >= 1
        assert 400 <= failed.status_code < 500, failed.text
        body = failed.json()
        error = body["error"]
        assert error["code"] == "device_out_of_memory" and error.get("kind", error["code"]) == "out_of_memory"
        assert "Traceback" not in failed.text
        gc.collect()
        grown = psutil.Process().memory_info().rss - baseline
        assert grown < 64 * 2**20, f"memory grew by {grown / 2**20:.0f} MiB after the OOM"
        assert client.get("/api/health").json()["status"] == "ok"
        after = client.post("/sdapi/v1/txt2img", json=_payload(3))
        assert after.status_code == 200 and _pixels(after.json()) == _pixels(first.json())


def test_unknown_job_ids_are_404(live) -> None:  # noqa: ANN001
    import httpx

    with httpx.Client(base_url=live.url, headers=live.auth, timeout=30) as client:
        for job_id in ("nope", "0", "../../etc/passwd", "%2e%2e", "a" * 300, "00000000-0000-0000-0000-000000000000"):
            for method in ("GET", "DELETE"):
                response = client.request(method, f"/api/jobs/{job_id}")
                assert response.status_code == 404, (method, job_id, response.status_code)
                assert '"done"' not in response.text
