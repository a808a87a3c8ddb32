"""``gambarkan models list|pull|info|rm|add``: the model packages and their downloads."""

from __future__ import annotations

from typing import Any

import click

from gambarkan.cli.common import err_console, handle_errors, not_empty, print_json


def _settings() -> Any:
    from gambarkan.config import Settings

    return Settings.from_env()


def machine_memory() -> tuple[int | None, int]:
    """(total GPU memory MB or None without CUDA, total RAM MB) of this machine."""
    import psutil

    ram = int(psutil.virtual_memory().total // 2**20)
    try:
        import torch

        if torch.cuda.is_available():
            return int(torch.cuda.get_device_properties(0).total_memory // 2**20), ram
    except ImportError:
        pass
    return None, ram


def runs_here(spec: Any, vram_mb: int | None, ram_mb: int) -> tuple[bool, str]:
    """Whether this machine can run ``spec``, and a short note why (or how well)."""
    from gambarkan.families import get_family

    if ram_mb < spec.min_ram_mb * 0.75:
        return False, f"needs {spec.min_ram_mb // 1024} GB RAM"
    if vram_mb is not None:
        if vram_mb >= spec.min_vram_mb:
            return True, "GPU"
        return True, "CPU only (GPU too small), slow"
    if get_family(spec.kind).native_pixels >= 1024 * 1024:  # SDXL, FLUX
        return True, "CPU, very slow"
    return True, "CPU" + (", slow" if spec.steps > 8 else "")


def _mb(value: float) -> str:
    return f"{value / 1024:.1f} GB" if value >= 1024 else f"{value:.0f} MB"


def _row(spec: Any, settings: Any, vram: int | None, ram: int) -> dict[str, Any]:
    from gambarkan.models import store

    ok, note = runs_here(spec, vram, ram)
    installed = store.is_installed(spec, settings)
    return {
        "name": spec.name,
        "title": spec.title_id,
        "title_en": spec.title_en,
        "kind": spec.kind,
        "source": spec.source,
        "installed": installed,
        "size_mb": round(store.disk_usage_bytes(spec, settings) / 2**20) if installed and spec.source_type == "hub" else spec.download_mb,
        "license": spec.license,
        "license_url": spec.license_url,
        "min_vram_mb": spec.min_vram_mb,
        "min_ram_mb": spec.min_ram_mb,
        "runs_here": ok,
        "runs_here_note": note,
        "builtin": spec.builtin,
    }


@click.group()
def models() -> None:
    """Model packages: list, download (pull), inspect, remove, or add your own.

    \b
    Examples:
      gambarkan models list
      gambarkan models pull anime
      gambarkan generate "gadis berambut biru" --preset anime
      gambarkan models add lukisanku ~/models/lukisan.safetensors --steps 30 --sampler "Euler a"
    """


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@handle_errors
def list_models(as_json: bool) -> None:
    """Show every package: installed?, size, licence, memory needed, runs on this machine?"""
    from gambarkan.models.catalog import DEFAULT_PRESET, load_catalog

    settings = _settings()
    vram, ram = machine_memory()
    rows = [_row(spec, settings, vram, ram) for spec in load_catalog(settings).values()]
    if as_json:
        print_json({"packages": rows, "default": DEFAULT_PRESET, "vram_mb": vram, "ram_mb": ram})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="gambarkan model packages", title_justify="left")
    # The name is what the user types: never cut or wrapped; the other columns fold instead of "…".
    names = [row["name"] + (" *" if row["name"] == DEFAULT_PRESET else "") + ("" if row["builtin"] else " (user)") for row in rows]
    table.add_column("name", no_wrap=True, min_width=max([len(n) for n in names] + [4]))
    for column in ("package", "type", "installed", "size", "licence", "GPU / RAM", "runs here"):
        table.add_column(column, overflow="fold")
    for name, row in zip(names, rows):
        table.add_row(
            name,
            row["title"],
            row["kind"],
            "yes" if row["installed"] else "no",
            _mb(row["size_mb"]),
            row["license"],
            f"{row['min_vram_mb'] // 1024} / {row['min_ram_mb'] // 1024} GB",
            ("yes: " if row["runs_here"] else "no: ") + row["runs_here_note"],
        )
    console = Console()
    console.print(table)
    console.print("* default package.  Download one: gambarkan models pull NAME.  Details: gambarkan models info NAME")


@models.command()
@click.argument("name")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handle_errors
def pull(name: str, quiet: bool) -> None:
    """Download package NAME into the Hugging Face cache (resumes; a repeated pull does nothing)."""
    from gambarkan.models import store
    from gambarkan.models.catalog import get_package

    settings = _settings()
    spec = get_package(name, settings)
    console = err_console()
    if store.is_installed(spec, settings):
        path = store.pull(spec, settings, show_progress=False)
        console.print(f"{spec.name} is already downloaded: {path}")
        return
    console.print(f"Downloading {spec.name} ({spec.source}, about {_mb(spec.download_mb)}); licence: {spec.license} <{spec.license_url}>")
    path = store.pull(spec, settings, show_progress=not quiet)
    console.print(f"{spec.name} is ready: {path}")


@models.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def info(name: str, as_json: bool) -> None:
    """Everything about package NAME: source, licence, defaults, memory, install state."""
    from gambarkan.models import store
    from gambarkan.models.catalog import get_package

    settings = _settings()
    spec = get_package(name, settings)
    vram, ram = machine_memory()
    data = {**spec.to_dict(), **_row(spec, settings, vram, ram)}
    paths = store.local_paths(spec, settings)
    data["path"] = str(paths[0]) if paths else None
    if as_json:
        print_json(data)
        return
    lines = [
        f"{spec.name}: {spec.title_id} / {spec.title_en}" + ("" if spec.builtin else " (user package)"),
        f"  {spec.description_id}",
        f"  {spec.description_en}",
        f"source      {spec.source}" + (f" @ {spec.revision}" if spec.revision else ""),
        f"type        {spec.kind}" + (f", {spec.variant} weights" if spec.variant else ""),
        f"licence     {spec.license}" + (f" <{spec.license_url}>" if spec.license_url else ""),
        f"download    {_mb(spec.download_mb)}; installed: {'yes, ' + str(data['path']) if data['installed'] else 'no'}",
        f"memory      {_mb(spec.min_vram_mb)} GPU or {_mb(spec.min_ram_mb)} RAM; here: {data['runs_here_note']}",
        f"defaults    {spec.sampler}, {spec.steps} steps, CFG {spec.cfg:g}, {spec.width}x{spec.height}, clip skip {spec.clip_skip}",
        f"style       {', '.join(spec.style) or '-'}",
        f"negative    {spec.negative_prompt or '-'}",
    ]
    if spec.vae_source:
        lines.insert(5, f"vae         {spec.vae_source} @ {spec.vae_revision}")
    click.echo("\n".join(lines))


def _confirm(question: str) -> bool:
    """Ask on the terminal; no answer at all (stdin closed, as in a script) is an error, not a yes."""
    from gambarkan.errors import InvalidRequestError

    try:
        return click.confirm(question, default=False, err=True)
    except click.exceptions.Abort:
        raise InvalidRequestError("no answer to the question; nothing removed", "pass --yes to remove without asking") from None


@models.command()
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def rm(name: str, yes: bool) -> None:
    """Remove package NAME's downloaded files (and a user package's entry)."""
    from gambarkan.models import store
    from gambarkan.models.catalog import get_package, load_catalog, remove_user_package

    settings = _settings()
    spec = get_package(name, settings)
    size = store.disk_usage_bytes(spec, settings)
    what = f"{_mb(size / 2**20)} of downloaded files" if size else "no downloaded files"
    if not spec.builtin:
        what += " and its entry in your packages"
    if not yes and not _confirm(f"Remove {spec.name} ({what})?"):
        click.echo("nothing removed", err=True)
        return
    keep = {
        repo
        for other in load_catalog(settings).values()
        if other.name != spec.name and store.is_installed(other, settings) and other.source_type == "hub"
        for repo in (other.source, other.vae_source)
        if repo
    }
    freed = store.remove(spec, settings, keep_repos=keep)
    if not spec.builtin:
        remove_user_package(settings, spec.name)
    click.echo(f"removed {spec.name}; freed {_mb(freed / 2**20)}", err=True)


@models.command()
@click.argument("name")
@click.argument("source", callback=not_empty)
@click.option("--sampler", default=None, help='Default sampler, e.g. "Euler a".')
@click.option("--steps", type=click.IntRange(1, 150), default=None, help="Default steps.")
@click.option("--cfg", type=click.FloatRange(0, 30), default=None, help="Default CFG scale.")
@click.option("--width", type=int, default=None, help="Default width.")
@click.option("--height", type=int, default=None, help="Default height.")
@click.option("--clip-skip", type=click.IntRange(1, 12), default=None, help="Default clip skip.")
@click.option("--negative", "negative_prompt", default=None, help="Default negative prompt.")
@click.option("--style", multiple=True, help="Style words added to prompts (repeatable).")
@click.option("--kind", type=click.Choice(["sd15", "sd2", "sdxl"]), default=None, help="Model family (detected for local files).")
@click.option("--revision", default=None, callback=not_empty, help="Hub revision (commit, branch or tag) to pin.")
@click.option("--config", default=None, callback=not_empty, help="For a single .safetensors file: a diffusers folder or Hub id with its configs.")
@click.option("--title", default=None, help="Display title.")
@click.option("--description", default=None, help="One-line description.")
@click.option("--license", "license_name", default=None, help="Licence name.")
@click.option("--allow-pickle", is_flag=True, help="Accept a pickle-based file after a picklescan scan finds nothing unsafe.")
@handle_errors
def add(name: str, source: str, style: tuple[str, ...], title: str | None, description: str | None, license_name: str | None, allow_pickle: bool, **options: Any) -> None:
    """Add your own package NAME from SOURCE: a Hub id, a diffusers folder or a .safetensors file."""
    from gambarkan.models.catalog import add_user_package, user_catalog_path

    for key in ("width", "height"):
        if options.get(key) is not None and (options[key] % 8 or not 64 <= options[key] <= 2048):
            raise click.BadParameter(f"{options[key]} must be a multiple of 8 between 64 and 2048", param_hint=f"--{key}")
    fields: dict[str, Any] = dict(options)
    if style:
        fields["style"] = list(style)
    if title:
        fields["title_id"] = fields["title_en"] = title
    if description:
        fields["description_id"] = fields["description_en"] = description
    if license_name:
        fields["license"] = license_name
    settings = _settings()
    spec = add_user_package(settings, name, source, allow_pickle=allow_pickle, **fields)
    click.echo(f"added {spec.name} ({spec.kind}, {spec.source_type}) to {user_catalog_path(settings)}", err=True)
    click.echo(f'use it: gambarkan generate "..." --preset {spec.name}', err=True)


@models.command()
@click.argument("name", callback=not_empty)
@click.option("--size", default="512x512", show_default=True, help="WIDTHxHEIGHT the images will have.")
@click.option("--optimize", "technique", type=click.Choice(["openvino"]), default="openvino", show_default=True, help="What to prepare.")
@click.option("--batch-size", "-b", type=click.IntRange(1, 16), default=1, show_default=True, help="Images per batch the runs will use.")
@click.option("--offline", is_flag=True, help="Never touch the network; use only downloaded models.")
@handle_errors
def prepare(name: str, size: str, technique: str, batch_size: int, offline: bool) -> None:
    """Convert NAME (package, folder or Hub id) for OpenVINO at --size now, so generate does not wait for it."""
    from gambarkan.cli.common import quiet_libraries
    from gambarkan.cli.generate import show_notices
    from gambarkan.engine.openvino import prepare as prepare_openvino
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"'{size}' is not WIDTHxHEIGHT, e.g. 512x512", param_hint="--size") from None
    quiet_libraries()
    console = err_console()
    with show_notices(console):
        done = prepare_openvino(name, width, height, batch_size=batch_size, offline=offline)
    if done["already_prepared"]:
        click.echo(f"{done['model']} was already prepared for OpenVINO at {width}x{height}", err=True)
    else:
        click.echo(f"prepared {done['model']} for OpenVINO at {width}x{height} in {done['seconds']:.0f} s: {', '.join(done['written'])}", err=True)
    click.echo(f'the next run at this size starts at once: gambarkan generate "..." -m {name} -W {width} -H {height} --optimize openvino (or --fast)', err=True)
