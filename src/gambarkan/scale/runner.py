"""Many requests through the one engine, resumable through a manifest: ``gambarkan batch`` and ``generate_many``.

A row is identified by its request hash plus how many equal rows came before it (the same
line twice is made twice). A row whose manifest line says ``done`` and whose images are all
still on disk is skipped; every other row (new, failed, cut off by a kill, images deleted)
runs. The manifest line is written only after the row's PNGs and history row exist, so a kill
never loses a finished row and never makes one twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gambarkan.inputs.batch import Row, request_hash
from gambarkan.outputs.manifest import Manifest
from gambarkan.request import GenerationRequest, GenerationResult

Status = Literal["done", "failed", "skipped"]


@dataclass
class Job:
    """One row to run: its manifest key, input line, and request (or why it has none)."""

    key: str
    line: int | None
    request: GenerationRequest | None
    error: str | None = None

    @property
    def images(self) -> int:
        return self.request.batch_size * self.request.count if self.request else 0


@dataclass
class RowResult:
    """What happened to one row: done (with its result), skipped (done earlier) or failed."""

    key: str
    line: int | None
    status: Status
    request: GenerationRequest | None = None
    result: GenerationResult | None = None
    error: str | None = None
    images: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)


def make_jobs(items: Iterable[GenerationRequest | dict[str, Any] | Row]) -> list[Job]:
    """Jobs with stable keys; a dict is turned into a request here (its error kept, not raised)."""
    from gambarkan.errors import InvalidRequestError

    jobs: list[Job] = []
    seen: dict[str, int] = {}
    for number, item in enumerate(items, 1):
        line: int | None = number
        error: str | None = None
        request: GenerationRequest | None
        if isinstance(item, Row):
            line, request, error = item.line, item.request, item.error
        elif isinstance(item, dict):
            try:
                request = GenerationRequest(**item)
            except InvalidRequestError as exc:
                request, error = None, str(exc)
        else:
            request = item
        if request is None:
            jobs.append(Job(f"invalid-{line}", line, None, error or "invalid row"))
            continue
        digest = request_hash(request)
        seen[digest] = seen.get(digest, 0) + 1
        jobs.append(Job(f"{digest}-{seen[digest]}", line, request))
    return jobs


def done_entry(job: Job, result: GenerationResult) -> dict[str, Any]:
    """The manifest line of a finished row."""
    assert job.request is not None
    return {
        "key": job.key,
        "line": job.line,
        "status": "done",
        "hash": job.key.rsplit("-", 1)[0],
        "seeds": result.seeds,
        "images": [str(p) for p in result.paths if p],
        "prompt": result.prompt,
        "request": job.request.model_dump(mode="json"),
    }


def failed_entry(job: Job, error: str) -> dict[str, Any]:
    return {"key": job.key, "line": job.line, "status": "failed", "error": error}


def split_done(jobs: list[Job], manifest: Manifest | None, settings: Any = None) -> tuple[list[RowResult], list[Job]]:
    """(rows already done, rows still to run); invalid rows go to the second list, to be reported.

    With ``settings`` (and a manifest), a row that a killed run had made completely (all its
    PNGs saved, history row interrupted before the manifest line) is adopted, not made again.
    """
    done = manifest.done() if manifest else {}
    skipped: list[RowResult] = []
    pending: list[Job] = []
    for job in jobs:
        entry = done.get(job.key)
        if entry is None and job.request is not None and manifest is not None and settings is not None:
            entry = _adopt(job, manifest, settings, done)
        if entry is not None and job.request is not None:
            skipped.append(RowResult(job.key, job.line, "skipped", job.request, images=list(entry.get("images", [])), seeds=list(entry.get("seeds", []))))
        else:
            pending.append(job)
    return skipped, pending


def _adopt(job: Job, manifest: Manifest, settings: Any, done: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The manifest line for ``job`` made from an interrupted history run with all its images, or None."""
    import sqlite3

    from gambarkan.errors import GambarkanError
    from gambarkan.outputs.history import History

    assert job.request is not None
    claimed = {p for e in done.values() for p in e.get("images", [])}
    try:
        with History.open(settings) as history:
            history.reap()
            for run in history.interrupted_runs(job.request):
                paths = [str(p) for p in run.get("paths") or []]
                if len(paths) != job.images or any(p in claimed or not Path(p).is_file() for p in paths):
                    continue
                entry = {"key": job.key, "line": job.line, "status": "done", "hash": job.key.rsplit("-", 1)[0], "seeds": run.get("seeds") or [],
                         "images": paths, "prompt": run.get("prompt") or job.request.prompt, "request": job.request.model_dump(mode="json"),
                         "adopted_from": run["id"]}  # fmt: skip
                manifest.append(entry)
                history.mark_done(run["id"])
                done[job.key] = entry
                return entry
    except (GambarkanError, sqlite3.Error, OSError):
        return None  # no history to adopt from: the row is simply made again
    return None


def _error_text(exc: BaseException) -> str:
    from gambarkan.errors import GambarkanError

    if isinstance(exc, GambarkanError):
        return str(exc)
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def run_jobs(jobs: list[Job], *, manifest: Manifest | None, engine: Any, on_progress: Callable[[Any], None] | None = None) -> Iterator[RowResult]:
    """Run the jobs not done yet, one after the other; yields each row's outcome as it finishes.

    A failing row is recorded (manifest ``failed`` line) and the next one runs; Ctrl-C stops.
    """
    skipped, pending = split_done(jobs, manifest, getattr(engine, "settings", None))
    yield from skipped
    for job in pending:
        if job.request is None:
            yield RowResult(job.key, job.line, "failed", error=job.error)
            continue
        try:
            result = engine.generate(job.request, on_progress=on_progress)
        except Exception as exc:  # noqa: BLE001 - one row's failure must not stop the night's run
            error = _error_text(exc)
            if manifest:
                manifest.append(failed_entry(job, error))
            yield RowResult(job.key, job.line, "failed", job.request, error=error)
            continue
        entry = done_entry(job, result)
        if manifest:
            manifest.append(entry)
        yield RowResult(job.key, job.line, "done", job.request, result, images=entry["images"], seeds=entry["seeds"])


def generate_many(
    requests: Iterable[GenerationRequest | dict[str, Any]],
    *,
    manifest: Path | str | None = None,
    engine: Any = None,
    on_progress: Callable[[Any], None] | None = None,
) -> Iterator[RowResult]:
    """Make every request, yielding a RowResult as each finishes (failed rows do not stop the rest).

    With ``manifest`` (a JSONL path), rows finished by an earlier call are skipped and each
    finished row is appended to it, so a run cut off at any point can simply be called again.
    """
    if engine is None:
        from gambarkan.engine.generate import default_engine

        engine = default_engine()
    return run_jobs(make_jobs(requests), manifest=Manifest(manifest) if manifest else None, engine=engine, on_progress=on_progress)
