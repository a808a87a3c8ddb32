"""Ray Data batch: two CPU actors give the local run's pixels per seed; resume and bad addresses.

One Ray instance (``ray.init(num_cpus=2)``) is shared by the module; keep these few and small.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import ray  # in the test extra: these tests use a real Ray
from PIL import Image

from gambarkan.errors import DependencyMissingError, NetworkError
from gambarkan.outputs.history import History
from gambarkan.outputs.manifest import Manifest
from gambarkan.outputs.png import read_parameters
from gambarkan.request import GenerationRequest
from gambarkan.scale.runner import make_jobs


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray with 2 CPUs for the whole module; workers import this checkout's gambarkan."""
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    yield ray
    ray.shutdown()


def test_two_actors_match_the_local_run_and_resume_skips_what_is_done(ray_cluster, tiny_sd15_dir: Path, tmp_path: Path, engine) -> None:
    from gambarkan.scale.ray import run_jobs_on_ray

    out = tmp_path / "out"
    requests = [GenerationRequest(prompt=f"kucing {i}", model=str(tiny_sd15_dir), steps=2, width=64, height=64, seed=20 + i,
                                  translate=False, out_dir=str(out), batch_size=1 + (i == 0)) for i in range(3)]  # fmt: skip
    manifest = Manifest.in_folder(out)
    outcomes = list(run_jobs_on_ray(make_jobs(requests), manifest=manifest, workers=2))
    assert sorted(o.status for o in outcomes) == ["done"] * 3
    for outcome in outcomes:
        local = engine.generate(outcome.request.merged(save=False))
        assert outcome.seeds == local.seeds
        for path, image in zip(outcome.images, local.images):
            with Image.open(path) as saved:
                assert np.array_equal(np.asarray(saved.convert("RGB")), np.asarray(image.image))
            assert read_parameters(path)["Seed"] == image.seed
    entries = manifest.entries()
    assert len(entries) == 3 and sum(len(e["images"]) for e in entries) == 4 == len(list(out.glob("*.png")))
    with History.open() as history:  # the driver wrote the history rows
        assert sorted(p for r in history.search(limit=10) for p in r["paths"]) == sorted(p for e in entries for p in e["images"])

    again = list(run_jobs_on_ray(make_jobs(requests), manifest=manifest, workers=2))
    assert [o.status for o in again] == ["skipped"] * 3 and len(manifest.entries()) == 3


def test_missing_extra_is_one_line(monkeypatch) -> None:
    from gambarkan.scale import ray as scale_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(DependencyMissingError, match=r"pip install 'gambarkan\[ray\]'"):
        scale_ray.import_ray()


def test_unreachable_address_fails_fast() -> None:
    from gambarkan.scale.ray import check_reachable

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(NetworkError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        check_reachable(f"127.0.0.1:{port}")
    assert time.monotonic() - started < 6


def _start_uvicorn(app):
    import threading

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    return server, thread, port


@pytest.mark.slow
def test_serve_two_replicas_answer_concurrent_openai_and_a1111(ray_cluster, tiny_sd15_dir: Path) -> None:
    import base64
    import io
    from concurrent.futures import ThreadPoolExecutor

    import openai
    import webuiapi
    from ray import serve

    from gambarkan.config import Settings
    from gambarkan.engine.generate import Engine
    from gambarkan.outputs.png import parse_parameters
    from gambarkan.outputs.reuse import fields_from_parameters
    from gambarkan.scale.ray import RemoteEngine, deploy_engines
    from gambarkan.server.app import create_app
    from gambarkan.server.state import ServerConfig

    key = "ray-test-key"
    handle = deploy_engines(2, cpus_per_replica=0.5)
    settings = Settings.from_env()
    app = create_app(settings, engines=[RemoteEngine(handle, settings) for _ in range(2)],
                     config=ServerConfig(model=str(tiny_sd15_dir), api_keys=[key], max_steps=50))  # fmt: skip
    server, thread, port = _start_uvicorn(app)
    engine = Engine(history=False)  # the local reference run
    try:
        def by_openai(seed: int) -> Image.Image:
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0, timeout=300)
            response = client.images.generate(prompt=f"kucing {seed}", size="64x64", response_format="b64_json", extra_body={"steps": 2, "seed": seed})
            return Image.open(io.BytesIO(base64.b64decode(response.data[0].b64_json)))

        def by_a1111(seed: int) -> Image.Image:
            api = webuiapi.WebUIApi(host="127.0.0.1", port=port, steps=2, username="me", password=key)
            return api.txt2img(prompt=f"rumah {seed}", seed=seed, width=64, height=64).image

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(by_openai, 1), pool.submit(by_a1111, 2), pool.submit(by_openai, 3), pool.submit(by_a1111, 4)]
            images = [f.result(timeout=600) for f in futures]
        for seed, image in zip([1, 2, 3, 4], images):
            params = parse_parameters(image.info["parameters"])
            assert params["Seed"] == seed and params["prompt"].endswith(str(seed))
            fields = fields_from_parameters(params)
            fields.pop("preset", None)
            local = engine.generate(GenerationRequest(**fields, model=str(tiny_sd15_dir), save=False))
            assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(local.images[0].image))  # the right picture
        with History.open(settings) as history:  # history lives with the ingress
            assert sorted(r["seed"] for r in history.search(limit=10)) == [1, 2, 3, 4]
    finally:
        server.should_exit = True
        thread.join(30)
        serve.shutdown()


class _Response:
    def __init__(self, outcome) -> None:
        self.outcome = outcome
        self.cancelled = False

    def result(self, timeout_s: float | None = None) -> str:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome

    def cancel(self) -> None:
        self.cancelled = True


class _Handle:
    """Stands for a Serve DeploymentHandle: answers ``generate.remote`` with queued outcomes."""

    def __init__(self, outcomes: list) -> None:
        self.outcomes = outcomes
        self.calls = 0
        self.generate = self

    def remote(self, text: str) -> _Response:
        self.calls += 1
        return _Response(self.outcomes.pop(0))


def test_a_replica_that_dies_is_retried_and_replica_errors_keep_their_class(isolated_home: Path) -> None:
    from ray.exceptions import ActorDiedError

    from gambarkan.errors import InvalidRequestError
    from gambarkan.scale.ray import RemoteEngine

    handle = _Handle([ActorDiedError(), json.dumps({"error": "steps 999 is out of range", "code": "invalid_request"})])
    with pytest.raises(InvalidRequestError, match="steps 999"):
        RemoteEngine(handle).generate(GenerationRequest(prompt="kucing", seed=1))
    assert handle.calls == 2  # the dead replica's request was asked again
    with History.open() as history:  # recorded at the ingress, as failed
        (row,) = history.search(limit=5)
    assert row["status"] == "failed" and "steps 999" in row["error"]
    dead = _Handle([ActorDiedError(), ActorDiedError(), ActorDiedError()])
    with pytest.raises(ActorDiedError):
        RemoteEngine(dead, retries=2).generate(GenerationRequest(prompt="kucing", seed=1))
    assert dead.calls == 3
