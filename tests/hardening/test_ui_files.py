"""Gradio's file route serves the output folder only: never history.db, jobs.db or configs.

The web UI is mounted on the server as ``gambarkan serve`` does; a PNG in the outputs is
served (so the route really works), the databases in GAMBARKAN_HOME are not, also when the
output folder is set to the home folder itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("gradio")


def _client(home: Path, output_dir: Path) -> Any:
    from fastapi.testclient import TestClient
    from PIL import Image

    from gambarkan.config import Settings
    from gambarkan.outputs.history import History
    from gambarkan.server.app import create_app
    from gambarkan.server.state import ServerConfig
    from gambarkan.ui.app import mount
    from tests.server.conftest import InstantEngine

    settings = Settings.from_env(
        {"GAMBARKAN_HOME": str(home), "GAMBARKAN_OUTPUT_DIR": str(output_dir), "HF_HUB_OFFLINE": "1"}
    )
    History.open(settings).close()  # a real history.db (with -wal/-shm beside it)
    output_dir.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(output_dir / "kucing.png")
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "secret.toml").write_text("token = 'x'\n")
    app = create_app(
        settings, InstantEngine(settings), config=ServerConfig(model="instant"), mount_ui=mount, start_workers=False
    )
    return TestClient(app, base_url="http://127.0.0.1")


@pytest.mark.parametrize("layout", ["default", "outputs-in-home"])
def test_gradio_serves_outputs_but_never_the_databases(tmp_path: Path, layout: str) -> None:
    home = tmp_path / "home"
    output_dir = home / "outputs" if layout == "default" else home
    client = _client(home, output_dir)
    png = client.get(f"/gradio_api/file={output_dir / 'kucing.png'}")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert (home / "history.db").is_file() and (home / "jobs.db").is_file()
    for name in ("history.db", "history.db-wal", "jobs.db", "config/secret.toml"):
        if not (home / name).exists():
            continue
        response = client.get(f"/gradio_api/file={home / name}")
        assert response.status_code in (403, 404), (name, response.status_code)
        assert b"SQLite format" not in response.content and b"token" not in response.content
