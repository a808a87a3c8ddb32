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
        body = json.dumps(
            {
                "error": {
                    "code": "unauthorized",
                    "message": "missing or wrong API key",
                    "hint": "send 'Authorization: Bearer KEY' or HTTP basic auth with the key as password",
                    "status": 401,
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer, Basic realm="gambarkan"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
