"""``gambarkan batch``: many prompts from a file (or stdin), resumable through a manifest."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from gambarkan.cli.common import err_console, fail, handle_errors, print_json, quiet_libraries
from gambarkan.cli.generate import options_to_fields, request_options


def batch_folder(source: str, out_dir: str | None) -> Path:
    """Where the rows' images and the manifest go: ``--out``, else ``<outputs>/batch-<file name>``.

    A fixed folder (not one per day) so the same command resumes after midnight too.
    """
    if out_dir:
        return Path(out_dir).expanduser()
    from gambarkan.config import Settings

    stem = "stdin" if source == "-" else Path(source).stem or "input"
    return Settings.from_env().output_dir / f"batch-{stem}"


class BatchProgress:
    """Rows, images and ETA on stderr (rich), plus the step bar of the row that is running."""

    def __init__(self, enabled: bool, rows: int, images: int) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self.rows, self.images = rows, images

    def __enter__(self) -> BatchProgress:  # noqa: PYI034 (typing.Self needs Python 3.11)
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                      TextColumn("ETA"), TimeRemainingColumn(), console=err_console())  # fmt: skip
            self._progress.__enter__()
            self._rows = self._progress.add_task("rows", total=self.rows)
            self._images = self._progress.add_task("images", total=self.images)
            self._steps = self._progress.add_task("steps", total=1)
        return self

    def step(self, event: Any) -> None:
        if self._progress:
            self._progress.update(self._steps, completed=event.step, total=event.steps)

    def row(self, images: int) -> None:
        if self._progress:
            self._progress.advance(self._rows)
            self._progress.advance(self._images, images)

    def __exit__(self, *exc: object) -> None:
        if self._progress:
            self._progress.__exit__(*exc)


@click.command()
@click.argument("source", metavar="FILE")
@request_options
@click.option("--format", "fmt", type=click.Choice(["auto", "text", "jsonl", "csv"]), default="auto", help="Input format (auto: by extension, JSONL when lines start with '{').")
@click.option("--dry-run", is_flag=True, help="Check every row and say what would run; load no model.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="auto", default=None, metavar="[ADDRESS]",
              help="Run the rows on a Ray cluster (pip install 'gambarkan[ray]'); ADDRESS defaults to a local one.")  # fmt: skip
@click.option("--workers", type=int, default=None, help="With --ray: how many engine workers (default: what the cluster fits).")
@click.option("--gpus-per-worker", type=float, default=None, help="With --ray: GPUs per worker (default 1 when the cluster has GPUs, else 0).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per row on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; only the summary and errors.")
@handle_errors
def batch(source: str, fmt: str, dry_run: bool, ray_address: str | None, workers: int | None, gpus_per_worker: float | None,
          as_json: bool, quiet: bool, **options: Any) -> None:  # fmt: skip
    """Make images for every row of FILE (one prompt per line, A1111 "prompts from file" lines, JSONL or CSV).

    Options given here apply to every row unless the row sets them. FILE "-" reads stdin.
    Finished rows are written to a manifest next to the images; running the same command
    again skips them and redoes only what is missing or failed.

    \b
    Examples:
      gambarkan batch prompts.txt --steps 20 -o hasil/
      gambarkan batch rows.jsonl --seed 42
      cat prompts.txt | gambarkan batch - --preset anime
    """
    from gambarkan.config import Settings
    from gambarkan.inputs.batch import read_rows
    from gambarkan.outputs.manifest import Manifest
    from gambarkan.scale.runner import make_jobs, split_done

    if ray_address is None and (workers is not None or gpus_per_worker is not None):
        fail("--workers and --gpus-per-worker need --ray (see: gambarkan batch --help)")
    folder = batch_folder(source, options.get("out_dir"))
    defaults = {**options_to_fields(options), "out_dir": str(folder)}
    rows = read_rows(source, fmt=fmt, defaults=defaults)
    jobs = make_jobs(rows)
    manifest = Manifest.in_folder(folder)
    skipped, pending = split_done(jobs, manifest, None if dry_run else Settings.from_env())  # adopts rows a killed run had finished
    invalid = [j for j in pending if j.request is None]
    console = err_console()
    for job in invalid:
        console.print(f"gambarkan: line {job.line}: {job.error}", markup=False)
    if dry_run:
        runnable = [j for j in pending if j.request is not None]
        console.print(f"{len(jobs)} rows: {len(skipped)} already done, {len(runnable)} to run ({sum(j.images for j in runnable)} images), "
                      f"{len(invalid)} invalid; outputs and manifest in {folder}", markup=False)  # fmt: skip
        if invalid:
            fail(f"{len(invalid)} of {len(jobs)} rows are invalid (see above)")
        return
    started = time.perf_counter()
    if ray_address is not None:
        from gambarkan.scale.ray import run_jobs_on_ray

        def outcomes(_on_step: Any) -> Any:
            return run_jobs_on_ray(jobs, manifest=manifest, address=ray_address, workers=workers, gpus_per_worker=gpus_per_worker)

    else:
        outcomes = _local(jobs, manifest, pending)
    _report(outcomes, jobs, pending, manifest, started, as_json, quiet)


def _local(jobs: list[Any], manifest: Any, pending: list[Any]) -> Any:
    """The outcomes of the rows on this machine's engine (created only when a row is left to make)."""

    def outcomes(on_step: Any) -> Any:
        from gambarkan.engine.generate import default_engine
        from gambarkan.scale.runner import run_jobs

        engine = None
        if any(j.request is not None for j in pending):  # nothing to make: no torch import
            quiet_libraries()
            engine = default_engine()
            engine.surface = "batch"
        yield from run_jobs(jobs, manifest=manifest, engine=engine, on_progress=on_step)

    return outcomes


def _report(outcomes: Any, jobs: list[Any], pending: list[Any], manifest: Any, started: float, as_json: bool, quiet: bool) -> None:
    """Run, print each finished row's images (or JSON), then the summary; exit 2 when a row failed."""
    console = err_console()
    todo = [j for j in pending if j.request is not None]
    counts = {"done": 0, "skipped": 0, "failed": 0}
    failures: list[Any] = []
    images = 0
    show = not quiet and not as_json and sys.stderr.isatty()
    with BatchProgress(show, len(todo), sum(j.images for j in todo)) as progress:
        for outcome in outcomes(progress.step):
            counts[outcome.status] += 1
            if outcome.status == "failed":
                failures.append(outcome)
                if outcome.request is not None:  # invalid rows were named before the run
                    console.print(f"gambarkan: line {outcome.line}: {outcome.error}", markup=False)
            if outcome.status == "done":
                images += len(outcome.images) or len(outcome.seeds)
                progress.row(len(outcome.seeds))
            if as_json:
                print_json({"line": outcome.line, "key": outcome.key, "status": outcome.status, "images": outcome.images,
                            "seeds": outcome.seeds, "error": outcome.error})  # fmt: skip
            elif outcome.status == "done":
                for path in outcome.images:
                    click.echo(path)
    elapsed = time.perf_counter() - started
    console.print(f"batch: {counts['done']} done, {counts['skipped']} already done, {counts['failed']} failed "
                  f"({len(jobs)} rows, {images} new images, {elapsed:.1f}s); manifest: {manifest.path}", markup=False)  # fmt: skip
    if failures:
        invalid = sum(1 for f in failures if f.request is None)
        fix = "fix the lines named above and run the same command again" if invalid else "run the same command again to redo only those"
        fail(f"{len(failures)} of {len(jobs)} rows failed ({fix})")
