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
    """List the sampler names and schedule types (AUTOMATIC1111 style) and the diffusers scheduler behind each.

    Any sampler takes any schedule type: --sampler "Euler a" --scheduler karras, or "Euler a Karras".
    """
    from gambarkan.engine.samplers import SAMPLERS, SCHEDULE_OPTIONS
    from gambarkan.sampler_names import SAMPLER_NAMES, SCHEDULE_TYPES

    if as_json:
        print_json([{"name": s.name, "aliases": list(s.aliases), "scheduler": s.scheduler, "options": s.options,
                     "default_schedule": n.default_schedule or "automatic", "description": s.description}
                    for s, n in zip(SAMPLERS, SAMPLER_NAMES)])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("Sampler", "diffusers scheduler", "Automatic means", "Notes")
    for s, n in zip(SAMPLERS, SAMPLER_NAMES):
        flags = ", ".join(f"{k}={v}" for k, v in s.options.items())
        table.add_row(s.name, s.scheduler + (f" ({flags})" if flags else ""), n.default_schedule or "model's own", s.description)
    schedules = Table("Schedule type", "diffusers option", "Notes")
    for t in SCHEDULE_TYPES:
        options, note = SCHEDULE_OPTIONS[t.name]
        schedules.add_row(t.label, ", ".join(f"{k}={v}" for k, v in options.items()) or "-", note)
    console = Console(highlight=False)
    console.print(table)
    console.print(schedules)
