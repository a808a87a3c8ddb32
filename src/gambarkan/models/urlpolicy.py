"""What a model download may connect to, enforced on every HTTP request huggingface_hub makes.

Policy: the configured endpoint (``HF_ENDPOINT``, default https://huggingface.co) is trusted
as the operator set it; every other URL, including each hop of a redirect, must be ``https``
and its host must resolve only to public addresses (no loopback, private, link-local, CGNAT,
multicast or reserved ranges), so a hostile repo or mirror cannot point downloads at the
machine's own services or a cloud metadata endpoint (SSRF). A response body may not exceed the
size cap of the running pull (the largest file the Hub listed), so a server cannot fill the
disk by sending more than it announced. Violations raise ``DownloadRefusedError``.

Residual risk, documented in docs/security.md: the host is resolved here and again by the HTTP
client (DNS rebinding between the two is not prevented), and Xet transfers (``hf_xet``) use
their own client; both are covered by the sha256 check of every file after the download.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from gambarkan.errors import NetworkError

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_CAP_BYTES = 64 * 2**20  # API listings and small files before a pull knows its sizes

_lock = threading.Lock()
_installed = False
_cap_bytes: int | None = None


class DownloadRefusedError(NetworkError):
    """A download URL (or a redirect) broke the policy, or a file was larger than announced."""

    http_status = 403
    code = "download_refused"


def configured_endpoint() -> str:
    """``HF_ENDPOINT`` at call time, else the Hub's own address."""
    import os

    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, endpoint: str | None = None, resolve: Any = socket.getaddrinfo) -> None:
    """Raise DownloadRefusedError unless ``url`` may be fetched under the policy."""
    endpoint = endpoint or configured_endpoint()
    scheme, host, port = _origin(url)
    if (scheme, host, port) == _origin(endpoint):
        return  # the operator's own endpoint, as configured (tests use http://127.0.0.1:PORT)
    shown = f"{scheme}://{host}" if host else url[:80]
    if scheme != "https":
        raise DownloadRefusedError(f"refusing to download from {shown}: only https is allowed", "use an https mirror in HF_ENDPOINT")
    if not host:
        raise DownloadRefusedError(f"refusing to download from {url[:80]!r}: no host", "check HF_ENDPOINT")
    try:
        infos = resolve(host, port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise NetworkError(f"cannot resolve {host} to download from it", "check the connection with `gambarkan doctor`") from None
    addresses = sorted({info[4][0] for info in infos})
    blocked = [a for a in addresses if not _public(a)]
    if not addresses or blocked:
        raise DownloadRefusedError(
            f"refusing to download from {host}: it resolves to a non-public address ({', '.join(blocked) or 'none'})",
            "downloads may only come from the configured endpoint or public https hosts",
        )


_capped_classes: dict[type, type] = {}


def _capped(stream: Any, cap: int, url: str) -> Any:
    """Wrap an httpx byte stream so it stops past ``cap`` bytes (a subclass of the client's own
    SyncByteStream, since huggingface_hub ships its own httpx fork)."""
    import sys

    module = sys.modules[type(stream).__module__.split(".")[0]]
    base = getattr(module, "SyncByteStream", object)
    cls = _capped_classes.get(base)
    if cls is None:

        class CappedStream(base):  # type: ignore[misc, valid-type]
            def __init__(self, inner: Any, cap: int, url: str) -> None:
                self._inner, self._cap, self._url, self._seen = inner, cap, url, 0

            def __iter__(self) -> Iterator[bytes]:
                for chunk in self._inner:
                    self._seen += len(chunk)
                    if self._seen > self._cap:
                        raise DownloadRefusedError(
                            f"download from {_origin(self._url)[1]} is larger than announced (over {self._cap} bytes)",
                            "the server is misbehaving; try again later",
                        )
                    yield chunk

            def close(self) -> None:
                self._inner.close()

        cls = _capped_classes[base] = CappedStream
    return cls(stream, cap, url)


def _on_request(request: Any) -> None:
    check_url(str(request.url))


def _on_response(response: Any) -> None:
    cap = _cap_bytes or DEFAULT_CAP_BYTES
    length = response.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > cap and response.request.method != "HEAD":
        raise DownloadRefusedError(f"download from {_origin(str(response.request.url))[1]} is larger than announced ({length} > {cap} bytes)", "the server is misbehaving; try again later")
    response.stream = _capped(response.stream, cap, str(response.request.url))


def install() -> None:
    """Make every huggingface_hub client enforce the policy (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        from huggingface_hub import set_client_factory
        from huggingface_hub.utils._http import default_client_factory

        def factory() -> Any:
            client = default_client_factory()
            hooks = client.event_hooks
            hooks["request"] = [*hooks.get("request", []), _on_request]
            hooks["response"] = [*hooks.get("response", []), _on_response]
            client.event_hooks = hooks
            return client

        set_client_factory(factory)
        _installed = True


@contextlib.contextmanager
def size_cap(max_bytes: int) -> Iterator[None]:
    """Within the block, no response body may exceed ``max_bytes`` (the largest planned file)."""
    global _cap_bytes
    previous = _cap_bytes
    _cap_bytes = max(int(max_bytes), DEFAULT_CAP_BYTES // 64)
    try:
        yield
    finally:
        _cap_bytes = previous
