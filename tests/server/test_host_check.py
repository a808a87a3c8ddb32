"""DNS rebinding (issue 17): a server without API keys answers only loopback Host names and allowed ones.

A page on ``rebind.attacker.example`` that re-points its name at 127.0.0.1 sends that name in
``Host``; it must get 403 from every route, the mounted web UI included, and never read a job.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.conftest import InstantEngine, server_settings

pytest.importorskip("fastapi")


def _client(tmp_path: Path, mount_ui: bool = False, **config):
    from fastapi.testclient import TestClient

    from gambarkan.server.app import create_app
    from gambarkan.server.state import ServerConfig

    settings = server_settings(tmp_path / "home")
    mount = None
    if mount_ui:
        pytest.importorskip("gradio")
        from gambarkan.ui.app import mount
    app = create_app(settings, InstantEngine(settings), config=ServerConfig(model="instant", **config), mount_ui=mount, start_workers=False)
    return TestClient(app, base_url="http://127.0.0.1:7860")


ROUTES = [("GET", "/api/jobs"), ("POST", "/api/jobs"), ("GET", "/v1/models"), ("POST", "/v1/images/generations"),
          ("GET", "/sdapi/v1/options"), ("POST", "/sdapi/v1/txt2img"), ("GET", "/api/health"), ("GET", "/docs")]  # fmt: skip


@pytest.mark.parametrize("host", ["rebind.attacker.example", "rebind.attacker.example:7860", "192.168.1.20:7860", "0.0.0.0:7860", "localhost.attacker.example", "127.0.0.1.nip.io"])
def test_foreign_host_names_get_403_on_every_route(host: str, tmp_path: Path):
    client = _client(tmp_path)
    for method, path in ROUTES:
        response = client.request(method, path, headers={"host": host}, json={"prompt": "kucing"})
        assert response.status_code == 403, (method, path, response.status_code)
        error = response.json()["error"]
        assert error["code"] == "host_not_allowed" and "--allow-host" in error["hint"], error
    assert client.get("/api/jobs").json()["jobs"] == []  # nothing was queued by the refused POSTs


@pytest.mark.parametrize("host", ["127.0.0.1:7860", "localhost:7860", "LOCALHOST.", "[::1]:7860", "127.0.0.2", "app.localhost:7860"])
def test_loopback_host_names_are_answered(host: str, tmp_path: Path):
    client = _client(tmp_path)
    assert client.get("/api/health", headers={"host": host}).status_code == 200


def test_allow_host_adds_names_and_star_allows_all(tmp_path: Path):
    client = _client(tmp_path, allowed_hosts=["gambar.lan"])
    assert client.get("/v1/models", headers={"host": "gambar.lan:7860"}).status_code == 200
    assert client.get("/v1/models", headers={"host": "Gambar.LAN"}).status_code == 200
    assert client.get("/v1/models", headers={"host": "other.lan"}).status_code == 403
    open_client = _client(tmp_path / "b", allowed_hosts=["*"])
    assert open_client.get("/v1/models", headers={"host": "anything.example"}).status_code == 200


def test_with_an_api_key_the_key_is_the_guard(tmp_path: Path):
    """A keyed server may be reached by any name (reverse proxies); the key is checked instead."""
    client = _client(tmp_path, api_keys=["k-123"])
    assert client.get("/v1/models", headers={"host": "gambar.example.com"}).status_code == 401
    ok = client.get("/v1/models", headers={"host": "gambar.example.com", "authorization": "Bearer k-123"})
    assert ok.status_code == 200


def test_the_mounted_web_ui_is_guarded_too(tmp_path: Path):
    client = _client(tmp_path, mount_ui=True)
    assert client.get("/", headers={"host": "127.0.0.1:7860"}).status_code == 200
    response = client.get("/", headers={"host": "rebind.attacker.example:7860"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "host_not_allowed"
    assert client.get("/config", headers={"host": "rebind.attacker.example"}).status_code == 403


def test_websockets_with_a_foreign_host_are_closed(tmp_path: Path):
    from starlette.websockets import WebSocketDisconnect

    client = _client(tmp_path)
    with pytest.raises(WebSocketDisconnect) as info:
        with client.websocket_connect("/queue/join", headers={"host": "rebind.attacker.example"}):
            pass
    assert info.value.code == 1008


def test_serve_allows_its_own_listening_address():
    from gambarkan.cli.serve import host_allow_list

    assert host_allow_list("192.168.1.5", ("gambar.lan",)) == ["gambar.lan", "192.168.1.5"]
    assert host_allow_list("0.0.0.0", ()) == []


def test_host_name_parsing():
    from gambarkan.server.auth import host_allowed, host_name

    assert host_name("[::1]:7860") == "::1" and host_name("Example.COM.:80") == "example.com"
    assert host_allowed(None) and not host_allowed("") and not host_allowed("::ffff:8.8.8.8")
