"""``gambarkan serve``: the HTTP server (OpenAI- and A1111-compatible APIs, job API with progress)."""

from __future__ import annotations

import os
from typing import Any

import click

from gambarkan.cli.common import err_console, finite, handle_errors, not_empty, quiet_libraries, spinner


def _import_server() -> None:
    from gambarkan.errors import DependencyMissingError

    try:
        import fastapi  # noqa: F401
        import sse_starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise DependencyMissingError(f"gambarkan serve needs {exc.name}", "pip install 'gambarkan[server]'") from None


def _ui_mount() -> Any:
    """The web UI's mount hook (UI at ``/``) when gradio (the ``ui`` extra) is installed, else None."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        return None
    from gambarkan.ui.app import mount

    return mount


def check_port_free(host: str, port: int) -> None:
    """Fail in one line before loading anything when ``host:port`` cannot be listened on."""
    import socket

    from gambarkan.errors import InvalidRequestError

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn picks it
        infos = socket.getaddrinfo(host or None, port, family, socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError):
        raise InvalidRequestError(f"cannot listen on '{host}': no such address", "use --host 127.0.0.1, or 0.0.0.0 with --api-key") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a port in TIME_WAIT is free
        try:
            probe.bind(address)
        except OSError as exc:
            raise InvalidRequestError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                "another program (maybe another gambarkan) uses that port; choose another with --port",
            ) from None


def check_default_model(model: str | None, preset: str | None, settings: Any) -> None:
    """Reject an unknown --preset or a --model that names nothing, before the server starts."""
    from gambarkan.models.catalog import get_package, load_catalog

    if preset:
        get_package(preset, settings)  # UnknownModelError with "did you mean"
    if model and model.strip().lower() not in load_catalog(settings):
        from gambarkan.engine.pipelines import classify_source

        classify_source(model)  # a missing path or a name that is no Hub id -> UnknownModelError


def host_allow_list(host: str, allowed: tuple[str, ...]) -> list[str]:
    """``--allow-host`` values plus the address the server was told to listen on (unless a wildcard)."""
    names = list(allowed)
    if host not in ("", "0.0.0.0", "::"):
        names.append(host)
    return names


def run_server(app: Any, host: str, port: int, shutdown_timeout: float, log_level: str = "info") -> None:
    """Serve ``app`` with uvicorn; on SIGTERM/SIGINT stop taking jobs at once and cancel queued ones."""
    import uvicorn

    queue = app.state.gambarkan.queue

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            queue.begin_shutdown(shutdown_timeout)
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=int(shutdown_timeout) + 15,
        server_header=False,
    )
    Server(config).run()


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback needs --api-key.",
)
@click.option("--port", default=7860, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option(
    "--model", "-m", default=None, callback=not_empty, help="Default model: a package name, Hub id, diffusers folder or .safetensors file."
)
@click.option("--preset", "-p", default=None, callback=not_empty, help="Default model package (see: gambarkan models list).")
@click.option(
    "--api-key", "api_keys", multiple=True, help="Accepted API key (repeatable); also GAMBARKAN_API_KEYS=key1,key2."
)
@click.option("--insecure", is_flag=True, help="Allow listening off loopback without an API key (anyone can use it).")
@click.option(
    "--allow-host",
    "allowed_hosts",
    multiple=True,
    callback=not_empty,
    help="Without an API key only localhost/loopback Host names are answered; also answer NAME (repeatable, '*' for any).",
)
@click.option(
    "--queue-size",
    default=32,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Jobs that may wait; more get HTTP 429.",
)
@click.option(
    "--max-size",
    default=2048,
    show_default=True,
    type=click.IntRange(64, 8192),
    help="Largest width/height a request may ask for.",
)
@click.option(
    "--max-steps", default=150, show_default=True, type=click.IntRange(1, 150), help="Most steps a request may ask for."
)
@click.option(
    "--max-images",
    default=16,
    show_default=True,
    type=click.IntRange(1, 1600),
    help="Most images per request (batch size x count).",
)
@click.option(
    "--max-body",
    default=1024 * 1024,
    show_default=True,
    type=click.IntRange(1024),
    help="Largest request body in bytes.",
)
@click.option(
    "--shutdown-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0, 24 * 3600),
    callback=finite,
    help="Seconds the running job may finish on shutdown before it is cancelled.",
)
@click.option(
    "--max-attempts",
    default=3,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Runs of a job that keeps crashing the server before it is marked failed.",
)
@click.option(
    "--batch",
    "batching",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "on", "off"]),
    help="Run queued jobs that differ only in prompt and seed as one batch (auto: on a GPU only).",
)
@click.option(
    "--no-save", is_flag=True, help="Do not keep PNGs of OpenAI b64_json and native jobs (A1111 follows save_images)."
)
@click.option("--ray", "ray_address", is_flag=False, flag_value="auto", default=None, metavar="[ADDRESS]",
              help="Run the engine as Ray Serve replicas (pip install 'gambarkan[ray]'); ADDRESS defaults to a local Ray.")
@click.option("--replicas", type=click.IntRange(1, 1024), default=None, help="With --ray: engine replicas (one GPU each when there are GPUs).")
@click.option(
    "--log-level",
    default="info",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    show_default=True,
)
@handle_errors
def serve(
    host: str,
    port: int,
    model: str | None,
    preset: str | None,
    api_keys: tuple[str, ...],
    insecure: bool,
    allowed_hosts: tuple[str, ...],
    queue_size: int,
    max_size: int,
    max_steps: int,
    max_images: int,
    max_body: int,
    shutdown_timeout: float,
    max_attempts: int,
    batching: str,
    no_save: bool,
    log_level: str,
    ray_address: str | None = None,
    replicas: int | None = None,
) -> None:
    """Serve the OpenAI- and AUTOMATIC1111-compatible APIs, the job API and the web UI over HTTP.

    The web UI is at / when the ui extra is installed (pip install 'gambarkan[ui]').

    \b
    Examples:
      gambarkan serve                              # http://127.0.0.1:7860/docs
      gambarkan serve --preset anime --port 8000
      gambarkan serve --host 0.0.0.0 --api-key "$(openssl rand -hex 16)"
    \b
    Clients: OpenAI(base_url="http://127.0.0.1:7860/v1", api_key="KEY") or
    webuiapi.WebUIApi(host="127.0.0.1", port=7860).
    """
    from gambarkan.config import Settings
    from gambarkan.server.auth import check_binding, parse_keys

    _import_server()
    keys = parse_keys(list(api_keys), os.environ.get("GAMBARKAN_API_KEYS"))
    check_binding(host, keys, insecure)
    check_port_free(host, port)
    settings = Settings.from_env()
    check_default_model(model, preset, settings)
    quiet_libraries()

    from gambarkan.server.app import create_app
    from gambarkan.server.state import ServerConfig

    config = ServerConfig(
        model=model,
        preset=preset,
        api_keys=keys,
        allowed_hosts=host_allow_list(host, allowed_hosts),
        queue_size=queue_size,
        max_width=max_size,
        max_height=max_size,
        max_steps=max_steps,
        max_images=max_images,
        max_body_bytes=max_body,
        shutdown_timeout=shutdown_timeout,
        save_outputs=not no_save,
        max_attempts=max_attempts,
        batching=batching,
    )
    engines = None
    if ray_address is not None:
        from gambarkan.scale.ray import RemoteEngine, connect, deploy_engines

        connect(ray_address)
        handle = deploy_engines(replicas or 1)
        engines = [RemoteEngine(handle, settings) for _ in range(replicas or 1)]  # one queue worker per replica
    elif replicas is not None:
        from gambarkan.errors import InvalidRequestError

        raise InvalidRequestError("--replicas needs --ray", "add --ray (a local Ray) or --ray HOST:PORT")
    with spinner("server"):  # importing the web UI and opening the queue can take a while
        app = create_app(settings, config=config, engines=engines, mount_ui=_ui_mount())
    console = err_console()
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    console.print(
        f"gambarkan {'(API key required) ' if keys else ''}on http://{shown}:{port}  docs: http://{shown}:{port}/docs",
        markup=False,
    )
    if insecure and not keys:
        console.print("warning: no API key; anyone who can reach this address can use the server", markup=False)
    if not keys and not allowed_hosts and host in ("0.0.0.0", "::"):
        console.print("note: without an API key only localhost and loopback Host names are answered; add others with --allow-host NAME", markup=False)
    run_server(app, host, port, shutdown_timeout, log_level)
