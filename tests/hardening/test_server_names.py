"""Point 3 over HTTP: traversal strings sent to every endpoint and option that takes a name.

Hypothesis builds hostile names (``..`` in every spelling, absolute, UNC, NUL, symlinks out)
and sends each one as an image name, model, preset, sampler, translator, A1111 checkpoint
(options and ``override_settings``) and job id. A Python audit hook watches every file the
process opens: nothing outside the allowed roots may be opened, no answer is a 5xx, and no
answer carries the bytes of the file planted outside.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi")

from tests.hardening.test_path_traversal import HOSTILE
from tests.server.conftest import InstantEngine, server_settings

SECRET = b"\x89PNG SECRET-7d41"
_WATCH: dict[str, object] = {"root": None, "opened": []}


def _audit(event: str, args: tuple) -> None:
    root = _WATCH["root"]
    if root is None or event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.fsdecode(args[0])
    if os.path.realpath(path).startswith(str(root)):
        _WATCH["opened"].append(path)  # type: ignore[union-attr]


sys.addaudithook(_audit)  # audit hooks cannot be removed; it only records while a test sets "root"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """A started app whose output folder has one PNG and a symlink to a folder holding a secret."""
    from fastapi.testclient import TestClient

    from gambarkan.server.app import create_app
    from gambarkan.server.state import ServerConfig

    base = tmp_path_factory.mktemp("names")
    outside = base / "outside"
    outside.mkdir()
    for name in ("secret.png", "secret.safetensors", "model_index.json"):
        (outside / name).write_bytes(SECRET)
    settings = server_settings(base / "home")
    out = Path(settings.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ok.png").write_bytes(b"\x89PNG fine")
    (out / "escape").symlink_to(outside)
    app = create_app(settings, InstantEngine(settings), config=ServerConfig(model="instant-model", queue_size=1000))
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        yield client, Path(os.path.realpath(outside))


def _requests(name: str, outside: Path) -> list[tuple[str, str, dict | None]]:
    """(method, path, json) for every place a client can put a name."""
    return [
        ("GET", "/api/images/" + quote(name, safe="/"), None),
        ("GET", "/api/images/" + quote(name, safe=""), None),
        ("GET", "/api/jobs/" + quote(name, safe=""), None),
        ("POST", "/v1/images/generations", {"prompt": "x", "model": name, "response_format": "b64_json"}),
        ("POST", "/api/jobs", {"prompt": "x", "model": name}),
        ("POST", "/api/jobs", {"prompt": "x", "preset": name}),
        ("POST", "/api/jobs", {"prompt": "x", "sampler": name}),
        ("POST", "/api/jobs", {"prompt": "x", "translator": name}),
        ("POST", "/api/translate", {"prompt": "kucing", "translator": name}),
        ("POST", "/sdapi/v1/options", {"sd_model_checkpoint": name}),
        ("POST", "/sdapi/v1/txt2img", {"prompt": "x", "override_settings": {"sd_model_checkpoint": name}}),
    ]


NAMES = (
    HOSTILE
    | HOSTILE.map(lambda s: s + "/secret.png")
    | st.sampled_from(["escape/secret.png", "escape/secret.safetensors", "escape", "../outside/secret.png"])
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(name=NAMES)
def test_hostile_names_open_nothing_outside(served, name: str) -> None:
    client, outside = served
    engine = client.app.state.gambarkan.engines[0]
    for method, path, body in _requests(name, outside) + _requests(str(outside / "secret.png"), outside):
        _WATCH["root"], _WATCH["opened"] = str(outside), []
        try:
            response = client.request(method, path, json=body)
        finally:
            _WATCH["root"] = None
        assert response.status_code < 500, (method, path, body, response.text)
        assert b"SECRET-7d41" not in response.content, (method, path, body)
        assert not _WATCH["opened"], (method, path, body, _WATCH["opened"])
    for request in engine.calls:  # whatever got queued names the server's model, never a client path
        assert request.model in (None, "instant-model"), request.model
    assert client.get("/api/images/ok.png").content == b"\x89PNG fine"  # the guard still serves real images
