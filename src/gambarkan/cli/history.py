"""``gambarkan history`` (list, show, export, rm) and ``gambarkan again ID``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from gambarkan.cli.common import RunId, handle_errors, not_empty, print_json
from gambarkan.cli.generate import options_to_fields, request_options, run_request

_STATUS_STYLE = {"done": "green", "failed": "red", "cancelled": "yellow", "interrupted": "magenta", "running": "cyan"}


def _open() -> Any:
    from gambarkan.outputs.history import History

    return History.open()


def _when(stamp: str | None, short: bool = False) -> str:
    """Local time of an ISO stamp; ``short`` leaves out the year when it is this year."""
    if not stamp:
        return ""
    try:
        when = datetime.fromisoformat(stamp).astimezone()
    except ValueError:
        return stamp
    if short and when.year == datetime.now().year:
        return when.strftime("%m-%d %H:%M")
    return when.strftime("%Y-%m-%d %H:%M")


def _short(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def _prompt_cell(record: dict[str, Any]) -> Any:
    from rich.text import Text

    cell = Text(_short(record["original_prompt"]))
    if record["prompt"] and record["prompt"] != record["original_prompt"]:
        cell.append("\n→ " + _short(record["prompt"]), style="dim")
    return cell


@click.group(invoke_without_command=True)
@click.option(
    "--search", "-s", "text", default=None, help="Only runs whose original or English prompt contains every word."
)
@click.option(
    "--limit", "-n", type=click.IntRange(min=0), default=20, show_default=True, help="How many runs to show (0 = all)."
)
@click.option(
    "--status",
    type=click.Choice(["done", "failed", "cancelled", "interrupted", "running"]),
    default=None,
    help="Only runs with this status.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as one JSON array.")
@click.pass_context
@handle_errors
def history(ctx: click.Context, text: str | None, limit: int, status: str | None, as_json: bool) -> None:
    """List past generations, newest first.

    \b
    Examples:
      gambarkan history
      gambarkan history --search kucing --limit 5
      gambarkan history show 12
      gambarkan again 12 --seed 43
      gambarkan history export --format csv --out riwayat.csv
    """
    if ctx.invoked_subcommand is not None:
        return
    with _open() as store:
        records = store.search(text, limit or None, status)
    if as_json:
        print_json(records)
        return
    if not records:
        click.echo(
            f"no generations match '{text}'" if text else 'no generations yet (make one with: gambarkan generate "...")'
        )
        return
    from rich import box
    from rich.table import Table

    table = Table(header_style="bold", expand=True, box=box.SIMPLE_HEAD, pad_edge=False)
    from rich.text import Text

    for name in ("ID", "When", "Status", "Prompt", "Model", "Seed", "Size"):
        numeric = name in ("ID", "Seed")
        if name == "Prompt":
            table.add_column(name, ratio=1, min_width=20, overflow="fold")
        else:
            table.add_column(name, justify="right" if numeric else "left", no_wrap=True, overflow="ellipsis")
    for r in records:
        size = f"{r['width']}x{r['height']}" if r["width"] else ""
        cells = [
            str(r["id"]), _when(r["created_at"], short=True), Text(r["status"], style=_STATUS_STYLE.get(r["status"], "")), _prompt_cell(r),
            _short(r["model"] or "", 20), "" if r["seed"] is None else str(r["seed"]), size,
        ]  # fmt: skip
        table.add_row(*(c if isinstance(c, Text) else Text(c) for c in cells))
    _console().print(table)


@history.command()
@click.argument("run_id", metavar="ID", type=RunId())
@click.option("--json", "as_json", is_flag=True, help="Print the run as one JSON object.")
@handle_errors
def show(run_id: int, as_json: bool) -> None:
    """Show everything stored about run ID: prompts, settings, seeds, files, timings, error."""
    with _open() as store:
        record = store.get(run_id)
    if as_json:
        print_json(record)
        return
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")

    def row(label: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            grid.add_row(label, value if isinstance(value, Text) else Text(str(value)))

    row("ID", str(record["id"]))
    row("Status", Text(record["status"], style=_STATUS_STYLE.get(record["status"], "")))
    row("Error", record["error"])
    row("Started", _when(record["created_at"]))
    row("Finished", _when(record["finished_at"]))
    row("Prompt", record["original_prompt"])
    if record["prompt"] != record["original_prompt"]:
        row("English prompt", record["prompt"])
    row("Negative", record["original_negative_prompt"])
    if record["negative_prompt"] != record["original_negative_prompt"]:
        row("English negative", record["negative_prompt"])
    row("Translator", record["translator"])
    row("Model", f"{record['model']} [{record['model_hash']}]" if record["model_hash"] else record["model"])
    row("Preset", record["preset"])
    settings = [
        record["sampler"], f"{record['steps']} steps" if record["steps"] else None, f"CFG {record['cfg']:g}" if record["cfg"] is not None else None,
        f"{record['width']}x{record['height']}" if record["width"] else None, f"clip skip {record['clip_skip']}" if (record["clip_skip"] or 1) > 1 else None,
    ]  # fmt: skip
    row("Settings", ", ".join(s for s in settings if s))
    row(
        "Seeds",
        ", ".join(str(s) for s in record["seeds"]) or (str(record["seed"]) if record["seed"] is not None else None),
    )
    timings = record["timings"]
    if timings:
        row("Time", ", ".join(f"{k} {v:.2f}s" for k, v in timings.items() if not k.startswith("peak")))
    row("Surface", record["surface"])
    _console().print(grid)
    if record["paths"]:  # plain lines, never wrapped, so they can be copied
        click.echo("Images:")
        for name in record["paths"]:
            click.echo(f"  {name}" + ("" if Path(name).is_file() else " (missing)"))
    click.echo(f"Run it again: gambarkan again {record['id']}")


@history.command()
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True, help="Output format."
)
@click.option(
    "--out",
    "-o",
    "out_file",
    type=click.Path(dir_okay=False),
    default=None,
    callback=not_empty,
    help="Write to FILE (atomically) instead of stdout.",
)
@click.option(
    "--search", "-s", "text", default=None, help="Only runs whose original or English prompt contains every word."
)
@click.option("--limit", "-n", type=click.IntRange(min=0), default=0, help="At most N runs, newest first (0 = all).")
@handle_errors
def export(fmt: str, out_file: str | None, text: str | None, limit: int) -> None:
    """Export the history as JSON Lines or CSV (one run a line, newest first)."""
    from gambarkan.outputs.history import format_records

    with _open() as store:
        records = store.search(text, limit or None)
    data = format_records(records, fmt)
    if out_file is None:
        click.echo(data, nl=False)
        return
    path = _write_export(Path(out_file).expanduser(), data.encode("utf-8"))
    click.echo(f"{len(records)} run(s) written to {path}", err=True)


def _write_export(path: Path, data: bytes) -> Path:
    """Write an export to ``path`` atomically; a device or pipe (/dev/stdout) is written to, never replaced.

    A symlink is followed, so the link stays and its target gets the new contents.
    """
    from gambarkan.errors import InvalidRequestError
    from gambarkan.outputs.png import write_atomic

    path = path.resolve() if path.is_symlink() else path
    if path.exists() and not path.is_file():
        if path.is_dir():
            raise InvalidRequestError(f"{path} is a folder", "give a file name, e.g. --out riwayat.csv")
        with open(path, "wb") as handle:  # /dev/stdout, a named pipe: nothing to replace atomically
            handle.write(data)
        return path
    if not path.parent.is_dir():
        raise InvalidRequestError(f"folder {path.parent} does not exist", "create it first or choose another --out")
    write_atomic(path, data)
    return path


@history.command()
@click.argument("run_ids", metavar="ID...", type=RunId(), nargs=-1, required=True)
@click.option("--files", is_flag=True, help="Also delete the image files of these runs.")
@handle_errors
def rm(run_ids: tuple[int, ...], files: bool) -> None:
    """Delete runs from the history (the images stay unless --files is given)."""
    with _open() as store:
        removed = store.delete(run_ids, files=files)
    noun = "run" if len(run_ids) == 1 else "runs"
    click.echo(f"deleted {len(run_ids)} {noun}" + (f" and {len(removed)} image file(s)" if files else ""))


@click.command()
@click.argument("run_id", metavar="ID", type=RunId())
@request_options
@click.option("--prompt", "new_prompt", default=None, help="Replace the prompt.")
@click.option("--no-save", is_flag=True, help="Do not write PNG files.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with paths, seeds, settings and timings.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or notes.")
@handle_errors
def again(run_id: int, new_prompt: str | None, no_save: bool, as_json: bool, quiet: bool, **options: Any) -> None:
    """Run generation ID again: the same request and seed give the same pixels.

    Any option given replaces the stored value.

    \b
    Examples:
      gambarkan again 12
      gambarkan again 12 --seed 43 --steps 30
    """
    from gambarkan.engine.generate import default_engine
    from gambarkan.outputs.history import rerun_fields
    from gambarkan.request import GenerationRequest

    with _open() as store:
        fields = rerun_fields(store.get(run_id))
    if new_prompt is not None:
        fields["prompt"] = new_prompt
    changes = options_to_fields(options)
    fields.update(changes)
    if "out_dir" in changes:
        fields["save"] = True  # an --out asks for files even if the first run kept none
    if no_save:
        fields["save"] = False
    request = GenerationRequest(**fields)
    default_engine().surface = "cli"
    run_request(request, as_json, quiet)
