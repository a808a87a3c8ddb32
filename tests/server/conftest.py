"""Server fixtures: a live uvicorn on a free loopback port with the tiny model, and helpers."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("sse_starlette")

API_KEY = "test-key-3f9a1c"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_settings(home: Path) -> Any:
    from gambarkan.config import Settings

    return Settings.from_env({"GAMBARKAN_HOME": str(home), "HF_HUB_OFFLINE": "1"})


@dataclass
class LiveServer:
    url: str
    port: int
    app: Any
    settings: Any
    key: str = API_KEY

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def state(self) -> Any:
        return self.app.state.gambarkan


def start_uvicorn(app: Any) -> tuple[Any, threading.Thread, int]:
    """Run ``app`` with uvicorn in a thread (signal handlers are only installed in the main thread)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=5)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    return server, thread, port


@pytest.fixture(scope="module")
def live_server(tiny_sd15_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A real uvicorn + engine serving the tiny SD 1.5 model as default, with an API key."""
    from gambarkan.server.app import create_app
    from gambarkan.server.state import ServerConfig

    settings = server_settings(tmp_path_factory.mktemp("server-home"))
    app = create_app(settings, config=ServerConfig(model=str(tiny_sd15_dir), api_keys=[API_KEY], max_steps=50))
    server, thread, port = start_uvicorn(app)
    yield LiveServer(f"http://127.0.0.1:{port}", port, app, settings)
    server.should_exit = True
    thread.join(30)


class InstantEngine:
    """Stands in for Engine where only the HTTP layer is under test (schema fuzzing, queue rules).

    Returns flat images of the requested size (64x64 by default) at once so hundreds of generated requests stay fast; everything
    about pixels and metadata is tested against the real engine with the tiny model.
    """

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.calls: list[Any] = []

    def generate(self, request: Any, *, on_progress: Any = None, cancel: Any = None, preview_every: int = 0) -> Any:
        from PIL import Image

        from gambarkan.engine.generate import Progress
        from gambarkan.request import GeneratedImage, GenerationResult

        self.calls.append(request)
        total = request.batch_size * request.count
        if on_progress is not None:
            on_progress(Progress(0, request.count, 1, 1, 0, total, None))
        seed = max(request.seed, 0)
        width, height = request.width or 64, request.height or 64  # the asked size, so a swapped one is caught
        images = [
            GeneratedImage(
                Image.new("RGB", (width, height), (i * 20 % 255, 0, 0)),
                seed + i,
                i,
                None,
                f"{request.prompt}\nSeed: {seed + i}",
            )
            for i in range(total)
        ]
        return GenerationResult(
            images,
            request.prompt,
            request.negative_prompt,
            request.prompt,
            request.negative_prompt,
            "instant",
            None,
            "Euler",
            1,
            7.0,
            width,
            height,
            1,
            seed,
        )
