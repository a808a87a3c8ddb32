"""``gambarkan grid``: an X/Y/Z plot of one prompt across request fields."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from gambarkan.cli.common import err_console, handle_errors, not_empty, print_json, quiet_libraries
from gambarkan.cli.generate import StepProgress, options_to_fields, request_options


def _default_lang() -> str:
    lang = os.environ.get("GAMBARKAN_LANG") or os.environ.get("LANG") or ""
    return "id" if lang.lower().startswith("id") else "en"


@click.command()
@click.argument("prompt")
@click.option("--x", "x_axis", required=True, callback=not_empty, help='X axis: field=values, e.g. steps=10,20,30 or sr=kucing,anjing (Prompt S/R).')
@click.option("--y", "y_axis", default=None, callback=not_empty, help="Y axis, e.g. cfg=4,7.")
@click.option("--z", "z_axis", default=None, callback=not_empty, help='Z axis (one grid block per value), e.g. sampler="Euler a","DPM++ 2M".')
@request_options
@click.option("--lang", type=click.Choice(["id", "en"]), default=None, help="Language of the axis labels (default: GAMBARKAN_LANG / locale).")
@click.option("--json", "as_json", is_flag=True, help="Print the grid and cell paths as one JSON object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handle_errors
def grid(prompt: str, x_axis: str, y_axis: str | None, z_axis: str | None, lang: str | None, as_json: bool, quiet: bool, **options: Any) -> None:
    """Make PROMPT once per cell of an X/Y/Z plot and save one labelled grid plus every cell.

    Any request field can be an axis; sr=search,a,b is A1111's Prompt S/R. All cells share
    one seed unless an axis is seed.

    \b
    Examples:
      gambarkan grid "kucing di taman" --x steps=10,20,30 --y cfg=4,7
      gambarkan grid "kucing merah" --x sr=merah,biru,hijau --z sampler="Euler a","DPM++ 2M"
    """
    from gambarkan.engine.generate import _output_dir, default_engine
    from gambarkan.request import GenerationRequest
    from gambarkan.scale.grid import draw_grid, grid_parameters, parse_axis, plan_cells, save_grid

    axes = [parse_axis(x_axis), parse_axis(y_axis) if y_axis else None, parse_axis(z_axis) if z_axis else None]
    base = GenerationRequest(prompt=prompt, **options_to_fields(options))
    cells = plan_cells(base, axes)
    quiet_libraries()
    engine = default_engine()
    engine.surface = "cli"
    console = err_console()
    images: dict[tuple[int, int, int], Any] = {}
    paths: list[str] = []
    first_parameters = ""
    show = not quiet and not as_json and sys.stderr.isatty()
    for number, (cell, result) in enumerate(_with_progress(cells, engine, show), 1):
        images[(cell.x, cell.y, cell.z)] = result.images[0].image
        first_parameters = first_parameters or result.images[0].parameters
        paths += [str(p) for p in result.paths if p]
        if show:
            console.print(f"cell {number}/{len(cells)} done", markup=False)
    picture = draw_grid(images, axes, lang or _default_lang())
    folder = _output_dir(cells[0].request, engine.settings)
    path = save_grid(picture, Path(folder), grid_parameters(first_parameters, axes))
    if as_json:
        print_json({"grid": str(path), "cells": paths, "seed": cells[0].request.seed})
        return
    click.echo(str(path))
    if not quiet:
        console.print(f"{len(cells)} cells ({len(paths)} images saved next to the grid), seed {cells[0].request.seed}", markup=False)


def _with_progress(cells: list[Any], engine: Any, show: bool) -> Any:
    from gambarkan.scale.grid import run_cells

    with StepProgress(show) as progress:
        yield from run_cells(cells, engine, progress)
