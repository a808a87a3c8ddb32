"""Point 4: downloads are https-only (plus the configured endpoint), never reach loopback,
private or link-local addresses (also through redirects), are size-capped and hash-checked,
and leave no file behind when a check fails.

The Hub is the fake one of tests/models/test_store.py (HF_ENDPOINT=http://127.0.0.1:PORT,
trusted because the operator configured it), taught to redirect and to send too much.
"""

from __future__ import annotations

import hashlib
import importlib.util
import socket
from pathlib import Path

import pytest

from gambarkan.config import Settings
from gambarkan.errors import GambarkanError, ModelLoadError
from gambarkan.models import store, urlpolicy

_spec = importlib.util.spec_from_file_location("gambarkan_fake_hub", Path(__file__).resolve().parents[1] / "models" / "test_store.py")
fake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake)  # type: ignore[union-attr]


class RedirectingHub(fake.FakeHub):
    """FakeHub that can answer a file's GET with a redirect, or with more bytes than listed."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.redirects: dict[str, str] = {}  # file -> Location
        self.oversize: set[str] = set()
        self.hits: list[str] = []

    def handle(self, h, head: bool) -> None:  # noqa: ANN001
        path = h.path.split("?", 1)[0]
        self.hits.append(path)
        if path.startswith("/cdn/"):  # the target of an allowed same-host redirect
            h.path = path[len("/cdn") :]
            return super().handle(h, head)
        prefix = f"/{fake.REPO}/resolve/"
        rel = path[len(prefix) :].split("/", 1)[1] if path.startswith(prefix) else None
        if not head and rel in self.redirects:
            h.send_response(302)
            h.send_header("Location", self.redirects[rel])
            h.send_header("Content-Length", "0")
            h.end_headers()
            return None
        if not head and rel in self.oversize:
            data = self.files[rel] + b"\0" * (3 * 2**20)
            h.send_response(200)
            h.send_header("ETag", '"x"')
            h.send_header("X-Repo-Commit", fake.COMMIT)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return None
        return super().handle(h, head)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gambarkan.testing import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture()
def hub(tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    server = RedirectingHub(tiny_folder)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    yield server
    server.close()


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"GAMBARKAN_HOME": str(tmp_path / "home")})


def _spec():
    table = {"source": fake.REPO, "revision": fake.COMMIT, "files": ["*.json", "**/*.json", "tokenizer/*", "**/*.safetensors"]}
    from gambarkan.models import catalog

    return catalog._spec_from_table("mini", table, builtin=False)


def _weight(hub: RedirectingHub) -> str:
    return max((p for p in hub.files if p.endswith(".safetensors")), key=lambda p: len(hub.files[p]))


def _assert_nothing_unverified_left(hub: RedirectingHub, refused: str) -> None:
    """No partial blob, no snapshot file that differs from the Hub's, and not the refused file."""
    repo_dir = store.hub_cache_dir() / "models--tiny-org--tiny-sd15"
    assert not list(repo_dir.glob("blobs/*.incomplete"))
    snapshot = repo_dir / "snapshots" / fake.COMMIT
    assert not (snapshot / refused).exists()
    for path in snapshot.rglob("*"):
        if path.is_file():
            rel = path.relative_to(snapshot).as_posix()
            assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(hub.files[rel]).digest(), rel
    blobs = {p.name for p in repo_dir.glob("blobs/*")}
    listed = {fake._git_sha1(d) for d in hub.files.values()} | {hashlib.sha256(d).hexdigest() for d in hub.files.values()}
    assert blobs <= listed, blobs - listed


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


HOSTILE_REDIRECTS = [
    "http://{host}:{port}/cdn/{file}",  # plain http to someone else
    "https://127.0.0.1:{other}/x",  # loopback service
    "https://localhost:{other}/x",
    "https://[::1]:{other}/x",
    "https://[::ffff:127.0.0.1]:{other}/x",
    "https://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
    "https://10.0.0.7/x",
    "https://192.168.1.1/x",
    "https://172.16.0.1/x",
    "https://100.64.0.1/x",  # carrier-grade NAT
    "https://0.0.0.0/x",
    "https://2130706433/x",  # 127.0.0.1 as one number
    "ftp://example.com/x",
    "file:///etc/passwd",
]


@pytest.mark.parametrize("location", HOSTILE_REDIRECTS)
def test_hostile_redirects_are_refused_and_leave_nothing(hub: RedirectingHub, settings: Settings, location: str) -> None:
    weight = _weight(hub)
    other = _unused_port()
    hub.redirects[weight] = location.format(host="127.0.0.2", port=hub.server.server_address[1], other=other, file=weight)
    listener = socket.socket()
    listener.bind(("127.0.0.1", other))  # a "local service": it must never be connected to
    listener.listen(5)
    listener.settimeout(0.2)
    try:
        with pytest.raises(GambarkanError) as info:
            store.pull(_spec(), settings, show_progress=False)
        with pytest.raises(OSError):
            listener.accept()  # nobody came
    finally:
        listener.close()
    assert isinstance(info.value, urlpolicy.DownloadRefusedError) or "refus" in str(info.value), info.value
    assert "\n" not in str(info.value)
    assert not store.is_installed(_spec(), settings)
    _assert_nothing_unverified_left(hub, weight)


def test_same_host_redirect_still_works(hub: RedirectingHub, settings: Settings) -> None:
    """The policy is not "no redirects": the Hub redirects to its CDN all the time."""
    weight = _weight(hub)
    hub.redirects[weight] = f"{hub.url}/cdn/{fake.REPO}/resolve/{fake.COMMIT}/{weight}"
    folder = store.pull(_spec(), settings, show_progress=False)
    assert (folder / weight).read_bytes() == hub.files[weight]
    assert any(h.startswith("/cdn/") for h in hub.hits)


def test_more_bytes_than_announced_are_refused(hub: RedirectingHub, settings: Settings) -> None:
    weight = _weight(hub)
    hub.oversize.add(weight)
    with pytest.raises(GambarkanError) as info:
        store.pull(_spec(), settings, show_progress=False)
    assert isinstance(info.value, urlpolicy.DownloadRefusedError | ModelLoadError), info.value
    _assert_nothing_unverified_left(hub, weight)


def test_corrupt_file_leaves_nothing(hub: RedirectingHub, settings: Settings) -> None:
    weight = _weight(hub)
    hub.corrupt.add(weight)
    with pytest.raises(ModelLoadError, match="corrupt"):
        store.pull(_spec(), settings, show_progress=False)
    _assert_nothing_unverified_left(hub, weight)


# --- the rule itself --------------------------------------------------------------------------


def _resolver(*addresses: str):
    def resolve(host, port, type=0):  # noqa: A002, ANN001, ANN202
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, type, 6, "", (a, port)) for a in addresses]

    return resolve


@pytest.mark.parametrize(
    ("url", "addresses", "allowed"),
    [
        ("https://cdn-lfs.hf.co/x", ["18.160.1.2"], True),
        ("https://cdn-lfs.hf.co/x", ["18.160.1.2", "10.0.0.1"], False),  # one private answer is enough to refuse
        ("https://rebind.example/x", ["127.0.0.1"], False),
        ("https://v6.example/x", ["2600:1f18::1"], True),
        ("https://v6.example/x", ["fe80::1"], False),
        ("https://v6.example/x", ["fc00::1"], False),
        ("https://v6.example/x", ["::ffff:10.0.0.1"], False),
        ("https://multicast.example/x", ["224.0.0.1"], False),
        ("http://cdn-lfs.hf.co/x", ["18.160.1.2"], False),  # not https
        ("https://huggingface.co:8443/x", ["18.160.1.2"], True),
    ],
)
def test_check_url(url: str, addresses: list[str], allowed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    if allowed:
        urlpolicy.check_url(url, resolve=_resolver(*addresses))
    else:
        with pytest.raises(urlpolicy.DownloadRefusedError):
            urlpolicy.check_url(url, resolve=_resolver(*addresses))


def test_only_the_configured_endpoint_is_trusted_as_is() -> None:
    endpoint = "http://127.0.0.1:8080"
    urlpolicy.check_url("http://127.0.0.1:8080/api/models/x", endpoint)
    for url in ("http://127.0.0.1:8081/x", "https://127.0.0.1:8080/x", "http://localhost:8080/x"):
        with pytest.raises(urlpolicy.DownloadRefusedError):
            urlpolicy.check_url(url, endpoint)
