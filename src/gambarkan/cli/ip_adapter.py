"""IP-Adapter on the command line: ``generate --ip-adapter IMG[:SCALE] --ip-adapter-model NAME|PATH``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from gambarkan.cli.common import fail, not_empty


def ip_adapter_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The IP-Adapter options of ``generate``."""
    func = click.option(
        "--ip-adapter-model",
        "ip_adapter_model",
        default=None,
        callback=not_empty,
        help="IP-Adapter NAME (a folder in GAMBARKAN_HOME/ip_adapter) or PATH (folder with image_encoder/, or its .safetensors).",
    )(func)
    return click.option(
        "--ip-adapter",
        "ip_adapter",
        default=None,
        callback=not_empty,
        help="Reference image IMAGE[:SCALE] whose look steers the result (scale 0-2, default 0.6), e.g. foto.png:0.8.",
    )(func)


def ip_adapter_fields(options: dict[str, Any]) -> dict[str, Any]:
    """``--ip-adapter``/``--ip-adapter-model`` -> the request's ``ip_adapter`` field (popped from options)."""
    from gambarkan.inputs.ip_adapter import parse_ip_adapter_option

    spec: str | None = options.pop("ip_adapter", None)
    model: str | None = options.pop("ip_adapter_model", None)
    if spec is None:
        if model:
            fail("--ip-adapter-model needs a --ip-adapter IMAGE to apply to (see: gambarkan generate --help)")
        return {}
    try:
        unit = parse_ip_adapter_option(spec)
    except ValueError as exc:
        fail(str(exc))
    if model:
        unit["model"] = model
    return {"ip_adapter": unit}
