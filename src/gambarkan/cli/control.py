"""ControlNet on the command line: ``generate --control ...`` options and ``gambarkan control-map``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gambarkan.cli.common import fail, not_empty, quiet_libraries


def control_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The ControlNet options of ``generate`` and ``again``."""
    options = [
        click.option(
            "--control",
            "control",
            multiple=True,
            callback=not_empty,
            help="ControlNet unit PREPROCESSOR:IMAGE[:WEIGHT[:START:END]], e.g. canny:foto.png:0.8 (repeatable).",
        ),
        click.option(
            "--control-model",
            "control_model",
            multiple=True,
            callback=not_empty,
            help="ControlNet model NAME or PATH per --control, in order (default: the catalog's for the preprocessor).",
        ),
        click.option(
            "--save-control-map",
            "save_control_map",
            type=click.Path(file_okay=False),
            default=None,
            callback=not_empty,
            help="Also write each unit's control map as a PNG into this folder.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def control_fields(options: dict[str, Any]) -> dict[str, Any]:
    """``--control``/``--control-model`` values -> the request's ``controlnet`` field (popped from options)."""
    from gambarkan.inputs.control import parse_control_option

    specs: tuple[str, ...] = options.pop("control", None) or ()
    models: tuple[str, ...] = options.pop("control_model", None) or ()
    options.pop("save_control_map", None)
    if not specs:
        if models:
            fail("--control-model needs a --control unit to apply to (see: gambarkan generate --help)")
        return {}
    if len(models) > len(specs):
        fail(f"{len(models)} --control-model values for {len(specs)} --control units: give one per unit, in order")
    units = []
    for i, spec in enumerate(specs):
        try:
            unit = parse_control_option(spec)
        except ValueError as exc:
            fail(str(exc))
        if i < len(models):
            unit["model"] = models[i]
        units.append(unit)
    return {"controlnet": units}


def save_control_maps(request: Any, width: int, height: int, folder: str) -> list[Path]:
    """Write the request's control maps at the size the run used into ``folder``; their paths.

    The maps are made again from the request (the same pure function the engine used)."""
    from gambarkan.engine.control import prepare
    from gambarkan.outputs.png import write_atomic

    control = prepare(request.controlnet, width, height)
    out = Path(folder).expanduser()
    paths = []
    for i, image in enumerate(control.maps if control else []):
        path = out / f"control-{i}-{request.controlnet[i].preprocessor}.png"
        write_atomic(path, _png_bytes(image))
        paths.append(path)
    return paths


def _png_bytes(image: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@click.command("control-map")
@click.argument("preprocessor")
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("--out", "-o", "out", required=True, type=click.Path(dir_okay=False), help="Where to write the map (PNG).")
@click.option("--resolution", "-r", type=int, default=512, show_default=True, help="Preprocessor resolution (short side).")
@click.option("--threshold-a", type=float, default=None, help="First setting (canny: low threshold).")
@click.option("--threshold-b", type=float, default=None, help="Second setting (canny: high threshold).")
def control_map(preprocessor: str, image: str, out: str, resolution: int, threshold_a: float | None, threshold_b: float | None) -> None:
    """Make the control map PREPROCESSOR makes of IMAGE (see it before generating).

    Preprocessors: see `gambarkan preprocessors`."""
    from gambarkan.inputs.images import load_image
    from gambarkan.inputs.preprocessors import make_control_map
    from gambarkan.outputs.png import write_atomic

    quiet_libraries()
    picture = load_image(image, "image")
    made = make_control_map(preprocessor, picture.image, resolution, threshold_a, threshold_b)
    write_atomic(Path(out).expanduser(), _png_bytes(made))
    click.echo(str(out))


@click.command("preprocessors")
def preprocessors() -> None:
    """List the ControlNet preprocessors and their settings."""
    from gambarkan.inputs.preprocessors import PREPROCESSORS

    for p in PREPROCESSORS.values():
        sliders = ", ".join(f"{s.label} {s.default:g} ({s.low:g}-{s.high:g})" for s in (p.slider_a, p.slider_b) if s)
        extra = f"  needs {p.needs_weights}" if p.needs_weights else ""
        aliases = f"  (also: {', '.join(p.aliases)})" if p.aliases else ""
        click.echo(f"{p.name}{aliases}{'  ' + sliders if sliders else ''}{extra}")
