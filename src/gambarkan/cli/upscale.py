"""``gambarkan upscale``: make an image bigger with lanczos or an upscaler model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gambarkan.cli.common import handle_errors, not_empty, print_json, quiet_libraries


def free_name(out_dir: Path, stem: str) -> Path:
    """``stem.png`` in ``out_dir``, or ``stem-2.png`` ... when taken (nothing is overwritten)."""
    path = out_dir / f"{stem}.png"
    number = 2
    while path.exists():
        path = out_dir / f"{stem}-{number}.png"
        number += 1
    return path


def save_upscaled(image: Any, source: str, out_dir: Path, scale: float, upscaler: str) -> Path:
    """Write the upscaled PNG atomically, keeping the source's generation parameters and
    adding A1111's postprocessing fields."""
    import io

    from PIL.PngImagePlugin import PngInfo

    from gambarkan.models.upscalers import label
    from gambarkan.outputs.png import PARAMETERS_KEY, read_parameters_text, write_atomic

    info = PngInfo()
    try:
        parameters = read_parameters_text(source)
    except Exception:  # noqa: BLE001 - a source without (readable) parameters is fine
        parameters = None
    if parameters:
        info.add_text(PARAMETERS_KEY, parameters)
    info.add_text("postprocessing", f"Postprocess upscale by: {scale:g}, Postprocess upscaler: {label(upscaler)}")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    path = free_name(out_dir, f"{Path(source).stem}-x{scale:g}")
    write_atomic(path, buffer.getvalue())
    return path


@click.command()
@click.argument("images", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--scale", "-s", type=float, default=4.0, show_default=True, help="How many times bigger (1-8).")
@click.option("--upscaler", "-u", default="lanczos", show_default=True, callback=not_empty, help="lanczos, nearest, or an upscaler model in GAMBARKAN_HOME/upscalers.")
@click.option("--out", "-o", "out_dir", default=None, callback=not_empty, help="Output folder (default: beside each image).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", help="Where to run an upscaler model.")
@click.option("--allow-pickle", is_flag=True, help="Allow a .pth upscaler: scanned, then read as plain tensors (never run).")
@click.option("--list", "list_only", is_flag=True, help="List the upscalers gambarkan knows here.")
@click.option("--json", "as_json", is_flag=True, help="Print the written paths as JSON.")
@handle_errors
def upscale(images: tuple[str, ...], scale: float, upscaler: str, out_dir: str | None, device: str, allow_pickle: bool, list_only: bool, as_json: bool) -> None:
    """Make IMAGES bigger (default 4x with Lanczos).

    \b
    Examples:
      gambarkan upscale foto.png
      gambarkan upscale foto.png --scale 2 --upscaler 4x-UltraSharp -o besar/
    """
    from gambarkan.errors import InvalidRequestError
    from gambarkan.models.upscalers import all_names, canonical_name

    if list_only:
        names = all_names()
        if as_json:
            print_json({"upscalers": [{"name": n, "label": lbl} for n, lbl in names.items()]})
        else:
            for name, lbl in names.items():
                click.echo(f"{name}\t{lbl}")
        return
    if not images:
        raise InvalidRequestError("no image given", "e.g. gambarkan upscale foto.png --scale 2")
    name = canonical_name(upscaler)
    quiet_libraries()
    from gambarkan.engine.upscale import upscale as run_upscale

    written = []
    for source in images:
        image = run_upscale(source, scale, name, device=device, allow_pickle=allow_pickle)
        folder = Path(out_dir).expanduser() if out_dir else Path(source).expanduser().resolve().parent
        written.append(save_upscaled(image, source, folder, scale, name))
    if as_json:
        print_json({"images": [str(p) for p in written]})
        return
    for path in written:
        click.echo(str(path))
