"""``gambarkan info`` (read a PNG's parameters) and ``gambarkan samplers``."""

from __future__ import annotations

import click

from gambarkan.cli.common import handle_errors, not_empty, print_json


@click.command()
@click.argument("image", type=click.Path(dir_okay=False), callback=not_empty)
@click.option("--json", "as_json", is_flag=True, help="Print the parameters as one JSON object.")
@handle_errors
def info(image: str, as_json: bool) -> None:
    """Show the generation parameters stored in IMAGE (ours or AUTOMATIC1111's)."""
    from gambarkan.outputs.png import read_parameters

    params = read_parameters(image)
    if as_json:
        print_json({k: v for k, v in params.items() if k != "raw"})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None)
    table.add_row("Prompt", params["prompt"])
    if params.get("negative_prompt"):
        table.add_row("Negative prompt", params["negative_prompt"])
    for key, value in params.items():
        if key not in ("prompt", "negative_prompt", "raw", "width", "height"):
            table.add_row(key, str(value))
    Console(highlight=False).print(table)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def samplers(as_json: bool) -> None:
    """List the sampler names (AUTOMATIC1111 style) and the diffusers scheduler behind each."""
    from gambarkan.engine.samplers import SAMPLERS

    if as_json:
        print_json([{"name": s.name, "scheduler": s.scheduler, "options": s.options, "description": s.description} for s in SAMPLERS])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("Sampler", "diffusers scheduler", "Notes")
    for s in SAMPLERS:
        flags = ", ".join(f"{k}={v}" for k, v in s.options.items())
        table.add_row(s.name, s.scheduler + (f" ({flags})" if flags else ""), s.description)
    Console(highlight=False).print(table)
