"""``gambarkan bench``: gambarkan's engine against plain diffusers, same process, alternating."""

from __future__ import annotations

import click

from gambarkan.cli.common import err_console, handle_errors, print_json, quiet_libraries


@click.command()
@click.option("--model", "-m", default=None, help="Real model to time (default: full-size SD 1.5 architecture, random weights).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto")
@click.option("--dtype", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default="auto")
@click.option("--width", "-W", type=int, default=None, help="Default: 256 on CPU, 512 on GPU.")
@click.option("--height", "-H", type=int, default=None, help="Default: 256 on CPU, 512 on GPU.")
@click.option("--steps", "-s", type=click.IntRange(1, 150), default=None, help="Default: 4 on CPU, 25 on GPU.")
@click.option("--rounds", "-r", type=click.IntRange(min=1), default=5, show_default=True, help="Timed runs of each path (claims need >= 5).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads for both sides (default: one per physical core).")
@click.option("--sampler", default="Euler", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with both timings and the ratio.")
@click.option("--suite", is_flag=True, help="Plain diffusers against each optimisation level on a full-size model (random weights).")
@click.option("--arch", type=click.Choice(["sd15", "sd2", "sdxl", "tiny-sd15", "tiny-sdxl"]), default="sd15", show_default=True, help="Architecture for --suite.")
@click.option("--levels", default=None, help="Comma-separated suite levels (default: all that suit the device), e.g. diffusers,gambarkan,compile.")
@handle_errors
def bench(model: str | None, device: str, dtype: str, width: int | None, height: int | None, steps: int | None, rounds: int, threads: int | None,
          sampler: str, as_json: bool, suite: bool, arch: str, levels: str | None) -> None:
    """Time one generation through gambarkan and through plain diffusers; print the ratio.

    Target: wall-clock ratio <= 1.02 (gambarkan no slower than plain diffusers), both sides with
    the same thread count, sampler, steps, CFG and size; the report names the CPU's features.
    With --suite: a table of seconds per image, steps per second, peak memory and speed-up for
    each optimisation level.
    """
    from gambarkan.bench import run_bench

    quiet_libraries()
    console = err_console()
    if suite:
        from gambarkan.bench import format_suite, run_suite

        if not as_json:
            console.print(f"Building the full-size {arch} model (random weights) and warming up every level...")
        wanted = [lv.strip() for lv in levels.split(",") if lv.strip()] if levels else None
        report = None if as_json else (lambda i, n: console.print(f"round {i}/{n}"))
        result = run_suite(arch, device, dtype, width, height, steps, rounds, wanted, sampler, report, threads)
        if as_json:
            print_json(result.to_dict())
        else:
            click.echo(format_suite(result))
        return
    if not as_json:
        console.print("Building the model and warming up (first run only)...")
    result = run_bench(model, device, dtype, width, height, steps, rounds, sampler, None if as_json else lambda i, n: console.print(f"round {i}/{n}"), threads)
    if as_json:
        print_json(result.to_dict())
        return
    from gambarkan.bench import format_bench

    click.echo(format_bench(result))
