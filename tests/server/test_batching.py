"""Batching of queued jobs: compatible jobs share one pipeline call and get their own images.

A real Engine and the tiny SD 1.5 model; the queue is paused while jobs are submitted so the
worker surely finds them waiting together, and ``batching="on"`` forces the shared call on CPU
(``auto`` batches only on a GPU, where it is faster).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gambarkan.request import GenerationRequest

SMALL = {"steps": 3, "width": 64, "height": 64, "sampler": "Euler a", "cfg": 6.0}


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.fixture
def queue_and_engine(tmp_path: Path):
    from gambarkan.config import Settings
    from gambarkan.engine.generate import Engine
    from gambarkan.server.jobs import JobQueue

    settings = Settings.from_env({"GAMBARKAN_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"})
    engine = Engine(settings, surface="server")
    queue = JobQueue([engine], batching="on", max_batch_images=4)
    queue.start()
    yield queue, engine
    queue.shutdown(10)


def run_jobs(queue, requests: list[GenerationRequest], sources: list[str]) -> list:
    from gambarkan.server.jobs import Job

    queue.pause()
    jobs = [queue.submit(Job(request, source=source)) for request, source in zip(requests, sources)]
    queue.resume()
    for job in jobs:
        job.future.result(timeout=240)
    return jobs


def test_compatible_jobs_share_one_call_and_equal_their_single_runs(queue_and_engine, tiny_sd15_dir: Path):
    from gambarkan.outputs.history import History

    queue, engine = queue_and_engine
    prompts = [("kucing oranye", "", 5, 1), ("a red boat at sea", "blurry", 77, 2), ("rumah di hutan", "", 1234, 1)]
    requests = [
        GenerationRequest(prompt=p, negative_prompt=n, seed=s, batch_size=b, model=str(tiny_sd15_dir), **SMALL)
        for p, n, s, b in prompts
    ]
    # One of another size waits in the same queue: it may not join the batch.
    other = GenerationRequest(prompt="kucing oranye", seed=5, model=str(tiny_sd15_dir), **{**SMALL, "width": 72})
    jobs = run_jobs(queue, requests + [other], ["a1111", "ui", "openai", "a1111"])

    started = [next(e["data"] for e in job.events if e["event"] == "started") for job in jobs]
    assert [s.get("batched_with") for s in started] == [2, 2, 2, None]
    for job, request in zip(jobs[:3], requests):
        result = job.result
        assert result.extra["batched_with"] == 2
        assert [image.seed for image in result.images] == [request.seed + i for i in range(request.batch_size)]
        alone = engine.generate(request.model_copy(update={"save": False}))
        for batched, single in zip(result.images, alone.images):
            assert batched.parameters == single.parameters  # same metadata, own seed and prompt
            difference = np.abs(pixels(batched.image) - pixels(single.image))
            assert difference.max() <= 2, f"{request.prompt!r} differs from its single run by {difference.max()}"
            assert batched.path is not None and batched.path.exists()
    # The batch did not mix images up: each job's first image is far from the others'.
    firsts = [pixels(job.result.images[0].image) for job in jobs[:3]]
    assert np.abs(firsts[0] - firsts[1]).max() > 10 and np.abs(firsts[1] - firsts[2]).max() > 10
    assert jobs[3].result.width == 72 and "batched_with" not in jobs[3].result.extra

    # Each batched job has its own history row naming its own files, under its own surface.
    with History.open(engine.settings) as history:
        rows = [row for row in history.search(limit=20) if row["surface"] in ("server", "ui")]
    by_seed = {row["seed"]: row for row in rows if row["status"] == "done" and row["width"] == 64}
    for job, request, surface in zip(jobs[:3], requests, ["server", "ui", "server"]):
        row = by_seed[request.seed]
        assert row["prompt"] == job.result.prompt and row["surface"] == surface
        assert sorted(row["paths"]) == sorted(str(image.path) for image in job.result.images)


def test_cancelling_one_job_of_a_batch_keeps_the_others(queue_and_engine, tiny_sd15_dir: Path):
    from gambarkan.server.jobs import CANCELLED, DONE, Job

    queue, engine = queue_and_engine
    requests = [GenerationRequest(prompt=f"boat {i}", seed=i, model=str(tiny_sd15_dir), **{**SMALL, "steps": 6}) for i in range(3)]
    queue.pause()
    jobs = [queue.submit(Job(request, source="ui")) for request in requests]
    jobs[1].cancel.set()  # asked to stop while queued in the batch: the others must not pay for it
    with queue._cond:
        queue._pending.remove(jobs[1])
        queue._pending.insert(0, jobs[1])  # keep it inside the batch the worker takes
    queue.resume()
    for job in jobs:
        job.future.exception(timeout=240)  # the cancelled one ends with an error
    assert [job.status for job in jobs] == [DONE, CANCELLED, DONE]
    for job, request in zip((jobs[0], jobs[2]), (requests[0], requests[2])):
        alone = engine.generate(request.model_copy(update={"save": False}))
        assert np.abs(pixels(job.result.images[0].image) - pixels(alone.images[0].image)).max() <= 2


def test_requests_that_cannot_share_a_call_are_not_keyed_together(tiny_sd15_dir: Path):
    from gambarkan.engine.batch import batch_key, batching_pays

    base = GenerationRequest(prompt="a", model=str(tiny_sd15_dir), **SMALL)
    assert batch_key(base) == batch_key(base.model_copy(update={"prompt": "b", "seed": 9, "batch_size": 2}))
    assert batch_key(base) != batch_key(base.model_copy(update={"steps": 4}))
    assert batch_key(base) != batch_key(base.model_copy(update={"sampler": "DDIM"}))
    assert batch_key(base.model_copy(update={"count": 2})) is None
    assert batch_key(base.model_copy(update={"prompt": "a <lora:x:0.5>"})) is None
    assert batching_pays("auto", "cpu") is False and batching_pays("auto", "cuda") is True
    assert batching_pays("on", "cpu") is True and batching_pays("off", "cuda") is False


def test_web_ui_jobs_on_the_servers_engine_are_recorded_as_ui(queue_and_engine, tiny_sd15_dir: Path):
    from gambarkan.outputs.history import History

    queue, engine = queue_and_engine
    request = GenerationRequest(prompt="perahu merah", seed=3, model=str(tiny_sd15_dir), **SMALL)
    run_jobs(queue, [request, request.model_copy(update={"seed": 4, "steps": 2})], ["ui", "a1111"])  # not batchable
    with History.open(engine.settings) as history:
        surfaces = {row["seed"]: row["surface"] for row in history.search(limit=5)}
    assert surfaces == {3: "ui", 4: "server"}
