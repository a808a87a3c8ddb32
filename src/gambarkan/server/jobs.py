"""Jobs: a bounded queue, one worker thread per engine (device), progress events, cancel.

Every surface of the server (OpenAI, A1111, native) submits a ``Job`` here and waits for it;
the worker runs it through ``Engine.generate`` so the history hook records it. Events are kept
on the job so any number of SSE listeners (and late ones) see the same ordered stream.

With a ``JobStore`` (``gambarkan.server.store``) every accepted job is written to disk
before the client gets its id, and a restarted server runs the jobs a killed one left behind.

Batching: where a bigger batch pays (``batching="auto"``: on a GPU), a worker takes the
job at the head of the queue together with the queued jobs that differ from it only in prompt,
seed and batch size (``gambarkan.engine.batch``), up to ``max_batch_images`` images, and runs
them as one pipeline call. Each job keeps its seeds, metadata and history row; its images are
the ones it would get alone within float rounding (at most 2/255 in a pixel).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import concurrent.futures
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from gambarkan.errors import CancelledError, GambarkanError
from gambarkan.request import GenerationRequest, GenerationResult

log = logging.getLogger("gambarkan.server")

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
# Jobs a restarted server runs again. The others (OpenAI, A1111, UI) had a client waiting on
# the connection the crash closed: nobody could receive their images, so they end failed.
RERUN_SOURCES = ("api",)
CRASH_ENV = "GAMBARKAN_TEST_CRASH_ON_PROMPT"


def crash_point(prompt: str) -> None:
    """Test hook: with ``GAMBARKAN_TEST_CRASH_ON_PROMPT=<text>`` a job whose prompt is exactly
    ``<text>`` ends the server process the moment it starts (``os._exit(70)``), as a segfault
    or the kernel's OOM killer would. Crash-recovery tests use it; unset, it does nothing.
    """
    wanted = os.environ.get(CRASH_ENV)
    if wanted and prompt == wanted:
        log.error("%s: ending the process on purpose", CRASH_ENV)
        logging.shutdown()
        os._exit(70)


class QueueFullError(GambarkanError):
    """The job queue is full; the client should retry later (HTTP 429 with Retry-After)."""

    http_status = 429
    code = "queue_full"

    def __init__(self, message: str, hint: str | None = None, retry_after: int = 5) -> None:
        super().__init__(message, hint)
        self.headers = {"Retry-After": str(retry_after)}


class ShuttingDownError(GambarkanError):
    """The server is stopping and takes no new jobs."""

    http_status = 503
    code = "shutting_down"


class JobNotFoundError(GambarkanError):
    """No job with that id (finished jobs are forgotten after a while)."""

    http_status = 404
    code = "not_found"


class JobFinishedError(GambarkanError):
    """The job has already finished; there is nothing left to cancel."""

    http_status = 409
    code = "job_finished"


def png_base64(image: Any, parameters: str | None = None) -> str:
    """Base64 PNG (with the A1111 ``parameters`` chunk when given)."""
    from gambarkan.outputs.png import encode_png

    return base64.b64encode(encode_png(image, parameters)).decode("ascii")


@dataclass(eq=False)
class Job:
    """One generation request moving through the queue, with its ordered events."""

    request: GenerationRequest
    source: str = "api"
    preview_every: int = 0
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    status: str = QUEUED
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    step: int = 0
    steps: int = 0
    images_done: int = 0
    images_total: int = 0
    batch_index: int = 0
    batch_count: int = 1
    preview: Any = None
    summary: dict[str, Any] | None = None  # result_dict(): what GET /api/jobs/{id} shows; no pixels
    result: GenerationResult | None = None  # with pixels, for waiting surfaces (UI, OpenAI, A1111) until released
    error: GambarkanError | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    events: list[dict[str, Any]] = field(default_factory=list)
    keep_previews: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        # A waiting HTTP handler that goes away (client disconnected) cancels the future: stop the job too.
        self.future.add_done_callback(lambda f: self.cancel.set() if f.cancelled() else None)

    # -- events -------------------------------------------------------------------------
    def emit(self, event: str, data: dict[str, Any]) -> None:
        """Append an event and wake every async listener (safe from any thread)."""
        with self._lock:
            self.events.append({"id": len(self.events), "event": event, "data": data})
            waiters, self._waiters = self._waiters, []
        for loop, waiter in waiters:
            try:
                loop.call_soon_threadsafe(waiter.set)
            except RuntimeError:  # the listener's loop is closed: nobody to wake
                pass

    async def stream(self, start: int = 0):
        """Yield events from index ``start`` in order until the job has finished."""
        index = start
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                pending = self.events[index:]
                waiter = None
                if not pending:
                    if self.status in FINISHED:
                        return
                    waiter = asyncio.Event()
                    self._waiters.append((loop, waiter))
            for event in pending:
                index += 1
                yield event
            if pending and pending[-1]["event"] in ("done", "error"):
                return
            if waiter is not None:
                await waiter.wait()

    # -- state ----------------------------------------------------------------------------
    @property
    def progress(self) -> float:
        """0..1 over all images of the job."""
        if self.status == DONE:
            return 1.0
        if not self.images_total or not self.steps:
            return 0.0
        per_batch = self.images_total / max(self.batch_count, 1)
        done = self.batch_index * per_batch + per_batch * self.step / self.steps
        return min(done / self.images_total, 1.0)

    def release(self) -> None:
        """Drop the images once a waiting handler has sent them, so kept jobs hold no pixels."""
        done: concurrent.futures.Future = concurrent.futures.Future()
        done.set_result(None)
        self.future = done
        self.result = None

    def _compact(self, force: bool = False) -> None:
        """Finished: forget the previews (late listeners replay the stream without them)."""
        self.preview = None
        if self.keep_previews and not force:
            return  # a streaming reader (OpenAI partial_images) still needs them; it compacts after
        with self._lock:
            for event in self.events:
                if "preview" in event["data"]:
                    event["data"] = {k: v for k, v in event["data"].items() if k != "preview"}

    def to_dict(self, position: int | None = None) -> dict[str, Any]:
        """JSON view for ``GET /api/jobs/{id}``."""
        data: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "source": self.source,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "progress": round(self.progress, 4),
            "step": self.step,
            "steps": self.steps,
            "images_done": self.images_done,
            "images_total": self.images_total,
        }
        if position is not None:
            data["position"] = position
        if self.summary is not None:
            data["result"] = self.summary
        if self.error is not None:
            data["error"] = self.error.to_dict()
        return data


def result_dict(result: GenerationResult, image_url: Any = None) -> dict[str, Any]:
    """``GenerationResult.to_dict()`` with server-relative image URLs instead of file paths."""
    data = result.to_dict()
    for entry, image in zip(data["images"], result.images):
        entry.pop("path", None)
        entry["url"] = image_url(image.path) if image_url and image.path else None
    return data


class JobQueue:
    """A bounded FIFO of jobs and the worker threads (one per engine) that run them."""

    def __init__(
        self,
        engines: list[Any],
        size: int = 32,
        keep_finished: int = 200,
        image_url: Any = None,
        store: Any = None,
        max_attempts: int = 3,
        batching: str = "auto",
        max_batch_images: int = 8,
    ) -> None:
        self.engines = engines
        self.batching = batching  # auto (GPU only) | on | off: see gambarkan.engine.batch
        self.max_batch_images = max_batch_images
        self.store = store  # a JobStore, or None: jobs live in memory only
        self.max_attempts = max_attempts
        self.image_url = image_url
        self.size = size
        self.keep_finished = keep_finished
        self._pending: collections.deque[Job] = collections.deque()
        self._jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._running: dict[str, Job] = {}
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._paused = False
        self._closing = False
        self.finished_count = 0
        self.last_duration = 0.0

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start one worker thread per engine (idempotent)."""
        with self._cond:
            if self._threads:
                return
            self._closing = False  # a restarted app (lifespan run again) takes jobs again
            self._recover()
            for index, engine in enumerate(self.engines):
                thread = threading.Thread(
                    target=self._work, args=(engine,), name=f"gambarkan-worker-{index}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def pause(self) -> None:
        """Stop taking new jobs from the queue (the running one continues); for tests and admin."""
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def begin_shutdown(self, timeout: float = 30.0) -> None:
        """Refuse new jobs, cancel queued ones, and cancel running ones after ``timeout`` seconds.

        Called from the signal handler, so it only flips state and starts a timer.
        """
        with self._cond:
            if self._closing:
                return
            self._closing = True
            queued = list(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        for job in queued:
            self._finish_cancelled(job, "server is shutting down", record=True)
        if self._running:
            timer = threading.Timer(max(timeout, 0.0), self._cancel_running)
            timer.daemon = True
            timer.start()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop the workers: the running job may finish within ``timeout``, then it is cancelled."""
        self.begin_shutdown(timeout)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        if any(t.is_alive() for t in self._threads):
            self._cancel_running()
            for thread in self._threads:
                thread.join(60.0)
        with self._cond:
            self._threads = []

    def _recover(self) -> None:
        """Queue again the jobs a dead server left queued or running (called under the lock)."""
        if self.store is None:
            return
        again, given_up = self.store.claim_orphans(self.max_attempts)
        for stored in given_up:
            self._jobs[stored.id] = _restored(stored)
            log.warning("job %s crashed the server %d times; marked failed", stored.id, stored.attempts)
        for stored in again:
            job = Job(
                _restored_request(stored.request), source=stored.source, preview_every=stored.preview_every,
                id=stored.id, created=stored.created,
            )  # fmt: skip
            self._jobs[job.id] = job
            if stored.source not in RERUN_SOURCES:
                self._fail(job, _client_gone(), FAILED)
                continue
            try:
                job.request = _restored_request(stored.request, validate=True)
            except Exception as exc:  # noqa: BLE001 - a row this version cannot read fails alone
                error = GambarkanError(f"the job could not be restored after a restart ({type(exc).__name__})", None)
                error.http_status, error.code = 500, "job_not_restored"
                self._fail(job, error, FAILED)
                continue
            self._pending.append(job)
            job.emit("queued", {"id": job.id, "position": len(self._pending)})
        if again or given_up:
            log.warning("restored %d unfinished jobs (%d given up)", len(again), len(given_up))
        self._cond.notify_all()

    def _cancel_running(self) -> None:
        for job in list(self._running.values()):
            job.cancel.set()

    # -- submit / query ---------------------------------------------------------------------
    @property
    def closing(self) -> bool:
        return self._closing

    def submit(self, job: Job) -> Job:
        """Queue ``job``; raises QueueFullError (429) or ShuttingDownError (503)."""
        with self._cond:
            if self._closing:
                raise ShuttingDownError("the server is shutting down", "try again when it is back")
            if len(self._pending) >= self.size:
                raise QueueFullError(
                    f"the queue is full ({self.size} jobs waiting)",
                    "retry after a few seconds",
                    retry_after=self.retry_after(),
                )
            if self.store is not None:
                self.store.add(job)  # durable before the client hears of the job
            self._pending.append(job)
            self._jobs[job.id] = job
            self._forget_old()
            position = len(self._pending)
            job.emit("queued", {"id": job.id, "position": position})
            self._cond.notify()
        return job

    def retry_after(self) -> int:
        """Seconds a client should wait: the last job's duration times the queue length, 1..300."""
        estimate = (self.last_duration or 5.0) * max(len(self._pending), 1) / max(len(self.engines), 1)
        return int(min(max(estimate, 1), 300))

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None and self.store is not None:
            stored = self.store.get(job_id)
            if stored is not None:
                job = _restored(stored)
        if job is None:
            raise JobNotFoundError(f"no job with id '{job_id}'", "job ids come from POST /api/jobs")
        return job

    def position(self, job: Job) -> int | None:
        """1-based place in the queue, 0 when running, None when finished."""
        with self._cond:
            if job.status == RUNNING:
                return 0
            try:
                return self._pending.index(job) + 1
            except ValueError:
                return None

    def jobs(self) -> list[Job]:
        return list(self._jobs.values())

    def running(self) -> list[Job]:
        return list(self._running.values())

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued job at once, or ask a running one to stop at its next step."""
        job = self.get(job_id)
        with self._cond:
            if job in self._pending:
                self._pending.remove(job)
                queued = True
            else:
                queued = False
        if queued:
            self._finish_cancelled(job, "cancelled before it started", record=True)
            self._announce_positions()
        elif job.status in FINISHED:
            raise JobFinishedError(f"job '{job_id}' has already {job.status}", None)
        else:
            job.cancel.set()
        return job

    def interrupt(self) -> int:
        """Cancel every running job (A1111 ``/interrupt``); returns how many."""
        running = list(self._running.values())
        for job in running:
            job.cancel.set()
        return len(running)

    # -- worker ---------------------------------------------------------------------------
    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.status in FINISHED]
        for job in finished[: max(len(finished) - self.keep_finished, 0)]:
            self._jobs.pop(job.id, None)

    def _release_old_results(self, keep: int = 8) -> None:
        """Only the newest finished jobs keep their images in memory; older ones are released."""
        with_pixels = [j for j in self._jobs.values() if j.status in FINISHED and j.result is not None]
        for job in with_pixels[: max(len(with_pixels) - keep, 0)]:
            job.release()

    def _next(self, engine: Any = None) -> list[Job]:
        """The next job, with the queued jobs that can share its pipeline call; [] when closing."""
        with self._cond:
            while not self._closing and (self._paused or not self._pending):
                self._cond.wait()
            if self._closing:
                return []
            taken = [self._pending.popleft()]
            taken += self._batch_mates(taken[0], engine)
            for job in taken:
                job.status = RUNNING
                job.started = time.time()
                self._running[job.id] = job
        if self.store is not None:
            for job in taken:
                self.store.mark_running(job)  # counts the attempt before the engine can crash
        self._announce_positions()
        return taken

    def _batch_mates(self, head: Job, engine: Any) -> list[Job]:
        """Queued jobs that may run in one call with ``head`` (called under the lock)."""
        from gambarkan.engine.batch import batch_key, batching_pays

        if not hasattr(engine, "cache") or head.cancel.is_set():  # only a real Engine can batch
            return []
        key = batch_key(head.request)
        if key is None or not batching_pays(self.batching, head.request.device):
            return []
        mates: list[Job] = []
        images = head.request.batch_size
        for job in list(self._pending):
            if job.cancel.is_set() or batch_key(job.request) != key:
                continue
            if images + job.request.batch_size > self.max_batch_images:
                break
            images += job.request.batch_size
            mates.append(job)
            self._pending.remove(job)
        return mates

    def _announce_positions(self) -> None:
        with self._cond:
            waiting = list(self._pending)
        for index, job in enumerate(waiting, 1):
            job.emit("queued", {"id": job.id, "position": index})

    def _work(self, engine: Any) -> None:
        while True:
            jobs = self._next(engine)
            if not jobs:
                return
            try:
                if len(jobs) == 1:
                    self._run(engine, jobs[0])
                else:
                    self._run_together(engine, jobs)
            finally:
                with self._cond:
                    for job in jobs:
                        self._running.pop(job.id, None)
                    self.finished_count += len(jobs)
                    self._cond.notify_all()
                # Wake the waiting handlers only now: their next /progress must not count these jobs.
                for job in jobs:
                    self._settle(job)
                self._release_old_results()

    @staticmethod
    def _progress_reporter(job: Job) -> Any:
        """The engine's progress callback for ``job``: updates it and emits a progress event."""

        def on_progress(p: Any) -> None:
            job.step, job.steps = p.step, p.steps
            job.batch_index, job.batch_count = p.batch_index, p.batch_count
            job.images_done, job.images_total = p.images_done, p.images_total
            data: dict[str, Any] = {
                "step": p.step,
                "steps": p.steps,
                "batch_index": p.batch_index,
                "batch_count": p.batch_count,
                "images_done": p.images_done,
                "images_total": p.images_total,
                "progress": round(job.progress, 4),
            }
            if p.preview is not None:
                job.preview = p.preview
                data["preview"] = png_base64(p.preview)
            job.emit("progress", data)

        return on_progress

    def _run(self, engine: Any, job: Job) -> None:
        job.emit("started", {"id": job.id})
        started = time.perf_counter()
        if job.cancel.is_set():
            # Cancelled between leaving the queue and starting; still recorded via the engine seam.
            self._finish_cancelled(job, "cancelled before it started", record=True)
            return
        crash_point(job.request.prompt)
        try:
            outcome: Any = engine.generate(
                job.request, on_progress=self._progress_reporter(job), cancel=job.cancel, preview_every=job.preview_every,
                **_surface(engine, job),
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - _complete turns it into the job's error
            outcome = exc
        self._complete(job, outcome)
        self.last_duration = time.perf_counter() - started

    def _run_together(self, engine: Any, jobs: list[Job]) -> None:
        """Jobs that share one pipeline call (gambarkan.engine.batch); each finishes on its own."""
        from gambarkan.engine.batch import generate_batch

        started = time.perf_counter()
        for job in [j for j in jobs if j.cancel.is_set()]:
            self._finish_cancelled(job, "cancelled before it started", record=True)
            jobs = [j for j in jobs if j is not job]
        if len(jobs) <= 1:
            for job in jobs:
                self._run(engine, job)
            return
        for job in jobs:
            job.emit("started", {"id": job.id, "batched_with": len(jobs) - 1})
            crash_point(job.request.prompt)
        outcomes = generate_batch(
            engine, [job.request for job in jobs], on_progress=[self._progress_reporter(job) for job in jobs],
            cancels=[job.cancel for job in jobs], preview_every=max(job.preview_every for job in jobs),
            surfaces=[_surface(engine, job).get("surface") for job in jobs],
        )  # fmt: skip
        for job, outcome in zip(jobs, outcomes):
            self._complete(job, outcome)
        self.last_duration = (time.perf_counter() - started) / len(jobs)

    def _complete(self, job: Job, outcome: GenerationResult | BaseException) -> None:
        """Finish ``job`` with the engine's result or exception (done, cancelled or failed)."""
        try:
            if isinstance(outcome, GambarkanError):
                self._fail(job, outcome, CANCELLED if isinstance(outcome, CancelledError) else FAILED, settle=False)
            elif isinstance(outcome, BaseException):
                log.error("job %s failed", job.id, exc_info=outcome)
                error = GambarkanError(f"generation failed ({type(outcome).__name__})", "see the server log for details")
                error.http_status = 500
                error.code = "internal_error"
                self._fail(job, error, FAILED, settle=False)
            else:
                job.summary = result_dict(outcome, self.image_url)
                job.result = outcome if job.source != "api" else None
                job.status = DONE
                job.finished = time.time()
                job.images_done = len(outcome.images)
                self._persist(job)
                job.emit("done", {"id": job.id, "result": job.summary})
        finally:
            job._compact()

    def _settle(self, job: Job) -> None:
        """Complete the future a waiting handler (OpenAI, A1111, UI) awaits."""
        if job.future.done():
            return
        if job.status == DONE:
            # Native jobs are fetched as files; only waiting handlers need pixels.
            job.future.set_result(job.result)
        else:
            job.future.set_exception(job.error or GambarkanError("the job did not finish", None))

    def _fail(self, job: Job, error: GambarkanError, status: str, settle: bool = True) -> None:
        job.error = error
        job.status = status
        job.finished = time.time()
        self._persist(job)
        job.emit("error", {"id": job.id, "error": error.to_dict()})
        if settle and not job.future.done():
            job.future.set_exception(error)

    def _persist(self, job: Job) -> None:
        if self.store is not None:
            self.store.finish(job)

    def _finish_cancelled(self, job: Job, why: str, record: bool) -> None:
        error = CancelledError("generation cancelled", why)
        if record:
            _record_cancelled(job, error, getattr(self.engines[0], "settings", None) if self.engines else None)
        self._fail(job, error, CANCELLED)


def _surface(engine: Any, job: Job) -> dict[str, str]:
    """``surface="ui"`` for the web UI's jobs on an engine of another surface (the server's), else {}."""
    if job.source == "ui" and getattr(engine, "surface", "ui") != "ui":
        return {"surface": "ui"}
    return {}


def _record_cancelled(job: Job, error: CancelledError, settings: Any) -> None:
    """Record a job that never reached the engine through the engine's history seam."""
    try:
        from gambarkan.engine import generate as engine_module

        engine_module._record(None, job.request, error, settings or engine_module.Settings.from_env())
    except Exception:
        log.warning("could not record cancelled job %s in the history", job.id, exc_info=True)


def _client_gone() -> GambarkanError:
    error = GambarkanError("the server restarted while this request was waiting", "send the request again")
    error.http_status, error.code = 503, "server_restarted"
    return error


def _restored_request(fields: dict[str, Any], validate: bool = False) -> GenerationRequest:
    """The stored request; unvalidated (only shown) unless it is going to run again."""
    if validate:
        return GenerationRequest(**fields)
    known = {k: v for k, v in fields.items() if k in GenerationRequest.model_fields}
    return GenerationRequest.model_construct(**known)


def _restored(stored: Any) -> Job:
    """A finished job read back from the store, with the last event a listener would have seen."""
    from gambarkan.server.store import StoredError

    job = Job(
        _restored_request(stored.request), source=stored.source, preview_every=stored.preview_every,
        id=stored.id, status=stored.status, created=stored.created, started=stored.started, finished=stored.finished,
        steps=stored.steps, step=stored.steps, images_total=stored.images_total, images_done=stored.images_done,
        summary=stored.summary,
    )  # fmt: skip
    if stored.error is not None:
        job.error = StoredError(stored.error)
    if stored.status == DONE:
        job.emit("done", {"id": job.id, "result": job.summary})
    elif stored.status in FINISHED:
        job.emit("error", {"id": job.id, "error": job.error.to_dict() if job.error else {}})
    job.future.set_result(None)
    return job
