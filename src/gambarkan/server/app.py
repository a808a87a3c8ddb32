"""The FastAPI app factory: ``create_app(settings, engine=None, config=None, mount_ui=None)``.

Routes: OpenAI (``/v1``), A1111 (``/sdapi/v1``), native (``/api``), docs at ``/docs``. ``/`` is
left free for the web UI: pass ``mount_ui(app, state)`` (or call it later) to mount it there.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from gambarkan import __version__
from gambarkan.server.state import ServerConfig, ServerState

log = logging.getLogger("gambarkan.server")

UIMount = Callable[[Any, ServerState], None]


# Routes whose bodies carry images: they get ServerConfig.max_image_body_bytes instead.
IMAGE_PATHS = frozenset({"/sdapi/v1/img2img", "/sdapi/v1/extra-single-image", "/sdapi/v1/extra-batch-images",
                         "/sdapi/v1/png-info", "/v1/images/edits", "/v1/images/variations"})


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes with 413, before anything parses them."""

    def __init__(self, app: Any, limit: int, image_limit: int | None = None) -> None:
        self.app = app
        self.base_limit = limit
        self.image_limit = image_limit or limit
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.image_limit if scope.get("path") in IMAGE_PATHS else self.base_limit
        if limit != self.limit:
            await BodyLimitMiddleware(self.app, limit)(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = True
                if too_big:
                    await self._refuse(send)
                    return
        seen = 0

        async def limited_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    from starlette.exceptions import HTTPException

                    # An HTTPException passes through FastAPI's body parsing unchanged (others become 400).
                    raise HTTPException(413, f"request body is larger than {self.limit} bytes (send a smaller request)")
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, send: Any) -> None:
        import json

        body = json.dumps(
            {
                "error": {
                    "code": "body_too_large",
                    "message": f"request body is larger than {self.limit} bytes",
                    "hint": "send a smaller request",
                    "status": 413,
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def create_app(
    settings: Any = None,
    engine: Any = None,
    *,
    config: ServerConfig | None = None,
    engines: list[Any] | None = None,
    mount_ui: UIMount | None = None,
    start_workers: bool = True,
) -> Any:
    """Build the HTTP app. ``engine`` (or ``engines``, one per device) defaults to a new Engine.

    Workers start with the app's lifespan (uvicorn, or ``with TestClient(app)``) and stop on
    shutdown: queued jobs are cancelled, the running one may finish within
    ``config.shutdown_timeout`` seconds and is cancelled after that.
    """
    from fastapi import FastAPI

    from gambarkan.config import Settings
    from gambarkan.errors import DependencyMissingError
    from gambarkan.server import a1111, controlnet, native, openai, openai_edits
    from gambarkan.server.auth import APIKeyMiddleware, HostCheckMiddleware
    from gambarkan.server.errors import install_error_handlers

    settings = settings or Settings.from_env()
    config = config or ServerConfig()
    if engines is None:
        if engine is None:
            from gambarkan.engine.generate import Engine

            engine = Engine(settings)
            if hasattr(engine, "surface"):
                engine.surface = "server"  # how the history labels these runs
        engines = [engine]
    state = ServerState(settings, engines, config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any):
        if start_workers:
            state.queue.start()
        try:
            yield
        finally:
            import anyio

            await anyio.to_thread.run_sync(state.queue.shutdown, config.shutdown_timeout)

    app = FastAPI(
        title="gambarkan",
        version=__version__,
        description="Text to image (Bahasa Indonesia or English) with Stable Diffusion: OpenAI-, AUTOMATIC1111-compatible and native job APIs.",
        lifespan=lifespan,
    )
    app.state.gambarkan = state
    install_error_handlers(app)
    app.include_router(openai.router)
    app.include_router(openai_edits.router)
    app.include_router(a1111.router)
    app.include_router(controlnet.router)
    app.include_router(native.router)
    # Outermost first: auth before the body limit, so unauthenticated clients learn nothing else.
    app.add_middleware(BodyLimitMiddleware, limit=config.max_body_bytes, image_limit=config.max_image_body_bytes)
    app.add_middleware(APIKeyMiddleware, keys=config.api_keys)
    if not config.api_keys:  # no key: a DNS-rebinding page must not reach it through its own name
        app.add_middleware(HostCheckMiddleware, allowed_hosts=config.allowed_hosts)
    if mount_ui is not None:
        try:
            mount_ui(app, state)
        except ImportError as exc:
            raise DependencyMissingError(
                f"the web UI needs {exc.name or 'gradio'}", "pip install 'gambarkan[ui]'"
            ) from None
    return app
