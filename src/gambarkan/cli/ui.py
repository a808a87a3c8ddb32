"""``gambarkan ui``: the web UI alone, in the browser (``--share`` for a public link)."""

from __future__ import annotations

import os

import click

from gambarkan.cli.common import err_console, handle_errors, quiet_libraries


def key_auth(keys: list[str]) -> object:
    """Gradio login check: any user name, an API key as the password (like the server's basic auth)."""
    from gambarkan.server.auth import _matches

    return lambda _user, password: _matches(password or "", keys)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on; anything but loopback needs --api-key.")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--share", is_flag=True, help="Also make a temporary public gradio.live link (needs --api-key or --insecure).")
@click.option("--lang", type=click.Choice(["id", "en"]), default="id", show_default=True, help="Interface language (switchable in the page).")
@click.option("--api-key", "api_keys", multiple=True, help="Password for the page (any user name); also GAMBARKAN_API_KEYS=key1,key2.")
@click.option("--insecure", is_flag=True, help="Allow a public link or off-loopback address without a key (anyone can use it).")
@handle_errors
def ui(host: str, port: int, share: bool, lang: str, api_keys: tuple[str, ...], insecure: bool) -> None:
    """Open the web UI (Bahasa Indonesia by default) at http://127.0.0.1:7860.

    \b
    Examples:
      gambarkan ui
      gambarkan ui --lang en --port 8000
      gambarkan ui --share --api-key "$(openssl rand -hex 8)"
    \b
    `gambarkan serve` serves the same UI at / next to the HTTP API.
    """
    from gambarkan.cli.serve import check_port_free
    from gambarkan.server.auth import check_binding, parse_keys
    from gambarkan.ui.app import _import_gradio, launch

    _import_gradio()
    keys = parse_keys(list(api_keys), os.environ.get("GAMBARKAN_API_KEYS"))
    check_binding("0.0.0.0" if share else host, keys, insecure)
    check_port_free(host, port)
    quiet_libraries()
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    err_console().print(f"gambarkan web UI on http://{shown}:{port}" + ("  (log in with any name and your API key)" if keys else ""), markup=False)
    launch(share=share, host=host, port=port, lang=lang, block=True, auth=key_auth(keys) if keys else None)
