"""Ray (optional extra ``gambarkan[ray]``): batch rows with Ray Data over engine actors.

``gambarkan batch FILE --ray [ADDRESS]`` turns the rows still to run into a Ray Dataset and
maps it over a pool of actors, one :class:`~gambarkan.engine.generate.Engine` each (a model
is loaded once per actor). Workers do not write files: they return PNG bytes with their
metadata, and the driver saves them, adds the history rows (one writer for SQLite) and
appends the manifest, so resume works exactly as in a local run. Ray retries a task whose
actor died; the driver only records what comes back, once.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Iterator
from typing import Any

from gambarkan.errors import DependencyMissingError, GambarkanError, NetworkError

INSTALL = "pip install 'gambarkan[ray]'  (or: pip install 'ray[data,serve]')"
CONNECT_TIMEOUT_S = 5.0


def import_ray() -> Any:
    """The ``ray`` module, or one line saying what to install."""
    try:
        import ray
        import ray.data  # noqa: F401 - the Data part is a separate extra of ray
    except ImportError:
        raise DependencyMissingError("--ray needs Ray, which is not installed", INSTALL) from None
    return ray


def _host_port(address: str) -> tuple[str, int]:
    rest = address.split("://", 1)[-1]
    host, _, port = rest.rpartition(":")
    if not host:
        host, port = rest, ""
    default = 10001 if address.startswith("ray://") else 6379
    try:
        return host.strip("[]"), int(port) if port else default
    except ValueError:
        raise GambarkanError(f"'{address}' is not a Ray address", "write host:port, e.g. 10.0.0.5:6379 or ray://head:10001") from None


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail in one line within ``timeout`` when nothing listens at ``address`` (Ray itself would wait long)."""
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        raise NetworkError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}",
                           "start it with `ray start --head`, or check the address and the firewall") from None  # fmt: skip


def connect(address: str | None = "auto", **init_kwargs: Any) -> Any:
    """Connect to the cluster at ``address``; ``auto``/None: RAY_ADDRESS if set, else a local Ray started here."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    target = os.environ.get("RAY_ADDRESS") if address in (None, "auto", "local") else address
    if address == "local":
        target = None
    if target:
        check_reachable(target)
        ray.init(address=target, log_to_driver=False, **init_kwargs)
    else:
        env = {k: v for k, v in os.environ.items() if k.startswith(("GAMBARKAN_", "HF_")) or k == "PYTHONPATH"}
        ray.init(log_to_driver=False, runtime_env={"env_vars": env}, **init_kwargs)
    return ray


class EngineWorker:
    """A Ray Data actor: one Engine; makes each row's images and returns them as PNG bytes."""

    def __init__(self) -> None:
        from gambarkan.cli.common import quiet_libraries
        from gambarkan.engine.generate import Engine

        quiet_libraries()
        self.engine = Engine(surface="ray", history=False)  # the driver keeps the history

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        from gambarkan.outputs.png import encode_png
        from gambarkan.request import GenerationRequest
        from gambarkan.scale.runner import _error_text

        keys, outputs = [], []
        for key, text in zip(batch["key"], batch["request"]):
            keys.append(str(key))
            try:
                request = GenerationRequest(**json.loads(str(text))).merged(save=False)
                result = self.engine.generate(request)
            except Exception as exc:  # noqa: BLE001 - one row's failure is reported, the actor goes on
                outputs.append(json.dumps({"error": _error_text(exc)}))
                continue
            data = result.to_dict()
            data["images"] = [
                {"seed": i.seed, "parameters": i.parameters, "png": base64.b64encode(encode_png(i.image, i.parameters)).decode("ascii")}
                for i in result.images
            ]
            outputs.append(json.dumps(data))
        return {"key": keys, "output": outputs}


def _result_from(data: dict[str, Any], request: Any) -> Any:
    """Save a worker's images where the row asked and rebuild its GenerationResult (driver side)."""
    import io

    from PIL import Image

    from gambarkan.engine.generate import _output_dir
    from gambarkan.outputs.png import save_png
    from gambarkan.request import GeneratedImage, GenerationResult
    from gambarkan.config import Settings

    settings = Settings.from_env()
    folder = _output_dir(request, settings) if request.save else None
    images = []
    for index, item in enumerate(data.pop("images")):
        image = Image.open(io.BytesIO(base64.b64decode(item["png"])))
        image.load()
        path = save_png(image, folder, item["seed"], item["parameters"]) if folder is not None else None
        images.append(GeneratedImage(image, item["seed"], index, path, item["parameters"]))
    fields = {k: v for k, v in data.items() if k in GenerationResult.__dataclass_fields__ and k != "images"}
    return GenerationResult(images=images, **fields)


def run_jobs_on_ray(jobs: list[Any], *, manifest: Any, address: str | None = "auto", workers: int | None = None,
                    gpus_per_worker: float | None = None) -> Iterator[Any]:  # fmt: skip
    """Like ``scale.runner.run_jobs``, but the rows still to run go through Ray Data actors."""
    from gambarkan.outputs.history import record_finish
    from gambarkan.config import Settings
    from gambarkan.scale.runner import RowResult, done_entry, failed_entry, split_done

    skipped, pending = split_done(jobs, manifest)
    yield from skipped
    runnable = [j for j in pending if j.request is not None]
    for job in pending:
        if job.request is None:
            yield RowResult(job.key, job.line, "failed", error=job.error)
    if not runnable:
        return
    ray = connect(address)
    if gpus_per_worker is None:
        gpus_per_worker = 1.0 if ray.cluster_resources().get("GPU", 0) else 0.0
    if workers is None:
        fits = ray.cluster_resources().get("GPU", 0) / gpus_per_worker if gpus_per_worker else ray.cluster_resources().get("CPU", 1)
        workers = max(1, min(len(runnable), int(fits)))
    by_key = {j.key: j for j in runnable}
    dataset = ray.data.from_items([{"key": j.key, "request": json.dumps(j.request.model_dump(mode="json"))} for j in runnable])
    mapped = dataset.map_batches(EngineWorker, batch_size=1, concurrency=workers, num_cpus=1, num_gpus=gpus_per_worker,
                                 max_restarts=3, max_task_retries=3)  # fmt: skip
    settings = Settings.from_env()
    for row in mapped.iter_rows():
        job = by_key[row["key"]]
        data = json.loads(row["output"])
        if "error" in data:
            manifest.append(failed_entry(job, data["error"]))
            yield RowResult(job.key, job.line, "failed", job.request, error=data["error"])
            continue
        result = _result_from(data, job.request)
        record_finish(settings, None, job.request, result, surface="batch")
        entry = done_entry(job, result)
        manifest.append(entry)
        yield RowResult(job.key, job.line, "done", job.request, result, images=entry["images"], seeds=entry["seeds"])
