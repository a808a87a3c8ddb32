"""Downloads for real, from a local HTTP server that answers like the Hugging Face Hub.

huggingface_hub is pointed at it through ``HF_ENDPOINT``. The server implements the endpoints
the client uses: ``/api/models/{repo}/revision/{rev}``, ``/api/models/{repo}/tree/{rev}``
and ``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` with ETag, X-Repo-Commit, Content-Length and
Range. It can drop a connection half-way through a file (the client must resume with a Range
request) and can serve a corrupted file (the hash check must catch it).
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gambarkan.config import Settings
from gambarkan.errors import DiskFullError, ModelLoadError, NetworkError
from gambarkan.models import catalog, store

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "tiny-org/tiny-sd15"
LFS_MIN = 1024  # files bigger than this are served as LFS files (like the Hub's 10 MB rule)


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """A tiny Hub: serves the files of one folder as ``REPO`` at ``COMMIT`` on 127.0.0.1."""

    def __init__(self, folder: Path) -> None:
        self.files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        self.drop_once: set[str] = set()  # send half of these files, then cut the connection (once each)
        self.corrupt: set[str] = set()  # serve these with one byte flipped
        self.log: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_HEAD(self) -> None:  # noqa: N802
                hub.handle(self, head=True)

            def do_GET(self) -> None:  # noqa: N802
                hub.handle(self, head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def entry(self, path: str) -> dict:
        data = self.files[path]
        item = {"type": "file", "path": path, "size": len(data), "oid": _git_sha1(data)}
        if len(data) > LFS_MIN:
            item["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return item

    def _json(self, h: BaseHTTPRequestHandler, body: object, head: bool) -> None:
        raw = json.dumps(body).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(raw)))
        h.end_headers()
        if not head:
            h.wfile.write(raw)

    def handle(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        path = h.path.split("?", 1)[0]
        self.log.append(("HEAD" if head else "GET", path, h.headers.get("Range")))
        if path.startswith(f"/api/models/{REPO}/revision/"):
            return self._json(h, {"id": REPO, "sha": COMMIT, "siblings": [{"rfilename": p} for p in self.files]}, head)
        if path.startswith(f"/api/models/{REPO}/tree/"):
            return self._json(h, [self.entry(p) for p in self.files], head)
        prefix = f"/{REPO}/resolve/"
        if not path.startswith(prefix):
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return None
        rel = path[len(prefix):].split("/", 1)[1]
        if rel not in self.files:
            h.send_response(404)
            h.send_header("X-Error-Code", "EntryNotFound")
            h.send_header("X-Repo-Commit", COMMIT)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return None
        data = self.files[rel]
        entry = self.entry(rel)
        etag = entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]
        if rel in self.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        if h.headers.get("Range", "").startswith("bytes="):
            start = int(h.headers["Range"][6:].split("-")[0])
        h.send_response(206 if start else 200)
        h.send_header("ETag", f'"{etag}"')
        h.send_header("X-Repo-Commit", COMMIT)
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Length", str(len(data) - start))
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.end_headers()
        if head:
            return None
        if rel in self.drop_once and not start:
            self.drop_once.discard(rel)
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)  # the client sees a truncated body and must resume
            return None
        h.wfile.write(data[start:])
        return None


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gambarkan.testing import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(autouse=True)
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite runs with HF_HUB_OFFLINE=1 (read once at import); these tests talk to loopback."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture()
def hub(tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    server = FakeHub(tiny_folder)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    yield server
    server.close()


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"GAMBARKAN_HOME": str(tmp_path / "home")})  # not offline


def _spec(**changes: object) -> catalog.ModelSpec:
    table = {"source": REPO, "revision": COMMIT, "files": ["*.json", "**/*.json", "tokenizer/*", "**/*.safetensors"], **changes}
    return catalog._spec_from_table("mini", table, builtin=False)


def _weights(hub: FakeHub) -> list[str]:
    return [p for p in hub.files if p.endswith(".safetensors")]


def test_pull_downloads_verifies_and_records(hub: FakeHub, settings: Settings) -> None:
    spec = _spec()
    assert not store.is_installed(spec, settings)
    folder = store.pull(spec, settings, show_progress=False)
    assert (folder / "model_index.json").is_file()
    for rel, data in hub.files.items():
        assert (folder / rel).read_bytes() == data
    assert store.is_installed(spec, settings)
    assert store.disk_usage_bytes(spec, settings) == sum(len(d) for d in hub.files.values())
    assert Path(store.hub_cache_dir(), "models--tiny-org--tiny-sd15", "snapshots", COMMIT).is_dir()


def test_second_pull_is_a_no_op(hub: FakeHub, settings: Settings) -> None:
    spec = _spec()
    first = store.pull(spec, settings, show_progress=False)
    requests_before = len(hub.log)
    second = store.pull(spec, settings, show_progress=False)
    assert second == first
    assert len(hub.log) == requests_before  # not even a listing request


def test_interrupted_download_resumes_with_range(hub: FakeHub, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    # The client writes in 10 MB chunks; the tiny files are smaller, so use small chunks.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    big = max(_weights(hub), key=lambda p: len(hub.files[p]))
    hub.drop_once.add(big)
    folder = store.pull(_spec(), settings, show_progress=False)
    assert (folder / big).read_bytes() == hub.files[big]
    ranges = [r for method, path, r in hub.log if method == "GET" and path.endswith(big) and r]
    assert len(ranges) == 1  # one resumed request, starting where the written chunks ended
    start = int(ranges[0].removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= len(hub.files[big]) // 2


def test_corrupted_file_is_detected_and_removed(hub: FakeHub, settings: Settings) -> None:
    bad = _weights(hub)[0]
    hub.corrupt.add(bad)
    spec = _spec()
    with pytest.raises(ModelLoadError, match="corrupt"):
        store.pull(spec, settings, show_progress=False)
    assert not store.is_installed(spec, settings)
    snapshot = Path(store.hub_cache_dir(), "models--tiny-org--tiny-sd15", "snapshots", COMMIT)
    assert not (snapshot / bad).exists()  # nothing that looks complete is left behind
    hub.corrupt.clear()
    folder = store.pull(spec, settings, show_progress=False)
    assert (folder / bad).read_bytes() == hub.files[bad]


def test_cache_damaged_after_pull_is_no_longer_installed(hub: FakeHub, settings: Settings) -> None:
    spec = _spec()
    folder = store.pull(spec, settings, show_progress=False)
    victim = (folder / _weights(hub)[0]).resolve()
    victim.write_bytes(victim.read_bytes()[:-10])
    assert not store.is_installed(spec, settings)


def test_not_enough_disk_is_refused_before_downloading(hub: FakeHub, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10**9, 10**9, 1000))
    with pytest.raises(DiskFullError, match="not enough free disk"):
        store.pull(_spec(), settings, show_progress=False)
    assert not any(m == "GET" and "/resolve/" in p for m, p, _ in hub.log)


def test_no_network_is_one_clear_error(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(NetworkError) as info:
        store.pull(_spec(), settings, show_progress=False)
    text = str(info.value)
    assert "\n" not in text and "gambarkan doctor" in text and "--model PATH" in text


def test_offline_refuses_to_download(hub: FakeHub, settings: Settings) -> None:
    with pytest.raises(NetworkError, match="offline"):
        store.pull(_spec(), settings, show_progress=False, offline=True)
    assert hub.log == []


def test_remove_frees_the_cache(hub: FakeHub, settings: Settings) -> None:
    spec = _spec()
    store.pull(spec, settings, show_progress=False)
    size = store.disk_usage_bytes(spec, settings)
    freed = store.remove(spec, settings)
    assert freed >= size > 0
    assert not store.is_installed(spec, settings)
    assert not Path(store.hub_cache_dir(), "models--tiny-org--tiny-sd15", "snapshots", COMMIT).exists()


def test_generate_pulls_a_missing_package_first(tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from gambarkan.cli import main
    from gambarkan.engine import generate

    monkeypatch.setattr(generate, "_default_engine", None)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def _invoke(*args: str):
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    small = ["--steps", "2", "-W", "64", "-H", "64", "--no-translate", "--seed", "7", "--json"]
    hub = FakeHub(tiny_folder)
    try:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
        added = _invoke("models", "add", "dari-hub", REPO, "--revision", COMMIT, "--steps", "2")
        assert added.exit_code == 0, added.output
        offline = _invoke("generate", "x", "--preset", "dari-hub", "--offline", *small)
        assert offline.exit_code == 2 and "not downloaded and offline mode is on" in offline.output
        assert "gambarkan doctor" in offline.output and "--model PATH" in offline.output
        assert not any("/resolve/" in p for _, p, _ in hub.log)

        run = _invoke("generate", "a bird", "--preset", "dari-hub", "-o", str(tmp_path / "out"), *small)
        assert run.exit_code == 0, run.output
        assert any(m == "GET" and p.endswith(".safetensors") for m, p, _ in hub.log)
        assert json.loads(run.stdout.strip().splitlines()[-1])["preset"] == "dari-hub"
        pulled = _invoke("models", "pull", "dari-hub")
        assert "already downloaded" in pulled.output
    finally:
        hub.close()


def test_folder_variant_tells_fp16_only_folders(tmp_path: Path, tiny_folder: Path) -> None:
    from gambarkan.testing import tiny_pipeline

    assert store.folder_variant(tiny_folder) is None
    tiny_pipeline().save_pretrained(tmp_path / "half", variant="fp16")
    assert store.folder_variant(tmp_path / "half") == "fp16"


def test_models_commands_pull_list_info_rm_against_the_hub(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's path: add a Hub package, pull it, see it installed, rm asks unless --yes."""
    from click.testing import CliRunner

    from gambarkan.cli import main

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def invoke(*args: str, answer: str | None = None):
        return CliRunner().invoke(main, list(args), input=answer, catch_exceptions=False)

    def listed() -> dict:
        result = invoke("models", "list", "--json")
        assert result.exit_code == 0, result.output
        return next(p for p in json.loads(result.stdout)["packages"] if p["name"] == "dari-hub")

    assert invoke("models", "add", "dari-hub", REPO, "--revision", COMMIT).exit_code == 0
    assert listed()["installed"] is False

    pulled = invoke("models", "pull", "dari-hub", "--quiet")
    assert pulled.exit_code == 0, pulled.output
    assert "is ready" in pulled.output
    weights_fetched = sum(1 for m, p, _ in hub.log if m == "GET" and p.endswith(".safetensors"))
    assert weights_fetched == len(_weights(hub))
    row = listed()
    on_disk = sum(len(data) for data in hub.files.values())
    assert row["installed"] is True and row["size_mb"] == round(on_disk / 2**20)

    info = json.loads(invoke("models", "info", "dari-hub", "--json").stdout)
    folder = Path(info["path"])
    assert info["installed"] and info["revision"] == COMMIT
    assert (folder / "model_index.json").read_bytes() == hub.files["model_index.json"]

    again = invoke("models", "pull", "dari-hub")
    assert "already downloaded" in again.output
    assert sum(1 for m, p, _ in hub.log if m == "GET" and p.endswith(".safetensors")) == weights_fetched

    kept = invoke("models", "rm", "dari-hub", answer="n\n")
    assert kept.exit_code == 0 and "nothing removed" in kept.output
    assert listed()["installed"] is True and (folder / "model_index.json").is_file()

    removed = invoke("models", "rm", "dari-hub", answer="y\n")
    assert removed.exit_code == 0 and "removed dari-hub" in removed.output
    assert not folder.exists()
    assert "dari-hub" not in invoke("models", "list", "--json").stdout

    unknown = invoke("models", "rm", "dari-hub", "--yes")
    assert unknown.exit_code == 2 and unknown.output.startswith("gambarkan: error:") and "Traceback" not in unknown.output
