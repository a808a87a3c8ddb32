"""``gambarkan loras``: list the LoRAs (or textual-inversion embeddings) that prompts can use."""

from __future__ import annotations

from pathlib import Path

import click

from gambarkan.cli.common import handle_errors, not_empty, print_json


@click.command()
@click.option("--embeddings", is_flag=True, help="List textual-inversion embeddings instead of LoRAs.")
@click.option("--lora-dir", "lora_dirs", multiple=True, type=click.Path(file_okay=False), callback=not_empty, help="Also look in this folder (repeatable).")
@click.option("--hashes", is_flag=True, help="Show the short hashes recorded in PNG metadata (reads every file).")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@handle_errors
def loras(embeddings: bool, lora_dirs: tuple[str, ...], hashes: bool, as_json: bool) -> None:
    """List LoRA files usable as <lora:NAME:WEIGHT> in a prompt.

    \b
    Folders: --lora-dir, then GAMBARKAN_LORA_DIRS, then <home>/loras (subfolders too).
    Embeddings (--embeddings): GAMBARKAN_EMBEDDING_DIRS, then <home>/embeddings; an
    embedding is used when its NAME appears in the prompt or negative prompt.
    Only .safetensors files are used; .pt/.ckpt files are shown as skipped.
    """
    from gambarkan.config import Settings
    from gambarkan.models.loras import UNSAFE_SUFFIXES, list_files, search_dirs

    kind = "embedding" if embeddings else "lora"
    dirs = search_dirs(Settings.from_env(), kind, lora_dirs if kind == "lora" else ())
    files = list_files(dirs, kind)
    skipped = sorted(
        p for d in dirs if d.is_dir() for p in d.rglob("*") if p.is_file() and p.suffix.lower() in UNSAFE_SUFFIXES
    )
    if as_json:
        rows = [_row(f, hashes) for f in files]
        print_json({"kind": kind, "folders": [str(d) for d in dirs], "files": rows, "skipped": [str(p) for p in skipped]})
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    label = "embeddings" if embeddings else "LoRAs"
    if not files:
        where = ", ".join(str(d) for d in dirs)
        console.print(f"No {label} found (looked in {where}).")
        console.print(f"Put .safetensors files in {dirs[-1]} or set GAMBARKAN_{kind.upper()}_DIRS.")
    else:
        table = Table("Name", "Size", *(["Hash"] if hashes else []), "Path")
        for f in files:
            row = _row(f, hashes)
            table.add_row(f.name, f"{row['size_mb']:.1f} MB", *([row["hash"]] if hashes else []), str(f.path))
        console.print(table)
        usage = "<lora:NAME:0.8> in the prompt" if kind == "lora" else "NAME in the prompt or negative prompt"
        console.print(f"{len(files)} {label}; use them as {usage}.")
    for path in skipped:
        console.print(f"skipped {path} (pickle file; use the .safetensors version)", style="yellow")


def _row(file, hashes: bool) -> dict:
    row = {"name": file.name, "path": str(file.path), "size_mb": round(Path(file.path).stat().st_size / 2**20, 2)}
    if hashes:
        row["hash"] = file.short_hash
    return row
