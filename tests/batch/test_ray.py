"""Ray Data batch: two CPU actors give the local run's pixels per seed; resume and bad addresses.

One Ray instance (``ray.init(num_cpus=2)``) is shared by the module; keep these few and small.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gambarkan.errors import DependencyMissingError, NetworkError
from gambarkan.outputs.history import History
from gambarkan.outputs.manifest import Manifest
from gambarkan.outputs.png import read_parameters
from gambarkan.request import GenerationRequest
from gambarkan.scale.runner import make_jobs

import ray  # in the test extra: these tests use a real Ray


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
