"""API keys: ``Authorization: Bearer KEY`` (OpenAI style) or HTTP basic auth (A1111 ``--api-auth``).

Keys are compared in constant time against every configured key. Without keys the server only
runs on loopback unless the operator passes ``--insecure`` on purpose.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
from collections.abc import Iterable

from gambarkan.errors import GambarkanError

#: Paths anyone may call, even with keys configured (load balancers, uptime checks).
PUBLIC_PATHS = frozenset({"/api/health"})


class AuthConfigError(GambarkanError):
    """The server would listen on the network without any API key."""

    code = "auth_required"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_keys(*sources: str | Iterable[str] | None) -> list[str]:
    """Keys from ``--api-key`` values and ``GAMBARKAN_API_KEYS`` (comma separated), deduplicated."""
    keys: list[str] = []
    for source in sources:
        if not source:
            continue
        items = source.split(",") if isinstance(source, str) else list(source)
        for item in items:
            for key in str(item).split(","):
                key = key.strip()
                if key and key not in keys:
                    keys.append(key)
    return keys


def check_binding(host: str, keys: list[str], insecure: bool) -> None:
    """Refuse to listen off loopback without a key unless ``insecure`` is set."""
    if keys or insecure or is_loopback(host):
        return
    raise AuthConfigError(
        f"refusing to listen on {host} without an API key",
        "pass --api-key KEY (or set GAMBARKAN_API_KEYS), or --insecure if you really want an open server",
    )


def _matches(candidate: str, keys: list[str]) -> bool:
    """Constant-time check of ``candidate`` against all keys (no early exit)."""
    given = candidate.encode("utf-8", "surrogateescape")
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key.encode("utf-8"))
    return found


def authorized(header: str | None, keys: list[str]) -> bool:
    """Is the ``Authorization`` header value a valid Bearer token or basic credential?"""
    if not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return bool(value) and _matches(value, keys)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return False
        user, _, password = decoded.partition(":")
        # Accept "anyuser:KEY" and A1111's "user:pass" given as the key itself.
        return _matches(password, keys) | _matches(decoded, keys) if password or user else False
    return False


def host_name(header: str) -> str:
    """The host part of a ``Host`` header, lowercased: ``[::1]:7860`` -> ``::1``, ``Localhost.:80`` -> ``localhost``."""
    host = header.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def host_allowed(header: str | None, allowed: Iterable[str] = ()) -> bool:
    """May a server without API keys answer a request for ``header``?

    Loopback names and addresses (``localhost``, ``*.localhost``, 127.0.0.0/8, ``::1``) and the
    names in ``allowed`` (``*`` allows every name). Anything else may be a DNS-rebinding page: a
    name the attacker controls, re-pointed at 127.0.0.1, so that the browser lets the page read
    the answers. A request without a Host header comes from no browser and is let through.
    """
    if header is None:
        return True
    host = host_name(header)
    if not host:
        return False
    names = {host_name(name) for name in allowed}
    if "*" in names or host in names:
        return True
    return host == "localhost" or host.endswith(".localhost") or is_loopback(host)


def _json_response(status: int, code: str, message: str, hint: str, extra_headers: list[tuple[bytes, bytes]] = ()) -> tuple[dict, dict]:
    body = json.dumps({"error": {"code": code, "message": message, "hint": hint, "status": status}}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra_headers],
    }
    return start, {"type": "http.response.body", "body": body}


class HostCheckMiddleware:
    """ASGI middleware for servers without API keys: only loopback ``Host`` names, and the allowed ones.

    Guards every route, the mounted web UI and its websockets included (DNS rebinding, issue 17).
    """

    def __init__(self, app, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed_hosts = list(allowed_hosts)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope.get("headers", []):
            if name == b"host":
                header = value.decode("latin-1")
                break
        if host_allowed(header, self.allowed_hosts):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        shown = (header or "")[:100].encode("ascii", "backslashreplace").decode()
        start, body = _json_response(
            403,
            "host_not_allowed",
            f"host '{shown}' is not allowed: a server without an API key answers only localhost and loopback addresses",
            "open it as http://127.0.0.1:PORT, or start it with --allow-host NAME (or with --api-key KEY)",
        )
        await send(start)
        await send(body)


class APIKeyMiddleware:
    """ASGI middleware guarding every HTTP route but ``PUBLIC_PATHS`` (the UI included)."""

    def __init__(self, app, keys: list[str]) -> None:
        self.app = app
        self.keys = list(keys)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.keys or scope.get("path") in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        if authorized(header, self.keys):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        start, body = _json_response(
            401,
            "unauthorized",
            "missing or wrong API key",
            "send 'Authorization: Bearer KEY' or HTTP basic auth with the key as password",
            [(b"www-authenticate", b'Bearer, Basic realm="gambarkan"')],
        )
        await send(start)
        await send(body)
